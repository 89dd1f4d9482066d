// The trainer's mask branch (detector.hpp detector_options::masks; data.hpp
// chip_target::segments; inference.hpp masks), on tiny networks and hand-made data:
//  - the training RoIs of the mask loss: the first `cap` foreground RoIs, in order, whose gt
//    has a mask, with targets equal to snip::mask::roi_mask;
//  - chip targets carry each box's mask into the chip's frame (polygons scaled and shifted,
//    RLE masks cut out, both mirrored for flipped chips), checked against the inverse map and
//    a per-pixel reference; crowd boxes carry none;
//  - forward_train: the mask loss is about ln 2 at the start (logits near 0), reaches the
//    mask layers' gradients, is 0 without the branch, and falls when 30 steps of the branch
//    alone fit two chips; mask_rois_per_chip caps the RoIs;
//  - the mask layers' shapes, initialisation and the offset FC's learning-rate group;
//    the checkpoint identity round trip;
//  - inference: forward_test's per-detection probabilities, detect_image's pasted masks
//    (image-sized, inside their boxes, equal to pasting the probabilities by hand), masks
//    following their detections through merge_scales, and the COCO segm results JSON.
// LibTorch first: its headers bring glog, whose CHECK would otherwise replace doctest's.
#include <snip/train/checkpoint.hpp>
#include <snip/train/detector.hpp>
#include <snip/train/inference.hpp>

#include <torch/optim/adam.h>

#include "test_util.hpp"

#include <snip/mask/paste.hpp>
#include <snip/mask/polygon.hpp>
#include <snip/mask/rle.hpp>

#include <cmath>
#include <initializer_list>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using snip_test::contains;
using snip_test::error_of;

constexpr std::int64_t kChip = 128;

snip::train::detector_options mask_options(bool masks = true) {
    snip::train::detector_options o;
    o.backbone.depth = 18;
    o.backbone.width = 8;
    o.backbone.frozen_stages = -1;
    o.num_classes = 3;
    o.rpn_channels = 32;
    o.head_channels = 16;
    o.fc_channels = 64;
    o.mask_channels = 16;
    o.masks = masks;
    o.mask_init_std = 0.0; // He's: a 16-channel branch from scratch (see detector_options)
    o.loss.group_chips = 2; // one "GPU" of the original per test batch: the losses are means
    return o;
}

struct shape {
    float x1, y1, x2, y2; // inclusive box of the shape's pixels
    int cls;
    bool triangle; // the lower-left half of the box, else the whole box
};

snip::mask::polygon polygon_of(const shape& s) {
    // Continuous px: the pixels x1..x2 cover [x1, x2 + 1).
    const double x1 = s.x1, y1 = s.y1, x2 = s.x2 + 1.0, y2 = s.y2 + 1.0;
    if (s.triangle) return {x1, y1, x1, y2, x2, y2};
    return {x1, y1, x2, y1, x2, y2, x1, y2};
}

// One chip: shapes filled in their class's colour on grey, the triangle as its polygon
// rasterised (pycocotools' rule).
void draw(torch::Tensor img, const std::vector<shape>& ss) {
    img.fill_(0.0);
    for (const shape& s : ss) {
        const std::vector<std::uint8_t> m =
            snip::mask::decode(snip::mask::from_polygon(polygon_of(s), int(kChip), int(kChip)));
        for (std::int64_t y = 0; y < kChip; ++y)
            for (std::int64_t x = 0; x < kChip; ++x)
                if (m[std::size_t(y * kChip + x)])
                    for (int c = 0; c < 3; ++c)
                        img[c][y][x] = c == s.cls - 1 ? 1.5 : -1.0;
    }
}

