// detector.cpp: the Faster R-CNN detector: RPN, proposals, head, losses, detections (declared in
// snip/train/detector.hpp).
#include <snip/train/detector.hpp>

namespace snip::train {

void proposal_options::validate(const std::string& who) const {
    snip::require(pre_nms >= 1, who, ": pre_nms must be >= 1, got ", pre_nms);
    snip::require(post_nms >= 1, who, ": post_nms must be >= 1, got ", post_nms);
    snip::require(std::isfinite(nms_iou) && nms_iou >= 0.0 && nms_iou <= 1.0, who,
                  ": nms_iou must be in [0, 1], got ", nms_iou);
    snip::require(std::isfinite(min_size) && min_size >= 0.0, who, ": min_size must be >= 0, got ",
                  min_size);
}

void loss_options::validate() const {
    auto positive = [](double v, const char* name) {
        snip::require(std::isfinite(v) && v > 0.0, "FasterRCNN: loss option ", name,
                      " must be finite and > 0, got ", v);
    };
    positive(group_chips, "group_chips");
    positive(rpn_box_weight, "rpn_box_weight");
    positive(rpn_box_anchors, "rpn_box_anchors");
    positive(rcnn_box_rois, "rcnn_box_rois");
    positive(rpn_box_beta, "rpn_box_beta");
    positive(rcnn_box_beta, "rcnn_box_beta");
}

std::array<double, 4> loss_options::factors(double chips, double sampled, double rois,
                                            int world) const {
    const double G = chips / group_chips, W = double(world);
    return {W * G / std::max(1.0, sampled), W * rpn_box_weight / (group_chips * rpn_box_anchors),
            W * G / std::max(1.0, rois), W / (group_chips * rcnn_box_rois)};
}

snip::rcnn_options detector_options::default_rcnn() {
    snip::rcnn_options o = snip::rcnn_options::sniper();
    o.batch = 0;
    return o;
}

resnet_options detector_options::sniper_backbone() {
    resnet_options b;
    b.deformable_res5_groups = 4;        // num_deformable_group=4 (residual_unit_deform)
    b.dilate_first_res5_block = true;    // resnetc5: every unit dilate=(2, 2), stride 1
    return b;
}

detector_options detector_options::sniper() { return {}; }

detector_options detector_options::plain() {
    detector_options o;
    o.backbone = resnet_options{};
    o.rpn_on_concat = false;
    o.head_pooling = roi_pooling::roialign;
    return o;
}

std::string detector_options::model_name() const {
    const bool deform = backbone.deformable_res5_groups > 0;
    if (deform && backbone.deformable_res5_groups == 4 && backbone.dilate_first_res5_block &&
        rpn_on_concat && head_pooling == roi_pooling::deformable)
        return "sniper";
    if (!deform && !backbone.dilate_first_res5_block && !rpn_on_concat &&
        head_pooling == roi_pooling::roialign)
        return "plain";
    return "custom";
}

const char* to_string(roi_pooling p) {
    return p == roi_pooling::deformable ? "deformable" : "roialign";
}

roi_pooling roi_pooling_from(const std::string& name, const std::string& where) {
    if (name == "deformable") return roi_pooling::deformable;
    if (name == "roialign") return roi_pooling::roialign;
    snip::fail(where, ": unknown RoI pooling '", name, "' (deformable or roialign)");
}

torch::Tensor rpn_output::flat_objectness() const {
    return objectness.permute({0, 2, 3, 1}).reshape({objectness.size(0), -1});
}

torch::Tensor rpn_output::flat_deltas() const {
    return deltas.permute({0, 2, 3, 1}).reshape({deltas.size(0), -1, 4});
}

namespace detail {

std::vector<snip::box<float>> to_boxes(const torch::Tensor& t) {
    const torch::Tensor c = t.to(torch::kFloat).contiguous();
    const float* p = c.data_ptr<float>();
    std::vector<snip::box<float>> out(static_cast<std::size_t>(c.size(0)));
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = {p[4 * i], p[4 * i + 1], p[4 * i + 2], p[4 * i + 3]};
    return out;
}

torch::Tensor from_boxes(const std::vector<snip::box<float>>& b) {
    torch::Tensor t = torch::empty({static_cast<std::int64_t>(b.size()), 4}, torch::kFloat);
    float* p = t.data_ptr<float>();
    for (std::size_t i = 0; i < b.size(); ++i) {
        p[4 * i] = b[i].x1, p[4 * i + 1] = b[i].y1, p[4 * i + 2] = b[i].x2, p[4 * i + 3] = b[i].y2;
    }
    return t;
}

checked_target check_target(const chip_target& t, std::int64_t num_classes, std::size_t chip) {
    const std::string who = "FasterRCNN: target of chip " + std::to_string(chip);
    snip::require(t.boxes.defined() && t.boxes.dim() == 2 && t.boxes.size(1) == 4, who,
                  ": boxes must be an [n, 4] tensor");
    const std::int64_t n = t.boxes.size(0);
    snip::require(t.segments.empty() || std::int64_t(t.segments.size()) == n, who, ": ",
                  t.segments.size(), " segments for ", n, " boxes");
    snip::require(t.classes.defined() && t.classes.dim() == 1 && t.classes.size(0) == n, who,
                  ": classes must be an [", n, "] tensor");
    snip::require(t.states.defined() && t.states.dim() == 1 && t.states.size(0) == n, who,
                  ": states must be an [", n, "] tensor");
    snip::require(t.width > 0 && t.height > 0, who, ": content size must be > 0, got ", t.width,
                  " x ", t.height);
    checked_target g;
    g.boxes = to_boxes(t.boxes);
    const torch::Tensor cl = t.classes.to(torch::kLong).contiguous();
    const torch::Tensor st = t.states.to(torch::kLong).contiguous();
    const std::int64_t* c = cl.data_ptr<std::int64_t>();
    const std::int64_t* s = st.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < n; ++i) {
        snip::require(s[i] >= 0 && s[i] <= 2, who, ": box ", i, " has state ", s[i],
                      " (0 valid, 1 invalid, 2 crowd)");
        const auto state = static_cast<snip::gt_state>(s[i]);
        snip::require(state == snip::gt_state::crowd || (c[i] >= 1 && c[i] <= num_classes), who,
                      ": box ", i, " has class id ", c[i], ", outside 1..", num_classes,
                      " (0 is background)");
        const snip::box<float>& b = g.boxes[static_cast<std::size_t>(i)];
        snip::require(std::isfinite(b.x1) && std::isfinite(b.y1) && std::isfinite(b.x2) &&
                          std::isfinite(b.y2) && b.x2 >= b.x1 && b.y2 >= b.y1,
                      who, ": box ", i, " [", b.x1, ", ", b.y1, ", ", b.x2, ", ", b.y2,
                      "] is not a finite xyxy box");
        g.states.push_back(state);
        // A crowd region never labels; any class id >= 1 satisfies rcnn_proposal_targets.
        g.classes.push_back(state == snip::gt_state::crowd ? 1 : static_cast<std::int32_t>(c[i]));
    }
    return g;
}

void add_mask_targets(mask_batch& mb, const snip::rcnn_targets<float>& ct,
                      const std::vector<snip::mask::segmentation>& segments, std::int64_t chip,
                      std::int64_t M, std::size_t cap) {
    std::size_t added = 0;
    for (std::size_t i = 0; i < ct.rois.size() && !segments.empty() && added < cap; ++i) {
        const std::int32_t g = ct.matched[i];
        if (ct.labels[i] <= 0 || g < 0) continue;
        snip::require(std::size_t(g) < segments.size(), "FasterRCNN: RoI ", i,
                      " is matched to gt ", g, " but the chip has ", segments.size(),
                      " segments");
        const snip::mask::segmentation& sg = segments[std::size_t(g)];
        if (sg.empty()) continue;
        const snip::box<float>& q = ct.rois[i];
        const snip::box<double> roi{q.x1, q.y1, q.x2, q.y2};
        const std::size_t at = mb.targets.size();
        mb.targets.resize(at + std::size_t(M * M));
        if (sg.is_polygons())
            snip::mask::roi_mask(sg.polygons, roi, int(M), mb.targets.data() + at);
        else
            snip::mask::roi_mask(sg.mask, roi, int(M), mb.targets.data() + at);
        mb.rois.insert(mb.rois.end(), {float(chip), q.x1, q.y1, q.x2, q.y2});
        mb.classes.push_back(ct.labels[i]);
        mb.source.push_back(std::int64_t(i));
        ++added;
    }
}

} // namespace detail

