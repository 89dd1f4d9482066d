// cuda/launchers.cu: the float and double instances of the RoIAlign / RoIPool, NMS and
// IoU-matrix launchers declared in cuda/launchers.hpp, compiled once by nvcc (C++20). CMake
// builds this file as the STATIC library snip::cuda_launchers when SNIP_ENABLE_CUDA is ON; it
// lives next to the headers (and is installed with them) so that a project without snip's
// CMake can add it to its own nvcc sources. Header-only users on the CPU never compile it.
// Never includes torch headers (they fail under nvcc at C++20).
#include <snip/cuda/deform_conv.cuh>
#include <snip/cuda/deform_roi_pool.cuh>
#include <snip/cuda/iou.cuh>
#include <snip/cuda/launchers.hpp>
#include <snip/cuda/nms.cuh>
#include <snip/cuda/roi_align.cuh>
#include <snip/cuda/roi_pool.cuh>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <new>
#include <type_traits>
#include <vector>

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

template <class T>
int droi_forward(const T* features, int n, int c, int h, int w, const T* rois, int k,
                   const T* offsets, int offset_channels, T* out,
                   const deform_roi_pool_options& opts, stream_t stream) noexcept {
    return static_cast<int>(snip::cuda::deform_roi_pool_forward<T>(
        features, n, c, h, w, rois, k, offsets, offset_channels, out, opts, stream));
}

template <class T>
int droi_backward(const T* grad_out, const T* features, int n, int c, int h, int w,
                    const T* rois, int k, const T* offsets, int offset_channels,
                    T* grad_features, T* grad_offsets, const deform_roi_pool_options& opts,
                    stream_t stream) noexcept {
    return static_cast<int>(snip::cuda::deform_roi_pool_backward<T>(
        grad_out, features, n, c, h, w, rois, k, offsets, offset_channels, grad_features,
        grad_offsets, opts, stream));
}

template <class T>
int nms_run(const T* boxes_sorted, std::int64_t n, double iou_threshold, std::uint64_t* masks,
            std::int64_t* keep, std::int64_t* kept, const nms_options& opts,
            stream_t stream) noexcept {
    if (kept != nullptr) *kept = 0;
    if (kept == nullptr || std::isnan(iou_threshold) || n < 0 || n > snip::cuda::nms_max_boxes ||
        (n > 0 && (masks == nullptr || (opts.max_out > 0 && keep == nullptr))))
        return static_cast<int>(cudaErrorInvalidValue);
    try {
        std::vector<std::int64_t> positions;
        const cudaError_t e = snip::cuda::nms_sorted<T>(boxes_sorted, n, iou_threshold, masks,
                                                        positions, stream, opts);
        if (e != cudaSuccess) return static_cast<int>(e);
        std::copy(positions.begin(), positions.end(), keep);
        *kept = static_cast<std::int64_t>(positions.size());
        return success;
    } catch (const std::bad_alloc&) {
        return static_cast<int>(cudaErrorMemoryAllocation);
    } catch (...) { // snip::error from an argument check
        return static_cast<int>(cudaErrorInvalidValue);
    }
}

template <class T>
int iou_run(const T* a, int na, const T* b, int nb, T* out, stream_t stream) noexcept {
    // The kernel's grid has one row of blocks per box of `a` (at most 65535).
    if (na < 0 || nb < 0 || na > 65535) return static_cast<int>(cudaErrorInvalidValue);
    return static_cast<int>(snip::cuda::iou_matrix<T>(a, na, b, nb, out, stream));
}

template <class T>
int dconv_columns(const T* input, const T* offset, T* columns, const deform_conv_geometry& g,
                  stream_t stream) noexcept {
    return static_cast<int>(snip::cuda::deform_conv_columns<T>(input, offset, columns, g, stream));
}

template <class T>
int dconv_col2im(const T* grad_columns, const T* offset, T* grad_input,
                 const deform_conv_geometry& g, stream_t stream) noexcept {
    return static_cast<int>(
        snip::cuda::deform_conv_col2im<T>(grad_columns, offset, grad_input, g, stream));
}

