// cuda/roi_align.cuh: RoIAlign forward and backward on the GPU, one thread per output
// element, with the SNIP_HD maths of roi_align.hpp (the CPU path uses the same functions).
// Raw pointers to contiguous arrays and a stream in, no allocation; never includes torch
// headers. Semantics: see roi_align.hpp.
#pragma once

#include <snip/core/box.hpp>
#include <snip/ops/roi_align.hpp>

#include <cuda_runtime.h>

namespace snip::cuda {

namespace detail {

constexpr int roi_threads = 256;

inline unsigned roi_blocks(long long n) {
    const long long b = (n + roi_threads - 1) / roi_threads;
    return static_cast<unsigned>(b < 65535 * 32 ? b : 65535 * 32); // grid-stride beyond
}

template <class T>
__global__ void roi_align_forward_kernel(const T* features, int n, int c, int h, int w,
                                         const T* rois, long long total, roi_align_options o,
                                         T* out) {
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<long long>(blockDim.x) * gridDim.x) {
        const int pw = static_cast<int>(i % o.pooled_w);
        const int ph = static_cast<int>((i / o.pooled_w) % o.pooled_h);
        const int ch = static_cast<int>((i / o.pooled_w / o.pooled_h) % c);
        const long long k = i / o.pooled_w / o.pooled_h / c;
        const T* r = rois + 5 * k;
        if (!(r[0] >= T(0) && r[0] < T(n))) { // invalid batch index: 0 rather than a wild read
            out[i] = T(0);
            continue;
        }
        const int b = static_cast<int>(r[0]);
        const roi_align_grid<T> g = make_roi_align_grid(box<T>{r[1], r[2], r[3], r[4]}, o);
        const T* plane = features + (static_cast<long long>(b) * c + ch) * h * w;
        out[i] = roi_align_value(plane, w, 1, h, w, g, ph, pw);
    }
}

template <class T>
__global__ void roi_align_backward_kernel(const T* grad_out, int n, int c, int h, int w,
                                          const T* rois, long long total, roi_align_options o,
                                          T* grad_features) {
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<long long>(blockDim.x) * gridDim.x) {
        const int pw = static_cast<int>(i % o.pooled_w);
        const int ph = static_cast<int>((i / o.pooled_w) % o.pooled_h);
        const int ch = static_cast<int>((i / o.pooled_w / o.pooled_h) % c);
        const long long k = i / o.pooled_w / o.pooled_h / c;
        const T* r = rois + 5 * k;
        if (!(r[0] >= T(0) && r[0] < T(n))) continue;
        const int b = static_cast<int>(r[0]);
        const roi_align_grid<T> g = make_roi_align_grid(box<T>{r[1], r[2], r[3], r[4]}, o);
        T* plane = grad_features + (static_cast<long long>(b) * c + ch) * h * w;
        roi_align_value_backward(grad_out[i], g, ph, pw, h, w, [plane, w](int y, int x, T v) {
            atomicAdd(plane + static_cast<long long>(y) * w + x, v);
        });
    }
}

} // namespace detail

/// @brief RoIAlign forward on the GPU (torchvision.ops.roi_align semantics).
/// @param features contiguous n x c x h x w device array.
/// @param rois     contiguous k x 5 device array (batch index, x1, y1, x2, y2), input-image
///                 pixels; trusted: check a host copy with snip::validate_rois (an
///                 out-of-range batch index gives 0).
/// @param out      contiguous k x c x pooled_h x pooled_w device array, fully written.
/// @return cudaErrorInvalidValue for bad options or extents, else the launch error.
template <class T>
cudaError_t roi_align_forward(const T* features, int n, int c, int h, int w, const T* rois, int k,
                              T* out, const roi_align_options& opts,
                              cudaStream_t stream = nullptr) {
    if (opts.pooled_h <= 0 || opts.pooled_w <= 0 || !(opts.spatial_scale > 0.0) || n < 0 || c < 0 ||
        h < 0 || w < 0 || k < 0)
        return cudaErrorInvalidValue;
    const long long total = static_cast<long long>(k) * c * opts.pooled_h * opts.pooled_w;
    if (total == 0) return cudaSuccess;
    if (h == 0 || w == 0) // every sample is outside an empty map
        return cudaMemsetAsync(out, 0, static_cast<std::size_t>(total) * sizeof(T), stream);
    detail::roi_align_forward_kernel<T>
        <<<detail::roi_blocks(total), detail::roi_threads, 0, stream>>>(features, n, c, h, w, rois,
                                                                        total, opts, out);
    return cudaGetLastError();
}

/// @brief RoIAlign backward on the GPU: ADDS the gradient w.r.t. the features to
/// `grad_features` with atomicAdd (zero it first, e.g. cudaMemsetAsync, for the plain
/// gradient). The order of the additions, hence the last bits, varies from run to run.
/// @param grad_out      contiguous k x c x pooled_h x pooled_w device array.
/// @param rois          contiguous k x 5 device array, as for the forward.
/// @param grad_features contiguous n x c x h x w device array.
template <class T>
cudaError_t roi_align_backward(const T* grad_out, const T* rois, int k, T* grad_features, int n,
                               int c, int h, int w, const roi_align_options& opts,
                               cudaStream_t stream = nullptr) {
    if (opts.pooled_h <= 0 || opts.pooled_w <= 0 || !(opts.spatial_scale > 0.0) || n < 0 || c < 0 ||
        h < 0 || w < 0 || k < 0)
        return cudaErrorInvalidValue;
    const long long total = static_cast<long long>(k) * c * opts.pooled_h * opts.pooled_w;
    if (total == 0 || h == 0 || w == 0) return cudaSuccess;
    detail::roi_align_backward_kernel<T>
        <<<detail::roi_blocks(total), detail::roi_threads, 0, stream>>>(grad_out, n, c, h, w, rois,
                                                                        total, opts, grad_features);
    return cudaGetLastError();
}

} // namespace snip::cuda