FasterRCNNImpl::FasterRCNNImpl(const detector_options& options) : options_(options) {
    snip::require(options.num_classes >= 1, "FasterRCNN: num_classes must be >= 1, got ",
                  options.num_classes);
    snip::require(options.backbone.dilate_res5,
                  "FasterRCNN: the head concatenates res4 and res5, so the backbone needs "
                  "dilate_res5 (both at stride 16)");
    snip::require(options.anchors.stride == 16.0,
                  "FasterRCNN: the RPN runs on res4 (stride 16), "
                  "anchor stride must be 16, got ",
                  options.anchors.stride);
    snip::require(options.deform_samples >= 1, "FasterRCNN: deform_samples must be >= 1, got ",
                  options.deform_samples);
    snip::require(std::isfinite(options.deform_trans_std) && options.deform_trans_std >= 0,
                  "FasterRCNN: deform_trans_std must be finite and >= 0, got ",
                  options.deform_trans_std);
    snip::require(std::isfinite(options.offset_lr_mult) && options.offset_lr_mult >= 0,
                  "FasterRCNN: offset_lr_mult must be finite and >= 0, got ",
                  options.offset_lr_mult);
    snip::require(options.pool_size >= 1 && options.rpn_channels >= 1 &&
                      options.head_channels >= 1 && options.fc_channels >= 1,
                  "FasterRCNN: layer sizes must be >= 1");
    options.rpn.validate();
    options.rcnn.validate();
    options.loss.validate();
    if (options.masks)
        snip::require(std::isfinite(options.mask_init_std) && options.mask_pool >= 1 && options.mask_channels >= 1 &&
                          options.mask_convs >= 0 && options.mask_rois_per_chip >= 1,
                      "FasterRCNN: the mask branch needs mask_pool >= 1, mask_channels >= 1, "
                      "mask_convs >= 0 and mask_rois_per_chip >= 1, got ",
                      options.mask_pool, ", ", options.mask_channels, ", ", options.mask_convs,
                      ", ", options.mask_rois_per_chip);
    options.train_proposals.validate("FasterRCNN: train_proposals");
    options.test_proposals.validate("FasterRCNN: test_proposals");
    templates_ = options.anchors.templates();
    snip::require(!templates_.empty(), "FasterRCNN: the anchor set is empty");
    const auto A = num_anchors();

    backbone = register_module("backbone", ResNet(options.backbone));
    const std::int64_t c4 = backbone->res4_channels(), c5 = backbone->res5_channels();
    namespace nn = torch::nn;
    rpn_conv = register_module(
        "rpn_conv", nn::Conv2d(nn::Conv2dOptions(options.rpn_on_concat ? c4 + c5 : c4,
                                                  options.rpn_channels, 3)
                                   .padding(1)));
    rpn_cls = register_module("rpn_cls", nn::Conv2d(nn::Conv2dOptions(options.rpn_channels, A, 1)));
    rpn_bbox =
        register_module("rpn_bbox", nn::Conv2d(nn::Conv2dOptions(options.rpn_channels, 4 * A, 1)));
    head_conv = register_module("head_conv",
                                nn::Conv2d(nn::Conv2dOptions(c4 + c5, options.head_channels, 1)));
    fc6 = register_module("fc6",
                          nn::Linear(options.head_channels * options.pool_size * options.pool_size,
                                     options.fc_channels));
    fc7 = register_module("fc7", nn::Linear(options.fc_channels, options.fc_channels));
    cls_score =
        register_module("cls_score", nn::Linear(options.fc_channels, options.num_classes + 1));
    bbox_pred = register_module("bbox_pred", nn::Linear(options.fc_channels, 4));
    const std::int64_t P = options.pool_size;
    if (options.head_pooling == roi_pooling::deformable)
        offset_fc = register_module("offset_fc",
                                    nn::Linear(options.head_channels * P * P, 2 * P * P));
    if (options.masks) {
        const std::int64_t MP = options.mask_pool, MC = options.mask_channels;
        if (options.head_pooling == roi_pooling::deformable)
            mask_offset_fc = register_module(
                "mask_offset_fc", nn::Linear(options.head_channels * MP * MP, 2 * MP * MP));
        std::int64_t in = options.head_channels;
        for (std::int64_t i = 0; i < options.mask_convs; ++i, in = MC)
            mask_conv.push_back(register_module("mask_conv" + std::to_string(i + 1),
                                                nn::Conv2d(nn::Conv2dOptions(in, MC, 3).padding(1))));
        mask_deconv = register_module(
            "mask_deconv",
            nn::ConvTranspose2d(nn::ConvTranspose2dOptions(in, MC, 2).stride(2).bias(false)));
        mask_logits = register_module(
            "mask_logits", nn::Conv2d(nn::Conv2dOptions(MC, options.num_classes, 1)));
    }

    // Initialisation (py-faster-rcnn / SNIPER): RPN and head convs N(0, 0.01), the class
    // scores N(0, 0.01), the deltas N(0, 0.001), biases 0; the FCs N(0, 0.01) too.
    torch::NoGradGuard ng;
    for (auto* c : {&rpn_conv, &rpn_cls, &rpn_bbox, &head_conv}) {
        nn::init::normal_((*c)->weight, 0.0, 0.01);
        nn::init::zeros_((*c)->bias);
    }
    for (auto* l : {&fc6, &fc7, &cls_score}) {
        nn::init::normal_((*l)->weight, 0.0, 0.01);
        nn::init::zeros_((*l)->bias);
    }
    nn::init::normal_(bbox_pred->weight, 0.0, 0.001);
    nn::init::zeros_(bbox_pred->bias);
    if (offset_fc) { // init_weight_rcnn: offset_weight and offset_bias zeros
        nn::init::zeros_(offset_fc->weight);
        nn::init::zeros_(offset_fc->bias);
    }
    // init_weight_mask: every mask layer N(0, 0.01), biases and the mask offsets zero (or He's
    // N(0, 2 / fan_in) with mask_init_std <= 0).
    auto mask_init = [&](torch::Tensor& w, std::int64_t fan_in) {
        const double sd =
            options.mask_init_std > 0 ? options.mask_init_std : std::sqrt(2.0 / double(fan_in));
        nn::init::normal_(w, 0.0, sd);
    };
    for (auto& c : mask_conv) {
        mask_init(c->weight, c->weight.size(1) * 9);
        nn::init::zeros_(c->bias);
    }
    // A stride-2 2x2 deconv: each output pixel sees one input pixel through one tap per channel.
    if (mask_deconv) mask_init(mask_deconv->weight, mask_deconv->weight.size(0));
    if (mask_logits) {
        mask_init(mask_logits->weight, mask_logits->weight.size(1));
        nn::init::zeros_(mask_logits->bias);
    }
    if (mask_offset_fc) {
        nn::init::zeros_(mask_offset_fc->weight);
        nn::init::zeros_(mask_offset_fc->bias);
    }
}

