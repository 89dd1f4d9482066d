// detector.hpp: SNIPER's Faster R-CNN on LibTorch: a ResNet backbone (backbone.hpp), an RPN
// on res4, a proposal layer, RPN and RCNN targets from snip's matching rules, and a RoIAlign
// head on res4 + res5, with training losses and test-time detections.
//
// @code
//   #include <snip/train/detector.hpp>
//   snip::train::detector_options o;            // ResNet-101, 21 SNIPER anchors, K = 80
//   snip::train::FasterRCNN net(o);
//   snip::train::detector_losses l = net->forward_train(batch.images, batch.targets, seed);
//   l.total().backward();
//   std::vector<snip::train::detections> d = net->forward_test(images, 0.05, 100);
// @endcode
//
// Architecture. Two networks (detector_options::sniper() and ::plain()); the default is
// `sniper`, the original's (mahyarnajibi/SNIPER symbols/faster/resnet_mx_101_e2e.py):
//   backbone  ResNet (backbone.hpp), res5 at stride 16. sniper: every 3x3 conv of res5 is a
//             deformable conv v1 with 4 offset groups and dilation 2, the first unit's too
//             (residual_unit_deform; offsets start at zero). plain: res5 dilated
//             (torchvision's replace_stride_with_dilation, the first block undilated).
//   RPN       3x3 conv 512 + ReLU -> 1x1 conv A objectness logits (sigmoid, binary
//             cross-entropy) and 1x1 conv 4A deltas; A anchors per cell (SNIPER: 21, from
//             snip::anchor_config::sniper()). sniper: on concat(res4, res5) (get_rpn on
//             'cat4'); plain: on res4. Output channel a of the logits and channels 4a..4a+3
//             of the deltas belong to template a; flattened, anchor (y, x, a) is row
//             (y*W + x)*A + a, snip::grid_anchors' order.
//   proposals (no gradient) deltas decoded with snip's box coder (means 0, stds 1) on every
//             anchor, clipped to the chip's content, small boxes dropped (a side < min_size,
//             or with min_size_both both sides, as the original's training proposals), top
//             pre_nms scores, snip NMS at 0.7, top post_nms.
//   head      concat(res4, res5) -> 1x1 conv 256 + ReLU (conv_new_1) -> RoI features 7x7:
//             sniper: deformable RoI pooling (snip::torch_ops::deform_roi_pool, the original's
//             DeformablePSROIPooling with group_size 1, part 7, 4 samples per bin and axis,
//             spatial scale 1/16): a pass without offsets -> FC 2 x 7 x 7 (`offset_fc`, zero
//             at the start, its learning rate x 0.01) -> offsets x trans_std 0.1 -> a second
//             pass with them; plain: RoIAlign (sampling 2, aligned) ->
//             flatten -> FC 1024 + ReLU -> FC 1024 + ReLU -> cls logits (K + 1, 0 is
//             background; softmax) and 4 class-agnostic deltas (stds 0.1, 0.1, 0.2, 0.2).
//
// Targets (per chip, from data.hpp's chip_target; boxes in chip px, in options.convention):
//   RPN   anchors inside the chip's content (width x height) grown by anchor_border (32 px)
//         are labelled by snip::assign_rpn with options.rpn (SNIPER's rules: valid / invalid /
//         crowd gt, 256 sampled, at most half positive, seeded); anchors outside are -1.
//         Positive anchors regress to their matched gt (box coder means 0, stds 1).
//   RCNN  training proposals of the chip (the original's MultiProposalTarget: every anchor
//         decoded, both sides < 3 px dropped, NMS 0.7, best 300, no pre-NMS cut), those whose
//         size is outside the chip's valid range dropped (chip_target::range), then
//         snip::rcnn_proposal_targets with options.rcnn: valid gt appended, foreground IoU
//         > 0.5 (invalid gt label too, crowd never), class-agnostic deltas with stds (0.1, 0.1,
//         0.2, 0.2), every RoI kept (the original's BATCH_ROIS -1). rcnn_options::batch > 0
//         samples instead (e.g. 128 with 25% foreground, torchvision's habit).
//   mask  (detector_options::masks; the original's resnet_mx_101_e2e_mask.py and
//         SNIPER-mxnet MultiProposalTargetMask + MaskRcnnTarget) each chip's first
//         mask_rois_per_chip (50) foreground RoIs in RoI order, each matched to a gt with a mask
//         (chip_target::segments; a RoI whose gt has none is skipped): features pooled at
//         mask_pool x mask_pool (14) from the head's map by the head's pooling (deformable:
//         a pass without offsets -> FC 2 x 14 x 14 `mask_offset_fc`, zero at the start, lr x
//         0.01 -> a second pass; RoIAlign otherwise) -> mask_convs x (3x3 conv
//         mask_channels + ReLU) -> 2x2 stride-2 deconv + ReLU -> 1x1 conv to K logits of
//         2P x 2P (28 x 28). The target of a RoI is its gt's mask rasterised in the RoI
//         (snip::mask::roi_mask: the polygons' pycocotools rasterisation at M x M, the
//         original's convertPoly2Mask), and the loss reads the logit of the gt's class.
//         All mask layers start N(0, 0.01) with zero biases (init_weight_mask;
//         mask_init_std <= 0: He's initialisation instead).
// Seeds: chip b of a batch samples with seed mix(seed, 2c) for the RPN and mix(seed, 2c + 1)
// for the RCNN, c = b + batch_share::first_chip (its index in the global batch when the batch
// is split over processes); the same seed and inputs give the same losses.
//
// Losses (detector_losses; normalisers in loss_options, the original's): for a global batch
// of B chips and G = B / 16 (the original's chips per GPU),
//   rpn_cls   G x binary cross-entropy summed over the sampled anchors / their number (the
//             original's 2-way softmax over {background, object} is the same function of the
//             logit difference; one logit per anchor here)
//   rpn_box   3 x smooth L1 (beta 1 = the original's sigma 1) over the positive anchors'
//             deltas / (16 x 256)
//   rcnn_cls  G x cross-entropy summed over the RoIs / their number
//   rcnn_box  smooth L1 (beta 1) over the foreground RoIs' deltas / (16 x 188)
//   rcnn_mask (with detector_options::masks) G x binary cross-entropy summed over the mask
//             target pixels / their number (SoftmaxOutput normalization 'valid' on the 2-way
//             {not, is} pick of the original, again the same function of one logit)
//   i.e. the sum over G groups of 16 chips of the original's per-GPU loss, on which the
//   original's lr (0.015) gives the original's step. With a batch split over W processes
//   (batch_share), the counts are those of the GLOBAL batch (summed over the processes) and
//   each process's losses are multiplied by W, so that averaging the processes' gradients
//   gives exactly the gradient of the whole batch.
// Devices: the network runs where its parameters are; anchors, proposals, targets and NMS
// run on the CPU with snip's code (small tensors copied over). Only the CPU path is tested
// (no GPU here); the CUDA path also needs snip's torch ops built with SNIP_TORCH_CUDA.
#pragma once

