// cuda/roi_pool.cuh: RoIPool forward and backward on the GPU, one thread per output element,
// with the SNIP_HD maths of roi_pool.hpp (the CPU path uses the same functions). Raw
// pointers to contiguous arrays and a stream in, no allocation; never includes torch
// headers. Semantics: see roi_pool.hpp.
#pragma once

#include <snip/core/box.hpp>
#include <snip/cuda/roi_align.cuh>
#include <snip/ops/roi_pool.hpp>

#include <cuda_runtime.h>

#include <cstdint>

namespace snip::cuda {

namespace detail {

template <class T>
__global__ void roi_pool_forward_kernel(const T* features, int n, int c, int h, int w,
                                        const T* rois, long long total, roi_pool_options o, T* out,
                                        std::int32_t* argmax) {
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<long long>(blockDim.x) * gridDim.x) {
        const int pw = static_cast<int>(i % o.pooled_w);
        const int ph = static_cast<int>((i / o.pooled_w) % o.pooled_h);
        const int ch = static_cast<int>((i / o.pooled_w / o.pooled_h) % c);
        const long long k = i / o.pooled_w / o.pooled_h / c;
        const T* r = rois + 5 * k;
        if (!(r[0] >= T(0) && r[0] < T(n))) { // invalid batch index: an empty bin
            out[i] = T(0);
            argmax[i] = -1;
            continue;
        }
        const int b = static_cast<int>(r[0]);
        const roi_pool_window<T> win = make_roi_pool_window(box<T>{r[1], r[2], r[3], r[4]}, o);
        const roi_pool_bin bin = roi_pool_bin_at(win, ph, pw, h, w);
        const T* plane = features + (static_cast<long long>(b) * c + ch) * h * w;
        std::int32_t a = -1;
        out[i] = roi_pool_value(plane, w, 1, w, bin, a);
        argmax[i] = a;
    }
}

template <class T>
__global__ void roi_pool_backward_kernel(const T* grad_out, const std::int32_t* argmax, int n,
                                         int c, int h, int w, const T* rois, long long total,
                                         roi_pool_options o, T* grad_features) {
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<long long>(blockDim.x) * gridDim.x) {
        const int ch = static_cast<int>((i / o.pooled_w / o.pooled_h) % c);
        const long long k = i / o.pooled_w / o.pooled_h / c;
        const T* r = rois + 5 * k;
        if (!(r[0] >= T(0) && r[0] < T(n))) continue;
        const int b = static_cast<int>(r[0]);
        T* plane = grad_features + (static_cast<long long>(b) * c + ch) * h * w;
        roi_pool_value_backward(grad_out[i], argmax[i], h, w, [plane, w](int y, int x, T v) {
            atomicAdd(plane + static_cast<long long>(y) * w + x, v);
        });
    }
}

} // namespace detail

/// @brief RoIPool forward on the GPU (torchvision.ops.roi_pool semantics).
/// @param features contiguous n x c x h x w device array.
/// @param rois     contiguous k x 5 device array (batch index, x1, y1, x2, y2), input-image
///                 pixels; trusted: check a host copy with snip::validate_rois (an
///                 out-of-range batch index gives an empty bin).
/// @param out, argmax contiguous k x c x pooled_h x pooled_w device arrays, fully written;
///                 argmax = y * w + x within the plane, or -1.
/// @return cudaErrorInvalidValue for bad options or extents, else the launch error.
template <class T>
cudaError_t roi_pool_forward(const T* features, int n, int c, int h, int w, const T* rois, int k,
                             T* out, std::int32_t* argmax, const roi_pool_options& opts,
                             cudaStream_t stream = nullptr) {
    if (opts.pooled_h <= 0 || opts.pooled_w <= 0 || !(opts.spatial_scale > 0.0) || n < 0 || c < 0 ||
        h < 0 || w < 0 || k < 0 || static_cast<long long>(h) * w > INT32_MAX)
        return cudaErrorInvalidValue;
    const long long total = static_cast<long long>(k) * c * opts.pooled_h * opts.pooled_w;
    if (total == 0) return cudaSuccess;
    detail::roi_pool_forward_kernel<T>
        <<<detail::roi_blocks(total), detail::roi_threads, 0, stream>>>(features, n, c, h, w, rois,
                                                                        total, opts, out, argmax);
    return cudaGetLastError();
}

/// @brief RoIPool backward on the GPU: ADDS grad_out to `grad_features` at every argmax with
/// atomicAdd (zero it first for the plain gradient).
/// @param grad_out, argmax contiguous k x c x pooled_h x pooled_w device arrays.
/// @param rois          contiguous k x 5 device array, as for the forward.
/// @param grad_features contiguous n x c x h x w device array.
template <class T>
cudaError_t roi_pool_backward(const T* grad_out, const std::int32_t* argmax, const T* rois, int k,
                              T* grad_features, int n, int c, int h, int w,
                              const roi_pool_options& opts, cudaStream_t stream = nullptr) {
    if (opts.pooled_h <= 0 || opts.pooled_w <= 0 || !(opts.spatial_scale > 0.0) || n < 0 || c < 0 ||
        h < 0 || w < 0 || k < 0 || static_cast<long long>(h) * w > INT32_MAX)
        return cudaErrorInvalidValue;
    const long long total = static_cast<long long>(k) * c * opts.pooled_h * opts.pooled_w;
    if (total == 0 || h == 0 || w == 0) return cudaSuccess;
    detail::roi_pool_backward_kernel<T>
        <<<detail::roi_blocks(total), detail::roi_threads, 0, stream>>>(
            grad_out, argmax, n, c, h, w, rois, total, opts, grad_features);
    return cudaGetLastError();
}

} // namespace snip::cuda