snip::train::chip_target target_of(const std::vector<shape>& ss) {
    snip::train::chip_target t;
    const auto n = std::int64_t(ss.size());
    t.boxes = torch::empty({n, 4}, torch::kFloat);
    t.classes = torch::empty({n}, torch::kLong);
    t.states = torch::zeros({n}, torch::kByte);
    t.gt_index = torch::arange(n, torch::kLong);
    for (std::int64_t i = 0; i < n; ++i) {
        const shape& s = ss[std::size_t(i)];
        t.boxes[i][0] = s.x1, t.boxes[i][1] = s.y1, t.boxes[i][2] = s.x2, t.boxes[i][3] = s.y2;
        t.classes[i] = s.cls;
        snip::mask::segmentation g;
        g.polygons = {polygon_of(s)};
        t.segments.push_back(g);
    }
    t.width = int(kChip);
    t.height = int(kChip);
    return t;
}

struct batch {
    torch::Tensor images;
    std::vector<snip::train::chip_target> targets;
};

batch make_batch() {
    const std::vector<shape> a{{10, 12, 69, 61, 1, true}, {70, 60, 119, 121, 2, false}};
    const std::vector<shape> b{{20, 20, 99, 59, 3, true}, {8, 70, 55, 117, 1, false},
                               {64, 72, 123, 119, 2, true}};
    batch s;
    s.images = torch::empty({2, 3, kChip, kChip});
    draw(s.images[0], a);
    draw(s.images[1], b);
    s.targets = {target_of(a), target_of(b)};
    return s;
}

} // namespace

TEST_CASE("mask targets: the first cap foreground RoIs whose gt has a mask, in order") {
    snip::rcnn_targets<float> ct;
    ct.rois = {{0, 0, 20, 20}, {2, 3, 40, 30}, {5, 5, 25, 25}, {1, 1, 44, 33}, {50, 40, 90, 99}};
    ct.labels = {0, 2, 1, 2, 3};
    ct.matched = {0, 0, 1, 0, 2};
    std::vector<snip::mask::segmentation> segs(3);
    segs[0].polygons = {{0, 0, 40, 0, 40, 30, 0, 30}};
    // segs[1] empty: its RoI is skipped
    segs[2].polygons = {{50, 40, 90, 99, 50, 99}, {85, 40, 90, 40, 90, 45}};
    const std::int64_t M = 28;

    snip::train::detail::mask_batch all;
    snip::train::detail::add_mask_targets(all, ct, segs, 1, M, 100);
    REQUIRE(all.size() == 3);
    CHECK(all.source == std::vector<std::int64_t>{1, 3, 4});
    CHECK(all.classes == std::vector<std::int64_t>{2, 2, 3});
    REQUIRE(all.rois.size() == 15);
    REQUIRE(all.targets.size() == std::size_t(3 * M * M));
    for (std::size_t k = 0; k < all.size(); ++k) {
        const auto i = std::size_t(all.source[k]);
        const snip::box<float>& q = ct.rois[i];
        CHECK(all.rois[5 * k] == 1.f);
        CHECK(all.rois[5 * k + 1] == q.x1);
        CHECK(all.rois[5 * k + 4] == q.y2);
        std::vector<std::uint8_t> want(std::size_t(M * M));
        snip::mask::roi_mask(segs[std::size_t(ct.matched[i])].polygons,
                             snip::box<double>{q.x1, q.y1, q.x2, q.y2}, int(M), want.data());
        const std::vector<std::uint8_t> got(all.targets.begin() + std::ptrdiff_t(k * M * M),
                                            all.targets.begin() + std::ptrdiff_t((k + 1) * M * M));
        CHECK(got == want);
        std::size_t on = 0;
        for (auto v : got)
            on += v;
        CHECK(on > 0); // every chosen RoI overlaps its gt's mask
    }

    // The cap counts one chip's RoIs: a second chip adds its own.
    snip::train::detail::mask_batch capped;
    snip::train::detail::add_mask_targets(capped, ct, segs, 0, M, 2);
    CHECK(capped.source == std::vector<std::int64_t>{1, 3});
    snip::train::detail::add_mask_targets(capped, ct, segs, 1, M, 1);
    CHECK(capped.source == std::vector<std::int64_t>{1, 3, 1});
    CHECK(capped.rois[10] == 1.f);

    // No masks in the dataset: nothing.
    snip::train::detail::mask_batch none;
    snip::train::detail::add_mask_targets(none, ct, {}, 0, M, 100);
    CHECK(none.size() == 0);

    // An RLE mask is rasterised by sampling the bin centres.
    std::vector<snip::mask::segmentation> rle_segs(1);
    std::vector<std::uint8_t> px(60 * 50, 0);
    for (int y = 10; y < 30; ++y)
        for (int x = 5; x < 45; ++x)
            px[std::size_t(y * 50 + x)] = 1;
    rle_segs[0].mask = snip::mask::encode(px.data(), 60, 50);
    snip::rcnn_targets<float> one;
    one.rois = {{0, 0, 49, 59}};
    one.labels = {1};
    one.matched = {0};
    snip::train::detail::mask_batch r;
    snip::train::detail::add_mask_targets(r, one, rle_segs, 0, M, 10);
    REQUIRE(r.size() == 1);
    std::vector<std::uint8_t> want(std::size_t(M * M));
    snip::mask::roi_mask(rle_segs[0].mask, snip::box<double>{0, 0, 49, 59}, int(M), want.data());
    CHECK(r.targets == want);

    // A matched gt outside the segment list is an error, not a read past the end.
    snip::rcnn_targets<float> bad = one;
    bad.matched = {4};
    snip::train::detail::mask_batch b;
    CHECK(contains(error_of([&] { snip::train::detail::add_mask_targets(b, bad, rle_segs, 0, M, 10); }),
                   "matched to gt 4 but the chip has 1 segments"));
}

