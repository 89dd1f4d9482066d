// Tests of include/snip/det/rpn_targets.hpp: RPN labels with SNIPER's rules against a slow
// reference, assign_rpn (labels then sampling), option and input errors.
#include "det_test_util.hpp"
#include "test_util.hpp"

#include <snip/det/anchors.hpp>
#include <snip/det/rpn_targets.hpp>
#include <snip/det/sampling.hpp>

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

/// SNIPER's anchor labelling step by step on full overlap matrices (numpy semantics:
/// argmax takes the first maximum; ties of the per-gt maximum all count).
template <class T>
void rpn_labels(const std::vector<box<T>>& anchors, const std::vector<box<T>>& gt,
                const std::vector<gt_state>& states, const rpn_options& o,
                std::vector<std::int8_t>& labels, std::vector<std::int32_t>& matched) {
    const std::size_t N = anchors.size();
    std::vector<std::size_t> valid, invalid, crowd;
    for (std::size_t g = 0; g < gt.size(); ++g) {
        const gt_state s = states.empty() ? gt_state::valid : states[g];
        (s == gt_state::valid ? valid : s == gt_state::invalid ? invalid : crowd).push_back(g);
    }
    labels.assign(N, -1);
    matched.assign(N, -1);
    std::vector<std::vector<T>> ov(N, std::vector<T>(valid.size()));
    for (std::size_t i = 0; i < N; ++i)
        for (std::size_t k = 0; k < valid.size(); ++k) ov[i][k] = slow_iou(anchors[i], gt[valid[k]], o.convention);
    std::vector<T> maxo(N, T(0));
    for (std::size_t i = 0; i < N; ++i) {
        std::size_t arg = 0;
        for (std::size_t k = 0; k < valid.size(); ++k)
            if (ov[i][k] > ov[i][arg]) arg = k;
        if (!valid.empty()) {
            maxo[i] = ov[i][arg];
            matched[i] = std::int32_t(valid[arg]);
        }
    }
    for (std::size_t i = 0; i < N; ++i)
        if (maxo[i] < T(o.negative_below)) labels[i] = 0;
    if (o.best_anchor_positive)
        for (std::size_t k = 0; k < valid.size(); ++k) {
            T gmax = 0;
            for (std::size_t i = 0; i < N; ++i) gmax = std::max(gmax, ov[i][k]);
            if (gmax > 0)
                for (std::size_t i = 0; i < N; ++i)
                    if (ov[i][k] == gmax) labels[i] = 1;
        }
    for (std::size_t i = 0; i < N; ++i)
        if (maxo[i] >= T(o.positive_from)) labels[i] = 1;
    for (std::size_t i = 0; i < N; ++i) {
        for (std::size_t g : invalid)
            if (slow_iou(anchors[i], gt[g], o.convention) > T(o.ignore_invalid_above)) labels[i] = -1;
        for (std::size_t g : crowd) {
            T v;
            if (o.crowd_measure == overlap_measure::iou) {
                v = slow_iou(anchors[i], gt[g], o.convention);
            } else {
                const T e = o.convention == pixel_convention::inclusive ? T(1) : T(0);
                const box<T>& a = anchors[i];
                const box<T>& r = gt[g];
                const T iw = std::min(a.x2, r.x2) - std::max(a.x1, r.x1) + e;
                const T ih = std::min(a.y2, r.y2) - std::max(a.y1, r.y1) + e;
                const T wa = a.x2 - a.x1 + e, ha = a.y2 - a.y1 + e;
                v = (iw > 0 && ih > 0 && wa > 0 && ha > 0) ? iw * ih / (wa * ha) : T(0);
            }
            if (v > T(o.ignore_crowd_above)) labels[i] = -1;
        }
    }
}

} // namespace snip::reference

