// negatives.hpp: proposal-driven negative chips and their seeded per-epoch sampling.
//
// SNIPER mines negative chips from the proposals of a briefly trained RPN: at each
// scale, proposals in the scale's range that no positive chip covers are covered
// greedily with chips of the same candidate set; a chip is kept when it holds more
// than `min_proposals_finest` (finest scale) or `min_proposals_other` proposals
// (data_workers.py box_assigner, :452-594 of the original).
// Proposals and ground truth are xyxy, continuous, ORIGINAL pixels.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/random.hpp>
#include <snip/sniper/cover.hpp>
#include <snip/sniper/plan.hpp>
#include <snip/core/valid_range.hpp>
#include <snip/core/views.hpp>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <type_traits>
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

// epoch_stride (the per-epoch stride draw) lives in plan.hpp, which this header includes.

/// @brief Mining candidates of one scale: the original's filter for boxes in the
/// negative pass. Non-coarsest scales test only the upper bound (plus the max-side
/// rule and w, h >= finest_min_side); the coarsest only the lower bound.
inline scale_filter mining_filter(const plan_config& cfg, std::size_t s, double factor,
                                  int stride_used) {
    require(s < cfg.scales.size() && s < cfg.ranges.size(), "mining_filter: scale index ", s,
            " but the config has ", cfg.scales.size(), " scales and ", cfg.ranges.size(),
            " valid ranges");
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
/// @param plan the image's positive plan (from plan_image with the same config, image
///        size and stride; a plan of another config or image throws snip::error).
/// @param proposals detector proposals, xyxy continuous, original px.
/// @param gt ground-truth boxes of the image (the original mines over ground truth and
///        proposals together; pass an empty view to mine proposals only).
/// @param stride_used as in plan_image (0 = epoch_stride(cfg, 0, 0)).
/// Mining candidates are the proposals followed by the ground truth (candidate i <
/// proposals.size() is proposal i, otherwise gt box i - proposals.size()). A chip is kept
/// when it counts more than min_proposals_finest (finest scale) or min_proposals_other
/// candidates of either kind, as the original (data_workers.py:577-578). In the result,
/// `chip::boxes` lists the GROUND-TRUTH indices the miner assigned to the chip (so
/// assign_chip marks only those valid, as the original's `np.intersect1d(gtids, nids)`,
/// data_workers.py:213) and `chip::proposals` the proposal indices.
template <class T, class U>
std::vector<chip> mine_negatives(const plan_config& cfg, int width, int height,
                                 const image_plan& plan, box_view<const T> proposals,
                                 box_view<const U> gt, plan_workspace& ws, int stride_used = 0) {
    cfg.validate("mine_negatives: config");
    require(width > 0 && height > 0, "mine_negatives: image size must be positive, got ", width,
            "x", height);
    if (stride_used == 0) stride_used = epoch_stride(cfg, 0, 0);
    cfg.validate_stride(stride_used, "mine_negatives");
    require(plan.scales.size() == cfg.scales.size(), "mine_negatives: the plan has ",
            plan.scales.size(), " scales but the config has ", cfg.scales.size(),
            " (a plan of another config?)");
    for (std::size_t s = 0; s < cfg.scales.size(); ++s) {
        const scaled_image want = scale_image(cfg.scales[s], width, height);
        const scaled_image& got = plan.scales[s].size;
        require(got.width == want.width && got.height == want.height, "mine_negatives: plan scale ",
                s, " is ", got.width, " x ", got.height, " px but the config sizes this ", width,
                " x ", height, " image to ", want.width, " x ", want.height,
                " (a plan of another image or config?)");
    }
    for (std::size_t k = 0; k < plan.positives.size(); ++k) {
        const int sc = plan.positives[k].scale;
        require(sc >= 0 && static_cast<std::size_t>(sc) < cfg.scales.size(),
                "mine_negatives: plan positive chip ", k, " has scale ", sc, " but the config has ",
                cfg.scales.size(), " scales");
    }
    validate_boxes(proposals, "mine_negatives: proposals");
    validate_boxes(gt, "mine_negatives: gt");
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
        // data_workers.py:577-578: more than 25 at the finest scale, more than 10 elsewhere.
        const int need = s == 0 ? cfg.min_proposals_finest : cfg.min_proposals_other;
        for (std::size_t k = 0; k < neg.size(); ++k) {
            if (static_cast<int>(held[k].size()) <= need) continue;
            chip c{int(s), sz.factor, cr.chips[k], {}, {}};
            for (int i : held[k]) {  // increasing: proposals first, then ground truth
                if (static_cast<std::size_t>(i) < np)
                    c.proposals.push_back(i);
                else
                    c.boxes.push_back(i - static_cast<int>(np));
            }
            out.push_back(std::move(c));
        }
    }
    return out;
}

/// @brief The number of mining candidates a negative chip counted (its proposals and the
/// @brief Mutable views (of proposals, ground truth or both) are read as const ones.
template <class T, class U>
    requires(!std::is_const_v<T> || !std::is_const_v<U>)
std::vector<chip> mine_negatives(const plan_config& cfg, int width, int height,
                                 const image_plan& plan, box_view<T> proposals, box_view<U> gt,
                                 plan_workspace& ws, int stride_used = 0) {
    return mine_negatives(cfg, width, height, plan,
                          box_view<const std::remove_const_t<T>>(proposals),
                          box_view<const std::remove_const_t<U>>(gt), ws, stride_used);
}

/// ground truth it was assigned), the number its keep rule tested.
inline std::size_t mined_count(const chip& c) { return c.proposals.size() + c.boxes.size(); }

/// @brief Picks this epoch's negative chips of one image: `count` of `available`
/// without replacement, uniformly, from a generator seeded by (seed, epoch, image id).
/// Returns the chosen indices in increasing order; all of them when available <= count.
/// Throws snip::error for a negative count or epoch, or more chips than an int indexes.
inline std::vector<int> sample_negatives(std::size_t available, int count, std::uint64_t seed,
                                         int epoch, std::int64_t image_id) {
    require(count >= 0, "sample_negatives: count must be >= 0, got ", count);
    require(epoch >= 0, "sample_negatives: epoch must be >= 0, got ", epoch);
    require(available <= static_cast<std::size_t>(INT_MAX), "sample_negatives: ", available,
            " chips available, more than an int indexes");
    std::vector<int> idx(available);
    for (std::size_t i = 0; i < available; ++i) idx[i] = static_cast<int>(i);
    if (available <= static_cast<std::size_t>(count)) return idx;
    splitmix64 g{mix(mix(seed, static_cast<std::uint64_t>(epoch)),
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
