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
#include <snip/mask/paste.hpp>
#include <snip/mask/rle.hpp>
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
    /// Instance masks for a network with a mask branch (detector_options::masks): detect_image
    /// computes them for the MERGED detections only, each from the head features of the
    /// scale it came from, and pastes them into the original image (snip::mask::paste:
    /// bilinear, >= mask_threshold). Ignored for a network without one.
    bool masks = true;
    float mask_threshold = 0.5f;

    /// @brief SNIPER's COCO test setting: resolutions (1400,2000), (800,1280), (480,512)
    /// with the ranges (-1,90), (32,180), (75,-1), Soft-NMS sigma 0.55, 200 per image.
    static inference_options sniper_coco() { return {}; }

    /// @brief Options whose valid ranges come from a training plan when no test ranges are
    /// given: scales = `test_scales` (empty: the plan's scales), ranges = `test_ranges`
    /// (empty: the plan's ranges). Every other field keeps its default.
    /// @throws snip::error when the counts do not match (see validate()).
    static inference_options for_plan(const snip::plan_config& cfg,
                                      std::vector<snip::scale_spec> test_scales = {},
                                      std::vector<snip::valid_range> test_ranges = {});

    /// @brief Throws snip::error naming the bad value: no scale, a scale that cannot size an
    /// image, a range count different from the scale count, a bad merge setting, a score
    /// threshold outside [0, 1), max_per_scale < 1, pad_multiple < 1, a zero or non-finite
    /// normalisation std.
    void validate() const;
};

/// @brief Detections of one image: boxes xyxy in ORIGINAL px, continuous convention (see
/// the file comment), scores, contiguous class indices 1..K (class_map), and the test
/// scale each came from; by decreasing score after a merge.
struct image_detections {
    std::vector<snip::box<float>> boxes;
    std::vector<float> scores;
    std::vector<std::int64_t> labels;
    std::vector<int> scales; ///< index into inference_options::scales
    /// The instance mask of each detection in the original image (COCO RLE, height x width
    /// of the image), when masks were computed; else empty.
    std::vector<snip::mask::rle> masks;
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
    explicit eval_mode_guard(torch::nn::Module& m);
    ~eval_mode_guard() { m_.train(was_training_); }
    eval_mode_guard(const eval_mode_guard&) = delete;
    eval_mode_guard& operator=(const eval_mode_guard&) = delete;

private:
    torch::nn::Module& m_;
    bool was_training_;
};

/// The device of the network's first parameter (the CPU for a module without any).
torch::Device device_of(const torch::nn::Module& m);

void check_image(const image& img, const char* who);

void check_proposal_options(const proposal_options& po, const char* who);

/// [n, 4] scaled-px boxes of the network's convention -> original px, continuous.
std::vector<snip::box<double>> to_original(const torch::Tensor& boxes,
                                           const whole_image_input& in, int img_w, int img_h,
                                           snip::pixel_convention conv);

} // namespace detail

/// @brief The whole image at scale `s`: resized in one pass to scale_image(s, w, h),
/// normalised, zero-padded (0 = the mean colour) to multiples of `pad_multiple`.
/// @throws snip::error on an empty image, a bad scale, pad_multiple < 1, or a scale that
/// leaves the image less than one pixel on a side.
whole_image_input whole_image(const image& img, const snip::scale_spec& s,
                              int pad_multiple = 16, const normalisation& norm = {});

/// @brief The detections of scale `s` of `o.scales` alone (no merge): forward_test on the
/// whole image at that scale with o.score_threshold and o.max_per_scale, boxes mapped to
/// original px (file comment), `scales` all `s`; by decreasing score. With masks (see
/// inference_options::masks) every detection gets its pasted mask.
/// @throws snip::error on bad options (inference_options::validate) or an empty image.
image_detections detect_scale(FasterRCNN& net, const image& img, const inference_options& o,
                              std::size_t s);

