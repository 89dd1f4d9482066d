// Tests of include/snip/negatives.hpp: mining rules, sampling, the stride draw.
#include "test_util.hpp"

#include <snip/negatives.hpp>

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
    CHECK(m.neg[0].boxes.size() == 30);
    CHECK(m.neg[1].scale == 1);  // 30 > 10 at the middle scale; the lone ground truth's chip (1) is dropped
    CHECK(m.neg[1].boxes.size() == 30);
    for (const auto& c : m.neg)
        for (int i : c.boxes) CHECK(i < 30);  // proposals only: the ground truth stays below the threshold
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
    const auto neg = snip::mine_negatives(cfg, 640, 480, plan, snip::box_view<const double>(snip::as_box_view(props)),
                                          snip::box_view<const double>(), ws);
    for (const auto& c : neg) CHECK(c.scale != 0);
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
    CHECK(snip::epoch_stride(cfg, 1, 0) == 32);
    cfg.stride_min = 56;
    cfg.stride_max = 59;
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
