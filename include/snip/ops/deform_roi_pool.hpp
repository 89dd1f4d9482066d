// deform_roi_pool.hpp: deformable (position-sensitive) RoI pooling (Dai et al., "Deformable
// Convolutional Networks", ICCV 2017), forward and backward, with the rules of the operator
// that SNIPER's R-FCN/Faster R-CNN heads call: DeformablePSROIPooling of Deformable-ConvNets
// and MXNet (src/operator/contrib/deformable_psroi_pooling.cu, -inl.h, .cc). RoIs use
// roi_view (views.hpp), their checks and the rounding helpers come from roi_align.hpp.
//
// The per-sample maths are SNIP_HD functions used both by the CPU loops here and by the
// kernels of cuda/deform_roi_pool.cuh (written once). The CPU path sums the same samples in a
// separable form (below), the GPU one sample at a time: equal up to rounding.
//
// Definition. Options: s = spatial_scale, D = output_dim, G = group_size, P = pooled_size,
// Q = part_size (0: P), S = sample_per_part, t = trans_std. Features N x (D * G^2) x H x W;
// RoI k = (b, x1, y1, x2, y2), xyxy in input-image pixels; offsets ("trans") K x 2M x Q x Q
// for M offset classes (M = 1 without offsets). On the feature map (pixel i centred at i):
//   start_x = round(x1) * s - 0.5;  end_x = (round(x2) + 1) * s - 0.5   (round: half away
//   roi_w   = max(end_x - start_x, 0.1)                                   from zero; y alike)
//   bin_w   = roi_w / P;  sub_w = bin_w / S
//   bin (ph, pw), output channel c (class m = c / (D / M)):
//     part  qy = floor(ph / P * Q), qx = floor(pw / P * Q)     (computed in T, like the original)
//     group gy = clamp(floor(ph * G / P), 0, G - 1), gx alike; input channel (c * G + gy) * G + gx
//     dx = offsets[k, 2m, qy, qx] * t,  dy = offsets[k, 2m + 1, qy, qx] * t   (0 without offsets)
//     x0 = pw * bin_w + start_x + dx * roi_w,  y0 = ph * bin_h + start_y + dy * roi_h
//     samples (iy, ix) in [0, S)^2:  x = x0 + ix * sub_w,  y = y0 + iy * sub_h
//   A sample with x < -0.5, x > W - 0.5, y < -0.5 or y > H - 0.5 is skipped; the others are
//   clamped to [0, W - 1] x [0, H - 1] and read bilinearly from the neighbours floor / ceil of
//   each coordinate. out[k, c, ph, pw] = the mean of the samples not skipped (0 if none).
//
// Gradients (the original's, which the ops reproduce):
//  - features: the adjoint of the forward (each kept sample spreads grad / count with its
//    bilinear weights). This is the true derivative.
//  - offsets: for every kept sample, the partial derivative of its bilinear interpolant with
//    respect to x (and y), taken between the neighbours floor(x) and ceil(x) of the CLAMPED
//    coordinate, times t * roi_w / count (t * roi_h for y). Where the original's gradient is
//    not the derivative of its forward:
//      * a sample exactly on an integer coordinate has floor == ceil and gets 0 along that
//        axis, while the forward has a kink there (one-sided slopes U(x+1) - U(x) and
//        U(x) - U(x-1)); 0 is neither. Offsets rarely land there exactly, but zero offsets on
//        RoIs whose corners round to pixels do (e.g. scale 1 with sub-bins of whole pixels).
//      * a clamped sample (x in [-0.5, 0) or (W - 1, W - 0.5]) also has floor == ceil and gets
//        0 along the clamped axis: there that IS the derivative (the value does not move),
//        but at the clamp edges x = 0 and x = W - 1 the one-sided slope inwards is ignored.
//      * the skip is a jump: a sample entering or leaving [-0.5, W - 0.5] changes the sum and
//        the count; no gradient accounts for it (nor for the 0.1 floor of the RoI size).
//    No gradient flows to the RoIs (the original writes zeros there).
//
// Surprises of the original worth knowing (all reproduced, except where marked):
//  - RoI corners are rounded to whole input pixels before scaling, with the inclusive end
//    (+1) and a -0.5 shift: not RoIAlign's continuous coordinates.
//  - Samples sit on the top-left corners of the S x S sub-bins (ix * sub_w, not
//    (ix + 0.5) * sub_w): the samples of a bin are shifted by half a sub-bin to the top-left.
//  - The mean is over the samples inside the map only: a bin half outside averages its inside
//    half (RoIAlign counts outside samples as 0 and divides by all of them).
//  - The offsets move whole bins, in units of the RoI size times trans_std; bins that share a
//    part (Q < P) share an offset.
//  - The original checks none of: channels == D * G^2, the offsets' shape, D divisible by M,
//    RoI batch indices; MXNet's CPU kernels (deformable_psroi_pooling.cc) are empty stubs
//    that leave the output at -FLT_MAX. Here everything is checked, and the CPU path is real.
//  - spatial_scale and trans_std are float parameters in MXNet (float64 data then uses
//    float(1/12), say); here they are doubles, rounded to T for float32 data.
//  - (not reproduced) a sample at a non-finite position (NaN or inf offsets) is skipped
//    here; the original compares NaN as inside and reads a clamped, undefined pixel.
//
// CPU speed-ups. The sample grid of a bin is separable: sample (iy, ix) is kept iff iy is
// kept along y and ix along x, and its bilinear weight is wy * wx. So the CPU path builds,
// once per (RoI, offset class), for each bin the rows and columns its samples touch with
// their summed weights (and summed derivative weights), and computes
//   out = sum_rows wy * sum_cols wx * U[row, col] / count
// which reads each pixel of a bin once (4 to 9 reads for SNIPER's 4 x 4 samples on small
// RoIs instead of 64). The forward is parallel over RoIs (and channels when RoIs are few),
// 8 channels at a time; the feature gradient is parallel over blocks of channels (each plane
// updated by one thread, RoIs in ascending order) and the offset gradient over RoIs: both
// deterministic and independent of the thread count.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/core/hd.hpp>
#include <snip/core/parallel.hpp>
#include <snip/core/views.hpp>
#include <snip/ops/roi_align.hpp>

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

