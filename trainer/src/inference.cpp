// inference.cpp: whole-image detection, multi-scale merging, proposals and result files (declared
// in snip/train/inference.hpp).
#include <snip/train/inference.hpp>

namespace snip::train {

inference_options inference_options::for_plan(const snip::plan_config& cfg,
                                              std::vector<snip::scale_spec> test_scales,
                                              std::vector<snip::valid_range> test_ranges) {
    inference_options o;
    o.scales = test_scales.empty() ? cfg.scales : std::move(test_scales);
    o.merge.ranges = test_ranges.empty() ? cfg.ranges : std::move(test_ranges);
    o.validate();
    return o;
}

void inference_options::validate() const {
    snip::require(!scales.empty(), "inference_options: at least one test scale is needed");
    for (std::size_t s = 0; s < scales.size(); ++s) {
        try {
            scales[s].validate();
        } catch (const snip::error& e) {
            snip::fail("inference_options: scale ", s, ": ", e.what());
        }
    }
    snip::require(merge.ranges.size() == scales.size(), "inference_options: ", scales.size(),
                  " test scales but ", merge.ranges.size(),
                  " valid ranges (merge.ranges); give one range per scale");
    merge.validate();
    snip::require(std::isfinite(score_threshold) && score_threshold >= 0.0 && score_threshold < 1.0,
                  "inference_options: score_threshold must be in [0, 1), got ", score_threshold);
    snip::require(max_per_scale >= 1, "inference_options: max_per_scale must be >= 1, got ",
                  max_per_scale);
    snip::require(pad_multiple >= 1, "inference_options: pad_multiple must be >= 1, got ",
                  pad_multiple);
    snip::require(std::isfinite(mask_threshold) && mask_threshold >= 0.f && mask_threshold <= 1.f,
                  "inference_options: mask_threshold must be in [0, 1], got ", mask_threshold);
    for (std::size_t c = 0; c < 3; ++c)
        snip::require(std::isfinite(norm.std[c]) && norm.std[c] != 0.f &&
                          std::isfinite(norm.mean[c]),
                      "inference_options: normalisation of channel ", c,
                      " needs a finite mean and a finite non-zero std, got mean ", norm.mean[c],
                      ", std ", norm.std[c]);
}

namespace detail {

eval_mode_guard::eval_mode_guard(torch::nn::Module& m) : m_(m), was_training_(m.is_training()) {
    m_.eval();
}

torch::Device device_of(const torch::nn::Module& m) {
    const std::vector<torch::Tensor> p = m.parameters();
    return p.empty() ? torch::Device(torch::kCPU) : p.front().device();
}

void check_image(const image& img, const char* who) {
    snip::require(!img.empty() && img.px.size() == std::size_t(img.w) * std::size_t(img.h) * 3, who,
                  ": the image is empty or its buffer does not hold ", img.w, " x ", img.h,
                  " RGB pixels");
}

void check_proposal_options(const proposal_options& po, const char* who) {
    snip::require(po.pre_nms >= 1 && po.post_nms >= 1, who,
                  ": proposal pre_nms and post_nms must be >= 1, got ", po.pre_nms, " and ",
                  po.post_nms);
    snip::require(!std::isnan(po.nms_iou), who, ": proposal nms_iou must be a number");
    snip::require(std::isfinite(po.min_size) && po.min_size >= 0.0, who,
                  ": proposal min_size must be a finite number >= 0, got ", po.min_size);
}

std::vector<snip::box<double>> to_original(const torch::Tensor& boxes, const whole_image_input& in,
                                           int img_w, int img_h, snip::pixel_convention conv) {
    const torch::Tensor b = boxes.detach().to(torch::kCPU, torch::kDouble).contiguous();
    const double* p = b.data_ptr<double>();
    const double e = conv == snip::pixel_convention::inclusive ? 1.0 : 0.0;
    const double W = img_w, H = img_h;
    std::vector<snip::box<double>> out(static_cast<std::size_t>(b.size(0)));
    for (std::size_t i = 0; i < out.size(); ++i) {
        const double* r = p + 4 * i;
        out[i] = {std::clamp(r[0] / in.fx, 0.0, W), std::clamp(r[1] / in.fy, 0.0, H),
                  std::clamp((r[2] + e) / in.fx, 0.0, W), std::clamp((r[3] + e) / in.fy, 0.0, H)};
    }
    return out;
}

} // namespace detail

whole_image_input whole_image(const image& img, const snip::scale_spec& s, int pad_multiple,
                              const normalisation& norm) {
    detail::check_image(img, "whole_image");
    s.validate();
    snip::require(pad_multiple >= 1, "whole_image: pad_multiple must be >= 1, got ", pad_multiple);
    const snip::scaled_image sz = snip::scale_image(s, img.w, img.h);
    snip::require(sz.width >= 1 && sz.height >= 1, "whole_image: scale ", s.to_string(),
                  " (factor ", sz.factor, ") makes the ", img.w, " x ", img.h, " image ", sz.width,
                  " x ", sz.height, " px; it needs at least one pixel on each side");
    const auto up = [&](int v) { return (v + pad_multiple - 1) / pad_multiple * pad_multiple; };
    const std::int64_t Wp = up(sz.width), Hp = up(sz.height);
    whole_image_input in;
    in.tensor = torch::zeros({1, 3, Hp, Wp}, torch::kFloat);
    crop_resize(img, snip::box<double>{0.0, 0.0, double(img.w), double(img.h)}, sz.width, sz.height,
                false, chw_view{in.tensor.data_ptr<float>(), Wp, Hp * Wp}, norm);
    in.width = sz.width;
    in.height = sz.height;
    in.fx = double(sz.width) / img.w;
    in.fy = double(sz.height) / img.h;
    in.factor = sz.factor;
    return in;
}

namespace {

/// One scale's detections with what the masks need later: the head's feature map and the
/// boxes in the scale's pixels.
struct scale_run {
    image_detections det;
    torch::Tensor head_map;     ///< [1, C, h, w] on the network's device (masks only)
    torch::Tensor scaled_boxes; ///< [n, 4] float32 CPU, the network's px and convention
};

bool masks_on(FasterRCNN& net, const inference_options& o) {
    return o.masks && net->options().masks;
}

scale_run run_scale(FasterRCNN& net, const image& img, const inference_options& o,
                    std::size_t s) {
    const torch::Device dev = detail::device_of(*net);
    const whole_image_input in = whole_image(img, o.scales[s], o.pad_multiple, o.norm);
    const std::vector<std::array<int, 2>> content{std::array<int, 2>{in.width, in.height}};
    scale_run run;
    const std::vector<detections> d =
        net->forward_test(in.tensor.to(dev), o.score_threshold, o.max_per_scale, content,
                          o.per_scale_nms, false, masks_on(net, o) ? &run.head_map : nullptr);
    run.scaled_boxes = d[0].boxes.detach().to(torch::kCPU, torch::kFloat).contiguous();
    const std::vector<snip::box<double>> b =
        detail::to_original(d[0].boxes, in, img.w, img.h, net->options().convention);
    const torch::Tensor sc = d[0].scores.detach().to(torch::kCPU, torch::kFloat).contiguous();
    const torch::Tensor lb = d[0].labels.detach().to(torch::kCPU, torch::kLong).contiguous();
    image_detections& out = run.det;
    out.boxes.reserve(b.size());
    for (const auto& x : b)
        out.boxes.push_back(x.cast<float>());
    out.scores.assign(sc.data_ptr<float>(), sc.data_ptr<float>() + sc.numel());
    out.labels.assign(lb.data_ptr<std::int64_t>(), lb.data_ptr<std::int64_t>() + lb.numel());
    out.scales.assign(out.boxes.size(), static_cast<int>(s));
    return run;
}

/// The masks of detections `which` of `run` (their labels and original-px boxes given),
/// pasted into the img.w x img.h image.
std::vector<snip::mask::rle> scale_masks(FasterRCNN& net, const scale_run& run,
                                         const std::vector<std::size_t>& which,
                                         const std::vector<std::int64_t>& labels,
                                         const std::vector<snip::box<float>>& boxes,
                                         const image& img, float threshold) {
    const auto n = std::int64_t(which.size());
    std::vector<snip::mask::rle> out;
    if (n == 0) return out;
    std::vector<std::int64_t> rows(which.begin(), which.end());
    const torch::Tensor picked = run.scaled_boxes.index_select(0, torch::tensor(rows, torch::kLong));
    const torch::Tensor rois = torch::cat({torch::zeros({n, 1}), picked}, 1);
    const torch::Tensor probs =
        net->mask_probabilities(run.head_map, rois, torch::tensor(labels, torch::kLong));
    const std::int64_t M = probs.size(1);
    out.reserve(which.size());
    for (std::int64_t k = 0; k < n; ++k) {
        const snip::box<float>& b = boxes[std::size_t(k)];
        out.push_back(snip::mask::paste(probs[k].data_ptr<float>(), int(M),
                                        snip::box<double>{b.x1, b.y1, b.x2, b.y2}, img.h, img.w,
                                        threshold));
    }
    return out;
}

/// merge_scales, also giving each merged detection's index into the scales' detections
/// concatenated in scale order.
image_detections merge_indexed(const std::vector<image_detections>& per_scale,
                               const snip::multiscale_merge_options& merge,
                               std::vector<std::int64_t>& index) {
    merge.validate();
    snip::require(per_scale.size() == merge.ranges.size(), "merge_scales: ", per_scale.size(),
                  " scales but ", merge.ranges.size(), " valid ranges");
    std::vector<float> flat;
    std::vector<float> scores;
    std::vector<std::int64_t> labels;
    std::vector<int> scale;
    bool all_masks = true;
    for (std::size_t s = 0; s < per_scale.size(); ++s) {
        const image_detections& d = per_scale[s];
        snip::require(d.scores.size() == d.boxes.size() && d.labels.size() == d.boxes.size(),
                      "merge_scales: scale ", s, " has ", d.boxes.size(), " boxes, ",
                      d.scores.size(), " scores and ", d.labels.size(), " labels");
        snip::require(d.masks.empty() || d.masks.size() == d.boxes.size(), "merge_scales: scale ",
                      s, " has ", d.boxes.size(), " boxes and ", d.masks.size(), " masks");
        all_masks = all_masks && (d.masks.size() == d.boxes.size());
        for (std::size_t i = 0; i < d.boxes.size(); ++i) {
            const snip::box<float>& b = d.boxes[i];
            flat.insert(flat.end(), {b.x1, b.y1, b.x2, b.y2});
            scores.push_back(d.scores[i]);
            labels.push_back(d.labels[i]);
            scale.push_back(static_cast<int>(s));
        }
    }
    const snip::merged_detections<float> m = snip::merge_multiscale(
        snip::as_box_view(flat.data(), static_cast<std::ptrdiff_t>(scores.size())),
        std::span<const float>(scores), std::span<const std::int64_t>(labels),
        std::span<const int>(scale), merge);
    image_detections out;
    out.boxes = m.boxes;
    out.scores = m.scores;
    out.labels = m.labels;
    out.scales = m.scales;
    index = m.index;
    bool any_masks = false;
    for (const auto& d : per_scale)
        any_masks = any_masks || !d.masks.empty();
    if (any_masks && all_masks) { // the masks follow their detections
        std::vector<const snip::mask::rle*> all;
        for (const auto& d : per_scale)
            for (const auto& r : d.masks)
                all.push_back(&r);
        for (const std::int64_t k : m.index)
            out.masks.push_back(*all[std::size_t(k)]);
    }
    return out;
}

} // namespace

image_detections detect_scale(FasterRCNN& net, const image& img, const inference_options& o,
                              std::size_t s) {
    o.validate();
    detail::check_image(img, "detect_scale");
    snip::require(s < o.scales.size(), "detect_scale: scale index ", s, " but ", o.scales.size(),
                  " scales");
    detail::eval_mode_guard mode(*net);
    torch::NoGradGuard ng;
    scale_run run = run_scale(net, img, o, s);
    if (masks_on(net, o)) {
        std::vector<std::size_t> all(run.det.size());
        for (std::size_t k = 0; k < all.size(); ++k)
            all[k] = k;
        run.det.masks =
            scale_masks(net, run, all, run.det.labels, run.det.boxes, img, o.mask_threshold);
    }
    return std::move(run.det);
}

image_detections merge_scales(const std::vector<image_detections>& per_scale,
                              const snip::multiscale_merge_options& merge) {
    std::vector<std::int64_t> index;
    return merge_indexed(per_scale, merge, index);
}

image_detections detect_image(FasterRCNN& net, const image& img, const inference_options& o) {
    o.validate();
    detail::check_image(img, "detect_image");
    detail::eval_mode_guard mode(*net);
    torch::NoGradGuard ng;
    std::vector<scale_run> runs;
    std::vector<image_detections> per_scale;
    runs.reserve(o.scales.size());
    per_scale.reserve(o.scales.size());
    for (std::size_t s = 0; s < o.scales.size(); ++s) {
        runs.push_back(run_scale(net, img, o, s));
        per_scale.push_back(runs.back().det);
    }
    std::vector<std::int64_t> index;
    image_detections out = merge_indexed(per_scale, o.merge, index);
    if (!masks_on(net, o)) return out;
    // Masks of the survivors only, each at its own scale (merged boxes are the scale's
    // boxes mapped to the original image; Soft-NMS changes scores, not boxes).
    std::vector<std::size_t> first(o.scales.size() + 1, 0);
    for (std::size_t s = 0; s < o.scales.size(); ++s)
        first[s + 1] = first[s] + per_scale[s].size();
    out.masks.assign(out.size(), {});
    for (std::size_t s = 0; s < o.scales.size(); ++s) {
        std::vector<std::size_t> rows, slots;
        std::vector<std::int64_t> labels;
        std::vector<snip::box<float>> boxes;
        for (std::size_t k = 0; k < out.size(); ++k) {
            const auto flat = std::size_t(index[k]);
            if (flat < first[s] || flat >= first[s + 1]) continue;
            rows.push_back(flat - first[s]);
            slots.push_back(k);
            labels.push_back(out.labels[k]);
            boxes.push_back(out.boxes[k]);
        }
        std::vector<snip::mask::rle> m =
            scale_masks(net, runs[s], rows, labels, boxes, img, o.mask_threshold);
        for (std::size_t j = 0; j < slots.size(); ++j)
            out.masks[slots[j]] = std::move(m[j]);
    }
    return out;
}

snip::image_proposals propose_image(FasterRCNN& net, const image& img,
                                    const std::vector<snip::scale_spec>& scales,
                                    const proposal_options& po, int pad_multiple,
                                    normalisation norm, double cross_scale_nms) {
    detail::check_image(img, "propose_image");
    snip::require(!scales.empty(), "propose_image: at least one scale is needed");
    detail::check_proposal_options(po, "propose_image");
    snip::require(std::isfinite(cross_scale_nms) && cross_scale_nms <= 1.0,
                  "propose_image: cross-scale NMS IoU must be <= 1 (<= 0: none), got ",
                  cross_scale_nms);
    detail::eval_mode_guard mode(*net);
    torch::NoGradGuard ng;
    const torch::Device dev = detail::device_of(*net);
    snip::image_proposals out;
    for (const snip::scale_spec& s : scales) {
        const whole_image_input in = whole_image(img, s, pad_multiple, norm);
        const resnet_features f = net->backbone->forward(in.tensor.to(dev));
        const rpn_output r = net->rpn_forward(net->rpn_input(f));
        // The anchors and the proposal layer live on the CPU (snip's decode and NMS).
        const torch::Tensor logits = r.flat_objectness()[0].to(torch::kCPU);
        const torch::Tensor deltas = r.flat_deltas()[0].to(torch::kCPU);
        const torch::Tensor anc = net->anchors(f.res4.size(2), f.res4.size(3));
        const auto [boxes, scores] = net->proposals(logits, deltas, anc, in.width, in.height, po);
        const std::vector<snip::box<double>> b =
            detail::to_original(boxes, in, img.w, img.h, net->options().convention);
        const torch::Tensor p = scores.sigmoid().to(torch::kFloat).contiguous();
        out.boxes.insert(out.boxes.end(), b.begin(), b.end());
        out.scores.insert(out.scores.end(), p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
    }
    if (cross_scale_nms > 0.0 && out.boxes.size() > 1) {
        // snip's NMS on the boxes in place (scores in the boxes' type).
        const std::vector<double> sd(out.scores.begin(), out.scores.end());
        const std::vector<std::int64_t> keep =
            snip::nms(snip::as_box_view(std::as_const(out.boxes)), sd, cross_scale_nms);
        snip::image_proposals kept;
        for (const std::int64_t k : keep) {
            kept.boxes.push_back(out.boxes[std::size_t(k)]);
            kept.scores.push_back(out.scores[std::size_t(k)]);
        }
        out = std::move(kept);
    }
    return out;
}

nlohmann::json proposals_json(const snip::dataset& ds, const std::vector<snip::image_proposals>& p,
                              const std::string& who) {
    snip::require(p.size() == ds.images.size(), who, ": ", p.size(), " proposal lists for ",
                  ds.images.size(), " images");
    nlohmann::json arr = nlohmann::json::array();
    for (std::size_t i = 0; i < p.size(); ++i) {
        const snip::image_record& im = ds.images[i];
        const snip::image_proposals& ip = p[i];
        snip::require(ip.boxes.size() == ip.scores.size(), who, ": image id ", im.id, " has ",
                      ip.boxes.size(), " proposal boxes but ", ip.scores.size(), " scores");
        for (std::size_t k = 0; k < ip.boxes.size(); ++k) {
            const snip::box<double>& b = ip.boxes[k];
            detail::check_output_box(b, im, k, 1.0, who);
            snip::require(std::isfinite(ip.scores[k]), who, ": image id ", im.id, " proposal ", k,
                          " has score ", ip.scores[k]);
            arr.push_back({{"image_id", im.id},
                           {"bbox", {b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1}},
                           {"score", ip.scores[k]}});
        }
    }
    return arr;
}

void write_proposals(const std::string& path, const snip::dataset& ds,
                     const std::vector<snip::image_proposals>& p) {
    snip::io::write_atomically(path, proposals_json(ds, p, path).dump());
}

nlohmann::json results_json(const snip::dataset& ds, const std::vector<image_detections>& d,
                            const class_map& classes, const std::string& who) {
    snip::require(d.size() == ds.images.size(), who, ": ", d.size(), " detection lists for ",
                  ds.images.size(), " images");
    nlohmann::json arr = nlohmann::json::array();
    for (std::size_t i = 0; i < d.size(); ++i) {
        const snip::image_record& im = ds.images[i];
        const image_detections& x = d[i];
        snip::require(x.scores.size() == x.boxes.size() && x.labels.size() == x.boxes.size() &&
                          (x.masks.empty() || x.masks.size() == x.boxes.size()),
                      who, ": image id ", im.id, " has ", x.boxes.size(), " boxes, ",
                      x.scores.size(), " scores, ", x.labels.size(), " labels and ",
                      x.masks.size(), " masks");
        for (std::size_t k = 0; k < x.boxes.size(); ++k) {
            const snip::box<float>& b = x.boxes[k];
            detail::check_output_box(b, im, k, -1.0, who);
            const std::int64_t label = x.labels[k];
            snip::require(label >= 1 && label <= classes.num_classes(), who, ": image id ", im.id,
                          " detection ", k, " has label ", label, ", outside 1..",
                          classes.num_classes(), " (0 is background)");
            snip::require(std::isfinite(x.scores[k]), who, ": image id ", im.id, " detection ", k,
                          " has score ", x.scores[k]);
            const double x1 = b.x1, y1 = b.y1, x2 = b.x2, y2 = b.y2;
            arr.push_back({{"image_id", im.id},
                           {"category_id", classes.category(static_cast<int>(label))},
                           {"bbox", {x1, y1, x2 - x1, y2 - y1}},
                           {"score", x.scores[k]}});
            if (!x.masks.empty()) { // COCO segm results: compressed RLE of the whole image
                const snip::mask::rle& m = x.masks[k];
                snip::require(m.height == im.height && m.width == im.width, who, ": image id ",
                              im.id, " detection ", k, " has a ", m.width, " x ", m.height,
                              " mask for a ", im.width, " x ", im.height, " image");
                arr.back()["segmentation"] = {{"size", {m.height, m.width}},
                                              {"counts", snip::mask::to_string(m)}};
            }
        }
    }
    return arr;
}

void write_results(const std::string& path, const snip::dataset& ds,
                   const std::vector<image_detections>& d, const class_map& classes) {
    snip::io::write_atomically(path, results_json(ds, d, classes, path).dump());
}

} // namespace snip::train
