// chips_data.cpp: datasets and proposals in snip._chips: ImageRecord, Dataset, LoadReport,
// read_coco, ImageProposals, Proposals, read_proposals. Arrays handed out by records and
// proposals are read-only NumPy views on the C++ memory, kept alive by their owner.
#include "chips_parts.hpp"

#include <snip/sniper/plan.hpp>

#include <unordered_map>

namespace snip::py {

namespace {

using snip::image_record;

/// The record of a Python object that holds one (for the getters below).
const image_record& record_of(const pyb::object& self) { return self.cast<const image_record&>(); }

image_record make_record(std::int64_t id, int width, int height, const pyb::object& boxes,
                         const pyb::object& categories, const pyb::object& crowd, const pyb::object& ann_ids,
                         const pyb::object& areas, const std::string& file_name) {
    const std::string who = snip::concat("ImageRecord(id=", id, ")");
    snip::require(width > 0 && height > 0, who, ": width and height must be > 0, got ", width, " x ", height);
    image_record r;
    r.id = id;
    r.file_name = file_name;
    r.width = width;
    r.height = height;
    r.boxes = boxes_copy(boxes, (who + ": boxes").c_str());
    snip::validate_boxes(snip::box_view<const double>(snip::as_box_view(std::as_const(r.boxes))),
                         (who + ": boxes").c_str());
    const auto n = r.boxes.size();
    if (categories.is_none()) {
        r.categories.assign(n, 1);
    } else {
        r.categories = ints_of(categories, (who + ": categories").c_str());
        if (r.categories.size() != n)
            bad_argument((who + ": categories").c_str(), "expected ", n, " category ids (one per box), got ",
                         r.categories.size());
    }
    r.crowd = flags_of(crowd, static_cast<std::ptrdiff_t>(n), (who + ": crowd").c_str());
    if (r.crowd.empty()) r.crowd.assign(n, 0);
    if (ann_ids.is_none()) {
        for (std::size_t k = 0; k < n; ++k) r.ann_ids.push_back(static_cast<std::int64_t>(k + 1));
    } else {
        pyb::array a = pyb::array::ensure(ann_ids);
        const char kind = a ? a.dtype().kind() : '?';
        if (!a || a.ndim() != 1 || static_cast<std::size_t>(a.shape(0)) != n ||
            (n > 0 && kind != 'i' && kind != 'u'))
            bad_argument((who + ": ann_ids").c_str(), "expected ", n, " integer annotation ids (one per box), got ",
                         pyb::repr(ann_ids).cast<std::string>());
        for (pyb::handle x : a.attr("tolist")()) r.ann_ids.push_back(x.cast<std::int64_t>());
    }
    if (!areas.is_none()) {
        pyb::array a = pyb::array::ensure(areas);
        if (!a || a.ndim() != 1 || static_cast<std::size_t>(a.shape(0)) != n ||
            (n > 0 && a.dtype().kind() != 'f' && a.dtype().kind() != 'i' && a.dtype().kind() != 'u'))
            bad_argument((who + ": areas").c_str(), "expected ", n, " numbers (one per box; < 0: w * h), got ",
                         pyb::repr(areas).cast<std::string>());
        for (pyb::handle x : a.attr("tolist")()) {
            const double v = x.cast<double>();
            snip::require(std::isfinite(v), who, ": areas holds ", v, ", must be finite numbers");
            r.areas.push_back(v);
        }
    }
    return r;
}

pyb::tuple record_state(const image_record& r) {
    std::vector<snip::box<double>> b(r.boxes);
    std::vector<std::uint8_t> crowd(r.crowd);
    const auto n = static_cast<pyb::ssize_t>(b.size());
    return pyb::make_tuple(r.id, r.file_name, r.width, r.height, boxes_to_array(std::move(b)),
                           array_copy(r.categories), to_array(std::move(crowd), {n}), array_copy(r.ann_ids),
                           array_copy(r.areas));
}

image_record record_from_state(const pyb::tuple& t) {
    if (t.size() != 9) throw std::runtime_error("ImageRecord.__setstate__: expected 9 fields");
    image_record r;
    r.id = t[0].cast<std::int64_t>();
    r.file_name = t[1].cast<std::string>();
    r.width = t[2].cast<int>();
    r.height = t[3].cast<int>();
    r.boxes = boxes_copy(t[4], "ImageRecord.__setstate__: boxes");
    auto c = t[5].cast<pyb::array_t<int>>();
    r.categories.assign(c.data(), c.data() + c.size());
    auto k = t[6].cast<pyb::array_t<std::uint8_t>>();
    r.crowd.assign(k.data(), k.data() + k.size());
    auto a = t[7].cast<pyb::array_t<std::int64_t>>();
    r.ann_ids.assign(a.data(), a.data() + a.size());
    auto ar = t[8].cast<pyb::array_t<double>>();
    r.areas.assign(ar.data(), ar.data() + ar.size());
    return r;
}

/// Checks a dataset built from Python: unique image ids, per-box arrays of one length,
/// and category ids among the categories when there are any.
void check_dataset(const snip::dataset& ds, const std::string& who) {
    std::unordered_map<std::int64_t, std::size_t> seen;
    std::unordered_map<int, std::size_t> cats;
    for (std::size_t i = 0; i < ds.categories.size(); ++i)
        if (auto [it, fresh] = cats.emplace(ds.categories[i].id, i); !fresh)
            snip::fail(who, ": categories[", i, "] has id ", ds.categories[i].id, ", duplicate of categories[",
                       it->second, "]");
    for (std::size_t i = 0; i < ds.images.size(); ++i) {
        const auto& im = ds.images[i];
        if (auto [it, fresh] = seen.emplace(im.id, i); !fresh)
            snip::fail(who, ": images[", i, "].id is ", im.id, ", duplicate of images[", it->second, "].id");
        const std::size_t n = im.boxes.size();
        snip::require(im.categories.size() == n && im.crowd.size() == n && im.ann_ids.size() == n &&
                          (im.areas.empty() || im.areas.size() == n),
                      who, ": images[", i, "] (id ", im.id, ") has ", n, " boxes but ", im.categories.size(),
                      " categories, ", im.crowd.size(), " crowd flags, ", im.ann_ids.size(), " ann_ids and ",
                      im.areas.size(), " areas");
        if (!cats.empty())
            for (std::size_t k = 0; k < n; ++k)
                snip::require(cats.count(im.categories[k]) != 0, who, ": images[", i, "] (id ", im.id, ") box ", k,
                              " has category ", im.categories[k], ", which is not among the categories");
    }
}

std::vector<snip::category> categories_of(const pyb::object& cats, const std::string& who) {
    std::vector<snip::category> out;
    if (cats.is_none()) return out;
    std::size_t i = 0;
    for (pyb::handle c : cats) {
        snip::category k;
        if (PyDict_Check(c.ptr())) {
            const auto d = pyb::reinterpret_borrow<pyb::dict>(c);
            if (!d.contains("id"))
                throw pyb::value_error(snip::concat(who, ": categories[", i, "] has no 'id'"));
            k.id = d["id"].cast<int>();
            if (d.contains("name")) k.name = d["name"].cast<std::string>();
        } else if (pyb::isinstance<pyb::sequence>(c) && !PyUnicode_Check(c.ptr()) && pyb::len(c) == 2) {
            const auto s = pyb::reinterpret_borrow<pyb::sequence>(c);
            k.id = s[0].cast<int>();
            k.name = s[1].cast<std::string>();
        } else {
            throw pyb::type_error(snip::concat(who, ": categories[", i, "] is ", pyb::repr(c).cast<std::string>(),
                                               ", expected an (id, name) pair or {'id': ..., 'name': ...}"));
        }
        out.push_back(std::move(k));
        ++i;
    }
    return out;
}

std::vector<std::pair<int, std::string>> categories_list(const snip::dataset& ds) {
    std::vector<std::pair<int, std::string>> out;
    for (const auto& c : ds.categories) out.emplace_back(c.id, c.name);
    return out;
}

std::size_t index_of(std::ptrdiff_t i, std::size_t n, const char* who) {
    const auto sn = static_cast<std::ptrdiff_t>(n);
    if (i < 0) i += sn;
    if (i < 0 || i >= sn) throw pyb::index_error(snip::concat(who, ": index ", i, " out of range for ", n, " items"));
    return static_cast<std::size_t>(i);
}

snip::image_proposals make_proposals(const pyb::object& boxes, const pyb::object& scores, const std::string& who) {
    snip::image_proposals p;
    p.boxes = boxes_copy(boxes, (who + ": boxes").c_str());
    snip::validate_boxes(snip::box_view<const double>(snip::as_box_view(std::as_const(p.boxes))),
                         (who + ": boxes").c_str());
    const auto n = p.boxes.size();
    if (scores.is_none()) {
        p.scores.assign(n, 1.0f);
    } else {
        pyb::array a = pyb::array::ensure(scores);
        if (!a || a.ndim() != 1 || static_cast<std::size_t>(a.shape(0)) != n ||
            (n > 0 && a.dtype().kind() != 'f' && a.dtype().kind() != 'i' && a.dtype().kind() != 'u'))
            bad_argument((who + ": scores").c_str(), "expected a 1-D array of ", n, " numbers (one per box), got ",
                         a ? "a " + describe(a) : pyb::repr(scores).cast<std::string>());
        auto f = pyb::array_t<float, pyb::array::c_style | pyb::array::forcecast>::ensure(a);
        p.scores.assign(f.data(), f.data() + f.size());
    }
    return p;
}

snip::image_proposals proposals_item(pyb::handle x, std::size_t i) {
    const std::string who = snip::concat("Proposals: [", i, "]");
    if (pyb::isinstance<snip::image_proposals>(x)) return x.cast<snip::image_proposals>();
    if (PyTuple_Check(x.ptr()) && pyb::len(x) == 2) {
        const auto t = pyb::reinterpret_borrow<pyb::tuple>(x);
        return make_proposals(t[0], t[1], who);
    }
    return make_proposals(pyb::reinterpret_borrow<pyb::object>(x), pyb::none(), who);
}

} // namespace

void bind_chips_data(pyb::module_& m) {
    // ---------------------------------------------------------------- ImageRecord
    pyb::class_<image_record> rec(m, "ImageRecord", R"doc(One image and its ground truth (snip::image_record).

Boxes are xyxy, continuous convention, ORIGINAL-image pixels. The arrays (boxes,
categories, crowd, ann_ids, areas) are read-only NumPy views on the record's C++ memory,
not copies: their base is the record (or, for a record of a Dataset, a reference that
keeps the Dataset alive). Records are immutable from Python.)doc");
    rec.def(pyb::init(&make_record), pyb::arg("id"), pyb::arg("width"), pyb::arg("height"),
            pyb::arg("boxes") = pyb::none(), pyb::arg("categories") = pyb::none(), pyb::arg("crowd") = pyb::none(),
            pyb::arg("ann_ids") = pyb::none(), pyb::arg("areas") = pyb::none(), pyb::arg("file_name") = "",
            R"doc(ImageRecord(id, width, height, boxes=None, categories=None, crowd=None, ann_ids=None,
areas=None, file_name="")

boxes: (N, 4) float32/float64 xyxy original px (copied; finite, x1 <= x2, y1 <= y2);
categories: N category ids (default 1); crowd: N flags (default none); ann_ids: N
annotation ids (default 1..N); areas: N COCO areas (< 0: w * h; default: none).)doc");
    rec.def_property_readonly("id", [](const image_record& r) { return r.id; }, "The image's id.");
    rec.def_property_readonly("file_name", [](const image_record& r) { return r.file_name; }, "The image's file name.");
    rec.def_property_readonly("width", [](const image_record& r) { return r.width; }, "Width, original px.");
    rec.def_property_readonly("height", [](const image_record& r) { return r.height; }, "Height, original px.");
    rec.def_property_readonly("num_boxes", [](const image_record& r) { return r.boxes.size(); }, "Number of boxes.");
    rec.def_property_readonly(
        "boxes", [](const pyb::object& self) { return boxes_view_of(record_of(self).boxes, self); },
        "(N, 4) float64 xyxy boxes, original px: a read-only view (no copy).");
    rec.def_property_readonly(
        "categories", [](const pyb::object& self) { return view_of(record_of(self).categories, self); },
        "(N,) int32 category ids: a read-only view (no copy).");
    rec.def_property_readonly(
        "crowd",
        [](const pyb::object& self) {
            const auto& c = record_of(self).crowd;
            return view_array(reinterpret_cast<const bool*>(c.data()), c.size(), 0, self);
        },
        "(N,) bool crowd / ignore flags: a read-only view (no copy).");
    rec.def_property_readonly(
        "ann_ids", [](const pyb::object& self) { return view_of(record_of(self).ann_ids, self); },
        "(N,) int64 annotation ids: a read-only view (no copy).");
    rec.def_property_readonly(
        "areas", [](const pyb::object& self) { return view_of(record_of(self).areas, self); },
        "(N,) float64 COCO areas (< 0: none), or an empty array when no box has one: a read-only view.");
    rec.def(
        "area", [](const image_record& r, std::size_t k) {
            if (k >= r.boxes.size())
                throw pyb::index_error(snip::concat("ImageRecord.area: box ", k, " but the image has ",
                                                    r.boxes.size(), " boxes"));
            return r.area(k);
        },
        pyb::arg("k"), "The area of box k for COCO's area ranges: its COCO area when it has one, else w * h.");
    rec.def("__repr__", [](const image_record& r) {
        return snip::concat("ImageRecord(id=", r.id, ", file_name='", r.file_name, "', width=", r.width,
                            ", height=", r.height, ", boxes=", r.boxes.size(), ")");
    });
    rec.def(pyb::pickle([](const image_record& r) { return record_state(r); },
                        [](const pyb::tuple& t) { return record_from_state(t); }));

