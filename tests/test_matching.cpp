// Tests of include/snip/det/matching.hpp: IoU matrices, RPN labels, sampling, RCNN targets.
#include "test_util.hpp"

#include <snip/det/anchors.hpp>
#include <snip/det/iou.hpp>
#include <snip/det/rcnn_targets.hpp>
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

// ---------------------------------------------------------------------------------------
// Slow, obviously-correct references: full matrices and straight loops.
namespace snip::reference {

/// Textbook IoU in T: intersection over union, sides x2 - x1 + e.
template <class T>
T slow_iou(const box<T>& a, const box<T>& b, pixel_convention conv) {
    const T e = conv == pixel_convention::inclusive ? T(1) : T(0);
    const T iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1) + e;
    const T ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1) + e;
    const T inter = (iw > 0 && ih > 0) ? iw * ih : T(0);
    const T wa = a.x2 - a.x1 + e, ha = a.y2 - a.y1 + e;
    const T wb = b.x2 - b.x1 + e, hb = b.y2 - b.y1 + e;
    const T aa = (wa > 0 && ha > 0) ? wa * ha : T(0);
    const T ab = (wb > 0 && hb > 0) ? wb * hb : T(0);
    const T uni = aa + ab - inter;
    return uni > 0 ? inter / uni : T(0);
}

/// The same in double, from scratch, for tolerance checks.
inline double iou_double(const box<double>& a, const box<double>& b, double e) {
    double iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1) + e;
    double ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1) + e;
    if (iw <= 0 || ih <= 0) return 0.0;
    double aa = std::max(0.0, a.x2 - a.x1 + e) * std::max(0.0, a.y2 - a.y1 + e);
    double ab = std::max(0.0, b.x2 - b.x1 + e) * std::max(0.0, b.y2 - b.y1 + e);
    return iw * ih / (aa + ab - iw * ih);
}

template <class T>
std::vector<std::vector<double>> iou_matrix(const std::vector<box<T>>& a, const std::vector<box<T>>& b,
                                            pixel_convention conv) {
    const double e = conv == pixel_convention::inclusive ? 1.0 : 0.0;
    std::vector<std::vector<double>> m(a.size(), std::vector<double>(b.size()));
    for (std::size_t i = 0; i < a.size(); ++i)
        for (std::size_t j = 0; j < b.size(); ++j)
            m[i][j] = iou_double(a[i].template cast<double>(), b[j].template cast<double>(), e);
    return m;
}

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