torch::Tensor FasterRCNNImpl::anchors(std::int64_t height, std::int64_t width) const {
    return detail::from_boxes(snip::grid_anchors<float>(
        std::span<const snip::box<double>>(templates_), static_cast<int>(height),
        static_cast<int>(width), options_.anchors.stride));
}

rpn_output FasterRCNNImpl::rpn_forward(const torch::Tensor& x) {
    const torch::Tensor h = rpn_conv(x).relu();
    return {rpn_cls(h), rpn_bbox(h)};
}

torch::Tensor FasterRCNNImpl::rpn_input(const resnet_features& f) const {
    return options_.rpn_on_concat ? torch::cat({f.res4, f.res5}, 1) : f.res4;
}

torch::Tensor FasterRCNNImpl::head_features(const resnet_features& f, const torch::Tensor& cat) {
    return head_conv(cat.defined() ? cat : torch::cat({f.res4, f.res5}, 1)).relu();
}

torch::Tensor FasterRCNNImpl::pool_rois(const torch::Tensor& feats, const torch::Tensor& rois,
                                        std::int64_t P, torch::nn::Linear& offsets) {
    // snip's RoIAlign takes float32 / float64: under mixed precision the float16 map is
    // pooled in float32 (the layers after it run in float16 again).
    const torch::Tensor f = feats.scalar_type() == torch::kHalf ? feats.to(torch::kFloat) : feats;
    const torch::Tensor r = rois.to(f.scalar_type());
    const double scale = 1.0 / options_.anchors.stride;
    const std::int64_t C = f.size(1);
    if (options_.head_pooling != roi_pooling::deformable)
        return snip::torch_ops::roi_align(f, r, P, scale, options_.sampling_ratio, true);
    // The original's two passes (get_symbol_rcnn; the mask branch's mask_offset_t ->
    // mask_offset -> mask_deformable_roi_pool): pooled without offsets -> offset FC -> R x 2 x
    // P x P offsets (x trans_std x the RoI's size) -> pooled again with them.
    const torch::Tensor first = snip::torch_ops::deform_roi_pool(
        f, r, torch::Tensor(), scale, C, 1, P, P, options_.deform_samples, 0.0);
    const torch::Tensor off = offsets(first.flatten(1)).view({-1, 2, P, P}).to(f.scalar_type());
    return snip::torch_ops::deform_roi_pool(f, r, off, scale, C, 1, P, P, options_.deform_samples,
                                            options_.deform_trans_std);
}