template <class T>
int dconv_offset_grad(const T* grad_columns, const T* input, const T* offset, T* grad_offset,
                      const deform_conv_geometry& g, stream_t stream) noexcept {
    return static_cast<int>(snip::cuda::deform_conv_offset_grad<T>(grad_columns, input, offset,
                                                                   grad_offset, g, stream));
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

int deform_roi_pool_forward(const float* features, int n, int c, int h, int w, const float* rois,
                            int k, const float* offsets, int offset_channels, float* out,
                            const deform_roi_pool_options& opts, stream_t stream) noexcept {
    return droi_forward(features, n, c, h, w, rois, k, offsets, offset_channels, out, opts,
                          stream);
}
int deform_roi_pool_forward(const double* features, int n, int c, int h, int w,
                            const double* rois, int k, const double* offsets, int offset_channels,
                            double* out, const deform_roi_pool_options& opts,
                            stream_t stream) noexcept {
    return droi_forward(features, n, c, h, w, rois, k, offsets, offset_channels, out, opts,
                          stream);
}

int deform_roi_pool_backward(const float* grad_out, const float* features, int n, int c, int h,
                             int w, const float* rois, int k, const float* offsets,
                             int offset_channels, float* grad_features, float* grad_offsets,
                             const deform_roi_pool_options& opts, stream_t stream) noexcept {
    return droi_backward(grad_out, features, n, c, h, w, rois, k, offsets, offset_channels,
                           grad_features, grad_offsets, opts, stream);
}
int deform_roi_pool_backward(const double* grad_out, const double* features, int n, int c, int h,
                             int w, const double* rois, int k, const double* offsets,
                             int offset_channels, double* grad_features, double* grad_offsets,
                             const deform_roi_pool_options& opts, stream_t stream) noexcept {
    return droi_backward(grad_out, features, n, c, h, w, rois, k, offsets, offset_channels,
                           grad_features, grad_offsets, opts, stream);
}

int nms_sorted(const float* boxes_sorted, std::int64_t n, double iou_threshold,
               std::uint64_t* masks, std::int64_t* keep, std::int64_t* kept,
               const nms_options& opts, stream_t stream) noexcept {
    return nms_run(boxes_sorted, n, iou_threshold, masks, keep, kept, opts, stream);
}
int nms_sorted(const double* boxes_sorted, std::int64_t n, double iou_threshold,
               std::uint64_t* masks, std::int64_t* keep, std::int64_t* kept,
               const nms_options& opts, stream_t stream) noexcept {
    return nms_run(boxes_sorted, n, iou_threshold, masks, keep, kept, opts, stream);
}

int iou_matrix(const float* a, int na, const float* b, int nb, float* out,
               stream_t stream) noexcept {
    return iou_run(a, na, b, nb, out, stream);
}
int iou_matrix(const double* a, int na, const double* b, int nb, double* out,
               stream_t stream) noexcept {
    return iou_run(a, na, b, nb, out, stream);
}

int deform_conv_columns(const float* input, const float* offset, float* columns,
                        const deform_conv_geometry& g, stream_t stream) noexcept {
    return dconv_columns(input, offset, columns, g, stream);
}
int deform_conv_columns(const double* input, const double* offset, double* columns,
                        const deform_conv_geometry& g, stream_t stream) noexcept {
    return dconv_columns(input, offset, columns, g, stream);
}

int deform_conv_col2im(const float* grad_columns, const float* offset, float* grad_input,
                       const deform_conv_geometry& g, stream_t stream) noexcept {
    return dconv_col2im(grad_columns, offset, grad_input, g, stream);
}
int deform_conv_col2im(const double* grad_columns, const double* offset, double* grad_input,
                       const deform_conv_geometry& g, stream_t stream) noexcept {
    return dconv_col2im(grad_columns, offset, grad_input, g, stream);
}

int deform_conv_offset_grad(const float* grad_columns, const float* input, const float* offset,
                            float* grad_offset, const deform_conv_geometry& g,
                            stream_t stream) noexcept {
    return dconv_offset_grad(grad_columns, input, offset, grad_offset, g, stream);
}
int deform_conv_offset_grad(const double* grad_columns, const double* input,
                            const double* offset, double* grad_offset,
                            const deform_conv_geometry& g, stream_t stream) noexcept {
    return dconv_offset_grad(grad_columns, input, offset, grad_offset, g, stream);
}

} // namespace snip::cuda::launchers
