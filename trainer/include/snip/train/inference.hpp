// inference.hpp: SNIPER's test-time use of a trained FasterRCNN (detector.hpp): multi-scale
// whole-image detection merged across scales, RPN proposals for negative chip mining,
// COCO-format writers for both, and a picture of the detections.
//
// @code
//   #include <snip/train/inference.hpp>
//   snip::train::inference_options o = snip::train::inference_options::sniper_coco();
//   snip::train::image_detections d = snip::train::detect_image(net, img, o);
//   snip::train::write_results("results.json", ds, all_detections, snip::train::class_map(ds));
//   snip::image_proposals p = snip::train::propose_image(net, img, cfg.scales, proposal_opts);
//   snip::train::write_proposals("proposals.json", ds, all_proposals);  // snip::read_proposals
// @endcode
//
// Test time (SNIPER's, not chips): at every scale of the test pyramid the WHOLE image is
// resized in one pass (image.hpp's crop_resize of [0, w) x [0, h) to the scaled size
// snip::scale_image gives: int(w * f) x int(h * f)), normalised, placed at the top-left of
// a tensor padded with zeros (the mean colour) up to a multiple of `pad_multiple` on each
// side, and run as a batch of one. The content size goes to forward_test / proposals, so
// boxes are clipped to the scaled image, never to the padding.
//
// Coordinates. The network's boxes are in SCALED pixels in the detector's convention
// (detector_options::convention; inclusive by default: x2 is the last pixel covered).
// Everything this file returns or writes is in ORIGINAL-image pixels, continuous
// convention (COCO's and snip::dataset's: a box covers [x1, x2) x [y1, y2)): with the
// exact per-axis factors fx = scaled_w / w and fy = scaled_h / h and e = 1 for the
// inclusive convention (0 for continuous),
//   x1' = x1 / fx,  y1' = y1 / fy,  x2' = (x2 + e) / fx,  y2' = (y2 + e) / fy,
// clamped to [0, w] x [0, h]. (The original SNIPER divides by its scale and adds 1 to the
// width when it writes COCO results; this is the exact form of the same mapping.) The
// valid ranges of the merge are therefore measured as sqrt(w * h) of these continuous
// original-pixel boxes, so multiscale_merge_options::convention should stay continuous.
//
// Modes: detect_image / propose_image put the network in eval mode and restore its previous
// mode afterwards, even on an exception (today's network behaves the same in both, its
// BatchNorms are frozen; the guard keeps inference right if a mode-dependent layer comes);
// they run without gradient. The input goes to the device of the network's first parameter and
// the results come back to the CPU.
//
// Pictures of detections are the programs' business (apps/common: draw_detections).
#pragma once

#include <snip/train/data.hpp>
#include <snip/train/detector.hpp>

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/sniper/dataset.hpp>
#include <snip/io/coco.hpp>
#include <snip/ops/merge.hpp>
#include <snip/ops/nms.hpp>
#include <snip/sniper/plan.hpp>
#include <snip/sniper/pyramid.hpp>
#include <snip/core/valid_range.hpp>
#include <snip/core/views.hpp>

#include <nlohmann/json.hpp>

#include <torch/utils.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace snip::train {

// ---------------------------------------------------------------------------------------
// Options and results

/// @brief How detect_image runs: the test pyramid, the multi-scale merge and the
/// per-scale detection settings.
struct inference_options {
    /// The test pyramid, finest first (scale s uses merge.ranges[s]).
    std::vector<snip::scale_spec> scales{snip::scale_spec::by_resolution(1400, 2000),
                                         snip::scale_spec::by_resolution(800, 1280),
                                         snip::scale_spec::by_resolution(480, 512)};
    /// The merge: one valid range per scale (sqrt(w * h), original px), Gaussian Soft-NMS
    /// sigma and threshold, max_per_image. Its defaults are SNIPER's COCO test ranges.
    snip::multiscale_merge_options merge{};
    /// forward_test keeps class scores > this, per scale (the original's inference keeps
    /// scores > 1e-3 before its merge; SNIPER lib/inference.py, thresh=1e-3 in detect)
    double score_threshold = 1e-3;
    std::int64_t max_per_scale = 300; ///< forward_test keeps at most this many per scale
    /// Per-class NMS of each scale before the merge (IoU > this suppresses); <= 0: none, as
    /// the original, whose only suppression is the multi-scale Soft-NMS (TEST.NMS -1,
    /// NMS_SIGMA 0.55, sniper_res101_e2e.yml).
    double per_scale_nms = 0.0;
    int pad_multiple = 16;            ///< pad each side up to a multiple of this (1: none)
    normalisation norm{};

