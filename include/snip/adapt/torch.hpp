// adapt/torch.hpp: zero-copy box, feature and RoI views over LibTorch tensors (at::Tensor).
//
// Include this header (and link snip::torch) to pass tensors to snip:
// @code
//   at::Tensor boxes = at::rand({100, 4});                        // N x 4 float32, xyxy
//   snip::box_view<float> b = snip::as_box_view(boxes);           // the float32 trait
//   auto d = snip::as_box_view<const double>(boxes64);            // any dtype, named
//   auto f = snip::as_feature_view<float>(features);              // N x C x H x W
//   auto r = snip::as_roi_view<const float>(rois, "my_op: rois"); // K x 5 (b, x1, y1, x2, y2)
//   auto t = snip::as_box_view<float>(wide.slice(1, 1, 5));       // slices, transposes: no copy
// @endcode
//
// A view reads data_ptr(), sizes() and strides() (in elements, storage offset included) and
// nothing else: it aliases the tensor's storage, works for ANY strides (transposed, sliced,
// channels-last, expanded with stride 0) and lives no longer than the storage. Views are
// outside autograd: writing through a mutable view is not recorded, and a view of an
// expanded tensor (stride 0) must not be written.
//
// Checked, in this order, each failure a snip::error naming the tensor's role (`name`, e.g.
// "roi_align: rois"), the expected shape and dtype, and what was found:
//   defined                 "<name> is an undefined tensor"
//   layout strided          sparse and MKL-DNN tensors are rejected
//   device CPU              "<name> must be a CPU tensor, got a cuda:0 tensor" (the data
//                           pointer of a GPU tensor is a device address)
//   dtype == T exactly      no conversion: "<name> must be a K x 5 float32 tensor, got float64 [12,
//   5]" rank and fixed extents  N x 4 boxes, N x C x H x W features, K x 5 RoIs not a lazy negation
//   tensors with is_neg() (torch._neg_view) hold un-negated data
//
// Element types: T (const or not) is any C++ type LibTorch maps to a dtype: float
// (float32), double (float64), std::int64_t, std::int32_t, std::int16_t, std::int8_t,
// std::uint8_t, bool. `view_traits<at::Tensor>` (what the type-free `snip::as_box_view(t)`
// uses) reads float32, torch's default dtype; a const at::Tensor gives a view of const float.
// at::Tensor's constness is shallow, so the typed functions give whatever constness T asks.
#pragma once

#include <snip/core/error.hpp>
#include <snip/core/views.hpp>

#include <ATen/core/Tensor.h>
#include <c10/core/Layout.h>
#include <c10/core/ScalarType.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace snip {

