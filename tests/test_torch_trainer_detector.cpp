// The trainer's detector (trainer/include/snip/train/detector.hpp), on a ResNet-18 with 128 x 128
// chips, batch 2:
//  - shapes of the backbone, RPN, anchors, proposals, head features and head outputs;
//  - RPN targets equal snip::assign_rpn run directly on the chip's inside anchors;
//  - losses finite and positive at random init; gradients reach the RPN, the RCNN head and the
//    trainable backbone stages, not the frozen stem / layer1;
//  - overfitting: 40 SGD steps on 2 fixed synthetic chips (coloured rectangles on grey) bring
//    the total loss below 50% of its start (numbers printed);
//  - forward_test: at most max detections, boxes inside the chip, labels in 1..K;
//  - a target with an out-of-range class id is a snip::error naming it;
//  - the two networks (sniper, the default, and plain): layer shapes, the offset FC's
//    learning-rate group, identities (the plain one as written before the sniper network
//    existed), a plain checkpoint refused by a sniper model with the hint.
// LibTorch first: its headers bring glog, whose CHECK would otherwise replace doctest's.
#include <snip/train/checkpoint.hpp>
#include <snip/train/detector.hpp>

#include <torch/optim/sgd.h>

#include "test_util.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace {

using snip_test::contains;
using snip_test::error_of;

constexpr std::int64_t kChip = 128;
constexpr std::int64_t kClasses = 3;

snip::train::detector_options small_options() {
    snip::train::detector_options o;
    o.backbone.depth = 18;
    o.num_classes = kClasses;
    o.loss.group_chips = 2; // the test batch is one "GPU" of the original: its losses are means
    return o;
}

struct rect {
    float x1, y1, x2, y2;
    int cls; // 1 red, 2 green, 3 blue
};

// One synthetic chip: grey background, rectangles filled with their class colour; boxes
// inclusive (last pixel index).
void draw(torch::Tensor img, const std::vector<rect>& rs) {
    img.fill_(0.0);
    for (const rect& r : rs) {
        for (int c = 0; c < 3; ++c)
            img[c]
                .slice(0, std::int64_t(r.y1), std::int64_t(r.y2) + 1)
                .slice(1, std::int64_t(r.x1), std::int64_t(r.x2) + 1)
                .fill_(c == r.cls - 1 ? 1.5 : -1.0);
    }
}

snip::train::chip_target make_target(const std::vector<rect>& rs,
                                 const std::vector<std::uint8_t>& states = {}) {
    snip::train::chip_target t;
    const auto n = std::int64_t(rs.size());
    t.boxes = torch::empty({n, 4}, torch::kFloat);
    t.classes = torch::empty({n}, torch::kLong);
    t.states = torch::zeros({n}, torch::kByte);
    t.gt_index = torch::arange(n, torch::kLong);
    for (std::int64_t i = 0; i < n; ++i) {
        const rect& r = rs[std::size_t(i)];
        t.boxes[i][0] = r.x1, t.boxes[i][1] = r.y1, t.boxes[i][2] = r.x2, t.boxes[i][3] = r.y2;
        t.classes[i] = r.cls;
        if (!states.empty()) t.states[i] = states[std::size_t(i)];
    }
    t.width = int(kChip);
    t.height = int(kChip);
    return t;
}

struct synthetic {
    torch::Tensor images;
    std::vector<snip::train::chip_target> targets;
};

