// Tests of include/snip/sniper/negatives.hpp: mining rules, sampling, the stride draw.
#include "test_util.hpp"

#include <snip/sniper/chip_gt.hpp>
#include <snip/core/random.hpp>
#include <snip/io/coco.hpp>
#include <snip/sniper/negatives.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

using snip::box;
using snip::plan_config;

namespace {

struct mined {
    snip::image_plan plan;
    std::vector<snip::chip> neg;
};

/// 640 x 480 image with one small ground-truth box top-left and `n` proposals of about
/// 20 px clustered around (500, 400).
mined mine(int n, bool with_gt = true) {
    const auto cfg = plan_config::sniper_coco();
    std::vector<box<double>> gt = {{10, 10, 30, 30}};
    std::vector<box<double>> props;
    for (int i = 0; i < n; ++i) {
        const double x = 470 + (i % 6) * 8, y = 380 + (i / 6) * 6;
        props.push_back({x, y, x + 20, y + 20});
    }
    snip::plan_workspace ws;
    mined m;
    const auto gv = snip::box_view<const double>(snip::as_box_view(gt));
    m.plan = snip::plan_image(cfg, 640, 480, gv, {}, ws);
    m.neg = snip::mine_negatives(cfg, 640, 480, m.plan, snip::box_view<const double>(snip::as_box_view(props)),
                                 with_gt ? gv : snip::box_view<const double>(), ws);
    return m;
}

} // namespace

TEST_CASE("a cluster of proposals away from the positive chips becomes a negative chip") {
    const auto m = mine(30);
    REQUIRE(m.plan.positives.size() == 1);  // the ground truth, finest scale
    CHECK(m.plan.positives[0].scale == 0);
    REQUIRE(m.neg.size() == 2);
    CHECK(m.neg[0].scale == 0);  // 30 > 25 at the finest scale
    CHECK(m.neg[0].proposals.size() == 30);
    CHECK(m.neg[1].scale == 1);  // 30 > 10 at the middle scale; the lone ground truth's chip (1) is dropped
    CHECK(m.neg[1].proposals.size() == 30);
    for (const auto& c : m.neg) {
        CHECK(c.boxes.empty());  // no ground truth was assigned to these chips
        CHECK(snip::mined_count(c) == 30);
        for (int i : c.proposals) CHECK((i >= 0 && i < 30));
    }
}

TEST_CASE("negative chips need more than 25 proposals at the finest scale, more than 10 elsewhere") {
    auto m = mine(20);
    REQUIRE(m.neg.size() == 1);
    CHECK(m.neg[0].scale == 1);
    CHECK(mine(25).neg.size() == 1);  // exactly 25 is not enough at the finest scale
    CHECK(mine(26).neg.size() == 2);
    CHECK(mine(10).neg.empty());      // exactly 10 is not enough at the others
    CHECK(mine(11).neg.size() == 1);
}

TEST_CASE("proposals covered by a positive chip are not mined") {
    const auto cfg = plan_config::sniper_coco();
    // Ground truth and proposals in the same corner: the positive chip covers them all.
    std::vector<box<double>> gt = {{10, 10, 30, 30}};
    std::vector<box<double>> props;
    for (int i = 0; i < 40; ++i) props.push_back({20.0 + i, 20.0, 40.0 + i, 40.0});
    snip::plan_workspace ws;
    const auto gv = snip::box_view<const double>(snip::as_box_view(gt));
    const auto plan = snip::plan_image(cfg, 640, 480, gv, {}, ws);
    const auto pv = snip::box_view<const double>(snip::as_box_view(props));
    const auto neg = snip::mine_negatives(cfg, 640, 480, plan, pv, snip::box_view<const double>(), ws);
    for (const auto& c : neg) CHECK(c.scale != 0);
    // Control: the same proposals with no ground truth (no positive chip) are mined at
    // the finest scale, so the absence above is the positive chip's doing.
    const std::vector<box<double>> none;
    const auto nv = snip::box_view<const double>(snip::as_box_view(none));
    const auto bare = snip::plan_image(cfg, 640, 480, nv, {}, ws);
    REQUIRE(bare.positives.empty());
    const auto ctrl = snip::mine_negatives(cfg, 640, 480, bare, pv, nv, ws);
    CHECK(std::count_if(ctrl.begin(), ctrl.end(), [](const snip::chip& c) { return c.scale == 0; }) == 1);
}