TEST_CASE("chip targets: masks in the chip's frame, mirrored with flipped chips") {
    snip::dataset ds;
    ds.source = "masks.json";
    ds.categories = {{1, "a"}, {2, "b"}};
    snip::image_record im;
    im.id = 5, im.file_name = "x.png", im.width = 100, im.height = 80;
    im.boxes = {{10, 10, 50, 40}, {60, 20, 90, 70}, {0, 0, 30, 30}};
    im.ann_ids = {1, 2, 3};
    im.categories = {1, 2, 1};
    im.crowd = {0, 0, 1};
    im.segments.resize(3);
    im.segments[0].polygons = {{10, 10, 50, 10, 30, 40}, {12.5, 20, 20, 20, 20, 30.25}};
    std::vector<std::uint8_t> px(std::size_t(im.width * im.height), 0);
    for (int y = 20; y < 70; ++y)
        for (int x = 60 + (y % 7); x < 90; ++x)
            px[std::size_t(y * im.width + x)] = 1;
    im.segments[1].mask = snip::mask::encode(px.data(), im.height, im.width);
    im.segments[2].polygons = {{0, 0, 30, 0, 30, 30}}; // crowd: never a mask target
    ds.images = {im};

    snip::plan_config cfg;
    cfg.name = "m";
    cfg.scales = {snip::scale_spec::by_factor(2.0)};
    cfg.ranges = {snip::valid_range{-1.0, -1.0}};
    cfg.chip_size = 256;
    cfg.convention = snip::pixel_convention::continuous;
    const snip::train::class_map classes(ds);

    snip::train::chip_job job;
    job.image = 0;
    job.chip.scale = 0;
    job.chip.factor = 2.0;
    job.chip.rect = {8, 12, 8 + 180, 12 + 140};
    job.chip.boxes = {0, 1, 2};
    for (bool flipped : {false, true}) {
        CAPTURE(flipped);
        job.flipped = flipped;
        const snip::train::chip_target t = snip::train::make_target(ds, cfg, job, classes);
        REQUIRE(t.segments.size() == std::size_t(t.boxes.size(0)));
        REQUIRE(t.segments.size() == 3);
        const double W = t.width;
        for (std::size_t k = 0; k < t.segments.size(); ++k) {
            const auto g = std::size_t(t.gt_index[std::int64_t(k)].item<std::int64_t>());
            const snip::mask::segmentation& s = t.segments[k];
            if (im.crowd[g]) {
                CHECK(s.empty());
                continue;
            }
            if (im.segments[g].is_polygons()) {
                REQUIRE(s.polygons.size() == im.segments[g].polygons.size());
                for (std::size_t p = 0; p < s.polygons.size(); ++p) {
                    const auto& got = s.polygons[p];
                    const auto& orig = im.segments[g].polygons[p];
                    REQUIRE(got.size() == orig.size());
                    for (std::size_t v = 0; v < got.size(); v += 2) {
                        const double x = flipped ? W - got[v] : got[v];
                        CHECK((x + job.chip.rect.x1) / job.chip.factor == doctest::Approx(orig[v]));
                        CHECK((got[v + 1] + job.chip.rect.y1) / job.chip.factor ==
                              doctest::Approx(orig[v + 1]));
                    }
                }
            } else {
                REQUIRE(s.is_rle());
                REQUIRE(s.mask.height == t.height);
                REQUIRE(s.mask.width == t.width);
                const std::vector<std::uint8_t> got = snip::mask::decode(s.mask);
                std::size_t wrong = 0, on = 0;
                for (int y = 0; y < t.height; ++y)
                    for (int x = 0; x < t.width; ++x) {
                        const int cx = flipped ? t.width - 1 - x : x;
                        const auto ox = int(std::floor((job.chip.rect.x1 + cx + 0.5) / job.chip.factor));
                        const auto oy = int(std::floor((job.chip.rect.y1 + y + 0.5) / job.chip.factor));
                        const std::uint8_t want =
                            ox >= 0 && ox < im.width && oy >= 0 && oy < im.height
                                ? px[std::size_t(oy * im.width + ox)]
                                : 0;
                        wrong += got[std::size_t(y * t.width + x)] != want;
                        on += want;
                    }
                CHECK(wrong == 0);
                CHECK(on > 1000);
            }
        }
    }

    // Segments not parallel to the boxes are refused, naming the image.
    snip::dataset bad = ds;
    bad.images[0].segments.pop_back();
    CHECK(contains(error_of([&] { snip::train::make_target(bad, cfg, job, classes); }),
                   "image id 5 has 2 segmentations for 3 boxes"));
}

