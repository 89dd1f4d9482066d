// roi_pool.hpp: RoIPool (Girshick, "Fast R-CNN", ICCV 2015), forward and backward, with the
// rules of torchvision.ops.roi_pool (torchvision 0.14). The per-bin maths are SNIP_HD
// functions shared by the CPU loops here and the kernels of cuda/roi_pool.cuh. RoIs use
// roi_view (K x 5) from roi_align.hpp.
//
// Definition. RoI k = (b, x1, y1, x2, y2), xyxy in input-image pixels; s = spatial_scale.
// On the feature map (integer pixel indices):
//   start_x = round(x1 * s), end_x = round(x2 * s)          (round: half away from zero)
//   roi_w   = max(end_x - start_x + 1, 1)                   (malformed RoIs become 1 x 1)
//   bin_w   = roi_w / pooled_w                              (real)
//   bin (ph, pw) covers columns [start_x + floor(pw * bin_w), start_x + ceil((pw + 1) * bin_w))
//   and likewise rows, each clipped to [0, W] (rows to [0, H]); bins overlap by one pixel
//   when bin_w is not an integer.
//   out[k, c, ph, pw] = max of features[b, c] over the bin, scanned row by row, keeping the
//   first maximum (strict >); argmax = y * W + x of that pixel within its H x W plane.
//   An empty bin gives 0 with argmax -1. Values <= -FLT_MAX (and NaN) are never selected:
//   a bin holding only such values gives -FLT_MAX with argmax -1.
//   Backward: grad_features[b, c, argmax / W, argmax % W] += grad_out[k, c, ph, pw] for every
//   element whose argmax is not -1.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/core/hd.hpp>
#include <snip/core/parallel.hpp>
#include <snip/ops/roi_align.hpp>
#include <snip/core/views.hpp>

#include <algorithm>
#include <array>
#include <cfloat>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace snip {

/// @brief Parameters of RoIPool; spatial_scale defaults to torchvision's.
struct roi_pool_options {
    int pooled_h = 7;           ///< output height, in bins (> 0)
    int pooled_w = 7;           ///< output width, in bins (> 0)
    double spatial_scale = 1.0; ///< feature pixels per input-image pixel, e.g. 1/16 (> 0)
};

/// @brief A RoI rounded to feature pixels, and its bin size.
template <class T>
struct roi_pool_window {
    int start_y = 0, start_x = 0; ///< the RoI's first row and column (may lie off the map)
    T bin_h = 1, bin_w = 1;       ///< bin size in feature pixels (RoI size / pooled size)
};

/// @brief The window of a RoI given as a box in input-image pixels (xyxy). Coordinates must
/// be finite with |coordinate * spatial_scale| <= 2^24 (checked by the CPU ops).
template <class T>
SNIP_HD roi_pool_window<T> make_roi_pool_window(const box<T>& roi, const roi_pool_options& o) {
    const T scale = static_cast<T>(o.spatial_scale);
    roi_pool_window<T> w;
    w.start_x = static_cast<int>(detail::round_(roi.x1 * scale));
    w.start_y = static_cast<int>(detail::round_(roi.y1 * scale));
    const int end_x = static_cast<int>(detail::round_(roi.x2 * scale));
    const int end_y = static_cast<int>(detail::round_(roi.y2 * scale));
    const int roi_w = detail::max_(end_x - w.start_x + 1, 1);
    const int roi_h = detail::max_(end_y - w.start_y + 1, 1);
    w.bin_h = static_cast<T>(roi_h) / static_cast<T>(o.pooled_h);
    w.bin_w = static_cast<T>(roi_w) / static_cast<T>(o.pooled_w);
    return w;
}

/// @brief The pixels of one bin: rows [y0, y1) x columns [x0, x1), clipped to the map.
struct roi_pool_bin {
    int y0 = 0, y1 = 0, x0 = 0, x1 = 0;
    SNIP_HD constexpr bool empty() const { return y1 <= y0 || x1 <= x0; }
};

