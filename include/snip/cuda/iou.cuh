// cuda/iou.cuh: the IoU matrix on the GPU, with the same SNIP_HD box maths as the CPU.
// Raw pointers and a stream in, no allocation; never includes torch headers.
#pragma once

#include <snip/core/box.hpp>

#include <cuda_runtime.h>

namespace snip::cuda {

namespace detail {
template <class T>
__global__ void iou_matrix_kernel(const T* a, int na, const T* b, int nb, T* out) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    const int i = blockIdx.y;
    if (i >= na || j >= nb) return;
    const box<T> ba{a[4 * i], a[4 * i + 1], a[4 * i + 2], a[4 * i + 3]};
    const box<T> bb{b[4 * j], b[4 * j + 1], b[4 * j + 2], b[4 * j + 3]};
    out[static_cast<long long>(i) * nb + j] = snip::iou(ba, bb);
}
} // namespace detail

/// @brief out[i * nb + j] = IoU(a[i], b[j]) for contiguous xyxy device arrays.
/// @return the launch error, if any (cudaSuccess otherwise).
template <class T>
cudaError_t iou_matrix(const T* a, int na, const T* b, int nb, T* out, cudaStream_t stream = nullptr) {
    if (na <= 0 || nb <= 0) return cudaSuccess;
    constexpr int threads = 256;
    const dim3 grid((nb + threads - 1) / threads, na);
    detail::iou_matrix_kernel<T><<<grid, threads, 0, stream>>>(a, na, b, nb, out);
    return cudaGetLastError();
}

} // namespace snip::cuda
