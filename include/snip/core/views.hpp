// views.hpp: non-owning, strided views over boxes (rank 2, N x 4), RoIs (rank 2, K x 5)
// and features (rank 4, NCHW). The vocabulary follows std::mdspan: extent(r), stride(r)
// (in elements), data_handle(). Foreign containers plug in through one trait,
// snip::view_traits<C>; adapt/*.hpp specialise it for Eigen, xtensor and LibTorch. What
// the views ask of strided storage (rank, fixed extents) and how a view is built from a
// pointer, a shape and strides is written once here (detail::view_shape, fits_view,
// make_view), so an adapter only says where its tensor type keeps those three.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/core/hd.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

namespace snip {

/// @brief A view of N boxes stored as an N x 4 array of T (x1, y1, x2, y2 along the
/// second axis), with arbitrary element strides. Never owns or copies.
template <class T>
class box_view {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;
    using index_type = std::ptrdiff_t;

    constexpr box_view() = default;
    /// @param data first element; @param n number of boxes;
    /// @param row_stride, col_stride distance in elements between consecutive boxes
    /// and between consecutive coordinates of one box.
    SNIP_HD constexpr box_view(T* data, index_type n, index_type row_stride = 4,
                               index_type col_stride = 1)
        : data_(data), n_(n), strides_{row_stride, col_stride} {}

    /// A mutable view converts to a read-only one.
    template <class U>
        requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>)
    SNIP_HD constexpr box_view(const box_view<U>& o)
        : data_(o.data_handle()), n_(o.extent(0)), strides_{o.stride(0), o.stride(1)} {}

    SNIP_HD constexpr T* data_handle() const { return data_; }
    SNIP_HD constexpr index_type extent(int r) const { return r == 0 ? n_ : 4; }
    SNIP_HD constexpr index_type stride(int r) const { return strides_[r]; }
    SNIP_HD constexpr index_type size() const { return n_; }
    SNIP_HD constexpr bool empty() const { return n_ == 0; }
    SNIP_HD constexpr bool is_contiguous() const { return strides_[1] == 1 && strides_[0] == 4; }

    /// Coordinate k (0..3) of box i.
    SNIP_HD constexpr T& operator()(index_type i, index_type k) const {
        return data_[i * strides_[0] + k * strides_[1]];
    }
    /// Box i by value.
    SNIP_HD constexpr box<value_type> operator[](index_type i) const {
        return {(*this)(i, 0), (*this)(i, 1), (*this)(i, 2), (*this)(i, 3)};
    }
    /// Writes box i (mutable views only).
    SNIP_HD constexpr void set(index_type i, const box<value_type>& b) const
        requires(!std::is_const_v<T>)
    {
        (*this)(i, 0) = b.x1;
        (*this)(i, 1) = b.y1;
        (*this)(i, 2) = b.x2;
        (*this)(i, 3) = b.y2;
    }
    /// Boxes [first, first + count).
    SNIP_HD constexpr box_view subview(index_type first, index_type count) const {
        return box_view(data_ + first * strides_[0], count, strides_[0], strides_[1]);
    }

private:
    T* data_ = nullptr;
    index_type n_ = 0;
    index_type strides_[2] = {4, 1};
};

/// @brief A view of an N x C x H x W feature tensor with arbitrary element strides.
template <class T>
class feature_view {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;
    using index_type = std::ptrdiff_t;

    constexpr feature_view() = default;
    /// Contiguous NCHW.
    SNIP_HD constexpr feature_view(T* data, index_type n, index_type c, index_type h, index_type w)
        : data_(data), ext_{n, c, h, w}, str_{c * h * w, h * w, w, 1} {}
    /// Arbitrary strides, in elements.
    SNIP_HD constexpr feature_view(T* data, const std::array<index_type, 4>& extents,
                                   const std::array<index_type, 4>& strides)
        : data_(data), ext_{extents[0], extents[1], extents[2], extents[3]},
          str_{strides[0], strides[1], strides[2], strides[3]} {}

