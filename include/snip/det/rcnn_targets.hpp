// rcnn_targets.hpp: RCNN proposal targets of one chip: proposals filtered by the valid
// range, valid gt appended, labels by IoU with the labelling gt, class-agnostic regression
// deltas (box_coder.hpp) and seeded foreground / background sampling.
//
// All boxes of one call are xyxy in the same image's pixels (for SNIPER: the chip's
// scaled pixels, origin at the chip's top-left corner). `pixel_convention::inclusive`
// gives every box x2 - x1 + 1 pixels per side (the original code's bbox_overlaps);
// `continuous` (the default) x2 - x1.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/core/gt_state.hpp>
#include <snip/core/random.hpp>
#include <snip/core/valid_range.hpp>
#include <snip/core/views.hpp>
#include <snip/det/box_coder.hpp>
#include <snip/det/iou.hpp>
#include <snip/det/sampling.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

namespace snip {

/// @brief RCNN target rules; the defaults are SNIPER's (no sampling: every kept proposal
/// is used).
struct rcnn_options {
    /// Proposals are kept when sqrt((x2-x1)*(y2-y1)) / range_factor is in `range`
    /// (lo inclusive, hi exclusive; -1 open), as SNIPER's proposal filter (no +1 there).
    valid_range range{};
    /// Proposal pixels per unit of `range`: the chip's scale factor when the range is in
    /// original-image pixels, 1 when it is already in chip pixels.
    double range_factor = 1.0;
    /// Append the VALID gt boxes after the kept proposals.
    bool append_gt = true;
    /// Foreground when the max IoU with a labelling gt is > fg_iou (strictly).
    double fg_iou = 0.5;
    /// INVALID gt label proposals too (SNIPER matches every non-crowd gt of the chip);
    /// crowd gt never label.
    bool match_invalid_gt = true;
    /// Class-agnostic regression targets: (d - mean) / std, order dx, dy, dw, dh.
    double means[4] = {0, 0, 0, 0};
    double stds[4] = {0.1, 0.1, 0.2, 0.2};
    /// Sampling: 0 keeps every RoI; else at most `batch` RoIs, at most
    /// floor(fg_fraction * batch) foreground, the rest background.
    int batch = 0;
    double fg_fraction = 0.25;
    pixel_convention convention = pixel_convention::continuous;