/// @brief Bin (ph, pw) of window `w` on a height x width map.
template <class T>
SNIP_HD roi_pool_bin roi_pool_bin_at(const roi_pool_window<T>& w, int ph, int pw, int height,
                                     int width) {
    using detail::max_;
    using detail::min_;
    roi_pool_bin b;
    b.y0 = static_cast<int>(detail::floor_(static_cast<T>(ph) * w.bin_h));
    b.x0 = static_cast<int>(detail::floor_(static_cast<T>(pw) * w.bin_w));
    b.y1 = static_cast<int>(detail::ceil_(static_cast<T>(ph + 1) * w.bin_h));
    b.x1 = static_cast<int>(detail::ceil_(static_cast<T>(pw + 1) * w.bin_w));
    b.y0 = min_(max_(b.y0 + w.start_y, 0), height);
    b.y1 = min_(max_(b.y1 + w.start_y, 0), height);
    b.x0 = min_(max_(b.x0 + w.start_x, 0), width);
    b.x1 = min_(max_(b.x1 + w.start_x, 0), width);
    return b;
}

/// @brief One output element: the maximum of bin `b` of the plane `plane` (element (y, x) at
/// plane[y * stride_y + x * stride_x], `width` columns). Writes the winner's y * width + x to
/// `argmax` (-1 when nothing was selected); an empty bin gives 0.
template <class T>
SNIP_HD T roi_pool_value(const T* plane, std::ptrdiff_t stride_y, std::ptrdiff_t stride_x,
                         int width, const roi_pool_bin& b, std::int32_t& argmax) {
    T best = b.empty() ? T(0) : static_cast<T>(-FLT_MAX);
    argmax = -1;
    for (int y = b.y0; y < b.y1; ++y) {
        const T* row = plane + y * stride_y;
        for (int x = b.x0; x < b.x1; ++x) {
            const T v = row[x * stride_x];
            const bool better = v > best; // branch-free: the winner is unpredictable
            argmax = better ? y * width + x : argmax;
            best = better ? v : best;
        }
    }
    return best;
}

/// @brief The backward of one output element: add(y, x, grad) for its argmax pixel; nothing
/// when argmax is -1 (or outside [0, height * width), which a correct forward never gives).
template <class T, class Add>
SNIP_HD void roi_pool_value_backward(T grad, std::int32_t argmax, int height, int width,
                                     Add&& add) {
    if (argmax < 0 || argmax >= height * width) return;
    add(argmax / width, argmax % width, grad);
}