    template <class U>
        requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>)
    SNIP_HD constexpr feature_view(const feature_view<U>& o)
        : data_(o.data_handle()), ext_{o.extent(0), o.extent(1), o.extent(2), o.extent(3)},
          str_{o.stride(0), o.stride(1), o.stride(2), o.stride(3)} {}

    SNIP_HD constexpr T* data_handle() const { return data_; }
    SNIP_HD constexpr index_type extent(int r) const { return ext_[r]; }
    SNIP_HD constexpr index_type stride(int r) const { return str_[r]; }
    SNIP_HD constexpr index_type size() const { return ext_[0] * ext_[1] * ext_[2] * ext_[3]; }
    SNIP_HD constexpr bool is_contiguous() const {
        return str_[3] == 1 && str_[2] == ext_[3] && str_[1] == ext_[2] * ext_[3] &&
               str_[0] == ext_[1] * ext_[2] * ext_[3];
    }
    SNIP_HD constexpr T& operator()(index_type n, index_type c, index_type y, index_type x) const {
        return data_[n * str_[0] + c * str_[1] + y * str_[2] + x * str_[3]];
    }

private:
    T* data_ = nullptr;
    index_type ext_[4] = {0, 0, 0, 0};
    index_type str_[4] = {0, 0, 0, 1};
};

/// @brief A view of K regions of interest stored as a K x 5 array of T, the layout of
/// torchvision's `rois` tensor: (batch index, x1, y1, x2, y2) along the second axis.
/// Coordinates are xyxy in input-image pixels (continuous convention: the RoI spans
/// [x1, x2] x [y1, y2]); the batch index is an integral value stored as T and selects the
/// image of the feature map. Arbitrary element strides; never owns or copies.
/// `boxes()` views the four coordinate columns as a box_view.
template <class T>
class roi_view {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;
    using index_type = std::ptrdiff_t;

    constexpr roi_view() = default;
    /// @param data first element; @param k number of RoIs;
    /// @param row_stride, col_stride distance in elements between consecutive RoIs and
    /// between consecutive fields of one RoI.
    SNIP_HD constexpr roi_view(T* data, index_type k, index_type row_stride = 5,
                               index_type col_stride = 1)
        : data_(data), k_(k), strides_{row_stride, col_stride} {}

    /// A mutable view converts to a read-only one.
    template <class U>
        requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>)
    SNIP_HD constexpr roi_view(const roi_view<U>& o)
        : data_(o.data_handle()), k_(o.extent(0)), strides_{o.stride(0), o.stride(1)} {}

    SNIP_HD constexpr T* data_handle() const { return data_; }
    SNIP_HD constexpr index_type extent(int r) const { return r == 0 ? k_ : 5; }
    SNIP_HD constexpr index_type stride(int r) const { return strides_[r]; }
    SNIP_HD constexpr index_type size() const { return k_; }
    SNIP_HD constexpr bool empty() const { return k_ == 0; }
    SNIP_HD constexpr bool is_contiguous() const { return strides_[1] == 1 && strides_[0] == 5; }

    /// Field j (0: batch index, 1..4: x1, y1, x2, y2) of RoI i.
    SNIP_HD constexpr T& operator()(index_type i, index_type j) const {
        return data_[i * strides_[0] + j * strides_[1]];
    }
    /// The batch index of RoI i, as stored (validated by the ops before use).
    SNIP_HD constexpr value_type batch_index(index_type i) const { return (*this)(i, 0); }
    /// The box of RoI i (input-image pixels, xyxy).
    SNIP_HD constexpr box<value_type> operator[](index_type i) const {
        return {(*this)(i, 1), (*this)(i, 2), (*this)(i, 3), (*this)(i, 4)};
    }
    /// The coordinate columns as K boxes.
    SNIP_HD constexpr box_view<T> boxes() const {
        return k_ == 0 ? box_view<T>(nullptr, 0, strides_[0], strides_[1])
                       : box_view<T>(data_ + strides_[1], k_, strides_[0], strides_[1]);
    }
    /// RoIs [first, first + count).
    SNIP_HD constexpr roi_view subview(index_type first, index_type count) const {
        return roi_view(data_ + first * strides_[0], count, strides_[0], strides_[1]);
    }

