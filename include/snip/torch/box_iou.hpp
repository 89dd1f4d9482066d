// torch/box_iou.hpp: torchvision.ops.box_iou, the N x M IoU matrix of two LibTorch box
// tensors. CPU: snip's iou_matrix (det/iou.hpp) on strided views; CUDA (SNIP_TORCH_CUDA):
// the compiled IoU launcher. Conventions: see torch/ops.hpp.
#pragma once

#include <snip/core/box.hpp>
#include <snip/det/iou.hpp>
#include <snip/torch/dispatch.hpp>

#include <ATen/ATen.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

namespace snip::torch_ops {

/// @brief The N x M IoU matrix of two sets of xyxy boxes (torchvision.ops.box_iou, continuous
/// convention: width = x2 - x1). Boxes with no positive area have IoU 0 with everything
/// (torchvision's formula gives NaN for two empty boxes and negative areas for inverted ones).
/// Both on the CPU (any strides), or both on one CUDA device with SNIP_TORCH_CUDA (the GPU's
/// values are snip::iou's: equal to the CPU's up to rounding).
inline at::Tensor box_iou(const at::Tensor& boxes1, const at::Tensor& boxes2) {
    constexpr const char* op = "box_iou";
    auto cpu = [&](auto tag) {
        using T = decltype(tag);
        const box_view<const T> a = as_box_view<const T>(boxes1, "box_iou: boxes1");
        const box_view<const T> b = as_box_view<const T>(boxes2, "box_iou: boxes2");
        at::Tensor out = at::empty({a.size(), b.size()}, boxes1.options());
        iou_matrix(a, b, std::span<T>(out.data_ptr<T>(), std::size_t(out.numel())),
                   pixel_convention::continuous, op_threads());
        return out;
    };
#ifdef SNIP_TORCH_CUDA
    auto cuda = [&](auto tag, const at::Tensor& a, const at::Tensor& b) {
        using T = decltype(tag);
        detail::check_torch_shape<T>(a, "box_iou: boxes1", 2, {-1, 4, -1, -1}, "N x 4");
        detail::check_torch_shape<T>(b, "box_iou: boxes2", 2, {-1, 4, -1, -1}, "N x 4");
        const std::int64_t na = a.size(0);
        const int nb = detail::to_int(op, "the number of boxes2", b.size(0), 0);
        at::Tensor out = at::empty({na, std::int64_t(nb)}, a.options());
        // The launcher takes at most 65535 rows at a time (its grid's limit).
        constexpr std::int64_t rows = 65535;
        for (std::int64_t r0 = 0; r0 < na && nb > 0; r0 += rows) {
            const int r = static_cast<int>(std::min(rows, na - r0));
            detail::check_cuda(op, snip::cuda::launchers::iou_matrix(
                                       a.data_ptr<T>() + 4 * r0, r, b.data_ptr<T>(), nb,
                                       out.data_ptr<T>() + r0 * nb, detail::cuda_stream()));
        }
        return out;
    };
#else
    const detail::cpu_only cuda;
#endif
    return detail::on_device(op, "N x 4", cpu, cuda, {{boxes1, "boxes1"}, {boxes2, "boxes2"}});
}

} // namespace snip::torch_ops