namespace detail {

inline void check_argmax_plane(const char* op, std::ptrdiff_t height, std::ptrdiff_t width) {
    require(height * width <= INT32_MAX, op, ": planes of ", height, " x ", width,
            " pixels do not fit an int32 argmax");
}

/// Channels processed together by the CPU forward (independent max chains run in parallel).
inline constexpr int roi_pool_group = 8;

/// Outputs of channels [c, c + G) of RoI k: roi_pool_value for G planes at once (G
/// independent max chains), with the same comparisons in the same order per channel.
template <int G, class T>
void roi_pool_channels(const T* base, const feature_view<const T>& f, const roi_pool_bin* bins,
                       const roi_pool_options& o, const feature_view<T>& out,
                       const feature_view<std::int32_t>& argmax, std::ptrdiff_t k,
                       std::ptrdiff_t c) {
    const std::ptrdiff_t sy = f.stride(2), sx = f.stride(3);
    const int width = static_cast<int>(f.extent(3));
    const T* plane[G];
    for (int j = 0; j < G; ++j)
        plane[j] = base + (c + j) * f.stride(1);
    for (int ph = 0; ph < o.pooled_h; ++ph)
        for (int pw = 0; pw < o.pooled_w; ++pw) {
            const roi_pool_bin& b =
                bins[std::size_t(ph) * std::size_t(o.pooled_w) + std::size_t(pw)];
            T best[G];
            std::int32_t arg[G];
            for (int j = 0; j < G; ++j) {
                best[j] = b.empty() ? T(0) : static_cast<T>(-FLT_MAX);
                arg[j] = -1;
            }
            for (int y = b.y0; y < b.y1; ++y)
                for (int x = b.x0; x < b.x1; ++x) {
                    const std::ptrdiff_t at = y * sy + x * sx;
                    for (int j = 0; j < G; ++j) {
                        const T v = plane[j][at];
                        const bool better = v > best[j];
                        arg[j] = better ? y * width + x : arg[j];
                        best[j] = better ? v : best[j];
                    }
                }
            for (int j = 0; j < G; ++j) {
                out(k, c + j, ph, pw) = best[j];
                argmax(k, c + j, ph, pw) = arg[j];
            }
        }
}

template <class T>
void roi_pool_forward_cpu(feature_view<const T> f, roi_view<const T> rois, feature_view<T> out,
                          feature_view<std::int32_t> argmax, const roi_pool_options& o,
                          unsigned threads) {
    constexpr const char* op = "roi_pool";
    check_roi_options(op, o.pooled_h, o.pooled_w, o.spatial_scale);
    check_plane(op, "features", f);
    check_argmax_plane(op, f.extent(2), f.extent(3));
    const std::ptrdiff_t K = rois.size(), C = f.extent(1);
    const int H = static_cast<int>(f.extent(2)), W = static_cast<int>(f.extent(3));
    check_extents(op, "the output", out, {K, C, o.pooled_h, o.pooled_w});
    check_extents(op, "argmax", argmax, {K, C, o.pooled_h, o.pooled_w});
    check_rois(op, rois, f.extent(0), o.spatial_scale);
    if (K == 0 || C == 0) return;
    const std::size_t nbins = std::size_t(o.pooled_h) * std::size_t(o.pooled_w);
    const roi_work_split split = split_roi_work(K, C, threads);
    parallel_for(
        K * split.blocks, 1,
        [&](std::ptrdiff_t first, std::ptrdiff_t last) {
            std::vector<roi_pool_bin> bins(nbins); // the bins of one RoI, shared by its channels
            std::ptrdiff_t built = -1;
            for (std::ptrdiff_t item = first; item < last; ++item) {
                const std::ptrdiff_t k = item / split.blocks;
                if (k != built) {
                    const roi_pool_window<T> w = make_roi_pool_window(rois[k], o);
                    for (int ph = 0; ph < o.pooled_h; ++ph)
                        for (int pw = 0; pw < o.pooled_w; ++pw)
                            bins[std::size_t(ph) * std::size_t(o.pooled_w) + pw] =
                                roi_pool_bin_at(w, ph, pw, H, W);
                    built = k;
                }
                const auto n = static_cast<std::ptrdiff_t>(rois(k, 0));
                const std::ptrdiff_t c0 = (item % split.blocks) * split.block;
                const std::ptrdiff_t c1 = std::min(C, c0 + split.block);
                const T* base = f.data_handle() + n * f.stride(0);
                std::ptrdiff_t c = c0;
                for (; c + roi_pool_group <= c1; c += roi_pool_group)
                    roi_pool_channels<roi_pool_group>(base, f, bins.data(), o, out, argmax, k, c);
                for (; c < c1; ++c) { // the rest one by one, with the GPU's function
                    const T* plane = base + c * f.stride(1);
                    for (int ph = 0; ph < o.pooled_h; ++ph)
                        for (int pw = 0; pw < o.pooled_w; ++pw) {
                            std::int32_t a = -1;
                            out(k, c, ph, pw) = roi_pool_value(
                                plane, f.stride(2), f.stride(3), W,
                                bins[std::size_t(ph) * std::size_t(o.pooled_w) + pw], a);
                            argmax(k, c, ph, pw) = a;
                        }
                }
            }
        },
        threads);
}

/// The error of a bad argmax element, out of line so that the hot loop's indices stay in
/// registers (passing them by reference to fail() would make them address-taken).
[[noreturn, gnu::noinline, gnu::cold]] inline void bad_argmax(std::ptrdiff_t k, std::ptrdiff_t c,
                                                              int ph, int pw, std::int32_t a,
                                                              std::ptrdiff_t h, std::ptrdiff_t w) {
    fail("roi_pool_backward: argmax[", k, ", ", c, ", ", ph, ", ", pw, "] = ", a,
         " is neither -1 nor a pixel of the ", h, " x ", w, " plane");
}

template <class T>
void roi_pool_backward_cpu(feature_view<const T> grad_out, roi_view<const T> rois,
                           feature_view<const std::int32_t> argmax, feature_view<T> gf,
                           const roi_pool_options& o, unsigned threads) {
    constexpr const char* op = "roi_pool_backward";
    check_roi_options(op, o.pooled_h, o.pooled_w, o.spatial_scale);
    check_plane(op, "grad_features", gf);
    check_argmax_plane(op, gf.extent(2), gf.extent(3));
    const std::ptrdiff_t K = rois.size(), C = gf.extent(1);
    const std::ptrdiff_t W = gf.extent(3), HW = gf.extent(2) * gf.extent(3);
    check_extents(op, "grad_output", grad_out, {K, C, o.pooled_h, o.pooled_w});
    check_extents(op, "argmax", argmax, {K, C, o.pooled_h, o.pooled_w});
    check_rois(op, rois, gf.extent(0), o.spatial_scale);
    if (K == 0 || C == 0) return;
    // Parallel over contiguous ranges of channels, one per thread: every feature plane is
    // updated by one thread, RoI after RoI in ascending order (deterministic for any thread
    // count). The pass streams grad_output and argmax once; RoI-major order within a range
    // keeps those reads sequential.
    const auto nt = static_cast<std::ptrdiff_t>(resolve_threads(threads));
    const std::ptrdiff_t cblock = std::max<std::ptrdiff_t>(1, (C + nt - 1) / nt);
    const bool flat = gf.stride(3) == 1 && gf.stride(2) == W;
    const int nbins = o.pooled_h * o.pooled_w;
    const bool dense_bins = grad_out.stride(3) == 1 && grad_out.stride(2) == o.pooled_w &&
                            argmax.stride(3) == 1 && argmax.stride(2) == o.pooled_w;
    parallel_for((C + cblock - 1) / cblock, 1,
                 [&](std::ptrdiff_t first, std::ptrdiff_t last) {
                     const std::ptrdiff_t c0 = first * cblock, c1 = std::min(C, last * cblock);
                     for (std::ptrdiff_t k = 0; k < K; ++k) {
                         const auto n = static_cast<std::ptrdiff_t>(rois(k, 0));
                         for (std::ptrdiff_t c = c0; c < c1; ++c) {
                             T* plane = gf.data_handle() + n * gf.stride(0) + c * gf.stride(1);
                             const T* g = &grad_out(k, c, 0, 0);
                             const std::int32_t* am = &argmax(k, c, 0, 0);
                             if (dense_bins && flat) {
                                 for (int i = 0; i < nbins; ++i) {
                                     const std::int32_t a = am[i];
                                     if (a == -1) continue;
                                     if (a < 0 || a >= HW)
                                         bad_argmax(k, c, i / o.pooled_w, i % o.pooled_w, a, gf.extent(2), W);
                                     plane[a] += g[i];
                                 }
                                 continue;
                             }
                             for (int ph = 0; ph < o.pooled_h; ++ph)
                                 for (int pw = 0; pw < o.pooled_w; ++pw) {
                                     const std::int32_t a =
                                         am[ph * argmax.stride(2) + pw * argmax.stride(3)];
                                     if (a == -1) continue;
                                     if (a < 0 || a >= HW) bad_argmax(k, c, ph, pw, a, gf.extent(2), W);
                                     const std::ptrdiff_t at =
                                         flat ? a : (a / W) * gf.stride(2) + (a % W) * gf.stride(3);
                                     plane[at] +=
                                         g[ph * grad_out.stride(2) + pw * grad_out.stride(3)];
                                 }
                         }
                     }
                 },
                 threads);
}

} // namespace detail

