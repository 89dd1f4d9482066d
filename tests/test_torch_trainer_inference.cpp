// The trainer's test-time code (trainer/include/snip/train/inference.hpp), on a tiny randomly
// initialised FasterRCNN (ResNet-18 of width 8, K = 3) and synthetic images of ~150 px:
//  - whole_image: scaled size, exact per-axis factors, normalised content, zero padding to
//    multiples of 16, errors for scales that leave no pixel;
//  - detect_scale: the boxes of forward_test on the same input, mapped to original pixels
//    (x / f, inclusive x2 + 1), same scores and labels, at factor 1 and at other factors,
//    under both pixel conventions;
//  - detect_image: boxes inside the image, scores decreasing, every detection in the valid
//    range of the scale it came from while every scale had out-of-range candidates, merged
//    boxes equal to per-scale boxes, the network's mode restored;
//  - merge_scales on hand-made detections (exact result);
//  - propose_image: original px inside the image, scores in (0, 1), the factor-1 part equal
//    to the RPN + proposal layer run directly;
//  - write_proposals / write_results round trip through snip::io::read_proposals /
//    read_detections; ground truth written as detections evaluates to AP 1;
//  - draw_detections (apps/common, the programs' picture): a decodable PNG of the image's size with the expected outline pixels;
//  - bad options and inputs are snip::errors naming the field / path.
// LibTorch first: its headers bring glog, whose CHECK would otherwise replace doctest's.
#include <snip/train/inference.hpp>
#if __has_include(<snip_apps/draw_detections.hpp>) // the programs' picture of detections
#include <snip_apps/draw_detections.hpp>           // (absent when the programs are not built)
#define SNIP_TEST_APPS_DRAWING 1
#endif

#include "test_util.hpp"

#include <snip/io/coco.hpp>
#include <snip/eval/coco_eval.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <set>
#include <limits>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr int kW = 150, kH = 110;

snip::train::detector_options
tiny_options(snip::pixel_convention conv = snip::pixel_convention::inclusive) {
    snip::train::detector_options o;
    o.backbone.depth = 18;
    o.backbone.width = 8;
    o.num_classes = 3;
    o.rpn_channels = 32;
    o.head_channels = 16;
    o.fc_channels = 64;
    o.convention = conv;
    return o;
}

snip::train::FasterRCNN tiny_net(snip::pixel_convention conv = snip::pixel_convention::inclusive) {
    torch::manual_seed(7);
    snip::train::FasterRCNN net(tiny_options(conv));
    net->eval();
    return net;
}

// Grey background with a red, a green and a blue rectangle, plus a gradient so that
// resampling is visible.
snip::train::image test_image(int w = kW, int h = kH) {
    snip::train::image img(w, h);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            std::uint8_t* p = img.row(y) + 3 * x;
            p[0] = std::uint8_t(100 + (x % 50));
            p[1] = std::uint8_t(110 + (y % 40));
            p[2] = 120;
        }
    auto fill = [&](int x1, int y1, int x2, int y2, std::array<std::uint8_t, 3> c) {
        for (int y = y1; y < y2; ++y)
            for (int x = x1; x < x2; ++x)
                for (int k = 0; k < 3; ++k)
                    img.row(y)[3 * x + k] = c[std::size_t(k)];
    };
    fill(10, 12, 60, 50, {220, 30, 30});
    fill(70, 40, 140, 100, {30, 200, 40});
    fill(20, 70, 40, 95, {20, 40, 230});
    return img;
}

snip::dataset test_dataset() {
    snip::dataset ds;
    ds.source = "synthetic.json";
    ds.categories = {{3, "red"}, {8, "green"}, {11, "blue"}};
    snip::image_record a;
    a.id = 7, a.file_name = "a.png", a.width = kW, a.height = kH;
    a.boxes = {{10, 12, 60, 50}, {70, 40, 140, 100}, {20, 70, 40, 95}};
    a.ann_ids = {1, 2, 3};
    a.categories = {3, 8, 11};
    a.crowd = {0, 0, 0};
    snip::image_record b;
    b.id = 42, b.file_name = "b.png", b.width = 80, b.height = 60;
    b.boxes = {{0, 0, 80, 60}, {5.5, 6.25, 30.75, 41}};
    b.ann_ids = {4, 5};
    b.categories = {8, 3};
    b.crowd = {0, 0};
    ds.images = {a, b};
    return ds;
}

