// rpn_targets.hpp: RPN anchor labels with SNIPER's rules (0.4 / 0.5 thresholds, best
// anchor of each gt, 0.3 ignore around invalid and crowd boxes) and assign_rpn, which
// labels then samples (sampling.hpp) a chip's anchors.
//
// All boxes of one call are xyxy in the same image's pixels (for SNIPER: the chip's
// scaled pixels, origin at the chip's top-left corner). `pixel_convention::inclusive`
// gives every box x2 - x1 + 1 pixels per side (the original code's bbox_overlaps);
// `continuous` (the default) x2 - x1.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/core/gt_state.hpp>
#include <snip/core/parallel.hpp>
#include <snip/core/views.hpp>
#include <snip/det/iou.hpp>
#include <snip/det/sampling.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

namespace snip {

namespace detail {

/// max(0, v[0..n)) with eight independent accumulators (no serial dependency chain).
template <class T>
inline T max_of(const T* v, std::size_t n) {
    T m[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) m[l] = max_(m[l], v[i + std::size_t(l)]);
    T r = T(0);
    for (int l = 0; l < 8; ++l) r = max_(r, m[l]);
    for (; i < n; ++i) r = max_(r, v[i]);
    return r;
}

} // namespace detail

/// @brief How a crowd region is compared with an anchor.
enum class overlap_measure {
    iou,              ///< intersection over union
    anchor_fraction   ///< intersection over the anchor's area (Detectron's crowd rule)
};

/// @brief RPN label rules; the defaults are SNIPER's (thresholds compared in the boxes'
/// element type, so an IoU of exactly 0.3 is not "> 0.3" in float either).
struct rpn_options {
    /// Negative (0) when the max IoU over valid gt is below this.
    double negative_below = 0.4;
    /// Positive (1) when the max IoU over valid gt is at least this.
    double positive_from = 0.5;
    /// Every valid gt's best anchors are positive (all anchors tied at its max IoU, when > 0).
    bool best_anchor_positive = true;
    /// Ignored (-1) when the IoU with any INVALID gt is above this (overrides positive).
    double ignore_invalid_above = 0.3;
    /// Ignored (-1) when the overlap with any CROWD gt is above this (overrides positive).
    double ignore_crowd_above = 0.3;
    overlap_measure crowd_measure = overlap_measure::iou;
    /// Sampling (assign_rpn): at most `batch` labelled anchors, at most
    /// floor(fg_fraction * batch) of them positive; 0 = no sampling.
    int batch = 256;
    double fg_fraction = 0.5;
    pixel_convention convention = pixel_convention::continuous;
    /// Threads for the overlap pass (0 = snip::default_threads()); work is split only in
    /// blocks of >= 2^19 anchor-gt pairs, so one chip's labels use one thread.
    unsigned threads = 0;

    /// SNIPER's rules with its inclusive (+1) overlaps.
    static rpn_options sniper() {
        rpn_options o;
        o.convention = pixel_convention::inclusive;
        return o;
    }

