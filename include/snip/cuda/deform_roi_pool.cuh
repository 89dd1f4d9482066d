// cuda/deform_roi_pool.cuh: deformable PS RoI pooling forward and backward on the GPU, one
// thread per output element, with the SNIP_HD maths of ops/deform_roi_pool.hpp (sample by
// sample, as the original kernel; the CPU path sums the same samples in a separable form).
// Raw pointers to contiguous arrays and a stream in, no allocation; never includes torch
// headers. Semantics: see deform_roi_pool.hpp.
#pragma once

#include <snip/core/box.hpp>
#include <snip/ops/deform_roi_pool.hpp>

#include <cuda_runtime.h>

namespace snip::cuda {

namespace detail {

constexpr int deform_roi_threads = 256;

inline unsigned deform_roi_blocks(long long n) {
    const long long b = (n + deform_roi_threads - 1) / deform_roi_threads;
    return static_cast<unsigned>(b < 65535 * 32 ? b : 65535 * 32); // grid-stride beyond
}

/// Where output element i (k, c, ph, pw) reads: its RoI's geometry, its first sample and
/// the offset of its input plane; `valid` is false for an out-of-range batch index.
template <class T>
struct deform_roi_element {
    deform_roi_geometry<T> g;
    T y0 = 0, x0 = 0;
    long long plane = 0;     ///< (b * C + input channel) * H * W
    long long offset_x = -1; ///< index of its x offset in the offsets array (-1: none)
    long long offset_y = -1; ///< index of its y offset
    bool valid = false;
};

template <class T>
__device__ deform_roi_element<T>
locate_deform_roi_element(long long i, const T* rois, const T* offsets, int n, int c, int h, int w,
                          int classes, const deform_roi_pool_options& o) {
    deform_roi_element<T> e;
    const int p = o.pooled_size, q = o.parts();
    const int pw = static_cast<int>(i % p);
    const int ph = static_cast<int>((i / p) % p);
    const int ct = static_cast<int>((i / p / p) % o.output_dim);
    const long long k = i / p / p / o.output_dim;
    const T* r = rois + 5 * k;
    if (!(r[0] >= T(0) && r[0] < T(n))) return e; // invalid batch index: 0, not a wild read
    const int b = static_cast<int>(r[0]);
    e.g = make_deform_roi_geometry(box<T>{r[1], r[2], r[3], r[4]}, o);
    const deform_roi_bin bi = deform_roi_pool_bin<T>(ph, pw, o);
    T dx = 0, dy = 0;
    if (!o.no_trans) {
        const int m = ct / (o.output_dim / classes);
        e.offset_x = ((k * 2 * classes + 2 * m) * q + bi.part_y) * q + bi.part_x;
        e.offset_y = e.offset_x + static_cast<long long>(q) * q;
        dx = offsets[e.offset_x];
        dy = offsets[e.offset_y];
    }
    e.y0 = deform_roi_bin_start(e.g.start_y, e.g.bin_h, ph, dy, e.g.trans_std, e.g.roi_h);
    e.x0 = deform_roi_bin_start(e.g.start_x, e.g.bin_w, pw, dx, e.g.trans_std, e.g.roi_w);
    const int cin = (ct * o.group_size + bi.group_y) * o.group_size + bi.group_x;
    e.plane = (static_cast<long long>(b) * c + cin) * h * w;
    e.valid = true;
    return e;
}

template <class T>
__global__ void deform_roi_pool_forward_kernel(const T* features, int n, int c, int h, int w,
                                               const T* rois, const T* offsets, int classes,
                                               long long total, deform_roi_pool_options o, T* out) {
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<long long>(blockDim.x) * gridDim.x) {
        const deform_roi_element<T> e =
            locate_deform_roi_element(i, rois, offsets, n, c, h, w, classes, o);
        out[i] = e.valid ? deform_roi_pool_value(features + e.plane, w, 1, h, w, e.g, e.y0, e.x0,
                                                 o.sample_per_part)
                         : T(0);
    }
}

template <class T>
__global__ void
deform_roi_pool_backward_kernel(const T* grad_out, const T* features, int n, int c, int h, int w,
                                const T* rois, const T* offsets, int classes, long long total,
                                deform_roi_pool_options o, T* grad_features, T* grad_offsets) {
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<long long>(blockDim.x) * gridDim.x) {
        const deform_roi_element<T> e =
            locate_deform_roi_element(i, rois, offsets, n, c, h, w, classes, o);
        if (!e.valid) continue;
        const bool want_offsets = grad_offsets != nullptr && e.offset_x >= 0;
        T* plane = grad_features == nullptr ? nullptr : grad_features + e.plane;
        const deform_roi_offset_grad<T> d = deform_roi_pool_value_backward(
            grad_out[i], want_offsets ? features + e.plane : static_cast<const T*>(nullptr), w, 1,
            h, w, e.g, e.y0, e.x0, o.sample_per_part, [plane, w](int y, int x, T v) {
                if (plane != nullptr) atomicAdd(plane + static_cast<long long>(y) * w + x, v);
            });
        if (want_offsets) {
            atomicAdd(grad_offsets + e.offset_x, d.x);
            atomicAdd(grad_offsets + e.offset_y, d.y);
        }
    }
}