TEST_CASE("mask branch: layers, initialisation, learning-rate groups, identity") {
    torch::manual_seed(3);
    snip::train::FasterRCNN net(mask_options());
    REQUIRE(net->mask_conv.size() == 4);
    CHECK(net->mask_conv[0]->weight.sizes() == torch::IntArrayRef({16, 16, 3, 3}));
    CHECK(net->mask_deconv->weight.sizes() == torch::IntArrayRef({16, 16, 2, 2}));
    CHECK(!net->mask_deconv->bias.defined());
    CHECK(net->mask_logits->weight.sizes() == torch::IntArrayRef({3, 16, 1, 1}));
    REQUIRE(net->mask_offset_fc);
    CHECK(net->mask_offset_fc->weight.sizes() == torch::IntArrayRef({2 * 14 * 14, 16 * 14 * 14}));
    CHECK(net->mask_offset_fc->weight.abs().max().item<float>() == 0.f);
    CHECK(net->mask_conv[2]->weight.std().item<double>() ==
          doctest::Approx(std::sqrt(2.0 / (16 * 9))).epsilon(0.1));
    CHECK(net->mask_conv[2]->bias.abs().max().item<float>() == 0.f);
    snip::train::detector_options orig = mask_options();
    orig.mask_init_std = 0.01; // the original's
    snip::train::FasterRCNN net0(orig);
    CHECK(net0->mask_conv[2]->weight.std().item<double>() == doctest::Approx(0.01).epsilon(0.1));
    CHECK(net0->mask_logits->weight.std().item<double>() == doctest::Approx(0.01).epsilon(0.3));

    const auto groups = net->parameter_groups();
    REQUIRE(groups.size() == 2);
    CHECK(groups[1].second == doctest::Approx(0.01));
    CHECK(groups[1].first.size() == 4); // offset_fc's and mask_offset_fc's weight and bias

    const snip::train::detector_options back = snip::train::options_from_identity(
        snip::train::detector_identity(net->options()), "test");
    CHECK(back.masks);
    CHECK(back.mask_channels == 16);
    CHECK(back.mask_pool == 14);
    CHECK(back.mask_convs == 4);
    // Without the branch the identity is the box network's, as before it existed.
    snip::train::detector_options plain = mask_options(false);
    CHECK(snip::train::detector_identity(plain).find("mask") == std::string::npos);
    CHECK(!snip::train::options_from_identity(snip::train::detector_identity(plain), "t").masks);

    // RoIAlign pooling has no offset FC.
    snip::train::detector_options ra = mask_options();
    ra.head_pooling = snip::train::roi_pooling::roialign;
    snip::train::FasterRCNN net2(ra);
    CHECK(!net2->mask_offset_fc);

    snip::train::detector_options badopt = mask_options();
    badopt.mask_pool = 0;
    CHECK(contains(error_of([&] { snip::train::FasterRCNN x(badopt); }),
                   "the mask branch needs mask_pool >= 1"));
    CHECK(contains(error_of([&] {
                       snip::train::FasterRCNN x(mask_options(false));
                       x->mask_forward(torch::zeros({1, 16, 8, 8}), torch::zeros({1, 5}));
                   }),
                   "has no mask branch"));
}