// A fresh directory under the system temp dir, removed at the end of the test.
struct temp_dir {
    fs::path path;
    temp_dir() {
        path = fs::temp_directory_path() /
               ("snip_infer_" + std::to_string(reinterpret_cast<std::uintptr_t>(this)) + "_" +
                std::to_string(std::rand()));
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

using snip_test::error_of;

using snip_test::contains;

double sqrt_area(const snip::box<float>& b) {
    return std::sqrt(std::max(0.0, double(b.x2) - b.x1) * std::max(0.0, double(b.y2) - b.y1));
}

void check_inside(const snip::train::image_detections& d, int w, int h) {
    REQUIRE(d.scores.size() == d.boxes.size());
    REQUIRE(d.labels.size() == d.boxes.size());
    REQUIRE(d.scales.size() == d.boxes.size());
    for (std::size_t i = 0; i < d.size(); ++i) {
        const auto& b = d.boxes[i];
        CHECK(b.x1 >= 0.f);
        CHECK(b.y1 >= 0.f);
        CHECK(b.x2 <= float(w));
        CHECK(b.y2 <= float(h));
        CHECK(b.x2 >= b.x1);
        CHECK(b.y2 >= b.y1);
        CHECK(d.labels[i] >= 1);
        CHECK(d.labels[i] <= 3);
    }
}

} // namespace

TEST_CASE("whole_image: one-pass resize, exact factors, normalisation, zero padding") {
    const snip::train::image img = test_image();
    const snip::train::normalisation norm{};
    const snip::train::whole_image_input a = snip::train::whole_image(img, snip::scale_spec::by_factor(1.0));
    CHECK(a.width == kW);
    CHECK(a.height == kH);
    CHECK(a.tensor.sizes() == torch::IntArrayRef({1, 3, 112, 160}));
    CHECK(a.fx == 1.0);
    CHECK(a.fy == 1.0);
    for (int c = 0; c < 3; ++c) {
        const float v = (float(img.at(33, 21, c)) / 255.f - norm.mean[std::size_t(c)]) /
                        norm.std[std::size_t(c)];
        CHECK(a.tensor[0][c][21][33].item<float>() == doctest::Approx(v).epsilon(1e-5));
    }
    CHECK(a.tensor.slice(2, kH).abs().max().item<float>() == 0.f);
    CHECK(a.tensor.slice(3, kW).abs().max().item<float>() == 0.f);

    // (60, 100): short side 110 -> 60, long side 150 * 60 / 110 = 81.8 -> 81.
    const auto b = snip::train::whole_image(img, snip::scale_spec::by_resolution(60, 100), 16);
    const snip::scaled_image s =
        snip::scale_image(snip::scale_spec::by_resolution(60, 100), kW, kH);
    CHECK(b.width == s.width);
    CHECK(b.height == s.height);
    CHECK(b.fx == double(s.width) / kW);
    CHECK(b.fy == double(s.height) / kH);
    CHECK(b.tensor.size(2) % 16 == 0);
    CHECK(b.tensor.size(3) % 16 == 0);
    CHECK(b.tensor.size(2) - b.height < 16);

    const auto c = snip::train::whole_image(img, snip::scale_spec::by_factor(0.5), 1);
    CHECK(c.tensor.sizes() == torch::IntArrayRef({1, 3, 55, 75}));

    CHECK(contains(error_of([&] { snip::train::whole_image(img, snip::scale_spec::by_factor(0.001)); }),
                   "at least one pixel"));
    CHECK(contains(error_of([&] { snip::train::whole_image(img, snip::scale_spec::by_factor(1.0), 0); }),
                   "pad_multiple"));
    CHECK(contains(error_of([&] { snip::train::whole_image(snip::train::image{}, snip::scale_spec{}); }),
                   "empty"));
}

TEST_CASE("detect_scale: forward_test's boxes mapped to original pixels") {
    const snip::train::image img = test_image();
    for (auto conv : {snip::pixel_convention::inclusive, snip::pixel_convention::continuous}) {
        snip::train::FasterRCNN net = tiny_net(conv);
        const double e = conv == snip::pixel_convention::inclusive ? 1.0 : 0.0;
        for (double f : {1.0, 1.5, 0.7}) {
            CAPTURE(f);
            CAPTURE(e);
            snip::train::inference_options o;
            o.scales = {snip::scale_spec::by_factor(f)};
            o.merge.ranges = {{-1, -1}};
            const snip::train::whole_image_input in = snip::train::whole_image(img, o.scales[0]);
            const snip::train::detections ref =
                net->forward_test(in.tensor, o.score_threshold, o.max_per_scale,
                                  {std::array<int, 2>{in.width, in.height}}, o.per_scale_nms)[0];
            const snip::train::image_detections got = snip::train::detect_scale(net, img, o, 0);
            REQUIRE(got.size() == std::size_t(ref.boxes.size(0)));
            REQUIRE(got.size() > 0);
            check_inside(got, kW, kH);
            const auto rb = ref.boxes.accessor<float, 2>();
            for (std::size_t i = 0; i < got.size(); ++i) {
                const auto k = std::int64_t(i);
                const auto& b = got.boxes[i];
                if (f == 1.0) { // exact
                    CHECK(b.x1 == rb[k][0]);
                    CHECK(b.y1 == rb[k][1]);
                    CHECK(b.x2 == float(rb[k][2] + e));
                    CHECK(b.y2 == float(rb[k][3] + e));
                } else {
                    CHECK(b.x1 * in.fx == doctest::Approx(rb[k][0]).epsilon(1e-5));
                    CHECK(b.y1 * in.fy == doctest::Approx(rb[k][1]).epsilon(1e-5));
                    CHECK(b.x2 * in.fx - e == doctest::Approx(rb[k][2]).epsilon(1e-5));
                    CHECK(b.y2 * in.fy - e == doctest::Approx(rb[k][3]).epsilon(1e-5));
                }
                CHECK(got.scores[i] == ref.scores[k].item<float>());
                CHECK(got.labels[i] == ref.labels[k].item<std::int64_t>());
                CHECK(got.scales[i] == 0);
            }
        }
    }
}

TEST_CASE("detect_image: multi-scale merge honours the per-scale valid ranges") {
    const snip::train::image img = test_image();
    snip::train::FasterRCNN net = tiny_net();
    snip::train::inference_options o;
    o.scales = {snip::scale_spec::by_factor(2.0), snip::scale_spec::by_factor(1.0),
                snip::scale_spec::by_long_side(96)};
    o.merge.ranges = {{-1, 40}, {25, 80}, {60, -1}};
    o.merge.max_per_image = 1000;

    // The filter has work to do: every scale detects boxes outside its range.
    std::vector<snip::train::image_detections> per_scale;
    for (std::size_t s = 0; s < o.scales.size(); ++s) {
        per_scale.push_back(snip::train::detect_scale(net, img, o, s));
        std::size_t out_of_range = 0;
        for (const auto& b : per_scale.back().boxes)
            out_of_range += !o.merge.ranges[s].contains(sqrt_area(b));
        CAPTURE(s);
        CHECK(out_of_range > 0);
    }

    net->train();
    const snip::train::image_detections d = snip::train::detect_image(net, img, o);
    CHECK(net->is_training()); // mode restored
    net->eval();
    const snip::train::image_detections again = snip::train::detect_image(net, img, o);
    CHECK_FALSE(net->is_training());
    REQUIRE(again.size() == d.size());
    for (std::size_t i = 0; i < d.size(); ++i)
        CHECK(again.boxes[i] == d.boxes[i]);

    REQUIRE(d.size() > 0);
    check_inside(d, kW, kH);
    CHECK(std::is_sorted(d.scores.begin(), d.scores.end(), std::greater<float>()));
    std::set<int> used;
    for (std::size_t i = 0; i < d.size(); ++i) {
        const int s = d.scales[i];
        REQUIRE(s >= 0);
        REQUIRE(s < 3);
        used.insert(s);
        CAPTURE(d.boxes[i]);
        CHECK(o.merge.ranges[std::size_t(s)].contains(sqrt_area(d.boxes[i])));
        // The box is one of that scale's own (Soft-NMS changes scores, never boxes).
        const auto& ps = per_scale[std::size_t(s)];
        bool found = false;
        for (std::size_t k = 0; k < ps.size() && !found; ++k)
            found = ps.boxes[k] == d.boxes[i] && ps.labels[k] == d.labels[i] &&
                    ps.scores[k] >= d.scores[i];
        CHECK(found);
    }
    CHECK(used.size() >= 2);
    MESSAGE("detect_image: ", d.size(), " detections from ", used.size(), " scales (per scale ",
            per_scale[0].size(), ", ", per_scale[1].size(), ", ", per_scale[2].size(), ")");

    // The top-k cut of the merge.
    o.merge.max_per_image = 5;
    CHECK(snip::train::detect_image(net, img, o).size() == 5);
    // Nothing above the threshold at any scale (random class scores are ~1 / (K + 1)).
    o.score_threshold = 0.9;
    const snip::train::image_detections none = snip::train::detect_image(net, img, o);
    CHECK(none.size() == 0);
    CHECK(none.scores.empty());
}

TEST_CASE("merge_scales: hand-made detections") {
    snip::train::image_detections s0, s1;
    s0.boxes = {{10, 10, 30, 30}, {50, 50, 110, 110}}; // sizes 20 and 60
    s0.scores = {0.9f, 0.8f};
    s0.labels = {1, 2};
    s1.boxes = {{50, 50, 110, 110}, {0, 0, 10, 10}}; // sizes 60 and 10
    s1.scores = {0.7f, 0.6f};
    s1.labels = {2, 1};
    snip::multiscale_merge_options m;
    m.ranges = {{-1, 40}, {30, -1}};
    const snip::train::image_detections d = snip::train::merge_scales({s0, s1}, m);
    REQUIRE(d.size() == 2);
    CHECK(d.boxes[0] == snip::box<float>{10, 10, 30, 30});
    CHECK(d.scores[0] == 0.9f);
    CHECK(d.labels[0] == 1);
    CHECK(d.scales[0] == 0);
    CHECK(d.boxes[1] == snip::box<float>{50, 50, 110, 110});
    CHECK(d.scores[1] == 0.7f);
    CHECK(d.labels[1] == 2);
    CHECK(d.scales[1] == 1);

    CHECK(
        contains(error_of([&] { snip::train::merge_scales({s0}, m); }), "1 scales but 2 valid ranges"));
    s1.labels.pop_back();
    CHECK(contains(error_of([&] { snip::train::merge_scales({s0, s1}, m); }), "scale 1 has 2 boxes"));
}

TEST_CASE("inference_options: validation and plan-derived ranges") {
    snip::train::inference_options o = snip::train::inference_options::sniper_coco();
    CHECK_NOTHROW(o.validate());
    CHECK(o.scales.size() == 3);
    CHECK(o.merge.ranges.size() == 3);

    auto bad = [](auto change) {
        snip::train::inference_options x;
        change(x);
        return error_of([&] { x.validate(); });
    };
    CHECK(contains(bad([](auto& x) { x.merge.ranges.pop_back(); }),
                   "3 test scales but 2 valid ranges"));
    CHECK(contains(bad([](auto& x) { x.scales.clear(); }), "at least one test scale"));
    CHECK(contains(bad([](auto& x) { x.scales[1] = snip::scale_spec::by_factor(-2); }), "scale 1"));
    CHECK(contains(bad([](auto& x) { x.score_threshold = 1.5; }), "score_threshold"));
    CHECK(contains(bad([](auto& x) { x.max_per_scale = 0; }), "max_per_scale"));
    CHECK(contains(bad([](auto& x) { x.pad_multiple = 0; }), "pad_multiple"));
    CHECK(contains(bad([](auto& x) { x.merge.sigma = 0; }), "sigma"));
    CHECK(contains(bad([](auto& x) { x.norm.std[2] = 0.f; }), "channel 2"));

    const snip::plan_config cfg = snip::plan_config::defaults();
    const auto p = snip::train::inference_options::for_plan(cfg);
    CHECK(p.scales.size() == cfg.scales.size());
    REQUIRE(p.merge.ranges.size() == cfg.ranges.size());
    for (std::size_t s = 0; s < cfg.ranges.size(); ++s) {
        CHECK(p.merge.ranges[s].lo == cfg.ranges[s].lo);
        CHECK(p.merge.ranges[s].hi == cfg.ranges[s].hi);
    }
    const auto q = snip::train::inference_options::for_plan(
        cfg, {snip::scale_spec::by_resolution(800, 1280), snip::scale_spec::by_resolution(480, 512),
              snip::scale_spec::by_factor(0.5)});
    CHECK(q.scales[0].short_side == 800);
    CHECK(q.merge.ranges[2].lo == cfg.ranges[2].lo);
    CHECK(contains(error_of([&] {
                       snip::train::inference_options::for_plan(cfg, {snip::scale_spec::by_factor(1)});
                   }),
                   "1 test scales but 3 valid ranges"));

    const snip::train::image img = test_image();
    snip::train::FasterRCNN net = tiny_net();
    snip::train::inference_options x;
    x.merge.ranges.pop_back();
    CHECK(contains(error_of([&] { snip::train::detect_image(net, img, x); }), "valid ranges"));
    CHECK(contains(error_of([&] { snip::train::detect_image(net, snip::train::image{}, o); }), "empty"));
}

TEST_CASE("propose_image: RPN proposals of every scale in original pixels") {
    const snip::train::image img = test_image();
    snip::train::FasterRCNN net = tiny_net();
    snip::train::proposal_options po{6000, 50, 0.7, 2.0};
    const std::vector<snip::scale_spec> scales{snip::scale_spec::by_factor(1.0),
                                               snip::scale_spec::by_factor(0.5)};
    net->train();
    const snip::image_proposals p = snip::train::propose_image(net, img, scales, po);
    CHECK(net->is_training());
    net->eval();
    REQUIRE(p.boxes.size() == p.scores.size());
    CHECK(p.boxes.size() > 50);
    CHECK(p.boxes.size() <= 100);
    for (std::size_t i = 0; i < p.boxes.size(); ++i) {
        const auto& b = p.boxes[i];
        CHECK(b.x1 >= 0.0);
        CHECK(b.y1 >= 0.0);
        CHECK(b.x2 <= double(kW));
        CHECK(b.y2 <= double(kH));
        CHECK(b.x2 > b.x1);
        CHECK(b.y2 > b.y1);
        CHECK(p.scores[i] > 0.f);
        CHECK(p.scores[i] < 1.f);
    }

    // The factor-1 part is the RPN and the proposal layer run directly, x2 + 1 (inclusive).
    const auto in = snip::train::whole_image(img, scales[0]);
    torch::NoGradGuard ng;
    const auto f = net->backbone->forward(in.tensor);
    const auto r = net->rpn_forward(net->rpn_input(f));
    const auto [rb, rs] =
        net->proposals(r.flat_objectness()[0], r.flat_deltas()[0],
                       net->anchors(f.res4.size(2), f.res4.size(3)), in.width, in.height, po);
    REQUIRE(rb.size(0) <= std::int64_t(p.boxes.size()));
    const auto prob = rs.sigmoid();
    for (std::int64_t k = 0; k < rb.size(0); ++k) {
        const auto& b = p.boxes[std::size_t(k)];
        CHECK(b.x1 == doctest::Approx(rb[k][0].item<double>()));
        CHECK(b.y1 == doctest::Approx(rb[k][1].item<double>()));
        CHECK(b.x2 == doctest::Approx(rb[k][2].item<double>() + 1.0));
        CHECK(b.y2 == doctest::Approx(rb[k][3].item<double>() + 1.0));
        CHECK(p.scores[std::size_t(k)] == prob[k].item<float>());
    }

    // NMS 0.7 over all scales together (the original, lib/dataset/imdb.py:102): a subset of the
    // stacked proposals, by decreasing score, no two above 0.7 IoU.
    const snip::image_proposals m = snip::train::propose_image(net, img, scales, po, 16, {}, 0.7);
    REQUIRE(m.boxes.size() >= 1);
    CHECK(m.boxes.size() < p.boxes.size());
    for (std::size_t i = 0; i < m.boxes.size(); ++i) {
        CHECK(std::find(p.boxes.begin(), p.boxes.end(), m.boxes[i]) != p.boxes.end());
        if (i > 0) CHECK(m.scores[i] <= m.scores[i - 1]);
        for (std::size_t j = 0; j < i; ++j)
            CHECK(snip::iou(m.boxes[i], m.boxes[j]) <= 0.7 + 1e-9);
    }
    CHECK(contains(error_of([&] { snip::train::propose_image(net, img, scales, po, 16, {}, 1.5); }),
                   "cross-scale NMS IoU must be <= 1"));

    CHECK(
        contains(error_of([&] { snip::train::propose_image(net, img, {}, po); }), "at least one scale"));
    po.post_nms = 0;
    CHECK(contains(error_of([&] { snip::train::propose_image(net, img, scales, po); }), "post_nms"));
}

TEST_CASE("writers: proposals and COCO results round trip") {
    const temp_dir tmp;
    const snip::dataset ds = test_dataset();
    const snip::train::class_map classes(ds);
    const snip::train::image img = test_image();
    snip::train::FasterRCNN net = tiny_net();

    // Proposals: the network's for image 0, hand-made ones (one on the border) for image 1.
    std::vector<snip::image_proposals> props(2);
    props[0] =
        snip::train::propose_image(net, img, {snip::scale_spec::by_factor(1.0)}, {6000, 40, 0.7, 2.0});
    props[1].boxes = {{0, 0, 80, 60}, {1.25, 2.5, 3.75, 59.9}};
    props[1].scores = {0.25f, 0.123456789f};
    const std::string ppath = tmp.file("proposals.json");
    snip::train::write_proposals(ppath, ds, props);
    CHECK_FALSE(fs::exists(ppath + ".tmp"));
    const auto back = snip::io::read_proposals(ppath, ds);
    REQUIRE(back.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
        REQUIRE(back[i].boxes.size() == props[i].boxes.size());
        for (std::size_t k = 0; k < props[i].boxes.size(); ++k) {
            const auto& a = props[i].boxes[k];
            const auto& b = back[i].boxes[k];
            CHECK(b.x1 == doctest::Approx(a.x1).epsilon(1e-12));
            CHECK(b.y1 == doctest::Approx(a.y1).epsilon(1e-12));
            CHECK(b.x2 == doctest::Approx(a.x2).epsilon(1e-12));
            CHECK(b.y2 == doctest::Approx(a.y2).epsilon(1e-12));
            CHECK(back[i].scores[k] == props[i].scores[k]);
        }
    }

    // Detections: the network's for image 0, hand-made ones for image 1.
    snip::train::inference_options o;
    o.scales = {snip::scale_spec::by_factor(1.0), snip::scale_spec::by_factor(0.6)};
    o.merge.ranges = {{-1, 64}, {48, -1}};
    o.merge.max_per_image = 50;
    std::vector<snip::train::image_detections> dets(2);
    dets[0] = snip::train::detect_image(net, img, o);
    dets[1].boxes = {{0, 0, 80, 60}, {10.5f, 20.25f, 30.125f, 40}};
    dets[1].scores = {0.75f, 0.3f};
    dets[1].labels = {3, 1};
    const std::string rpath = tmp.file("results.json");
    snip::train::write_results(rpath, ds, dets, classes);
    const std::vector<snip::io::detection> rd = snip::io::read_detections(rpath, ds);
    REQUIRE(rd.size() == dets[0].size() + dets[1].size());
    std::size_t j = 0;
    for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t k = 0; k < dets[i].size(); ++k, ++j) {
            const auto& b = dets[i].boxes[k];
            CHECK(rd[j].image_id == ds.images[i].id);
            CHECK(rd[j].category_id == classes.category(int(dets[i].labels[k])));
            CHECK(rd[j].x == double(b.x1));
            CHECK(rd[j].y == double(b.y1));
            CHECK(rd[j].x + rd[j].w == doctest::Approx(double(b.x2)).epsilon(1e-12));
            CHECK(rd[j].y + rd[j].h == doctest::Approx(double(b.y2)).epsilon(1e-12));
            CHECK(rd[j].score == double(dets[i].scores[k]));
        }
    CHECK(rd[j - 2].category_id == 11); // label 3 -> the third category id