#include <snip/train/backbone.hpp>
#include <snip/train/data.hpp>
#include <snip/mask/polygon.hpp>

#include <snip/det/anchors.hpp>
#include <snip/core/box.hpp>
#include <snip/det/box_coder.hpp>
#include <snip/core/error.hpp>
#include <snip/core/random.hpp>
#include <snip/core/gt_state.hpp>
#include <snip/det/rcnn_targets.hpp>
#include <snip/det/rpn_targets.hpp>
#include <snip/det/sampling.hpp>
#include <snip/torch/ops.hpp>

#include <torch/nn/functional/loss.h>
#include <torch/nn/init.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace snip::train {

/// @brief Proposal layer settings for one phase (training or test).
struct proposal_options {
    std::int64_t pre_nms = 6000; ///< best-scoring decoded anchors kept before NMS
    std::int64_t post_nms = 300; ///< proposals kept after NMS (SNIPER: 300)
    double nms_iou = 0.7;        ///< NMS threshold (IoU > this suppresses)
    double min_size = 2.0;       ///< boxes with width or height (convention) below this go
    /// true: a box goes only when BOTH its width and height are below min_size (the original's
    /// training proposals, multi_proposal_target.cu:318); false: when either is.
    bool min_size_both = false;

    /// @brief Throws snip::error naming `who` and the field for settings that cannot work.
    void validate(const std::string& who) const;
};

