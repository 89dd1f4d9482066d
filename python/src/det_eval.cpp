// det_eval.cpp: COCO bbox evaluation in snip._det (pycocotools' COCOeval rules, the
// numbers `snip-chips eval` prints): ground truth read once, detections from a COCO
// results file or from NumPy arrays per image.
#include "det_parts.hpp"

#include <snip/eval/coco_eval.hpp>
#include <snip/io/coco.hpp>

#include <cmath>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace snip::py {

namespace {

/// A COCO instances file read once (shared by the evaluations that use it).
struct coco_gt {
    std::shared_ptr<const snip::dataset> ds;
    snip::io::load_report report;
};

/// The evaluation's result, kept as the C++ struct.
struct eval_result {
    snip::io::coco_eval_result r;
};

/// str, bytes or os.PathLike -> str.
std::string path_of(const pyb::object& p, const char* what) {
    if (pyb::isinstance<pyb::str>(p)) return p.cast<std::string>();
    const auto os = pyb::module_::import("os");
    if (pyb::hasattr(p, "__fspath__")) return pyb::str(os.attr("fspath")(p)).cast<std::string>();
    bad_argument(what, "expected a path (str or os.PathLike) or a CocoGroundTruth, got ",
                 pyb::repr(p.get_type()).cast<std::string>());
}

coco_gt load_gt(const std::string& path) {
    coco_gt g;
    release_gil nogil;
    g.ds = std::make_shared<const snip::dataset>(snip::io::read_coco(path, &g.report));
    return g;
}

/// The annotations argument: a CocoGroundTruth or a path to read.
std::shared_ptr<const snip::dataset> gt_of(const pyb::object& a) {
    if (pyb::isinstance<coco_gt>(a)) return a.cast<const coco_gt&>().ds;
    return load_gt(path_of(a, "annotations")).ds;
}

/// A 1-D float32/float64 array of n entries read as double.
std::vector<double> doubles_of(const pyb::array& a, std::ptrdiff_t n, const std::string& what) {
    std::vector<double> out(static_cast<std::size_t>(std::max<std::ptrdiff_t>(n, 0)));
    if (has_dtype<double>(a)) {
        const auto [p, s] = vector_of<double>(a, n, what.c_str());
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = p[static_cast<std::ptrdiff_t>(i) * s];
    } else if (has_dtype<float>(a)) {
        const auto [p, s] = vector_of<float>(a, n, what.c_str());
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = p[static_cast<std::ptrdiff_t>(i) * s];
    } else {
        bad_argument(what.c_str(), "expected a float32 or float64 array, got a ", describe(a));
    }
    return out;
}

/// Appends one image's detections (boxes, scores, category ids) to `out`, checked.
void add_image(std::int64_t image_id, const pyb::handle& item, bool xywh,
               const std::unordered_set<std::int64_t>& images, const std::unordered_set<int>* cats,
               std::vector<snip::io::detection>& out) {
    const std::string who = snip::concat("detections[image ", image_id, "]");
    if (!images.count(image_id))
        bad_argument("detections", "image id ", image_id, " is not an image of the annotations");
    const auto seq = pyb::reinterpret_borrow<pyb::object>(item);
    if (!pyb::isinstance<pyb::sequence>(seq) || pyb::len(seq) != 3)
        bad_argument(who.c_str(), "expected a (boxes, scores, category_ids) tuple, got ",
                     pyb::repr(seq).cast<std::string>().substr(0, 80));
    const auto boxes = pyb::array::ensure(seq[pyb::int_(0)]);
    const auto scores = pyb::array::ensure(seq[pyb::int_(1)]);
    const auto cats_a = pyb::array::ensure(seq[pyb::int_(2)]);
    if (!boxes || !scores || !cats_a)
        bad_argument(who.c_str(), "boxes, scores and category_ids must be NumPy arrays");
    const std::string bw = who + ".boxes", sw = who + ".scores", cw = who + ".category_ids";
    with_boxes(boxes, bw.c_str(), [&](auto b) {
        const auto n = b.size();
        const auto sc = doubles_of(scores, n, sw);
        const auto ci = integers_of(cats_a, n, cw.c_str());
        for (std::ptrdiff_t i = 0; i < n; ++i) {
            const auto bx = b[i].template cast<double>();
            snip::io::detection d;
            d.image_id = image_id;
            const std::int64_t c = ci[static_cast<std::size_t>(i)];
            if (c < std::numeric_limits<int>::min() || c > std::numeric_limits<int>::max() ||
                (cats && !cats->count(static_cast<int>(c))))
                bad_argument(cw.c_str(), "entry ", i, " is ", c,
                             ", which is not an id in the \"categories\" of the annotations");
            d.category_id = static_cast<int>(c);
            d.x = bx.x1, d.y = bx.y1;
            d.w = xywh ? bx.x2 : bx.x2 - bx.x1;
            d.h = xywh ? bx.y2 : bx.y2 - bx.y1;
            if (!(std::isfinite(d.x) && std::isfinite(d.y) && std::isfinite(d.w) && std::isfinite(d.h)))
                bad_argument(bw.c_str(), "box ", i, " [", bx.x1, ", ", bx.y1, ", ", bx.x2, ", ", bx.y2,
                             "] has a coordinate that is not finite");
            if (d.w < 0 || d.h < 0)
                bad_argument(bw.c_str(), "box ", i, " [", bx.x1, ", ", bx.y1, ", ", bx.x2, ", ", bx.y2, "] has ",
                             xywh ? "w < 0 or h < 0" : "x2 < x1 or y2 < y1");
            d.score = sc[static_cast<std::size_t>(i)];
            if (!std::isfinite(d.score)) bad_argument(sw.c_str(), "entry ", i, " is ", d.score, ", must be finite");
            out.push_back(d);
        }
        return 0;
    });
}

/// The stat names as a Python tuple.
pyb::tuple stat_names() {
    pyb::tuple t(snip::io::coco_eval_result::stat_names.size());
    for (std::size_t i = 0; i < t.size(); ++i)
        t[i] = pyb::str(std::string(snip::io::coco_eval_result::stat_names[i]));
    return t;
}

std::size_t stat_index(const std::string& name, bool attribute) {
    const auto& n = snip::io::coco_eval_result::stat_names;
    for (std::size_t i = 0; i < n.size(); ++i)
        if (n[i] == name) return i;
    const auto msg = snip::concat("no COCO number named '", name,
                                  "' (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl)");
    if (attribute) throw pyb::attribute_error(msg);
    throw pyb::key_error(msg);
}

const char* eval_rules_doc = R"doc(
The rules are pycocotools' COCOeval for iouType 'bbox' (an independent implementation, the
one `snip-chips eval` runs): per image and category the 100 best detections by score
(stable: input order breaks ties), greedy matching at IoU 0.50:0.05:0.95, crowd boxes
absorb any number of detections (IoU = intersection / detection area), areas small
[0, 32^2], medium [32^2, 96^2], large [96^2, 1e10] from the annotation's "area", precision
interpolated at 101 recall points. A number without ground truth is -1.)doc";

} // namespace