    /// @throws snip::error naming the first bad value (NaN or outside [0, 1] thresholds,
    /// negative_below > positive_from, batch < 0, fg_fraction outside [0, 1]).
    void validate() const {
        detail::check_unit_threshold("rpn_options", "negative_below", negative_below);
        detail::check_unit_threshold("rpn_options", "positive_from", positive_from);
        detail::check_unit_threshold("rpn_options", "ignore_invalid_above", ignore_invalid_above);
        detail::check_unit_threshold("rpn_options", "ignore_crowd_above", ignore_crowd_above);
        require(negative_below <= positive_from, "rpn_options: negative_below ", negative_below,
                " must not exceed positive_from ", positive_from);
        detail::check_sampling("rpn_options", batch, fg_fraction);
    }
};

/// @brief Reusable buffers of assign_rpn_labels (no allocation once sized for a chip).
template <class T>
struct rpn_workspace {
    /// Per parallel block: the IoU column of one gt over a tile, best IoU / argmax and
    /// ignore flags of the tile's anchors.
    struct block {
        std::vector<T> col, best;
        std::vector<std::int32_t> arg;
        std::vector<std::uint8_t> ignored;
    };
    detail::box_columns<T> anchors, valid, ignore;
    std::vector<std::uint8_t> ignore_is_crowd;
    std::vector<block> blocks;
    std::vector<T> tile_max;  ///< per tile and valid gt: best IoU within the tile
    std::vector<T> gt_max;    ///< per valid gt: best IoU over all anchors
};

/// @brief Labels anchors for the RPN, SNIPER's way. Rules, in the order they apply:
///  1. For each anchor: its max IoU over the VALID gt (0 when there is none) and
///     matched[i] = index (into `gt`) of the first valid gt reaching it, -1 when no gt is
///     valid. label = 0 if max < negative_below, else -1.
///  2. best anchor: for each valid gt whose best IoU over all anchors m is > 0, every
///     anchor whose IoU with it equals m exactly is 1 (all ties, as py-faster-rcnn's
///     `overlaps == gt_max_overlaps`; a gt no anchor touches marks nothing, where
///     py-faster-rcnn would mark every anchor with IoU 0). The anchor's matched gt stays
///     its argmax in 1, as in py-faster-rcnn.
///  3. label = 1 if max >= positive_from.
///  4. label = -1 if the IoU with any INVALID gt is > ignore_invalid_above, or the overlap
///     (opt.crowd_measure) with any CROWD gt is > ignore_crowd_above: overrides 1 and 0.
/// @param anchors N boxes, @param gt K boxes (same element type T, same image pixels).
/// @param states per-gt snip::gt_state (K entries; empty = all valid).
/// @param labels N outputs: 1 / 0 / -1. @param matched N outputs (or empty to skip).
/// @return the counts of each label.
template <detail::readable_boxes A, detail::readable_boxes G>
label_counts assign_rpn_labels(const A& anchors, const G& gt, std::span<const gt_state> states,
                               std::span<std::int8_t> labels, std::span<std::int32_t> matched,
                               const rpn_options& opt = {},
                               rpn_workspace<detail::box_value_t<A>>* ws = nullptr) {
    using T = detail::box_value_t<A>;
    static_assert(std::is_floating_point_v<T>, "assign_rpn_labels: boxes must hold floating-point values");
    static_assert(std::is_same_v<detail::box_value_t<G>, T>,
                  "assign_rpn_labels: anchors and gt must hold the same element type");
    opt.validate();
    const auto av = detail::const_boxes(anchors);
    const auto gv = detail::const_boxes(gt);
    const std::ptrdiff_t N = av.size(), K = gv.size();
    require(states.empty() || states.size() == static_cast<std::size_t>(K), "assign_rpn_labels: ",
            states.size(), " gt states for ", K, " gt boxes");
    require(labels.size() == static_cast<std::size_t>(N), "assign_rpn_labels: labels hold ",
            labels.size(), " entries for ", N, " anchors");
    require(matched.empty() || matched.size() == static_cast<std::size_t>(N),
            "assign_rpn_labels: matched holds ", matched.size(), " entries for ", N, " anchors");
    rpn_workspace<T> local;
    rpn_workspace<T>& w = ws ? *ws : local;
    const T e = detail::convention_extra<T>(opt.convention);

    w.valid.clear();
    w.ignore.clear();
    w.ignore_is_crowd.clear();
    for (std::ptrdiff_t g = 0; g < K; ++g) {
        const gt_state s = states.empty() ? gt_state::valid : states[static_cast<std::size_t>(g)];
        (s == gt_state::valid ? w.valid : w.ignore).push(gv[g], e, static_cast<std::int32_t>(g));
        if (s != gt_state::valid) w.ignore_is_crowd.push_back(s == gt_state::crowd ? 1 : 0);
    }
    if (N == 0) return {};
    const std::size_t KV = w.valid.size(), KI = w.ignore.size();
    const T neg = T(opt.negative_below), pos = T(opt.positive_from);
    const T thr_invalid = T(opt.ignore_invalid_above), thr_crowd = T(opt.ignore_crowd_above);
    const bool crowd_fraction = opt.crowd_measure == overlap_measure::anchor_fraction;
    constexpr std::int8_t ignored_by_region = -2;  // temporary: ignore overrides best-anchor

    // Anchors are processed in tiles of `tile`: for each gt, one vectorised IoU column over
    // the tile updates every anchor's best IoU / argmax and the tile's best IoU for that gt.
    constexpr std::ptrdiff_t tile = 256;
    const std::ptrdiff_t ntiles = (N + tile - 1) / tile;
    // Parallel blocks of >= 2^19 anchor-gt pairs (~0.3 ms): one SNIPER chip (21,504
    // anchors, 20 gt) stays on the calling thread, where a thread start would cost more
    // than it saves; full-image grids are split.
    const std::ptrdiff_t grain = tile * std::max<std::ptrdiff_t>(
        1, (std::ptrdiff_t(1) << 19) / (tile * std::max<std::ptrdiff_t>(1, static_cast<std::ptrdiff_t>(KV + KI))));
    const auto nblocks = static_cast<std::size_t>((N + grain - 1) / grain);
    auto& cols = w.anchors;
    for (auto* v : {&cols.x1, &cols.y1, &cols.x2, &cols.y2, &cols.area}) v->resize(static_cast<std::size_t>(N));
    w.tile_max.resize(static_cast<std::size_t>(ntiles) * KV);
    if (w.blocks.size() < nblocks) w.blocks.resize(nblocks);
    for (std::size_t b = 0; b < nblocks; ++b) {
        auto& blk = w.blocks[b];
        blk.col.resize(tile), blk.best.resize(tile), blk.arg.resize(tile), blk.ignored.resize(tile);
    }

    detail::parallel_for(
        N, grain,
        [&](std::ptrdiff_t b0, std::ptrdiff_t b1) {
            auto& blk = w.blocks[static_cast<std::size_t>(b0 / grain)];
            T* col = blk.col.data();
            T* best = blk.best.data();
            std::int32_t* arg = blk.arg.data();
            std::uint8_t* ign = blk.ignored.data();
            for (std::ptrdiff_t t0 = b0; t0 < b1; t0 += tile) {
                const auto n = static_cast<std::size_t>(std::min(tile, b1 - t0));
                const auto o = static_cast<std::size_t>(t0);
                for (std::size_t i = 0; i < n; ++i) {
                    const box<T> a = av[t0 + static_cast<std::ptrdiff_t>(i)];
                    cols.x1[o + i] = a.x1, cols.y1[o + i] = a.y1, cols.x2[o + i] = a.x2, cols.y2[o + i] = a.y2;
                    cols.area[o + i] = detail::extent_area(a, e);
                }
                const T *x1 = cols.x1.data() + o, *y1 = cols.y1.data() + o, *x2 = cols.x2.data() + o,
                        *y2 = cols.y2.data() + o, *ar = cols.area.data() + o;
                std::fill(best, best + n, T(0));
                std::fill(arg, arg + n, std::int32_t(0));
                T* tmax = w.tile_max.data() + static_cast<std::size_t>(t0 / tile) * KV;
                for (std::size_t j = 0; j < KV; ++j) {
                    const box<T> g{w.valid.x1[j], w.valid.y1[j], w.valid.x2[j], w.valid.y2[j]};
                    detail::iou_column(g, e, x1, y1, x2, y2, ar, n, col);
                    const auto jj = static_cast<std::int32_t>(j);
                    for (std::size_t i = 0; i < n; ++i) {  // first maximum wins, as argmax
                        const std::int32_t m = -static_cast<std::int32_t>(col[i] > best[i]);
                        arg[i] = (arg[i] & ~m) | (jj & m);
                        best[i] = detail::max_(best[i], col[i]);
                    }
                    tmax[j] = detail::max_of(col, n);
                }
                std::fill(ign, ign + n, std::uint8_t(0));
                for (std::size_t k = 0; k < KI; ++k) {
                    const box<T> r{w.ignore.x1[k], w.ignore.y1[k], w.ignore.x2[k], w.ignore.y2[k]};
                    const bool crowd = w.ignore_is_crowd[k] != 0;
                    if (crowd && crowd_fraction)
                        detail::fraction_column(r, e, x1, y1, x2, y2, ar, n, col);
                    else
                        detail::iou_column(r, e, x1, y1, x2, y2, ar, n, col);
                    const T thr = crowd ? thr_crowd : thr_invalid;
                    for (std::size_t i = 0; i < n; ++i) ign[i] |= static_cast<std::uint8_t>(col[i] > thr);
                }
                for (std::size_t i = 0; i < n; ++i) {
                    std::int8_t l = best[i] < neg ? std::int8_t(0) : std::int8_t(-1);
                    if (best[i] >= pos) l = 1;
                    labels[o + i] = ign[i] ? ignored_by_region : l;
                    if (!matched.empty())
                        matched[o + i] = KV ? w.valid.source[static_cast<std::size_t>(arg[i])] : -1;
                }
            }
        },
        opt.threads);

    if (opt.best_anchor_positive && KV) {
        // Each valid gt's best IoU over all anchors; only tiles reaching it are rescanned.
        w.gt_max.assign(KV, T(0));
        for (std::ptrdiff_t t = 0; t < ntiles; ++t)
            for (std::size_t j = 0; j < KV; ++j)
                w.gt_max[j] = detail::max_(w.gt_max[j], w.tile_max[static_cast<std::size_t>(t) * KV + j]);
        T* col = w.blocks[0].col.data();
        for (std::ptrdiff_t t = 0; t < ntiles; ++t) {
            const auto o = static_cast<std::size_t>(t * tile);
            const auto n = static_cast<std::size_t>(std::min(tile, N - t * tile));
            for (std::size_t j = 0; j < KV; ++j) {
                const T m = w.gt_max[j];
                if (!(m > T(0)) || w.tile_max[static_cast<std::size_t>(t) * KV + j] != m) continue;
                const box<T> g{w.valid.x1[j], w.valid.y1[j], w.valid.x2[j], w.valid.y2[j]};
                detail::iou_column(g, e, cols.x1.data() + o, cols.y1.data() + o, cols.x2.data() + o,
                                   cols.y2.data() + o, cols.area.data() + o, n, col);
                for (std::size_t i = 0; i < n; ++i)
                    if (col[i] == m && labels[o + i] != ignored_by_region) labels[o + i] = 1;
            }
        }
    }
    label_counts c;
    for (auto& l : labels) {
        if (l == ignored_by_region) l = -1;
        if (l == 1) ++c.positive;
        else if (l == 0) ++c.negative;
        else ++c.ignored;
    }
    return c;
}

/// @brief Labels, matched gt and counts of one chip's anchors.
struct rpn_assignment {
    std::vector<std::int8_t> labels;    ///< 1 / 0 / -1 per anchor
    std::vector<std::int32_t> matched;  ///< index into gt of the best valid gt, -1 if none
    label_counts counts;                ///< after sampling
};

/// @brief assign_rpn_labels, then sample_labels(opt.batch, opt.fg_fraction, seed) unless
/// opt.batch is 0. Same seed, same inputs: same labels, on every platform.
template <detail::readable_boxes A, detail::readable_boxes G>
rpn_assignment assign_rpn(const A& anchors, const G& gt, std::span<const gt_state> states,
                          const rpn_options& opt = {}, std::uint64_t seed = 0) {
    const auto n = static_cast<std::size_t>(detail::const_boxes(anchors).size());
    rpn_assignment r;
    r.labels.resize(n);
    r.matched.resize(n);
    r.counts = assign_rpn_labels(anchors, gt, states, std::span<std::int8_t>(r.labels),
                                 std::span<std::int32_t>(r.matched), opt);
    if (opt.batch > 0)
        r.counts = sample_labels(std::span<std::int8_t>(r.labels), opt.batch, opt.fg_fraction, seed);
    return r;
}

} // namespace snip