    /// @brief SNIPER's COCO test setting: resolutions (1400,2000), (800,1280), (480,512)
    /// with the ranges (-1,90), (32,180), (75,-1), Soft-NMS sigma 0.55, 200 per image.
    static inference_options sniper_coco() { return {}; }

    /// @brief Options whose valid ranges come from a training plan when no test ranges are
    /// given: scales = `test_scales` (empty: the plan's scales), ranges = `test_ranges`
    /// (empty: the plan's ranges). Every other field keeps its default.
    /// @throws snip::error when the counts do not match (see validate()).
    static inference_options for_plan(const snip::plan_config& cfg,
                                      std::vector<snip::scale_spec> test_scales = {},
                                      std::vector<snip::valid_range> test_ranges = {}) {
        inference_options o;
        o.scales = test_scales.empty() ? cfg.scales : std::move(test_scales);
        o.merge.ranges = test_ranges.empty() ? cfg.ranges : std::move(test_ranges);
        o.validate();
        return o;
    }

    /// @brief Throws snip::error naming the bad value: no scale, a scale that cannot size an
    /// image, a range count different from the scale count, a bad merge setting, a score
    /// threshold outside [0, 1), max_per_scale < 1, pad_multiple < 1, a zero or non-finite
    /// normalisation std.
    void validate() const {
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
        snip::require(
            std::isfinite(score_threshold) && score_threshold >= 0.0 && score_threshold < 1.0,
            "inference_options: score_threshold must be in [0, 1), got ", score_threshold);
        snip::require(max_per_scale >= 1, "inference_options: max_per_scale must be >= 1, got ",
                      max_per_scale);
        snip::require(pad_multiple >= 1, "inference_options: pad_multiple must be >= 1, got ",
                      pad_multiple);
        for (std::size_t c = 0; c < 3; ++c)
            snip::require(std::isfinite(norm.std[c]) && norm.std[c] != 0.f &&
                              std::isfinite(norm.mean[c]),
                          "inference_options: normalisation of channel ", c,
                          " needs a finite mean and a finite non-zero std, got mean ", norm.mean[c],
                          ", std ", norm.std[c]);
    }
};

/// @brief Detections of one image: boxes xyxy in ORIGINAL px, continuous convention (see
/// the file comment), scores, contiguous class indices 1..K (class_map), and the test
/// scale each came from; by decreasing score after a merge.
struct image_detections {
    std::vector<snip::box<float>> boxes;
    std::vector<float> scores;
    std::vector<std::int64_t> labels;
    std::vector<int> scales; ///< index into inference_options::scales
    std::size_t size() const { return boxes.size(); }
};

/// @brief One scale's network input: the whole image resized and normalised.
struct whole_image_input {
    torch::Tensor tensor; ///< [1, 3, Hp, Wp] float32 on the CPU; the content at the top-left
    int width = 0;        ///< content (scaled image) width, px: int(w * factor)
    int height = 0;       ///< content height, px
    double fx = 1.0;      ///< scaled px per original px along x: width / w
    double fy = 1.0;      ///< along y: height / h
    double factor = 1.0;  ///< the scale's nominal factor (snip::scale_spec::factor_for)
};

// ---------------------------------------------------------------------------------------
// Building blocks