/// @brief RoIPool forward (torchvision.ops.roi_pool), see the definition at the top.
/// @param features N x C x H x W, any strides.
/// @param rois     K x 5 (batch index, x1, y1, x2, y2), input-image pixels, any strides.
/// @param out      K x C x pooled_h x pooled_w, any strides; every element is written.
/// @param argmax   K x C x pooled_h x pooled_w int32, any strides: y * W + x of the winner
///                 within its H x W plane, or -1; the input of roi_pool_backward.
/// @param threads  0: snip::default_threads(); results do not depend on it.
/// @throws snip::error on a bad option, mismatched extents, a RoI whose batch index is not an
/// integer in [0, N) or whose coordinates are not finite (message names RoI and value).
template <class F, class R, class O>
    requires detail::roi_op_types<F, R, O>
void roi_pool(feature_view<F> features, roi_view<R> rois, feature_view<O> out,
              feature_view<std::int32_t> argmax, const roi_pool_options& opts,
              unsigned threads = 0) {
    using T = std::remove_cv_t<F>;
    detail::roi_pool_forward_cpu<T>(feature_view<const T>(features), roi_view<const T>(rois), out,
                                    argmax, opts, threads);
}

/// @brief The output of the allocating roi_pool: contiguous K x C x pooled_h x pooled_w.
template <class T>
struct roi_pool_result {
    std::vector<T> values;
    std::vector<std::int32_t> argmax;
};

