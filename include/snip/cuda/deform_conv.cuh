// cuda/deform_conv.cuh: the GPU pieces of deformable convolution v1 for one image: the
// deformable columns (one thread per input channel and output position), their backward
// w.r.t. the input (col2im, one thread per column entry, atomicAdd) and w.r.t. the offsets
// (one thread per offset group, kernel tap and output position, both offsets). The maths are
// the SNIP_HD functions of ops/deform_conv.hpp (the CPU path uses the same). The GEMMs with
// the weights are the caller's (torch/deform_conv.hpp: at::mm). Raw pointers to contiguous
// arrays and a stream in, no allocation; never includes torch headers.
#pragma once

#include <snip/ops/deform_conv.hpp>

#include <cuda_runtime.h>

namespace snip::cuda {

namespace detail {

constexpr int dconv_threads = 256;

inline unsigned dconv_blocks(long long n) {
    const long long b = (n + dconv_threads - 1) / dconv_threads;
    return static_cast<unsigned>(b < 65535 * 32 ? b : 65535 * 32); // grid-stride beyond
}

/// The offsets of one contiguous image: (2 offset_groups kh kw) x Ho x Wo.
template <class T>
__device__ deform_offsets<T> dconv_image_offsets(const T* offset, const deform_conv_geometry& g) {
    return {offset, static_cast<std::ptrdiff_t>(g.positions()), g.out_w, 1};
}

template <class T>
__global__ void dconv_columns_kernel(const T* input, const T* offset, deform_conv_geometry g,
                                      long long total, T* columns) {
    const deform_offsets<T> off = dconv_image_offsets(offset, g);
    const long long P = g.positions(), plane = static_cast<long long>(g.height) * g.width;
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<long long>(blockDim.x) * gridDim.x) {
        const int p = static_cast<int>(i % P), c = static_cast<int>(i / P);
        const int oy = p / g.out_w, ox = p % g.out_w;
        deform_conv_fill_column(input + c * plane, g.width, 1, off, g, c, oy, ox,
                                columns + static_cast<long long>(c) * g.taps() * P + p, P);
    }
}

template <class T>
__global__ void dconv_col2im_kernel(const T* grad_columns, const T* offset, deform_conv_geometry g,
                                     long long total, T* grad_input) {
    const deform_offsets<T> off = dconv_image_offsets(offset, g);
    const long long P = g.positions(), plane = static_cast<long long>(g.height) * g.width;
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<long long>(blockDim.x) * gridDim.x) {
        const int p = static_cast<int>(i % P), k = static_cast<int>(i / P % g.taps());
        const int c = static_cast<int>(i / P / g.taps());
        T* out = grad_input + c * plane;
        const int w = g.width;
        deform_conv_scatter_column(grad_columns[i], off, g, c, k, p / g.out_w, p % g.out_w,
                                   [out, w](int y, int x, T v) {
                                       atomicAdd(out + static_cast<long long>(y) * w + x, v);
                                   });
    }
}

template <class T>
__global__ void dconv_offset_grad_kernel(const T* grad_columns, const T* input, const T* offset,
                                          deform_conv_geometry g, long long total,
                                          T* grad_offset) {
    const deform_offsets<T> off = dconv_image_offsets(offset, g);
    const long long P = g.positions(), plane = static_cast<long long>(g.height) * g.width;
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<long long>(blockDim.x) * gridDim.x) {
        const int p = static_cast<int>(i % P), k = static_cast<int>(i / P % g.taps());
        const int og = static_cast<int>(i / P / g.taps());
        T gy, gx;
        deform_conv_offset_grad(input, plane, g.width, 1, off, grad_columns + p, P, g, og, k,
                                p / g.out_w, p % g.out_w, &gy, &gx);
        const long long ch = 2 * (static_cast<long long>(og) * g.taps() + k);
        grad_offset[ch * P + p] = gy;
        grad_offset[(ch + 1) * P + p] = gx;
    }
}

/// The geometry a launcher accepts: what make_deform_conv_geometry guarantees.
inline bool dconv_geometry_ok(const deform_conv_geometry& g) {
    const deform_conv_options& o = g.o;
    return g.channels >= 0 && g.height >= 0 && g.width >= 0 && g.kernel_h >= 1 &&
           g.kernel_w >= 1 && g.out_h >= 1 && g.out_w >= 1 && o.stride_h >= 1 &&
           o.stride_w >= 1 && o.pad_h >= 0 && o.pad_w >= 0 && o.dilation_h >= 1 &&
           o.dilation_w >= 1 && o.groups >= 1 && o.offset_groups >= 1 &&
           g.channels % o.offset_groups == 0;
}

} // namespace detail

/// @brief The deformable columns of one image on the GPU (snip::deform_conv_columns' layout).
/// @param input  contiguous C x H x W device array (one image).
/// @param offset contiguous (2 offset_groups kh kw) x Ho x Wo device array (that image's).
/// @param columns contiguous (C kh kw) x (Ho Wo) device array, fully written.
/// @param g from snip::make_deform_conv_geometry (its batch is not used).
/// @return cudaErrorInvalidValue for a geometry make_deform_conv_geometry would refuse, else
/// the launch error.
template <class T>
cudaError_t deform_conv_columns(const T* input, const T* offset, T* columns,
                                const deform_conv_geometry& g, cudaStream_t stream = nullptr) {
    if (!detail::dconv_geometry_ok(g)) return cudaErrorInvalidValue;
    const long long total = static_cast<long long>(g.channels) * g.positions();
    if (total == 0) return cudaSuccess;
    detail::dconv_columns_kernel<T><<<detail::dconv_blocks(total), detail::dconv_threads, 0,
                                       stream>>>(input, offset, g, total, columns);
    return cudaGetLastError();
}

/// @brief The backward of the columns of one image w.r.t. the input: ADDS the col2im
/// scatter of `grad_columns` ((C kh kw) x (Ho Wo)) to `grad_input` (C x H x W) with
/// atomicAdd (the order of the additions, hence the last bits, varies from run to run).
template <class T>
cudaError_t deform_conv_col2im(const T* grad_columns, const T* offset, T* grad_input,
                               const deform_conv_geometry& g, cudaStream_t stream = nullptr) {
    if (!detail::dconv_geometry_ok(g)) return cudaErrorInvalidValue;
    const long long total = g.column_rows() * g.positions();
    if (total == 0 || g.height == 0 || g.width == 0) return cudaSuccess;
    detail::dconv_col2im_kernel<T><<<detail::dconv_blocks(total), detail::dconv_threads, 0,
                                      stream>>>(grad_columns, offset, g, total, grad_input);
    return cudaGetLastError();
}

/// @brief The offset gradient of one image: WRITES grad_offset ((2 offset_groups kh kw) x
/// (Ho Wo), contiguous) from the column gradient, the input and the offsets (deterministic:
/// each element is one thread's sum over the channels of its offset group).
template <class T>
cudaError_t deform_conv_offset_grad(const T* grad_columns, const T* input, const T* offset,
                                    T* grad_offset, const deform_conv_geometry& g,
                                    cudaStream_t stream = nullptr) {
    if (!detail::dconv_geometry_ok(g)) return cudaErrorInvalidValue;
    const long long total = static_cast<long long>(g.o.offset_groups) * g.taps() * g.positions();
    detail::dconv_offset_grad_kernel<T><<<detail::dconv_blocks(total), detail::dconv_threads, 0,
                                           stream>>>(grad_columns, input, offset, g, total,
                                                     grad_offset);
    return cudaGetLastError();
}

} // namespace snip::cuda