TEST_CASE("no proposals, no negative chips") {
    const auto m = mine(0, false);
    CHECK(m.neg.empty());
}

TEST_CASE("sample_negatives: seeded, distinct, sorted, all when few") {
    CHECK(snip::sample_negatives(1, 2, 0, 0, 7) == std::vector<int>{0});
    CHECK(snip::sample_negatives(0, 2, 0, 0, 7).empty());
    CHECK(snip::sample_negatives(5, 0, 0, 0, 7).empty());
    const auto a = snip::sample_negatives(9, 2, 42, 3, 1234);
    CHECK(a == snip::sample_negatives(9, 2, 42, 3, 1234));
    REQUIRE(a.size() == 2);
    CHECK(a[0] < a[1]);
    // Epochs and seeds change the draw; each chip is drawn about 2/5 of the time.
    std::set<std::vector<int>> seen;
    std::vector<int> hits(5, 0);
    for (int e = 0; e < 2000; ++e) {
        const auto s = snip::sample_negatives(5, 2, 1, e, 99);
        seen.insert(s);
        for (int i : s) ++hits[std::size_t(i)];
    }
    CHECK(seen.size() == 10);  // all C(5, 2) pairs occur
    for (int h : hits) CHECK(h == doctest::Approx(800).epsilon(0.1));
}

TEST_CASE("epoch_stride draws within the range, from the seed") {
    auto cfg = plan_config::sniper_coco();
    cfg.stride_min = cfg.stride_max = 0;
    CHECK(snip::epoch_stride(cfg, 1, 0) == 32);
    CHECK(snip::epoch_stride(plan_config::defaults(), 1, 7) == 32);  // the default stays fixed
    cfg = plan_config::sniper_coco();  // draws 56..59 like the original (data_workers.py:380)
    std::set<int> seen;
    for (int e = 0; e < 200; ++e) {
        const int s = snip::epoch_stride(cfg, 5, e);
        CHECK(s >= 56);
        CHECK(s <= 59);
        CHECK(s == snip::epoch_stride(cfg, 5, e));
        seen.insert(s);
    }
    CHECK(seen.size() == 4);
}

namespace {

std::vector<int> valid_in(const plan_config& cfg, const snip::chip& c, int w, int h,
                          const std::vector<box<double>>& gt) {
    std::vector<int> v;
    for (const auto& g : snip::assign_chip(cfg, c, w, h, snip::box_view<const double>(snip::as_box_view(gt)), {}))
        if (g.state == snip::gt_state::valid) v.push_back(g.index);
    return v;
}

std::vector<int> visible_in(const plan_config& cfg, const snip::chip& c, int w, int h,
                            const std::vector<box<double>>& gt) {
    std::vector<int> v;
    for (const auto& g : snip::assign_chip(cfg, c, w, h, snip::box_view<const double>(snip::as_box_view(gt)), {}))
        v.push_back(g.index);
    return v;
}

} // namespace

TEST_CASE("negative chips: only ground truth the miner assigned is valid (original's intersect1d)") {
    // 640 x 480. gt 0 is a wide band (size 288: coarsest scale only) that crosses the
    // proposal cluster's negative chips; gt 1 is a lone 20 px box top-left; gt 2 is a
    // 20 px box inside the cluster: below the middle scale's range (not a positive
    // there) but a mining candidate there (mining tests only the upper bound), so the
    // miner assigns it to the middle scale's negative chip. Proposal indices 0..29
    // collide with gt indices 0..2: counting them as ground truth marks gt 0 valid.
    const auto cfg = plan_config::sniper_coco();
    const std::vector<box<double>> gt = {{0, 200, 640, 330}, {10, 10, 30, 30}, {480, 390, 500, 410}};
    std::vector<box<double>> props;
    for (int i = 0; i < 30; ++i) {
        const double x = 470 + (i % 6) * 8, y = 380 + (i / 6) * 6;
        props.push_back({x, y, x + 20, y + 20});
    }
    snip::plan_workspace ws;
    const auto gv = snip::box_view<const double>(snip::as_box_view(gt));
    const auto pv = snip::box_view<const double>(snip::as_box_view(props));
    const auto plan = snip::plan_image(cfg, 640, 480, gv, {}, ws);
    const auto neg = snip::mine_negatives(cfg, 640, 480, plan, pv, gv, ws);
    REQUIRE(!neg.empty());
    bool band_seen = false, assigned_seen = false;
    for (const auto& c : neg) {
        for (int b : c.boxes) CHECK((b >= 0 && b < 3));
        for (int q : c.proposals) CHECK((q >= 0 && q < 30));
        const auto valid = valid_in(cfg, c, 640, 480, gt);
        for (int v : valid) CHECK(std::find(c.boxes.begin(), c.boxes.end(), v) != c.boxes.end());
        const auto vis = visible_in(cfg, c, 640, 480, gt);
        if (std::find(vis.begin(), vis.end(), 0) != vis.end()) {
            band_seen = true;  // visible in the negative chip, but never valid there
            CHECK(std::find(valid.begin(), valid.end(), 0) == valid.end());
        }
        if (std::find(c.boxes.begin(), c.boxes.end(), 2) != c.boxes.end()) {
            assigned_seen = true;
            CHECK(c.scale == 1);
            CHECK(valid == std::vector<int>{2});  // the one gt the miner assigned
        }
    }
    CHECK(band_seen);
    CHECK(assigned_seen);
    // Mining proposals only: no negative chip has any valid ground truth.
    for (const auto& c : snip::mine_negatives(cfg, 640, 480, plan, pv, snip::box_view<const double>(), ws)) {
        CHECK(c.boxes.empty());
        CHECK(valid_in(cfg, c, 640, 480, gt).empty());
    }
}