    /// SNIPER's rules with inclusive (+1) overlaps and widths.
    static rcnn_options sniper() {
        rcnn_options o;
        o.convention = pixel_convention::inclusive;
        return o;
    }
    /// @throws snip::error naming the first bad value.
    void validate() const {
        range.validate("rcnn_options.range");
        require(std::isfinite(range_factor) && range_factor > 0.0,
                "rcnn_options: range_factor must be finite and > 0, got ", range_factor);
        detail::check_unit_threshold("rcnn_options", "fg_iou", fg_iou);
        detail::check_sampling("rcnn_options", batch, fg_fraction);
        const char* names[4] = {"dx", "dy", "dw", "dh"};
        for (int k = 0; k < 4; ++k) {
            require(std::isfinite(stds[k]) && stds[k] > 0.0, "rcnn_options: std of ", names[k],
                    " must be finite and > 0, got ", stds[k]);
            require(std::isfinite(means[k]), "rcnn_options: mean of ", names[k],
                    " must be finite, got ", means[k]);
        }
    }
    template <class T>
    box_coder<T> coder() const {
        box_coder<T> c;
        for (int k = 0; k < 4; ++k) c.means[k] = T(means[k]), c.stds[k] = T(stds[k]);
        c.convention = convention;
        return c;
    }
};

/// @brief The RoIs of one chip and their targets. Row r of every member belongs to rois[r].
template <class T>
struct rcnn_targets {
    std::vector<box<T>> rois;           ///< kept proposals, then appended gt (chip px)
    std::vector<std::int64_t> source;   ///< proposal index, or proposals.size() + g for gt g
    std::vector<std::int32_t> labels;   ///< class of the matched gt (>= 1), 0 = background
    std::vector<std::int32_t> matched;  ///< gt of max IoU among labelling gt, -1 if none
    std::vector<T> max_iou;             ///< that IoU
    std::vector<T> deltas;              ///< N x 4 row-major (dx, dy, dw, dh); 0 for background
    std::size_t foreground = 0;
};

/// @brief RCNN targets for the proposals of one chip (already decoded and clipped by the
/// caller, same pixels as `gt`):
///  1. proposals outside opt.range (see rcnn_options::range) are dropped; so are boxes with
///     no positive side under the convention;
///  2. with opt.append_gt, every VALID gt is appended as a RoI;
///  3. each RoI is matched to the labelling gt (valid, plus invalid when
///     opt.match_invalid_gt) of max IoU (first on ties): label = classes[g] if that IoU
///     > opt.fg_iou, else 0;
///  4. foreground RoIs get deltas box_coder(means, stds).encode(roi, gt[g]);
///  5. with opt.batch > 0, RoIs are sampled reproducibly from `seed` (input order kept).
/// @param states per-gt state (K entries or empty = all valid).
/// @param classes per-gt class ids >= 1 (K entries or empty = class 1 for all).
/// The count of RoIs depends on the data, so this returns vectors.
template <detail::readable_boxes P, detail::readable_boxes G>
rcnn_targets<detail::box_value_t<P>> rcnn_proposal_targets(
    const P& proposals, const G& gt, std::span<const gt_state> states,
    std::span<const std::int32_t> classes, const rcnn_options& opt = {}, std::uint64_t seed = 0) {
    using T = detail::box_value_t<P>;
    static_assert(std::is_floating_point_v<T>, "rcnn_proposal_targets: boxes must hold floating-point values");
    static_assert(std::is_same_v<detail::box_value_t<G>, T>,
                  "rcnn_proposal_targets: proposals and gt must hold the same element type");
    opt.validate();
    const auto pv = detail::const_boxes(proposals);
    const auto gv = detail::const_boxes(gt);
    const std::ptrdiff_t P_ = pv.size(), K = gv.size();
    require(states.empty() || states.size() == static_cast<std::size_t>(K), "rcnn_proposal_targets: ",
            states.size(), " gt states for ", K, " gt boxes");
    require(classes.empty() || classes.size() == static_cast<std::size_t>(K),
            "rcnn_proposal_targets: ", classes.size(), " gt classes for ", K, " gt boxes");
    auto state_of = [&](std::ptrdiff_t g) {
        return states.empty() ? gt_state::valid : states[static_cast<std::size_t>(g)];
    };
    const T e = detail::convention_extra<T>(opt.convention);
    detail::box_columns<T> lab;  // labelling gt
    for (std::ptrdiff_t g = 0; g < K; ++g) {
        const gt_state s = state_of(g);
        if (s == gt_state::valid || (s == gt_state::invalid && opt.match_invalid_gt)) {
            const std::int32_t c = classes.empty() ? 1 : classes[static_cast<std::size_t>(g)];
            require(c >= 1, "rcnn_proposal_targets: gt ", g, " has class ", c,
                    " (classes start at 1; 0 is background)");
            lab.push(gv[g], e, static_cast<std::int32_t>(g));
        }
    }

    rcnn_targets<T> r;
    for (std::ptrdiff_t i = 0; i < P_; ++i) {
        const box<T> b = pv[i];
        if (!(b.x2 - b.x1 + e > T(0) && b.y2 - b.y1 + e > T(0))) continue;
        const double w = double(b.x2) - double(b.x1), h = double(b.y2) - double(b.y1);
        if (!opt.range.contains(std::sqrt(std::max(0.0, w * h)) / opt.range_factor)) continue;
        r.rois.push_back(b);
        r.source.push_back(i);
    }
    if (opt.append_gt)
        for (std::ptrdiff_t g = 0; g < K; ++g)
            if (state_of(g) == gt_state::valid) {
                r.rois.push_back(gv[g]);
                r.source.push_back(P_ + g);
            }

    const std::size_t n = r.rois.size();
    r.labels.assign(n, 0);
    r.matched.assign(n, -1);
    r.max_iou.assign(n, T(0));
    r.deltas.assign(n * 4, T(0));
    const T fg = T(opt.fg_iou);
    const box_coder<T> coder = opt.coder<T>();
    std::vector<T> row(lab.size());
    for (std::size_t i = 0; i < n; ++i) {
        if (lab.size() == 0) break;
        detail::iou_row(r.rois[i], e, lab, row.data());
        std::size_t best = 0;
        for (std::size_t j = 1; j < row.size(); ++j)
            if (row[j] > row[best]) best = j;
        const std::int32_t g = lab.source[best];
        r.matched[i] = g;
        r.max_iou[i] = row[best];
        if (row[best] > fg) {
            r.labels[i] = classes.empty() ? 1 : classes[static_cast<std::size_t>(g)];
            const box_delta<T> d = coder.encode(r.rois[i], gv[g]);
            r.deltas[4 * i] = d.dx, r.deltas[4 * i + 1] = d.dy, r.deltas[4 * i + 2] = d.dw,
                         r.deltas[4 * i + 3] = d.dh;
        }
    }

    if (opt.batch > 0) {
        std::vector<std::int64_t> fgi, bgi;
        for (std::size_t i = 0; i < n; ++i)
            (r.labels[i] > 0 ? fgi : bgi).push_back(static_cast<std::int64_t>(i));
        const auto max_fg = std::min(fgi.size(), static_cast<std::size_t>(
                                                     std::floor(opt.fg_fraction * double(opt.batch))));
        splitmix64 g1{mix(seed, 0x46475243ull)};
        detail::choose_subset(fgi, max_fg, g1);
        fgi.resize(max_fg);
        const auto max_bg = std::min(bgi.size(), static_cast<std::size_t>(opt.batch) - max_fg);
        splitmix64 g2{mix(seed, 0x42475243ull)};
        detail::choose_subset(bgi, max_bg, g2);
        bgi.resize(max_bg);
        std::vector<std::int64_t> keep(fgi);
        keep.insert(keep.end(), bgi.begin(), bgi.end());
        std::sort(keep.begin(), keep.end());
        rcnn_targets<T> s;
        for (std::int64_t k : keep) {
            const auto i = static_cast<std::size_t>(k);
            s.rois.push_back(r.rois[i]);
            s.source.push_back(r.source[i]);
            s.labels.push_back(r.labels[i]);
            s.matched.push_back(r.matched[i]);
            s.max_iou.push_back(r.max_iou[i]);
            s.deltas.insert(s.deltas.end(), r.deltas.begin() + 4 * k, r.deltas.begin() + 4 * k + 4);
        }
        r = std::move(s);
    }
    for (auto l : r.labels) r.foreground += l > 0 ? 1 : 0;
    return r;
}

} // namespace snip