std::pair<torch::Tensor, torch::Tensor> FasterRCNNImpl::head_forward(const torch::Tensor& feats,
                                                                     const torch::Tensor& rois) {
    const torch::Tensor x = pool_rois(feats, rois, options_.pool_size, offset_fc);
    const torch::Tensor h = fc7(fc6(x.flatten(1)).relu()).relu();
    return {cls_score(h), bbox_pred(h)};
}

torch::Tensor FasterRCNNImpl::mask_forward(const torch::Tensor& feats, const torch::Tensor& rois) {
    snip::require(options_.masks,
                  "FasterRCNN::mask_forward: the network has no mask branch (detector_options::masks)");
    torch::Tensor x = pool_rois(feats, rois, options_.mask_pool, mask_offset_fc);
    for (auto& c : mask_conv)
        x = c(x).relu();
    return mask_logits(mask_deconv(x).relu());
}

torch::Tensor FasterRCNNImpl::mask_probabilities(const torch::Tensor& feats,
                                                 const torch::Tensor& rois,
                                                 const torch::Tensor& labels) {
    torch::NoGradGuard ng;
    const std::int64_t M = 2 * options_.mask_pool, R = rois.size(0);
    snip::require(labels.dim() == 1 && labels.size(0) == R, "FasterRCNN::mask_probabilities: ",
                  labels.numel(), " labels for ", R, " RoIs");
    if (R == 0) return torch::zeros({0, M, M});
    const torch::Tensor lb = labels.to(torch::kCPU, torch::kLong);
    snip::require(lb.min().item<std::int64_t>() >= 1 &&
                      lb.max().item<std::int64_t>() <= options_.num_classes,
                  "FasterRCNN::mask_probabilities: labels must be in 1..", options_.num_classes);
    const torch::Tensor logits = mask_forward(feats, rois.to(feats.device()));
    const torch::Tensor pick = (lb - 1).to(logits.device());
    return logits.index({torch::arange(R, pick.options()), pick})
        .to(torch::kCPU, torch::kFloat)
        .sigmoid()
        .contiguous();
}