namespace detail {

/// Puts a module in eval mode for its lifetime and restores the previous mode afterwards.
class eval_mode_guard {
public:
    explicit eval_mode_guard(torch::nn::Module& m) : m_(m), was_training_(m.is_training()) {
        m_.eval();
    }
    ~eval_mode_guard() { m_.train(was_training_); }
    eval_mode_guard(const eval_mode_guard&) = delete;
    eval_mode_guard& operator=(const eval_mode_guard&) = delete;

private:
    torch::nn::Module& m_;
    bool was_training_;
};

/// The device of the network's first parameter (the CPU for a module without any).
inline torch::Device device_of(const torch::nn::Module& m) {
    const std::vector<torch::Tensor> p = m.parameters();
    return p.empty() ? torch::Device(torch::kCPU) : p.front().device();
}

inline void check_image(const image& img, const char* who) {
    snip::require(!img.empty() && img.px.size() == std::size_t(img.w) * std::size_t(img.h) * 3, who,
                  ": the image is empty or its buffer does not hold ", img.w, " x ", img.h,
                  " RGB pixels");
}

inline void check_proposal_options(const proposal_options& po, const char* who) {
    snip::require(po.pre_nms >= 1 && po.post_nms >= 1, who,
                  ": proposal pre_nms and post_nms must be >= 1, got ", po.pre_nms, " and ",
                  po.post_nms);
    snip::require(!std::isnan(po.nms_iou), who, ": proposal nms_iou must be a number");
    snip::require(std::isfinite(po.min_size) && po.min_size >= 0.0, who,
                  ": proposal min_size must be a finite number >= 0, got ", po.min_size);
}

/// [n, 4] scaled-px boxes of the network's convention -> original px, continuous.
inline std::vector<snip::box<double>> to_original(const torch::Tensor& boxes,
                                                  const whole_image_input& in, int img_w, int img_h,
                                                  snip::pixel_convention conv) {
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

/// @brief The whole image at scale `s`: resized in one pass to scale_image(s, w, h),
/// normalised, zero-padded (0 = the mean colour) to multiples of `pad_multiple`.
/// @throws snip::error on an empty image, a bad scale, pad_multiple < 1, or a scale that
/// leaves the image less than one pixel on a side.
inline whole_image_input whole_image(const image& img, const snip::scale_spec& s,
                                     int pad_multiple = 16, const normalisation& norm = {}) {
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

/// @brief The detections of scale `s` of `o.scales` alone (no merge): forward_test on the
/// whole image at that scale with o.score_threshold and o.max_per_scale, boxes mapped to
/// original px (file comment), `scales` all `s`; by decreasing score.
/// @throws snip::error on bad options (inference_options::validate) or an empty image.
inline image_detections detect_scale(FasterRCNN& net, const image& img, const inference_options& o,
                                     std::size_t s) {
    o.validate();
    detail::check_image(img, "detect_scale");
    snip::require(s < o.scales.size(), "detect_scale: scale index ", s, " but ", o.scales.size(),
                  " scales");
    detail::eval_mode_guard mode(*net);
    torch::NoGradGuard ng;
    const torch::Device dev = detail::device_of(*net);
    const whole_image_input in = whole_image(img, o.scales[s], o.pad_multiple, o.norm);
    const std::vector<std::array<int, 2>> content{std::array<int, 2>{in.width, in.height}};
    const std::vector<detections> d =
        net->forward_test(in.tensor.to(dev), o.score_threshold, o.max_per_scale, content,
                          o.per_scale_nms);
    const std::vector<snip::box<double>> b =
        detail::to_original(d[0].boxes, in, img.w, img.h, net->options().convention);
    const torch::Tensor sc = d[0].scores.detach().to(torch::kCPU, torch::kFloat).contiguous();
    const torch::Tensor lb = d[0].labels.detach().to(torch::kCPU, torch::kLong).contiguous();
    image_detections out;
    out.boxes.reserve(b.size());
    for (const auto& x : b)
        out.boxes.push_back(x.cast<float>());
    out.scores.assign(sc.data_ptr<float>(), sc.data_ptr<float>() + sc.numel());
    out.labels.assign(lb.data_ptr<std::int64_t>(), lb.data_ptr<std::int64_t>() + lb.numel());
    out.scales.assign(out.boxes.size(), static_cast<int>(s));
    return out;
}

/// @brief SNIPER's merge of per-scale detections (boxes already in original px):
/// per_scale[s] came from scale s and is filtered by merge.ranges[s]; the survivors of all
/// scales go through per-class Gaussian Soft-NMS and the top merge.max_per_image
/// (snip::merge_multiscale). The result's scores are the Soft-NMS scores, by decreasing
/// score; `scales` says where each detection came from.
/// @throws snip::error when the scale count differs from the range count, the arrays of a
/// scale differ in length, or the merge options are bad.
inline image_detections merge_scales(const std::vector<image_detections>& per_scale,
                                     const snip::multiscale_merge_options& merge) {
    merge.validate();
    snip::require(per_scale.size() == merge.ranges.size(), "merge_scales: ", per_scale.size(),
                  " scales but ", merge.ranges.size(), " valid ranges");
    std::vector<float> flat;
    std::vector<float> scores;
    std::vector<std::int64_t> labels;
    std::vector<int> scale;
    for (std::size_t s = 0; s < per_scale.size(); ++s) {
        const image_detections& d = per_scale[s];
        snip::require(d.scores.size() == d.boxes.size() && d.labels.size() == d.boxes.size(),
                      "merge_scales: scale ", s, " has ", d.boxes.size(), " boxes, ",
                      d.scores.size(), " scores and ", d.labels.size(), " labels");
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
    return out;
}

// ---------------------------------------------------------------------------------------
// Detection and proposals

/// @brief SNIPER's multi-scale inference of one image: detect_scale at every scale of
/// `o.scales`, then merge_scales with `o.merge`. Boxes in original px (continuous), scores
/// after Soft-NMS, labels 1..K, by decreasing score, at most o.merge.max_per_image.
/// @throws snip::error on bad options (naming the field) or an empty image.
inline image_detections detect_image(FasterRCNN& net, const image& img,
                                     const inference_options& o) {
    o.validate();
    detail::check_image(img, "detect_image");
    detail::eval_mode_guard mode(*net);
    std::vector<image_detections> per_scale;
    per_scale.reserve(o.scales.size());
    for (std::size_t s = 0; s < o.scales.size(); ++s)
        per_scale.push_back(detect_scale(net, img, o, s));
    return merge_scales(per_scale, o.merge);
}

/// @brief RPN proposals of one image for negative chip mining (SNIPER's stage 2): the whole
/// image at every scale of `scales`, the RPN, FasterRCNN::proposals with `po` (clipped to
/// the scaled image; pre-NMS top, NMS, post-NMS top), boxes mapped to original px
/// (continuous) and scores = sigmoid(objectness logit), in [0, 1]. The scales' proposals are
/// stacked, scale by scale in the order of `scales`, each by decreasing score; with
/// `cross_scale_nms` > 0 an NMS at that IoU then runs over all of them together (by decreasing
/// score), as the original does to the stacked proposals of its test scales before mining
/// (mahyarnajibi/SNIPER lib/dataset/imdb.py:102, py_nms_wrapper(0.7)).
/// @throws snip::error on an empty image, no scale, a bad scale or bad proposal options.
inline snip::image_proposals propose_image(FasterRCNN& net, const image& img,
                                           const std::vector<snip::scale_spec>& scales,
                                           const proposal_options& po, int pad_multiple = 16,
                                           normalisation norm = {}, double cross_scale_nms = 0.0) {
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
        const rpn_output r = net->rpn_forward(f.res4);
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

// ---------------------------------------------------------------------------------------
// Writers

namespace detail {

/// Checks that box i of image `im` is finite, not inverted and inside the image within
/// `tol` px; names `who` (path) in the error.
template <class T>
void check_output_box(const snip::box<T>& b, const snip::image_record& im, std::size_t i,
                      double tol, const std::string& who) {
    const double x1 = b.x1, y1 = b.y1, x2 = b.x2, y2 = b.y2;
    snip::require(std::isfinite(x1) && std::isfinite(y1) && std::isfinite(x2) &&
                      std::isfinite(y2) && x2 >= x1 && y2 >= y1,
                  who, ": image id ", im.id, " box ", i, " [", x1, ", ", y1, ", ", x2, ", ", y2,
                  "] is not a finite xyxy box with x2 >= x1, y2 >= y1");
    if (tol >= 0)
        snip::require(x1 >= -tol && y1 >= -tol && x2 <= im.width + tol && y2 <= im.height + tol,
                      who, ": image id ", im.id, " box ", i, " [", x1, ", ", y1, ", ", x2, ", ", y2,
                      "] lies outside the ", im.width, " x ", im.height, " image by more than ",
                      tol, " px");
}

} // namespace detail

/// @brief Proposals as JSON in the format snip::io::read_proposals reads: an array of
/// {"image_id", "bbox": [x, y, w, h] (original px), "score"}, image by image in dataset
/// order, each image's proposals in their order. `p[i]` belongs to ds.images[i].
/// @param who names the output in error messages.
/// @throws snip::error when the list count differs from the image count, an image's boxes
/// and scores differ in number, or a box or score is non-finite, inverted or outside its
/// image by more than 1 px (read_proposals would reject it).
inline nlohmann::json proposals_json(const snip::dataset& ds,
                                     const std::vector<snip::image_proposals>& p,
                                     const std::string& who = "proposals_json") {
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

/// @brief Writes proposals_json(ds, p) to `path` atomically (path + ".tmp", then a rename);
/// snip::io::read_proposals(path, ds) reads it back.
/// @throws snip::error naming the path (see proposals_json for the checks).
inline void write_proposals(const std::string& path, const snip::dataset& ds,
                            const std::vector<snip::image_proposals>& p) {
    snip::io::detail::write_atomically(path, proposals_json(ds, p, path).dump());
}

/// @brief Detections in COCO results format: an array of {"image_id", "category_id" (the
/// dataset's category id of label k: classes.category(k)), "bbox": [x, y, w, h] (original
/// px), "score"}, image by image in dataset order. `d[i]` belongs to ds.images[i];
/// snip::io::read_detections / evaluate_coco read it.
/// @param who names the output in error messages.
/// @throws snip::error when the list count differs from the image count, an image's arrays
/// differ in length, a label is outside 1..K, or a box or score is non-finite or inverted.
inline nlohmann::json results_json(const snip::dataset& ds, const std::vector<image_detections>& d,
                                   const class_map& classes,
                                   const std::string& who = "results_json") {
    snip::require(d.size() == ds.images.size(), who, ": ", d.size(), " detection lists for ",
                  ds.images.size(), " images");
    nlohmann::json arr = nlohmann::json::array();
    for (std::size_t i = 0; i < d.size(); ++i) {
        const snip::image_record& im = ds.images[i];
        const image_detections& x = d[i];
        snip::require(x.scores.size() == x.boxes.size() && x.labels.size() == x.boxes.size(), who,
                      ": image id ", im.id, " has ", x.boxes.size(), " boxes, ", x.scores.size(),
                      " scores and ", x.labels.size(), " labels");
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
        }
    }
    return arr;
}

/// @brief Writes results_json(ds, d, classes) to `path` atomically (path + ".tmp", then a
/// rename); snip::io::read_detections(path, ds) reads it back.
/// @throws snip::error naming the path.
inline void write_results(const std::string& path, const snip::dataset& ds,
                          const std::vector<image_detections>& d, const class_map& classes) {
    snip::io::detail::write_atomically(path, results_json(ds, d, classes, path).dump());
}

} // namespace snip::train