/// @brief RoIPool forward into new contiguous arrays.
template <class F, class R>
    requires detail::roi_op_types<F, R>
roi_pool_result<std::remove_cv_t<F>> roi_pool(feature_view<F> features, roi_view<R> rois,
                                              const roi_pool_options& opts, unsigned threads = 0) {
    using T = std::remove_cv_t<F>;
    detail::check_roi_options("roi_pool", opts.pooled_h, opts.pooled_w, opts.spatial_scale);
    const std::ptrdiff_t K = rois.size(), C = features.extent(1);
    require(C >= 0, "roi_pool: features have a negative channel extent ", C);
    const auto n = static_cast<std::size_t>(K * C * opts.pooled_h * opts.pooled_w);
    roi_pool_result<T> r{std::vector<T>(n), std::vector<std::int32_t>(n)};
    roi_pool(features, rois, feature_view<T>(r.values.data(), K, C, opts.pooled_h, opts.pooled_w),
             feature_view<std::int32_t>(r.argmax.data(), K, C, opts.pooled_h, opts.pooled_w), opts,
             threads);
    return r;
}

/// @brief RoIPool backward: ADDS grad_output[k, c, ph, pw] to grad_features at the argmax
/// pixel of every element (zero grad_features first for the plain gradient).
/// @param grad_output   K x C x pooled_h x pooled_w, any strides.
/// @param rois          K x 5, as for the forward (only the batch indices are used).
/// @param argmax        the forward's argmax output.
/// @param grad_features N x C x H x W, any strides, no two elements at the same address.
/// @throws snip::error as the forward, and for an argmax that is neither -1 nor a pixel of
/// the plane (grad_features may then be partly updated).
template <class G, class R, class A, class O>
    requires(detail::roi_op_types<G, R, O> && std::is_same_v<std::remove_cv_t<A>, std::int32_t>)
void roi_pool_backward(feature_view<G> grad_output, roi_view<R> rois, feature_view<A> argmax,
                       feature_view<O> grad_features, const roi_pool_options& opts,
                       unsigned threads = 0) {
    using T = std::remove_cv_t<G>;
    detail::roi_pool_backward_cpu<T>(feature_view<const T>(grad_output), roi_view<const T>(rois),
                                     feature_view<const std::int32_t>(argmax), grad_features, opts,
                                     threads);
}

/// @brief RoIPool backward into a new zero-initialised contiguous N x C x H x W array
/// (`feature_extents` = N, C, H, W of the forward's features).
template <class G, class R, class A>
    requires(detail::roi_op_types<G, R> && std::is_same_v<std::remove_cv_t<A>, std::int32_t>)
std::vector<std::remove_cv_t<G>>
roi_pool_backward(feature_view<G> grad_output, roi_view<R> rois, feature_view<A> argmax,
                  const std::array<std::ptrdiff_t, 4>& feature_extents,
                  const roi_pool_options& opts, unsigned threads = 0) {
    using T = std::remove_cv_t<G>;
    const auto& e = feature_extents;
    require(e[0] >= 0 && e[1] >= 0 && e[2] >= 0 && e[3] >= 0,
            "roi_pool_backward: negative feature extents (", e[0], ", ", e[1], ", ", e[2], ", ",
            e[3], ")");
    std::vector<T> grad(static_cast<std::size_t>(e[0] * e[1] * e[2] * e[3]), T(0));
    roi_pool_backward(grad_output, rois, argmax,
                      feature_view<T>(grad.data(), e[0], e[1], e[2], e[3]), opts, threads);
    return grad;
}

} // namespace snip
