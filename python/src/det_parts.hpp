// det_parts.hpp: the parts of snip._det, one function per file (det_*.cpp), and the
// argument helpers they share (pixel conventions by name, ground truth states, score
// vectors, integer id arrays, dtype arguments).
#pragma once

#include "common.hpp"

#include <snip/core/box.hpp>
#include <snip/core/gt_state.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace snip::py {

/// Calls every det_*.cpp's binder (det_parts.cpp).
void bind_det_parts(pybind11::module_& m);

/// AnchorConfig, legacy/continuous_anchor_templates, grid_anchors, anchors_inside
/// (det_anchors.cpp)
void bind_det_anchors(pybind11::module_& m);
/// encode_boxes, decode_boxes, clip_boxes, iou_matrix (det_boxes.cpp)
void bind_det_boxes(pybind11::module_& m);
/// rpn_labels, assign_rpn, sample_labels, rcnn_targets (det_targets.cpp)
void bind_det_targets(pybind11::module_& m);
/// nms, soft_nms, batched_nms, merge_multiscale (det_nms.cpp)
void bind_det_nms(pybind11::module_& m);
/// CocoGroundTruth, CocoEvalResult, evaluate_coco, evaluate_coco_file (det_eval.cpp)
void bind_det_eval(pybind11::module_& m);

/// "continuous" or "inclusive" -> pixel_convention; anything else raises ValueError
/// naming `what`.
inline pixel_convention convention_of(const std::string& s, const char* what = "convention") {
    if (s == "continuous") return pixel_convention::continuous;
    if (s == "inclusive") return pixel_convention::inclusive;
    bad_argument(what, "expected 'continuous' or 'inclusive', got '", s, "'");
}


/// True for a NumPy integer dtype (signed or unsigned, any size; not bool).
inline bool is_integer_dtype(const pyb::array& a) {
    const char k = a.dtype().kind();
    return k == 'i' || k == 'u';
}

/// Reads element i of a 1-D integer array of any integer dtype and stride as int64.
/// (Values of uint64 above 2^63 wrap; the callers' range checks refuse them.)
inline std::int64_t integer_at(const pyb::array& a, pyb::ssize_t i) {
    const auto* p = static_cast<const char*>(a.data()) + i * a.strides(0);
    switch (a.dtype().kind() == 'u' ? -static_cast<int>(a.itemsize()) : static_cast<int>(a.itemsize())) {
    case 1: return *reinterpret_cast<const std::int8_t*>(p);
    case 2: return *reinterpret_cast<const std::int16_t*>(p);
    case 4: return *reinterpret_cast<const std::int32_t*>(p);
    case 8: return *reinterpret_cast<const std::int64_t*>(p);
    case -1: return *reinterpret_cast<const std::uint8_t*>(p);
    case -2: return *reinterpret_cast<const std::uint16_t*>(p);
    case -4: return *reinterpret_cast<const std::uint32_t*>(p);
    default: return static_cast<std::int64_t>(*reinterpret_cast<const std::uint64_t*>(p));
    }
}

/// A 1-D integer array (any integer dtype, any stride) of `n` elements (n < 0: any
/// length) copied to int64; anything else raises ValueError naming `what`.
inline std::vector<std::int64_t> integers_of(const pyb::array& a, std::ptrdiff_t n, const char* what) {
    if (!is_integer_dtype(a))
        bad_argument(what, "expected an integer array, got a ", describe(a));
    if (a.ndim() != 1 || (n >= 0 && a.shape(0) != n))
        bad_argument(what, "expected a 1-D array", n >= 0 ? snip::concat(" of ", n, " elements") : "",
                     ", got a ", describe(a));
    std::vector<std::int64_t> v(static_cast<std::size_t>(a.shape(0)));
    for (pyb::ssize_t i = 0; i < a.shape(0); ++i) v[static_cast<std::size_t>(i)] = integer_at(a, i);
    return v;
}

/// Ground truth states: None (all valid) or a 1-D integer array of `k` values 0 (valid),
/// 1 (invalid: out of this scale's range) or 2 (crowd / ignore region).
inline std::vector<gt_state> states_of(const std::optional<pyb::array>& a, std::ptrdiff_t k,
                                       const char* what = "states") {
    std::vector<gt_state> out;
    if (!a) return out;
    const auto v = integers_of(*a, k, what);
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] < 0 || v[i] > 2)
            bad_argument(what, "entry ", i, " is ", v[i],
                         "; expected 0 (valid), 1 (invalid) or 2 (crowd)");
        out.push_back(static_cast<gt_state>(v[i]));
    }
    return out;
}

/// A 1-D array of T with `n` elements as a contiguous span: the caller's memory when its
/// stride is 1, else a copy held in `copy` (the C++ functions take contiguous spans).
template <class T>
std::span<const T> contiguous_vector(const pyb::array& a, std::ptrdiff_t n, const char* what,
                                     std::vector<T>& copy) {
    const auto [p, stride] = vector_of<T>(a, n, what);
    const auto len = static_cast<std::size_t>(a.shape(0));
    if (stride == 1 || len <= 1) return {p, len};
    copy.resize(len);
    for (std::size_t i = 0; i < len; ++i) copy[i] = p[static_cast<std::ptrdiff_t>(i) * stride];
    return {copy.data(), len};
}

/// The dtype name of T for messages ("float32", "float64").
template <class T>
std::string dtype_name() {
    return pyb::str(pyb::dtype::of<T>()).cast<std::string>();
}

/// An (N, 4) box argument that must have the same dtype T as the first one.
template <class T>
snip::box_view<const T> same_dtype_boxes(const pyb::array& a, const char* what, const char* first) {
    if (!has_dtype<T>(a)) {
        check_boxes_shape(a, what);
        bad_argument(what, "expected a ", dtype_name<T>(), " array (the dtype of ", first,
                     "), got a ", describe(a));
    }
    return boxes_of<T>(a, what);
}

/// A dtype argument (np.float32, "float64", np.dtype(...)) that must be float32 or
/// float64: true for float32.
inline bool is_float32_arg(const pyb::object& dtype, const char* what = "dtype") {
    pyb::dtype dt = pyb::dtype::from_args(dtype);
    if (dt.kind() == 'f' && dt.itemsize() == 4) return true;
    if (dt.kind() == 'f' && dt.itemsize() == 8) return false;
    bad_argument(what, "expected float32 or float64, got ", pyb::repr(dt).cast<std::string>());
}

/// max_out arguments: None = no limit.
inline std::size_t limit_of(const std::optional<std::int64_t>& v, const char* what) {
    if (!v) return std::numeric_limits<std::size_t>::max();
    if (*v < 0) bad_argument(what, "expected None or a count >= 0, got ", *v);
    return static_cast<std::size_t>(*v);
}

/// Four numbers (means, stds) from a Python sequence.
inline void four_of(const std::vector<double>& v, const char* what, double out[4]) {
    if (v.size() != 4)
        bad_argument(what, "expected 4 numbers (dx, dy, dw, dh), got ", v.size());
    for (int k = 0; k < 4; ++k) out[k] = v[static_cast<std::size_t>(k)];
}

} // namespace snip::py