std::pair<torch::Tensor, torch::Tensor>
FasterRCNNImpl::proposals(const torch::Tensor& logits, const torch::Tensor& deltas,
                          const torch::Tensor& anchors, int width, int height,
                          const proposal_options& po) const {
    torch::NoGradGuard ng;
    // On the CPU: snip's decode and NMS run there (a CUDA model copies these small maps).
    const torch::Tensor s = logits.detach().to(torch::kCPU, torch::kFloat).contiguous();
    const torch::Tensor d = deltas.detach().to(torch::kCPU, torch::kFloat).contiguous();
    torch::Tensor b =
        snip::torch_ops::decode_boxes(anchors, d, {0, 0, 0, 0}, {1, 1, 1, 1}, options_.convention);
    const double e = extra();
    b.select(1, 0).clamp_(0.0, width - e);
    b.select(1, 2).clamp_(0.0, width - e);
    b.select(1, 1).clamp_(0.0, height - e);
    b.select(1, 3).clamp_(0.0, height - e);
    const torch::Tensor w = b.select(1, 2) - b.select(1, 0) + e;
    const torch::Tensor h = b.select(1, 3) - b.select(1, 1) + e;
    const torch::Tensor big = po.min_size_both ? ((w >= po.min_size) | (h >= po.min_size))
                                               : ((w >= po.min_size) & (h >= po.min_size));
    const torch::Tensor keep = big.nonzero().squeeze(1);
    torch::Tensor kb = b.index_select(0, keep), ks = s.index_select(0, keep);
    if (kb.size(0) > po.pre_nms) {
        const torch::Tensor top = std::get<1>(ks.topk(po.pre_nms));
        kb = kb.index_select(0, top);
        ks = ks.index_select(0, top);
    }
    torch::Tensor k = snip::torch_ops::nms(kb.contiguous(), ks.contiguous(), po.nms_iou);
    if (k.size(0) > po.post_nms) k = k.slice(0, 0, po.post_nms);
    return {kb.index_select(0, k), ks.index_select(0, k)};
}

rpn_target FasterRCNNImpl::rpn_targets(const torch::Tensor& anchors, const chip_target& t,
                                       std::uint64_t seed) const {
    const detail::checked_target g = detail::check_target(t, options_.num_classes, 0);
    return rpn_targets(anchors, t, g, seed);
}