/// @brief Parameters of deformable PS RoI pooling, named as in the original operator. The
/// defaults are SNIPER's Faster R-CNN head on a stride-16 map: 256 channels, 7 x 7 bins, one
/// offset per bin, 4 x 4 samples per bin, offsets scaled by 0.1.
struct deform_roi_pool_options {
    double spatial_scale = 0.0625; ///< feature pixels per input-image pixel (> 0, finite)
    int output_dim = 256;          ///< D: output channels (>= 1)
    int group_size = 1;            ///< G: position-sensitive groups per axis (>= 1); the
                                   ///< features have D * G^2 channels
    int pooled_size = 7;           ///< P: bins per axis of the output (>= 1)
    int part_size = 0;             ///< Q: offsets per axis (>= 0; 0 means P)
    int sample_per_part = 4;       ///< S: samples per bin and axis (1 .. 46340)
    double trans_std = 0.1;        ///< t: scale of the offsets (finite, >= 0)
    bool no_trans = false;         ///< true: no offsets (the offsets argument is ignored)

    /// Q, with 0 resolved to P.
    SNIP_HD int parts() const { return part_size > 0 ? part_size : pooled_size; }
};

/// @brief Where the bins of one RoI lie, in feature pixels (pixel i centred at i).
template <class T>
struct deform_roi_geometry {
    T start_y = 0, start_x = 0; ///< top-left corner: round(y1) * s - 0.5, round(x1) * s - 0.5
    T roi_h = 0, roi_w = 0;     ///< size, at least 0.1
    T bin_h = 0, bin_w = 0;     ///< roi size / P
    T sub_h = 0, sub_w = 0;     ///< distance between samples: bin size / S
    T trans_std = 0;            ///< t, as T
};

/// @brief The geometry of a RoI given as a box in input-image pixels (xyxy). Coordinates
/// must be finite with |coordinate * spatial_scale| <= 2^24 (checked by the CPU ops).
template <class T>
SNIP_HD deform_roi_geometry<T> make_deform_roi_geometry(const box<T>& roi,
                                                        const deform_roi_pool_options& o) {
    const T s = static_cast<T>(o.spatial_scale);
    deform_roi_geometry<T> g;
    g.start_x = detail::round_(roi.x1) * s - T(0.5);
    g.start_y = detail::round_(roi.y1) * s - T(0.5);
    const T end_x = (detail::round_(roi.x2) + T(1)) * s - T(0.5);
    const T end_y = (detail::round_(roi.y2) + T(1)) * s - T(0.5);
    g.roi_w = detail::max_(end_x - g.start_x, T(0.1));
    g.roi_h = detail::max_(end_y - g.start_y, T(0.1));
    g.bin_w = g.roi_w / T(o.pooled_size);
    g.bin_h = g.roi_h / T(o.pooled_size);
    g.sub_w = g.bin_w / T(o.sample_per_part);
    g.sub_h = g.bin_h / T(o.sample_per_part);
    g.trans_std = static_cast<T>(o.trans_std);
    return g;
}

/// @brief The offset part and the position-sensitive group of a bin.
struct deform_roi_bin {
    int part_y = 0, part_x = 0;   ///< in [0, Q): which offset moves the bin
    int group_y = 0, group_x = 0; ///< in [0, G): input channel (c * G + group_y) * G + group_x
};

namespace detail {
SNIP_HD inline int deform_roi_clamp(int v, int hi) {
    return v < 0 ? 0 : (v > hi ? hi : v);
}
} // namespace detail

/// @brief Part and group of bin (ph, pw), computed in T as the original does
/// (floor(ph / P * Q), floor(ph * G / P)); both are clamped to their range.
template <class T>
SNIP_HD deform_roi_bin deform_roi_pool_bin(int ph, int pw, const deform_roi_pool_options& o) {
    const int q = o.parts(), gs = o.group_size, p = o.pooled_size;
    deform_roi_bin b;
    b.part_y =
        detail::deform_roi_clamp(static_cast<int>(detail::floor_(T(ph) / T(p) * T(q))), q - 1);
    b.part_x =
        detail::deform_roi_clamp(static_cast<int>(detail::floor_(T(pw) / T(p) * T(q))), q - 1);
    b.group_y =
        detail::deform_roi_clamp(static_cast<int>(detail::floor_(T(ph) * T(gs) / T(p))), gs - 1);
    b.group_x =
        detail::deform_roi_clamp(static_cast<int>(detail::floor_(T(pw) * T(gs) / T(p))), gs - 1);
    return b;
}

/// @brief The first sample coordinate of bin `p` along one axis: p * bin + start, moved by
/// offset * trans_std * roi_size (`offset` is the raw offset value, 0 without offsets).
template <class T>
SNIP_HD T deform_roi_bin_start(T start, T bin, int p, T offset, T trans_std, T roi_size) {
    T v = T(p) * bin + start;
    v += offset * trans_std * roi_size;
    return v;
}

/// @brief One sample coordinate along one axis of a map of `size` pixels: skipped
/// (inside = false) below -0.5, above size - 0.5, or not finite; otherwise clamped to
/// [0, size - 1] and read from pixels `low` = floor and `high` = ceil with weights
/// 1 - frac and frac.
template <class T>
struct deform_roi_sample {
    int low = 0, high = 0;
    T frac = 0;
    bool inside = false;
};

template <class T>
SNIP_HD deform_roi_sample<T> deform_roi_sample_at(T v, int size) {
    deform_roi_sample<T> a;
    if (!(size > 0 && v >= T(-0.5) && v <= T(size) - T(0.5))) return a;
    a.inside = true;
    v = detail::min_(detail::max_(v, T(0)), T(size - 1));
    const T lo = detail::floor_(v);
    a.low = static_cast<int>(lo);
    a.high = static_cast<int>(detail::ceil_(v));
    a.frac = v - lo;
    return a;
}