synthetic make_batch() {
    const std::vector<rect> a{{10, 12, 69, 61, 1}, {70, 60, 119, 121, 2}};
    const std::vector<rect> b{{20, 20, 99, 59, 3}, {8, 70, 55, 117, 1}, {64, 72, 123, 119, 2}};
    synthetic s;
    s.images = torch::empty({2, 3, kChip, kChip});
    draw(s.images[0], a);
    draw(s.images[1], b);
    s.targets = {make_target(a), make_target(b)};
    return s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

TEST_CASE("detector: shapes of the intermediate outputs") {
    torch::manual_seed(1);
    snip::train::FasterRCNN net(small_options());
    const synthetic s = make_batch();
    torch::NoGradGuard ng;
    const snip::train::resnet_features f = net->backbone->forward(s.images);
    CHECK(f.res4.sizes() == torch::IntArrayRef({2, 256, 8, 8}));
    CHECK(f.res5.sizes() == torch::IntArrayRef({2, 512, 8, 8}));
    CHECK(net->num_anchors() == 21);
    const snip::train::rpn_output r = net->rpn_forward(net->rpn_input(f));
    CHECK(r.objectness.sizes() == torch::IntArrayRef({2, 21, 8, 8}));
    CHECK(r.deltas.sizes() == torch::IntArrayRef({2, 84, 8, 8}));
    CHECK(r.flat_objectness().sizes() == torch::IntArrayRef({2, 8 * 8 * 21}));
    CHECK(r.flat_deltas().sizes() == torch::IntArrayRef({2, 8 * 8 * 21, 4}));
    // Flattening order: anchor (y, x, a) is row (y*W + x)*A + a.
    CHECK(r.flat_objectness()[1][(3 * 8 + 5) * 21 + 7].item<float>() ==
          r.objectness[1][7][3][5].item<float>());
    CHECK(r.flat_deltas()[0][(2 * 8 + 6) * 21 + 4][3].item<float>() ==
          r.deltas[0][4 * 4 + 3][2][6].item<float>());

    const torch::Tensor anc = net->anchors(8, 8);
    REQUIRE(anc.sizes() == torch::IntArrayRef({8 * 8 * 21, 4}));
    // Template a = 0 (ratio 0.5, scale 2) of cell (0, 0): SNIPER's [-18, -2, 33, 17]; cell
    // (1, 2) shifts it by (32, 16).
    const auto t0 = net->options().anchors.templates()[0];
    CHECK(anc[0][0].item<float>() == doctest::Approx(t0.x1));
    CHECK(anc[(1 * 8 + 2) * 21][0].item<float>() == doctest::Approx(t0.x1 + 32));
    CHECK(anc[(1 * 8 + 2) * 21][1].item<float>() == doctest::Approx(t0.y1 + 16));

    const auto p = net->proposals(r.flat_objectness()[0], r.flat_deltas()[0], anc, 100, 90,
                                  net->options().train_proposals);
    CHECK(p.first.dim() == 2);
    CHECK(p.first.size(1) == 4);
    CHECK(p.first.size(0) > 0);
    CHECK(p.first.size(0) <= net->options().train_proposals.post_nms);
    CHECK(p.second.size(0) == p.first.size(0));
    CHECK(p.first.select(1, 0).min().item<float>() >= 0.f);
    CHECK(p.first.select(1, 2).max().item<float>() <= 99.f);  // inclusive: width - 1
    CHECK(p.first.select(1, 3).max().item<float>() <= 89.f);
    // by decreasing score
    CHECK((p.second.slice(0, 1) <= p.second.slice(0, 0, -1)).all().item<bool>());

    const torch::Tensor feats = net->head_features(f);
    CHECK(feats.sizes() == torch::IntArrayRef({2, 256, 8, 8}));
    const torch::Tensor rois = torch::tensor({0.f, 10.f, 10.f, 60.f, 50.f, 1.f, 0.f, 0.f, 127.f,
                                              127.f, 1.f, 30.f, 40.f, 35.f, 44.f})
                                   .view({3, 5});
    const auto [cls, box] = net->head_forward(feats, rois);
    CHECK(cls.sizes() == torch::IntArrayRef({3, kClasses + 1}));
    CHECK(box.sizes() == torch::IntArrayRef({3, 4}));
}

TEST_CASE("detector: RPN targets equal snip::assign_rpn on the chip's inside anchors") {
    snip::train::FasterRCNN net(small_options());
    // one valid, one invalid and one crowd gt
    const std::vector<rect> rs{{10, 12, 69, 61, 1}, {70, 60, 119, 121, 2}, {0, 90, 40, 127, 1}};
    snip::train::chip_target t = make_target(rs, {0, 1, 2});
    t.width = 120;  // content narrower than the tensor
    const torch::Tensor anc = net->anchors(8, 8);
    const std::uint64_t seed = 77;
    const snip::train::rpn_target rt = net->rpn_targets(anc, t, seed);
    REQUIRE(rt.labels.sizes() == torch::IntArrayRef({8 * 8 * 21}));
    REQUIRE(rt.deltas.sizes() == torch::IntArrayRef({8 * 8 * 21, 4}));

    // Directly: anchors inside 120 x 128 + 32 px (inclusive), SNIPER's rules, 256 sampled.
    std::vector<snip::box<float>> all;
    for (std::int64_t i = 0; i < anc.size(0); ++i)
        all.push_back({anc[i][0].item<float>(), anc[i][1].item<float>(), anc[i][2].item<float>(),
                       anc[i][3].item<float>()});
    const std::vector<std::int64_t> inside =
        snip::anchors_inside(all, 120.0, 128.0, 32.0, snip::pixel_convention::inclusive);
    REQUIRE(!inside.empty());
    REQUIRE(inside.size() < all.size());
    std::vector<snip::box<float>> in;
    for (auto i : inside) in.push_back(all[std::size_t(i)]);
    std::vector<snip::box<float>> gt;
    for (const rect& r : rs) gt.push_back({r.x1, r.y1, r.x2, r.y2});
    const std::vector<snip::gt_state> states{snip::gt_state::valid, snip::gt_state::invalid,
                                             snip::gt_state::crowd};
    const snip::rpn_assignment a = snip::assign_rpn(
        in, gt, std::span<const snip::gt_state>(states), snip::rpn_options::sniper(), seed);

    std::vector<std::int64_t> expected(all.size(), -1);
    for (std::size_t k = 0; k < inside.size(); ++k) expected[std::size_t(inside[k])] = a.labels[k];
    std::size_t mismatches = 0, positives = 0;
    const auto* L = rt.labels.data_ptr<std::int64_t>();
    for (std::size_t i = 0; i < all.size(); ++i) {
        mismatches += L[i] != expected[i] ? 1 : 0;
        positives += L[i] == 1 ? 1 : 0;
    }
    CHECK(mismatches == 0);
    CHECK(positives > 0);
    CHECK(rt.counts == a.counts);
    // A different seed samples differently (more than 256 negatives are available).
    CHECK(a.counts.positive + a.counts.negative == 256);
    const snip::train::rpn_target other = net->rpn_targets(anc, t, seed + 1);
    CHECK(!other.labels.equal(rt.labels));

    // Deltas: positive anchors regress onto gt 0 (the only valid one), the rest are 0.
    snip::box_coder<float> coder;
    coder.convention = snip::pixel_convention::inclusive;
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (L[i] == 1) {
            const auto d = coder.encode(all[i], gt[0]);
            CHECK(rt.deltas[std::int64_t(i)][0].item<float>() == doctest::Approx(d.dx));
            CHECK(rt.deltas[std::int64_t(i)][3].item<float>() == doctest::Approx(d.dh));
        } else {
            CHECK(rt.deltas[std::int64_t(i)].abs().sum().item<float>() == 0.f);
        }
    }
}

