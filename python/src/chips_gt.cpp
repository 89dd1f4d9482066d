// chips_gt.cpp: the ground truth of one chip in snip._chips: GtState (an IntEnum of
// snip::gt_state), ChipGT and assign_chip.
#include "chips_parts.hpp"

#include <snip/core/gt_state.hpp>
#include <snip/sniper/chip_gt.hpp>

namespace snip::py {

namespace {

/// assign_chip's result as three NumPy arrays (each owns its memory, moved from C++).
struct chip_gt_arrays {
    pyb::array boxes, index, state;
};

} // namespace

void bind_chips_gt(pyb::module_& m) {
    static_assert(static_cast<int>(snip::gt_state::valid) == 0 && static_cast<int>(snip::gt_state::invalid) == 1 &&
                  static_cast<int>(snip::gt_state::crowd) == 2);
    pyb::object int_enum = pyb::module_::import("enum").attr("IntEnum");
    pyb::object gt_state = int_enum(
        "GtState", pyb::make_tuple(pyb::make_tuple("VALID", static_cast<int>(snip::gt_state::valid)),
                                   pyb::make_tuple("INVALID", static_cast<int>(snip::gt_state::invalid)),
                                   pyb::make_tuple("CROWD", static_cast<int>(snip::gt_state::crowd))));
    gt_state.attr("__module__") = m.attr("__name__");
    gt_state.attr("__qualname__") = "GtState";
    gt_state.attr("__doc__") =
        "What a ground-truth box is to the detector trained on a chip (snip::gt_state): VALID (0) "
        "assigned to the chip, a training target; INVALID (1) visible but out of the chip's scale "
        "range or not assigned to it: anchors overlapping it are ignored; CROWD (2) a crowd / ignore "
        "region.";
    m.attr("GtState") = gt_state;
    m.attr("GT_VALID") = static_cast<int>(snip::gt_state::valid);
    m.attr("GT_INVALID") = static_cast<int>(snip::gt_state::invalid);
    m.attr("GT_CROWD") = static_cast<int>(snip::gt_state::crowd);

    pyb::class_<chip_gt_arrays>(m, "ChipGT", R"doc(The ground truth of one chip (assign_chip's result).

boxes: (K, 4) float32 xyxy in CHIP pixels (origin at the chip's top-left corner, scaled,
clipped to the chip); index: (K,) int32 index of each box in the image's list; state:
(K,) uint8 GtState values (GT_VALID, GT_INVALID, GT_CROWD). len() is K.)doc")
        .def_readonly("boxes", &chip_gt_arrays::boxes, "(K, 4) float32 boxes in chip pixels.")
        .def_readonly("index", &chip_gt_arrays::index, "(K,) int32 index of each box in the image.")
        .def_readonly("state", &chip_gt_arrays::state, "(K,) uint8 GtState of each box.")
        .def("__len__", [](const chip_gt_arrays& g) { return g.index.shape(0); }, "The number of boxes, K.")
        .def("__repr__", [](const chip_gt_arrays& g) { return snip::concat("ChipGT(", g.index.shape(0), " boxes)"); });

    m.def(
        "assign_chip",
        [](const snip::plan_config& cfg, const snip::chip& c, int width, int height, const pyb::object& boxes,
           const pyb::object& crowd, double min_size) {
            const pyb::array a = boxes_arg(boxes, "assign_chip: boxes");
            std::vector<snip::chip_gt> gt = with_boxes(a, "assign_chip: boxes", [&](auto v) {
                const auto flags = flags_of(crowd, v.size(), "assign_chip: crowd");
                snip::assign_options o;
                o.min_size = min_size;
                release_gil nogil;
                return snip::assign_chip(cfg, c, width, height, v, flags, o);
            });
            const auto k = static_cast<pyb::ssize_t>(gt.size());
            std::vector<snip::box<float>> b(gt.size());
            std::vector<std::int32_t> idx(gt.size());
            std::vector<std::uint8_t> st(gt.size());
            for (std::size_t i = 0; i < gt.size(); ++i) {
                b[i] = gt[i].b;
                idx[i] = gt[i].index;
                st[i] = static_cast<std::uint8_t>(gt[i].state);
            }
            return chip_gt_arrays{boxes_to_array(std::move(b)), to_array(std::move(idx), {k}),
                                  to_array(std::move(st), {k})};
        },
        pyb::arg("cfg"), pyb::arg("chip"), pyb::arg("width"), pyb::arg("height"), pyb::arg("boxes"),
        pyb::arg("crowd") = pyb::none(), pyb::arg("min_size") = 10.0,
        R"doc(The ground truth of chip `chip` of a `width` x `height` image (snip::assign_chip) -> ChipGT.

Every box (xyxy continuous ORIGINAL px, (N, 4) float32/float64, any strides, read without
copying) converted to the plan's convention, scaled by the chip's factor, shifted to its
corner and clipped to it; boxes whose clipped width or height is below min_size (chip px)
are dropped. A box in chip.boxes is GT_VALID, a crowd box GT_CROWD, any other visible
box GT_INVALID. snip.Error for a chip of another config, bad boxes or min_size < 0.)doc");
}

} // namespace snip::py