/// @brief One output element, sample by sample as the original kernel: the mean of the kept
/// samples of the bin whose first sample is (y0, x0), read from the height x width plane
/// `plane` of its input channel (element (y, x) at plane[y * stride_y + x * stride_x]).
template <class T>
SNIP_HD T deform_roi_pool_value(const T* plane, std::ptrdiff_t stride_y, std::ptrdiff_t stride_x,
                                int height, int width, const deform_roi_geometry<T>& g, T y0, T x0,
                                int samples) {
    T sum = 0;
    int count = 0;
    for (int iy = 0; iy < samples; ++iy) {
        const deform_roi_sample<T> sy = deform_roi_sample_at(y0 + T(iy) * g.sub_h, height);
        for (int ix = 0; ix < samples; ++ix) {
            const deform_roi_sample<T> sx = deform_roi_sample_at(x0 + T(ix) * g.sub_w, width);
            if (!sy.inside || !sx.inside) continue;
            const T fy = sy.frac, fx = sx.frac;
            sum += (T(1) - fx) * (T(1) - fy) * plane[sy.low * stride_y + sx.low * stride_x] +
                   (T(1) - fx) * fy * plane[sy.high * stride_y + sx.low * stride_x] +
                   fx * (T(1) - fy) * plane[sy.low * stride_y + sx.high * stride_x] +
                   fx * fy * plane[sy.high * stride_y + sx.high * stride_x];
            ++count;
        }
    }
    return count == 0 ? T(0) : sum / T(count);
}

/// @brief The gradient of one output element w.r.t. the x and y offsets of its bin (raw
/// offset units, before any other bin's share is added).
template <class T>
struct deform_roi_offset_grad {
    T x = 0, y = 0;
};

/// @brief The backward of one output element, sample by sample as the original kernel:
/// calls add(y, x, v) four times per kept sample (pixel and grad * weight / count; `add`
/// accumulates, atomically on the GPU) and, when `plane` is not null, returns the gradient
/// w.r.t. the bin's two offsets (the original's formula, see the header comment), reading
/// the features from `plane` (strides as deform_roi_pool_value).
template <class T, class Add>
SNIP_HD deform_roi_offset_grad<T> deform_roi_pool_value_backward(
    T grad, const T* plane, std::ptrdiff_t stride_y, std::ptrdiff_t stride_x, int height, int width,
    const deform_roi_geometry<T>& g, T y0, T x0, int samples, Add&& add) {
    deform_roi_offset_grad<T> r;
    int ny = 0, nx = 0; // kept samples per axis: count = ny * nx, as the forward's
    for (int i = 0; i < samples; ++i) {
        ny += deform_roi_sample_at(y0 + T(i) * g.sub_h, height).inside ? 1 : 0;
        nx += deform_roi_sample_at(x0 + T(i) * g.sub_w, width).inside ? 1 : 0;
    }
    if (ny == 0 || nx == 0) return r;
    const T diff = grad / T(ny * nx);
    for (int iy = 0; iy < samples; ++iy) {
        const deform_roi_sample<T> sy = deform_roi_sample_at(y0 + T(iy) * g.sub_h, height);
        for (int ix = 0; ix < samples; ++ix) {
            const deform_roi_sample<T> sx = deform_roi_sample_at(x0 + T(ix) * g.sub_w, width);
            if (!sy.inside || !sx.inside) continue;
            const T fy = sy.frac, fx = sx.frac;
            add(sy.low, sx.low, (T(1) - fx) * (T(1) - fy) * diff);
            add(sy.high, sx.low, (T(1) - fx) * fy * diff);
            add(sy.low, sx.high, fx * (T(1) - fy) * diff);
            add(sy.high, sx.high, fx * fy * diff);
            if (plane == nullptr) continue;
            const T u00 = plane[sy.low * stride_y + sx.low * stride_x];
            const T u01 = plane[sy.high * stride_y + sx.low * stride_x];
            const T u10 = plane[sy.low * stride_y + sx.high * stride_x];
            const T u11 = plane[sy.high * stride_y + sx.high * stride_x];
            r.x += (u11 * fy + u10 * (T(1) - fy) - u01 * fy - u00 * (T(1) - fy)) * g.trans_std *
                   diff * g.roi_w;
            r.y += (u11 * fx + u01 * (T(1) - fx) - u10 * fx - u00 * (T(1) - fx)) * g.trans_std *
                   diff * g.roi_h;
        }
    }
    return r;
}

/// @brief True when the options are usable with `channels` feature channels and, unless
/// no_trans, `offset_channels` offset channels (the CUDA launchers' check; the CPU ops throw
/// snip::error with the reason instead).
inline bool deform_roi_pool_valid(const deform_roi_pool_options& o, long long channels,
                                  long long offset_channels) {
    if (!(std::isfinite(o.spatial_scale) && o.spatial_scale > 0.0)) return false;
    if (!(std::isfinite(o.trans_std) && o.trans_std >= 0.0)) return false;
    if (o.output_dim < 1 || o.group_size < 1 || o.pooled_size < 1 || o.part_size < 0 ||
        o.sample_per_part < 1 || o.sample_per_part > 46340)
        return false;
    const long long g2 = static_cast<long long>(o.group_size) * o.group_size;
    if (g2 > INT_MAX || static_cast<long long>(o.output_dim) * g2 != channels) return false;
    if (!o.no_trans) {
        if (offset_channels < 2 || offset_channels % 2 != 0) return false;
        if (o.output_dim % (offset_channels / 2) != 0) return false;
    }
    return true;
}

// ---------------------------------------------------------------------------------
// The CPU path