TEST_CASE("detector: losses at random init, and where the gradients go") {
    torch::manual_seed(2);
    snip::train::FasterRCNN net(small_options());
    const synthetic s = make_batch();
    const snip::train::detector_losses l = net->forward_train(s.images, s.targets, 5);
    for (const auto* t : {&l.rpn_cls, &l.rpn_box, &l.rcnn_cls, &l.rcnn_box}) {
        REQUIRE(t->dim() == 0);
        CHECK(std::isfinite(t->item<double>()));
        CHECK(t->item<double>() > 0.0);
    }
    // Near chance at init: BCE ~ log 2, CE ~ log(K + 1).
    CHECK(l.rpn_cls.item<double>() == doctest::Approx(std::log(2.0)).epsilon(0.05));
    CHECK(l.rcnn_cls.item<double>() == doctest::Approx(std::log(double(kClasses + 1))).epsilon(0.05));
    std::printf("[detector] init losses: rpn_cls %.4f rpn_box %.4f rcnn_cls %.4f rcnn_box %.4f\n",
                l.rpn_cls.item<double>(), l.rpn_box.item<double>(), l.rcnn_cls.item<double>(),
                l.rcnn_box.item<double>());
    // Same seed, same losses.
    const snip::train::detector_losses l2 = net->forward_train(s.images, s.targets, 5);
    CHECK(l2.total().item<double>() == l.total().item<double>());

    l.total().backward();
    auto has_grad = [](const torch::Tensor& p) {
        return p.grad().defined() && p.grad().abs().sum().item<double>() > 0.0;
    };
    CHECK(has_grad(net->rpn_conv->weight));
    CHECK(has_grad(net->rpn_cls->weight));
    CHECK(has_grad(net->rpn_bbox->weight));
    CHECK(has_grad(net->head_conv->weight));
    CHECK(has_grad(net->fc6->weight));
    CHECK(has_grad(net->cls_score->weight));
    CHECK(has_grad(net->bbox_pred->weight));
    REQUIRE(net->offset_fc); // the sniper network's deformable head: its offsets learn too
    CHECK(has_grad(net->offset_fc->weight));
    CHECK(has_grad(net->offset_fc->bias));
    for (auto* layer : {&net->backbone->layer2, &net->backbone->layer3, &net->backbone->layer4})
        for (const auto& p : (*layer)->parameters()) CHECK(has_grad(p));
    // frozen: stem and layer1 (resnet_options::frozen_stages = 1)
    CHECK(!net->backbone->conv1->weight.requires_grad());
    CHECK(!net->backbone->conv1->weight.grad().defined());
    for (const auto& p : net->backbone->layer1->parameters()) CHECK(!p.grad().defined());
    // The optimizer's list holds exactly the parameters with requires_grad.
    for (const auto& p : net->trainable_parameters()) CHECK(p.requires_grad());
}

