// roi_align.hpp: RoIAlign (He et al., "Mask R-CNN", ICCV 2017), forward and backward, with
// the rules of torchvision.ops.roi_align (torchvision 0.14). roi_view (views.hpp) is the
// K x 5 RoI layout shared with roi_pool.hpp.
//
// The per-sample maths are SNIP_HD functions used both by the CPU loops here and by the
// kernels of cuda/roi_align.cuh (detectron2's way: written once). The CPU forward builds
// the bilinear taps of every sampling point of a RoI once and reuses them for all channels.
//
// Definition. RoI k = (b, x1, y1, x2, y2), xyxy in input-image pixels; s = spatial_scale;
// off = aligned ? 0.5 : 0. On the feature map (feature pixels, pixel i has its centre at i):
//   start_x = x1 * s - off;  roi_w = (x2 * s - off) - start_x      (likewise along y)
//   if !aligned: roi_w = max(roi_w, 1), roi_h = max(roi_h, 1)      (malformed RoIs -> 1 x 1)
//   bin_w = roi_w / pooled_w
//   grid_w = sampling_ratio > 0 ? sampling_ratio : ceil(roi_w / pooled_w)   (samples per bin)
//   sample (iy, ix) of bin (ph, pw):
//     y = start_y + ph * bin_h + (iy + 0.5) * bin_h / grid_h
//     x = start_x + pw * bin_w + (ix + 0.5) * bin_w / grid_w
//   out[k, c, ph, pw] = sum over the grid_h x grid_w samples of bilinear(features[b, c], y, x),
//                       divided by max(grid_h * grid_w, 1)
//   bilinear(y, x) is 0 if y < -1, y > H, x < -1 or x > W; otherwise y, x below 0 become 0,
//   y_low = floor(y), and when y_low >= H - 1 both neighbours are row H - 1 (likewise x);
//   then the usual four-neighbour weights. An empty grid (grid_h or grid_w <= 0: only with
//   aligned = true, an inverted RoI and adaptive sampling) gives 0. The gradient w.r.t. the
//   features is the adjoint of this linear map; no gradient flows to the RoI coordinates
//   (as in torchvision).
//
// CPU speed-ups (results equal to the per-element definition, same arithmetic order): the
// taps (4 offsets + 4 weights) of every sample of a RoI are built once and reused for all
// its channels, 8 channels at a time; work is split over RoIs (and channels when RoIs are
// few). The backward is parallel over channels, hence deterministic.
#pragma once

#include <snip/core/box.hpp>
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
#include <type_traits>
#include <vector>

namespace snip {

// ---------------------------------------------------------------------------------
// Options and the shared (host + device) maths

/// @brief Parameters of RoIAlign; the defaults are torchvision's (with a 7 x 7 output).
struct roi_align_options {
    int pooled_h = 7;           ///< output height, in bins (> 0)
    int pooled_w = 7;           ///< output width, in bins (> 0)
    double spatial_scale = 1.0; ///< feature pixels per input-image pixel, e.g. 1/16 (> 0)
    int sampling_ratio = -1;    ///< samples per bin and axis; <= 0: ceil(roi size / pooled size)
    bool aligned = false;       ///< true: shift the RoI by -0.5 feature pixel, no minimum size
};

namespace detail {
// Rounding that works in host and device code (nvcc maps std:: maths to device functions).
template <class T>
SNIP_HD T ceil_(T v) {
#if defined(__CUDA_ARCH__)
    return ::ceil(v);
#else
    return std::ceil(v);
#endif
}
template <class T>
SNIP_HD T floor_(T v) {
#if defined(__CUDA_ARCH__)
    return ::floor(v);
#else
    return std::floor(v);
#endif
}
template <class T>
SNIP_HD T round_(T v) { // half away from zero, like std::round
#if defined(__CUDA_ARCH__)
    return ::round(v);
#else
    return std::round(v);
#endif
}
} // namespace detail

/// @brief Where the samples of one RoI lie, in feature pixels (pixel i centred at i).
template <class T>
struct roi_align_grid {
    T start_y = 0, start_x = 0; ///< top-left corner of the RoI on the feature map
    T bin_h = 0, bin_w = 0;     ///< bin size (negative for an inverted RoI when aligned)
    int grid_h = 0, grid_w = 0; ///< samples per bin along y and x; <= 0: no samples
    T count = 1;                ///< the divisor of the average: max(grid_h * grid_w, 1)