void bind_det_eval(pyb::module_& m) {
    m.attr("COCO_STAT_NAMES") = stat_names();

    pyb::class_<coco_gt>(m, "CocoGroundTruth", pyb::module_local(),
                         "A COCO instances JSON file read once, for repeated evaluations.")
        .def(pyb::init([](const pyb::object& path) { return load_gt(path_of(path, "path")); }),
             pyb::arg("path"),
             "Reads a COCO instances file with snip's strict reader (the one `snip-chips eval` "
             "uses: boxes crossing the image border by <= 1 px are clipped). Raises snip.Error "
             "naming the file, field and value.")
        .def_property_readonly("source", [](const coco_gt& g) { return g.ds->source; }, "The file read.")
        .def_property_readonly("num_images", [](const coco_gt& g) { return g.ds->images.size(); },
                               "The number of images.")
        .def_property_readonly("num_boxes", [](const coco_gt& g) { return g.ds->num_boxes(); },
                               "The number of boxes (crowd included).")
        .def_property_readonly("num_crowd", [](const coco_gt& g) { return g.report.crowd; },
                               "The number of crowd boxes.")
        .def_property_readonly(
            "image_ids",
            [](const coco_gt& g) {
                std::vector<std::int64_t> ids;
                ids.reserve(g.ds->images.size());
                for (const auto& im : g.ds->images) ids.push_back(im.id);
                const auto n = static_cast<pyb::ssize_t>(ids.size());
                return to_array(std::move(ids), {n});
            },
            "(I,) int64: the image ids in file order.")
        .def_property_readonly(
            "categories",
            [](const coco_gt& g) {
                pyb::dict d;
                for (const auto& c : g.ds->categories) d[pyb::int_(c.id)] = c.name;
                return d;
            },
            "{id: name} of the file's categories.")
        .def("__repr__", [](const coco_gt& g) {
            return snip::concat("CocoGroundTruth('", g.ds->source, "': ", g.ds->images.size(), " images, ",
                                g.ds->num_boxes(), " boxes)");
        });

    pyb::class_<eval_result>(m, "CocoEvalResult", pyb::module_local(),
                             "The result of a COCO bbox evaluation: the 12 summary numbers "
                             "(r.AP, r['AP50'], r.as_dict(), r.stats), counts, per-category "
                             "results and optionally the precision / recall curves.")
        .def_property_readonly(
            "stats",
            [](const eval_result& e) {
                pyb::tuple t(12);
                for (std::size_t i = 0; i < 12; ++i) t[i] = pyb::float_(e.r.stats[i]);
                return t;
            },
            "The 12 numbers (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl); "
            "-1 where no category has ground truth.")
        .def(
            "as_dict",
            [](const eval_result& e) {
                pyb::dict d;
                for (std::size_t i = 0; i < 12; ++i)
                    d[pyb::str(std::string(e.r.stat_names[i]))] = e.r.stats[i];
                return d;
            },
            "{name: value} of the 12 numbers, in COCO's order.")
        .def(
            "__getitem__", [](const eval_result& e, const std::string& k) { return e.r.stats[stat_index(k, false)]; },
            pyb::arg("name"), "One of the 12 numbers by name ('AP', ..., 'ARl').")
        .def(
            "__getattr__", [](const eval_result& e, const std::string& k) { return e.r.stats[stat_index(k, true)]; },
            pyb::arg("name"), "One of the 12 numbers as an attribute (r.AP, r.AR100, ...).")
        .def_property_readonly("images", [](const eval_result& e) { return e.r.images; },
                               "The number of images of the ground truth.")
        .def_property_readonly("gt_boxes", [](const eval_result& e) { return e.r.gt_boxes; },
                               "The number of non-crowd ground truth boxes.")
        .def_property_readonly("crowd_boxes", [](const eval_result& e) { return e.r.crowd_boxes; },
                               "The number of crowd ground truth boxes.")
        .def_property_readonly("detections", [](const eval_result& e) { return e.r.detections; },
                               "The number of detections evaluated.")
        .def_property_readonly(
            "categories",
            [](const eval_result& e) {
                pyb::list out;
                for (const auto& c : e.r.categories) {
                    pyb::dict d;
                    d["id"] = c.id;
                    d["name"] = c.name;
                    d["gt"] = c.gt;
                    d["crowd"] = c.crowd;
                    d["detections"] = c.detections;
                    d["AP"] = c.ap;
                    d["AP50"] = c.ap50;
                    d["AP75"] = c.ap75;
                    d["AR100"] = c.ar100;
                    out.append(d);
                }
                return out;
            },
            "Per category (ascending id): {id, name, gt, crowd, detections, AP, AP50, AP75, "
            "AR100}; -1 for a category without non-crowd ground truth.")
        .def_property_readonly(
            "precision",
            [](const eval_result& e) -> pyb::object {
                if (e.r.precision.empty()) return pyb::none();
                using G = snip::io::coco_eval_grid;
                std::vector<double> p = e.r.precision;
                return to_array(std::move(p), {pyb::ssize_t(G::T), pyb::ssize_t(G::R),
                                               static_cast<pyb::ssize_t>(e.r.categories.size()),
                                               pyb::ssize_t(G::A), pyb::ssize_t(G::M)});
            },
            "With keep_curves=True: pycocotools' eval['precision'], (10, 101, K, 4, 3) float64 "
            "(IoU, recall, category, area, maxDets), -1 where undefined; else None.")
        .def_property_readonly(
            "recall",
            [](const eval_result& e) -> pyb::object {
                if (e.r.recall.empty()) return pyb::none();
                using G = snip::io::coco_eval_grid;
                std::vector<double> p = e.r.recall;
                return to_array(std::move(p), {pyb::ssize_t(G::T),
                                               static_cast<pyb::ssize_t>(e.r.categories.size()),
                                               pyb::ssize_t(G::A), pyb::ssize_t(G::M)});
            },
            "With keep_curves=True: pycocotools' eval['recall'], (10, K, 4, 3) float64, -1 where "
            "undefined; else None.")
        .def(
            "summary", [](const eval_result& e) { return snip::io::format_coco_summary(e.r); },
            "The 12 summary lines in pycocotools' layout (what `snip-chips eval` prints).")
        .def(
            "to_json", [](const eval_result& e) { return snip::io::coco_eval_json(e.r).dump(2); },
            "The result as the JSON text `snip-chips eval --json` prints.")
        .def("__repr__", [](const eval_result& e) {
            std::string s = "CocoEvalResult(";
            for (std::size_t i = 0; i < 12; ++i)
                s += snip::concat(i ? ", " : "", e.r.stat_names[i], "=", e.r.stats[i]);
            return s + ")";
        });

    m.def(
        "evaluate_coco_file",
        [](const pyb::object& annotations, const pyb::object& results, bool keep_curves) {
            const auto gt = gt_of(annotations);
            const std::string path = path_of(results, "results");
            eval_result e;
            {
                release_gil nogil;
                snip::io::coco_eval_options o;
                o.keep_curves = keep_curves;
                e.r = snip::io::evaluate_coco(*gt, snip::io::read_detections(path, *gt), o);
            }
            return e;
        },
        pyb::arg("annotations"), pyb::arg("results"), pyb::kw_only(), pyb::arg("keep_curves") = false,
        (std::string("Evaluates a COCO results file ([{\"image_id\", \"category_id\", \"bbox\": [x, y, w, h], "
                     "\"score\"}, ...]) against COCO annotations (a path or a CocoGroundTruth): a "
                     "CocoEvalResult with the numbers `snip-chips eval --annotations A --results R` "
                     "prints. Raises snip.Error naming the file, field and value of a bad "
                     "detection.\n") +
         eval_rules_doc)
            .c_str());

    m.def(
        "evaluate_coco",
        [](const pyb::object& annotations, const pyb::object& detections, const std::string& box_format,
           bool keep_curves) {
            bool xywh = false;
            if (box_format == "xywh") xywh = true;
            else if (box_format != "xyxy")
                bad_argument("box_format", "expected 'xyxy' or 'xywh', got '", box_format, "'");
            const auto gt = gt_of(annotations);
            std::unordered_set<std::int64_t> images;
            for (const auto& im : gt->images) images.insert(im.id);
            std::unordered_set<int> cats;
            for (const auto& c : gt->categories) cats.insert(c.id);
            const auto* cp = cats.empty() ? nullptr : &cats;
            std::vector<snip::io::detection> dets;
            if (pyb::isinstance<pyb::dict>(detections) || pyb::hasattr(detections, "items")) {
                for (const auto& kv : detections.attr("items")()) {
                    const auto pair = pyb::reinterpret_borrow<pyb::tuple>(kv);
                    add_image(pair[0].cast<std::int64_t>(), pair[1], xywh, images, cp, dets);
                }
            } else {
                for (const auto& item : detections) {
                    const auto o = pyb::reinterpret_borrow<pyb::object>(item);
                    if (!pyb::isinstance<pyb::sequence>(o) || pyb::len(o) != 4)
                        bad_argument("detections", "expected a mapping {image_id: (boxes, scores, "
                                     "category_ids)} or (image_id, boxes, scores, category_ids) tuples, got ",
                                     pyb::repr(o).cast<std::string>().substr(0, 80));
                    add_image(o[pyb::int_(0)].cast<std::int64_t>(),
                              pyb::make_tuple(o[pyb::int_(1)], o[pyb::int_(2)], o[pyb::int_(3)]), xywh,
                              images, cp, dets);
                }
            }
            eval_result e;
            {
                release_gil nogil;
                snip::io::coco_eval_options o;
                o.keep_curves = keep_curves;
                e.r = snip::io::evaluate_coco(*gt, dets, o);
            }
            return e;
        },
        pyb::arg("annotations"), pyb::arg("detections"), pyb::kw_only(), pyb::arg("box_format") = "xyxy",
        pyb::arg("keep_curves") = false,
        (std::string("Evaluates detections given as NumPy arrays per image against COCO annotations (a "
                     "path or a CocoGroundTruth): a CocoEvalResult.\n\n"
                     "detections: a mapping {image_id: (boxes, scores, category_ids)} or an iterable "
                     "of (image_id, boxes, scores, category_ids); boxes (N, 4) float32/float64 in "
                     "original image pixels, 'xyxy' (x1, y1, x2, y2; w = x2 - x1) or 'xywh' (COCO's "
                     "[x, y, w, h]) by box_format; scores (N,) float32/float64; category_ids (N,) "
                     "integers. Their order (images in iteration order, then rows) is the file "
                     "order of a results file: it breaks score ties. Image ids must be images of "
                     "the annotations and category ids among its categories.\n") +
         eval_rules_doc)
            .c_str());
}

} // namespace snip::py