TEST_CASE("detector: overfits two synthetic chips in 40 SGD steps") {
    torch::manual_seed(3);
    snip::train::FasterRCNN net(small_options());
    const synthetic s = make_batch();
    torch::optim::SGD sgd(net->trainable_parameters(),
                          torch::optim::SGDOptions(0.01).momentum(0.9));
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<double> curve;
    snip::train::detector_losses first, last;
    for (int step = 0; step < 40; ++step) {
        sgd.zero_grad();
        const snip::train::detector_losses l = net->forward_train(s.images, s.targets, 11);
        const torch::Tensor total = l.total();
        REQUIRE(std::isfinite(total.item<double>()));
        curve.push_back(total.item<double>());
        if (step == 0) first = l;
        last = l;
        total.backward();
        sgd.step();
    }
    std::printf("[detector] overfit total loss (40 steps, %.1f s):", seconds_since(t0));
    for (std::size_t i = 0; i < curve.size(); i += 5) std::printf(" %.4f", curve[i]);
    std::printf(" ... %.4f\n", curve.back());
    std::printf("[detector]   start rpn_cls %.4f rpn_box %.4f rcnn_cls %.4f rcnn_box %.4f\n",
                first.rpn_cls.item<double>(), first.rpn_box.item<double>(),
                first.rcnn_cls.item<double>(), first.rcnn_box.item<double>());
    std::printf("[detector]   end   rpn_cls %.4f rpn_box %.4f rcnn_cls %.4f rcnn_box %.4f\n",
                last.rpn_cls.item<double>(), last.rpn_box.item<double>(),
                last.rcnn_cls.item<double>(), last.rcnn_box.item<double>());
    CHECK(curve.back() < 0.5 * curve.front());
}

TEST_CASE("detector: forward_test bounds") {
    torch::manual_seed(4);
    snip::train::FasterRCNN net(small_options());
    const synthetic s = make_batch();
    for (const std::int64_t max_det : {std::int64_t(5), std::int64_t(100)}) {
        const std::vector<snip::train::detections> d = net->forward_test(s.images, 0.0, max_det);
        REQUIRE(d.size() == 2);
        for (const auto& x : d) {
            REQUIRE(x.boxes.dim() == 2);
            CHECK(x.boxes.size(0) <= max_det);
            CHECK(x.boxes.size(0) > 0);  // threshold 0: every class of every RoI qualifies
            CHECK(x.scores.size(0) == x.boxes.size(0));
            CHECK(x.labels.size(0) == x.boxes.size(0));
            CHECK(x.boxes.min().item<float>() >= 0.f);
            CHECK(x.boxes.max().item<float>() <= float(kChip - 1));
            CHECK(x.labels.min().item<std::int64_t>() >= 1);
            CHECK(x.labels.max().item<std::int64_t>() <= kClasses);
            CHECK((x.scores.slice(0, 1) <= x.scores.slice(0, 0, -1)).all().item<bool>());
        }
        if (max_det == 5) CHECK(d[0].boxes.size(0) == 5);
    }
    // A content size clips the boxes to it; a threshold of 1 keeps nothing.
    const auto d = net->forward_test(s.images, 0.0, 50, {{{60, 50}}, {{128, 128}}});
    CHECK(d[0].boxes.select(1, 2).max().item<float>() <= 59.f);
    CHECK(d[0].boxes.select(1, 3).max().item<float>() <= 49.f);
    CHECK(net->forward_test(s.images, 1.0, 50)[0].boxes.size(0) == 0);
}

