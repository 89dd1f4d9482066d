// deform_conv.hpp: deformable convolution v1 (Dai et al., "Deformable Convolutional
// Networks", ICCV 2017), forward and backward, with the rules of torchvision.ops.deform_conv2d
// (torchvision 0.14) without a mask.
//
// The per-sample maths are SNIP_HD functions used both by the CPU loops here and by the
// kernels of cuda/deform_conv.cuh (written once, as roi_align.hpp). The building blocks are
// the deformable columns ("im2col"): the CPU path fills them per image and multiplies them
// with the weights (a plain threaded loop here; torch/deform_conv.hpp hands the same columns
// to LibTorch's GEMM).
//
// Definition. input N x C x H x W, weight O x C/groups x kh x kw, offset
// N x (2 * offset_groups * kh * kw) x Ho x Wo, optional bias O; output N x O x Ho x Wo with
//   Ho = (H + 2 pad_h - (dilation_h (kh - 1) + 1)) / stride_h + 1      (likewise Wo)
// Input channel c belongs to offset group c / (C / offset_groups) and convolution group
// c / (C / groups); output channel o to convolution group o / (O / groups). For offset
// group g and kernel tap (i, j), channel 2 ((g kh + i) kw + j) of `offset` holds dy and the
// next one dx (input pixels; pixel (y, x) has its centre at (y, x)). Output (n, o, oy, ox)
// samples tap (i, j) at
//   y = (oy stride_h - pad_h + i dilation_h) + dy[n, g, i, j, oy, ox]
//   x = (ox stride_w - pad_w + j dilation_w) + dx[n, g, i, j, oy, ox]
// and out[n, o, oy, ox] = bias[o] + sum over the channels c of o's group and the taps (i, j)
// of weight[o, c - first channel of the group, i, j] * bilinear(input[n, c], y, x).
// bilinear (torchvision's bilinear_interpolate): 0 unless -1 < y < H and -1 < x < W; then
// y_low = floor(y), x_low = floor(x), the four neighbours (y_low | y_low + 1, x_low |
// x_low + 1) weighted (1 - ly)(1 - lx), (1 - ly) lx, ly (1 - lx), ly lx with ly = y - y_low,
// lx = x - x_low, and neighbours outside the map read as 0 (zero padding).
// Gradients: input and weight and bias are the adjoints of this linear map; the offset
// gradient is d bilinear / dy, dx taken as torchvision does (get_coordinate_weight): the
// four neighbours of any point with -1 <= y < H and -1 <= x < W (0 elsewhere), e.g.
//   d/dy = lx (v(y_low+1, x_low+1) - v(y_low, x_low+1)) + (1 - lx) (v(y_low+1, x_low) - v(y_low, x_low))
// (at y = -1 exactly the value is 0 but the y-gradient is not: torchvision's rule, kept).
//
// CPU speed-ups (results equal to the per-element definition, same arithmetic order): the
// sampling taps (4 offsets + 4 weights) of every (offset group, kernel tap, output position)
// of an image are built once and reused for all channels of the offset group. The column
// fill and the input gradient are parallel over channels (each input plane is updated by
// one thread: deterministic); the offset gradient is parallel over output positions.
#pragma once

#include <snip/core/error.hpp>
#include <snip/core/hd.hpp>
#include <snip/core/parallel.hpp>
#include <snip/core/views.hpp>

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

namespace snip {

// ---------------------------------------------------------------------------------
// Options, geometry and the shared (host + device) maths

/// @brief Parameters of a deformable convolution; the defaults are torchvision's. The kernel
/// size is the weight's (O x C/groups x kh x kw).
struct deform_conv_options {
    int stride_h = 1, stride_w = 1;     ///< output step, input pixels (>= 1)
    int pad_h = 0, pad_w = 0;           ///< zero padding on each side, input pixels (>= 0)
    int dilation_h = 1, dilation_w = 1; ///< spacing of the kernel taps, input pixels (>= 1)
    int groups = 1;                     ///< convolution groups: divides C and O (>= 1)
    int offset_groups = 1;              ///< groups of input channels sharing offsets: divides C
};

/// @brief The validated sizes of one deformable convolution (make_deform_conv_geometry),
/// what the CPU loops and the CUDA kernels index with.
struct deform_conv_geometry {
    int batch = 0, channels = 0, height = 0, width = 0; ///< input N, C, H, W
    int out_channels = 0, kernel_h = 0, kernel_w = 0;   ///< weight O, kh, kw
    int out_h = 0, out_w = 0;                           ///< output Ho, Wo
    deform_conv_options o;                              ///< the options