TEST_CASE("coco128, jittered ground truth and random proposals: no negative chip has a valid gt it was not assigned") {
    const auto path = snip_test::data_file("coco128/instances_coco128.json");
    if (path.empty()) return;
    const auto ds = snip::io::read_coco(path);
    for (const auto& cfg : {plan_config::sniper_coco(), plan_config::defaults()}) {
        snip::plan_workspace ws;
        snip::splitmix64 g{1234};
        std::size_t chips = 0, visible = 0, assigned = 0, valid = 0;
        for (const auto& im : ds.images) {
            std::vector<box<double>> props;
            for (const auto& b : im.boxes)  // jittered copies of every box
                for (int k = 0; k < 4; ++k) {
                    const double w = b.x2 - b.x1, h = b.y2 - b.y1;
                    const double dx = (g.uniform() - 0.5) * 0.4 * w, dy = (g.uniform() - 0.5) * 0.4 * h;
                    props.push_back({std::max(0.0, b.x1 + dx), std::max(0.0, b.y1 + dy),
                                     std::min<double>(im.width, b.x2 + dx), std::min<double>(im.height, b.y2 + dy)});
                }
            for (int k = 0; k < 200; ++k) {  // random background boxes
                const double w = 8 + g.uniform() * 120, h = 8 + g.uniform() * 120;
                const double x = g.uniform() * (im.width - w), y = g.uniform() * (im.height - h);
                props.push_back({x, y, x + w, y + h});
            }
            const auto gv = snip::box_view<const double>(snip::as_box_view(im.boxes));
            const auto plan = snip::plan_image(cfg, im.width, im.height, gv, im.crowd, ws);
            const auto neg = snip::mine_negatives(cfg, im.width, im.height, plan,
                                                  snip::box_view<const double>(snip::as_box_view(props)), gv, ws);
            for (const auto& c : neg) {
                ++chips;
                assigned += c.boxes.size();
                for (int q : c.proposals) CHECK((q >= 0 && std::size_t(q) < props.size()));
                const snip::scale_filter f =
                    snip::mining_filter(cfg, std::size_t(c.scale), c.factor, snip::epoch_stride(cfg, 0, 0));
                for (const auto& a : snip::assign_chip(cfg, c, im.width, im.height, gv, im.crowd)) {
                    ++visible;
                    if (a.state != snip::gt_state::valid) continue;
                    CHECK(std::find(c.boxes.begin(), c.boxes.end(), a.index) != c.boxes.end());
                    // Independently of chip::boxes: a gt valid in a negative chip must be a
                    // mining candidate of the chip's scale (the original counts only those).
                    const auto conv = snip::to_convention(im.boxes[std::size_t(a.index)], im.width,
                                                          im.height, cfg.convention);
                    CHECK(f.accepts(snip::size_of(conv, cfg.convention)));
                    ++valid;
                }
            }
        }
        CHECK(chips > 100);   // the data gives many negative chips ...
        CHECK(visible > 100); // ... with ground truth visible in them
        CHECK(valid <= assigned);
        MESSAGE(cfg.name, ": ", chips, " negative chips, ", visible, " gt boxes visible in them, ", assigned,
                " assigned by the miner, ", valid, " valid");
    }
}