namespace {

inline std::vector<box<float>> sniper_chip_anchors() {
    const auto t = snip::anchor_config::sniper().templates();
    const auto all = snip::grid_anchors<float>(t, 32, 32, 16);
    std::vector<box<float>> kept;
    for (auto i : snip::anchors_inside(all, 512, 512, 32, pixel_convention::inclusive))
        kept.push_back(all[std::size_t(i)]);
    return kept;
}

template <class T>
void check_rpn_against_reference(const std::vector<box<T>>& anchors, const std::vector<box<T>>& gt,
                                 const std::vector<gt_state>& states, const snip::rpn_options& o) {
    std::vector<std::int8_t> rl, fl(anchors.size());
    std::vector<std::int32_t> rm, fm(anchors.size());
    snip::reference::rpn_labels(anchors, gt, states, o, rl, rm);
    const auto c = snip::assign_rpn_labels(anchors, gt, states, std::span<std::int8_t>(fl),
                                           std::span<std::int32_t>(fm), o);
    std::size_t diff_l = 0, diff_m = 0, pos = 0;
    for (std::size_t i = 0; i < anchors.size(); ++i) {
        diff_l += rl[i] != fl[i];
        diff_m += rm[i] != fm[i];
        pos += fl[i] == 1;
    }
    CHECK(diff_l == 0);
    CHECK(diff_m == 0);
    CHECK(c.positive == pos);
    CHECK(c.positive + c.negative + c.ignored == anchors.size());
}

} // namespace

// ---------------------------------------------------------------------------------------
// RPN labels: hand-made cases of SNIPER's rules

namespace {
struct rpn_run {
    std::vector<std::int8_t> labels;
    std::vector<std::int32_t> matched;
    snip::label_counts counts;
};
template <class T>
rpn_run run(const std::vector<box<T>>& anchors, const std::vector<box<T>>& gt,
            const std::vector<gt_state>& states, const snip::rpn_options& o = {}) {
    rpn_run r;
    r.labels.resize(anchors.size());
    r.matched.resize(anchors.size());
    r.counts = snip::assign_rpn_labels(anchors, gt, states, std::span<std::int8_t>(r.labels),
                                       std::span<std::int32_t>(r.matched), o);
    std::vector<std::int8_t> rl;
    std::vector<std::int32_t> rm;
    snip::reference::rpn_labels(anchors, gt, states, o, rl, rm);
    CHECK(rl == r.labels);
    CHECK(rm == r.matched);
    return r;
}
using L = std::vector<std::int8_t>;
} // namespace

TEST_CASE("RPN: the 0.4 / 0.5 boundaries") {
    // gt 10 x 10; IoUs 1, 0.5, 0.4, 0.39, 0 (exact in float and double).
    for (int dbl = 0; dbl < 2; ++dbl) {
        const std::vector<box<double>> a = {{0, 0, 10, 10}, {0, 0, 10, 5}, {0, 0, 10, 4}, {0, 0, 10, 3.9},
                                            {50, 50, 60, 60}};
        const std::vector<box<double>> g = {{0, 0, 10, 10}};
        if (dbl) {
            const auto r = run(a, g, {gt_state::valid});
            CHECK(r.labels == L{1, 1, -1, 0, 0});
            CHECK(r.counts == snip::label_counts{2, 2, 1});
        } else {
            std::vector<box<float>> af, gf;
            for (auto& x : a) af.push_back(x.cast<float>());
            for (auto& x : g) gf.push_back(x.cast<float>());
            const auto r = run(af, gf, {gt_state::valid});
            CHECK(r.labels == L{1, 1, -1, 0, 0});
        }
    }
}

TEST_CASE("RPN: best anchor of each valid gt is positive, with all its ties") {
    // gt 0's best IoU is 0.2, reached by two anchors (ties) -> both positive; 0.167 -> 0.
    const std::vector<box<float>> a = {{0, 0, 50, 10}, {-40, 0, 10, 10}, {0, 0, 60, 10}, {300, 300, 340, 340}};
    const std::vector<box<float>> g = {{0, 0, 10, 10}};
    const auto r = run(a, g, {});
    CHECK(r.labels == L{1, 1, 0, 0});
    CHECK(r.matched == std::vector<std::int32_t>{0, 0, 0, 0});

    SUBCASE("can be turned off") {
        snip::rpn_options o;
        o.best_anchor_positive = false;
        CHECK(run(a, g, {}, o).labels == L{0, 0, 0, 0});
    }
    SUBCASE("the matched gt of a best anchor is its argmax over all valid gt") {
        // Anchor 0 is gt 0's best (0.2) but overlaps gt 1 more (IoU 0.25 < 0.4: still best-anchor positive).
        const std::vector<box<float>> g2 = {{0, 0, 10, 10}, {0, 0, 50, 2.5f}};
        const std::vector<box<float>> a2 = {{0, 0, 50, 10}, {200, 200, 250, 210}};
        const auto r2 = run(a2, g2, {});
        CHECK(r2.labels[0] == 1);
        CHECK(r2.matched[0] == 1);
    }
    SUBCASE("a gt no anchor touches marks nothing (py-faster-rcnn would mark every IoU-0 anchor)") {
        const std::vector<box<float>> far = {{1000, 1000, 1010, 1010}};
        CHECK(run(a, far, {}).labels == L{0, 0, 0, 0});
    }
}