    // ---------------------------------------------------------------- LoadReport
    pyb::class_<snip::io::load_report>(m, "LoadReport", "What read_coco loaded (snip::io::load_report).")
        .def_readonly("images", &snip::io::load_report::images, "Images read.")
        .def_readonly("boxes", &snip::io::load_report::boxes, "Annotations read.")
        .def_readonly("crowd", &snip::io::load_report::crowd, "Crowd annotations.")
        .def_readonly("degenerate", &snip::io::load_report::degenerate, "Boxes with w == 0 or h == 0 (kept).")
        .def_readonly("clipped", &snip::io::load_report::clipped,
                      "Boxes that crossed the image border within the tolerance and were clipped.")
        .def_readonly("warnings", &snip::io::load_report::warnings,
                      "At most ~20 warning lines, each naming file, field and value.")
        .def("__repr__", [](const snip::io::load_report& r) {
            return snip::concat("LoadReport(images=", r.images, ", boxes=", r.boxes, ", crowd=", r.crowd,
                                ", degenerate=", r.degenerate, ", clipped=", r.clipped, ", warnings=",
                                r.warnings.size(), ")");
        });

    // ---------------------------------------------------------------- Dataset
    pyb::class_<py_dataset, std::shared_ptr<py_dataset>> ds(m, "Dataset", R"doc(A detection dataset (snip::dataset): images in order, categories, its source.

len(ds), ds[i] (an ImageRecord that shares the dataset's memory and keeps it alive; a
negative index counts from the end; a slice gives a new Dataset of copies) and iteration.
Immutable from Python, so views handed out stay valid. Picklable.)doc");
    ds.def(pyb::init([](const pyb::object& images, const pyb::object& categories, const std::string& source) {
               auto d = std::make_shared<py_dataset>();
               d->ds.source = source;
               d->ds.categories = categories_of(categories, "Dataset");
               std::size_t i = 0;
               for (pyb::handle x : images) {
                   if (!pyb::isinstance<image_record>(x))
                       throw pyb::type_error(snip::concat("Dataset: images[", i, "] is ",
                                                          pyb::repr(x).cast<std::string>(),
                                                          ", expected an ImageRecord"));
                   d->ds.images.push_back(x.cast<image_record>());
                   ++i;
               }
               check_dataset(d->ds, "Dataset");
               return d;
           }),
           pyb::arg("images") = pyb::list(), pyb::arg("categories") = pyb::none(), pyb::arg("source") = "",
           R"doc(Dataset(images=[], categories=None, source="")

A dataset of your own: ImageRecords (copied in) and categories as (id, name) pairs or
{'id', 'name'} dicts. Image ids must be unique; when categories are given every box's
category must be among them. `source` names the dataset in messages.)doc");
    ds.def("__len__", [](const py_dataset& d) { return d.ds.images.size(); }, "The number of images.");
    ds.def(
        "__getitem__",
        [](const py_dataset& d, std::ptrdiff_t i) -> const image_record& {
            return d.ds.images[index_of(i, d.ds.images.size(), "Dataset")];
        },
        pyb::return_value_policy::reference_internal, pyb::arg("index"),
        "Image `index` (negative: from the end) as an ImageRecord sharing the dataset's memory.");
    ds.def("__getitem__", [](const py_dataset& d, const pyb::slice& s) {
        std::size_t start = 0, stop = 0, step = 0, len = 0;
        if (!s.compute(d.ds.images.size(), &start, &stop, &step, &len)) throw pyb::error_already_set();
        auto out = std::make_shared<py_dataset>();
        out->ds.source = d.ds.source;
        out->ds.categories = d.ds.categories;
        for (std::size_t k = 0; k < len; ++k, start += step) out->ds.images.push_back(d.ds.images[start]);
        return out;
    }, pyb::arg("slice"), "A new Dataset of copies of the images of the slice (same categories and source).");
    ds.def("__iter__", [](const pyb::object& self) {
        const auto& d = self.cast<const py_dataset&>();
        return pyb::iter(pyb::cast(d.ds.images, pyb::return_value_policy::reference_internal, self));
    }, "Iterates over the images (ImageRecords sharing the dataset's memory).");
    ds.def_property_readonly(
        "images", [](const py_dataset& d) -> const std::vector<image_record>& { return d.ds.images; },
        pyb::return_value_policy::reference_internal,
        "The records as a list (each shares the dataset's memory).");
    ds.def_property_readonly("categories", [](const py_dataset& d) { return categories_list(d.ds); },
                             "Categories as (id, name) pairs.");
    ds.def_property_readonly("source", [](const py_dataset& d) { return d.ds.source; },
                             "The file it was read from (for messages), or the source given.");
    ds.def_property_readonly("num_boxes", [](const py_dataset& d) { return d.ds.num_boxes(); },
                             "Boxes of all images.");
    ds.def_property_readonly(
        "load_report",
        [](const py_dataset& d) -> pyb::object {
            if (!d.report) return pyb::none();
            return pyb::cast(*d.report);
        },
        "read_coco's LoadReport (counts and warnings), or None for a dataset built in Python.");
    ds.def(
        "index",
        [](const py_dataset& d, std::int64_t id) {
            for (std::size_t i = 0; i < d.ds.images.size(); ++i)
                if (d.ds.images[i].id == id) return i;
            throw pyb::key_error(snip::concat("Dataset: no image has id ", id));
        },
        pyb::arg("image_id"), "The position of the image with this id (KeyError when none has it).");
    ds.def(
        "write_coco", [](const py_dataset& d, const std::string& path) { snip::io::write_coco(d.ds, path); },
        pyb::arg("path"), "Writes the dataset as COCO instances JSON (snip::io::write_coco), atomically.");
    ds.def("__repr__", [](const py_dataset& d) {
        return snip::concat("Dataset(source='", d.ds.source, "', images=", d.ds.images.size(),
                            ", boxes=", d.ds.num_boxes(), ", categories=", d.ds.categories.size(), ")");
    });
    ds.def(pyb::pickle(
        [](const py_dataset& d) {
            pyb::list recs;
            for (const auto& r : d.ds.images) recs.append(record_state(r));
            return pyb::make_tuple(d.ds.source, categories_list(d.ds), recs);
        },
        [](const pyb::tuple& t) {
            auto d = std::make_shared<py_dataset>();
            d->ds.source = t[0].cast<std::string>();
            d->ds.categories = categories_of(t[1], "Dataset.__setstate__");
            for (pyb::handle r : t[2]) d->ds.images.push_back(record_from_state(r.cast<pyb::tuple>()));
            return d;
        }));