TEST_CASE("detector: bad targets are clear errors") {
    snip::train::FasterRCNN net(small_options());
    synthetic s = make_batch();
    s.targets[1].classes[0] = kClasses + 1;
    try {
        (void)net->forward_train(s.images, s.targets, 0);
        FAIL("no error for class id 4 with 3 classes");
    } catch (const snip::error& e) {
        const std::string m = e.what();
        INFO(m);
        CHECK(m.find("chip 1") != std::string::npos);
        CHECK(m.find("class id 4") != std::string::npos);
        CHECK(m.find("1..3") != std::string::npos);
    }
    s.targets[1].classes[0] = 0;  // 0 is background, not a gt class
    CHECK_THROWS_AS((void)net->forward_train(s.images, s.targets, 0), snip::error);
    s.targets[1].classes[0] = 1;
    s.targets[1].states[0] = 7;
    CHECK_THROWS_AS((void)net->forward_train(s.images, s.targets, 0), snip::error);
    s.targets[1].states[0] = 0;
    s.targets.pop_back();
    CHECK_THROWS_AS((void)net->forward_train(s.images, s.targets, 0), snip::error);
    snip::train::detector_options o = small_options();
    o.backbone.dilate_res5 = false;
    CHECK_THROWS_AS((void)snip::train::FasterRCNN(o), snip::error);
}

TEST_CASE("detector: the original's loss normalisers (resnet_mx_101_e2e.py), by hand") {
    // Defaults: groups of 16 chips (BATCH_IMAGES), RPN box 3 / (16 x 256), RCNN box
    // 1 / (188 x 16), classification means over the batch's sampled anchors / RoIs, times G.
    const snip::train::loss_options d;
    const auto f = d.factors(/*chips=*/32, /*sampled=*/8000, /*rois=*/9000, /*world=*/1);
    CHECK(f[0] == doctest::Approx(2.0 / 8000));
    CHECK(f[1] == doctest::Approx(3.0 / 4096));
    CHECK(f[2] == doctest::Approx(2.0 / 9000));
    CHECK(f[3] == doctest::Approx(1.0 / 3008));
    const auto f2 = d.factors(32, 8000, 9000, /*world=*/2); // a process's share, averaged over 2
    for (int k = 0; k < 4; ++k) CHECK(f2[std::size_t(k)] == doctest::Approx(2.0 * f[std::size_t(k)]));
    CHECK(d.factors(16, 0, 0, 1)[0] == doctest::Approx(1.0)); // no sample: no division by 0
    snip::train::loss_options bad;
    bad.group_chips = 0;
    try {
        bad.validate();
        FAIL("no error for group_chips 0");
    } catch (const snip::error& e) {
        CHECK(std::string(e.what()).find("group_chips must be finite and > 0, got 0") !=
              std::string::npos);
    }

    // A network whose RPN and head outputs are all zero: every sampled anchor's BCE is log 2,
    // every RoI's CE is log(K + 1), and the RPN box loss is 3 x sum of smooth L1 (beta 1) of the
    // positive anchors' targets / (2 x 256) for a group of 2 chips.
    torch::manual_seed(4);
    snip::train::detector_options o = small_options();
    o.backbone.width = 8;
    o.rpn_channels = 16, o.head_channels = 8, o.fc_channels = 32;
    snip::train::FasterRCNN net(o);
    {
        torch::NoGradGuard ng;
        for (auto* c : {&net->rpn_cls, &net->rpn_bbox}) (*c)->weight.zero_(), (*c)->bias.zero_();
        for (auto* l : {&net->cls_score, &net->bbox_pred}) (*l)->weight.zero_(), (*l)->bias.zero_();
    }
    const synthetic s = make_batch();
    const std::uint64_t seed = 9;
    const snip::train::detector_losses l = net->forward_train(s.images, s.targets, seed);
    CHECK(l.rpn_cls.item<double>() == doctest::Approx(std::log(2.0)).epsilon(1e-6));
    CHECK(l.rcnn_cls.item<double>() == doctest::Approx(std::log(double(kClasses + 1))).epsilon(1e-6));
    const torch::Tensor anchors = net->anchors(kChip / 16, kChip / 16);
    double sl1 = 0;
    for (std::size_t b = 0; b < 2; ++b) {
        const snip::train::rpn_target t =
            net->rpn_targets(anchors, s.targets[b], snip::splitmix64::nth(seed, 2 * b));
        const torch::Tensor pos = t.labels == 1;
        const torch::Tensor dl = t.deltas.index({pos}).to(torch::kFloat64).abs();
        sl1 += torch::where(dl < 1.0, 0.5 * dl * dl, dl - 0.5).sum().item<double>();
    }
    REQUIRE(sl1 > 0);
    CHECK(l.rpn_box.item<double>() == doctest::Approx(3.0 * sl1 / (2.0 * 256.0)).epsilon(1e-5));
}