TEST_CASE("forward_train: the mask loss, its gradients, its cap; fitting two chips") {
    const batch s = make_batch();
    {
        torch::manual_seed(1);
        snip::train::FasterRCNN net(mask_options(false));
        const snip::train::detector_losses l = net->forward_train(s.images, s.targets, 5);
        CHECK(l.rcnn_mask.item<double>() == 0.0);
        CHECK(!l.rcnn_mask.requires_grad());
    }
    torch::manual_seed(1);
    snip::train::FasterRCNN net(mask_options());
    const snip::train::detector_losses l0 = net->forward_train(s.images, s.targets, 5);
    // Logits near 0 at the start: binary cross-entropy ln 2 per pixel, and G = 1.
    CHECK(l0.rcnn_mask.item<double>() == doctest::Approx(std::log(2.0)).epsilon(0.02));
    CHECK(l0.total().item<double>() ==
          doctest::Approx((l0.rpn_cls + l0.rpn_box + l0.rcnn_cls + l0.rcnn_box + l0.rcnn_mask)
                              .item<double>()));
    net->zero_grad();
    l0.rcnn_mask.backward();
    CHECK(net->mask_logits->weight.grad().abs().sum().item<double>() > 0);
    CHECK(net->mask_conv[0]->weight.grad().abs().sum().item<double>() > 0);
    CHECK(net->head_conv->weight.grad().abs().sum().item<double>() > 0);

    // A chip without masks: no mask RoIs, a zero loss that still reaches the mask layers.
    batch bare = s;
    for (auto& t : bare.targets)
        t.segments.clear();
    const snip::train::detector_losses lb = net->forward_train(bare.images, bare.targets, 5);
    CHECK(lb.rcnn_mask.item<double>() == 0.0);
    CHECK(lb.rcnn_mask.requires_grad());

    // Segments not parallel to the boxes are refused.
    batch odd = s;
    odd.targets[1].segments.pop_back();
    CHECK(contains(error_of([&] { net->forward_train(odd.images, odd.targets, 5); }),
                   "target of chip 1: 2 segments for 3 boxes"));

    // 30 steps of the mask branch alone on the two chips' mask loss (the rest fixed, so
    // the RoIs stay the same): it falls.
    std::vector<torch::Tensor> branch;
    for (auto* m : std::initializer_list<torch::nn::Module*>{
             net->mask_offset_fc.get(), net->mask_deconv.get(), net->mask_logits.get()})
        for (const auto& p : m->parameters())
            branch.push_back(p);
    for (auto& c : net->mask_conv)
        for (const auto& p : c->parameters())
            branch.push_back(p);
    // Adam: the random head features are small, so plain SGD would need a huge step.
    torch::optim::Adam opt(branch, torch::optim::AdamOptions(0.01));
    const torch::Tensor head_before = net->head_conv->weight.detach().clone();
    double first = 0, last = 0;
    for (int step = 0; step < 30; ++step) {
        opt.zero_grad();
        const snip::train::detector_losses l =
            net->forward_train(s.images, s.targets, std::uint64_t(step));
        l.rcnn_mask.backward();
        torch::nn::utils::clip_grad_norm_(branch, 10.0);
        opt.step();
        if (step < 3) first += l.rcnn_mask.item<double>() / 3;
        if (step >= 27) last += l.rcnn_mask.item<double>() / 3;
    }
    std::printf("[masks] mask loss over 30 steps: first 3 %.4f, last 3 %.4f\n", first, last);
    CHECK(last < 0.7 * first);
    CHECK(torch::equal(head_before, net->head_conv->weight)); // the rest did not move
}