namespace detail {

/// The element types of the op: all the same floating-point type, outputs mutable.
template <class F, class... A>
concept deform_roi_pool_types = std::floating_point<std::remove_cv_t<F>> &&
    (std::is_same_v<std::remove_cv_t<F>, std::remove_cv_t<A>>&&...);

/// Every check of the options and shapes; returns the number of offset classes M (1 without
/// offsets). `features` and `offsets` are extents (N, C, H, W) and (K', 2M, Q', Q'').
inline int check_deform_roi_pool_shapes(const char* op, const deform_roi_pool_options& o,
                                        const std::array<std::ptrdiff_t, 4>& features,
                                        std::ptrdiff_t num_rois,
                                        const std::array<std::ptrdiff_t, 4>& offsets) {
    require(std::isfinite(o.spatial_scale) && o.spatial_scale > 0.0, op,
            ": spatial_scale must be finite and positive, got ", o.spatial_scale);
    require(o.output_dim >= 1, op, ": output_dim must be >= 1, got ", o.output_dim);
    require(o.group_size >= 1, op, ": group_size must be >= 1, got ", o.group_size);
    require(o.pooled_size >= 1, op, ": pooled_size must be >= 1, got ", o.pooled_size);
    require(o.part_size >= 0, op, ": part_size must be >= 0 (0: pooled_size), got ", o.part_size);
    require(o.sample_per_part >= 1 && o.sample_per_part <= 46340, op,
            ": sample_per_part must be in [1, 46340], got ", o.sample_per_part);
    require(std::isfinite(o.trans_std) && o.trans_std >= 0.0, op,
            ": trans_std must be finite and >= 0, got ", o.trans_std);
    for (int r = 0; r < 4; ++r)
        require(features[r] >= 0, op, ": the features have a negative extent ", features[r]);
    const long long g2 = static_cast<long long>(o.group_size) * o.group_size;
    const long long want = g2 > INT_MAX ? LLONG_MAX : static_cast<long long>(o.output_dim) * g2;
    require(want <= INT_MAX, op, ": output_dim * group_size^2 = ", o.output_dim, " * ",
            o.group_size, "^2 is too large (at most 2^31 - 1)");
    require(features[1] == want, op, ": the features have ", features[1],
            " channels, expected output_dim * group_size^2 = ", o.output_dim, " * ", o.group_size,
            "^2 = ", want);
    if (o.no_trans) return 1;
    const std::ptrdiff_t q = o.parts();
    if (offsets[0] != num_rois || offsets[1] < 2 || offsets[1] % 2 != 0 || offsets[2] != q ||
        offsets[3] != q)
        fail(op, ": the offsets have extents (", offsets[0], ", ", offsets[1], ", ", offsets[2],
             ", ", offsets[3],
             "), expected (K, 2 * classes, part_size, part_size) with K = ", num_rois,
             ", part_size = ", q, ", classes >= 1");
    require(offsets[1] / 2 <= INT_MAX, op, ": the offsets have too many channels (", offsets[1],
            ")");
    const int classes = static_cast<int>(offsets[1] / 2);
    require(o.output_dim % classes == 0, op, ": output_dim = ", o.output_dim,
            " is not a multiple of the offsets' ", classes, " classes (", offsets[1], " channels)");
    return classes;
}

template <class V>
std::array<std::ptrdiff_t, 4> deform_roi_extents(const V& v) {
    return {v.extent(0), v.extent(1), v.extent(2), v.extent(3)};
}

/// Every check of the CPU op: options, shapes, feature planes and RoIs; returns M.
template <class T>
int check_deform_roi_pool(const char* op, const deform_roi_pool_options& o,
                          const feature_view<const T>& features, roi_view<const T> rois,
                          const feature_view<const T>& offsets) {
    const int classes = check_deform_roi_pool_shapes(op, o, deform_roi_extents(features),
                                                     rois.size(), deform_roi_extents(offsets));
    check_plane(op, "features", features);
    check_rois(op, rois, features.extent(0), o.spatial_scale);
    return classes;
}

/// One row or column that the samples of a bin touch: its offset in the feature plane
/// (index * stride), the sum of the bilinear weights of the kept samples on it, and the sum
/// of the original gradient's weights (-1 at floor, +1 at ceil: 0 when floor == ceil).
template <class T>
struct deform_roi_tap {
    std::ptrdiff_t offset;
    T w, d;
};

/// The rows and columns of every bin of one (RoI, offset class). Bin b has its rows in
/// taps[start[2b] .. start[2b+1]) and its columns in taps[start[2b+1] .. start[2b+2]);
/// count[b] is its number of kept samples (rows kept x columns kept).
template <class T>
struct deform_roi_tables {
    deform_roi_tap<T>* taps;
    std::size_t* start;
    T* count;
};

/// Upper bound of the taps of one (RoI, class): 2 per sample and axis.
inline std::size_t deform_roi_tap_capacity(const deform_roi_pool_options& o) {
    return std::size_t(o.pooled_size) * std::size_t(o.pooled_size) * 4 *
           std::size_t(o.sample_per_part);
}

/// Appends the taps of one axis of one bin at taps[n..], merging samples that share a pixel.
/// Returns the number of kept samples along this axis.
template <class T>
int append_deform_roi_axis(deform_roi_tap<T>* taps, std::size_t& n, T first, T step, int samples,
                           int size, std::ptrdiff_t stride) {
    const std::size_t begin = n;
    auto add = [&](std::ptrdiff_t offset, T w, T d) {
        for (std::size_t i = begin; i < n; ++i)
            if (taps[i].offset == offset) {
                taps[i].w += w;
                taps[i].d += d;
                return;
            }
        taps[n++] = {offset, w, d};
    };
    int kept = 0;
    for (int i = 0; i < samples; ++i) {
        const deform_roi_sample<T> a = deform_roi_sample_at(first + T(i) * step, size);
        if (!a.inside) continue;
        ++kept;
        add(a.low * stride, T(1) - a.frac, T(-1));
        add(a.high * stride, a.frac, T(1));
    }
    return kept;
}

/// Builds the tables of RoI k, offset class m (offsets ignored with no_trans), for a plane
/// with strides (stride_y, stride_x). Uses the SNIP_HD maths of the GPU path.
template <class T>
void build_deform_roi_tables(const deform_roi_geometry<T>& g, const deform_roi_pool_options& o,
                             const feature_view<const T>& offsets, std::ptrdiff_t k, int m,
                             int height, int width, std::ptrdiff_t stride_y,
                             std::ptrdiff_t stride_x, const deform_roi_tables<T>& t) {
    const int p = o.pooled_size, s = o.sample_per_part;
    std::size_t n = 0;
    for (int ph = 0; ph < p; ++ph)
        for (int pw = 0; pw < p; ++pw) {
            const std::size_t b = std::size_t(ph) * std::size_t(p) + std::size_t(pw);
            const deform_roi_bin bi = deform_roi_pool_bin<T>(ph, pw, o);
            T dx = 0, dy = 0;
            if (!o.no_trans) {
                dx = offsets(k, 2 * m, bi.part_y, bi.part_x);
                dy = offsets(k, 2 * m + 1, bi.part_y, bi.part_x);
            }
            const T y0 = deform_roi_bin_start(g.start_y, g.bin_h, ph, dy, g.trans_std, g.roi_h);
            const T x0 = deform_roi_bin_start(g.start_x, g.bin_w, pw, dx, g.trans_std, g.roi_w);
            t.start[2 * b] = n;
            const int ny = append_deform_roi_axis(t.taps, n, y0, g.sub_h, s, height, stride_y);
            t.start[2 * b + 1] = n;
            const int nx = append_deform_roi_axis(t.taps, n, x0, g.sub_w, s, width, stride_x);
            t.count[b] = T(ny * nx);
        }
    t.start[2 * std::size_t(p) * std::size_t(p)] = n;
}

/// What the loops need of each bin besides its tables: the offset of its input channel from
/// channel c * G^2 ((group_y * G + group_x) * channel stride) and its part (qy * Q + qx).
struct deform_roi_layout {
    std::vector<std::ptrdiff_t> channel;
    std::vector<int> part;
};
template <class T>
deform_roi_layout make_deform_roi_layout(const deform_roi_pool_options& o,
                                         std::ptrdiff_t channel_stride) {
    deform_roi_layout l;
    const int p = o.pooled_size;
    for (int ph = 0; ph < p; ++ph)
        for (int pw = 0; pw < p; ++pw) {
            const deform_roi_bin bi = deform_roi_pool_bin<T>(ph, pw, o);
            l.channel.push_back(std::ptrdiff_t(bi.group_y * o.group_size + bi.group_x) *
                                channel_stride);
            l.part.push_back(bi.part_y * o.parts() + bi.part_x);
        }
    return l;
}

/// Outputs of channels [c, c + NC) of RoI k from its tables; `base` is the RoI's image,
/// `cstride` the distance between the input channels of consecutive output channels.
template <int NC, class T>
void deform_roi_channels(const T* base, std::ptrdiff_t cstride, const std::ptrdiff_t* bin_channel,
                         const deform_roi_tables<T>& t, int pooled, const feature_view<T>& out,
                         std::ptrdiff_t k, std::ptrdiff_t c) {
    for (int ph = 0; ph < pooled; ++ph)
        for (int pw = 0; pw < pooled; ++pw) {
            const std::size_t b = std::size_t(ph) * std::size_t(pooled) + std::size_t(pw);
            const T count = t.count[b];
            if (count == T(0)) {
                for (int j = 0; j < NC; ++j)
                    out(k, c + j, ph, pw) = T(0);
                continue;
            }
            const T* plane[NC];
            for (int j = 0; j < NC; ++j)
                plane[j] = base + (c + j) * cstride + bin_channel[b];
            T sum[NC] = {};
            const std::size_t y1 = t.start[2 * b + 1], x1 = t.start[2 * b + 2];
            for (std::size_t yi = t.start[2 * b]; yi < y1; ++yi) {
                const std::ptrdiff_t row = t.taps[yi].offset;
                T acc[NC] = {};
                for (std::size_t xi = y1; xi < x1; ++xi) {
                    const std::ptrdiff_t at = row + t.taps[xi].offset;
                    const T w = t.taps[xi].w;
                    for (int j = 0; j < NC; ++j)
                        acc[j] += w * plane[j][at];
                }
                const T wy = t.taps[yi].w;
                for (int j = 0; j < NC; ++j)
                    sum[j] += wy * acc[j];
            }
            for (int j = 0; j < NC; ++j)
                out(k, c + j, ph, pw) = sum[j] / count;
        }
}

template <class T>
void deform_roi_pool_forward_cpu(feature_view<const T> f, roi_view<const T> rois,
                                 feature_view<const T> offsets, feature_view<T> out,
                                 const deform_roi_pool_options& o, unsigned threads) {
    constexpr const char* op = "deform_roi_pool";
    const int classes = check_deform_roi_pool(op, o, f, rois, offsets);
    const std::ptrdiff_t K = rois.size(), D = o.output_dim;
    const int P = o.pooled_size;
    check_extents(op, "the output", out, {K, D, P, P});
    if (K == 0) return;
    const int H = static_cast<int>(f.extent(2)), W = static_cast<int>(f.extent(3));
    if (H == 0 || W == 0) { // every sample is outside an empty map
        for (std::ptrdiff_t k = 0; k < K; ++k)
            for (std::ptrdiff_t c = 0; c < D; ++c)
                for (int ph = 0; ph < P; ++ph)
                    for (int pw = 0; pw < P; ++pw)
                        out(k, c, ph, pw) = T(0);
        return;
    }
    const std::size_t nbins = std::size_t(P) * std::size_t(P);
    const deform_roi_layout layout = make_deform_roi_layout<T>(o, f.stride(1));
    const std::ptrdiff_t cstride = std::ptrdiff_t(o.group_size) * o.group_size * f.stride(1);
    const std::ptrdiff_t per_class = D / classes;
    const roi_work_split split = split_roi_work(K, D, threads);
    parallel_for(
        K * split.blocks, 1,
        [&](std::ptrdiff_t first, std::ptrdiff_t last) {
            std::vector<deform_roi_tap<T>> taps(deform_roi_tap_capacity(o));
            std::vector<std::size_t> start(2 * nbins + 1);
            std::vector<T> count(nbins);
            const deform_roi_tables<T> t{taps.data(), start.data(), count.data()};
            std::ptrdiff_t built_k = -1, built_m = -1;
            deform_roi_geometry<T> g;
            for (std::ptrdiff_t item = first; item < last; ++item) {
                const std::ptrdiff_t k = item / split.blocks;
                if (k != built_k) g = make_deform_roi_geometry(rois[k], o);
                const auto n = static_cast<std::ptrdiff_t>(rois(k, 0));
                const T* base = f.data_handle() + n * f.stride(0);
                const std::ptrdiff_t c0 = (item % split.blocks) * split.block;
                const std::ptrdiff_t c1 = std::min(D, c0 + split.block);
                for (std::ptrdiff_t c = c0; c < c1;) {
                    const std::ptrdiff_t m = c / per_class;
                    const std::ptrdiff_t end = std::min(c1, (m + 1) * per_class);
                    if (k != built_k || m != built_m) { // the tables of (k, m): all its channels
                        build_deform_roi_tables(g, o, offsets, k, int(m), H, W, f.stride(2),
                                                f.stride(3), t);
                        built_k = k;
                        built_m = m;
                    }
                    for (; c + roi_align_group <= end; c += roi_align_group)
                        deform_roi_channels<roi_align_group>(base, cstride, layout.channel.data(),
                                                             t, P, out, k, c);
                    for (; c < end; ++c)
                        deform_roi_channels<1>(base, cstride, layout.channel.data(), t, P, out, k,
                                               c);
                }
            }
        },
        threads);
}

/// The offset slopes of channels [c, c + NC) of RoI k, summed per bin into tx, ty: for each
/// bin, sum_rows wy * sum_cols dx * U and sum_rows dy * sum_cols wx * U, times the output
/// gradient, added channel after channel (the order does not depend on NC).
template <int NC, class T>
void deform_roi_offset_slopes(const feature_view<const T>& grad_out, std::ptrdiff_t k,
                              std::ptrdiff_t c, const T* base, std::ptrdiff_t cstride,
                              const std::ptrdiff_t* bin_channel, const deform_roi_tables<T>& t,
                              int pooled, std::vector<T>& tx, std::vector<T>& ty) {
    for (int ph = 0; ph < pooled; ++ph)
        for (int pw = 0; pw < pooled; ++pw) {
            const std::size_t b = std::size_t(ph) * std::size_t(pooled) + std::size_t(pw);
            if (t.count[b] == T(0)) continue;
            const T* plane[NC];
            for (int j = 0; j < NC; ++j)
                plane[j] = base + (c + j) * cstride + bin_channel[b];
            const std::size_t y1 = t.start[2 * b + 1], x1 = t.start[2 * b + 2];
            T ax[NC] = {}, ay[NC] = {};
            for (std::size_t yi = t.start[2 * b]; yi < y1; ++yi) {
                const std::ptrdiff_t row = t.taps[yi].offset;
                T rw[NC] = {}, rd[NC] = {};
                for (std::size_t xi = y1; xi < x1; ++xi) {
                    const std::ptrdiff_t at = row + t.taps[xi].offset;
                    const T w = t.taps[xi].w, d = t.taps[xi].d;
                    for (int j = 0; j < NC; ++j) {
                        const T u = plane[j][at];
                        rw[j] += w * u;
                        rd[j] += d * u;
                    }
                }
                const T wy = t.taps[yi].w, dy = t.taps[yi].d;
                for (int j = 0; j < NC; ++j) {
                    ax[j] += wy * rd[j];
                    ay[j] += dy * rw[j];
                }
            }
            for (int j = 0; j < NC; ++j) {
                const T gr = grad_out(k, c + j, ph, pw);
                tx[b] += gr * ax[j];
                ty[b] += gr * ay[j];
            }
        }
}

/// The offset gradient of RoI k (geometry g): for every class, channel and bin the
/// original's per-sample slopes, summed in the separable form, added to grad_offsets in a
/// fixed order (channels ascending per bin, then bins ascending per offset).
template <class T>
void deform_roi_offsets_backward(const feature_view<const T>& grad_out,
                                 const feature_view<const T>& f, const feature_view<const T>& off,
                                 const feature_view<T>& goff, const deform_roi_pool_options& o,
                                 const deform_roi_geometry<T>& g, const deform_roi_layout& layout,
                                 std::ptrdiff_t k, std::ptrdiff_t n, int classes,
                                 const deform_roi_tables<T>& t, std::vector<T>& tx,
                                 std::vector<T>& ty) {
    const int P = o.pooled_size, Q = o.parts();
    const int H = static_cast<int>(f.extent(2)), W = static_cast<int>(f.extent(3));
    const std::size_t nbins = std::size_t(P) * std::size_t(P);
    const std::ptrdiff_t per_class = o.output_dim / classes;
    const std::ptrdiff_t cstride = std::ptrdiff_t(o.group_size) * o.group_size * f.stride(1);
    const T* base = f.data_handle() + n * f.stride(0);
    for (int m = 0; m < classes; ++m) {
        build_deform_roi_tables(g, o, off, k, m, H, W, f.stride(2), f.stride(3), t);
        std::fill(tx.begin(), tx.end(), T(0));
        std::fill(ty.begin(), ty.end(), T(0));
        std::ptrdiff_t c = m * per_class;
        const std::ptrdiff_t end = (m + 1) * per_class;
        for (; c + roi_align_group <= end; c += roi_align_group)
            deform_roi_offset_slopes<roi_align_group>(grad_out, k, c, base, cstride,
                                                      layout.channel.data(), t, P, tx, ty);
        for (; c < end; ++c)
            deform_roi_offset_slopes<1>(grad_out, k, c, base, cstride, layout.channel.data(), t, P,
                                        tx, ty);
        for (std::size_t b = 0; b < nbins; ++b) {
            if (t.count[b] == T(0)) continue;
            const int qy = layout.part[b] / Q, qx = layout.part[b] % Q;
            goff(k, 2 * m, qy, qx) += tx[b] / t.count[b] * g.trans_std * g.roi_w;
            goff(k, 2 * m + 1, qy, qx) += ty[b] / t.count[b] * g.trans_std * g.roi_h;
        }
    }
}

/// The feature gradient of output channels [c, c + NC) of RoI k from its tables (strides of
/// the gradient): grad / count * wy * wx at every (row, column) of every bin. Each plane sees
/// its additions in the same order for every NC.
template <int NC, class T>
void deform_roi_channels_backward(const feature_view<const T>& grad_out, std::ptrdiff_t k,
                                  std::ptrdiff_t c, T* base, std::ptrdiff_t cstride,
                                  const std::ptrdiff_t* bin_channel, const deform_roi_tables<T>& t,
                                  int pooled) {
    for (int ph = 0; ph < pooled; ++ph)
        for (int pw = 0; pw < pooled; ++pw) {
            const std::size_t b = std::size_t(ph) * std::size_t(pooled) + std::size_t(pw);
            if (t.count[b] == T(0)) continue;
            T* plane[NC];
            T gv[NC];
            for (int j = 0; j < NC; ++j) {
                plane[j] = base + (c + j) * cstride + bin_channel[b];
                gv[j] = grad_out(k, c + j, ph, pw) / t.count[b];
            }
            const std::size_t y1 = t.start[2 * b + 1], x1 = t.start[2 * b + 2];
            for (std::size_t yi = t.start[2 * b]; yi < y1; ++yi) {
                const std::ptrdiff_t row = t.taps[yi].offset;
                T gy[NC];
                for (int j = 0; j < NC; ++j)
                    gy[j] = gv[j] * t.taps[yi].w;
                for (std::size_t xi = y1; xi < x1; ++xi) {
                    const std::ptrdiff_t at = row + t.taps[xi].offset;
                    const T w = t.taps[xi].w;
                    for (int j = 0; j < NC; ++j)
                        plane[j][at] += gy[j] * w;
                }
            }
        }
}

template <class T>
void deform_roi_pool_backward_cpu(feature_view<const T> grad_out, feature_view<const T> f,
                                  roi_view<const T> rois, feature_view<const T> off,
                                  feature_view<T> gf, feature_view<T> goff,
                                  const deform_roi_pool_options& o, unsigned threads) {
    constexpr const char* op = "deform_roi_pool_backward";
    const int classes = check_deform_roi_pool(op, o, f, rois, off);
    const std::ptrdiff_t K = rois.size(), D = o.output_dim;
    const int P = o.pooled_size;
    check_extents(op, "grad_output", grad_out, {K, D, P, P});
    const bool want_features = gf.data_handle() != nullptr;
    const bool want_offsets = !o.no_trans && goff.data_handle() != nullptr;
    if (want_features) check_extents(op, "grad_features", gf, deform_roi_extents(f));
    if (want_offsets) check_extents(op, "grad_offsets", goff, deform_roi_extents(off));
    const int H = static_cast<int>(f.extent(2)), W = static_cast<int>(f.extent(3));
    if (K == 0 || H == 0 || W == 0) return;
    const std::size_t nbins = std::size_t(P) * std::size_t(P);
    const std::size_t cap = deform_roi_tap_capacity(o);
    const std::ptrdiff_t per_class = D / classes;

    if (want_offsets) { // parallel over RoIs: each RoI's offsets are written by one thread
        const deform_roi_layout layout = make_deform_roi_layout<T>(o, f.stride(1));
        parallel_for(
            K, 1,
            [&](std::ptrdiff_t first, std::ptrdiff_t last) {
                std::vector<deform_roi_tap<T>> taps(cap);
                std::vector<std::size_t> start(2 * nbins + 1);
                std::vector<T> count(nbins), tx(nbins), ty(nbins);
                const deform_roi_tables<T> t{taps.data(), start.data(), count.data()};
                for (std::ptrdiff_t k = first; k < last; ++k)
                    deform_roi_offsets_backward(
                        grad_out, f, off, goff, o, make_deform_roi_geometry(rois[k], o), layout, k,
                        static_cast<std::ptrdiff_t>(rois(k, 0)), classes, t, tx, ty);
            },
            threads);
    }
    if (!want_features) return;

    // Phase A (parallel over RoIs): the tables of a chunk of RoIs, at most ~2^18 taps unless a
    // single RoI needs more. Phase B (parallel over blocks of output channels, which own
    // disjoint input channels): every plane is updated by one thread, RoI after RoI in
    // ascending order, so the result is deterministic and equal to the serial loop's.
    const deform_roi_layout layout = make_deform_roi_layout<T>(o, gf.stride(1));
    const std::ptrdiff_t cstride = std::ptrdiff_t(o.group_size) * o.group_size * gf.stride(1);
    const std::size_t per_roi = cap * std::size_t(classes);
    const auto chunk = static_cast<std::ptrdiff_t>(
        std::max<std::size_t>(1, (std::size_t(1) << 18) / std::max<std::size_t>(per_roi, 1)));
    const std::ptrdiff_t cblock = backward_channel_block(D, threads);
    const std::ptrdiff_t cblocks = (D + cblock - 1) / cblock;
    const std::size_t starts = 2 * nbins + 1;
    std::vector<deform_roi_tap<T>> taps;
    std::vector<std::size_t> start;
    std::vector<T> count;
    for (std::ptrdiff_t k0 = 0; k0 < K; k0 += chunk) {
        const std::ptrdiff_t k1 = std::min(K, k0 + chunk);
        const auto tables = std::size_t(k1 - k0) * std::size_t(classes);
        taps.resize(std::max(taps.size(), tables * cap));
        start.resize(std::max(start.size(), tables * starts));
        count.resize(std::max(count.size(), tables * nbins));
        auto table = [&](std::ptrdiff_t k, std::ptrdiff_t m) {
            const std::size_t i = std::size_t(k - k0) * std::size_t(classes) + std::size_t(m);
            return deform_roi_tables<T>{taps.data() + i * cap, start.data() + i * starts,
                                        count.data() + i * nbins};
        };
        parallel_for(
            k1 - k0, 1,
            [&](std::ptrdiff_t first, std::ptrdiff_t last) {
                for (std::ptrdiff_t k = k0 + first; k < k0 + last; ++k) {
                    const deform_roi_geometry<T> g = make_deform_roi_geometry(rois[k], o);
                    for (int m = 0; m < classes; ++m)
                        build_deform_roi_tables(g, o, off, k, m, H, W, gf.stride(2), gf.stride(3),
                                                table(k, m));
                }
            },
            threads);
        parallel_for(
            cblocks, 1,
            [&](std::ptrdiff_t first, std::ptrdiff_t last) {
                const std::ptrdiff_t c0 = first * cblock, c1 = std::min(D, last * cblock);
                for (std::ptrdiff_t k = k0; k < k1; ++k) {
                    const auto n = static_cast<std::ptrdiff_t>(rois(k, 0));
                    T* base = gf.data_handle() + n * gf.stride(0);
                    for (std::ptrdiff_t c = c0; c < c1;) { // runs of one offset class
                        const std::ptrdiff_t m = c / per_class;
                        const std::ptrdiff_t end = std::min(c1, (m + 1) * per_class);
                        const deform_roi_tables<T> t = table(k, m);
                        for (; c + roi_align_group <= end; c += roi_align_group)
                            deform_roi_channels_backward<roi_align_group>(
                                grad_out, k, c, base, cstride, layout.channel.data(), t, P);
                        for (; c < end; ++c)
                            deform_roi_channels_backward<1>(grad_out, k, c, base, cstride,
                                                            layout.channel.data(), t, P);
                    }
                }
            },
            threads);
    }
}

} // namespace detail

