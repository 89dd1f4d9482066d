// Tests of include/snip/det/rcnn_targets.hpp: RCNN proposal targets against a
// straight-loop reference, seeded sampling, errors.
#include "det_test_util.hpp"
#include "test_util.hpp"

#include <snip/det/rcnn_targets.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <vector>

using snip::box;
using snip::gt_state;
using snip::pixel_convention;

namespace snip::reference {

/// RCNN targets with straight loops (no sampling).
template <class T>
rcnn_targets<T> rcnn(const std::vector<box<T>>& props, const std::vector<box<T>>& gt,
                     const std::vector<gt_state>& states, const std::vector<std::int32_t>& classes,
                     const rcnn_options& o) {
    const double e = o.convention == pixel_convention::inclusive ? 1.0 : 0.0;
    rcnn_targets<T> r;
    for (std::size_t i = 0; i < props.size(); ++i) {
        const box<double> b = props[i].template cast<double>();
        const double w = b.x2 - b.x1, h = b.y2 - b.y1;
        if (w + e <= 0 || h + e <= 0) continue;
        const double size = std::sqrt(w * h) / o.range_factor;
        if (o.range.lo >= 0 && size < o.range.lo) continue;
        if (o.range.hi >= 0 && size >= o.range.hi) continue;
        r.rois.push_back(props[i]);
        r.source.push_back(std::int64_t(i));
    }
    auto st = [&](std::size_t g) { return states.empty() ? gt_state::valid : states[g]; };
    if (o.append_gt)
        for (std::size_t g = 0; g < gt.size(); ++g)
            if (st(g) == gt_state::valid) {
                r.rois.push_back(gt[g]);
                r.source.push_back(std::int64_t(props.size() + g));
            }
    for (std::size_t i = 0; i < r.rois.size(); ++i) {
        std::int32_t best = -1;
        T bo = 0;
        for (std::size_t g = 0; g < gt.size(); ++g) {
            if (st(g) == gt_state::crowd || (st(g) == gt_state::invalid && !o.match_invalid_gt)) continue;
            const T v = slow_iou(r.rois[i], gt[g], o.convention);
            if (best < 0 || v > bo) best = std::int32_t(g), bo = v;
        }
        r.matched.push_back(best);
        r.max_iou.push_back(bo);
        const bool fg = best >= 0 && bo > T(o.fg_iou);
        r.labels.push_back(fg ? (classes.empty() ? 1 : classes[std::size_t(best)]) : 0);
        for (int k = 0; k < 4; ++k) r.deltas.push_back(0);
        if (fg) {
            const box<double> p = r.rois[i].template cast<double>();
            const box<double> g = gt[std::size_t(best)].template cast<double>();
            const double pw = p.x2 - p.x1 + e, ph = p.y2 - p.y1 + e;
            const double gw = g.x2 - g.x1 + e, gh = g.y2 - g.y1 + e;
            const double d[4] = {((g.x1 + 0.5 * gw) - (p.x1 + 0.5 * pw)) / pw,
                                 ((g.y1 + 0.5 * gh) - (p.y1 + 0.5 * ph)) / ph, std::log(gw / pw),
                                 std::log(gh / ph)};
            for (int k = 0; k < 4; ++k) r.deltas[4 * i + std::size_t(k)] = T((d[k] - o.means[k]) / o.stds[k]);
            ++r.foreground;
        }
    }
    return r;
}

} // namespace snip::reference

// ---------------------------------------------------------------------------------------
// RCNN proposal targets

