// cuda/launchers.hpp: the RoIAlign / RoIPool CUDA launchers (cuda/roi_align.cuh,
// cuda/roi_pool.cuh) as plain, already compiled C++ functions for float and double, so that
// host code (LibTorch ops, any .cpp) calls the GPU kernels without nvcc and without CUDA
// headers. The kernels are templates; their float/double instances are compiled once by
// nvcc in cuda/launchers.cu, which CMake builds as the STATIC library snip::cuda_launchers
// (SNIP_ENABLE_CUDA=ON). Link that target; without CMake, compile
// <prefix>/include/src/cuda/launchers.cu with nvcc (-std=c++20) into your program.
//
// Same arguments, semantics and checks as the templates (see the .cuh files: contiguous
// device arrays, no allocation, the backward ADDS into grad_features with atomicAdd); two
// differences:
//  - the stream is an opaque snip::cuda::launchers::stream_t, the very type of cudaStream_t
//    (`struct CUstream_st*`), so a cudaStream_t or at::cuda::getCurrentCUDAStream().stream()
//    passes unchanged; nullptr is the legacy default stream;
//  - the result is an int holding the cudaError_t value: 0 (snip::cuda::launchers::success,
//    cudaSuccess) or an error code, e.g. 1 (cudaErrorInvalidValue) for bad options or
//    extents, 100 (cudaErrorNoDevice) or 35 (cudaErrorInsufficientDriver) when no GPU is
//    usable. error_string(code) is cudaGetErrorString's text.
// Never includes CUDA or torch headers; compiles with any C++20 compiler.
#pragma once

#include <snip/ops/roi_align.hpp>
#include <snip/ops/roi_pool.hpp>

#include <cstdint>

// The tag type behind cudaStream_t (driver_types.h: `typedef struct CUstream_st *cudaStream_t`)
// and CUstream (cuda.h): declared, never defined, at global scope as there.
struct CUstream_st;

namespace snip::cuda::launchers {

/// @brief cudaStream_t without CUDA headers (launchers.cu checks that the types are equal).
using stream_t = ::CUstream_st*;

/// @brief The result code of success (cudaSuccess).
inline constexpr int success = 0;

/// @brief The text of a result code (cudaGetErrorString), e.g. "invalid argument" for 1.
/// Needs no GPU.
const char* error_string(int code) noexcept;

/// @brief RoIAlign forward: snip::cuda::roi_align_forward<T>.
/// @param features contiguous n x c x h x w device array; @param rois contiguous k x 5
/// device array (batch index, x1, y1, x2, y2), trusted; @param out contiguous
/// k x c x pooled_h x pooled_w device array, fully written.
/// @return 0, or the cudaError_t value (1 = invalid value for bad options or extents).
int roi_align_forward(const float* features, int n, int c, int h, int w, const float* rois, int k,
                      float* out, const roi_align_options& opts,
                      stream_t stream = nullptr) noexcept;
int roi_align_forward(const double* features, int n, int c, int h, int w, const double* rois, int k,
                      double* out, const roi_align_options& opts,
                      stream_t stream = nullptr) noexcept;

/// @brief RoIAlign backward: snip::cuda::roi_align_backward<T>; ADDS to grad_features
/// (n x c x h x w, zero it first for the plain gradient).
int roi_align_backward(const float* grad_out, const float* rois, int k, float* grad_features, int n,
                       int c, int h, int w, const roi_align_options& opts,
                       stream_t stream = nullptr) noexcept;
int roi_align_backward(const double* grad_out, const double* rois, int k, double* grad_features,
                       int n, int c, int h, int w, const roi_align_options& opts,
                       stream_t stream = nullptr) noexcept;

/// @brief RoIPool forward: snip::cuda::roi_pool_forward<T>; out and argmax are
/// k x c x pooled_h x pooled_w device arrays, fully written (argmax = y * w + x or -1).
int roi_pool_forward(const float* features, int n, int c, int h, int w, const float* rois, int k,
                     float* out, std::int32_t* argmax, const roi_pool_options& opts,
                     stream_t stream = nullptr) noexcept;
int roi_pool_forward(const double* features, int n, int c, int h, int w, const double* rois, int k,
                     double* out, std::int32_t* argmax, const roi_pool_options& opts,
                     stream_t stream = nullptr) noexcept;

/// @brief RoIPool backward: snip::cuda::roi_pool_backward<T>; ADDS grad_out to grad_features
/// at every argmax (zero it first for the plain gradient).
int roi_pool_backward(const float* grad_out, const std::int32_t* argmax, const float* rois, int k,
                      float* grad_features, int n, int c, int h, int w,
                      const roi_pool_options& opts, stream_t stream = nullptr) noexcept;
int roi_pool_backward(const double* grad_out, const std::int32_t* argmax, const double* rois, int k,
                      double* grad_features, int n, int c, int h, int w,
                      const roi_pool_options& opts, stream_t stream = nullptr) noexcept;

} // namespace snip::cuda::launchers