// ---------------------------------------------------------------------------------
// The ops

/// @brief The checks of the CPU ops short of the RoIs, for callers of the CUDA launchers
/// (which only answer cudaErrorInvalidValue): throws snip::error naming the field and the
/// value unless the options are valid, the features have output_dim * group_size^2 channels
/// and, unless opts.no_trans, the offsets are K x 2M x Q x Q with output_dim divisible by M.
/// Check the RoIs with snip::validate_rois on a host copy.
/// @param feature_extents N, C, H, W; @param offset_extents ignored with no_trans.
/// @return M, the number of offset classes (1 with no_trans).
inline int validate_deform_roi_pool(const deform_roi_pool_options& opts,
                                    const std::array<std::ptrdiff_t, 4>& feature_extents,
                                    std::ptrdiff_t num_rois,
                                    const std::array<std::ptrdiff_t, 4>& offset_extents = {}) {
    return detail::check_deform_roi_pool_shapes("deform_roi_pool", opts, feature_extents, num_rois,
                                                offset_extents);
}

/// @brief Deformable PS RoI pooling forward (the definition at the top of this header):
/// out[k, c, ph, pw] is the mean of the kept S x S samples of bin (ph, pw) of RoI k, moved by
/// its offset, on input channel (c * G + gy) * G + gx of features[b_k].
/// @param features N x (output_dim * group_size^2) x H x W, any strides.
/// @param rois     K x 5 (batch index, x1, y1, x2, y2), input-image pixels, any strides;
///                 corners are rounded to whole pixels (see the definition).
/// @param offsets  K x 2M x Q x Q (channel 2m: x, 2m + 1: y offsets of output channels
///                 [m D / M, (m + 1) D / M)), in units of trans_std * RoI size; any strides.
///                 Ignored with opts.no_trans (pass an empty view, `feature_view<const T>()`).
/// @param out      K x output_dim x P x P, any strides; every element is written. Must not
///                 overlap the inputs.
/// @param threads  0: snip::default_threads(). Work is split over RoIs (and channels when
///                 there are few RoIs); the result does not depend on the thread count.
/// @throws snip::error on a bad option, mismatched extents (the message names the field and
/// the value), or a RoI whose batch index is not an integer in [0, N) or whose coordinates
/// are not finite.
template <class F, class R, class Off, class O>
requires detail::deform_roi_pool_types<F, R, Off, O> &&
    (!std::is_const_v<O>)void deform_roi_pool(feature_view<F> features, roi_view<R> rois,
                                              feature_view<Off> offsets, feature_view<O> out,
                                              const deform_roi_pool_options& opts,
                                              unsigned threads = 0) {
    using T = std::remove_cv_t<F>;
    detail::deform_roi_pool_forward_cpu<T>(feature_view<const T>(features), roi_view<const T>(rois),
                                           feature_view<const T>(offsets), out, opts, threads);
}