TEST_CASE("detector: --lr is the original's: the step equals lr x the sum of per-group gradients") {
    // The original sums its GPUs' gradients of per-GPU-normalised losses (rescale_grad 1,
    // kvstore device). Two groups of 2 chips (group_chips = 2) with the same content: the loss
    // of the 4-chip batch must have the gradient sum_g grad L_g, where L_g is group g's loss
    // alone (a 2-chip batch, the same chip seeds through batch_share::first_chip). So one SGD
    // step at lr on the batch equals the original's step at lr.
    torch::manual_seed(6);
    snip::train::detector_options o = small_options();
    o.backbone.width = 8;
    o.rpn_channels = 16, o.head_channels = 8, o.fc_channels = 32;
    snip::train::FasterRCNN net(o);
    const synthetic s = make_batch();
    const torch::Tensor images = torch::cat({s.images, s.images});
    const std::vector<snip::train::chip_target> targets{s.targets[0], s.targets[1], s.targets[0],
                                                   s.targets[1]};
    const std::uint64_t seed = 21;
    const auto params = net->trainable_parameters();
    auto grads = [&] {
        std::vector<torch::Tensor> g;
        for (const auto& p : params)
            g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
        return g;
    };
    net->zero_grad();
    for (std::size_t g = 0; g < 2; ++g) { // the original: one GPU per group, gradients summed
        snip::train::batch_share share;
        share.first_chip = 2 * g;
        const std::vector<snip::train::chip_target> tg{targets[2 * g], targets[2 * g + 1]};
        net->forward_train(images.slice(0, 2 * std::int64_t(g), 2 * std::int64_t(g) + 2), tg, seed,
                           false, share)
            .total()
            .backward();
    }
    const std::vector<torch::Tensor> want = grads();
    net->zero_grad();
    net->forward_train(images, targets, seed).total().backward();
    const std::vector<torch::Tensor> got = grads();
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        worst = std::max(worst, (got[i] - want[i]).abs().max().item<double>());
        scale = std::max(scale, want[i].abs().max().item<double>());
    }
    MESSAGE("largest gradient difference ", worst, " of ", scale);
    REQUIRE(scale > 0);
    CHECK(worst <= 1e-4 * scale);
    // And so one SGD step at lr (momentum and decay 0 at the first step's gradient) is
    // theta - lr x sum_g grad L_g.
    const double lr = 0.015;
    torch::optim::SGD sgd(params, torch::optim::SGDOptions(lr));
    std::vector<torch::Tensor> before;
    for (const auto& p : params) before.push_back(p.detach().clone());
    sgd.step();
    for (std::size_t i = 0; i < params.size(); ++i)
        CHECK((params[i].detach() - (before[i] - lr * want[i])).abs().max().item<double>() <=
              1e-4 * lr * scale + 1e-7);
}