/// @brief How the four losses are normalised: the original SNIPER's, per GPU of `group_chips`
/// chips (its BATCH_IMAGES), summed over GPUs (mahyarnajibi/SNIPER
/// symbols/faster/resnet_mx_101_e2e.py get_symbol_rcnn; lib/train_utils/utils.py:30
/// rescale_grad 1.0 with kvstore 'device', which SUMS the GPUs' gradients). For a global batch
/// of B chips, G = B / group_chips:
///   rpn_cls  = G x (sum of the sampled anchors' losses) / (sampled anchors in the batch)
///              (SoftmaxOutput normalization='valid': the mean over a GPU's sampled anchors)
///   rpn_box  = rpn_box_weight x (sum of smooth L1, sigma 1, over positive anchors' deltas)
///              / (group_chips x rpn_box_anchors)   (grad_scale 3 / (16 x 256), line 202)
///   rcnn_cls = G x (sum over the RoIs) / (RoIs in the batch)   (normalization='valid')
///   rcnn_box = (sum of smooth L1, sigma 1, over foreground RoIs' deltas)
///              / (group_chips x rcnn_box_rois)     (grad_scale 1 / (188 x 16), line 319)
/// so the loss is the sum over G groups of a group's loss, and SGD with the original's lr
/// (0.015) on it takes the original's step for any B. The means use the batch's counts, not
/// each group's (the two agree when the groups' counts are equal), which keeps a run split
/// over processes equal to one process's.
struct loss_options {
    double group_chips = 16;       ///< the original's chips per GPU (BATCH_IMAGES, sniper_res101_e2e.yml)
    double rpn_box_weight = 3.0;   ///< resnet_mx_101_e2e.py:202 (grad_scale = 3 * ...)
    double rpn_box_anchors = 256;  ///< RPN_BATCH_SIZE: anchors per chip in the RPN box normaliser
    double rcnn_box_rois = 188;    ///< resnet_mx_101_e2e.py:319 (188.0 * 16.0), a constant there
    double rpn_box_beta = 1.0;     ///< smooth L1 with MXNet scalar sigma 1 (line 199): beta 1 / sigma^2 = 1
    double rcnn_box_beta = 1.0;    ///< smooth L1 sigma 1 (line 317)

    /// @throws snip::error naming the field when a value cannot normalise.
    void validate() const;

    /// @brief The factors that turn the four SUMS of a process's share into its losses:
    /// {rpn_cls, rpn_box, rcnn_cls, rcnn_box}. `chips` is the GLOBAL batch, `sampled` and
    /// `rois` the global counts, `world` the processes whose gradients are averaged (each
    /// process's loss is multiplied by it so that the average is the sum).
    std::array<double, 4> factors(double chips, double sampled, double rois, int world) const;
    /// @brief The factor of the mask loss's sum: W x G / (mask target pixels of the global
    /// batch), as rcnn_cls's (SoftmaxOutput normalization 'valid' per GPU, summed over GPUs).
    double mask_factor(double chips, double pixels, int world) const {
        return double(world) * (chips / group_chips) / std::max(1.0, pixels);
    }
};

/// @brief How the head pools RoI features.
enum class roi_pooling {
    deformable, ///< the original's deformable RoI pooling with an offset FC (two passes)
    roialign    ///< RoIAlign (torchvision's), the plain network's
};