namespace {

/// Random boxes in a 600 x 600 image; `grid` snaps coordinates to whole pixels so that
/// equal IoUs (ties) are frequent.
template <class T>
std::vector<box<T>> random_boxes(std::uint64_t seed, int n, bool grid, double max_side = 200) {
    snip::splitmix64 g{seed};
    std::vector<box<T>> out;
    for (int i = 0; i < n; ++i) {
        double x = g.uniform() * 600 - 40, y = g.uniform() * 600 - 40;
        double w = 2 + g.uniform() * max_side, h = 2 + g.uniform() * max_side;
        if (grid) x = std::floor(x / 8) * 8, y = std::floor(y / 8) * 8, w = std::ceil(w / 8) * 8, h = std::ceil(h / 8) * 8;
        out.push_back(box<double>{x, y, x + w, y + h}.cast<T>());
    }
    return out;
}

std::vector<gt_state> random_states(std::uint64_t seed, std::size_t n) {
    snip::splitmix64 g{seed};
    std::vector<gt_state> s(n);
    for (auto& x : s) {
        const auto r = g.below(10);
        x = r < 6 ? gt_state::valid : r < 9 ? gt_state::invalid : gt_state::crowd;
    }
    return s;
}

std::vector<box<float>> sniper_chip_anchors() {
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
// IoU

TEST_CASE("pairwise IoU: hand values under both conventions") {
    const box<float> a{0, 0, 10, 10}, b{5, 5, 15, 15};
    CHECK(snip::iou(a, b, pixel_convention::continuous) == doctest::Approx(25.0 / 175.0));
    CHECK(snip::iou(a, b, pixel_convention::continuous) == snip::iou(a, b));
    // py-faster-rcnn's bbox_overlaps: [0, 9] x [0, 9] vs [5, 14] x [5, 14] -> 25 / 175.
    CHECK(snip::iou(box<float>{0, 0, 9, 9}, box<float>{5, 5, 14, 14}, pixel_convention::inclusive) ==
          doctest::Approx(25.0 / 175.0));
    // Touching boxes share a pixel column only under the inclusive convention.
    const box<double> l{0, 0, 9, 9}, r{9, 0, 18, 9};
    CHECK(snip::iou(l, r, pixel_convention::continuous) == 0.0);
    CHECK(snip::iou(l, r, pixel_convention::inclusive) == doctest::Approx(10.0 / 190.0));
    // Degenerate boxes: zero-area boxes have IoU 0 (continuous); a point is one pixel (inclusive).
    const box<double> p{3, 3, 3, 3};
    CHECK(snip::iou(p, p, pixel_convention::continuous) == 0.0);
    CHECK(snip::iou(p, p, pixel_convention::inclusive) == 1.0);
    CHECK(snip::iou(l, l, pixel_convention::continuous) == 1.0);
    CHECK(snip::iou(box<double>{5, 5, 1, 1}, l, pixel_convention::continuous) == 0.0);
    // Anchor fraction inside a region.
    CHECK(snip::overlap_fraction(box<double>{0, 0, 10, 10}, box<double>{5, 0, 100, 100},
                                 pixel_convention::continuous) == 0.5);
    CHECK(snip::overlap_fraction(p, l, pixel_convention::continuous) == 0.0);
}

TEST_CASE("iou_matrix equals the double-loop reference on random boxes") {
    for (std::uint64_t seed : {1ull, 2ull, 3ull, 99ull}) {
        for (auto conv : {pixel_convention::continuous, pixel_convention::inclusive}) {
            INFO("seed ", seed);
            const auto a = random_boxes<float>(seed, 301, seed % 2 == 0);
            auto b = random_boxes<float>(seed + 1000, 57, false);
            b.push_back({10, 10, 10, 30});   // zero width
            b.push_back({-50, -50, -20, -20});  // outside the image
            const auto ref = snip::reference::iou_matrix(a, b, conv);
            const auto m = snip::iou_matrix(a, b, conv);
            REQUIRE(m.size() == a.size() * b.size());
            double worst = 0;
            std::size_t exact = 0;
            for (std::size_t i = 0; i < a.size(); ++i)
                for (std::size_t j = 0; j < b.size(); ++j) {
                    const float v = m[i * b.size() + j];
                    worst = std::max(worst, std::fabs(double(v) - ref[i][j]));
                    exact += v == snip::iou(a[i], b[j], conv);
                }
            CHECK(worst < 1e-6);
            CHECK(exact == m.size());  // the matrix is the pairwise function, bit for bit
            // Threads do not change a single value.
            CHECK(snip::iou_matrix(a, b, conv, /*threads=*/1) == m);
            CHECK(snip::iou_matrix(a, b, conv, /*threads=*/3) == m);
        }
    }
}

TEST_CASE("iou_matrix: large inputs are split over threads with identical results") {
    const auto a = random_boxes<double>(5, 2000, false);
    const auto b = random_boxes<double>(6, 300, true);
    const auto one = snip::iou_matrix(a, b, pixel_convention::continuous, 1);
    const auto two = snip::iou_matrix(a, b, pixel_convention::continuous, 2);
    CHECK(one == two);
    CHECK(one[123 * 300 + 45] == snip::iou(a[123], b[45]));
}

TEST_CASE("iou_matrix: strided views, mixed containers, empty inputs, errors") {
    const auto a = random_boxes<float>(11, 23, false);
    const auto b = random_boxes<float>(12, 9, false);
    const std::ptrdiff_t n = 23;
    std::vector<float> cm(4 * n);  // column-major 4 x N
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        cm[std::size_t(i)] = a[std::size_t(i)].x1;
        cm[std::size_t(n + i)] = a[std::size_t(i)].y1;
        cm[std::size_t(2 * n + i)] = a[std::size_t(i)].x2;
        cm[std::size_t(3 * n + i)] = a[std::size_t(i)].y2;
    }
    snip::box_view<float> va(cm.data(), n, 1, n);
    std::vector<float> flat_b;
    for (const auto& x : b) flat_b.insert(flat_b.end(), {x.x1, x.y1, x.x2, x.y2});
    const auto expect = snip::iou_matrix(a, b);
    CHECK(snip::iou_matrix(va, b) == expect);
    CHECK(snip::iou_matrix(snip::box_view<const float>(va), flat_b) == expect);
    std::vector<float> out(expect.size());
    snip::iou_matrix(va, snip::as_box_view(flat_b), out);
    CHECK(out == expect);

    std::vector<box<float>> none;
    CHECK(snip::iou_matrix(none, b).empty());
    CHECK(snip::iou_matrix(a, none).empty());
    std::vector<float> small(3);
    CHECK_THROWS_WITH_AS(snip::iou_matrix(a, b, small), doctest::Contains("output holds 3 values for 23 x 9 boxes"),
                         snip::error);
}

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

// ---------------------------------------------------------------------------------------
// Sampling

TEST_CASE("sampling: at most fg_fraction * batch positives, batch in total, reproducible") {
    std::vector<std::int8_t> base(5000, -1);
    for (std::size_t i = 0; i < 300; ++i) base[i * 14] = 1;       // 300 positives (even)
    for (std::size_t i = 0; i < 2000; ++i) base[i * 2 + 1] = 0;   // 2000 negatives (odd)
    std::size_t p0 = 0, n0 = 0;
    for (auto l : base) p0 += l == 1, n0 += l == 0;

    auto s1 = base, s2 = base, s3 = base;
    const auto c1 = snip::sample_labels(s1, 256, 0.5, 42);
    snip::sample_labels(s2, 256, 0.5, 42);
    snip::sample_labels(s3, 256, 0.5, 43);
    CHECK(c1 == snip::label_counts{128, 128, 5000 - 256});
    CHECK(s1 == s2);
    CHECK(s1 != s3);
    for (std::size_t i = 0; i < base.size(); ++i) {
        if (s1[i] != -1) CHECK(s1[i] == base[i]);  // only disables, never relabels
    }

    SUBCASE("few positives: negatives fill the batch") {
        std::vector<std::int8_t> l(1000, 0);
        l[3] = l[10] = l[500] = 1;
        const auto c = snip::sample_labels(l, 256, 0.5, 1);
        CHECK(c == snip::label_counts{3, 253, 744});
        CHECK(l[3] == 1);
        CHECK(l[500] == 1);
    }
    SUBCASE("under the caps nothing changes") {
        std::vector<std::int8_t> l = {1, 0, -1, 0, 1};
        CHECK(snip::sample_labels(l, 256, 0.5, 9) == snip::label_counts{2, 2, 1});
        CHECK(l == L{1, 0, -1, 0, 1});
    }
    SUBCASE("every positive survives for some seed (uniform choice)") {
        std::vector<int> kept(base.size(), 0);
        for (std::uint64_t seed = 0; seed < 100; ++seed) {
            auto l = base;
            snip::sample_labels(l, 256, 0.5, seed);
            for (std::size_t i = 0; i < l.size(); ++i) kept[i] += l[i] == 1;
        }
        int lo = 1000, hi = 0;
        for (std::size_t i = 0; i < base.size(); ++i)
            if (base[i] == 1) lo = std::min(lo, kept[i]), hi = std::max(hi, kept[i]);
        CHECK(lo > 20);  // expected 100 * 128 / 300 = 42.7 each
        CHECK(hi < 70);
    }
    SUBCASE("fg_fraction 0 and 1, batch 0") {
        auto l = base;
        CHECK(snip::sample_labels(l, 256, 0.0, 5) == snip::label_counts{0, 256, 5000 - 256});
        l = base;
        CHECK(snip::sample_labels(l, 256, 1.0, 5) == snip::label_counts{256, 0, 5000 - 256});
        l = base;
        CHECK(snip::sample_labels(l, 0, 0.5, 5) == snip::label_counts{0, 0, 5000});
    }
    CHECK(p0 == 300);
    CHECK(n0 == 2000);
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
    CHECK(a.counts.positive <= 128);
    CHECK(a.counts.positive + a.counts.negative == 256);
    auto nos = o;
    nos.batch = 0;
    const auto full = snip::assign_rpn(anchors, gt, st, nos, 1234);
    CHECK(full.counts.positive + full.counts.negative > 256);
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