TEST_CASE("RPN: invalid gt above 0.3 IoU ignore anchors, overriding positives") {
    const std::vector<box<float>> a = {{0, 0, 10, 10}, {0, 0, 10, 10.5f}, {100, 100, 110, 110}};
    // Anchor 0 vs the invalid box: IoU 0.3 exactly (not > 0.3): keeps its label.
    const std::vector<box<float>> g = {{0, 0, 10, 10}, {0, 0, 10, 3}};
    const auto r = run(a, g, {gt_state::valid, gt_state::invalid});
    CHECK(r.labels == L{1, 1, 0});
    // Slightly larger invalid box (IoU 0.35 with anchor 0): ignored although IoU 1 with the valid gt.
    const std::vector<box<float>> g2 = {{0, 0, 10, 10}, {0, 0, 10, 3.5f}};
    const auto r2 = run(a, g2, {gt_state::valid, gt_state::invalid});
    CHECK(r2.labels[0] == -1);
    CHECK(r2.matched[0] == 0);

    SUBCASE("the best anchor of a gt is ignored too when an invalid gt covers it") {
        const std::vector<box<float>> a3 = {{0, 0, 50, 10}, {300, 300, 310, 310}};
        const std::vector<box<float>> g3 = {{0, 0, 10, 10}, {0, 0, 50, 10}};
        CHECK(run(a3, g3, {gt_state::valid, gt_state::invalid}).labels == L{-1, 0});
    }
    SUBCASE("no valid gt: every anchor negative except the ignored ones") {
        const std::vector<box<float>> g4 = {{0, 0, 10, 10}};
        const auto r4 = run(a, g4, {gt_state::invalid});
        CHECK(r4.labels == L{-1, -1, 0});
        CHECK(r4.matched == std::vector<std::int32_t>{-1, -1, -1});
    }
}

TEST_CASE("RPN: crowd regions ignore anchors, by IoU or by the anchor's share") {
    // A 10 x 10 anchor inside a 100 x 100 crowd region: IoU 0.01, share 1.
    const std::vector<box<float>> a = {{20, 20, 30, 30}, {0, 0, 100, 100}, {500, 500, 510, 510}};
    const std::vector<box<float>> g = {{0, 0, 100, 100}};
    snip::rpn_options o;
    CHECK(run(a, g, {gt_state::crowd}, o).labels == L{0, -1, 0});
    o.crowd_measure = snip::overlap_measure::anchor_fraction;
    CHECK(run(a, g, {gt_state::crowd}, o).labels == L{-1, -1, 0});
    // A crowd gt is never a target: no best-anchor positive, matched stays -1.
    CHECK(run(a, g, {gt_state::crowd}, o).matched == std::vector<std::int32_t>{-1, -1, -1});
}

TEST_CASE("RPN: the inclusive convention changes IoUs as the original code does") {
    // Continuous 36/81 = 0.44 (ignored band); inclusive 50/100 = 0.5 (positive).
    const std::vector<box<double>> a = {{0, 0, 9, 9}, {200, 200, 209, 209}};
    const std::vector<box<double>> g = {{0, 0, 9, 4}, {400, 400, 420, 420}};
    snip::rpn_options o;
    o.best_anchor_positive = false;
    CHECK(run(a, g, {}, o).labels == L{-1, 0});
    auto s = snip::rpn_options::sniper();
    s.best_anchor_positive = false;
    CHECK(run(a, g, {}, s).labels == L{1, 0});
}