/// @brief "deformable" / "roialign".
const char* to_string(roi_pooling p);
/// @brief The inverse of to_string; snip::error naming `where` and the value otherwise.
roi_pooling roi_pooling_from(const std::string& name, const std::string& where);

/// @brief Everything that defines a FasterRCNN. Defaults are the original SNIPER's (see the
/// file comment): detector_options{} == detector_options::sniper().
struct detector_options {
    /// Needs dilate_res5 (res4 and res5 at stride 16). Default: the original's deformable res5
    /// (4 offset groups, every unit dilated).
    resnet_options backbone = sniper_backbone();
    /// The RPN reads concat(res4, res5) (the original's) or, when false, res4 alone.
    bool rpn_on_concat = true;
    roi_pooling head_pooling = roi_pooling::deformable;
    std::int64_t deform_samples = 4;   ///< deformable pooling: samples per bin and axis (sample_per_part)
    double deform_trans_std = 0.1;     ///< deformable pooling: offsets are scaled by this x the RoI size
    double offset_lr_mult = 0.01;      ///< learning-rate multiplier of offset_fc (the original's lr_mult)
    std::int64_t num_classes = 80;             ///< K object classes; logits have K + 1
    snip::anchor_config anchors = snip::anchor_config::sniper();
    snip::pixel_convention convention = snip::pixel_convention::inclusive;
    double anchor_border = 32.0;               ///< anchors within the chip +- this are labelled
    snip::rpn_options rpn = snip::rpn_options::sniper();
    snip::rcnn_options rcnn = default_rcnn();
    /// Drop training proposals whose size is outside the chip's valid range (the chip's scale's
    /// range times its factor, chip_target::range), as the original's MultiProposalTarget
    /// (SNIPER-mxnet src/operator/multi_proposal_target.cu:326: area >= hi^2 or < lo^2).
    bool filter_proposals_by_range = true;
    /// Training proposals: the original's MultiProposalTarget decodes every anchor, drops boxes
    /// whose two sides are both < 3 px measured as x2 - x1 (multi_proposal_target.cu:317-318;
    /// a width + 1 < 4 under the inclusive convention here) and keeps the best 300 after NMS
    /// 0.7 with no pre-NMS cut (rpn_post_nms_top_n 300, threshold 0.7).
    proposal_options train_proposals{std::numeric_limits<std::int64_t>::max(), 300, 0.7, 4.0,
                                     /*min_size_both=*/true};
    proposal_options test_proposals{6000, 300, 0.7, 2.0};
    loss_options loss{};
    std::int64_t rpn_channels = 512;           ///< the RPN's 3x3 conv
    std::int64_t head_channels = 256;          ///< the 1x1 conv before RoIAlign
    std::int64_t fc_channels = 1024;           ///< the two FC layers
    std::int64_t pool_size = 7;                ///< RoI pooling bins per side (and the offsets' parts)
    std::int64_t sampling_ratio = 2;           ///< RoIAlign samples per bin and axis
    /// Per-class NMS of forward_test (IoU > this suppresses); <= 0: none, every box above the
    /// score threshold is kept (the original applies no NMS per scale before its multi-scale
    /// Soft-NMS, lib/inference.py; inference.hpp merges the scales).
    double test_nms_iou = 0.5;
    /// The mask branch (Mask R-CNN, the original's resnet_mx_101_e2e_mask.py; see
    /// mask_options). Off by default: the detector is then exactly the box network.
    bool masks = false;
    std::int64_t mask_pool = 14;      ///< RoI features per side for masks; logits are 2x this
    std::int64_t mask_channels = 256; ///< channels of the mask convs and the deconv
    std::int64_t mask_convs = 4;      ///< 3x3 conv + ReLU layers before the deconv
    /// Positive RoIs that get a mask loss per chip: its first mask_rois_per_chip foreground
    /// RoIs in RoI order whose gt has a mask. The original's MultiProposalTargetMask
    /// (multi_proposal_target_mask.cu:548) caps a GPU's whole batch instead, at num_images x
    /// max_masks 50, so one chip there may take more than 50 when another has fewer; the cap
    /// per chip keeps a batch split over processes equal to one process's.
    std::int64_t mask_rois_per_chip = 50;
    /// The mask layers' initial weights: N(0, mask_init_std) (the original's 0.01,
    /// init_weight_mask), or with a value <= 0 He's N(0, 2 / fan_in), which a narrow branch
    /// trained from scratch needs (with 16..64 channels, 0.01 shrinks the signal ~1e3x
    /// through the four convs and the branch hardly learns).
    double mask_init_std = 0.01;