TEST_CASE("mine_negatives validates its config, plan, stride and boxes") {
    const auto cfg = plan_config::sniper_coco();
    const std::vector<box<double>> gt = {{10, 10, 30, 30}};
    std::vector<box<double>> props = {{100, 100, 140, 150}};
    snip::plan_workspace ws;
    const auto gv = snip::box_view<const double>(snip::as_box_view(gt));
    auto pv = [&] { return snip::box_view<const double>(snip::as_box_view(props)); };
    const auto plan = snip::plan_image(cfg, 640, 480, gv, {}, ws);
    // a plan of another configuration: 2 scales against 3
    auto two = cfg;
    two.scales.pop_back();
    two.ranges = {{-1, 80}, {32, -1}};
    CHECK_THROWS_WITH_AS(snip::mine_negatives(two, 640, 480, plan, pv(), gv, ws),
                         doctest::Contains("the plan has 3 scales but the config has 2"), snip::error);
    // a plan of another image size
    CHECK_THROWS_WITH_AS(snip::mine_negatives(cfg, 800, 480, plan, pv(), gv, ws),
                         doctest::Contains("plan scale 0 is 1920 x 1440 px but the config sizes this 800 x 480 image"),
                         snip::error);
    // a broken config
    auto bad = cfg;
    bad.ranges.pop_back();
    CHECK_THROWS_WITH_AS(snip::mine_negatives(bad, 640, 480, plan, pv(), gv, ws),
                         doctest::Contains("3 scales but 2 valid ranges"), snip::error);
    // a stride outside the draw range or the chip
    CHECK_THROWS_WITH_AS(snip::mine_negatives(cfg, 640, 480, plan, pv(), gv, ws, 32),
                         doctest::Contains("stride 32 is outside the config's stride draw range 56..59"), snip::error);
    CHECK_THROWS_WITH_AS(snip::mine_negatives(cfg, 640, 480, plan, pv(), gv, ws, -3),
                         doctest::Contains("stride must be in [1, chip size 512), got -3"), snip::error);
    // bad proposals
    props.push_back({50, 50, 40, 60});
    CHECK_THROWS_WITH_AS(snip::mine_negatives(cfg, 640, 480, plan, pv(), gv, ws),
                         doctest::Contains("proposals[1] is [50, 50, 40, 60]"), snip::error);
    props.back() = {50, 50, std::numeric_limits<double>::quiet_NaN(), 60};
    CHECK_THROWS_WITH_AS(snip::mine_negatives(cfg, 640, 480, plan, pv(), gv, ws),
                         doctest::Contains("proposals[1] is [50, 50, nan, 60]: coordinates must be finite"),
                         snip::error);
    props.pop_back();
    CHECK_THROWS_WITH_AS(snip::mine_negatives(cfg, 0, 480, plan, pv(), gv, ws),
                         doctest::Contains("image size must be positive, got 0x480"), snip::error);
    CHECK_NOTHROW(snip::mine_negatives(cfg, 640, 480, plan, pv(), gv, ws));
}

TEST_CASE("sample_negatives and epoch_stride refuse bad arguments") {
    CHECK_THROWS_WITH_AS(snip::sample_negatives(5, -1, 0, 0, 7), doctest::Contains("count must be >= 0, got -1"),
                         snip::error);
    CHECK_THROWS_WITH_AS(snip::sample_negatives(5, 2, 0, -2, 7), doctest::Contains("epoch must be >= 0, got -2"),
                         snip::error);
    auto cfg = plan_config::sniper_coco();
    CHECK_THROWS_WITH_AS(snip::epoch_stride(cfg, 0, -1), doctest::Contains("epoch must be >= 0, got -1"), snip::error);
    cfg.stride_min = 60;
    cfg.stride_max = 56;
    CHECK_THROWS_WITH_AS(snip::epoch_stride(cfg, 0, 0), doctest::Contains("got 60..56"), snip::error);
    cfg = plan_config::defaults();
    cfg.stride = 0;
    CHECK_THROWS_WITH_AS(snip::epoch_stride(cfg, 0, 0), doctest::Contains("stride must be > 0, got 0"), snip::error);
}