    // Ground truth written as detections is perfect.
    std::vector<snip::train::image_detections> gtd(2);
    for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t k = 0; k < ds.images[i].boxes.size(); ++k) {
            gtd[i].boxes.push_back(ds.images[i].boxes[k].cast<float>());
            gtd[i].scores.push_back(1.f - 0.1f * float(k));
            gtd[i].labels.push_back(classes(ds.images[i].categories[k]));
        }
    const std::string gpath = tmp.file("gt_results.json");
    snip::train::write_results(gpath, ds, gtd, classes);
    const snip::io::coco_eval_result ev =
        snip::io::evaluate_coco(ds, snip::io::read_detections(gpath, ds));
    CHECK(ev.stats[0] == doctest::Approx(1.0));
    CHECK(ev.stats[1] == doctest::Approx(1.0));
    CHECK(ev.stats[8] == doctest::Approx(1.0));

    // Errors name the path.
    const std::string missing = (tmp.path / "no_such_dir" / "x.json").string();
    CHECK(contains(error_of([&] { snip::train::write_proposals(missing, ds, props); }), missing));
    CHECK(contains(error_of([&] { snip::train::write_results(missing, ds, dets, classes); }), missing));
    CHECK(contains(error_of([&] { snip::train::write_proposals(ppath, ds, {props[0]}); }),
                   ppath + ": 1 proposal lists for 2 images"));
    auto bad = props;
    bad[1].boxes[0].x2 = 95;
    const std::string e1 = error_of([&] { snip::train::write_proposals(ppath, ds, bad); });
    CHECK(contains(e1, "image id 42 box 0"));
    CHECK(contains(e1, "outside"));
    auto badd = dets;
    badd[1].labels[1] = 4;
    CHECK(contains(error_of([&] { snip::train::write_results(rpath, ds, badd, classes); }),
                   "label 4, outside 1..3"));
    badd[1].labels[1] = 0;
    CHECK(contains(error_of([&] { snip::train::results_json(ds, badd, classes); }), "label 0"));
    badd = dets;
    badd[1].scores.pop_back();
    CHECK(contains(error_of([&] { snip::train::write_results(rpath, ds, badd, classes); }),
                   "image id 42 has 2 boxes, 1 scores"));
    // A failed write leaves the previous file intact.
    CHECK(snip::io::read_detections(rpath, ds).size() == rd.size());
}