detector_losses FasterRCNNImpl::forward_train(const torch::Tensor& images,
                                              const std::vector<chip_target>& targets,
                                              std::uint64_t seed, bool rpn_only,
                                              const batch_share& share) {
    snip::require(share.world >= 1,
                  "FasterRCNN::forward_train: batch share world must be "
                  ">= 1, got ",
                  share.world);
    snip::require(images.dim() == 4 && images.size(1) == 3,
                  "FasterRCNN::forward_train: images must be [B, 3, S, S], got rank ",
                  images.dim());
    const std::int64_t B = images.size(0);
    snip::require(static_cast<std::int64_t>(targets.size()) == B,
                  "FasterRCNN::forward_train: ", targets.size(), " targets for ", B, " images");
    std::vector<detail::checked_target> gts;
    for (std::size_t b = 0; b < targets.size(); ++b)
        gts.push_back(detail::check_target(targets[b], options_.num_classes, b));

    const resnet_features f = backbone->forward(images);
    const torch::Tensor rpn_in = rpn_input(f);
    const rpn_output r = rpn_forward(rpn_in);
    const torch::Tensor logits = r.flat_objectness(), deltas = r.flat_deltas();
    const torch::Tensor anc = anchors(f.res4.size(2), f.res4.size(3));

    // RPN losses over the whole batch.
    std::vector<torch::Tensor> labels, dtargets;
    std::vector<torch::Tensor> rois, roi_labels, roi_deltas;
    // The mask branch's RoIs: each chip's first mask_rois_per_chip foreground RoIs (in RoI
    // order) whose gt has a mask, with their classes and M x M targets.
    const std::int64_t M = 2 * options_.mask_pool;
    const std::int64_t mask_cap = options_.masks ? options_.mask_rois_per_chip : 0;
    detail::mask_batch mb;
    for (std::int64_t b = 0; b < B; ++b) {
        const auto bs = static_cast<std::size_t>(b);
        const std::size_t c = share.first_chip + bs; // the chip's index in the global batch
        const rpn_target rt =
            rpn_targets(anc, targets[bs], gts[bs], snip::splitmix64::nth(seed, 2 * c));
        labels.push_back(rt.labels);
        dtargets.push_back(rt.deltas);
        if (rpn_only) continue;

        const auto p = proposals(logits[b], deltas[b], anc, targets[bs].width, targets[bs].height,
                                 options_.train_proposals);
        const std::vector<snip::box<float>> pb = detail::to_boxes(p.first);
        snip::rcnn_options ro = options_.rcnn;
        if (options_.filter_proposals_by_range) {
            ro.range = targets[bs].range; // already in chip px
            ro.range_factor = 1.0;
        }
        const snip::rcnn_targets<float> ct = snip::rcnn_proposal_targets(
            pb, gts[bs].boxes, std::span<const snip::gt_state>(gts[bs].states),
            std::span<const std::int32_t>(gts[bs].classes), ro,
            snip::splitmix64::nth(seed, 2 * c + 1));
        const auto n = static_cast<std::int64_t>(ct.rois.size());
        detail::add_mask_targets(mb, ct, targets[bs].segments, b, M, std::size_t(mask_cap));
        if (n == 0) continue;
        rois.push_back(torch::cat(
            {torch::full({n, 1}, double(b), torch::kFloat), detail::from_boxes(ct.rois)}, 1));
        roi_labels.push_back(torch::tensor(
            std::vector<std::int64_t>(ct.labels.begin(), ct.labels.end()), torch::kLong));
        roi_deltas.push_back(
            torch::from_blob(const_cast<float*>(ct.deltas.data()), {n, 4}, torch::kFloat).clone());
    }
    const torch::Tensor L = torch::stack(labels).to(logits.device()),
                        D = torch::stack(dtargets).to(deltas.device());
    const torch::Tensor sampled = L >= 0, positive = L == 1;
    std::int64_t n_rois = 0;
    for (const auto& r : rois)
        n_rois += r.size(0);
    // The counts of the whole (global) batch: the losses are the original's per-GPU losses
    // summed over GPUs (loss_options), and each process's share is scaled by the number of
    // processes, whose gradients are averaged.
    const auto n_masks = static_cast<std::int64_t>(mb.size());
    std::array<double, 3> counts{sampled.sum().item<double>(), double(n_rois),
                                 double(n_masks * M * M)};
    if (share.sum_counts) share.sum_counts(counts);
    const std::array<double, 4> k =
        options_.loss.factors(double(B) * double(share.world), counts[0], counts[1], share.world);
    namespace F = torch::nn::functional;
    detector_losses out;
    out.rpn_cls = F::binary_cross_entropy_with_logits(
                      logits.masked_select(sampled), L.masked_select(sampled).to(torch::kFloat),
                      F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kSum)) *
                  k[0];
    out.rpn_box = F::smooth_l1_loss(deltas.index({positive}), D.index({positive}),
                                    F::SmoothL1LossFuncOptions().reduction(torch::kSum),
                                    options_.loss.rpn_box_beta) *
                  k[1];

    out.rcnn_mask = torch::zeros({}, logits.options());
    if (rpn_only) {
        out.rcnn_cls = torch::zeros({}, logits.options());
        out.rcnn_box = torch::zeros({}, logits.options());
        return out;
    }
    const torch::Tensor feats = head_features(f, options_.rpn_on_concat ? rpn_in : torch::Tensor());
    if (rois.empty()) { // no proposal and no valid gt anywhere: nothing to classify
        out.rcnn_cls = feats.sum() * 0.0;
        out.rcnn_box = feats.sum() * 0.0;
        if (options_.masks) out.rcnn_mask = feats.sum() * 0.0;
        return out;
    }
    const torch::Tensor R = torch::cat(rois).to(feats.device()),
                        RL = torch::cat(roi_labels).to(feats.device()),
                        RD = torch::cat(roi_deltas).to(feats.device());
    const auto [cls, box] = head_forward(feats, R);
    out.rcnn_cls =
        F::cross_entropy(cls, RL, F::CrossEntropyFuncOptions().reduction(torch::kSum)) * k[2];
    const torch::Tensor fg = RL > 0;
    out.rcnn_box = F::smooth_l1_loss(box.index({fg}), RD.index({fg}),
                                     F::SmoothL1LossFuncOptions().reduction(torch::kSum),
                                     options_.loss.rcnn_box_beta) *
                   k[3];
    if (options_.masks) {
        if (n_masks == 0) {
            out.rcnn_mask = feats.sum() * 0.0; // every mask parameter still gets a (zero) grad
        } else {
            const torch::Tensor MR =
                torch::from_blob(mb.rois.data(), {n_masks, 5}, torch::kFloat).clone();
            const torch::Tensor T =
                torch::from_blob(mb.targets.data(), {n_masks, M, M}, torch::kUInt8)
                    .to(feats.device(), torch::kFloat);
            const torch::Tensor pick =
                torch::tensor(mb.classes, torch::kLong).sub_(1).to(feats.device());
            const torch::Tensor lg = mask_forward(feats, MR.to(feats.device()));
            const torch::Tensor mine =
                lg.index({torch::arange(n_masks, pick.options()), pick}).to(torch::kFloat);
            out.rcnn_mask =
                F::binary_cross_entropy_with_logits(
                    mine, T, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kSum)) *
                options_.loss.mask_factor(double(B) * double(share.world), counts[2], share.world);
        }
    }
    return out;
}