TEST_CASE("detector: the sniper network (default) and the plain one") {
    using snip::train::detector_options;
    CHECK(detector_options{}.model_name() == "sniper");
    CHECK(detector_options::sniper().model_name() == "sniper");
    CHECK(detector_options::plain().model_name() == "plain");
    detector_options mixed = detector_options::sniper();
    mixed.head_pooling = snip::train::roi_pooling::roialign;
    CHECK(mixed.model_name() == "custom");

    torch::manual_seed(4);
    detector_options so = small_options();
    snip::train::FasterRCNN sniper(so);
    detector_options po = detector_options::plain();
    po.backbone.depth = 18;
    po.num_classes = kClasses;
    po.loss.group_chips = 2; // as small_options
    snip::train::FasterRCNN plain(po);
    // RPN on concat(res4, res5) = 256 + 512 channels, or on res4.
    CHECK(sniper->rpn_conv->weight.size(1) == 768);
    CHECK(plain->rpn_conv->weight.size(1) == 256);
    // The offset FC: 256 x 7 x 7 -> 2 x 7 x 7, zero at the start; none in the plain head.
    REQUIRE(sniper->offset_fc);
    CHECK(sniper->offset_fc->weight.sizes() == torch::IntArrayRef({98, 256 * 49}));
    CHECK(sniper->offset_fc->weight.abs().max().item<double>() == 0.0);
    CHECK_FALSE(plain->offset_fc);
    std::size_t sniper_offsets = 0, plain_offsets = 0;
    for (const auto& p : sniper->named_parameters()) sniper_offsets += contains(p.key(), ".offset.");
    for (const auto& p : plain->named_parameters()) plain_offsets += contains(p.key(), ".offset.");
    CHECK(sniper_offsets == 8); // weight and bias of the 4 deformable 3x3 convs of res5
    CHECK(plain_offsets == 0);

    // Learning-rate groups: everything at 1, offset_fc at 0.01, each parameter once.
    const auto groups = sniper->parameter_groups();
    REQUIRE(groups.size() == 2);
    CHECK(groups[0].second == 1.0);
    CHECK(groups[1].second == 0.01);
    REQUIRE(groups[1].first.size() == 2);
    CHECK(groups[1].first[0].is_same(sniper->offset_fc->weight));
    CHECK(groups[1].first[1].is_same(sniper->offset_fc->bias));
    CHECK(groups[0].first.size() + 2 == sniper->trainable_parameters().size());
    CHECK(plain->parameter_groups().size() == 1);
    // Both train: finite losses at chance level, gradients into the head of each.
    const synthetic s = make_batch();
    for (snip::train::FasterRCNN* net : {&sniper, &plain}) {
        CAPTURE((*net)->options().model_name());
        const snip::train::detector_losses l = (*net)->forward_train(s.images, s.targets, 7);
        CHECK(l.rcnn_cls.item<double>() ==
              doctest::Approx(std::log(double(kClasses + 1))).epsilon(0.05));
        l.total().backward();
        CHECK((*net)->fc6->weight.grad().abs().sum().item<double>() > 0.0);
        CHECK((*net)->rpn_conv->weight.grad().abs().sum().item<double>() > 0.0);
    }

    // Identities: the plain one is what earlier versions wrote (their checkpoints load into it),
    // the sniper one adds its parts; both read back.
    const std::string pid = snip::train::detector_identity(po);
    CHECK(pid == "resnet18 width 64 dilate_res5 1 dilate_first 0 frozen 1 train_bn 1 classes 3 "
                 "anchors 21 stride 16 rpn 512 head 256 fc 1024 pool 7");
    CHECK(snip::train::options_from_identity(pid, "old").model_name() == "plain");
    const std::string sid = snip::train::detector_identity(so);
    CHECK(sid == "resnet18 width 64 dilate_res5 1 dilate_first 1 frozen 1 train_bn 1 classes 3 "
                 "anchors 21 stride 16 rpn 512 head 256 fc 1024 pool 7 deform_res5 4 rpn_concat 1 "
                 "deform_pool 4 trans_std 0.1");
    const detector_options back = snip::train::options_from_identity(sid, "new");
    CHECK(back.model_name() == "sniper");
    CHECK(snip::train::detector_identity(back) == sid);

    // A plain checkpoint into a sniper model: refused, naming the network and the flag.
    const std::string ck = (std::filesystem::temp_directory_path() /
                            ("snip_test_detector_" + std::to_string(::getpid()) + ".pt"))
                               .string();
    snip::train::save_checkpoint(ck, plain, nullptr, {}, "setup", {}, {1, 2, 3});
    const std::string e = error_of([&] { snip::train::load_checkpoint(ck, sniper); });
    std::filesystem::remove(ck);
    CHECK(contains(e, ": checkpoint of another model"));
    CHECK(contains(e, "(its network is `plain`, this run's `sniper`; snip-train's --model plain builds it)"));
}
