// negatives.hpp: proposal-driven negative chips and their seeded per-epoch sampling.
//
// SNIPER mines negative chips from the proposals of a briefly trained RPN: at each
// scale, proposals in the scale's range that no positive chip covers are covered
// greedily with chips of the same candidate set; a chip is kept when it holds more
// than `min_proposals_finest` (finest scale) or `min_proposals_other` proposals.
// Proposals and ground truth are xyxy, continuous, ORIGINAL pixels.
#pragma once

#include <snip/box.hpp>
#include <snip/detail/random.hpp>
#include <snip/chips.hpp>
#include <snip/plan.hpp>
#include <snip/valid_range.hpp>
#include <snip/views.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace snip {

namespace detail {

/// Intersection over the box's area with the original code's +1 pixel extents under the
/// inclusive convention.
inline double overlap_over_box(const box<double>& c, const box<double>& b, double e) {
    const double iw = std::min(c.x2, b.x2) - std::max(c.x1, b.x1) + e;
    const double ih = std::min(c.y2, b.y2) - std::max(c.y1, b.y1) + e;
    if (iw <= 0 || ih <= 0) return 0.0;
    const double ab = (b.x2 - b.x1 + e) * (b.y2 - b.y1 + e);
    return ab > 0 ? iw * ih / ab : 0.0;
}

/// Index of the chip with the largest overlap_over_box (first one on ties; 0 if all are 0).
inline std::size_t best_chip(const std::vector<box<double>>& chips, const box<double>& b, double e) {
    std::size_t best = 0;
    double bo = -1.0;
    for (std::size_t k = 0; k < chips.size(); ++k) {
        const double o = overlap_over_box(chips[k], b, e);
        if (o > bo) bo = o, best = k;
    }
    return best;
}

/// The original's test of a box against the chip it overlaps most: the clipped part
/// must be at least one pixel on each side and, measured as sqrt(area) in original
/// pixels, <= hi (or < hi when `strict_hi`) at non-coarsest scales and >= lo at the
/// coarsest.
inline bool clipped_in_range(const box<double>& c, const box<double>& b, const valid_range& r,
                             bool coarsest, bool strict_hi) {
    const box<double> i = intersection(c, b);
    const double w = i.x2 - i.x1, h = i.y2 - i.y1;
    if (!(w >= 1.0 && h >= 1.0)) return false;
    const double s = std::sqrt(std::abs(w * h));
    if (coarsest) return !r.has_lo() || s >= r.lo;
    if (!r.has_hi()) return true;
    return strict_hi ? s < r.hi : s <= r.hi;
}

} // namespace detail

/// @brief The epoch's candidate stride: cfg.stride, or a seeded draw from
/// [stride_min, stride_max] (the released SNIPER code draws 56..59 every epoch).
inline int epoch_stride(const plan_config& cfg, std::uint64_t seed, int epoch) {
    if (cfg.stride_min <= 0) return cfg.stride;
    detail::splitmix64 g{detail::mix(seed, 0x5354524944ull + static_cast<std::uint64_t>(epoch))};
    return cfg.stride_min +
           static_cast<int>(g.below(static_cast<std::uint64_t>(cfg.stride_max - cfg.stride_min + 1)));
}

/// @brief Mining candidates of one scale: the original's filter for boxes in the
/// negative pass. Non-coarsest scales test only the upper bound (plus the max-side
/// rule and w, h >= finest_min_side); the coarsest only the lower bound.
inline scale_filter mining_filter(const plan_config& cfg, std::size_t s, double factor,
                                  int stride_used) {
    scale_filter f;
    f.factor = factor;
    const bool coarsest = s + 1 == cfg.scales.size();
    if (coarsest) {
        f.range = {cfg.ranges[s].lo, -1.0};
    } else {
        f.range = {-1.0, cfg.ranges[s].hi};
        f.min_side = cfg.finest_min_side;
        if (cfg.max_side_rule) f.max_side_scaled = double(cfg.chip_size - stride_used - 1);
    }
    return f;
}

