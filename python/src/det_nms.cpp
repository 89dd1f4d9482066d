// det_nms.cpp: non-maximum suppression in snip._det: hard NMS (torchvision's), Soft-NMS
// (linear / Gaussian), per-class NMS and SNIPER's multi-scale merge.
#include "det_parts.hpp"

#include <snip/ops/batched_nms.hpp>
#include <snip/ops/merge.hpp>
#include <snip/ops/nms.hpp>
#include <snip/ops/soft_nms.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace snip::py {

namespace {

nms_algorithm algorithm_of(const std::string& s) {
    if (s == "auto") return nms_algorithm::automatic;
    if (s == "greedy") return nms_algorithm::greedy;
    if (s == "grid") return nms_algorithm::grid;
    if (s == "bitmask") return nms_algorithm::bitmask;
    bad_argument("algorithm", "expected 'auto', 'greedy', 'grid' or 'bitmask', got '", s, "'");
}

soft_nms_method method_of(const std::string& s) {
    if (s == "gaussian") return soft_nms_method::gaussian;
    if (s == "linear") return soft_nms_method::linear;
    bad_argument("method", "expected 'gaussian' or 'linear', got '", s, "'");
}

/// Class ids as int32 or int64 (what class_id_view takes): the caller's memory when the
/// array is one of those, contiguous; else a copy to int64 (any integer dtype, any stride).
struct class_ids {
    std::vector<std::int64_t> copy;
    std::span<const std::int32_t> narrow;
    std::span<const std::int64_t> wide;
    bool is_narrow = false;

    class_ids(const pyb::array& a, std::ptrdiff_t n, const char* what) {
        if (!is_integer_dtype(a)) bad_argument(what, "expected an integer array, got a ", describe(a));
        if (a.ndim() != 1 || a.shape(0) != n)
            bad_argument(what, "expected a 1-D array of ", n, " elements (one per box), got a ", describe(a));
        const auto len = static_cast<std::size_t>(n);
        const bool unit = len <= 1 || a.strides(0) == static_cast<pyb::ssize_t>(a.itemsize());
        if (unit && has_dtype<std::int32_t>(a)) {
            narrow = {static_cast<const std::int32_t*>(a.data()), len};
            is_narrow = true;
        } else if (unit && has_dtype<std::int64_t>(a)) {
            wide = {static_cast<const std::int64_t*>(a.data()), len};
        } else {
            copy = integers_of(a, n, what);
            wide = {copy.data(), len};
        }
    }
    class_id_view view() const {
        if (is_narrow) return class_id_view(narrow);
        return class_id_view(wide);
    }
};

pyb::array indices(std::vector<std::int64_t>&& v) {
    const auto n = static_cast<pyb::ssize_t>(v.size());
    return to_array(std::move(v), {n});
}

/// What merge_multiscale returns.
struct merged_result {
    pyb::array index, boxes, scores, labels, scales;
};

} // namespace

