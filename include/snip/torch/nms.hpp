// torch/nms.hpp: torchvision.ops.nms and batched_nms on LibTorch tensors (int64 indices of
// the kept boxes). CPU: snip's nms.hpp on strided views; nms on CUDA tensors
// (SNIP_TORCH_CUDA): the compiled bitmask launcher, same indices. Conventions: see
// torch/ops.hpp.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/ops/batched_nms.hpp>
#include <snip/ops/nms.hpp>
#include <snip/torch/dispatch.hpp>

#include <ATen/ATen.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <tuple>
#include <vector>

namespace snip::torch_ops {

namespace detail {

/// The nms workspace of this thread for element type T (reused across calls).
template <class T>
nms_workspace<T>& thread_nms_workspace() {
    static thread_local nms_workspace<T> ws;
    return ws;
}

} // namespace detail

/// @brief torchvision.ops.nms: int64 indices of the kept boxes by decreasing score (equal
/// scores: lower index first); a box is dropped when its IoU with a kept box is >
/// iou_threshold. Exactly torchvision's indices (see nms.hpp).
/// @param boxes N x 4 xyxy (x1 <= x2, y1 <= y2), float32/float64, CPU (any strides) or CUDA
/// with SNIP_TORCH_CUDA; the indices are on the device of the boxes.
/// @param scores N scores of the same dtype and device (copied when not contiguous).
/// Scratch memory on the CPU is one snip::nms_workspace per thread and dtype, kept for reuse.
/// On the GPU: a stable sort of the scores, the suppression masks (snip::nms_mask_words(N)
/// words, N <= 65535 * 64) and one copy of them to the host, where the greedy pass runs.
inline at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
    constexpr const char* op = "nms";
    auto cpu = [&](auto tag) {
        using T = decltype(tag);
        const box_view<const T> b = as_box_view<const T>(boxes, "nms: boxes");
        const at::Tensor s = detail::contiguous_vector<T>(scores, "nms: scores", b.size());
        at::Tensor keep = at::empty({b.size()}, boxes.options().dtype(at::kLong));
        const std::size_t n =
            snip::nms(b, detail::as_span<T>(s), iou_threshold,
                      std::span<std::int64_t>(keep.data_ptr<std::int64_t>(), std::size_t(b.size())),
                      detail::thread_nms_workspace<T>());
        return keep.resize_({static_cast<std::int64_t>(n)});
    };
#ifdef SNIP_TORCH_CUDA
    auto cuda = [&](auto tag, const at::Tensor& b, const at::Tensor& s) {
        using T = decltype(tag);
        detail::check_torch_shape<T>(b, "nms: boxes", 2, {-1, 4, -1, -1}, "N x 4");
        const std::int64_t n = b.size(0);
        detail::check_torch_shape<T>(s, "nms: scores", 1, {n, -1, -1, -1},
                                     snip::concat("[", n, "]"));
        require(!std::isnan(iou_threshold), "nms: iou_threshold must be a number, got ",
                iou_threshold);
        const std::int64_t max_boxes = std::int64_t(65535) * nms_tile;
        require(n <= max_boxes, "nms: at most ", max_boxes, " boxes on the GPU, got ", n);
        if (n == 0) return at::empty({0}, b.options().dtype(at::kLong));
        // The CPU's input checks: NaN scores and coordinates that are not finite.
        const at::Tensor nan = at::isnan(s).nonzero();
        if (nan.numel() > 0) fail("nms: score ", nan[0][0].item<std::int64_t>(), " is NaN");
        const at::Tensor bad = at::logical_not(at::isfinite(b)).any(1).nonzero();
        if (bad.numel() > 0) {
            const std::int64_t i = bad[0][0].item<std::int64_t>();
            const at::Tensor v = b[i].cpu();
            const T* c = v.data_ptr<T>();
            fail("nms: box ", i, " has a coordinate that is not finite: [", c[0], ", ", c[1], ", ",
                 c[2], ", ", c[3], "]");
        }
        // Rank order: decreasing score, equal scores by increasing index (a stable sort).
        const at::Tensor order = std::get<1>(s.sort(/*stable=*/true, 0, /*descending=*/true));
        const at::Tensor sorted = b.index_select(0, order).contiguous();
        at::Tensor masks =
            at::empty({static_cast<std::int64_t>(nms_mask_words(n))}, b.options().dtype(at::kLong));
        std::vector<std::int64_t> positions(static_cast<std::size_t>(n));
        std::int64_t kept = 0;
        detail::check_cuda(op, snip::cuda::launchers::nms_sorted(
                                   sorted.data_ptr<T>(), n, iou_threshold,
                                   reinterpret_cast<std::uint64_t*>(masks.data_ptr<std::int64_t>()),
                                   positions.data(), &kept, nms_options{}, detail::cuda_stream()));
        const at::Tensor where = at::from_blob(positions.data(), {kept}, at::kLong).to(b.device());
        return order.index_select(0, where);
    };
#else
    const detail::cpu_only cuda;
#endif
    return detail::on_device(op, "N x 4", cpu, cuda, {{boxes, "boxes"}, {scores, "scores"}});
}

/// @brief torchvision.ops.batched_nms: NMS per class id `idxs[i]`, the kept indices of all
/// classes merged by decreasing score (equal scores: lower index first). Groups by class
/// exactly (no coordinate offsets). CPU only.
/// @param idxs N class ids, int64 or int32 (other integer dtypes are converted), CPU.
inline at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& scores,
                              const at::Tensor& idxs, double iou_threshold) {
    detail::check_layout("batched_nms", {boxes, "boxes"});
    return detail::dispatch_floating(boxes, "batched_nms", "boxes", "N x 4", [&](auto tag) {
        using T = decltype(tag);
        const box_view<const T> b = as_box_view<const T>(boxes, "batched_nms: boxes");
        const std::int64_t n = b.size();
        const at::Tensor s = detail::contiguous_vector<T>(scores, "batched_nms: scores", n);
        detail::check_torch_layout(idxs, "batched_nms: idxs");
        at::Tensor keep = at::empty({n}, boxes.options().dtype(at::kLong));
        const std::span<std::int64_t> out(keep.data_ptr<std::int64_t>(), std::size_t(n));
        auto& ws = detail::thread_nms_workspace<T>();
        std::size_t count = 0;
        if (idxs.scalar_type() == at::kInt) {
            const at::Tensor c =
                detail::contiguous_vector<std::int32_t>(idxs, "batched_nms: idxs", n);
            count = snip::batched_nms(b, detail::as_span<T>(s), detail::as_span<std::int32_t>(c),
                                      iou_threshold, out, ws);
        } else {
            require(c10::isIntegralType(idxs.scalar_type(), /*includeBool=*/false),
                    "batched_nms: idxs must be a [", n,
                    "] integer tensor (int64 or int32) of class ids, got ",
                    detail::torch_describe(idxs));
            const at::Tensor c = detail::contiguous_vector<std::int64_t>(
                idxs.scalar_type() == at::kLong ? idxs : idxs.to(at::kLong), "batched_nms: idxs",
                n);
            count = snip::batched_nms(b, detail::as_span<T>(s), detail::as_span<std::int64_t>(c),
                                      iou_threshold, out, ws);
        }
        return keep.resize_({static_cast<std::int64_t>(count)});
    });
}

} // namespace snip::torch_ops
