// cuda/launchers.hpp: the RoIAlign / RoIPool, NMS and IoU-matrix CUDA launchers
// (cuda/roi_align.cuh, cuda/roi_pool.cuh, cuda/nms.cuh, cuda/iou.cuh) as plain, already
// compiled C++ functions for float and double, so that host code (LibTorch ops, any .cpp)
// calls the GPU kernels without nvcc and without CUDA headers. The kernels are templates;
// their float/double instances are compiled once by nvcc in cuda/launchers.cu, which CMake
// builds as the STATIC library snip::cuda_launchers (SNIP_ENABLE_CUDA=ON). Link that target;
// without CMake, compile <prefix>/include/src/cuda/launchers.cu with nvcc (-std=c++20) into
// your program.
//
// Same arguments, semantics and checks as the templates (see the .cuh files: contiguous
// device arrays, no device allocation, the backward ADDS into grad_features with atomicAdd);
// three differences:
//  - the stream is an opaque snip::cuda::launchers::stream_t, the very type of cudaStream_t
//    (`struct CUstream_st*`), so a cudaStream_t or at::cuda::getCurrentCUDAStream().stream()
//    passes unchanged; nullptr is the legacy default stream;
//  - the result is an int holding the cudaError_t value: 0 (snip::cuda::launchers::success,
//    cudaSuccess) or an error code, e.g. 1 (cudaErrorInvalidValue) for bad options or
//    extents, 100 (cudaErrorNoDevice) or 35 (cudaErrorInsufficientDriver) when no GPU is
//    usable. error_string(code) is cudaGetErrorString's text;
//  - nms_sorted writes the kept positions to a host array (not a std::vector) and reports
//    invalid arguments as a code instead of throwing snip::error.
// Never includes CUDA or torch headers; compiles with any C++20 compiler.
#pragma once

#include <snip/ops/deform_conv.hpp>
#include <snip/ops/deform_roi_pool.hpp>
#include <snip/ops/nms.hpp>
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

/// @brief Deformable PS RoI pooling forward: snip::cuda::deform_roi_pool_forward<T>.
/// @param features contiguous n x c x h x w device array (c = output_dim * group_size^2);
/// @param rois contiguous k x 5 device array, trusted; @param offsets contiguous
/// k x offset_channels x Q x Q device array, or nullptr with opts.no_trans; @param out
/// contiguous k x output_dim x P x P device array, fully written.
/// @return 0, or the cudaError_t value (1 = invalid value for bad options or extents:
/// snip::validate_deform_roi_pool names the reason).
int deform_roi_pool_forward(const float* features, int n, int c, int h, int w, const float* rois,
                            int k, const float* offsets, int offset_channels, float* out,
                            const deform_roi_pool_options& opts,
                            stream_t stream = nullptr) noexcept;
int deform_roi_pool_forward(const double* features, int n, int c, int h, int w,
                            const double* rois, int k, const double* offsets, int offset_channels,
                            double* out, const deform_roi_pool_options& opts,
                            stream_t stream = nullptr) noexcept;

/// @brief Deformable PS RoI pooling backward: snip::cuda::deform_roi_pool_backward<T>; ADDS
/// to grad_features (n x c x h x w) and grad_offsets (the offsets' extents), either of which
/// may be nullptr to skip it (zero them first for the plain gradients).
int deform_roi_pool_backward(const float* grad_out, const float* features, int n, int c, int h,
                             int w, const float* rois, int k, const float* offsets,
                             int offset_channels, float* grad_features, float* grad_offsets,
                             const deform_roi_pool_options& opts,
                             stream_t stream = nullptr) noexcept;
int deform_roi_pool_backward(const double* grad_out, const double* features, int n, int c, int h,
                             int w, const double* rois, int k, const double* offsets,
                             int offset_channels, double* grad_features, double* grad_offsets,
                             const deform_roi_pool_options& opts,
                             stream_t stream = nullptr) noexcept;