    /// The original's RCNN targets: every proposal of the chip (after the range filter) plus
    /// the valid ground truth, foreground IoU > 0.5, no sampling (BATCH_ROIS -1,
    /// sniper_res101_e2e.yml; multi_proposal_target.cu keeps all 300 RoIs). Set `batch` (and
    /// `fg_fraction`) for torchvision-style sampling, e.g. 128 and 0.25.
    static snip::rcnn_options default_rcnn();

    /// The original's backbone: resnet_options{} with a deformable res5 of 4 offset groups,
    /// every res5 unit dilated (the original's residual_unit_deform has no undilated unit).
    static resnet_options sniper_backbone();
    /// The original SNIPER network (the default).
    static detector_options sniper();
    /// The plain Faster R-CNN of earlier snip versions: dilated res5 (torchvision's), RPN on
    /// res4, RoIAlign head. Checkpoints written before the sniper network load into it.
    static detector_options plain();
    /// "sniper", "plain", or "custom" for any other combination of the three switches.
    std::string model_name() const;
};

/// @brief The training losses (scalars); total() is their sum. rcnn_mask is a zero without a
/// gradient when the network has no mask branch.
struct detector_losses {
    torch::Tensor rpn_cls, rpn_box, rcnn_cls, rcnn_box, rcnn_mask;
    torch::Tensor total() const {
        torch::Tensor t = rpn_cls + rpn_box + rcnn_cls + rcnn_box;
        return rcnn_mask.defined() ? t + rcnn_mask : t;
    }
};

/// @brief How a process's chips fit into a global batch split over `world` processes
/// (distributed.hpp): the chips' global indices (for their sampling seeds) and the sum over
/// processes of the loss normalisers. The default is a whole batch in one process.
struct batch_share {
    std::size_t first_chip = 0; ///< global index of this process's first chip
    int world = 1;              ///< processes whose gradients are averaged
    /// Sums {sampled anchors, sampled RoIs, mask target pixels} over the processes in place
    /// (a collective: every process calls it once per forward_train); null for one process.
    std::function<void(std::array<double, 3>&)> sum_counts;
};

/// @brief The raw RPN outputs of a batch: logits [B, A, H, W], deltas [B, 4A, H, W].
struct rpn_output {
    torch::Tensor objectness, deltas;
    /// Logits as [B, H*W*A] and deltas as [B, H*W*A, 4], in anchor order.
    torch::Tensor flat_objectness() const;
    torch::Tensor flat_deltas() const;
};

/// @brief RPN targets of one chip: labels [N] int64 (1 / 0 / -1) and deltas [N, 4] float
/// (zero except for positive anchors), N = every anchor of the feature grid.
struct rpn_target {
    torch::Tensor labels, deltas;
    snip::label_counts counts; ///< after sampling
};

/// @brief Detections of one chip: boxes [n, 4] (chip px, xyxy, in detector_options::convention:
/// with the default inclusive convention x2 is the last pixel, so a COCO width is x2 - x1 + 1),
/// scores [n], labels [n] int64 (1..K), by decreasing score.
struct detections {
    torch::Tensor boxes, scores, labels;
    /// With forward_test(..., with_masks): [n, M, M] float32 mask probabilities of each
    /// detection's class over its box (M = 2 x mask_pool, row-major, the box split in M x M
    /// cells); undefined otherwise.
    torch::Tensor masks;
};