    /// Kernel taps kh * kw.
    SNIP_HD int taps() const { return kernel_h * kernel_w; }
    /// Output positions Ho * Wo of one image (the columns' width).
    SNIP_HD int positions() const { return out_h * out_w; }
    /// Rows of the deformable columns of one image: C * kh * kw.
    SNIP_HD long long column_rows() const { return static_cast<long long>(channels) * taps(); }
    /// Input channels per offset group.
    SNIP_HD int offset_group_channels() const { return channels / o.offset_groups; }
    /// Input channels per convolution group.
    SNIP_HD int group_channels() const { return channels / o.groups; }
    /// Output channels per convolution group.
    SNIP_HD int group_out_channels() const { return out_channels / o.groups; }
    /// Offset channels 2 * offset_groups * kh * kw.
    SNIP_HD int offset_channels() const { return 2 * o.offset_groups * taps(); }
};

namespace detail {
template <class T>
SNIP_HD T dc_floor(T v) {
#if defined(__CUDA_ARCH__)
    return ::floor(v);
#else
    return std::floor(v);
#endif
}
} // namespace detail

/// @brief The neighbours of a sampling point (y, x), input pixels, on a height x width map.
/// Corner k: 0 (y_low, x_low), 1 (y_low, x_low + 1), 2 (y_low + 1, x_low),
/// 3 (y_low + 1, x_low + 1); bit k of `valid` says that corner k lies in the map.
template <class T>
struct deform_corners {
    int y_low = 0, x_low = 0; ///< floor(y), floor(x) (-1 possible)
    T ly = 0, lx = 0;         ///< y - y_low, x - x_low, in [0, 1)
    unsigned valid = 0;       ///< corners inside the map; 0 unless -1 <= y < H and -1 <= x < W
    bool sampled = false;     ///< -1 < y < H and -1 < x < W: the bilinear value may be non-zero

    /// The bilinear weights of the four corners: (1-ly)(1-lx), (1-ly)lx, ly(1-lx), ly lx.
    SNIP_HD void weights(T* w) const {
        const T hy = T(1) - ly, hx = T(1) - lx;
        w[0] = hy * hx;
        w[1] = hy * lx;
        w[2] = ly * hx;
        w[3] = ly * lx;
    }
};

/// @brief The corners of (y, x) (NaN or infinite coordinates: no corner, not sampled).
template <class T>
SNIP_HD deform_corners<T> deform_corners_at(T y, T x, int height, int width) {
    deform_corners<T> c;
    // Outside [-1, H) x [-1, W) no neighbour is inside; checked before any int conversion.
    if (!(y >= T(-1) && y < T(height) && x >= T(-1) && x < T(width))) return c;
    const T fy = detail::dc_floor(y), fx = detail::dc_floor(x);
    c.y_low = static_cast<int>(fy);
    c.x_low = static_cast<int>(fx);
    c.ly = y - fy;
    c.lx = x - fx;
    const bool yl = c.y_low >= 0, yh = c.y_low + 1 < height;
    const bool xl = c.x_low >= 0, xh = c.x_low + 1 < width;
    c.valid = (yl && xl ? 1u : 0u) | (yl && xh ? 2u : 0u) | (yh && xl ? 4u : 0u) |
              (yh && xh ? 8u : 0u);
    c.sampled = y > T(-1) && x > T(-1);
    return c;
}

/// @brief The plane offsets of the four corners (y * stride_y + x * stride_x; meaningful
/// for valid corners only).
template <class T>
SNIP_HD void deform_corner_offsets(const deform_corners<T>& c, std::ptrdiff_t stride_y,
                                   std::ptrdiff_t stride_x, std::ptrdiff_t* off) {
    const std::ptrdiff_t y0 = c.y_low * stride_y, x0 = c.x_low * stride_x;
    off[0] = y0 + x0;
    off[1] = y0 + x0 + stride_x;
    off[2] = y0 + stride_y + x0;
    off[3] = y0 + stride_y + x0 + stride_x;
}

/// @brief The four corner values of `plane` (element (y, x) at plane[y * stride_y +
/// x * stride_x]), 0 for corners outside the map.
template <class T>
SNIP_HD void deform_corner_values(const T* plane, std::ptrdiff_t stride_y, std::ptrdiff_t stride_x,
                                  const deform_corners<T>& c, T* v) {
    std::ptrdiff_t off[4];
    deform_corner_offsets(c, stride_y, stride_x, off);
    for (int k = 0; k < 4; ++k)
        v[k] = (c.valid >> k & 1u) ? plane[off[k]] : T(0);
}

/// @brief bilinear(plane, y, x) of the definition (torchvision's bilinear_interpolate).
template <class T>
SNIP_HD T deform_bilinear(const T* plane, std::ptrdiff_t stride_y, std::ptrdiff_t stride_x,
                          int height, int width, T y, T x) {
    const deform_corners<T> c = deform_corners_at(y, x, height, width);
    if (!c.sampled) return T(0);
    T v[4], w[4];
    deform_corner_values(plane, stride_y, stride_x, c, v);
    c.weights(w);
    return w[0] * v[0] + w[1] * v[1] + w[2] * v[2] + w[3] * v[3];
}

/// @brief The coordinate gradient of bilinear(plane, y, x): *gy = d/dy, *gx = d/dx, with
/// torchvision's rule (the corners of any point in [-1, H) x [-1, W), 0 elsewhere).
template <class T>
SNIP_HD void deform_bilinear_grad(const T* plane, std::ptrdiff_t stride_y, std::ptrdiff_t stride_x,
                                  const deform_corners<T>& c, T* gy, T* gx) {
    if (c.valid == 0u) {
        *gy = *gx = T(0);
        return;
    }
    T v[4];
    deform_corner_values(plane, stride_y, stride_x, c, v);
    *gy = c.lx * (v[3] - v[1]) + (T(1) - c.lx) * (v[2] - v[0]);
    *gx = c.ly * (v[3] - v[2]) + (T(1) - c.ly) * (v[1] - v[0]);
}

/// @brief The adjoint of bilinear(., y, x): calls add(y, x, grad * weight) for every
/// corner inside the map of a sampled point (at most four calls).
template <class T, class Add>
SNIP_HD void deform_bilinear_backward(T grad, T y, T x, int height, int width, Add&& add) {
    const deform_corners<T> c = deform_corners_at(y, x, height, width);
    if (!c.sampled) return;
    T w[4];
    c.weights(w);
    for (int k = 0; k < 4; ++k)
        if (c.valid >> k & 1u) add(c.y_low + (k >> 1), c.x_low + (k & 1), grad * w[k]);
}

/// @brief The undeformed sampling row of kernel row i at output row oy (input pixels).
SNIP_HD inline int deform_base_y(const deform_conv_geometry& g, int oy, int i) {
    return oy * g.o.stride_h - g.o.pad_h + i * g.o.dilation_h;
}
/// @brief The undeformed sampling column of kernel column j at output column ox.
SNIP_HD inline int deform_base_x(const deform_conv_geometry& g, int ox, int j) {
    return ox * g.o.stride_w - g.o.pad_w + j * g.o.dilation_w;
}

/// @brief The offsets of one image, as read by the maths: element (channel k, oy, ox) at
/// data[k * stride_c + oy * stride_y + ox * stride_x] (channels 2 ((g kh + i) kw + j) and the
/// next: dy and dx of offset group g, tap (i, j)).
template <class T>
struct deform_offsets {
    const T* data = nullptr;
    std::ptrdiff_t stride_c = 0, stride_y = 0, stride_x = 0;