private:
    T* data_ = nullptr;
    index_type k_ = 0;
    index_type strides_[2] = {5, 1};
};

/// @brief Wraps a raw pointer to `k` RoIs of 5 numbers (b, x1, y1, x2, y2), with optional
/// strides in elements.
template <class T>
roi_view<T> as_roi_view(T* data, std::ptrdiff_t k, std::ptrdiff_t row_stride = 5,
                        std::ptrdiff_t col_stride = 1) {
    return roi_view<T>(data, k, row_stride, col_stride);
}

namespace detail {

/// What a view asks of the strided storage it views: its rank, the extents it fixes
/// (`fixed[r]` >= 0 must equal extent r; -1: any) and how messages write the shape.
template <template <class> class View>
struct view_shape;

template <>
struct view_shape<box_view> {
    static constexpr std::size_t rank = 2;
    static constexpr std::array<std::int64_t, 4> fixed{-1, 4, -1, -1};
    static constexpr const char* text = "N x 4";
};

template <>
struct view_shape<roi_view> {
    static constexpr std::size_t rank = 2;
    static constexpr std::array<std::int64_t, 4> fixed{-1, 5, -1, -1};
    static constexpr const char* text = "K x 5";
};

template <>
struct view_shape<feature_view> {
    static constexpr std::size_t rank = 4;
    static constexpr std::array<std::int64_t, 4> fixed{-1, -1, -1, -1};
    static constexpr const char* text = "N x C x H x W";
};

/// Whether a shape (a sized container of extents: std::array, a tensor's sizes, ...) has
/// the rank and the fixed extents of View.
template <template <class> class View, class Shape>
constexpr bool fits_view(const Shape& shape) {
    using S = view_shape<View>;
    if (std::size(shape) != S::rank) return false;
    for (std::size_t r = 0; r < S::rank; ++r)
        if (S::fixed[r] >= 0 && static_cast<std::int64_t>(shape[r]) != S::fixed[r]) return false;
    return true;
}

/// The View<T> of the storage whose element (i_0, ..., i_{R-1}) is
/// data[i_0 * strides[0] + ... + i_{R-1} * strides[R-1]] (strides in elements), for a shape
/// that fits_view<View>. Never copies.
template <template <class> class View, class T, class Shape, class Strides>
constexpr View<T> make_view(T* data, const Shape& shape, const Strides& strides) {
    constexpr std::size_t rank = view_shape<View>::rank;
    auto at = [](const auto& a, std::size_t r) { return static_cast<std::ptrdiff_t>(a[r]); };
    if constexpr (rank == 2) {
        return View<T>(data, at(shape, 0), at(strides, 0), at(strides, 1));
    } else {
        static_assert(rank == 4, "make_view: views are of rank 2 or 4");
        return View<T>(data, {at(shape, 0), at(shape, 1), at(shape, 2), at(shape, 3)},
                       {at(strides, 0), at(strides, 1), at(strides, 2), at(strides, 3)});
    }
}

/// `count` numbers at `data`, 4 per box, as a contiguous box view.
template <class T>
box_view<T> flat_boxes(T* data, std::size_t count) {
    require(count % 4 == 0, "box storage must hold 4 numbers per box, got ", count, " numbers");
    return box_view<T>(data, static_cast<std::ptrdiff_t>(count / 4));
}

/// `n` snip::box<T> (const or not) at `data` as a contiguous box view of T (const T).
template <class B>
auto packed_boxes(B* data, std::size_t n) {
    using T = std::remove_cv_t<decltype(data->x1)>;
    using E = std::conditional_t<std::is_const_v<B>, const T, T>;
    static_assert(sizeof(box<T>) == 4 * sizeof(T), "snip::box<T> must be four packed T");
    return box_view<E>(n == 0 ? nullptr : &data->x1, static_cast<std::ptrdiff_t>(n));
}

template <class B>
inline constexpr bool is_box_v = false;
template <class T>
inline constexpr bool is_box_v<box<T>> = true;

} // namespace detail

