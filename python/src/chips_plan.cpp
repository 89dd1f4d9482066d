// chips_plan.cpp: chip plans in snip._chips: Chip, ScalePlan, ImagePlan, ImageChipsPlan,
// plan_image, plan_dataset, mine_negatives, sample_negatives, and the no-copy probe
// _box_view_info. Boxes come in as NumPy arrays of any strides, read without a copy.
#include "chips_parts.hpp"

#include <snip/sniper/dataset_plan.hpp>
#include <snip/sniper/negatives.hpp>

#include <exception>

namespace snip::py {

namespace {

using snip::chip;

snip::box<int> rect_of(const pyb::object& r) {
    if (!pyb::isinstance<pyb::sequence>(r) || pyb::len(r) != 4)
        throw pyb::type_error(snip::concat("Chip: rect is ", pyb::repr(r).cast<std::string>(),
                                           ", expected (x1, y1, x2, y2) integers"));
    const auto s = pyb::reinterpret_borrow<pyb::sequence>(r);
    snip::box<int> b{s[0].cast<int>(), s[1].cast<int>(), s[2].cast<int>(), s[3].cast<int>()};
    snip::require(b.x2 >= b.x1 && b.y2 >= b.y1, "Chip: rect is (", b.x1, ", ", b.y1, ", ", b.x2, ", ", b.y2,
                  "), must have x1 <= x2 and y1 <= y2");
    return b;
}

chip make_chip(int scale, double factor, const pyb::object& rect, const pyb::object& boxes,
               const pyb::object& proposals) {
    snip::require(scale >= 0, "Chip: scale must be >= 0, got ", scale);
    snip::require(std::isfinite(factor) && factor > 0, "Chip: factor must be a finite number > 0, got ", factor);
    chip c;
    c.scale = scale;
    c.factor = factor;
    c.rect = rect_of(rect);
    c.boxes = ints_of(boxes, "Chip: boxes");
    c.proposals = ints_of(proposals, "Chip: proposals");
    return c;
}

pyb::tuple rect_tuple(const snip::box<int>& r) { return pyb::make_tuple(r.x1, r.y1, r.x2, r.y2); }

pyb::tuple chip_state(const chip& c) {
    return pyb::make_tuple(c.scale, c.factor, rect_tuple(c.rect), c.boxes, c.proposals);
}
chip chip_from_state(pyb::handle h) {
    const auto t = h.cast<pyb::tuple>();
    chip c;
    c.scale = t[0].cast<int>();
    c.factor = t[1].cast<double>();
    c.rect = rect_of(t[2]);
    c.boxes = t[3].cast<std::vector<int>>();
    c.proposals = t[4].cast<std::vector<int>>();
    return c;
}

pyb::list chip_states(const std::vector<chip>& v) {
    pyb::list l;
    for (const auto& c : v) l.append(chip_state(c));
    return l;
}
std::vector<chip> chips_from_states(pyb::handle h) {
    std::vector<chip> v;
    for (pyb::handle x : h) v.push_back(chip_from_state(x));
    return v;
}

pyb::tuple plan_state(const snip::image_plan& p) {
    pyb::list scales;
    for (const auto& s : p.scales)
        scales.append(pyb::make_tuple(s.size.factor, s.size.width, s.size.height, s.valid, s.uncoverable));
    return pyb::make_tuple(scales, chip_states(p.positives), p.outside, p.valid_nowhere);
}
snip::image_plan plan_from_state(pyb::handle h) {
    const auto t = h.cast<pyb::tuple>();
    snip::image_plan p;
    for (pyb::handle x : t[0]) {
        const auto s = x.cast<pyb::tuple>();
        snip::scale_plan sp;
        sp.size = {s[0].cast<double>(), s[1].cast<int>(), s[2].cast<int>()};
        sp.valid = s[3].cast<std::vector<int>>();
        sp.uncoverable = s[4].cast<std::vector<int>>();
        p.scales.push_back(std::move(sp));
    }
    p.positives = chips_from_states(t[1]);
    p.outside = t[2].cast<std::vector<int>>();
    p.valid_nowhere = t[3].cast<std::vector<int>>();
    return p;
}

std::string chip_repr(const chip& c) {
    return snip::concat("Chip(scale=", c.scale, ", factor=", c.factor, ", rect=(", c.rect.x1, ", ", c.rect.y1, ", ",
                        c.rect.x2, ", ", c.rect.y2, "), boxes=", c.boxes.size(), ", proposals=",
                        c.proposals.size(), ")");
}

/// A list of references to chips of a vector owned by `owner` (each keeps it alive).
pyb::list chip_refs(const std::vector<const chip*>& chips, pyb::handle owner) {
    pyb::list l;
    for (const chip* c : chips) l.append(pyb::cast(c, pyb::return_value_policy::reference_internal, owner));
    return l;
}

} // namespace

void bind_chips_plan(pyb::module_& m) {
    // ---------------------------------------------------------------- Chip
    pyb::class_<chip> ch(m, "Chip", R"doc(One chip of a plan (snip::chip).

scale: index into the config's scales; factor: that scale's resize factor for the image;
rect: (x1, y1, x2, y2) ints in SCALED pixels, a closed interval in the plan's convention;
boxes: int32 indices of the ground-truth boxes assigned to the chip (a negative chip: the
ground-truth mining candidates it counted, usually none); proposals: int32 indices of the
proposals a negative chip counted (empty for positives). The arrays are read-only views
on the chip's memory (no copy). Chips are immutable; equal when every field is equal.
Picklable.)doc");
    ch.def(pyb::init(&make_chip), pyb::arg("scale"), pyb::arg("factor"), pyb::arg("rect"),
           pyb::arg("boxes") = pyb::none(), pyb::arg("proposals") = pyb::none(),
           "Chip(scale, factor, rect, boxes=None, proposals=None): a chip made by hand (rect: 4 ints).");
    ch.def_property_readonly("scale", [](const chip& c) { return c.scale; }, "Scale index.");
    ch.def_property_readonly("factor", [](const chip& c) { return c.factor; }, "Resize factor of its scale.");
    ch.def_property_readonly("rect", [](const chip& c) { return rect_tuple(c.rect); },
                             "(x1, y1, x2, y2), scaled px, closed interval in the plan's convention.");
    ch.def_property_readonly(
        "boxes", [](const pyb::object& self) { return view_of(self.cast<const chip&>().boxes, self); },
        "(K,) int32 ground-truth indices assigned to the chip: a read-only view (no copy).");
    ch.def_property_readonly(
        "proposals", [](const pyb::object& self) { return view_of(self.cast<const chip&>().proposals, self); },
        "(P,) int32 proposal indices a negative chip counted: a read-only view (no copy).");
    ch.def(
        "original", [](const chip& c) {
            const auto b = c.original();
            return pyb::make_tuple(b.x1, b.y1, b.x2, b.y2);
        },
        "The chip in ORIGINAL pixels, rect / factor, as (x1, y1, x2, y2) floats.");
    ch.def("__eq__", [](const chip& a, const chip& b) {
        return a.scale == b.scale && a.factor == b.factor && a.rect == b.rect && a.boxes == b.boxes &&
               a.proposals == b.proposals;
    });
    ch.def("__eq__", [](const chip&, const pyb::handle&) {
        return pyb::reinterpret_borrow<pyb::object>(Py_NotImplemented);
    });
    ch.attr("__hash__") = pyb::none();
    ch.def("__repr__", &chip_repr);
    ch.def(pyb::pickle([](const chip& c) { return chip_state(c); },
                       [](const pyb::tuple& t) { return chip_from_state(t); }));

    // ---------------------------------------------------------------- ScalePlan
    pyb::class_<snip::scale_plan>(m, "ScalePlan", R"doc(The plan of one scale of one image (snip::scale_plan).

factor, width, height: the image at this scale (scaled px, truncated); valid: int32
indices of the boxes valid at this scale; uncoverable: valid boxes no candidate chip can
contain. Arrays are read-only views (no copy).)doc")
        .def_property_readonly("factor", [](const snip::scale_plan& s) { return s.size.factor; }, "Resize factor.")
        .def_property_readonly("width", [](const snip::scale_plan& s) { return s.size.width; }, "Scaled width, px.")
        .def_property_readonly("height", [](const snip::scale_plan& s) { return s.size.height; }, "Scaled height, px.")
        .def_property_readonly(
            "valid", [](const pyb::object& self) { return view_of(self.cast<const snip::scale_plan&>().valid, self); },
            "(V,) int32 indices of the boxes valid at this scale (read-only view).")
        .def_property_readonly(
            "uncoverable",
            [](const pyb::object& self) { return view_of(self.cast<const snip::scale_plan&>().uncoverable, self); },
            "(U,) int32 valid boxes no candidate chip can contain (read-only view).")
        .def("__repr__", [](const snip::scale_plan& s) {
            return snip::concat("ScalePlan(factor=", s.size.factor, ", width=", s.size.width, ", height=",
                                s.size.height, ", valid=", s.valid.size(), ", uncoverable=", s.uncoverable.size(), ")");
        });

    // ---------------------------------------------------------------- ImagePlan
    pyb::class_<snip::image_plan>(m, "ImagePlan", R"doc(The positive chips of one image at every scale (snip::image_plan).

scales: one ScalePlan per config scale; positives: the positive Chips (by scale, in cover
order); outside: int32 indices of the boxes (not crowd) entirely outside the image;
valid_nowhere: boxes (not crowd, not outside) valid at no scale. Elements and arrays
share the plan's memory and keep it alive. Picklable.)doc")
        .def_property_readonly(
            "scales", [](const snip::image_plan& p) -> const std::vector<snip::scale_plan>& { return p.scales; },
            pyb::return_value_policy::reference_internal, "One ScalePlan per scale.")
        .def_property_readonly(
            "positives", [](const snip::image_plan& p) -> const std::vector<chip>& { return p.positives; },
            pyb::return_value_policy::reference_internal, "The positive chips.")
        .def_property_readonly(
            "outside", [](const pyb::object& self) { return view_of(self.cast<const snip::image_plan&>().outside, self); },
            "(K,) int32 boxes entirely outside the image (read-only view).")
        .def_property_readonly(
            "valid_nowhere",
            [](const pyb::object& self) { return view_of(self.cast<const snip::image_plan&>().valid_nowhere, self); },
            "(K,) int32 boxes valid at no scale (read-only view).")
        .def("__repr__", [](const snip::image_plan& p) {
            return snip::concat("ImagePlan(scales=", p.scales.size(), ", positives=", p.positives.size(),
                                ", outside=", p.outside.size(), ", valid_nowhere=", p.valid_nowhere.size(), ")");
        })
        .def(pyb::pickle([](const snip::image_plan& p) { return plan_state(p); },
                         [](const pyb::tuple& t) { return plan_from_state(t); }));

    // ---------------------------------------------------------------- ImageChipsPlan
    pyb::class_<snip::image_chips_plan>(m, "ImageChipsPlan", R"doc(One image's chips for one epoch (snip::image_chips_plan).

plan: the ImagePlan (positives); negatives: every negative Chip mined (empty without
proposals); sampled: int32 indices into negatives used this epoch (read-only view).
chips() lists what an epoch trains on, in the trainer's order. Picklable.)doc")
        .def_property_readonly(
            "plan", [](const snip::image_chips_plan& p) -> const snip::image_plan& { return p.plan; },
            pyb::return_value_policy::reference_internal, "The positive plan (ImagePlan).")
        .def_property_readonly(
            "positives", [](const snip::image_chips_plan& p) -> const std::vector<chip>& { return p.plan.positives; },
            pyb::return_value_policy::reference_internal, "plan.positives.")
        .def_property_readonly(
            "negatives", [](const snip::image_chips_plan& p) -> const std::vector<chip>& { return p.negatives; },
            pyb::return_value_policy::reference_internal, "Every negative chip mined.")
        .def_property_readonly(
            "sampled",
            [](const pyb::object& self) { return view_of(self.cast<const snip::image_chips_plan&>().sampled, self); },
            "(S,) int32 indices into negatives sampled this epoch, increasing (read-only view).")
        .def(
            "chips",
            [](const pyb::object& self, bool negatives) {
                const auto& p = self.cast<const snip::image_chips_plan&>();
                std::vector<const chip*> v;
                for (const auto& c : p.plan.positives) v.push_back(&c);
                if (negatives)
                    for (int s : p.sampled) {
                        snip::require(s >= 0 && static_cast<std::size_t>(s) < p.negatives.size(),
                                      "ImageChipsPlan.chips: sampled negative ", s, " of ", p.negatives.size());
                        v.push_back(&p.negatives[static_cast<std::size_t>(s)]);
                    }
                return chip_refs(v, self);
            },
            pyb::arg("negatives") = true,
            R"doc(The chips an epoch trains on, in the order of the trainer's chip jobs
(snip::train::make_chip_jobs before shuffling): every positive, then the sampled negatives
in the order of `sampled`. negatives=False: the positives only.)doc")
        .def("__repr__", [](const snip::image_chips_plan& p) {
            return snip::concat("ImageChipsPlan(positives=", p.plan.positives.size(), ", negatives=",
                                p.negatives.size(), ", sampled=", p.sampled.size(), ")");
        })
        .def(pyb::pickle(
            [](const snip::image_chips_plan& p) {
                return pyb::make_tuple(plan_state(p.plan), chip_states(p.negatives), p.sampled);
            },
            [](const pyb::tuple& t) {
                snip::image_chips_plan p;
                p.plan = plan_from_state(t[0]);
                p.negatives = chips_from_states(t[1]);
                p.sampled = t[2].cast<std::vector<int>>();
                return p;
            }));

    // ---------------------------------------------------------------- functions
    m.def(
        "plan_image",
        [](const snip::plan_config& cfg, int width, int height, const pyb::object& boxes, const pyb::object& crowd,
           int stride) {
            const pyb::array a = boxes_arg(boxes, "plan_image: boxes");
            return with_boxes(a, "plan_image: boxes", [&](auto v) {
                const auto flags = flags_of(crowd, v.size(), "plan_image: crowd");
                release_gil nogil;
                return snip::plan_image(cfg, width, height, v, flags, thread_workspace(), stride);
            });
        },
        pyb::arg("cfg"), pyb::arg("width"), pyb::arg("height"), pyb::arg("boxes"), pyb::arg("crowd") = pyb::none(),
        pyb::arg("stride") = 0,
        R"doc(Plans the positive chips of one image (snip::plan_image) -> ImagePlan.

boxes: (N, 4) float32 or float64 xyxy, continuous, ORIGINAL px, of any strides (a column
slice, every other row, Fortran order): read in place, never copied or cast; other
dtypes and shapes raise ValueError naming the argument. Lists are converted to float64.
crowd: optional N flags (crowd / ignore regions never drive a chip). stride: the
candidate stride of the epoch, 0 = cfg.epoch_stride(0, 0). Raises snip.Error for a bad
config, size or box (NaN, x2 < x1), naming the value. The GIL is released while planning.)doc");

    m.def(
        "plan_dataset",
        [](const snip::plan_config& cfg, const py_dataset& d, const std::shared_ptr<py_proposals>& proposals,
           std::uint64_t seed, int epoch, unsigned threads, bool mine_ground_truth, const pyb::object& progress) {
            snip::dataset_plan_options o;
            o.seed = seed;
            o.epoch = epoch;
            o.threads = threads;
            o.mine_ground_truth = mine_ground_truth;
            std::exception_ptr callback_error;
            if (!progress.is_none()) o.progress = progress_callback(progress, callback_error);
            std::vector<snip::image_chips_plan> plans;
            {
                release_gil nogil;
                plans = snip::plan_dataset(cfg, d.ds, proposals ? &proposals->lists : nullptr, o);
            }
            if (callback_error) std::rethrow_exception(callback_error);
            return plans;
        },
        pyb::arg("cfg"), pyb::arg("dataset"), pyb::arg("proposals").none(true) = pyb::none(), pyb::arg("seed") = 0,
        pyb::arg("epoch") = 0, pyb::arg("threads") = 0, pyb::arg("mine_ground_truth") = true,
        pyb::arg("progress") = pyb::none(),
        R"doc(Plans one epoch of a dataset (snip::plan_dataset) -> list of ImageChipsPlan, one per image.

Positive chips of every image and, with `proposals` (Proposals, one entry per image), the
mined and sampled negative chips; the stride is cfg.epoch_stride(seed, epoch) and the
negative sample is seeded by (seed, epoch, image id). mine_ground_truth: count ground
truth among the mining candidates, as the original. threads: 0 = all cores; the result
does not depend on it. progress: optional callable(done, total), called on this thread.
The same plan as `snip-chips plan` with the same options. The GIL is released.)doc");

    m.def(
        "mine_negatives",
        [](const snip::plan_config& cfg, int width, int height, const snip::image_plan& plan,
           const pyb::object& proposals, const pyb::object& gt, int stride) {
            const pyb::array pa = boxes_arg(proposals, "mine_negatives: proposals");
            const pyb::array ga = gt.is_none() ? pyb::array(pyb::dtype::of<double>(), std::vector<pyb::ssize_t>{0, 4})
                                               : boxes_arg(gt, "mine_negatives: gt");
            return with_boxes(pa, "mine_negatives: proposals", [&](auto pv) {
                return with_boxes(ga, "mine_negatives: gt", [&](auto gv) {
                    release_gil nogil;
                    return snip::mine_negatives(cfg, width, height, plan, pv, gv, thread_workspace(), stride);
                });
            });
        },
        pyb::arg("cfg"), pyb::arg("width"), pyb::arg("height"), pyb::arg("plan"), pyb::arg("proposals"),
        pyb::arg("gt") = pyb::none(), pyb::arg("stride") = 0,
        R"doc(Negative chips of one image, before sampling (snip::mine_negatives) -> list of Chip.

plan: the image's ImagePlan (same config, size and stride). proposals, gt: (N, 4)
float32/float64 xyxy original px, any strides, read without copying; gt (the image's
ground truth) joins the mining candidates as the original does (None: proposals only).
A chip is kept when it counts more than min_proposals_finest (finest scale) or
min_proposals_other candidates; its `proposals` lists the proposal indices, its `boxes`
the ground-truth indices. stride as in plan_image.)doc");

    m.def(
        "sample_negatives",
        [](std::size_t available, int count, std::uint64_t seed, int epoch, std::int64_t image_id) {
            auto v = snip::sample_negatives(available, count, seed, epoch, image_id);
            const auto n = static_cast<pyb::ssize_t>(v.size());
            return to_array(std::move(v), {n});
        },
        pyb::arg("available"), pyb::arg("count"), pyb::arg("seed"), pyb::arg("epoch"), pyb::arg("image_id"),
        R"doc(This epoch's negative chips of one image (snip::sample_negatives): `count` of
`available` without replacement, seeded by (seed, epoch, image id), as an increasing
int32 array; all of them when available <= count.)doc");
}

void bind_chips_testing(pyb::module_& m) {
    m.def(
        "_box_view_info",
        [](const pyb::object& boxes) {
            const pyb::array a = boxes_arg(boxes, "_box_view_info: boxes");
            return with_boxes(a, "_box_view_info: boxes", [](auto v) {
                return pyb::make_tuple(reinterpret_cast<std::uintptr_t>(v.data_handle()), v.size(), v.stride(0),
                                       v.stride(1));
            });
        },
        pyb::arg("boxes"),
        "Test support: (data address, N, row stride, column stride) (strides in elements) of the "
        "box view the module builds from an (N, 4) float32/float64 array, without copying.");
}

} // namespace snip::py