    /// The deformed sampling point (y, x) of offset group og, tap k = i * kw + j, at (oy, ox).
    SNIP_HD void point(const deform_conv_geometry& g, int og, int k, int oy, int ox, T* y,
                       T* x) const {
        const std::ptrdiff_t ch = 2 * (static_cast<std::ptrdiff_t>(og) * g.taps() + k);
        const std::ptrdiff_t at = oy * stride_y + ox * stride_x;
        *y = T(deform_base_y(g, oy, k / g.kernel_w)) + data[ch * stride_c + at];
        *x = T(deform_base_x(g, ox, k % g.kernel_w)) + data[(ch + 1) * stride_c + at];
    }
};

/// @brief One column entry set per kernel tap: col[k * row_stride] = bilinear(plane, y, x)
/// for the taps k of input channel c at output position (oy, ox), with `plane` that
/// channel's H x W map (strides stride_y, stride_x). What a CUDA thread of the column fill
/// computes (the CPU uses precomputed taps, same arithmetic).
template <class T>
SNIP_HD void deform_conv_fill_column(const T* plane, std::ptrdiff_t stride_y,
                                     std::ptrdiff_t stride_x, const deform_offsets<T>& off,
                                     const deform_conv_geometry& g, int c, int oy, int ox, T* col,
                                     std::ptrdiff_t row_stride) {
    const int og = c / g.offset_group_channels();
    for (int k = 0; k < g.taps(); ++k) {
        T y, x;
        off.point(g, og, k, oy, ox, &y, &x);
        col[k * row_stride] = deform_bilinear(plane, stride_y, stride_x, g.height, g.width, y, x);
    }
}

/// @brief The backward of one column entry (channel c, tap k, output (oy, ox)) w.r.t. the
/// input: calls add(y, x, grad * weight) for the corners it read (the col2im scatter).
template <class T, class Add>
SNIP_HD void deform_conv_scatter_column(T grad, const deform_offsets<T>& off,
                                        const deform_conv_geometry& g, int c, int k, int oy,
                                        int ox, Add&& add) {
    T y, x;
    off.point(g, c / g.offset_group_channels(), k, oy, ox, &y, &x);
    deform_bilinear_backward(grad, y, x, g.height, g.width, add);
}

/// @brief The gradient of the two offsets (dy, dx) of offset group og, tap k, output
/// (oy, ox): the sum over the channels c of the group of the coordinate gradient of
/// bilinear(input[c]) times the column gradient grad_col[(c * kh * kw + k) * row_stride].
/// `image` is channel 0 of the image (element (c, y, x) at c * stride_c + y * stride_y +
/// x * stride_x); grad_col points at the output position's column.
template <class T>
SNIP_HD void deform_conv_offset_grad(const T* image, std::ptrdiff_t stride_c,
                                     std::ptrdiff_t stride_y, std::ptrdiff_t stride_x,
                                     const deform_offsets<T>& off, const T* grad_col,
                                     std::ptrdiff_t row_stride, const deform_conv_geometry& g,
                                     int og, int k, int oy, int ox, T* gdy, T* gdx) {
    T y, x;
    off.point(g, og, k, oy, ox, &y, &x);
    const deform_corners<T> c = deform_corners_at(y, x, g.height, g.width);
    T sy = 0, sx = 0;
    if (c.valid != 0u) {
        const int cpg = g.offset_group_channels();
        for (int ci = og * cpg; ci < (og + 1) * cpg; ++ci) {
            T dy, dx;
            deform_bilinear_grad(image + ci * stride_c, stride_y, stride_x, c, &dy, &dx);
            const T gc = grad_col[(static_cast<std::ptrdiff_t>(ci) * g.taps() + k) * row_stride];
            sy += dy * gc;
            sx += dx * gc;
        }
    }
    *gdy = sy;
    *gdx = sx;
}

// ---------------------------------------------------------------------------------
// Host-side checks

namespace detail {

/// The element types of a deformable convolution: floating-point inputs (all of one type)
/// and, when given, mutable outputs of that type.
template <class I, class W, class F, class... O>
concept dconv_types =
    std::floating_point<std::remove_cv_t<I>> &&
    std::is_same_v<std::remove_cv_t<I>, std::remove_cv_t<W>> &&
    std::is_same_v<std::remove_cv_t<I>, std::remove_cv_t<F>> &&
    (std::is_same_v<std::remove_cv_t<I>, O> && ...);

template <class V>
std::array<std::ptrdiff_t, 4> dconv_extents(const V& v) {
    return {v.extent(0), v.extent(1), v.extent(2), v.extent(3)};
}

inline void dconv_require_extents(const char* op, const char* what, const std::array<std::ptrdiff_t, 4>& e,
                            const std::array<std::ptrdiff_t, 4>& want) {
    if (e != want)
        fail(op, ": ", what, " has extents (", e[0], ", ", e[1], ", ", e[2], ", ", e[3],
             "), expected (", want[0], ", ", want[1], ", ", want[2], ", ", want[3], ")");
}

} // namespace detail

/// @brief Checks the options and the extents of a deformable convolution and returns its
/// geometry. `bias_size` is the bias length, or -1 for no bias. Throws snip::error naming the
/// op, the field and the value, e.g. "deform_conv2d: stride_h must be >= 1, got 0",
/// "deform_conv2d: offset has extents (1, 18, 5, 5), expected (1, 18, 4, 4)".
inline deform_conv_geometry make_deform_conv_geometry(const char* op,
                                                      const std::array<std::ptrdiff_t, 4>& input,
                                                      const std::array<std::ptrdiff_t, 4>& weight,
                                                      const std::array<std::ptrdiff_t, 4>& offset,
                                                      std::ptrdiff_t bias_size,
                                                      const deform_conv_options& o) {
    auto at_least = [op](const char* field, int v, int lo) {
        require(v >= lo, op, ": ", field, " must be >= ", lo, ", got ", v);
    };
    at_least("stride_h", o.stride_h, 1);
    at_least("stride_w", o.stride_w, 1);
    at_least("pad_h", o.pad_h, 0);
    at_least("pad_w", o.pad_w, 0);
    at_least("dilation_h", o.dilation_h, 1);
    at_least("dilation_w", o.dilation_w, 1);
    at_least("groups", o.groups, 1);
    at_least("offset_groups", o.offset_groups, 1);
    static constexpr const char* in_name[4] = {"N", "C", "H", "W"};
    static constexpr const char* w_name[4] = {"O", "C / groups", "kernel_h", "kernel_w"};
    for (int r = 0; r < 4; ++r) {
        require(input[r] >= 0 && input[r] <= INT_MAX, op, ": input extent ", in_name[r], " = ",
                input[r], " is out of range [0, 2^31 - 1]");
        require(weight[r] >= 0 && weight[r] <= INT_MAX, op, ": weight extent ", w_name[r], " = ",
                weight[r], " is out of range [0, 2^31 - 1]");
    }
    deform_conv_geometry g;
    g.batch = static_cast<int>(input[0]);
    g.channels = static_cast<int>(input[1]);
    g.height = static_cast<int>(input[2]);
    g.width = static_cast<int>(input[3]);
    g.out_channels = static_cast<int>(weight[0]);
    g.kernel_h = static_cast<int>(weight[2]);
    g.kernel_w = static_cast<int>(weight[3]);
    g.o = o;
    require(g.kernel_h >= 1 && g.kernel_w >= 1, op, ": the weight's kernel is ", g.kernel_h,
            " x ", g.kernel_w, "; kernel_h and kernel_w must be >= 1");
    require(g.channels % o.groups == 0, op, ": the input's ", g.channels,
            " channels are not divisible by groups = ", o.groups);
    require(g.out_channels % o.groups == 0, op, ": the weight's ", g.out_channels,
            " output channels are not divisible by groups = ", o.groups);
    require(weight[1] == g.channels / o.groups, op, ": weight has ", weight[1],
            " input channels per group, expected C / groups = ", g.channels, " / ", o.groups,
            " = ", g.channels / o.groups);
    require(g.channels % o.offset_groups == 0, op, ": the input's ", g.channels,
            " channels are not divisible by offset_groups = ", o.offset_groups);
    require(static_cast<long long>(g.height) * g.width <= INT_MAX, op, ": input planes of ",
            g.height, " x ", g.width, " pixels are too large (at most 2^31 - 1 pixels)");
    const long long taps = static_cast<long long>(g.kernel_h) * g.kernel_w;
    require(2 * taps * o.offset_groups <= INT_MAX && taps * g.channels <= INT_MAX, op,
            ": the kernel of ", g.kernel_h, " x ", g.kernel_w, " taps is too large");
    // The padded input must hold the dilated kernel (torchvision's integer division would
    // otherwise round a negative size up to one output row).
    auto out_size = [&](const char* axis, long long in, int pad, int k, int dil, int stride) {
        const long long padded = in + 2LL * pad, span = static_cast<long long>(dil) * (k - 1) + 1;
        require(padded <= INT_MAX && span <= INT_MAX, op, ": the padded input (", in, " + 2 * ",
                pad, ") or the dilated kernel (", dil, " * (", k, " - 1) + 1) is too large along ",
                axis);
        require(padded >= span, op, ": the padded input (", in, " + 2 * ", pad, " = ", padded,
                " pixels along ", axis, ") is smaller than the dilated kernel (", dil, " * (", k,
                " - 1) + 1 = ", span, ")");
        return static_cast<int>((padded - span) / stride + 1);
    };
    g.out_h = out_size("y", g.height, o.pad_h, g.kernel_h, o.dilation_h, o.stride_h);
    g.out_w = out_size("x", g.width, o.pad_w, g.kernel_w, o.dilation_w, o.stride_w);
    require(static_cast<long long>(g.out_h) * g.out_w <= INT_MAX, op, ": the output of ", g.out_h,
            " x ", g.out_w, " positions is too large");
    detail::dconv_require_extents(op, "offset", offset,
                            {g.batch, g.offset_channels(), g.out_h, g.out_w});
    require(bias_size < 0 || bias_size == g.out_channels, op, ": bias has ", bias_size,
            " elements, expected O = ", g.out_channels);
    return g;
}

// ---------------------------------------------------------------------------------
// CPU loops

namespace detail {

/// One precomputed sampling point of the CPU path: plane offsets of the corners (strides
/// included) and bilinear weights; `valid` as deform_corners, 0 for points not sampled.
template <class T>
struct dconv_tap {
    std::ptrdiff_t o[4];
    T w[4];
    unsigned valid;
};

/// The taps of image n: row (og * kh * kw + k) holds the positions' taps of offset group og,
/// kernel tap k, in output order. Parallel over rows.
template <class T>
void dconv_build_taps(const deform_offsets<T>& off, const deform_conv_geometry& g,
                       std::ptrdiff_t stride_y, std::ptrdiff_t stride_x,
                       std::vector<dconv_tap<T>>& taps, unsigned threads) {
    const std::ptrdiff_t P = g.positions();
    const std::ptrdiff_t rows = std::ptrdiff_t(g.o.offset_groups) * g.taps();
    taps.resize(static_cast<std::size_t>(rows * P));
    parallel_for(
        rows, 1,
        [&](std::ptrdiff_t first, std::ptrdiff_t last) {
            for (std::ptrdiff_t r = first; r < last; ++r) {
                const int og = static_cast<int>(r / g.taps()), k = static_cast<int>(r % g.taps());
                dconv_tap<T>* row = taps.data() + r * P;
                for (int oy = 0; oy < g.out_h; ++oy)
                    for (int ox = 0; ox < g.out_w; ++ox) {
                        T y, x;
                        off.point(g, og, k, oy, ox, &y, &x);
                        const deform_corners<T> c = deform_corners_at(y, x, g.height, g.width);
                        dconv_tap<T>& t = row[std::ptrdiff_t(oy) * g.out_w + ox];
                        t.valid = c.sampled ? c.valid : 0u;
                        c.weights(t.w);
                        deform_corner_offsets(c, stride_y, stride_x, t.o);
                    }
            }
        },
        threads);
}

/// col[p] = bilinear value of tap p on `plane`, for one row of taps.
template <class T>
void dconv_fill_row(const T* plane, const dconv_tap<T>* taps, std::ptrdiff_t n, T* col) {
    for (std::ptrdiff_t p = 0; p < n; ++p) {
        const dconv_tap<T>& t = taps[p];
        if (t.valid == 15u) {
            col[p] = t.w[0] * plane[t.o[0]] + t.w[1] * plane[t.o[1]] + t.w[2] * plane[t.o[2]] +
                     t.w[3] * plane[t.o[3]];
        } else if (t.valid == 0u) {
            col[p] = T(0);
        } else { // a border point: corners outside read as 0, the sum in the same order
            T v[4];
            for (int k = 0; k < 4; ++k)
                v[k] = (t.valid >> k & 1u) ? plane[t.o[k]] : T(0);
            col[p] = t.w[0] * v[0] + t.w[1] * v[1] + t.w[2] * v[2] + t.w[3] * v[3];
        }
    }
}

/// plane[corner] += g[p] * weight for every valid corner of every tap of one row.
template <class T>
void dconv_scatter_row(T* plane, const dconv_tap<T>* taps, std::ptrdiff_t n, const T* g) {
    for (std::ptrdiff_t p = 0; p < n; ++p) {
        const dconv_tap<T>& t = taps[p];
        const T v = g[p];
        if (t.valid == 15u) {
            plane[t.o[0]] += v * t.w[0];
            plane[t.o[1]] += v * t.w[1];
            plane[t.o[2]] += v * t.w[2];
            plane[t.o[3]] += v * t.w[3];
        } else {
            for (int k = 0; k < 4; ++k)
                if (t.valid >> k & 1u) plane[t.o[k]] += v * t.w[k];
        }
    }
}

template <class T>
deform_offsets<T> dconv_offsets_of(const feature_view<const T>& offset, std::ptrdiff_t n) {
    return {offset.data_handle() + n * offset.stride(0), offset.stride(1), offset.stride(2),
            offset.stride(3)};
}

inline void dconv_check_columns(const char* op, const char* what, std::size_t size,
                          const deform_conv_geometry& g) {
    const auto want = static_cast<std::size_t>(g.column_rows()) * std::size_t(g.positions());
    require(size == want, op, ": ", what, " hold ", size, " values, expected (C * kh * kw) x (Ho * Wo) = ",
            g.column_rows(), " x ", g.positions(), " = ", want);
}

inline void dconv_check_image(const char* op, const deform_conv_geometry& g, std::ptrdiff_t n) {
    require(n >= 0 && n < g.batch, op, ": image ", n, " is out of range [0, ", g.batch, ")");
}

template <class T>
void dconv_columns_cpu(feature_view<const T> input, feature_view<const T> offset,
                        std::ptrdiff_t n, const deform_conv_geometry& g, T* columns,
                        std::vector<dconv_tap<T>>& taps, unsigned threads) {
    const std::ptrdiff_t P = g.positions(), K = g.taps();
    if (g.channels == 0) return;
    dconv_build_taps(dconv_offsets_of(offset, n), g, input.stride(2), input.stride(3), taps, threads);
    const int cpg = g.offset_group_channels();
    parallel_for(
        g.channels, 1,
        [&](std::ptrdiff_t first, std::ptrdiff_t last) {
            for (std::ptrdiff_t c = first; c < last; ++c) {
                const T* plane = input.data_handle() + n * input.stride(0) + c * input.stride(1);
                const std::ptrdiff_t og = c / cpg;
                for (std::ptrdiff_t k = 0; k < K; ++k)
                    dconv_fill_row(plane, taps.data() + (og * K + k) * P, P,
                                    columns + (c * K + k) * P);
            }
        },
        threads);
}

template <class T>
void dconv_columns_backward_cpu(const T* grad_columns, feature_view<const T> input,
                                 feature_view<const T> offset, std::ptrdiff_t n,
                                 const deform_conv_geometry& g, feature_view<T> grad_input,
                                 feature_view<T> grad_offset, std::vector<dconv_tap<T>>& taps,
                                 unsigned threads) {
    const std::ptrdiff_t P = g.positions(), K = g.taps();
    if (g.channels == 0) return;
    const deform_offsets<T> off = dconv_offsets_of(offset, n);
    // The input gradient: each plane updated by one thread, taps in ascending order.
    dconv_build_taps(off, g, grad_input.stride(2), grad_input.stride(3), taps, threads);
    const int cpg = g.offset_group_channels();
    parallel_for(
        g.channels, 1,
        [&](std::ptrdiff_t first, std::ptrdiff_t last) {
            for (std::ptrdiff_t c = first; c < last; ++c) {
                T* plane = grad_input.data_handle() + n * grad_input.stride(0) +
                           c * grad_input.stride(1);
                const std::ptrdiff_t og = c / cpg;
                for (std::ptrdiff_t k = 0; k < K; ++k)
                    dconv_scatter_row(plane, taps.data() + (og * K + k) * P, P,
                                       grad_columns + (c * K + k) * P);
            }
        },
        threads);
    // The offset gradient: one (offset group, tap, output row) per work item.
    const T* image = input.data_handle() + n * input.stride(0);
    parallel_for(
        std::ptrdiff_t(g.o.offset_groups) * K * g.out_h, 1,
        [&](std::ptrdiff_t first, std::ptrdiff_t last) {
            for (std::ptrdiff_t item = first; item < last; ++item) {
                const int oy = static_cast<int>(item % g.out_h);
                const int k = static_cast<int>(item / g.out_h % K);
                const int og = static_cast<int>(item / g.out_h / K);
                const std::ptrdiff_t ch = 2 * (std::ptrdiff_t(og) * K + k);
                for (int ox = 0; ox < g.out_w; ++ox) {
                    T gy, gx;
                    deform_conv_offset_grad(image, input.stride(1), input.stride(2),
                                            input.stride(3), off,
                                            grad_columns + std::ptrdiff_t(oy) * g.out_w + ox, P, g,
                                            og, k, oy, ox, &gy, &gx);
                    grad_offset(n, ch, oy, ox) += gy;
                    grad_offset(n, ch + 1, oy, ox) += gx;
                }
            }
        },
        threads);
}

} // namespace detail

// ---------------------------------------------------------------------------------
// The ops: deformable columns (for a GEMM) and the whole convolution

/// @brief The deformable columns of image n ("im2col"): a contiguous row-major
/// (C * kh * kw) x (Ho * Wo) matrix whose row c * kh * kw + i * kw + j, column
/// oy * Wo + ox is bilinear(input[n, c], y, x) at the deformed point of tap (i, j) (see the
/// definition at the top). out[n, o] = weight[o] (flattened, of o's group) x the group's rows.
/// @param input N x C x H x W, any strides; @param offset N x (2 offset_groups kh kw) x Ho x Wo,
/// any strides; @param g from make_deform_conv_geometry; @param columns written in full.
/// @param threads 0: snip::default_threads(); parallel over channels.
template <class I, class F>
    requires detail::dconv_types<I, I, F>
void deform_conv_columns(feature_view<I> input, feature_view<F> offset, std::ptrdiff_t n,
                         const deform_conv_geometry& g, std::span<std::remove_cv_t<I>> columns,
                         unsigned threads = 0) {
    using T = std::remove_cv_t<I>;
    constexpr const char* op = "deform_conv_columns";
    detail::dconv_check_image(op, g, n);
    detail::dconv_require_extents(op, "input", detail::dconv_extents(input),
                            {g.batch, g.channels, g.height, g.width});
    detail::dconv_require_extents(op, "offset", detail::dconv_extents(offset),
                            {g.batch, g.offset_channels(), g.out_h, g.out_w});
    detail::dconv_check_columns(op, "columns", columns.size(), g);
    std::vector<detail::dconv_tap<T>> taps;
    detail::dconv_columns_cpu<T>(input, offset, n, g, columns.data(), taps, threads);
}

/// @brief The backward of deform_conv_columns for image n: ADDS to grad_input[n] the
/// adjoint of the column fill applied to `grad_columns` (the col2im scatter) and to
/// grad_offset[n] the offset gradient (torchvision's coordinate rule).
/// @param grad_columns contiguous (C * kh * kw) x (Ho * Wo), the gradient of the columns
/// (weight^T x grad_out[n] per group). @param grad_input N x C x H x W and @param grad_offset
/// N x (2 offset_groups kh kw) x Ho x Wo, any strides, no two elements at one address.
/// @param threads parallel over channels (input) and output positions (offsets); every
/// element is updated by one thread: deterministic, and identical for every thread count.
template <class I, class F, class O>
    requires detail::dconv_types<I, I, F, O>
void deform_conv_columns_backward(std::span<const O> grad_columns, feature_view<I> input,
                                  feature_view<F> offset, std::ptrdiff_t n,
                                  const deform_conv_geometry& g, feature_view<O> grad_input,
                                  feature_view<O> grad_offset, unsigned threads = 0) {
    using T = O;
    constexpr const char* op = "deform_conv_columns_backward";
    detail::dconv_check_image(op, g, n);
    const std::array<std::ptrdiff_t, 4> in{g.batch, g.channels, g.height, g.width};
    const std::array<std::ptrdiff_t, 4> of{g.batch, g.offset_channels(), g.out_h, g.out_w};
    detail::dconv_require_extents(op, "input", detail::dconv_extents(input), in);
    detail::dconv_require_extents(op, "offset", detail::dconv_extents(offset), of);
    detail::dconv_require_extents(op, "grad_input", detail::dconv_extents(grad_input), in);
    detail::dconv_require_extents(op, "grad_offset", detail::dconv_extents(grad_offset), of);
    detail::dconv_check_columns(op, "grad_columns", grad_columns.size(), g);
    std::vector<detail::dconv_tap<T>> taps;
    detail::dconv_columns_backward_cpu<T>(grad_columns.data(), input, offset, n, g, grad_input,
                                           grad_offset, taps, threads);
}

/// @brief Deformable convolution v1 forward (torchvision.ops.deform_conv2d without a mask):
/// the definition at the top of this header, on the CPU, without BLAS (columns per image,
/// then a threaded multiply-add loop; torch_ops::deform_conv2d uses LibTorch's GEMM instead).
/// @param input  N x C x H x W, any strides.
/// @param weight O x C/groups x kh x kw, any strides.
/// @param offset N x (2 offset_groups kh kw) x Ho x Wo, any strides (dy, dx per group and tap).
/// @param bias   O values, or empty for none.
/// @param out    N x O x Ho x Wo, any strides; every element is written.
/// @param threads 0: snip::default_threads(); the result does not depend on the count.
/// @throws snip::error on bad options or extents (make_deform_conv_geometry's messages, op
/// "deform_conv2d"). Memory: the columns of one image and its taps.
template <class I, class W, class F, class O>
    requires detail::dconv_types<I, W, F, O>
void deform_conv2d(feature_view<I> input, feature_view<W> weight, feature_view<F> offset,
                   std::span<const std::type_identity_t<O>> bias, feature_view<O> out,
                   const deform_conv_options& opts,
                   unsigned threads = 0) {
    using T = O;
    constexpr const char* op = "deform_conv2d";
    const deform_conv_geometry g = make_deform_conv_geometry(
        op, detail::dconv_extents(input), detail::dconv_extents(weight), detail::dconv_extents(offset),
        bias.empty() ? -1 : static_cast<std::ptrdiff_t>(bias.size()), opts);
    detail::dconv_require_extents(op, "the output", detail::dconv_extents(out),
                            {g.batch, g.out_channels, g.out_h, g.out_w});
    const feature_view<const T> in(input), wt(weight), of(offset);
    const std::ptrdiff_t P = g.positions(), K = g.taps();
    const std::ptrdiff_t rows = std::ptrdiff_t(g.group_channels()) * K;
    std::vector<T> columns(static_cast<std::size_t>(g.column_rows() * P));
    std::vector<detail::dconv_tap<T>> taps;
    for (std::ptrdiff_t n = 0; n < g.batch; ++n) {
        detail::dconv_columns_cpu<T>(in, of, n, g, columns.data(), taps, threads);
        detail::parallel_for(
            g.out_channels, 1,
            [&](std::ptrdiff_t first, std::ptrdiff_t last) {
                std::vector<T> acc(static_cast<std::size_t>(P));
                for (std::ptrdiff_t o = first; o < last; ++o) {
                    std::fill(acc.begin(), acc.end(), T(0));
                    const T* col = columns.data() + (o / g.group_out_channels()) * rows * P;
                    for (std::ptrdiff_t r = 0; r < rows; ++r) {
                        const T w = wt(o, r / K, (r % K) / g.kernel_w, r % g.kernel_w);
                        const T* row = col + r * P;
                        for (std::ptrdiff_t p = 0; p < P; ++p)
                            acc[std::size_t(p)] += w * row[p];
                    }
                    const T b = bias.empty() ? T(0) : bias[std::size_t(o)];
                    for (std::ptrdiff_t p = 0; p < P; ++p)
                        out(n, o, p / g.out_w, p % g.out_w) = acc[std::size_t(p)] + b;
                }
            },
            threads);
    }
}

/// @brief Deformable convolution v1 backward: ADDS the gradients of deform_conv2d (same
/// input, weight, offset, options) for the output gradient `grad_output` to grad_input,
/// grad_weight, grad_offset and grad_bias (zero them first for the plain gradients).
/// @param grad_output N x O x Ho x Wo, any strides.
/// @param grad_input, grad_weight, grad_offset the extents of input, weight, offset, any
/// strides, no two elements at one address; @param grad_bias O values, or empty to skip.
/// @param threads parallel over channels, rows and positions, each element updated by one
/// thread: deterministic, identical for every thread count.
template <class G, class I, class W, class F, class O>
    requires detail::dconv_types<G, I, W, O> && detail::dconv_types<F, F, F, O>
void deform_conv2d_backward(feature_view<G> grad_output, feature_view<I> input,
                            feature_view<W> weight, feature_view<F> offset,
                            feature_view<O> grad_input, feature_view<O> grad_weight,
                            feature_view<O> grad_offset, std::span<std::type_identity_t<O>> grad_bias,
                            const deform_conv_options& opts, unsigned threads = 0) {
    using T = O;
    constexpr const char* op = "deform_conv2d_backward";
    const deform_conv_geometry g = make_deform_conv_geometry(
        op, detail::dconv_extents(input), detail::dconv_extents(weight), detail::dconv_extents(offset),
        grad_bias.empty() ? -1 : static_cast<std::ptrdiff_t>(grad_bias.size()), opts);
    detail::dconv_require_extents(op, "grad_output", detail::dconv_extents(grad_output),
                            {g.batch, g.out_channels, g.out_h, g.out_w});
    detail::dconv_require_extents(op, "grad_input", detail::dconv_extents(grad_input),
                            detail::dconv_extents(input));
    detail::dconv_require_extents(op, "grad_weight", detail::dconv_extents(grad_weight),
                            detail::dconv_extents(weight));
    detail::dconv_require_extents(op, "grad_offset", detail::dconv_extents(grad_offset),
                            detail::dconv_extents(offset));
    const feature_view<const T> go(grad_output), in(input), wt(weight), of(offset);
    const std::ptrdiff_t P = g.positions(), K = g.taps();
    const std::ptrdiff_t rows = std::ptrdiff_t(g.group_channels()) * K;
    const std::ptrdiff_t opg = g.group_out_channels();
    std::vector<T> columns(static_cast<std::size_t>(g.column_rows() * P));
    std::vector<T> grad_columns(columns.size());
    std::vector<T> gout(static_cast<std::size_t>(std::ptrdiff_t(g.out_channels) * P));
    std::vector<detail::dconv_tap<T>> taps;
    for (std::ptrdiff_t n = 0; n < g.batch; ++n) {
        for (std::ptrdiff_t o = 0; o < g.out_channels; ++o) // grad_output[n], contiguous O x P
            for (std::ptrdiff_t p = 0; p < P; ++p)
                gout[std::size_t(o * P + p)] = go(n, o, p / g.out_w, p % g.out_w);
        // grad_columns = weight^T x grad_output[n], per group (parallel over rows).
        detail::parallel_for(
            g.column_rows(), 1,
            [&](std::ptrdiff_t first, std::ptrdiff_t last) {
                for (std::ptrdiff_t row = first; row < last; ++row) {
                    const std::ptrdiff_t grp = row / rows, r = row % rows;
                    T* gc = grad_columns.data() + row * P;
                    std::fill(gc, gc + P, T(0));
                    for (std::ptrdiff_t o = grp * opg; o < (grp + 1) * opg; ++o) {
                        const T w = wt(o, r / K, (r % K) / g.kernel_w, r % g.kernel_w);
                        for (std::ptrdiff_t p = 0; p < P; ++p)
                            gc[p] += w * gout[std::size_t(o * P + p)];
                    }
                }
            },
            threads);
        detail::dconv_columns_backward_cpu<T>(grad_columns.data(), in, of, n, g, grad_input,
                                               grad_offset, taps, threads);
        // grad_weight += grad_output[n] x columns^T, grad_bias += sum over positions.
        detail::dconv_columns_cpu<T>(in, of, n, g, columns.data(), taps, threads);
        detail::parallel_for(
            g.out_channels, 1,
            [&](std::ptrdiff_t first, std::ptrdiff_t last) {
                for (std::ptrdiff_t o = first; o < last; ++o) {
                    const T* gr = gout.data() + o * P;
                    const T* col = columns.data() + (o / opg) * rows * P;
                    for (std::ptrdiff_t r = 0; r < rows; ++r) {
                        T s = 0;
                        for (std::ptrdiff_t p = 0; p < P; ++p)
                            s += gr[p] * col[r * P + p];
                        grad_weight(o, r / K, (r % K) / g.kernel_w, r % g.kernel_w) += s;
                    }
                    if (!grad_bias.empty()) {
                        T s = 0;
                        for (std::ptrdiff_t p = 0; p < P; ++p)
                            s += gr[p];
                        grad_bias[std::size_t(o)] += s;
                    }
                }
            },
            threads);
    }
}

} // namespace snip