TEST_CASE("inference: per-detection probabilities, pasted masks, merged masks, segm results") {
    torch::manual_seed(11);
    snip::train::FasterRCNN net(mask_options());
    net->eval();
    const batch s = make_batch();
    const std::vector<snip::train::detections> d =
        net->forward_test(s.images, 0.0, 20, {}, std::nullopt, /*with_masks=*/true);
    REQUIRE(d.size() == 2);
    for (const auto& x : d) {
        REQUIRE(x.masks.defined());
        CHECK(x.masks.sizes() == torch::IntArrayRef({x.boxes.size(0), 28, 28}));
        if (x.masks.numel()) {
            CHECK(x.masks.min().item<float>() >= 0.f);
            CHECK(x.masks.max().item<float>() <= 1.f);
        }
    }
    CHECK(contains(error_of([&] {
                       snip::train::FasterRCNN plain(mask_options(false));
                       plain->forward_test(s.images, 0.0, 20, {}, std::nullopt, true);
                   }),
                   "masks asked of a network without a mask branch"));

    // An image with the chip's content: detect_image pastes every merged detection's mask.
    snip::train::image img{int(kChip), int(kChip) - 20};
    for (int y = 0; y < img.h; ++y)
        for (int x = 0; x < img.w; ++x)
            for (int c = 0; c < 3; ++c)
                img.row(y)[3 * x + c] = std::uint8_t(
                    std::clamp(127.0 + 60.0 * s.images[0][c][y][x].item<float>(), 0.0, 255.0));
    snip::train::inference_options o;
    o.scales = {snip::scale_spec::by_factor(1.0), snip::scale_spec::by_factor(0.5)};
    o.merge.ranges = {{-1, -1}, {-1, -1}};
    o.score_threshold = 0.0;
    o.mask_threshold = 0.5f;
    const snip::train::image_detections got = snip::train::detect_image(net, img, o);
    REQUIRE(got.size() > 0);
    REQUIRE(got.masks.size() == got.size());
    bool some_on = false;
    for (std::size_t k = 0; k < got.size(); ++k) {
        const snip::mask::rle& m = got.masks[k];
        REQUIRE(m.height == img.h);
        REQUIRE(m.width == img.w);
        const std::vector<std::uint8_t> px = snip::mask::decode(m);
        const snip::box<float>& b = got.boxes[k];
        for (int y = 0; y < img.h; ++y)
            for (int x = 0; x < img.w; ++x)
                if (px[std::size_t(y * img.w + x)]) { // pixel centres inside the box only
                    some_on = true;
                    CHECK(x + 0.5 >= b.x1);
                    CHECK(x + 0.5 <= b.x2);
                    CHECK(y + 0.5 >= b.y1);
                    CHECK(y + 0.5 <= b.y2);
                }
    }
    (void)some_on; // a random network may predict nothing above 0.5; the paste is checked below

    // The same masks by hand from detect_scale's scale-0 run: detections that survived from
    // scale 0 carry the paste of forward_test's probabilities for their box.
    const snip::train::image_detections s0 = snip::train::detect_scale(net, img, o, 0);
    REQUIRE(s0.masks.size() == s0.size());
    const snip::train::whole_image_input in = snip::train::whole_image(img, o.scales[0]);
    const snip::train::detections ref =
        net->forward_test(in.tensor, o.score_threshold, o.max_per_scale,
                          {std::array<int, 2>{in.width, in.height}}, o.per_scale_nms, true)[0];
    REQUIRE(ref.masks.size(0) == std::int64_t(s0.size()));
    for (std::size_t k = 0; k < s0.size(); ++k) {
        const snip::box<float>& b = s0.boxes[k];
        const torch::Tensor p = ref.masks[std::int64_t(k)].contiguous();
        CHECK(s0.masks[k] == snip::mask::paste(p.data_ptr<float>(), 28,
                                               snip::box<double>{b.x1, b.y1, b.x2, b.y2}, img.h,
                                               img.w, 0.5f));
    }
    std::size_t from0 = 0;
    for (std::size_t k = 0; k < got.size(); ++k) {
        if (got.scales[k] != 0) continue;
        for (std::size_t j = 0; j < s0.size(); ++j)
            if (s0.boxes[j].x1 == got.boxes[k].x1 && s0.boxes[j].y1 == got.boxes[k].y1 &&
                s0.boxes[j].x2 == got.boxes[k].x2 && s0.boxes[j].y2 == got.boxes[k].y2 &&
                s0.labels[j] == got.labels[k]) {
                CHECK(got.masks[k] == s0.masks[j]);
                ++from0;
                break;
            }
    }
    CHECK(from0 > 0);

    // merge_scales carries masks along with their detections.
    const snip::train::image_detections s1 = snip::train::detect_scale(net, img, o, 1);
    const snip::train::image_detections merged = snip::train::merge_scales({s0, s1}, o.merge);
    REQUIRE(merged.masks.size() == merged.size());

    // Without masks asked, none.
    snip::train::inference_options nm = o;
    nm.masks = false;
    CHECK(snip::train::detect_image(net, img, nm).masks.empty());

    // COCO segm results: the compressed RLE of each mask.
    snip::dataset ds;
    ds.categories = {{4, "a"}, {5, "b"}, {9, "c"}};
    snip::image_record rec;
    rec.id = 3, rec.width = img.w, rec.height = img.h;
    ds.images = {rec};
    const snip::train::class_map classes(ds);
    const nlohmann::json j = snip::train::results_json(ds, {got}, classes);
    REQUIRE(j.size() == got.size());
    for (std::size_t k = 0; k < got.size(); ++k) {
        const nlohmann::json& r = j[k];
        REQUIRE(r.contains("segmentation"));
        CHECK(r["segmentation"]["size"] == nlohmann::json::array({img.h, img.w}));
        CHECK(snip::mask::from_string(r["segmentation"]["counts"].get<std::string>(), img.h,
                                      img.w) == got.masks[k]);
    }
    snip::train::image_detections wrong = got;
    wrong.masks[0].height -= 1;
    CHECK(contains(error_of([&] { snip::train::results_json(ds, {wrong}, classes, "r.json"); }),
                   "r.json: image id 3 detection 0 has a"));
}