std::vector<detections> FasterRCNNImpl::forward_test(const torch::Tensor& images,
                                                     double score_threshold,
                                                     std::int64_t max_detections,
                                                     const std::vector<std::array<int, 2>>& sizes,
                                                     std::optional<double> nms_iou,
                                                     bool with_masks, torch::Tensor* head_map) {
    snip::require(!with_masks || options_.masks,
                  "FasterRCNN::forward_test: masks asked of a network without a mask branch");
    const double test_nms = nms_iou ? *nms_iou : options_.test_nms_iou;
    snip::require(std::isfinite(test_nms) && test_nms <= 1.0,
                  "FasterRCNN::forward_test: NMS IoU must be <= 1 (<= 0: none), got ", test_nms);
    snip::require(images.dim() == 4 && images.size(1) == 3,
                  "FasterRCNN::forward_test: images must be [B, 3, S, S], got rank ", images.dim());
    snip::require(max_detections >= 0,
                  "FasterRCNN::forward_test: max_detections must be >= 0, got ", max_detections);
    snip::require(std::isfinite(score_threshold),
                  "FasterRCNN::forward_test: score_threshold must be a number, got ",
                  score_threshold);
    for (std::size_t b = 0; b < sizes.size(); ++b)
        snip::require(sizes[b][0] >= 1 && sizes[b][1] >= 1 && sizes[b][0] <= images.size(3) &&
                          sizes[b][1] <= images.size(2),
                      "FasterRCNN::forward_test: content size ", sizes[b][0], " x ", sizes[b][1],
                      " of image ", b, " is not within its ", images.size(3), " x ", images.size(2),
                      " tensor");
    const std::int64_t B = images.size(0);
    snip::require(sizes.empty() || static_cast<std::int64_t>(sizes.size()) == B,
                  "FasterRCNN::forward_test: ", sizes.size(), " sizes for ", B, " images");
    torch::NoGradGuard ng;
    const resnet_features f = backbone->forward(images);
    const torch::Tensor rpn_in = rpn_input(f);
    const rpn_output r = rpn_forward(rpn_in);
    const torch::Tensor logits = r.flat_objectness(), deltas = r.flat_deltas();
    const torch::Tensor anc = anchors(f.res4.size(2), f.res4.size(3));
    const torch::Tensor feats = head_features(f, options_.rpn_on_concat ? rpn_in : torch::Tensor());
    const double e = extra();
    const snip::rcnn_options& ro = options_.rcnn;
    std::vector<detections> out;
    for (std::int64_t b = 0; b < B; ++b) {
        const int w = sizes.empty() ? static_cast<int>(images.size(3)) : sizes[std::size_t(b)][0];
        const int h = sizes.empty() ? static_cast<int>(images.size(2)) : sizes[std::size_t(b)][1];
        const auto p = proposals(logits[b], deltas[b], anc, w, h, options_.test_proposals);
        detections d;
        const std::int64_t P = p.first.size(0);
        if (P == 0) {
            d.boxes = torch::zeros({0, 4});
            d.scores = torch::zeros({0});
            d.labels = torch::zeros({0}, torch::kLong);
            if (with_masks) d.masks = torch::zeros({0, 2 * options_.mask_pool, 2 * options_.mask_pool});
            out.push_back(d);
            continue;
        }
        const torch::Tensor R =
            torch::cat({torch::full({P, 1}, double(b), torch::kFloat), p.first}, 1);
        const auto [cls_dev, del_dev] = head_forward(feats, R.to(feats.device()));
        const torch::Tensor prob = cls_dev.softmax(1).to(torch::kCPU);
        const torch::Tensor del = del_dev.to(torch::kCPU);
        torch::Tensor boxes = snip::torch_ops::decode_boxes(
            p.first, del.contiguous(), {ro.means[0], ro.means[1], ro.means[2], ro.means[3]},
            {ro.stds[0], ro.stds[1], ro.stds[2], ro.stds[3]}, options_.convention);
        boxes.select(1, 0).clamp_(0.0, w - e);
        boxes.select(1, 2).clamp_(0.0, w - e);
        boxes.select(1, 1).clamp_(0.0, h - e);
        boxes.select(1, 3).clamp_(0.0, h - e);
        // Every (box, class >= 1) pair above the threshold, then NMS per class.
        const torch::Tensor fgp = prob.slice(1, 1);
        const torch::Tensor idx = (fgp > score_threshold).nonzero(); // [M, 2]: box, class-1
        const torch::Tensor bi = idx.select(1, 0), ci = idx.select(1, 1);
        const torch::Tensor cb = boxes.index_select(0, bi).contiguous();
        const torch::Tensor cs = fgp.index({bi, ci}).contiguous();
        const torch::Tensor cl = (ci + 1).contiguous();
        torch::Tensor keep;
        if (test_nms > 0.0) {
            keep = snip::torch_ops::batched_nms(cb, cs, cl, test_nms);
        } else { // no NMS: every pair by decreasing score
            keep = std::get<1>(cs.sort(/*stable=*/true, 0, /*descending=*/true));
        }
        if (keep.size(0) > max_detections) keep = keep.slice(0, 0, max_detections);
        d.boxes = cb.index_select(0, keep);
        d.scores = cs.index_select(0, keep);
        d.labels = cl.index_select(0, keep);
        if (with_masks)
            d.masks = mask_probabilities(
                feats,
                torch::cat({torch::full({d.boxes.size(0), 1}, double(b), torch::kFloat), d.boxes}, 1),
                d.labels);
        out.push_back(d);
    }
    if (head_map) *head_map = feats;
    return out;
}

