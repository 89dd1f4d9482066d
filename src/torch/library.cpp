// src/torch/library.cpp: the library snip::torch_ops (shared): snip's LibTorch ops of
// torch/ops.hpp registered with the dispatcher as torch.ops.snip.* (see torch/library.hpp).
#include <snip/torch/library.hpp>
#include <snip/torch/ops.hpp>

#include <c10/util/string_view.h>
#include <torch/library.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

namespace ops = snip::torch_ops;

at::Tensor roi_align(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                     std::int64_t pooled_height, std::int64_t pooled_width,
                     std::int64_t sampling_ratio, bool aligned) {
    return ops::RoIAlignFunction::apply(input, rois, spatial_scale, pooled_height, pooled_width,
                                        sampling_ratio, aligned);
}

at::Tensor roi_pool(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                    std::int64_t pooled_height, std::int64_t pooled_width) {
    return ops::RoIPoolFunction::apply(input, rois, spatial_scale, pooled_height, pooled_width);
}

at::Tensor deform_conv2d(const at::Tensor& input, const at::Tensor& weight,
                         const at::Tensor& offset, const c10::optional<at::Tensor>& bias,
                         std::int64_t stride_h, std::int64_t stride_w, std::int64_t pad_h,
                         std::int64_t pad_w, std::int64_t dilation_h, std::int64_t dilation_w,
                         std::int64_t groups, std::int64_t offset_groups) {
    return ops::deform_conv2d(input, weight, offset, bias.has_value() ? *bias : at::Tensor(),
                              stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups,
                              offset_groups);
}

at::Tensor deform_roi_pool(const at::Tensor& input, const at::Tensor& rois,
                           const c10::optional<at::Tensor>& offset, double spatial_scale,
                           std::int64_t output_dim, std::int64_t group_size,
                           std::int64_t pooled_size, std::int64_t part_size,
                           std::int64_t sample_per_part, double trans_std) {
    return ops::deform_roi_pool(input, rois, offset.has_value() ? *offset : at::Tensor(),
                                spatial_scale, output_dim, group_size, pooled_size, part_size,
                                sample_per_part, trans_std);
}

std::array<double, 4> four(const char* op, const char* name, c10::ArrayRef<double> v) {
    snip::require(v.size() == 4, op, ": ", name, " must hold 4 values, got ", v.size());
    return {v[0], v[1], v[2], v[3]};
}

snip::pixel_convention convention(const char* op, c10::string_view s) {
    if (s == "continuous") return snip::pixel_convention::continuous;
    if (s == "inclusive") return snip::pixel_convention::inclusive;
    snip::fail(op, ": convention must be \"continuous\" or \"inclusive\", got \"",
               std::string(s.data(), s.size()), "\"");
}

at::Tensor encode_boxes(const at::Tensor& reference, const at::Tensor& targets,
                        c10::ArrayRef<double> means, c10::ArrayRef<double> stds,
                        c10::string_view conv) {
    constexpr const char* op = "encode_boxes";
    return ops::encode_boxes(reference, targets, four(op, "means", means), four(op, "stds", stds),
                             convention(op, conv));
}

at::Tensor decode_boxes(const at::Tensor& reference, const at::Tensor& deltas,
                        c10::ArrayRef<double> means, c10::ArrayRef<double> stds,
                        c10::string_view conv) {
    constexpr const char* op = "decode_boxes";
    return ops::decode_boxes(reference, deltas, four(op, "means", means), four(op, "stds", stds),
                             convention(op, conv));
}

/// The schemas, in the order of torch/library.hpp.
constexpr std::array<const char*, 9> schemas = {
    "roi_align(Tensor input, Tensor rois, float spatial_scale, int pooled_height, "
    "int pooled_width, int sampling_ratio, bool aligned) -> Tensor",
    "roi_pool(Tensor input, Tensor rois, float spatial_scale, int pooled_height, "
    "int pooled_width) -> Tensor",
    "nms(Tensor boxes, Tensor scores, float iou_threshold) -> Tensor",
    "batched_nms(Tensor boxes, Tensor scores, Tensor idxs, float iou_threshold) -> Tensor",
    "box_iou(Tensor boxes1, Tensor boxes2) -> Tensor",
    "encode_boxes(Tensor reference, Tensor targets, float[] means=[0., 0., 0., 0.], "
    "float[] stds=[1., 1., 1., 1.], str convention=\"continuous\") -> Tensor",
    "decode_boxes(Tensor reference, Tensor deltas, float[] means=[0., 0., 0., 0.], "
    "float[] stds=[1., 1., 1., 1.], str convention=\"continuous\") -> Tensor",
    "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor? bias, int stride_h, "
    "int stride_w, int pad_h, int pad_w, int dilation_h, int dilation_w, int groups, "
    "int offset_groups) -> Tensor",
    "deform_roi_pool(Tensor input, Tensor rois, Tensor? offset, float spatial_scale, "
    "int output_dim, int group_size, int pooled_size, int part_size, int sample_per_part, "
    "float trans_std) -> Tensor",
};

} // namespace

TORCH_LIBRARY(snip, m) {
    for (const char* s : schemas)
        m.def(s);
}

// Differentiable through the autograd functions they record: one kernel for every backend
// and for autograd.
TORCH_LIBRARY_IMPL(snip, CompositeImplicitAutograd, m) {
    m.impl("roi_align", &roi_align);
    m.impl("roi_pool", &roi_pool);
    m.impl("deform_conv2d", &deform_conv2d);
    m.impl("deform_roi_pool", &deform_roi_pool);
}

// Not differentiable: one kernel for every backend (the functions dispatch on the device
// themselves); autograd falls through to it and the outputs never require grad.
TORCH_LIBRARY_IMPL(snip, CompositeExplicitAutograd, m) {
    m.impl("nms", &ops::nms);
    m.impl("batched_nms", &ops::batched_nms);
    m.impl("box_iou", &ops::box_iou);
    m.impl("encode_boxes", &encode_boxes);
    m.impl("decode_boxes", &decode_boxes);
}

namespace snip::torch_ops {

std::vector<std::string> library_ops() {
    std::vector<std::string> names;
    names.reserve(schemas.size());
    for (const char* s : schemas) {
        const std::string schema(s);
        names.push_back("snip::" + schema.substr(0, schema.find('(')));
    }
    return names;
}

} // namespace snip::torch_ops