/// @brief SNIPER's merge of per-scale detections (boxes already in original px):
/// per_scale[s] came from scale s and is filtered by merge.ranges[s]; the survivors of all
/// scales go through per-class Gaussian Soft-NMS and the top merge.max_per_image
/// (snip::merge_multiscale). The result's scores are the Soft-NMS scores, by decreasing
/// score; `scales` says where each detection came from. Masks, when the inputs have them,
/// follow their detections.
/// @throws snip::error when the scale count differs from the range count, the arrays of a
/// scale differ in length, or the merge options are bad.
image_detections merge_scales(const std::vector<image_detections>& per_scale,
                              const snip::multiscale_merge_options& merge);

// ---------------------------------------------------------------------------------------
// Detection and proposals

/// @brief SNIPER's multi-scale inference of one image: detect_scale at every scale of
/// `o.scales`, then merge_scales with `o.merge`. Boxes in original px (continuous), scores
/// after Soft-NMS, labels 1..K, by decreasing score, at most o.merge.max_per_image; with masks
/// (inference_options::masks and a mask branch) the mask of each merged detection, computed
/// at its scale after the merge.
/// @throws snip::error on bad options (naming the field) or an empty image.
image_detections detect_image(FasterRCNN& net, const image& img,
                              const inference_options& o);

/// @brief RPN proposals of one image for negative chip mining (SNIPER's stage 2): the whole
/// image at every scale of `scales`, the RPN, FasterRCNN::proposals with `po` (clipped to
/// the scaled image; pre-NMS top, NMS, post-NMS top), boxes mapped to original px
/// (continuous) and scores = sigmoid(objectness logit), in [0, 1]. The scales' proposals are
/// stacked, scale by scale in the order of `scales`, each by decreasing score; with
/// `cross_scale_nms` > 0 an NMS at that IoU then runs over all of them together (by decreasing
/// score), as the original does to the stacked proposals of its test scales before mining
/// (mahyarnajibi/SNIPER lib/dataset/imdb.py:102, py_nms_wrapper(0.7)).
/// @throws snip::error on an empty image, no scale, a bad scale or bad proposal options.
snip::image_proposals propose_image(FasterRCNN& net, const image& img,
                                    const std::vector<snip::scale_spec>& scales,
                                    const proposal_options& po, int pad_multiple = 16,
                                    normalisation norm = {}, double cross_scale_nms = 0.0);

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
nlohmann::json proposals_json(const snip::dataset& ds,
                              const std::vector<snip::image_proposals>& p,
                              const std::string& who = "proposals_json");

/// @brief Writes proposals_json(ds, p) to `path` atomically (path + ".tmp", then a rename);
/// snip::io::read_proposals(path, ds) reads it back.
/// @throws snip::error naming the path (see proposals_json for the checks).
void write_proposals(const std::string& path, const snip::dataset& ds,
                     const std::vector<snip::image_proposals>& p);

/// @brief Detections in COCO results format: an array of {"image_id", "category_id" (the
/// dataset's category id of label k: classes.category(k)), "bbox": [x, y, w, h] (original
/// px), "score"} plus, when the detections have masks, "segmentation": {"size": [h, w],
/// "counts": compressed RLE} (COCO's segm results), image by image in dataset order. `d[i]` belongs to ds.images[i];
/// snip::io::read_detections / evaluate_coco read it.
/// @param who names the output in error messages.
/// @throws snip::error when the list count differs from the image count, an image's arrays
/// differ in length, a label is outside 1..K, or a box or score is non-finite or inverted.
nlohmann::json results_json(const snip::dataset& ds, const std::vector<image_detections>& d,
                            const class_map& classes,
                            const std::string& who = "results_json");

/// @brief Writes results_json(ds, d, classes) to `path` atomically (path + ".tmp", then a
/// rename); snip::io::read_detections(path, ds) reads it back.
/// @throws snip::error naming the path.
void write_results(const std::string& path, const snip::dataset& ds,
                   const std::vector<image_detections>& d, const class_map& classes);

} // namespace snip::train