/// @brief Deformable PS RoI pooling forward into a new contiguous K x output_dim x P x P
/// array (NCHW).
template <class F, class R, class Off>
requires detail::deform_roi_pool_types<F, R, Off> std::vector<std::remove_cv_t<F>>
deform_roi_pool(feature_view<F> features, roi_view<R> rois, feature_view<Off> offsets,
                const deform_roi_pool_options& opts, unsigned threads = 0) {
    using T = std::remove_cv_t<F>;
    detail::check_deform_roi_pool_shapes("deform_roi_pool", opts,
                                         detail::deform_roi_extents(features), rois.size(),
                                         detail::deform_roi_extents(offsets));
    const std::ptrdiff_t K = rois.size(), D = opts.output_dim, P = opts.pooled_size;
    std::vector<T> out(static_cast<std::size_t>(K * D * P * P));
    deform_roi_pool(features, rois, offsets, feature_view<T>(out.data(), K, D, P, P), opts,
                    threads);
    return out;
}

/// @brief Deformable PS RoI pooling backward: ADDS the original operator's gradients (see
/// the header comment for where they differ from the derivative) w.r.t. the features to
/// `grad_features` and w.r.t. the offsets to `grad_offsets` (zero them first for the plain
/// gradients). Same features, rois, offsets and opts as the forward.
/// @param grad_output   K x output_dim x P x P, any strides.
/// @param grad_features extents of `features`, any strides, no two elements at the same
///                      address, not overlapping the inputs; a default-constructed view
///                      (null data) skips this gradient.
/// @param grad_offsets  extents of `offsets`, as grad_features; ignored with opts.no_trans.
/// @param threads 0: snip::default_threads(). The feature gradient is parallel over blocks
/// of channels (each plane updated by one thread, RoIs in ascending order), the offset
/// gradient over RoIs: deterministic, bit-identical for every thread count.
template <class G, class F, class R, class Off, class O>
requires detail::deform_roi_pool_types<G, F, R, Off, O> &&
    (!std::is_const_v<O>)void deform_roi_pool_backward(
        feature_view<G> grad_output, feature_view<F> features, roi_view<R> rois,
        feature_view<Off> offsets, feature_view<O> grad_features, feature_view<O> grad_offsets,
        const deform_roi_pool_options& opts, unsigned threads = 0) {
    using T = std::remove_cv_t<G>;
    detail::deform_roi_pool_backward_cpu<T>(feature_view<const T>(grad_output),
                                            feature_view<const T>(features),
                                            roi_view<const T>(rois), feature_view<const T>(offsets),
                                            grad_features, grad_offsets, opts, threads);
}

