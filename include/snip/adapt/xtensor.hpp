// adapt/xtensor.hpp: zero-copy box and feature views over xtensor storage.
//
// Include this header (and link snip::xtensor) to pass xtensor objects to snip:
// @code
//   xt::xtensor<float, 2> b = xt::xtensor<float, 2>::from_shape({n, 4});
//   snip::box_view<float> v = snip::as_box_view(b);                   // no copy
//   auto sub = snip::as_box_view(xt::view(b, xt::range(0, 10), xt::all()));
//   xt::xtensor<float, 4> f = xt::xtensor<float, 4>::from_shape({2, 256, 50, 64});
//   snip::feature_view<float> fv = snip::as_feature_view(f);          // NCHW
// @endcode
//
// Accepted: every xtensor object with a strided memory layout, i.e. one that has
// data(), data_offset(), shape() and strides(): containers (xt::xtensor, xt::xarray,
// xt::xtensor_fixed, in either layout), adaptors (xt::adapt), xt::strided_view, and
// xt::view when all its slices are strided (integers, xt::range, xt::all,
// xt::newaxis). Lazy expressions (a + b, xt::sum(...), xt::keep / xt::drop views,
// broadcasts) are rejected at compile time: evaluate them into a container first.
// Only that storage interface is read; no expression, reduction or assignment of
// xtensor is instantiated.
//
// Boxes need rank 2 and shape (N, 4); features need rank 4 (N, C, H, W). A rank known
// at compile time is checked at compile time, a dynamic one (xt::xarray) at run time,
// with a snip::error naming the shape. xtensor reports stride 0 along axes of extent 1;
// such strides are replaced by the value a dense tensor would have, so a dense tensor
// always gives a view with is_contiguous() == true.
//
// Constness follows data(): a const container, or a view of one, gives a view of
// const T. Views (xt::view, xt::strided_view) of an lvalue may be passed as
// temporaries; containers must be lvalues. The snip view aliases the storage and lives
// no longer than it.
#pragma once

#include <snip/core/error.hpp>
#include <snip/core/views.hpp>

#include <xtensor/xexpression.hpp>
#include <xtensor/xstrided_view.hpp>
#include <xtensor/xview.hpp>

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

namespace snip {

namespace detail {

/// An xtensor object whose elements sit at data() + data_offset() + sum(i_k * strides()[k]).
template <class X>
concept xt_strided =
    xt::is_xexpression<std::remove_cv_t<X>>::value && requires(X& x) {
        { x.data() };
        { x.data_offset() } -> std::convertible_to<std::size_t>;
        { x.shape() };
        { x.strides() };
        { x.dimension() } -> std::convertible_to<std::size_t>;
    } && std::is_arithmetic_v<std::remove_cvref_t<decltype(*std::declval<X&>().data())>>;

/// Rank known at compile time, or SIZE_MAX.
template <class X>
inline constexpr std::size_t xt_static_rank = xt::get_rank<std::remove_cv_t<X>>::value;

template <class X>
std::string xt_shape_string(const X& x) {
    std::string s = "(";
    for (std::size_t k = 0; k < x.dimension(); ++k) {
        if (k) s += ", ";
        s += std::to_string(x.shape()[k]);
    }
    return s + ")";
}

/// Extents and element strides of a rank-R strided object; stride 0 along an axis of
/// extent 1 becomes the dense (row-major) value.
template <std::size_t R, class X>
void xt_layout(const X& x, std::array<std::ptrdiff_t, R>& ext, std::array<std::ptrdiff_t, R>& str) {
    for (std::size_t k = 0; k < R; ++k) {
        ext[k] = static_cast<std::ptrdiff_t>(x.shape()[k]);
        str[k] = static_cast<std::ptrdiff_t>(x.strides()[k]);
    }
    for (std::size_t k = R; k-- > 0;)
        if (ext[k] == 1) str[k] = k + 1 == R ? 1 : str[k + 1] * ext[k + 1];
}

template <class X>
auto xt_first(X& x) {
    return x.data() + x.data_offset();
}

/// The View of a strided object whose shape fits it; else snip::error naming the shape and
/// what the view `needs`.
template <template <class> class View, class X>
auto xt_view(X& x, const char* needs) {
    constexpr std::size_t rank = view_shape<View>::rank;
    require(fits_view<View>(x.shape()), "xtensor of shape ", xt_shape_string(x), ": ", needs);
    std::array<std::ptrdiff_t, rank> ext{}, str{};
    xt_layout(x, ext, str);
    return make_view<View>(xt_first(x), ext, str);
}

template <class X>
auto xt_boxes(X& x) {
    constexpr std::size_t rank = xt_static_rank<X>;
    static_assert(rank == SIZE_MAX || rank == 2,
                  "snip::as_box_view: boxes need a rank-2 xtensor of shape (N, 4); for a rank-4 "
                  "NCHW tensor use snip::as_feature_view");
    return xt_view<box_view>(x, "a box view needs rank 2 and shape (N, 4)");
}

template <class X>
auto xt_features(X& x) {
    constexpr std::size_t rank = xt_static_rank<X>;
    static_assert(rank == SIZE_MAX || rank == 4,
                  "snip::as_feature_view: features need a rank-4 (N, C, H, W) xtensor");
    return xt_view<feature_view>(x, "a feature view needs rank 4 (N, C, H, W)");
}

/// Views that refer to (never own) an lvalue's storage may be passed as temporaries.
template <class X>
inline constexpr bool xt_borrowing = false;
template <class CT, class... S>
inline constexpr bool xt_borrowing<xt::xview<CT, S...>> = std::is_lvalue_reference_v<CT>;
template <class CT, class S, xt::layout_type L, class FST>
inline constexpr bool xt_borrowing<xt::xstrided_view<CT, S, L, FST>> =
    std::is_lvalue_reference_v<CT>;

} // namespace detail

/// Every strided xtensor object (see the top of this file).
template <class X>
    requires detail::xt_strided<X>
struct view_traits<X> {
    template <class V>
    static auto boxes(V& x) { return detail::xt_boxes(x); }
    template <class V>
    static auto features(V& x) { return detail::xt_features(x); }
};

/// @brief A temporary xt::view / xt::strided_view of an lvalue as a box view.
template <class X>
    requires(!std::is_reference_v<X> && detail::xt_borrowing<std::remove_cv_t<X>> &&
             detail::xt_strided<X>)
auto as_box_view(X&& x) {
    return detail::xt_boxes(x);
}

/// @brief An N x C x H x W xtensor object as a feature_view, without copying.
/// Throws snip::error naming the shape when a dynamic rank is not 4.
template <class X>
    requires detail::xt_strided<X>
auto as_feature_view(X& x) {
    return detail::xt_features(x);
}

/// @brief A temporary xt::view / xt::strided_view of an lvalue as a feature view.
template <class X>
    requires(!std::is_reference_v<X> && detail::xt_borrowing<std::remove_cv_t<X>> &&
             detail::xt_strided<X>)
auto as_feature_view(X&& x) {
    return detail::xt_features(x);
}

} // namespace snip
