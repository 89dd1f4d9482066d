// det_test_util.hpp: what the tests of det/iou.hpp, det/rpn_targets.hpp and
// det/rcnn_targets.hpp share: the textbook IoU in T and in double, and seeded random boxes
// and gt states.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/gt_state.hpp>
#include <snip/core/random.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <vector>

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

} // namespace snip::reference

namespace {

using snip::box;
using snip::gt_state;

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

inline std::vector<gt_state> random_states(std::uint64_t seed, std::size_t n) {
    snip::splitmix64 g{seed};
    std::vector<gt_state> s(n);
    for (auto& x : s) {
        const auto r = g.below(10);
        x = r < 6 ? gt_state::valid : r < 9 ? gt_state::invalid : gt_state::crowd;
    }
    return s;
}

} // namespace