namespace detail {

/// [n, 4] float tensor -> boxes.
std::vector<snip::box<float>> to_boxes(const torch::Tensor& t);

torch::Tensor from_boxes(const std::vector<snip::box<float>>& b);

/// One chip's ground truth, checked and converted.
struct checked_target {
    std::vector<snip::box<float>> boxes;
    std::vector<snip::gt_state> states;
    std::vector<std::int32_t> classes;
};

checked_target check_target(const chip_target& t, std::int64_t num_classes, std::size_t chip);
/// The mask branch's training RoIs of a batch, with their classes and M x M targets.
struct mask_batch {
    std::vector<float> rois;            ///< n x 5: chip, x1, y1, x2, y2 (chip px)
    std::vector<std::int64_t> classes;  ///< n, 1..K
    std::vector<std::uint8_t> targets;  ///< n x M x M, row-major, 0 / 1
    std::vector<std::int64_t> source;   ///< the RoI's index in its chip's rcnn_targets
    std::size_t size() const { return classes.size(); }
};
/// Appends to `mb` the foreground RoIs of one chip's RCNN targets `ct` (in their order) whose
/// matched gt has a mask in `segments` (chip px, parallel to the chip's gt; empty: none), at
/// most `cap` of them; each target is the gt's mask rasterised in the RoI at M x M
/// (snip::mask::roi_mask).
void add_mask_targets(mask_batch& mb, const snip::rcnn_targets<float>& ct,
                      const std::vector<snip::mask::segmentation>& segments, std::int64_t chip,
                      std::int64_t M, std::size_t cap);

} // namespace detail

class FasterRCNNImpl : public torch::nn::Module {
public:
    explicit FasterRCNNImpl(const detector_options& options = {});

    // ----- building blocks (public so a trainer or a test can look inside) -----

    std::int64_t num_anchors() const { return static_cast<std::int64_t>(templates_.size()); }

    /// @brief The anchors of an H x W stride-16 grid: [H*W*A, 4] float32, chip px.
    torch::Tensor anchors(std::int64_t height, std::int64_t width) const;

    /// @brief The RPN on `x`: rpn_input(f).
    rpn_output rpn_forward(const torch::Tensor& x);

    /// @brief What the RPN reads: concat(res4, res5) or res4 (detector_options::rpn_on_concat).
    torch::Tensor rpn_input(const resnet_features& f) const;

    /// @brief The RoI feature map: ReLU(1x1 conv 256 of concat(res4, res5)); `cat` is that
    /// concatenation when the caller has it already.
    torch::Tensor head_features(const resnet_features& f, const torch::Tensor& cat = {});

    /// @brief The RCNN head on `rois` ([R, 5]: batch index, x1, y1, x2, y2 in chip px):
    /// {cls logits [R, K + 1], class-agnostic deltas [R, 4]}.
    std::pair<torch::Tensor, torch::Tensor> head_forward(const torch::Tensor& feats,
                                                         const torch::Tensor& rois);

    /// @brief The mask branch on `rois` ([R, 5] as head_forward): logits [R, K, M, M],
    /// M = 2 x mask_pool. @throws snip::error when the network has no mask branch.
    torch::Tensor mask_forward(const torch::Tensor& feats, const torch::Tensor& rois);
    /// @brief Mask probabilities (sigmoid) of class labels[r] (1..K) for each RoI: [R, M, M]
    /// float32 on the CPU (no gradient).
    torch::Tensor mask_probabilities(const torch::Tensor& feats, const torch::Tensor& rois,
                                     const torch::Tensor& labels);
    /// @brief Proposals of one chip (no gradient): logits [N], deltas [N, 4], anchors [N, 4];
    /// boxes clipped to width x height. Returns {boxes [P, 4], scores [P] (logits)} by
    /// decreasing score.
    std::pair<torch::Tensor, torch::Tensor> proposals(const torch::Tensor& logits,
                                                      const torch::Tensor& deltas,
                                                      const torch::Tensor& anchors, int width,
                                                      int height,
                                                      const proposal_options& po) const;