void bind_det_nms(pyb::module_& m) {
    m.def(
        "nms",
        [](const pyb::array& boxes, const pyb::array& scores, double iou_threshold,
           const std::optional<std::int64_t>& max_out, const std::string& convention,
           const std::string& algorithm, unsigned threads) {
            nms_options o;
            o.max_out = limit_of(max_out, "max_out");
            o.convention = convention_of(convention);
            o.algorithm = algorithm_of(algorithm);
            o.threads = threads;
            return with_boxes(boxes, "boxes", [&](auto b) {
                using T = typename decltype(b)::value_type;
                std::vector<T> tmp;
                const auto s = contiguous_vector<T>(scores, b.size(), "scores", tmp);
                std::vector<std::int64_t> keep;
                {
                    release_gil nogil;
                    keep = snip::nms(b, s, iou_threshold, o);
                }
                return indices(std::move(keep));
            });
        },
        pyb::arg("boxes"), pyb::arg("scores"), pyb::arg("iou_threshold"), pyb::kw_only(),
        pyb::arg("max_out") = pyb::none(), pyb::arg("convention") = "continuous",
        pyb::arg("algorithm") = "auto", pyb::arg("threads") = 0u,
        R"doc(Hard NMS, equal to torchvision.ops.nms: int64 indices of the kept boxes by decreasing score.

Equal scores: lower index first. A box is dropped when its IoU with a kept, higher-ranked
box is > iou_threshold (strictly, compared as a double). boxes: (N, 4) float32/float64
(any strides, x1 <= x2, y1 <= y2); scores: (N,) of the same dtype. max_out keeps at most
that many; 'inclusive' adds one pixel per side; algorithm ('auto', 'greedy', 'grid',
'bitmask') changes only the speed. Raises snip.Error on a NaN score or a NaN / infinite
coordinate (naming the box) or a NaN threshold.)doc");

    m.def(
        "soft_nms",
        [](const pyb::array& boxes, const pyb::array& scores, const std::string& method, double sigma,
           double iou_threshold, double score_threshold, const std::optional<std::int64_t>& max_out,
           const std::string& convention) {
            soft_nms_options o;
            o.method = method_of(method);
            o.sigma = sigma;
            o.iou_threshold = iou_threshold;
            o.score_threshold = score_threshold;
            o.max_out = limit_of(max_out, "max_out");
            o.convention = convention_of(convention);
            return with_boxes(boxes, "boxes", [&](auto b) {
                using T = typename decltype(b)::value_type;
                std::vector<T> tmp;
                const auto s = contiguous_vector<T>(scores, b.size(), "scores", tmp);
                soft_nms_result<T> r;
                {
                    release_gil nogil;
                    r = snip::soft_nms(b, s, o);
                }
                const auto n = static_cast<pyb::ssize_t>(r.keep.size());
                return pyb::make_tuple(to_array(std::move(r.keep), {n}), to_array(std::move(r.scores), {n}));
            });
        },
        pyb::arg("boxes"), pyb::arg("scores"), pyb::kw_only(), pyb::arg("method") = "gaussian",
        pyb::arg("sigma") = 0.5, pyb::arg("iou_threshold") = 0.3, pyb::arg("score_threshold") = 0.001,
        pyb::arg("max_out") = pyb::none(), pyb::arg("convention") = "continuous",
        R"doc(Soft-NMS (Bodla et al. 2017): (keep, kept_scores), int64 indices in selection order and
the scores they had when selected (non-increasing, the dtype of the boxes).

Boxes with score < score_threshold are dropped first. Then, repeatedly, the alive box with
the highest current score is selected (equal scores: lower index first) and every other
alive box's score s becomes, with o = IoU(selected, box) in the boxes' dtype,
  'linear':   s = (1 - o if o > iou_threshold else 1) * s
  'gaussian': s = exp(-(o * o) / sigma) * s
and the box is dropped when s < score_threshold. boxes: (N, 4) float32/float64 (any
strides); scores: (N,) of the same dtype.)doc");

    m.def(
        "batched_nms",
        [](const pyb::array& boxes, const pyb::array& scores, const pyb::array& classes,
           double iou_threshold, const std::optional<std::int64_t>& max_out,
           const std::string& convention, const std::string& algorithm) {
            nms_options o;
            o.max_out = limit_of(max_out, "max_out");
            o.convention = convention_of(convention);
            o.algorithm = algorithm_of(algorithm);
            return with_boxes(boxes, "boxes", [&](auto b) {
                using T = typename decltype(b)::value_type;
                std::vector<T> tmp;
                const auto s = contiguous_vector<T>(scores, b.size(), "scores", tmp);
                const class_ids ids(classes, b.size(), "classes");
                std::vector<std::int64_t> keep;
                {
                    release_gil nogil;
                    keep = snip::batched_nms(b, s, ids.view(), iou_threshold, o);
                }
                return indices(std::move(keep));
            });
        },
        pyb::arg("boxes"), pyb::arg("scores"), pyb::arg("classes"), pyb::arg("iou_threshold"),
        pyb::kw_only(), pyb::arg("max_out") = pyb::none(), pyb::arg("convention") = "continuous",
        pyb::arg("algorithm") = "auto",
        R"doc(Per-class NMS (torchvision.ops.batched_nms): NMS runs on the boxes of each class id
independently; the kept int64 indices of all classes come merged by decreasing score
(equal scores: lower index first). classes: (N,) integers (any values, negative too).)doc");

    pyb::class_<merged_result>(m, "MergedDetections", pyb::module_local(),
                               "Merged detections of one image by decreasing score; row r of "
                               "every array belongs to the same detection.")
        .def_readonly("index", &merged_result::index, "(D,) int64: the input detection index.")
        .def_readonly("boxes", &merged_result::boxes, "(D, 4): its box (unchanged).")
        .def_readonly("scores", &merged_result::scores, "(D,): its score after Soft-NMS.")
        .def_readonly("labels", &merged_result::labels, "(D,) int64: its class id.")
        .def_readonly("scales", &merged_result::scales, "(D,) int32: its scale index.")
        .def("__len__", [](const merged_result& r) { return r.index.shape(0); }, "The number kept.")
        .def("__repr__", [](const merged_result& r) {
            return snip::concat("MergedDetections(", r.index.shape(0), " detections)");
        });

    m.def(
        "merge_multiscale",
        [](const pyb::array& boxes, const pyb::array& scores, const pyb::array& classes,
           const pyb::array& scales, const std::string& preset,
           const std::optional<std::vector<std::pair<double, double>>>& ranges,
           const std::optional<double>& sigma, const std::optional<double>& score_threshold,
           const std::optional<std::int64_t>& max_per_image, const std::optional<std::string>& convention,
           const std::optional<bool>& sniper_compatible) {
            multiscale_merge_options o;
            if (preset == "sniper_coco") o = multiscale_merge_options::sniper_coco();
            else if (preset != "default")
                bad_argument("preset", "expected 'default' or 'sniper_coco', got '", preset, "'");
            if (ranges) {
                o.ranges.clear();
                for (const auto& [lo, hi] : *ranges) o.ranges.push_back({lo, hi});
            }
            if (sigma) o.sigma = *sigma;
            if (score_threshold) o.score_threshold = *score_threshold;
            if (max_per_image) o.max_per_image = limit_of(*max_per_image, "max_per_image");
            if (convention) o.convention = convention_of(*convention);
            if (sniper_compatible) o.sniper_compatible = *sniper_compatible;
            return with_boxes(boxes, "boxes", [&](auto b) {
                using T = typename decltype(b)::value_type;
                std::vector<T> tmp;
                const auto s = contiguous_vector<T>(scores, b.size(), "scores", tmp);
                const class_ids ids(classes, b.size(), "classes");
                const auto sc64 = integers_of(scales, b.size(), "scales");
                std::vector<int> sc(sc64.size());
                for (std::size_t i = 0; i < sc64.size(); ++i) {
                    if (sc64[i] < 0 || sc64[i] >= static_cast<std::int64_t>(o.ranges.size()))
                        bad_argument("scales", "entry ", i, " is ", sc64[i], " but ", o.ranges.size(),
                                     " valid ranges are given");
                    sc[i] = static_cast<int>(sc64[i]);
                }
                merged_detections<T> r;
                {
                    release_gil nogil;
                    r = snip::merge_multiscale(b, s, ids.view(), std::span<const int>(sc), o);
                }
                merged_result out;
                const auto n = static_cast<pyb::ssize_t>(r.index.size());
                std::vector<std::int32_t> scl(r.scales.begin(), r.scales.end());
                out.index = to_array(std::move(r.index), {n});
                out.boxes = boxes_to_array(std::move(r.boxes));
                out.scores = to_array(std::move(r.scores), {n});
                out.labels = to_array(std::move(r.labels), {n});
                out.scales = to_array(std::move(scl), {n});
                return out;
            });
        },
        pyb::arg("boxes"), pyb::arg("scores"), pyb::arg("classes"), pyb::arg("scales"), pyb::kw_only(),
        pyb::arg("preset") = "default", pyb::arg("ranges") = pyb::none(), pyb::arg("sigma") = pyb::none(),
        pyb::arg("score_threshold") = pyb::none(), pyb::arg("max_per_image") = pyb::none(),
        pyb::arg("convention") = pyb::none(), pyb::arg("sniper_compatible") = pyb::none(),
        R"doc(SNIPER's multi-scale merge of ONE image's detections from all test scales: a MergedDetections.

boxes: (N, 4) float32/float64 in ORIGINAL image pixels; scores: (N,) of the same dtype;
classes: (N,) integer class ids; scales: (N,) integer scale index (0 = finest) selecting
ranges[scale]. A detection is kept when sqrt(w * h) is inside its scale's valid range
(lo <= size < hi, -1 open); the kept detections are pooled per class (scale, then index
order), Gaussian Soft-NMS runs per class (sigma, score_threshold, convention), and the
max_per_image best over all classes are returned by decreasing score (ties: lower class,
then selection order).
preset 'default' (ranges (-1, 90), (32, 180), (75, -1); sigma 0.55; score_threshold 0.001;
200 per image; continuous) or 'sniper_coco' (the same with inclusive widths and the
original code's range test, empty-group fallback and tie-inclusive cut); any option given
overrides the preset's. max_per_image None keeps the preset's.)doc");
}

} // namespace snip::py