TEST_CASE("RPN: empty inputs") {
    std::vector<box<float>> none;
    const std::vector<box<float>> a = {{0, 0, 10, 10}, {5, 5, 20, 20}};
    auto r = run(a, none, {});
    CHECK(r.labels == L{0, 0});
    CHECK(r.matched == std::vector<std::int32_t>{-1, -1});
    r = run(none, a, {});
    CHECK(r.labels.empty());
    CHECK(r.counts == snip::label_counts{});
    // matched may be skipped.
    std::vector<std::int8_t> l(2);
    CHECK(snip::assign_rpn_labels(a, a, {}, std::span<std::int8_t>(l), {}).positive == 2);
}

TEST_CASE("RPN labels equal the slow reference on random chips") {
    const auto anchors = sniper_chip_anchors();
    REQUIRE(anchors.size() == 13388);
    for (std::uint64_t seed : {3ull, 17ull, 2024ull}) {
        for (auto conv : {pixel_convention::inclusive, pixel_convention::continuous}) {
            INFO("seed ", seed, " inclusive ", conv == pixel_convention::inclusive);
            auto gt = random_boxes<float>(seed, 20, seed % 2 == 1, 250);
            const auto st = random_states(seed + 5, gt.size());
            snip::rpn_options o;
            o.convention = conv;
            o.threads = 2;
            check_rpn_against_reference(anchors, gt, st, o);
            o.threads = 1;
            o.crowd_measure = snip::overlap_measure::anchor_fraction;
            check_rpn_against_reference(anchors, gt, st, o);
        }
    }
    SUBCASE("random anchors on a pixel grid: many exact ties, double precision") {
        for (std::uint64_t seed : {5ull, 6ull, 7ull, 8ull}) {
            INFO("seed ", seed);
            const auto a = random_boxes<double>(seed, 3000, true, 64);
            const auto g = random_boxes<double>(seed + 9, 12, true, 64);
            snip::rpn_options o = snip::rpn_options::sniper();
            o.threads = 2;
            check_rpn_against_reference(a, g, random_states(seed, g.size()), o);
            o.negative_below = 0.3;
            o.positive_from = 0.7;
            o.ignore_invalid_above = 0.1;
            check_rpn_against_reference(a, g, random_states(seed + 1, g.size()), o);
        }
    }
}

TEST_CASE("RPN: a whole-image grid is split over threads and still equals the reference") {
    // 64 x 96 cells x 21 = 129,024 anchors and 30 gt: several parallel blocks of 2^19 pairs.
    const auto t = snip::anchor_config::sniper().templates();
    const auto anchors = snip::grid_anchors<float>(t, 64, 96, 16);
    auto gt = random_boxes<float>(31, 30, false, 250);
    for (auto& g : gt) g = snip::scale(g, 1.6f);  // spread over the 1536 x 1024 image
    const auto st = random_states(32, gt.size());
    auto o = snip::rpn_options::sniper();
    o.threads = 3;
    check_rpn_against_reference(anchors, gt, st, o);
    o.convention = pixel_convention::continuous;
    o.threads = 2;
    check_rpn_against_reference(anchors, gt, st, o);
}

TEST_CASE("RPN: a workspace is reusable across calls and thread counts") {
    const auto anchors = sniper_chip_anchors();
    snip::rpn_workspace<float> ws;
    for (std::uint64_t seed : {1ull, 2ull, 3ull}) {
        const auto gt = random_boxes<float>(seed, 15, false, 250);
        const auto st = random_states(seed, gt.size());
        std::vector<std::int8_t> l1(anchors.size()), l2(anchors.size());
        std::vector<std::int32_t> m1(anchors.size()), m2(anchors.size());
        auto o = snip::rpn_options::sniper();
        o.threads = unsigned(seed);
        snip::assign_rpn_labels(anchors, gt, st, std::span<std::int8_t>(l1), std::span<std::int32_t>(m1), o, &ws);
        o.threads = 1;
        snip::assign_rpn_labels(anchors, gt, st, std::span<std::int8_t>(l2), std::span<std::int32_t>(m2), o);
        CHECK(l1 == l2);
        CHECK(m1 == m2);
    }
}