/// @brief The two gradients of deform_roi_pool_backward as new contiguous arrays.
template <class T>
struct deform_roi_pool_grads {
    std::vector<T> features; ///< extents of the features (NCHW)
    std::vector<T> offsets;  ///< extents of the offsets; empty with no_trans
};

/// @brief Deformable PS RoI pooling backward into new zero-initialised contiguous arrays.
template <class G, class F, class R, class Off>
requires detail::deform_roi_pool_types<G, F, R, Off> deform_roi_pool_grads<std::remove_cv_t<G>>
deform_roi_pool_backward(feature_view<G> grad_output, feature_view<F> features, roi_view<R> rois,
                         feature_view<Off> offsets, const deform_roi_pool_options& opts,
                         unsigned threads = 0) {
    using T = std::remove_cv_t<G>;
    detail::check_deform_roi_pool_shapes("deform_roi_pool_backward", opts,
                                         detail::deform_roi_extents(features), rois.size(),
                                         detail::deform_roi_extents(offsets));
    deform_roi_pool_grads<T> g;
    const auto fe = detail::deform_roi_extents(features);
    g.features.assign(static_cast<std::size_t>(fe[0] * fe[1] * fe[2] * fe[3]), T(0));
    feature_view<T> go;
    if (!opts.no_trans) {
        const auto oe = detail::deform_roi_extents(offsets);
        g.offsets.assign(static_cast<std::size_t>(oe[0] * oe[1] * oe[2] * oe[3]), T(0));
        go = feature_view<T>(g.offsets.data(), oe[0], oe[1], oe[2], oe[3]);
    }
    deform_roi_pool_backward(grad_output, features, rois, offsets,
                             feature_view<T>(g.features.data(), fe[0], fe[1], fe[2], fe[3]), go,
                             opts, threads);
    return g;
}

} // namespace snip