#ifdef SNIP_TEST_APPS_DRAWING
TEST_CASE("draw_detections: a PNG of the image with outlines and labels") {
    const temp_dir tmp;
    snip::train::image img(kW, kH);
    std::fill(img.px.begin(), img.px.end(), std::uint8_t(90));
    snip::train::image_detections d;
    d.boxes = {{20, 30, 81, 91}, {5, 5, 40, 40}};
    d.scores = {0.9f, 0.1f};
    d.labels = {2, 1};
    snip::image_record gt;
    gt.id = 1, gt.width = kW, gt.height = kH;
    gt.boxes = {{100, 10, 141, 51}};
    gt.ann_ids = {1};
    gt.categories = {1};
    gt.crowd = {0};
    const std::string path = tmp.file("dets.png");
    snip::apps::draw_detections(img, d, {"red", "green", "blue"}, 0.3, path, &gt);
    CHECK_FALSE(fs::exists(path + ".tmp"));
    const snip::train::image png = snip::train::decode_image(path);
    REQUIRE(png.w == kW);
    REQUIRE(png.h == kH);
    auto px = [&](int x, int y) {
        return std::array<int, 3>{png.at(x, y, 0), png.at(x, y, 1), png.at(x, y, 2)};
    };
    // Antialiased drawing: a pixel is "of" a colour when every channel is within `tol`.
    auto near = [&](int x, int y, snip::apps::draw::rgb c, int tol) {
        const auto p = px(x, y);
        return std::abs(p[0] - c.r) <= tol && std::abs(p[1] - c.g) <= tol &&
               std::abs(p[2] - c.b) <= tol;
    };
    const snip::apps::draw::rgb green = snip::apps::class_colour(2), grey{90, 90, 90},
                                white{255, 255, 255};
    CHECK(near(20, 60, green, 40)); // left edge
    CHECK(near(80, 60, green, 40)); // right edge: the outline lies inside [20, 81)
    CHECK(near(50, 90, green, 40)); // bottom edge
    CHECK(near(81, 60, grey, 8));   // just outside: untouched
    CHECK(near(5, 20, grey, 8));    // below min_score: not drawn
    CHECK(near(50, 60, grey, 8));   // inside: untouched
    // The ground truth: a dashed white outline, so part of its top row is white, part not.
    int gt_white = 0;
    for (int x = 100; x < 141; ++x) gt_white += near(x, 10, white, 40);
    CHECK(gt_white > 12);
    CHECK(gt_white < 38);
    CHECK(near(120, 30, grey, 8)); // inside the ground truth: untouched
    // The label sits above the box: a band in the class colour with white text on it.
    int label_px = 0, text_px = 0;
    for (int y = 0; y < 30; ++y)
        for (int x = 20; x < 80; ++x) {
            label_px += near(x, y, green, 10);
            text_px += near(x, y, white, 60);
        }
    CHECK(label_px > 200);
    CHECK(text_px > 15);

    // The network's detections of a real-looking image, no names, no ground truth.
    snip::train::FasterRCNN net = tiny_net();
    snip::train::inference_options o;
    o.scales = {snip::scale_spec::by_factor(1.0)};
    o.merge.ranges = {{-1, -1}};
    const snip::train::image rgb = test_image();
    const std::string path2 = tmp.file("net.png");
    snip::apps::draw_detections(rgb, snip::train::detect_image(net, rgb, o), {}, 0.0, path2);
    const snip::train::image png2 = snip::train::decode_image(path2);
    CHECK(png2.w == kW);
    CHECK(png2.h == kH);

    gt.width = 10;
    CHECK(contains(error_of([&] { snip::apps::draw_detections(img, d, {}, 0.3, path, &gt); }),
                   "ground truth of image id 1 is for a 10 x 110 image"));
    d.labels.pop_back();
    CHECK(contains(error_of([&] { snip::apps::draw_detections(img, d, {}, 0.3, path); }), "labels"));
    const std::string missing = (tmp.path / "nope" / "x.png").string();
    d.labels.push_back(1);
    CHECK(contains(error_of([&] { snip::apps::draw_detections(img, d, {}, 0.3, missing); }), missing));
}
#endif