namespace detail {

/// torch's user-facing dtype names (torch.float32, ...), which the messages use.
inline std::string torch_dtype_name(c10::ScalarType s) {
    switch (s) {
    case c10::ScalarType::Float:
        return "float32";
    case c10::ScalarType::Double:
        return "float64";
    case c10::ScalarType::Half:
        return "float16";
    case c10::ScalarType::BFloat16:
        return "bfloat16";
    case c10::ScalarType::Long:
        return "int64";
    case c10::ScalarType::Int:
        return "int32";
    case c10::ScalarType::Short:
        return "int16";
    case c10::ScalarType::Char:
        return "int8";
    case c10::ScalarType::Byte:
        return "uint8";
    case c10::ScalarType::Bool:
        return "bool";
    case c10::ScalarType::ComplexFloat:
        return "complex64";
    case c10::ScalarType::ComplexDouble:
        return "complex128";
    default:
        return c10::toString(s);
    }
}

/// "[12, 5]"
inline std::string torch_sizes(const at::Tensor& t) {
    std::string s = "[";
    for (std::int64_t d = 0; d < t.dim(); ++d) {
        if (d) s += ", ";
        s += std::to_string(t.size(d));
    }
    return s + "]";
}

/// "float64 [12, 5]"
inline std::string torch_describe(const at::Tensor& t) {
    return torch_dtype_name(t.scalar_type()) + " " + torch_sizes(t);
}

/// The dtype of element type T (const ignored).
template <class T>
constexpr c10::ScalarType torch_dtype() {
    return c10::CppTypeToScalarType<std::remove_cv_t<T>>::value;
}

/// Everything but the dtype and shape: defined, strided, readable (not a lazy negation).
inline void check_torch_layout(const at::Tensor& t, std::string_view name) {
    require(t.defined(), name, " is an undefined tensor");
    require(t.layout() == c10::kStrided, name, " must be a strided (dense) tensor, got layout ",
            t.layout());
    require(!t.is_neg(), name,
            " is a lazily negated view (is_neg()); call resolve_neg() on it first");
}

/// The dtype and shape checks: dtype T, rank, and fixed extents (`fixed[d] >= 0` must equal
/// size(d)). `shape` describes the expected shape ("N x 4") for the message.
template <class T>
void check_torch_shape(const at::Tensor& t, std::string_view name, std::int64_t rank,
                       const std::array<std::int64_t, 4>& fixed, std::string_view shape) {
    constexpr c10::ScalarType want = torch_dtype<T>();
    bool ok = t.scalar_type() == want && t.dim() == rank;
    for (std::int64_t d = 0; ok && d < rank; ++d)
        ok = fixed[std::size_t(d)] < 0 || t.size(d) == fixed[std::size_t(d)];
    require(ok, name, " must be a ", shape, " ", torch_dtype_name(want), " tensor, got ",
            torch_describe(t));
}

/// All checks of the views: layout, CPU device, dtype, rank and extents.
template <class T>
void check_torch_view(const at::Tensor& t, std::string_view name, std::int64_t rank,
                      const std::array<std::int64_t, 4>& fixed, std::string_view shape) {
    check_torch_layout(t, name);
    require(t.device().is_cpu(), name, " must be a CPU tensor, got a ", t.device().str(),
            " tensor");
    check_torch_shape<T>(t, name, rank, fixed, shape);
}

template <class T>
T* torch_data(const at::Tensor& t) {
    // data_ptr() includes the storage offset; the dtype was checked.
    return static_cast<T*>(t.data_ptr());
}

/// The View<T> of a tensor after all checks (check_torch_view with View's shape).
template <template <class> class View, class T>
View<T> torch_view(const at::Tensor& t, std::string_view name) {
    using S = view_shape<View>;
    check_torch_view<T>(t, name, std::int64_t(S::rank), S::fixed, S::text);
    return make_view<View>(torch_data<T>(t), t.sizes(), t.strides());
}

} // namespace detail

/// @brief An N x 4 tensor (x1, y1, x2, y2 along dim 1; pixels as the caller defines them) as
/// a box_view<T>, without copying; any strides.
/// @param name the tensor's role in error messages, e.g. "nms: boxes".
/// @throws snip::error when the tensor is undefined, not strided, not on the CPU, not of
/// dtype T exactly, or not N x 4.
template <class T>
requires std::is_arithmetic_v<std::remove_cv_t<T>> box_view<T>
as_box_view(const at::Tensor& t, std::string_view name = "boxes") {
    return detail::torch_view<box_view, T>(t, name);
}

/// @brief An N x C x H x W tensor as a feature_view<T>, without copying; any strides
/// (contiguous NCHW, channels-last, channel slices, ...).
/// @throws snip::error as as_box_view, for a tensor that is not of rank 4.
template <class T>
requires std::is_arithmetic_v<std::remove_cv_t<T>> feature_view<T>
as_feature_view(const at::Tensor& t, std::string_view name = "features") {
    return detail::torch_view<feature_view, T>(t, name);
}

/// @brief A K x 5 tensor of RoIs (batch index, x1, y1, x2, y2: torchvision's `rois`, image
/// pixels) as a roi_view<T>, without copying; any strides.
/// @throws snip::error as as_box_view, for a tensor that is not K x 5.
template <class T>
requires std::is_arithmetic_v<std::remove_cv_t<T>> roi_view<T>
as_roi_view(const at::Tensor& t, std::string_view name = "rois") {
    return detail::torch_view<roi_view, T>(t, name);
}

/// @brief The trait behind the type-free `snip::as_box_view(tensor)`: float32 tensors (torch's
/// default dtype); a const at::Tensor gives views of const float. Use the typed functions
/// above for other dtypes.
template <>
struct view_traits<at::Tensor> {
    template <class V>
    using element = std::conditional_t<std::is_const_v<V>, const float, float>;

    template <class V>
    static box_view<element<V>> boxes(V& t) {
        return as_box_view<element<V>>(t, "tensor");
    }
    template <class V>
    static feature_view<element<V>> features(V& t) {
        return as_feature_view<element<V>>(t, "tensor");
    }
    template <class V>
    static roi_view<element<V>> rois(V& t) {
        return as_roi_view<element<V>>(t, "tensor");
    }
};

} // namespace snip