/// @brief Hard NMS of `n` device boxes in rank order: snip::cuda::nms_sorted<T> (the bitmask
/// kernel, then the greedy pass on the host; kept boxes identical to snip::nms on the CPU).
/// @param boxes_sorted contiguous n x 4 xyxy device array, sorted by the caller by decreasing
/// score, equal scores by increasing index; @param iou_threshold a box is dropped when its
/// IoU with a kept box is > this; @param masks device buffer of snip::nms_mask_words(n)
/// 64-bit words (scratch); @param keep HOST array of at least min(n, opts.max_out) values:
/// receives the kept RANK POSITIONS, ascending (map them back through the sort's permutation);
/// @param kept receives their count (0 on error); opts.max_out and opts.convention apply,
/// opts.algorithm and opts.threads are ignored. Waits for `stream` (the masks are copied to
/// the host).
/// @return 0, or the cudaError_t value: 1 (invalid value) for a NaN threshold, n < 0 or
/// n > snip::cuda::nms_max_boxes (65535 * 64), 2 (memory allocation) when the host copy of the
/// masks cannot be allocated.
int nms_sorted(const float* boxes_sorted, std::int64_t n, double iou_threshold,
               std::uint64_t* masks, std::int64_t* keep, std::int64_t* kept,
               const nms_options& opts = {}, stream_t stream = nullptr) noexcept;
int nms_sorted(const double* boxes_sorted, std::int64_t n, double iou_threshold,
               std::uint64_t* masks, std::int64_t* keep, std::int64_t* kept,
               const nms_options& opts = {}, stream_t stream = nullptr) noexcept;

/// @brief The IoU matrix: snip::cuda::iou_matrix<T>, out[i * nb + j] = snip::iou(a[i], b[j])
/// (continuous convention; 0 when the union is not positive).
/// @param a contiguous na x 4 xyxy device array; @param b contiguous nb x 4; @param out
/// contiguous na x nb device array, fully written.
/// @return 0, or the cudaError_t value (1 = invalid value for na < 0, nb < 0 or na > 65535,
/// the grid's row limit).
int iou_matrix(const float* a, int na, const float* b, int nb, float* out,
               stream_t stream = nullptr) noexcept;
int iou_matrix(const double* a, int na, const double* b, int nb, double* out,
               stream_t stream = nullptr) noexcept;

/// @brief Deformable convolution, the columns of one image: snip::cuda::deform_conv_columns<T>.
/// @param input contiguous C x H x W device array (one image); @param offset contiguous
/// (2 offset_groups kh kw) x Ho x Wo device array (that image's); @param columns contiguous
/// (C kh kw) x (Ho Wo) device array, fully written; @param g from
/// snip::make_deform_conv_geometry.
/// @return 0, or the cudaError_t value (1 = invalid value for a geometry that
/// make_deform_conv_geometry refuses).
int deform_conv_columns(const float* input, const float* offset, float* columns,
                        const deform_conv_geometry& g, stream_t stream = nullptr) noexcept;
int deform_conv_columns(const double* input, const double* offset, double* columns,
                        const deform_conv_geometry& g, stream_t stream = nullptr) noexcept;

/// @brief Deformable convolution, the input gradient of one image from the column gradient:
/// snip::cuda::deform_conv_col2im<T>; ADDS to grad_input (C x H x W) with atomicAdd.
int deform_conv_col2im(const float* grad_columns, const float* offset, float* grad_input,
                       const deform_conv_geometry& g, stream_t stream = nullptr) noexcept;
int deform_conv_col2im(const double* grad_columns, const double* offset, double* grad_input,
                       const deform_conv_geometry& g, stream_t stream = nullptr) noexcept;

/// @brief Deformable convolution, the offset gradient of one image from the column gradient:
/// snip::cuda::deform_conv_offset_grad<T>; WRITES grad_offset ((2 offset_groups kh kw) x
/// (Ho Wo)), deterministic.
int deform_conv_offset_grad(const float* grad_columns, const float* input, const float* offset,
                            float* grad_offset, const deform_conv_geometry& g,
                            stream_t stream = nullptr) noexcept;
int deform_conv_offset_grad(const double* grad_columns, const double* input,
                            const double* offset, double* grad_offset,
                            const deform_conv_geometry& g, stream_t stream = nullptr) noexcept;

} // namespace snip::cuda::launchers