TEST_CASE("RCNN: range filter, appended gt, strict 0.5 foreground, class-agnostic deltas") {
    const std::vector<box<double>> gt = {{0, 0, 100, 100}, {200, 200, 300, 300}, {400, 0, 500, 100},
                                         {0, 400, 100, 500}};
    const std::vector<gt_state> st = {gt_state::valid, gt_state::invalid, gt_state::crowd, gt_state::valid};
    const std::vector<std::int32_t> cls = {3, 5, 7, 2};
    const std::vector<box<double>> props = {
        {0, 0, 100, 50},      // IoU 0.5 with gt 0: NOT foreground (> 0.5 needed)
        {0, 0, 100, 60},      // IoU 0.6: class 3
        {200, 200, 300, 290}, // IoU 0.9 with the invalid gt 1: class 5 (SNIPER matches it)
        {400, 0, 500, 100},   // on the crowd gt only: background (crowd never labels)
        {0, 0, 5, 5},         // sqrt area 5 px = 2.5 original px < 16: dropped by the range
        {0, 0, 0, 50},        // zero width: dropped
        {600, 600, 1900, 1900}, // 1300 px = 650 original px >= 600: dropped
    };
    snip::rcnn_options o;
    o.range = {16, 600};  // in original px; the chip is at scale 2
    o.range_factor = 2.0;
    const auto r = snip::rcnn_proposal_targets(props, gt, st, cls, o);
    REQUIRE(r.rois.size() == 6);
    CHECK(r.source == std::vector<std::int64_t>{0, 1, 2, 3, 7 + 0, 7 + 3});
    CHECK(r.labels == std::vector<std::int32_t>{0, 3, 5, 0, 3, 2});
    CHECK(r.matched[0] == 0);
    CHECK(r.matched[2] == 1);
    CHECK(r.max_iou[0] == doctest::Approx(0.5));
    CHECK(r.max_iou[3] == 0.0);
    CHECK(r.foreground == 4);
    // Proposal 1 -> gt 0: dy = (50 - 30) / 60 / 0.1, dh = log(100 / 60) / 0.2.
    CHECK(r.deltas[4] == doctest::Approx(0.0));
    CHECK(r.deltas[5] == doctest::Approx(20.0 / 60.0 / 0.1));
    CHECK(r.deltas[6] == doctest::Approx(0.0));
    CHECK(r.deltas[7] == doctest::Approx(std::log(100.0 / 60.0) / 0.2));
    for (int k = 0; k < 4; ++k) CHECK(r.deltas[std::size_t(k)] == 0.0);   // background: zeros
    for (int k = 16; k < 24; ++k) CHECK(r.deltas[std::size_t(k)] == 0.0); // appended gt on themselves

    SUBCASE("invalid gt can be excluded from labelling") {
        auto o2 = o;
        o2.match_invalid_gt = false;
        const auto r2 = snip::rcnn_proposal_targets(props, gt, st, cls, o2);
        CHECK(r2.labels[2] == 0);
    }
    SUBCASE("without appended gt and without classes") {
        auto o3 = o;
        o3.append_gt = false;
        const auto r3 = snip::rcnn_proposal_targets(props, gt, st, {}, o3);
        CHECK(r3.labels == std::vector<std::int32_t>{0, 1, 1, 0});
    }
}

TEST_CASE("RCNN targets equal the straight-loop reference on random proposals") {
    for (std::uint64_t seed : {10ull, 11ull, 12ull}) {
        for (auto base : {snip::rcnn_options{}, snip::rcnn_options::sniper()}) {
            INFO("seed ", seed);
            const auto props = random_boxes<float>(seed, 300, seed % 2 == 0, 150);
            const auto gt = random_boxes<float>(seed + 50, 15, false, 150);
            const auto st = random_states(seed + 1, gt.size());
            std::vector<std::int32_t> cls;
            for (std::size_t g = 0; g < gt.size(); ++g) cls.push_back(std::int32_t(1 + g % 4));
            auto o = base;
            o.range = {10, 120};
            o.range_factor = 1.25;
            o.fg_iou = 0.45;
            const auto r = snip::rcnn_proposal_targets(props, gt, st, cls, o);
            const auto e = snip::reference::rcnn(props, gt, st, cls, o);
            CHECK(r.rois == e.rois);
            CHECK(r.source == e.source);
            CHECK(r.labels == e.labels);
            CHECK(r.matched == e.matched);
            CHECK(r.max_iou == e.max_iou);
            CHECK(r.foreground == e.foreground);
            REQUIRE(r.deltas.size() == e.deltas.size());
            for (std::size_t k = 0; k < r.deltas.size(); ++k)
                CHECK(r.deltas[k] == doctest::Approx(e.deltas[k]).epsilon(1e-4));
            CHECK(r.foreground > 0);
        }
    }
}

