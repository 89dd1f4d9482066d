// cuda/launchers.cu: the float and double instances of the RoIAlign / RoIPool launchers
// declared in cuda/launchers.hpp, compiled once by nvcc (C++20). CMake builds this file as
// the STATIC library snip::cuda_launchers when SNIP_ENABLE_CUDA is ON; it lives next to the
// headers (and is installed with them) so that a project without snip's CMake can add it to
// its own nvcc sources. Header-only users on the CPU never compile it.
// Never includes torch headers (they fail under nvcc at C++20).
#include <snip/cuda/launchers.hpp>
#include <snip/cuda/roi_align.cuh>
#include <snip/cuda/roi_pool.cuh>

#include <cuda_runtime.h>

#include <type_traits>

namespace snip::cuda::launchers {

static_assert(std::is_same_v<stream_t, cudaStream_t>,
              "snip::cuda::launchers::stream_t must be cudaStream_t");
static_assert(static_cast<int>(cudaSuccess) == success);

const char* error_string(int code) noexcept {
    return cudaGetErrorString(static_cast<cudaError_t>(code));
}

namespace {

template <class T>
int align_forward(const T* features, int n, int c, int h, int w, const T* rois, int k, T* out,
                  const roi_align_options& opts, stream_t stream) noexcept {
    return static_cast<int>(
        snip::cuda::roi_align_forward<T>(features, n, c, h, w, rois, k, out, opts, stream));
}

template <class T>
int align_backward(const T* grad_out, const T* rois, int k, T* grad_features, int n, int c, int h,
                   int w, const roi_align_options& opts, stream_t stream) noexcept {
    return static_cast<int>(snip::cuda::roi_align_backward<T>(grad_out, rois, k, grad_features, n,
                                                              c, h, w, opts, stream));
}

template <class T>
int pool_forward(const T* features, int n, int c, int h, int w, const T* rois, int k, T* out,
                 std::int32_t* argmax, const roi_pool_options& opts, stream_t stream) noexcept {
    return static_cast<int>(
        snip::cuda::roi_pool_forward<T>(features, n, c, h, w, rois, k, out, argmax, opts, stream));
}

template <class T>
int pool_backward(const T* grad_out, const std::int32_t* argmax, const T* rois, int k,
                  T* grad_features, int n, int c, int h, int w, const roi_pool_options& opts,
                  stream_t stream) noexcept {
    return static_cast<int>(snip::cuda::roi_pool_backward<T>(
        grad_out, argmax, rois, k, grad_features, n, c, h, w, opts, stream));
}

} // namespace

int roi_align_forward(const float* features, int n, int c, int h, int w, const float* rois, int k,
                      float* out, const roi_align_options& opts, stream_t stream) noexcept {
    return align_forward(features, n, c, h, w, rois, k, out, opts, stream);
}
int roi_align_forward(const double* features, int n, int c, int h, int w, const double* rois, int k,
                      double* out, const roi_align_options& opts, stream_t stream) noexcept {
    return align_forward(features, n, c, h, w, rois, k, out, opts, stream);
}

int roi_align_backward(const float* grad_out, const float* rois, int k, float* grad_features, int n,
                       int c, int h, int w, const roi_align_options& opts,
                       stream_t stream) noexcept {
    return align_backward(grad_out, rois, k, grad_features, n, c, h, w, opts, stream);
}
int roi_align_backward(const double* grad_out, const double* rois, int k, double* grad_features,
                       int n, int c, int h, int w, const roi_align_options& opts,
                       stream_t stream) noexcept {
    return align_backward(grad_out, rois, k, grad_features, n, c, h, w, opts, stream);
}

int roi_pool_forward(const float* features, int n, int c, int h, int w, const float* rois, int k,
                     float* out, std::int32_t* argmax, const roi_pool_options& opts,
                     stream_t stream) noexcept {
    return pool_forward(features, n, c, h, w, rois, k, out, argmax, opts, stream);
}
int roi_pool_forward(const double* features, int n, int c, int h, int w, const double* rois, int k,
                     double* out, std::int32_t* argmax, const roi_pool_options& opts,
                     stream_t stream) noexcept {
    return pool_forward(features, n, c, h, w, rois, k, out, argmax, opts, stream);
}

int roi_pool_backward(const float* grad_out, const std::int32_t* argmax, const float* rois, int k,
                      float* grad_features, int n, int c, int h, int w,
                      const roi_pool_options& opts, stream_t stream) noexcept {
    return pool_backward(grad_out, argmax, rois, k, grad_features, n, c, h, w, opts, stream);
}
int roi_pool_backward(const double* grad_out, const std::int32_t* argmax, const double* rois, int k,
                      double* grad_features, int n, int c, int h, int w,
                      const roi_pool_options& opts, stream_t stream) noexcept {
    return pool_backward(grad_out, argmax, rois, k, grad_features, n, c, h, w, opts, stream);
}

} // namespace snip::cuda::launchers