TEST_CASE("defaults: the original SNIPER's test and training-proposal settings") {
    // sniper_res101_e2e.yml TEST: scales (1400,2000), (800,1280), (480,512), ranges (-1,90),
    // (32,180), (75,-1), no per-scale NMS (NMS -1), Soft-NMS sigma 0.55, 200 per image; scores
    // > 1e-3 (lib/inference.py).
    const snip::train::inference_options o;
    REQUIRE(o.scales.size() == 3u);
    CHECK(o.scales[0].to_string() == snip::scale_spec::by_resolution(1400, 2000).to_string());
    CHECK(o.scales[1].to_string() == snip::scale_spec::by_resolution(800, 1280).to_string());
    CHECK(o.scales[2].to_string() == snip::scale_spec::by_resolution(480, 512).to_string());
    REQUIRE(o.merge.ranges.size() == 3u);
    CHECK(o.merge.ranges[0].to_string() == "(-1,90)");
    CHECK(o.merge.ranges[1].to_string() == "(32,180)");
    CHECK(o.merge.ranges[2].to_string() == "(75,-1)");
    CHECK(o.score_threshold == 1e-3);
    CHECK(o.per_scale_nms <= 0.0);
    CHECK(o.merge.sigma == 0.55);
    CHECK(o.merge.max_per_image == 200u);
    // Training proposals and RoIs (multi_proposal_target.cu): no pre-NMS cut, NMS 0.7, 300,
    // both sides < 3 px (x2 - x1) dropped, out-of-range proposals dropped, every RoI kept.
    const snip::train::detector_options d;
    CHECK(d.train_proposals.pre_nms == std::numeric_limits<std::int64_t>::max());
    CHECK(d.train_proposals.post_nms == 300);
    CHECK(d.train_proposals.nms_iou == 0.7);
    CHECK(d.train_proposals.min_size == 4.0); // inclusive widths: x2 - x1 + 1
    CHECK(d.train_proposals.min_size_both);
    CHECK(d.filter_proposals_by_range);
    CHECK(d.rcnn.batch == 0);
    CHECK(d.rcnn.fg_iou == 0.5);
    CHECK(d.rcnn.append_gt);
    CHECK(d.backbone.train_bn);
    CHECK(d.backbone.bn_momentum == 0.005);
    CHECK(d.backbone.frozen_stages == 1);
    CHECK(d.loss.group_chips == 16);
    CHECK(d.loss.rpn_box_weight == 3);
    CHECK(d.loss.rcnn_box_rois == 188);
}