    /// The y coordinate of sample row iy of bin row ph.
    SNIP_HD T sample_y(int ph, int iy) const {
        return start_y + T(ph) * bin_h + (T(iy) + T(0.5)) * bin_h / T(grid_h);
    }
    /// The x coordinate of sample column ix of bin column pw.
    SNIP_HD T sample_x(int pw, int ix) const {
        return start_x + T(pw) * bin_w + (T(ix) + T(0.5)) * bin_w / T(grid_w);
    }
};

/// @brief The sampling grid of a RoI given as a box in input-image pixels (xyxy).
/// Coordinates must be finite with |coordinate * spatial_scale| <= 2^24 (checked by the
/// CPU ops; the CUDA launchers trust their caller).
template <class T>
SNIP_HD roi_align_grid<T> make_roi_align_grid(const box<T>& roi, const roi_align_options& o) {
    const T scale = static_cast<T>(o.spatial_scale);
    const T off = o.aligned ? T(0.5) : T(0);
    roi_align_grid<T> g;
    g.start_x = roi.x1 * scale - off;
    g.start_y = roi.y1 * scale - off;
    T roi_w = (roi.x2 * scale - off) - g.start_x;
    T roi_h = (roi.y2 * scale - off) - g.start_y;
    if (!o.aligned) {
        roi_w = detail::max_(roi_w, T(1));
        roi_h = detail::max_(roi_h, T(1));
    }
    g.bin_h = roi_h / T(o.pooled_h);
    g.bin_w = roi_w / T(o.pooled_w);
    g.grid_h = o.sampling_ratio > 0 ? o.sampling_ratio
                                    : static_cast<int>(detail::ceil_(roi_h / T(o.pooled_h)));
    g.grid_w = o.sampling_ratio > 0 ? o.sampling_ratio
                                    : static_cast<int>(detail::ceil_(roi_w / T(o.pooled_w)));
    const long long n = static_cast<long long>(g.grid_h) * g.grid_w;
    g.count = static_cast<T>(n > 1 ? n : 1);
    return g;
}

/// @brief The four neighbours of one sample point and their bilinear weights.
/// Indices are pixel rows/columns; w1..w4 weigh (y_low, x_low), (y_low, x_high),
/// (y_high, x_low), (y_high, x_high). `inside` is false for a point that contributes 0.
template <class T>
struct bilinear_taps {
    int y_low = 0, x_low = 0, y_high = 0, x_high = 0;
    T w1 = 0, w2 = 0, w3 = 0, w4 = 0;
    bool inside = false;
};

/// @brief Bilinear taps of the point (y, x), feature pixels, on a height x width map
/// (both >= 1). Points with y < -1, y > height, x < -1 or x > width (or NaN) are outside;
/// the others are clamped to [0, height - 1] x [0, width - 1].
template <class T>
SNIP_HD bilinear_taps<T> bilinear_at(T y, T x, int height, int width) {
    bilinear_taps<T> t;
    if (!(y >= T(-1) && y <= T(height) && x >= T(-1) && x <= T(width))) return t;
    t.inside = true;
    if (y <= T(0)) y = T(0);
    if (x <= T(0)) x = T(0);
    t.y_low = static_cast<int>(y);
    t.x_low = static_cast<int>(x);
    if (t.y_low >= height - 1) {
        t.y_high = t.y_low = height - 1;
        y = T(t.y_low);
    } else {
        t.y_high = t.y_low + 1;
    }
    if (t.x_low >= width - 1) {
        t.x_high = t.x_low = width - 1;
        x = T(t.x_low);
    } else {
        t.x_high = t.x_low + 1;
    }
    const T ly = y - T(t.y_low), lx = x - T(t.x_low);
    const T hy = T(1) - ly, hx = T(1) - lx;
    t.w1 = hy * hx;
    t.w2 = hy * lx;
    t.w3 = ly * hx;
    t.w4 = ly * lx;
    return t;
}

/// @brief One output element: the average over bin (ph, pw) of the grid `g`, read from
/// the height x width plane `plane` of one (image, channel), whose element (y, x) is
/// plane[y * stride_y + x * stride_x].
template <class T>
SNIP_HD T roi_align_value(const T* plane, std::ptrdiff_t stride_y, std::ptrdiff_t stride_x,
                          int height, int width, const roi_align_grid<T>& g, int ph, int pw) {
    T sum = 0;
    for (int iy = 0; iy < g.grid_h; ++iy) {
        const T y = g.sample_y(ph, iy);
        for (int ix = 0; ix < g.grid_w; ++ix) {
            const bilinear_taps<T> t = bilinear_at(y, g.sample_x(pw, ix), height, width);
            if (!t.inside) continue;
            sum += t.w1 * plane[t.y_low * stride_y + t.x_low * stride_x] +
                   t.w2 * plane[t.y_low * stride_y + t.x_high * stride_x] +
                   t.w3 * plane[t.y_high * stride_y + t.x_low * stride_x] +
                   t.w4 * plane[t.y_high * stride_y + t.x_high * stride_x];
        }
    }
    return sum / g.count;
}

/// @brief The backward of one output element: calls add(y, x, v) for every feature pixel
/// (y, x) that bin (ph, pw) reads, with v = grad * weight / count (four calls per inside
/// sample). `add` does the (atomic, on the GPU) accumulation.
template <class T, class Add>
SNIP_HD void roi_align_value_backward(T grad, const roi_align_grid<T>& g, int ph, int pw,
                                      int height, int width, Add&& add) {
    for (int iy = 0; iy < g.grid_h; ++iy) {
        const T y = g.sample_y(ph, iy);
        for (int ix = 0; ix < g.grid_w; ++ix) {
            const bilinear_taps<T> t = bilinear_at(y, g.sample_x(pw, ix), height, width);
            if (!t.inside) continue;
            add(t.y_low, t.x_low, grad * t.w1 / g.count);
            add(t.y_low, t.x_high, grad * t.w2 / g.count);
            add(t.y_high, t.x_low, grad * t.w3 / g.count);
            add(t.y_high, t.x_high, grad * t.w4 / g.count);
        }
    }
}

// ---------------------------------------------------------------------------------
// Host-side checks shared with roi_pool.hpp

namespace detail {

/// The element types of a RoI op: floating-point features (F), RoIs of the same type (R)
/// and, when given, a mutable output of that type (O).
template <class F, class R, class... O>
concept roi_op_types =
    std::floating_point<std::remove_cv_t<F>> &&
    std::is_same_v<std::remove_cv_t<F>, std::remove_cv_t<R>> &&
    (std::is_same_v<std::remove_cv_t<F>, O> && ...);

/// Scaled RoI coordinates beyond this many feature pixels are rejected: the integer
/// conversions of both ops stay exact and in range.
inline constexpr double roi_coordinate_limit = 16777216.0; // 2^24

inline void check_roi_options(const char* op, int pooled_h, int pooled_w, double spatial_scale) {
    require(pooled_h > 0 && pooled_w > 0, op,
            ": the pooled size must be positive, got pooled_h = ", pooled_h,
            ", pooled_w = ", pooled_w);
    require(std::isfinite(spatial_scale) && spatial_scale > 0.0, op,
            ": spatial_scale must be finite and positive, got ", spatial_scale);
}

/// Every RoI: an integral batch index in [0, batch), finite coordinates within the limit.
template <class T>
void check_rois(const char* op, roi_view<const T> rois, std::ptrdiff_t batch,
                double spatial_scale) {
    static constexpr const char* field[5] = {"batch index", "x1", "y1", "x2", "y2"};
    for (std::ptrdiff_t i = 0; i < rois.size(); ++i) {
        const double b = static_cast<double>(rois(i, 0));
        if (!(std::isfinite(b) && b == std::floor(b) && b >= 0.0 && b < double(batch)))
            fail(op, ": RoI ", i, " has batch index ", b, ", expected an integer in [0, ", batch,
                 ")");
        for (int j = 1; j < 5; ++j) {
            const double v = static_cast<double>(rois(i, j));
            if (!std::isfinite(v)) fail(op, ": RoI ", i, " has a non-finite ", field[j], " = ", v);
            if (std::fabs(v * spatial_scale) > roi_coordinate_limit)
                fail(op, ": RoI ", i, " has ", field[j], " = ", v, ", which is ", v * spatial_scale,
                     " feature pixels; at most 2^24 in magnitude are supported");
        }
    }
}

/// `v` has the extents `want` (K, C, pooled_h, pooled_w or N, C, H, W).
template <class V>
void check_extents(const char* op, const char* what, const V& v,
                   const std::array<std::ptrdiff_t, 4>& want) {
    for (int r = 0; r < 4; ++r)
        if (v.extent(r) != want[r])
            fail(op, ": ", what, " has extents (", v.extent(0), ", ", v.extent(1), ", ",
                 v.extent(2), ", ", v.extent(3), "), expected (", want[0], ", ", want[1], ", ",
                 want[2], ", ", want[3], ")");
}

/// Feature planes are indexed with int, as on the GPU.
template <class V>
void check_plane(const char* op, const char* what, const V& v) {
    for (int r = 0; r < 4; ++r)
        require(v.extent(r) >= 0, op, ": ", what, " has a negative extent ", v.extent(r));
    require(v.extent(2) <= INT_MAX && v.extent(3) <= INT_MAX &&
                v.extent(2) * v.extent(3) <= INT_MAX,
            op, ": ", what, " planes of ", v.extent(2), " x ", v.extent(3),
            " pixels are too large (at most 2^31 - 1 pixels)");
}

/// Channels processed together by the CPU loops of RoIAlign (one load of a tap serves them).
inline constexpr int roi_align_group = 8;

/// Work items for the forward loops: (RoI, block of channels). One block per RoI when there
/// are enough RoIs to keep every thread busy; otherwise the channels are split too.
struct roi_work_split {
    std::ptrdiff_t blocks = 1; ///< channel blocks per RoI
    std::ptrdiff_t block = 1;  ///< channels per block
};
inline roi_work_split split_roi_work(std::ptrdiff_t rois, std::ptrdiff_t channels,
                                     unsigned threads) {
    const std::ptrdiff_t want = 4 * static_cast<std::ptrdiff_t>(resolve_threads(threads));
    std::ptrdiff_t blocks = rois >= want ? 1 : (want + rois - 1) / rois;
    blocks = std::clamp<std::ptrdiff_t>(blocks, 1, std::max<std::ptrdiff_t>(1, channels / 16));
    std::ptrdiff_t block = (channels + blocks - 1) / blocks;
    if (blocks > 1) block = (block + roi_align_group - 1) / roi_align_group * roi_align_group;
    return {(channels + block - 1) / block, block};
}

/// Channel blocks for the deterministic backward loops: each channel belongs to one block;
/// about 4 blocks per thread, 8 to 32 channels each (a multiple of roi_align_group).
inline std::ptrdiff_t backward_channel_block(std::ptrdiff_t channels, unsigned threads) {
    const auto nt = static_cast<std::ptrdiff_t>(resolve_threads(threads));
    const std::ptrdiff_t b = channels / (4 * nt) / roi_align_group * roi_align_group;
    return std::clamp<std::ptrdiff_t>(b, roi_align_group, 32);
}

/// One precomputed sampling point of the CPU path: offsets within a feature plane
/// (strides included) and bilinear weights.
template <class T>
struct roi_align_tap {
    std::ptrdiff_t o1, o2, o3, o4;
    T w1, w2, w3, w4;
};

/// Upper bound of the taps of one RoI (every sample inside).
template <class T>
std::size_t roi_align_tap_capacity(const roi_align_grid<T>& g, const roi_align_options& o) {
    if (g.grid_h <= 0 || g.grid_w <= 0) return 0;
    return std::size_t(o.pooled_h) * std::size_t(o.pooled_w) * std::size_t(g.grid_h) *
           std::size_t(g.grid_w);
}

/// Writes the taps of the inside samples of one RoI, bin after bin (bins row-major, then
/// iy, ix), into `taps`, and into bin_start[b] .. bin_start[b + 1] the range of bin b
/// (pooled_h * pooled_w + 1 entries). Uses bilinear_at, the maths of the GPU path.
template <class T>
void build_roi_align_taps(const roi_align_grid<T>& g, const roi_align_options& o, int height,
                          int width, std::ptrdiff_t stride_y, std::ptrdiff_t stride_x,
                          roi_align_tap<T>* taps, std::size_t* bin_start) {
    std::size_t n = 0;
    for (int ph = 0; ph < o.pooled_h; ++ph)
        for (int pw = 0; pw < o.pooled_w; ++pw) {
            bin_start[ph * o.pooled_w + pw] = n;
            for (int iy = 0; iy < g.grid_h; ++iy) {
                const T y = g.sample_y(ph, iy);
                for (int ix = 0; ix < g.grid_w; ++ix) {
                    const bilinear_taps<T> t = bilinear_at(y, g.sample_x(pw, ix), height, width);
                    if (!t.inside) continue;
                    taps[n++] = {t.y_low * stride_y + t.x_low * stride_x,
                                 t.y_low * stride_y + t.x_high * stride_x,
                                 t.y_high * stride_y + t.x_low * stride_x,
                                 t.y_high * stride_y + t.x_high * stride_x,
                                 t.w1,
                                 t.w2,
                                 t.w3,
                                 t.w4};
                }
            }
        }
    bin_start[std::size_t(o.pooled_h) * std::size_t(o.pooled_w)] = n;
}

/// True when `count` (a positive integer) is a power of two: then g * w / count equals
/// g * w * (1 / count) exactly, and the CPU backward multiplies instead of dividing.
template <class T>
bool is_power_of_two_count(T count) {
    const auto n = static_cast<unsigned long long>(count);
    return n != 0 && (n & (n - 1)) == 0;
}

/// Outputs of channels [c, c + G) of RoI k from its taps: each tap's offsets and weights are
/// loaded once for G feature planes. Per channel the arithmetic is roi_align_value's, in the
/// same order, so the result does not depend on G.
template <int G, class T>
void roi_align_channels(const T* base, std::ptrdiff_t channel_stride, const roi_align_tap<T>* taps,
                        const std::size_t* bin_start, const roi_align_options& o, T count,
                        const feature_view<T>& out, std::ptrdiff_t k, std::ptrdiff_t c) {
    const T* plane[G];
    for (int j = 0; j < G; ++j)
        plane[j] = base + (c + j) * channel_stride;
    for (int ph = 0; ph < o.pooled_h; ++ph)
        for (int pw = 0; pw < o.pooled_w; ++pw) {
            const std::size_t b = std::size_t(ph) * std::size_t(o.pooled_w) + std::size_t(pw);
            T sum[G] = {};
            for (std::size_t i = bin_start[b]; i < bin_start[b + 1]; ++i) {
                const roi_align_tap<T> t = taps[i];
                for (int j = 0; j < G; ++j)
                    sum[j] += t.w1 * plane[j][t.o1] + t.w2 * plane[j][t.o2] +
                              t.w3 * plane[j][t.o3] + t.w4 * plane[j][t.o4];
            }
            for (int j = 0; j < G; ++j)
                out(k, c + j, ph, pw) = sum[j] / count;
        }
}

/// Backward of channels [c, c + G) of RoI k: adds grad * w / count at every tap to G
/// feature planes, loading each tap once. Each plane sees its additions in the serial order
/// (bins row-major, then taps), so the result does not depend on G. With Pow2, `count` is a
/// power of two and multiplying by `inv` = 1 / count is exact.
template <int G, bool Pow2, class T>
void roi_align_channels_backward(const feature_view<const T>& grad_out, std::ptrdiff_t k,
                                 std::ptrdiff_t c, T* base, std::ptrdiff_t channel_stride,
                                 const roi_align_tap<T>* taps, const std::size_t* bin_start,
                                 const roi_align_options& o, T count, T inv) {
    T* plane[G];
    for (int j = 0; j < G; ++j)
        plane[j] = base + (c + j) * channel_stride;
    for (int ph = 0; ph < o.pooled_h; ++ph)
        for (int pw = 0; pw < o.pooled_w; ++pw) {
            const std::size_t b = std::size_t(ph) * std::size_t(o.pooled_w) + std::size_t(pw);
            T g[G];
            for (int j = 0; j < G; ++j)
                g[j] = grad_out(k, c + j, ph, pw);
            for (std::size_t i = bin_start[b]; i < bin_start[b + 1]; ++i) {
                const roi_align_tap<T> t = taps[i];
                for (int j = 0; j < G; ++j) {
                    if constexpr (Pow2) {
                        plane[j][t.o1] += g[j] * t.w1 * inv;
                        plane[j][t.o2] += g[j] * t.w2 * inv;
                        plane[j][t.o3] += g[j] * t.w3 * inv;
                        plane[j][t.o4] += g[j] * t.w4 * inv;
                    } else {
                        plane[j][t.o1] += g[j] * t.w1 / count;
                        plane[j][t.o2] += g[j] * t.w2 / count;
                        plane[j][t.o3] += g[j] * t.w3 / count;
                        plane[j][t.o4] += g[j] * t.w4 / count;
                    }
                }
            }
        }
}

template <class T>
void roi_align_forward_cpu(feature_view<const T> f, roi_view<const T> rois, feature_view<T> out,
                           const roi_align_options& o, unsigned threads) {
    constexpr const char* op = "roi_align";
    check_roi_options(op, o.pooled_h, o.pooled_w, o.spatial_scale);
    check_plane(op, "features", f);
    const std::ptrdiff_t K = rois.size(), C = f.extent(1);
    const int H = static_cast<int>(f.extent(2)), W = static_cast<int>(f.extent(3));
    check_extents(op, "the output", out, {K, C, o.pooled_h, o.pooled_w});
    check_rois(op, rois, f.extent(0), o.spatial_scale);
    if (K == 0 || C == 0) return;
    if (H == 0 || W == 0) { // every sample is outside an empty map
        for (std::ptrdiff_t k = 0; k < K; ++k)
            for (std::ptrdiff_t c = 0; c < C; ++c)
                for (int ph = 0; ph < o.pooled_h; ++ph)
                    for (int pw = 0; pw < o.pooled_w; ++pw)
                        out(k, c, ph, pw) = T(0);
        return;
    }
    const std::size_t nbins = std::size_t(o.pooled_h) * std::size_t(o.pooled_w);
    const roi_work_split split = split_roi_work(K, C, threads);
    parallel_for(
        K * split.blocks, 1,
        [&](std::ptrdiff_t first, std::ptrdiff_t last) {
            std::vector<roi_align_tap<T>> taps;
            std::vector<std::size_t> bin_start(nbins + 1);
            std::ptrdiff_t built = -1;
            roi_align_grid<T> g;
            for (std::ptrdiff_t item = first; item < last; ++item) {
                const std::ptrdiff_t k = item / split.blocks;
                if (k != built) { // the taps of RoI k, shared by all its channels
                    g = make_roi_align_grid(rois[k], o);
                    taps.resize(std::max(taps.size(), roi_align_tap_capacity(g, o)));
                    build_roi_align_taps(g, o, H, W, f.stride(2), f.stride(3), taps.data(),
                                         bin_start.data());
                    built = k;
                }
                const auto n = static_cast<std::ptrdiff_t>(rois(k, 0));
                const std::ptrdiff_t c0 = (item % split.blocks) * split.block;
                const std::ptrdiff_t c1 = std::min(C, c0 + split.block);
                const T* base = f.data_handle() + n * f.stride(0);
                std::ptrdiff_t c = c0;
                for (; c + roi_align_group <= c1; c += roi_align_group)
                    roi_align_channels<roi_align_group>(base, f.stride(1), taps.data(),
                                                        bin_start.data(), o, g.count, out, k, c);
                for (; c < c1; ++c)
                    roi_align_channels<1>(base, f.stride(1), taps.data(), bin_start.data(), o,
                                          g.count, out, k, c);
            }
        },
        threads);
}

template <class T>
void roi_align_backward_cpu(feature_view<const T> grad_out, roi_view<const T> rois,
                            feature_view<T> gf, const roi_align_options& o, unsigned threads) {
    constexpr const char* op = "roi_align_backward";
    check_roi_options(op, o.pooled_h, o.pooled_w, o.spatial_scale);
    check_plane(op, "grad_features", gf);
    const std::ptrdiff_t K = rois.size(), C = gf.extent(1);
    const int H = static_cast<int>(gf.extent(2)), W = static_cast<int>(gf.extent(3));
    check_extents(op, "grad_output", grad_out, {K, C, o.pooled_h, o.pooled_w});
    check_rois(op, rois, gf.extent(0), o.spatial_scale);
    if (K == 0 || C == 0 || H == 0 || W == 0) return;

    // Phase A (parallel over RoIs): the taps of a chunk of RoIs, at most ~2^18 taps unless a
    // single RoI needs more. Phase B (parallel over blocks of channels): every channel is
    // updated by one thread, RoI after RoI in ascending order, so the result is deterministic
    // and equal to the serial loop's; a RoI's taps stay in cache across its block of channels.
    constexpr std::size_t chunk_taps = std::size_t(1) << 18;
    const std::size_t nbins = std::size_t(o.pooled_h) * std::size_t(o.pooled_w);
    std::vector<roi_align_grid<T>> grids(static_cast<std::size_t>(K));
    for (std::ptrdiff_t k = 0; k < K; ++k)
        grids[std::size_t(k)] = make_roi_align_grid(rois[k], o);
    const std::ptrdiff_t cblock = backward_channel_block(C, threads);
    const std::ptrdiff_t cblocks = (C + cblock - 1) / cblock;
    std::vector<std::size_t> tap_offset, bin_start;
    std::vector<roi_align_tap<T>> taps;
    for (std::ptrdiff_t k0 = 0; k0 < K;) {
        std::ptrdiff_t k1 = k0;
        std::size_t total = 0;
        tap_offset.clear();
        do {
            tap_offset.push_back(total);
            total += roi_align_tap_capacity(grids[std::size_t(k1)], o);
            ++k1;
        } while (k1 < K && total + roi_align_tap_capacity(grids[std::size_t(k1)], o) <= chunk_taps);
        taps.resize(std::max(taps.size(), total));
        bin_start.resize(std::max(bin_start.size(), std::size_t(k1 - k0) * (nbins + 1)));
        parallel_for(
            k1 - k0, 1,
            [&](std::ptrdiff_t first, std::ptrdiff_t last) {
                for (std::ptrdiff_t i = first; i < last; ++i)
                    build_roi_align_taps(grids[std::size_t(k0 + i)], o, H, W, gf.stride(2),
                                         gf.stride(3), taps.data() + tap_offset[std::size_t(i)],
                                         bin_start.data() + std::size_t(i) * (nbins + 1));
            },
            threads);
        parallel_for(
            cblocks, 1,
            [&](std::ptrdiff_t first, std::ptrdiff_t last) {
                for (std::ptrdiff_t k = k0; k < k1; ++k) {
                    const std::size_t i = std::size_t(k - k0);
                    const roi_align_tap<T>* t = taps.data() + tap_offset[i];
                    const std::size_t* bs = bin_start.data() + i * (nbins + 1);
                    const T count = grids[std::size_t(k)].count;
                    const bool pow2 = is_power_of_two_count(count);
                    const T inv = T(1) / count;
                    const auto n = static_cast<std::ptrdiff_t>(rois(k, 0));
                    const std::ptrdiff_t c0 = first * cblock, c1 = std::min(C, last * cblock);
                    T* base = gf.data_handle() + n * gf.stride(0);
                    auto run = [&](auto by_inverse) {
                        constexpr bool exact = decltype(by_inverse)::value;
                        std::ptrdiff_t c = c0;
                        for (; c + roi_align_group <= c1; c += roi_align_group)
                            roi_align_channels_backward<roi_align_group, exact>(
                                grad_out, k, c, base, gf.stride(1), t, bs, o, count, inv);
                        for (; c < c1; ++c)
                            roi_align_channels_backward<1, exact>(
                                grad_out, k, c, base, gf.stride(1), t, bs, o, count, inv);
                    };
                    if (pow2)
                        run(std::true_type{});
                    else
                        run(std::false_type{});
                }
            },
            threads);
        k0 = k1;
    }
}

} // namespace detail

// ---------------------------------------------------------------------------------
// The ops

/// @brief The RoI checks of the CPU ops, for callers of the CUDA launchers (which trust
/// their input): throws snip::error, naming the RoI and the value, unless every RoI has an
/// integral batch index in [0, batch) and finite coordinates with
/// |coordinate * spatial_scale| <= 2^24 feature pixels. Run it on a host copy of the RoIs.
template <class R>
    requires std::floating_point<std::remove_cv_t<R>>
void validate_rois(roi_view<R> rois, std::ptrdiff_t batch, double spatial_scale) {
    using T = std::remove_cv_t<R>;
    require(std::isfinite(spatial_scale) && spatial_scale > 0.0,
            "validate_rois: spatial_scale must be finite and positive, got ", spatial_scale);
    detail::check_rois<T>("validate_rois", roi_view<const T>(rois), batch, spatial_scale);
}

/// @brief RoIAlign forward (torchvision.ops.roi_align): out[k, c, ph, pw] is the average of
/// grid_h x grid_w bilinear samples of bin (ph, pw) of RoI k on features[b_k, c] (see the
/// definition at the top of this header).
/// @param features N x C x H x W, any strides.
/// @param rois     K x 5 (batch index, x1, y1, x2, y2), input-image pixels, any strides.
/// @param out      K x C x pooled_h x pooled_w, any strides; every element is written. Must
///                 not overlap `features`.
/// @param threads  0: snip::default_threads(). Work is split over RoIs (and channels when
///                 there are few RoIs); the result does not depend on the thread count.
/// @throws snip::error on a bad option, mismatched extents, or a RoI whose batch index is not
/// an integer in [0, N) or whose coordinates are not finite (message names RoI and value).
/// Memory: one tap table per thread, 4 offsets + 4 weights per sampling point of a RoI.
template <class F, class R, class O>
    requires detail::roi_op_types<F, R, O>
void roi_align(feature_view<F> features, roi_view<R> rois, feature_view<O> out,
               const roi_align_options& opts, unsigned threads = 0) {
    using T = std::remove_cv_t<F>;
    detail::roi_align_forward_cpu<T>(feature_view<const T>(features), roi_view<const T>(rois), out,
                                     opts, threads);
}

/// @brief RoIAlign forward into a new contiguous K x C x pooled_h x pooled_w array (NCHW).
template <class F, class R>
    requires detail::roi_op_types<F, R>
std::vector<std::remove_cv_t<F>> roi_align(feature_view<F> features, roi_view<R> rois,
                                           const roi_align_options& opts, unsigned threads = 0) {
    using T = std::remove_cv_t<F>;
    detail::check_roi_options("roi_align", opts.pooled_h, opts.pooled_w, opts.spatial_scale);
    const std::ptrdiff_t K = rois.size(), C = features.extent(1);
    require(C >= 0, "roi_align: features have a negative channel extent ", C);
    std::vector<T> out(static_cast<std::size_t>(K * C * opts.pooled_h * opts.pooled_w));
    roi_align(features, rois, feature_view<T>(out.data(), K, C, opts.pooled_h, opts.pooled_w), opts,
              threads);
    return out;
}

/// @brief RoIAlign backward: ADDS the gradient w.r.t. the features to `grad_features`
/// (zero it first for the plain gradient). The adjoint of roi_align for the same rois/opts.
/// @param grad_output   K x C x pooled_h x pooled_w, any strides.
/// @param rois          K x 5, as for the forward.
/// @param grad_features N x C x H x W, any strides, no two elements at the same address.
/// @param threads 0: snip::default_threads(). Parallel over blocks of channels (each
/// feature plane is updated by one thread, RoIs in ascending order): deterministic, and
/// bit-identical for every thread count.
template <class G, class R, class O>
    requires detail::roi_op_types<G, R, O>
void roi_align_backward(feature_view<G> grad_output, roi_view<R> rois,
                        feature_view<O> grad_features, const roi_align_options& opts,
                        unsigned threads = 0) {
    using T = std::remove_cv_t<G>;
    detail::roi_align_backward_cpu<T>(feature_view<const T>(grad_output), roi_view<const T>(rois),
                                      grad_features, opts, threads);
}

/// @brief RoIAlign backward into a new zero-initialised contiguous N x C x H x W array
/// (`feature_extents` = N, C, H, W of the forward's features).
template <class G, class R>
    requires detail::roi_op_types<G, R>
std::vector<std::remove_cv_t<G>>
roi_align_backward(feature_view<G> grad_output, roi_view<R> rois,
                   const std::array<std::ptrdiff_t, 4>& feature_extents,
                   const roi_align_options& opts, unsigned threads = 0) {
    using T = std::remove_cv_t<G>;
    const auto& e = feature_extents;
    require(e[0] >= 0 && e[1] >= 0 && e[2] >= 0 && e[3] >= 0,
            "roi_align_backward: negative feature extents (", e[0], ", ", e[1], ", ", e[2], ", ",
            e[3], ")");
    std::vector<T> grad(static_cast<std::size_t>(e[0] * e[1] * e[2] * e[3]), T(0));
    roi_align_backward(grad_output, rois, feature_view<T>(grad.data(), e[0], e[1], e[2], e[3]),
                       opts, threads);
    return grad;
}

} // namespace snip
