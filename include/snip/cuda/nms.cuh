// cuda/nms.cuh: hard NMS on the GPU with the bitmask algorithm. Each CUDA block compares
// one 64-box row tile with one 64-box column tile (held in shared memory) and writes one
// 64-bit suppression word per row box, using snip::nms_mask_word - the same SNIP_HD IoU
// test as the CPU code (products rounded with __fmul_rn, the threshold compared exactly
// as a double), so the kept boxes are identical to snip::nms on the CPU. The greedy pass
// over the words runs on the host (snip::reduce_nms_masks).
//
// Raw device pointers and a stream in; the library never allocates device memory: the
// caller provides the mask buffer (snip::nms_mask_words(n) words). Boxes must be sorted by
// the caller in rank order: decreasing score, equal scores by increasing index (the order
// of torchvision.ops.nms; e.g. thrust::stable_sort_by_key on the negated scores). Never
// includes torch headers.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/ops/detail/nms_input.hpp>
#include <snip/ops/nms.hpp>
#include <snip/ops/nms_math.hpp>

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

namespace snip::cuda {

namespace detail {

/// Block (x = column tile, y = row tile), 64 threads: thread t writes the word of row box
/// 64 * y + t for column tile x. Tiles left of the diagonal are skipped (never read).
template <class T>
__global__ void nms_mask_kernel(const T* boxes, int n, T thr, T extra, std::uint64_t* masks,
                                int blocks) {
    const int row_block = int(blockIdx.y), col_block = int(blockIdx.x);
    if (col_block < row_block) return;
    const int row_left = n - row_block * nms_tile, col_left = n - col_block * nms_tile;
    const int row_n = row_left < nms_tile ? row_left : nms_tile;
    const int col_n = col_left < nms_tile ? col_left : nms_tile;
    __shared__ T tile[4 * nms_tile];
    __shared__ T tile_area[nms_tile];
    const int t = int(threadIdx.x);
    if (t < col_n) {
        const box<T> b = snip::detail::load_box(boxes, std::ptrdiff_t(col_block) * nms_tile + t);
        tile[4 * t] = b.x1;
        tile[4 * t + 1] = b.y1;
        tile[4 * t + 2] = b.x2;
        tile[4 * t + 3] = b.y2;
        tile_area[t] = nms_area(b, extra);
    }
    __syncthreads();
    if (t < row_n) {
        const std::int64_t i = std::int64_t(row_block) * nms_tile + t;
        const box<T> cur = snip::detail::load_box(boxes, i);
        const int begin = row_block == col_block ? t + 1 : 0;
        masks[i * blocks + col_block] =
            nms_mask_word(cur, nms_area(cur, extra), tile, tile_area, begin, col_n, thr, extra);
    }
}

} // namespace detail

/// @brief Largest n the mask kernel accepts (the row-tile grid dimension is <= 65535).
inline constexpr std::int64_t nms_max_boxes = std::int64_t(65535) * nms_tile;

/// @brief Launches the suppression-mask kernel on `stream`.
/// @param boxes_sorted n boxes, contiguous xyxy (4 T each), device memory, in rank order;
/// @param iou_threshold suppress IoU > this (compared as a double; NaN throws snip::error);
/// @param masks device buffer of snip::nms_mask_words(n) words: word [i * ceil(n/64) + c]
/// bit k is set when box i suppresses box 64 c + k (only words with c >= i / 64 are
/// written); @param conv continuous (torchvision) or inclusive (+1 px widths).
/// @return the launch error, if any (cudaSuccess otherwise).
template <class T>
cudaError_t nms_masks(const T* boxes_sorted, std::int64_t n, double iou_threshold,
                      std::uint64_t* masks, cudaStream_t stream = nullptr,
                      pixel_convention conv = pixel_convention::continuous) {
    static_assert(snip::detail::nms_float_v<T>, "cuda::nms_masks: boxes must be float or double");
    const T thr = nms_threshold<T>(iou_threshold);
    require(n >= 0 && n <= nms_max_boxes, "cuda::nms_masks: n must be in [0, ", nms_max_boxes,
            "], got ", n);
    if (n == 0) return cudaSuccess;
    const int blocks = int((n + nms_tile - 1) / nms_tile);
    const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(blocks));
    detail::nms_mask_kernel<T><<<grid, nms_tile, 0, stream>>>(boxes_sorted, int(n), thr,
                                                              width_extra<T>(conv), masks, blocks);
    return cudaGetLastError();
}

/// @brief Hard NMS of `n` device boxes in rank order: launches nms_masks(), copies the
/// masks to the host, waits for `stream` and reduces them (snip::reduce_nms_masks).
/// `keep` receives the kept RANK POSITIONS (ascending; map them back through the
/// caller's sort permutation), at most opt.max_out; opt.convention picks the widths
/// (opt.algorithm and opt.threads are ignored). Result = snip::nms on the CPU.
/// @return the first CUDA error (keep is then empty), else cudaSuccess.
template <class T>
cudaError_t nms_sorted(const T* boxes_sorted, std::int64_t n, double iou_threshold,
                       std::uint64_t* masks, std::vector<std::int64_t>& keep,
                       cudaStream_t stream = nullptr, const nms_options& opt = {}) {
    keep.clear();
    cudaError_t err = nms_masks(boxes_sorted, n, iou_threshold, masks, stream, opt.convention);
    if (err != cudaSuccess || n == 0) return err;
    std::vector<std::uint64_t> host(nms_mask_words(n));
    err = cudaMemcpyAsync(host.data(), masks, host.size() * sizeof(std::uint64_t),
                          cudaMemcpyDeviceToHost, stream);
    if (err != cudaSuccess) return err;
    err = cudaStreamSynchronize(stream);
    if (err != cudaSuccess) return err;
    keep.resize(std::size_t(n) < opt.max_out ? std::size_t(n) : opt.max_out);
    keep.resize(reduce_nms_masks(host, n, keep, opt.max_out));
    return cudaSuccess;
}

} // namespace snip::cuda