TEST_CASE("RCNN: seeded sampling to a batch with a foreground cap") {
    auto props = random_boxes<float>(21, 250, false, 150);
    const auto gt = random_boxes<float>(22, 25, false, 150);
    snip::splitmix64 jit{23};
    for (const auto& g : gt)  // 6 jittered copies of every gt: plenty of foreground
        for (int k = 0; k < 6; ++k) {
            const float w = g.x2 - g.x1, h = g.y2 - g.y1;
            const float dx = float(jit.uniform() - 0.5) * 0.1f * w, dy = float(jit.uniform() - 0.5) * 0.1f * h;
            props.push_back({g.x1 + dx, g.y1 + dy, g.x2 + dx, g.y2 + dy});
        }
    snip::rcnn_options o;
    const auto all = snip::rcnn_proposal_targets(props, gt, {}, {}, o);
    REQUIRE(all.foreground > 100);
    o.batch = 128;
    o.fg_fraction = 0.25;
    const auto a = snip::rcnn_proposal_targets(props, gt, {}, {}, o, 7);
    const auto b = snip::rcnn_proposal_targets(props, gt, {}, {}, o, 7);
    const auto c = snip::rcnn_proposal_targets(props, gt, {}, {}, o, 8);
    CHECK(a.rois.size() == 128);
    CHECK(a.foreground == 32);
    CHECK(a.source == b.source);
    CHECK(a.source != c.source);
    CHECK(std::is_sorted(a.source.begin(), a.source.end()));
    CHECK(a.deltas.size() == 4 * a.rois.size());
    // Every sampled row is the unsampled row of the same RoI.
    for (std::size_t k = 0; k < a.rois.size(); ++k) {
        const auto it = std::find(all.source.begin(), all.source.end(), a.source[k]);
        REQUIRE(it != all.source.end());
        const auto i = std::size_t(it - all.source.begin());
        CHECK(a.labels[k] == all.labels[i]);
        CHECK(a.rois[k] == all.rois[i]);
        CHECK(a.deltas[4 * k + 3] == all.deltas[4 * i + 3]);
    }
    o.batch = 100000;
    CHECK(snip::rcnn_proposal_targets(props, gt, {}, {}, o, 7).source == all.source);  // under the caps
}

TEST_CASE("RCNN: empty proposals, no gt, and errors naming the value") {
    using doctest::Contains;
    std::vector<box<float>> none;
    const std::vector<box<float>> g = {{0, 0, 50, 50}};
    const auto only_gt = snip::rcnn_proposal_targets(none, g, {}, {});
    REQUIRE(only_gt.rois.size() == 1);
    CHECK(only_gt.labels[0] == 1);
    CHECK(only_gt.source[0] == 0);
    const auto no_gt = snip::rcnn_proposal_targets(g, none, {}, {});
    REQUIRE(no_gt.rois.size() == 1);
    CHECK(no_gt.labels[0] == 0);
    CHECK(no_gt.matched[0] == -1);
    CHECK(snip::rcnn_proposal_targets(none, none, {}, {}).rois.empty());

    const std::vector<std::int32_t> zero = {0};
    CHECK_THROWS_WITH_AS(snip::rcnn_proposal_targets(g, g, {}, zero),
                         Contains("gt 0 has class 0 (classes start at 1"), snip::error);
    const std::vector<std::int32_t> two = {1, 2};
    CHECK_THROWS_WITH_AS(snip::rcnn_proposal_targets(g, g, {}, two), Contains("2 gt classes for 1 gt boxes"),
                         snip::error);
    snip::rcnn_options o;
    o.fg_iou = std::nan("");
    CHECK_THROWS_WITH_AS(snip::rcnn_proposal_targets(g, g, {}, {}, o), Contains("fg_iou must be in [0, 1], got nan"),
                         snip::error);
    o = {};
    o.fg_fraction = 2;
    CHECK_THROWS_WITH_AS(snip::rcnn_proposal_targets(g, g, {}, {}, o), Contains("fg_fraction must be in [0, 1], got 2"),
                         snip::error);
    o = {};
    o.range = {100, 50};
    CHECK_THROWS_WITH_AS(snip::rcnn_proposal_targets(g, g, {}, {}, o),
                         Contains("lower bound 100 must be below upper bound 50"), snip::error);
    o = {};
    o.range_factor = 0;
    CHECK_THROWS_WITH_AS(snip::rcnn_proposal_targets(g, g, {}, {}, o), Contains("range_factor must be finite and > 0, got 0"),
                         snip::error);
    o = {};
    o.stds[3] = -1;
    CHECK_THROWS_WITH_AS(snip::rcnn_proposal_targets(g, g, {}, {}, o), Contains("std of dh must be finite and > 0, got -1"),
                         snip::error);
}