    m.def(
        "read_coco",
        [](const std::string& path, double border_tolerance) {
            auto d = std::make_shared<py_dataset>();
            snip::io::load_report rep;
            {
                release_gil nogil;
                d->ds = snip::io::read_coco(path, &rep, border_tolerance);
            }
            d->report = std::move(rep);
            return d;
        },
        pyb::arg("path"), pyb::arg("border_tolerance") = 1.0,
        R"doc(Reads COCO instances JSON (snip::io::read_coco) into a Dataset.

Boxes [x, y, w, h] become xyxy [x, y, x + w, y + h], continuous, original px; boxes
crossing the border by <= border_tolerance px are clipped. The Dataset's load_report
holds the counts and warnings. Any malformed input raises snip.Error naming the file,
the field path and the value. The GIL is released while reading.)doc");

    // ---------------------------------------------------------------- proposals
    pyb::class_<snip::image_proposals> ip(m, "ImageProposals", R"doc(Detector proposals of one image (snip::image_proposals).

boxes: (N, 4) float64 xyxy original px and scores: (N,) float32, read-only NumPy views on
the C++ memory (no copy), kept alive by the owner.)doc");
    ip.def(pyb::init([](const pyb::object& boxes, const pyb::object& scores) {
               return make_proposals(boxes, scores, "ImageProposals");
           }),
           pyb::arg("boxes"), pyb::arg("scores") = pyb::none(),
           "ImageProposals(boxes, scores=None): (N, 4) float32/float64 xyxy boxes (copied; finite, "
           "x1 <= x2, y1 <= y2) and N scores (default 1.0).");
    ip.def("__len__", [](const snip::image_proposals& p) { return p.boxes.size(); }, "The number of proposals.");
    ip.def_property_readonly(
        "boxes", [](const pyb::object& self) { return boxes_view_of(self.cast<const snip::image_proposals&>().boxes, self); },
        "(N, 4) float64 xyxy, original px: a read-only view (no copy).");
    ip.def_property_readonly(
        "scores", [](const pyb::object& self) { return view_of(self.cast<const snip::image_proposals&>().scores, self); },
        "(N,) float32 scores: a read-only view (no copy).");
    ip.def("__repr__", [](const snip::image_proposals& p) {
        return snip::concat("ImageProposals(", p.boxes.size(), " boxes)");
    });
    ip.def(pyb::pickle(
        [](const snip::image_proposals& p) {
            std::vector<snip::box<double>> b(p.boxes);
            return pyb::make_tuple(boxes_to_array(std::move(b)), array_copy(p.scores));
        },
        [](const pyb::tuple& t) { return make_proposals(t[0], t[1], "ImageProposals.__setstate__"); }));