std::vector<torch::Tensor> FasterRCNNImpl::trainable_parameters() const {
    std::vector<torch::Tensor> out;
    for (const auto& p : parameters())
        if (p.requires_grad()) out.push_back(p);
    return out;
}

std::vector<std::pair<std::vector<torch::Tensor>, double>>
FasterRCNNImpl::parameter_groups() const {
    std::vector<torch::Tensor> offsets;
    for (const auto* fc : {&offset_fc, &mask_offset_fc})
        if (*fc)
            for (const auto& p : (*fc)->parameters())
                if (p.requires_grad()) offsets.push_back(p);
    std::vector<torch::Tensor> rest;
    for (const auto& p : trainable_parameters()) {
        const bool in_offsets = std::any_of(offsets.begin(), offsets.end(), [&](const auto& q) {
            return q.unsafeGetTensorImpl() == p.unsafeGetTensorImpl();
        });
        if (!in_offsets) rest.push_back(p);
    }
    std::vector<std::pair<std::vector<torch::Tensor>, double>> out{{rest, 1.0}};
    if (!offsets.empty()) out.emplace_back(offsets, options_.offset_lr_mult);
    return out;
}

rpn_target FasterRCNNImpl::rpn_targets(const torch::Tensor& anchors, const chip_target& t,
                                       const detail::checked_target& g, std::uint64_t seed) const {
    snip::require(anchors.dim() == 2 && anchors.size(1) == 4,
                  "FasterRCNN::rpn_targets: anchors must be [N, 4]");
    const std::vector<snip::box<float>> all = detail::to_boxes(anchors);
    const std::vector<std::int64_t> inside = snip::anchors_inside(
        all, double(t.width), double(t.height), options_.anchor_border, options_.convention);
    std::vector<snip::box<float>> in;
    in.reserve(inside.size());
    for (std::int64_t i : inside)
        in.push_back(all[static_cast<std::size_t>(i)]);
    const snip::rpn_assignment a = snip::assign_rpn(
        in, g.boxes, std::span<const snip::gt_state>(g.states), options_.rpn, seed);
    const auto N = static_cast<std::int64_t>(all.size());
    rpn_target r;
    r.labels = torch::full({N}, -1, torch::kLong);
    r.deltas = torch::zeros({N, 4}, torch::kFloat);
    r.counts = a.counts;
    std::int64_t* L = r.labels.data_ptr<std::int64_t>();
    float* D = r.deltas.data_ptr<float>();
    snip::box_coder<float> coder;
    coder.convention = options_.convention;
    for (std::size_t k = 0; k < inside.size(); ++k) {
        const auto i = static_cast<std::size_t>(inside[k]);
        L[i] = a.labels[k];
        if (a.labels[k] == 1) {
            const snip::box_delta<float> d =
                coder.encode(all[i], g.boxes[static_cast<std::size_t>(a.matched[k])]);
            D[4 * i] = d.dx, D[4 * i + 1] = d.dy, D[4 * i + 2] = d.dw, D[4 * i + 3] = d.dh;
        }
    }
    return r;
}

} // namespace snip::train