/// @brief Negative chips of one image (all scales), before sampling.
/// @param plan the image's positive plan (from plan_image with the same stride).
/// @param proposals detector proposals, xyxy continuous, original px.
/// @param gt ground-truth boxes of the image (the original mines over ground truth and
///        proposals together; pass an empty view to mine proposals only).
/// @return chips whose `boxes` list the candidates counted in them: index i <
///         proposals.size() is a proposal, otherwise ground-truth box i - proposals.size().
template <class T, class U>
std::vector<chip> mine_negatives(const plan_config& cfg, int width, int height,
                                 const image_plan& plan, box_view<const T> proposals,
                                 box_view<const U> gt, plan_workspace& ws, int stride_used = 0) {
    if (stride_used <= 0) stride_used = cfg.stride;
    const std::size_t np = static_cast<std::size_t>(proposals.size());
    const std::size_t n = np + static_cast<std::size_t>(gt.size());
    std::vector<box<double>> cand(n);
    for (std::size_t i = 0; i < n; ++i) {
        const box<double> b = i < np ? proposals[static_cast<std::ptrdiff_t>(i)].template cast<double>()
                                     : gt[static_cast<std::ptrdiff_t>(i - np)].template cast<double>();
        cand[i] = to_convention(b, width, height, cfg.convention);
    }
    const double e = cfg.convention == pixel_convention::inclusive ? 1.0 : 0.0;
    std::vector<chip> out;
    std::vector<box<double>> pos, neg;
    std::vector<int> rem;
    for (std::size_t s = 0; s < cfg.scales.size(); ++s) {
        const scaled_image& sz = plan.scales[s].size;
        if (sz.width <= 0 || sz.height <= 0) continue;
        const bool coarsest = s + 1 == cfg.scales.size();
        const scale_filter f = mining_filter(cfg, s, sz.factor, stride_used);
        pos.clear();
        for (const auto& c : plan.positives)
            if (c.scale == int(s)) pos.push_back(c.original());
        // Candidates in range that no positive chip covers.
        rem.clear();
        for (std::size_t i = 0; i < n; ++i) {
            if (!f.accepts(size_of(cand[i], cfg.convention))) continue;
            if (!pos.empty()) {
                const auto& c = pos[detail::best_chip(pos, cand[i], e)];
                if (detail::clipped_in_range(c, cand[i], cfg.ranges[s], coarsest, false)) continue;
            }
            rem.push_back(static_cast<int>(i));
        }
        if (rem.empty()) continue;
        ws.scaled.clear();
        const double mx = sz.width - e, my = sz.height - e;
        for (int i : rem)
            ws.scaled.push_back(clip(scale(cand[static_cast<std::size_t>(i)], sz.factor), mx, my)
                                    .template cast<float>());
        const chip_grid& grid =
            ws.grids.get(cfg.layout, sz.width, sz.height, cfg.chip_size, stride_used, cfg.convention);
        const cover_result cr = greedy_cover(grid, as_box_view(std::as_const(ws.scaled)), ws.cover);
        if (cr.chips.empty()) continue;
        neg.clear();
        for (const auto& r : cr.chips)
            neg.push_back({r.x1 / sz.factor, r.y1 / sz.factor, r.x2 / sz.factor, r.y2 / sz.factor});
        std::vector<std::vector<int>> held(neg.size());
        for (int i : rem) {
            const auto& b = cand[static_cast<std::size_t>(i)];
            const std::size_t k = detail::best_chip(neg, b, e);
            if (detail::clipped_in_range(neg[k], b, cfg.ranges[s], coarsest, true))
                held[k].push_back(i);
        }
        const int need = s == 0 ? cfg.min_proposals_finest : cfg.min_proposals_other;
        for (std::size_t k = 0; k < neg.size(); ++k)
            if (static_cast<int>(held[k].size()) > need)
                out.push_back({int(s), sz.factor, cr.chips[k], std::move(held[k])});
    }
    return out;
}

/// @brief Picks this epoch's negative chips of one image: `count` of `available`
/// without replacement, uniformly, from a generator seeded by (seed, epoch, image id).
/// Returns the chosen indices in increasing order; all of them when available <= count.
inline std::vector<int> sample_negatives(std::size_t available, int count, std::uint64_t seed,
                                         int epoch, std::int64_t image_id) {
    std::vector<int> idx(available);
    for (std::size_t i = 0; i < available; ++i) idx[i] = static_cast<int>(i);
    if (count < 0) count = 0;
    if (available <= static_cast<std::size_t>(count)) return idx;
    detail::splitmix64 g{detail::mix(detail::mix(seed, static_cast<std::uint64_t>(epoch)),
                                     static_cast<std::uint64_t>(image_id))};
    for (int i = 0; i < count; ++i) {  // partial Fisher-Yates
        const auto j = static_cast<std::size_t>(i) + g.below(available - static_cast<std::size_t>(i));
        std::swap(idx[static_cast<std::size_t>(i)], idx[j]);
    }
    idx.resize(static_cast<std::size_t>(count));
    std::sort(idx.begin(), idx.end());
    return idx;
}

} // namespace snip