/// The checks of both launchers: cudaErrorInvalidValue for bad options or extents.
inline bool deform_roi_pool_arguments_ok(int n, int c, int h, int w, int k, const void* offsets,
                                         int offset_channels, const deform_roi_pool_options& o) {
    if (n < 0 || c < 0 || h < 0 || w < 0 || k < 0) return false;
    if (!deform_roi_pool_valid(o, c, offset_channels)) return false;
    return o.no_trans || offsets != nullptr || k == 0;
}

} // namespace detail

/// @brief Deformable PS RoI pooling forward on the GPU (the original operator's semantics,
/// see deform_roi_pool.hpp).
/// @param features contiguous n x c x h x w device array, c = output_dim * group_size^2.
/// @param rois     contiguous k x 5 device array (batch index, x1, y1, x2, y2), input-image
///                 pixels; trusted: check a host copy with snip::validate_rois (an
///                 out-of-range batch index gives 0).
/// @param offsets  contiguous k x offset_channels x Q x Q device array (offset_channels =
///                 2M), or nullptr with opts.no_trans (then offset_channels is ignored).
/// @param out      contiguous k x output_dim x P x P device array, fully written.
/// @return cudaErrorInvalidValue for bad options or extents (snip::validate_deform_roi_pool
/// says why), else the launch error.
template <class T>
cudaError_t deform_roi_pool_forward(const T* features, int n, int c, int h, int w, const T* rois,
                                    int k, const T* offsets, int offset_channels, T* out,
                                    const deform_roi_pool_options& opts,
                                    cudaStream_t stream = nullptr) {
    if (!detail::deform_roi_pool_arguments_ok(n, c, h, w, k, offsets, offset_channels, opts))
        return cudaErrorInvalidValue;
    const long long total =
        static_cast<long long>(k) * opts.output_dim * opts.pooled_size * opts.pooled_size;
    if (total == 0) return cudaSuccess;
    if (h == 0 || w == 0) // every sample is outside an empty map
        return cudaMemsetAsync(out, 0, static_cast<std::size_t>(total) * sizeof(T), stream);
    const int classes = opts.no_trans ? 1 : offset_channels / 2;
    detail::deform_roi_pool_forward_kernel<T>
        <<<detail::deform_roi_blocks(total), detail::deform_roi_threads, 0, stream>>>(
            features, n, c, h, w, rois, opts.no_trans ? nullptr : offsets, classes, total, opts,
            out);
    return cudaGetLastError();
}

/// @brief Deformable PS RoI pooling backward on the GPU: ADDS the original operator's
/// gradients w.r.t. the features to `grad_features` and w.r.t. the offsets to `grad_offsets`
/// with atomicAdd (zero them first for the plain gradients; the order of the additions, hence
/// the last bits, varies from run to run).
/// @param grad_out      contiguous k x output_dim x P x P device array.
/// @param features, rois, offsets, offset_channels: as for the forward (the features are read
///                      only for the offset gradient).
/// @param grad_features contiguous n x c x h x w device array, or nullptr to skip.
/// @param grad_offsets  contiguous, the extents of `offsets`, or nullptr to skip (ignored with
///                      opts.no_trans).
template <class T>
cudaError_t deform_roi_pool_backward(const T* grad_out, const T* features, int n, int c, int h,
                                     int w, const T* rois, int k, const T* offsets,
                                     int offset_channels, T* grad_features, T* grad_offsets,
                                     const deform_roi_pool_options& opts,
                                     cudaStream_t stream = nullptr) {
    if (!detail::deform_roi_pool_arguments_ok(n, c, h, w, k, offsets, offset_channels, opts))
        return cudaErrorInvalidValue;
    const long long total =
        static_cast<long long>(k) * opts.output_dim * opts.pooled_size * opts.pooled_size;
    if (opts.no_trans) grad_offsets = nullptr;
    if (total == 0 || h == 0 || w == 0 || (grad_features == nullptr && grad_offsets == nullptr))
        return cudaSuccess;
    const int classes = opts.no_trans ? 1 : offset_channels / 2;
    detail::deform_roi_pool_backward_kernel<T>
        <<<detail::deform_roi_blocks(total), detail::deform_roi_threads, 0, stream>>>(
            grad_out, features, n, c, h, w, rois, opts.no_trans ? nullptr : offsets, classes, total,
            opts, grad_features, grad_offsets);
    return cudaGetLastError();
}

} // namespace snip::cuda