/// @brief The customisation point: specialise `view_traits<C>` with a static
/// `boxes(C&)` returning a box_view (and/or `features(C&)` returning a feature_view)
/// to let snip read a tensor type it does not know. Specialisations must only
/// adapt storage (pointer, extents, strides), never copy.
template <class C>
struct view_traits;

/// Flat storage of 4*N numbers.
template <class T, class A>
struct view_traits<std::vector<T, A>> {
    template <class V>
    static auto boxes(V& v) {
        return detail::flat_boxes(v.data(), v.size());
    }
};

/// A vector of snip::box<T>.
template <class T, class A>
struct view_traits<std::vector<box<T>, A>> {
    template <class V>
    static auto boxes(V& v) {
        return detail::packed_boxes(v.data(), v.size());
    }
};

/// A span of numbers, 4 per box.
template <class T, std::size_t E>
    requires std::is_arithmetic_v<std::remove_cv_t<T>>
struct view_traits<std::span<T, E>> {
    static box_view<T> boxes(std::span<T, E> s) { return detail::flat_boxes(s.data(), s.size()); }
};

/// Views pass through.
template <class T>
struct view_traits<box_view<T>> {
    static box_view<T> boxes(const box_view<T>& v) { return v; }
};

/// @brief Wraps any container that has a view_traits specialisation into a box_view,
/// without copying. Example:
/// @code
///   std::vector<float> flat = {0, 0, 10, 10,  5, 5, 20, 30};
///   snip::box_view<float> v = snip::as_box_view(flat);   // 2 boxes
/// @endcode
template <class C>
    requires requires(C& c) { view_traits<std::remove_cv_t<C>>::boxes(c); }
auto as_box_view(C& c) {
    return view_traits<std::remove_cv_t<C>>::boxes(c);
}

/// @brief Wraps a raw pointer to `n` boxes, 4 numbers each, with optional strides.
template <class T>
box_view<T> as_box_view(T* data, std::ptrdiff_t n, std::ptrdiff_t row_stride = 4,
                        std::ptrdiff_t col_stride = 1) {
    return box_view<T>(data, n, row_stride, col_stride);
}

/// @brief Wraps a span of snip::box<T> (box_view<T>) or of const snip::box<T>
/// (box_view<const T>).
template <class B, std::size_t E>
    requires detail::is_box_v<std::remove_const_t<B>>
auto as_box_view(std::span<B, E> s) {
    return detail::packed_boxes(s.data(), s.size());
}

/// @brief True for types `as_box_view` accepts.
template <class C>
concept box_storage = requires(C& c) { as_box_view(c); };

namespace detail {

/// Anything as_box_view accepts when const: box_view<T>, box_view<const T>, vectors of
/// box<T> or of numbers (4 per box), spans.
template <class C>
concept readable_boxes = requires(const C& c) { as_box_view(c); };

/// A read-only view of any readable_boxes input (never copies).
template <readable_boxes C>
auto const_boxes(const C& c) {
    auto v = as_box_view(c);
    using V = typename decltype(v)::value_type;
    return box_view<const V>(v);
}

/// The element type of a readable_boxes input.
template <readable_boxes C>
using box_value_t = typename decltype(const_boxes(std::declval<const C&>()))::value_type;

} // namespace detail

} // namespace snip