    /// @brief RPN targets of one chip (see the file comment) for `anchors` ([N, 4]).
    rpn_target rpn_targets(const torch::Tensor& anchors, const chip_target& t,
                           std::uint64_t seed) const;

    // ----- training and inference -----

    /// @brief The losses of a batch (the mask loss with the mask branch). images [B, 3, S, S]
    /// float32; targets: B chips.
    /// With `rpn_only` (SNIPER's short first stage, which trains the RPN whose proposals
    /// mine the negative chips) neither proposals nor the head are computed and the two
    /// RCNN losses are zeros without a gradient.
    detector_losses forward_train(const torch::Tensor& images,
                                  const std::vector<chip_target>& targets, std::uint64_t seed,
                                  bool rpn_only = false, const batch_share& share = {});

    /// @brief Detections per chip (no gradient): test proposals on the whole S x S chip (or
    /// `sizes[b]` = {width, height} of its content when given), class-agnostic boxes decoded
    /// and clipped, per class: scores > score_threshold, NMS at options.test_nms_iou; the
    /// best `max_detections` over all classes. `with_masks` (a network with a mask branch)
    /// adds detections::masks; `head_map`, when given, receives the head's feature map
    /// ([B, C, h, w], for mask_probabilities on other boxes later).
    std::vector<detections> forward_test(const torch::Tensor& images, double score_threshold,
                                         std::int64_t max_detections,
                                         const std::vector<std::array<int, 2>>& sizes = {},
                                         std::optional<double> nms_iou = std::nullopt,
                                         bool with_masks = false,
                                         torch::Tensor* head_map = nullptr);

    const detector_options& options() const { return options_; }

    /// @brief Parameters with requires_grad (for the optimizer).
    std::vector<torch::Tensor> trainable_parameters() const;

    /// @brief trainable_parameters() split by learning-rate multiplier: {parameters, multiplier}
    /// groups, the first with multiplier 1, then offset_fc's and mask_offset_fc's
    /// (offset_lr_mult) when the head is deformable. Every trainable parameter is in exactly
    /// one group.
    std::vector<std::pair<std::vector<torch::Tensor>, double>> parameter_groups() const;

    ResNet backbone{nullptr};
    torch::nn::Conv2d rpn_conv{nullptr}, rpn_cls{nullptr}, rpn_bbox{nullptr}, head_conv{nullptr};
    torch::nn::Linear fc6{nullptr}, fc7{nullptr}, cls_score{nullptr}, bbox_pred{nullptr};
    /// The deformable head's offset predictor (7 x 7 x 2 from the first pooling); empty with
    /// RoIAlign.
    torch::nn::Linear offset_fc{nullptr};
    /// The mask branch (detector_options::masks): the deformable pooling's offset predictor
    /// (mask_pool x mask_pool x 2; empty with RoIAlign), the 3x3 convs, the 2x2 stride-2
    /// deconv (no bias, as MXNet's Deconvolution) and the 1x1 per-class logits.
    torch::nn::Linear mask_offset_fc{nullptr};
    std::vector<torch::nn::Conv2d> mask_conv; ///< registered as mask_conv1, mask_conv2, ...
    torch::nn::ConvTranspose2d mask_deconv{nullptr};
    torch::nn::Conv2d mask_logits{nullptr};

private:
    double extra() const { return options_.convention == snip::pixel_convention::inclusive ? 1.0 : 0.0; }
    /// RoI features P x P from the head's map by the head's pooling (deformable: two passes,
    /// `offsets` predicting the second pass's offsets).
    torch::Tensor pool_rois(const torch::Tensor& feats, const torch::Tensor& rois, std::int64_t P,
                            torch::nn::Linear& offsets);

    rpn_target rpn_targets(const torch::Tensor& anchors, const chip_target& t,
                           const detail::checked_target& g, std::uint64_t seed) const;

    detector_options options_;
    std::vector<snip::box<double>> templates_;
};
TORCH_MODULE(FasterRCNN);

} // namespace snip::train