TEST_CASE("assign_rpn: labels then SNIPER's 256 / 0.5 sampling from a seed") {
    const auto anchors = sniper_chip_anchors();
    const auto gt = random_boxes<float>(77, 20, false, 250);
    const auto st = random_states(78, gt.size());
    const auto o = snip::rpn_options::sniper();
    const auto a = snip::assign_rpn(anchors, gt, st, o, 1234);
    const auto b = snip::assign_rpn(anchors, gt, st, o, 1234);
    const auto c = snip::assign_rpn(anchors, gt, st, o, 4321);
    CHECK(a.labels == b.labels);
    CHECK(a.labels != c.labels);
    CHECK(a.counts.positive + a.counts.negative == 256);
    auto nos = o;
    nos.batch = 0;
    const auto full = snip::assign_rpn(anchors, gt, st, nos, 1234);
    CHECK(full.counts.positive + full.counts.negative > 256);
    // Exactly floor(0.5 * 256) positives when there are more, all of them when fewer:
    // the default fraction is the original's 0.5 (an upper bound alone would pass 0.25).
    CHECK(a.counts.positive == std::min<decltype(full.counts.positive)>(full.counts.positive, 128));
    CHECK(a.counts.positive > 64);
    CHECK(full.matched == a.matched);
    for (std::size_t i = 0; i < anchors.size(); ++i)
        if (a.labels[i] != -1) CHECK(a.labels[i] == full.labels[i]);
}

TEST_CASE("RPN options and inputs: errors name the bad value") {
    using doctest::Contains;
    const std::vector<box<float>> a = {{0, 0, 10, 10}};
    std::vector<std::int8_t> l(1);
    std::vector<std::int32_t> m(1);
    auto call = [&](const snip::rpn_options& o) {
        snip::assign_rpn_labels(a, a, {}, std::span<std::int8_t>(l), std::span<std::int32_t>(m), o);
    };
    snip::rpn_options o;
    o.negative_below = std::nan("");
    CHECK_THROWS_WITH_AS(call(o), Contains("negative_below must be in [0, 1], got nan"), snip::error);
    o = {};
    o.positive_from = 1.5;
    CHECK_THROWS_WITH_AS(call(o), Contains("positive_from must be in [0, 1], got 1.5"), snip::error);
    o = {};
    o.ignore_invalid_above = std::nan("");
    CHECK_THROWS_WITH_AS(call(o), Contains("ignore_invalid_above must be in [0, 1], got nan"), snip::error);
    o = {};
    o.negative_below = 0.6;
    CHECK_THROWS_WITH_AS(call(o), Contains("negative_below 0.6 must not exceed positive_from 0.5"),
                         snip::error);
    o = {};
    o.fg_fraction = 1.25;
    CHECK_THROWS_WITH_AS(call(o), Contains("fg_fraction must be in [0, 1], got 1.25"), snip::error);
    o = {};
    o.batch = -3;
    CHECK_THROWS_WITH_AS(call(o), Contains("batch must be >= 0, got -3"), snip::error);
    CHECK_THROWS_WITH_AS(snip::sample_labels(l, 256, -0.1, 0), Contains("fg_fraction must be in [0, 1], got -0.1"),
                         snip::error);
    CHECK_THROWS_WITH_AS(snip::sample_labels(l, 256, std::nan(""), 0), Contains("got nan"), snip::error);

    const std::vector<gt_state> two = {gt_state::valid, gt_state::crowd};
    CHECK_THROWS_WITH_AS(snip::assign_rpn_labels(a, a, two, std::span<std::int8_t>(l), {}),
                         Contains("2 gt states for 1 gt boxes"), snip::error);
    std::vector<std::int8_t> l3(3);
    CHECK_THROWS_WITH_AS(snip::assign_rpn_labels(a, a, {}, std::span<std::int8_t>(l3), {}),
                         Contains("labels hold 3 entries for 1 anchors"), snip::error);
    std::vector<std::int32_t> m2(2);
    CHECK_THROWS_WITH_AS(snip::assign_rpn_labels(a, a, {}, std::span<std::int8_t>(l), std::span<std::int32_t>(m2)),
                         Contains("matched holds 2 entries for 1 anchors"), snip::error);
}
