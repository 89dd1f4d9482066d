// adapt/eigen.hpp: zero-copy box views over Eigen dense storage.
//
// Include this header (and link snip::eigen) to pass Eigen matrices to snip:
// @code
//   Eigen::Matrix<float, Eigen::Dynamic, 4, Eigen::RowMajor> m(n, 4);
//   snip::box_view<float> v = snip::as_box_view(m);            // no copy
//   Eigen::MatrixXf cm(n, 4);                                   // column-major works too
//   auto cv = snip::as_box_view(std::as_const(cm));             // box_view<const float>
//   auto bv = snip::as_box_view(wide.leftCols(4));              // blocks and maps as well
// @endcode
//
// Accepted: Eigen::Matrix and Eigen::Array (any storage order, fixed or dynamic size),
// Eigen::Map (any Stride), Eigen::Ref, and Eigen::Block of any of these (blocks of
// expressions without direct access are rejected at compile time). The object must
// have exactly 4 columns (x1, y1, x2, y2), else snip::error names its shape. Only
// data(), rows(), cols(), innerStride(), outerStride() and IsRowMajor are read: the
// view aliases the Eigen storage and lives no longer than it.
//
// Constness follows data(): a const matrix (or a Map/Ref/Block of a const type) gives
// box_view<const T>. Blocks and Maps may be passed as temporaries (they do not own
// their storage); Matrix, Array and Ref (which may own a converted copy) must be
// lvalues.
#pragma once

#include <snip/core/error.hpp>
#include <snip/core/views.hpp>

#include <Eigen/Core>

#include <array>
#include <cstddef>
#include <type_traits>

namespace snip {

namespace detail {

/// True for Eigen objects whose coefficients sit in memory at data() with the strides
/// innerStride() / outerStride().
template <class X>
inline constexpr bool eigen_direct_access =
    (static_cast<unsigned int>(std::remove_cv_t<X>::Flags) & Eigen::DirectAccessBit) != 0u;

/// The box view of an Eigen dense object with direct access (N x 4).
template <class X>
auto eigen_boxes(X& m) {
    static_assert(eigen_direct_access<X>, "snip: this Eigen expression has no direct access to "
                                          "its coefficients; evaluate it into a matrix first");
    using index = std::ptrdiff_t;
    const std::array<index, 2> shape{static_cast<index>(m.rows()), static_cast<index>(m.cols())};
    require(fits_view<box_view>(shape), "Eigen matrix with ", shape[1], " columns (shape ",
            shape[0], " x ", shape[1], "): a box view needs ", view_shape<box_view>::text);
    const auto inner = static_cast<index>(m.innerStride());
    const auto outer = static_cast<index>(m.outerStride());
    constexpr bool row_major = static_cast<bool>(std::remove_cv_t<X>::IsRowMajor);
    // Row-major: a box (row) is one outer slice, coordinates are inner steps.
    // Column-major: the reverse.
    const std::array<index, 2> strides{row_major ? outer : inner, row_major ? inner : outer};
    return make_view<box_view>(m.data(), shape, strides);
}

} // namespace detail

template <class S, int R, int C, int O, int MR, int MC>
struct view_traits<Eigen::Matrix<S, R, C, O, MR, MC>> {
    template <class V>
    static auto boxes(V& m) { return detail::eigen_boxes(m); }
};

template <class S, int R, int C, int O, int MR, int MC>
struct view_traits<Eigen::Array<S, R, C, O, MR, MC>> {
    template <class V>
    static auto boxes(V& m) { return detail::eigen_boxes(m); }
};

template <class P, int MapOptions, class Stride>
struct view_traits<Eigen::Map<P, MapOptions, Stride>> {
    template <class V>
    static auto boxes(V& m) { return detail::eigen_boxes(m); }
};

template <class P, int Options, class Stride>
struct view_traits<Eigen::Ref<P, Options, Stride>> {
    template <class V>
    static auto boxes(V& m) { return detail::eigen_boxes(m); }
};

template <class X, int R, int C, bool InnerPanel>
    requires detail::eigen_direct_access<Eigen::Block<X, R, C, InnerPanel>>
struct view_traits<Eigen::Block<X, R, C, InnerPanel>> {
    template <class V>
    static auto boxes(V& m) { return detail::eigen_boxes(m); }
};

namespace detail {
template <class C>
inline constexpr bool eigen_borrowing = false;  ///< never owns its coefficients
template <class P, int MapOptions, class Stride>
inline constexpr bool eigen_borrowing<Eigen::Map<P, MapOptions, Stride>> = true;
template <class X, int R, int C, bool InnerPanel>
inline constexpr bool eigen_borrowing<Eigen::Block<X, R, C, InnerPanel>> = true;
} // namespace detail

/// @brief A temporary Eigen::Block or Eigen::Map (e.g. `m.leftCols(4)`,
/// `m.middleRows(a, n)`, `Eigen::Map<...>(ptr, n, 4)`): the view aliases the
/// underlying storage, which must outlive it.
template <class C>
    requires(!std::is_reference_v<C> && detail::eigen_borrowing<std::remove_cv_t<C>>)
auto as_box_view(C&& c) {
    return view_traits<std::remove_cv_t<C>>::boxes(c);
}

} // namespace snip