    pyb::class_<py_proposals, std::shared_ptr<py_proposals>> pr(m, "Proposals", R"doc(Proposals of every image of a dataset, in the dataset's order.

len(p), p[i] (an ImageProposals sharing the memory, keeping this object alive), iteration.
Immutable from Python. Picklable.)doc");
    pr.def(pyb::init([](const pyb::object& per_image) {
               auto p = std::make_shared<py_proposals>();
               std::size_t i = 0;
               for (pyb::handle x : per_image) p->lists.push_back(proposals_item(x, i++));
               return p;
           }),
           pyb::arg("per_image"),
           R"doc(Proposals(per_image): one entry per image of the dataset, same order; each an
ImageProposals, a (boxes, scores) pair or a bare (N, 4) boxes array (scores 1.0).)doc");
    pr.def("__len__", [](const py_proposals& p) { return p.lists.size(); }, "The number of images.");
    pr.def(
        "__getitem__",
        [](const py_proposals& p, std::ptrdiff_t i) -> const snip::image_proposals& {
            return p.lists[index_of(i, p.lists.size(), "Proposals")];
        },
        pyb::return_value_policy::reference_internal, pyb::arg("index"),
        "The proposals of image `index` (negative: from the end), sharing this object's memory.");
    pr.def("__iter__", [](const pyb::object& self) {
        const auto& p = self.cast<const py_proposals&>();
        return pyb::iter(pyb::cast(p.lists, pyb::return_value_policy::reference_internal, self));
    }, "Iterates over the images' ImageProposals (sharing this object's memory).");
    pr.def_property_readonly(
        "num_boxes",
        [](const py_proposals& p) {
            std::size_t n = 0;
            for (const auto& l : p.lists) n += l.boxes.size();
            return n;
        },
        "Proposals of all images.");
    pr.def("__repr__", [](const py_proposals& p) {
        std::size_t n = 0;
        for (const auto& l : p.lists) n += l.boxes.size();
        return snip::concat("Proposals(images=", p.lists.size(), ", boxes=", n, ")");
    });
    pr.def(pyb::pickle(
        [](const py_proposals& p) {
            pyb::list l;
            for (const auto& x : p.lists) {
                std::vector<snip::box<double>> b(x.boxes);
                l.append(pyb::make_tuple(boxes_to_array(std::move(b)), array_copy(x.scores)));
            }
            return l;
        },
        [](const pyb::list& l) {
            auto p = std::make_shared<py_proposals>();
            std::size_t i = 0;
            for (pyb::handle x : l) p->lists.push_back(proposals_item(x, i++));
            return p;
        }));

    m.def(
        "read_proposals",
        [](const std::string& path, const py_dataset& d, double border_tolerance) {
            auto p = std::make_shared<py_proposals>();
            release_gil nogil;
            p->lists = snip::io::read_proposals(path, d.ds, border_tolerance);
            return p;
        },
        pyb::arg("path"), pyb::arg("dataset"), pyb::arg("border_tolerance") = 1.0,
        R"doc(Reads proposals in COCO results format, [{"image_id", "bbox": [x, y, w, h], "score"}]
or {"proposals": [...]} (snip::io::read_proposals): one ImageProposals per image of
`dataset`, same order, each in file order. snip.Error names the file, field and value.
The GIL is released while reading.)doc");
}

} // namespace snip::py
