// soft_nms.hpp: linear and Gaussian Soft-NMS (Bodla et al. 2017), on the per-pair maths of
// nms_math.hpp (IoU in T under either pixel convention).
//
// Errors (snip::error, naming the value): score count != box count, NaN score, NaN or
// infinite box coordinate, sigma <= 0, NaN thresholds, more than 2^31 - 2 boxes.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/core/views.hpp>
#include <snip/ops/detail/level_grid.hpp>
#include <snip/ops/detail/nms_input.hpp>
#include <snip/ops/nms_common.hpp>
#include <snip/ops/nms_math.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

namespace snip {

enum class soft_nms_method {
    linear,  ///< s *= 1 - o when o > iou_threshold (Nt), unchanged otherwise
    gaussian ///< s *= exp(-o^2 / sigma), for every o (o = 0 leaves s unchanged)
};

/// @brief Options of soft_nms().
struct soft_nms_options {
    soft_nms_method method = soft_nms_method::gaussian;
    double sigma = 0.5;             ///< Gaussian width (> 0)
    double iou_threshold = 0.3;     ///< Nt of the linear method (compared as o > Nt)
    double score_threshold = 0.001; ///< a box whose score is < this is dropped
    std::size_t max_out = nms_unlimited; ///< stop after this many selections
    pixel_convention convention = pixel_convention::continuous;

    /// @brief Throws snip::error unless sigma is finite and > 0 and the thresholds are
    /// numbers.
    void validate() const {
        require(std::isfinite(sigma) && sigma > 0.0,
                "soft_nms: sigma must be a finite number > 0, got ", sigma);
        require(!std::isnan(iou_threshold), "soft_nms: iou_threshold must be a number, got ",
                iou_threshold);
        require(!std::isnan(score_threshold),
                "soft_nms: score_threshold must be a number, got ", score_threshold);
    }
};

/// @brief Soft-NMS output: input indices in selection order and their scores at selection.
template <class T>
struct soft_nms_result {
    std::vector<std::int64_t> keep;
    std::vector<T> scores;
    std::size_t size() const { return keep.size(); }
};

namespace detail {

/// Soft-NMS decay parameters, in T.
template <class T>
struct soft_params {
    soft_nms_method method;
    T sigma;     ///< gaussian
    T nt_gt;     ///< linear: IoU > Nt  <=>  IoU > nt_gt
    T score_lt;  ///< dropped: score < threshold  <=>  score < score_lt
    T extra;

    static soft_params from(const soft_nms_options& o) {
        return {o.method, T(o.sigma), gt_threshold<T>(o.iou_threshold),
                lt_threshold<T>(o.score_threshold), width_extra<T>(o.convention)};
    }
    /// The factor for IoU o (the weight the score is multiplied by).
    T weight(T o) const {
        if (method == soft_nms_method::linear) return o > nt_gt ? T(1) - o : T(1);
        const T e = -(o * o) / sigma;
        return static_cast<T>(std::exp(static_cast<double>(e)));
    }
};

/// Up to this many boxes, Soft-NMS scans all alive boxes per selection (no setup);
/// above it, it uses a level_grid and a tournament.
inline constexpr std::int32_t soft_nms_dense_max = 256;

/// Soft-NMS over n boxes (flat xyxy `c`, areas `a`) with current scores `s` (modified):
/// writes selected positions and their scores, returns their count. Rule: drop every box
/// with s < threshold; repeatedly select the alive box with the highest score (ties: lower
/// position) and multiply every other alive box's score by weight(IoU(selected, box)),
/// dropping it when it falls below the threshold. A box whose IoU is 0 keeps its score
/// (weight(0) == 1), so the large-input path only visits boxes sharing a grid cell with
/// the selected one (and, for the linear method, of a similar area).
template <class T>
std::size_t soft_nms_core(const T* c, const T* a, T* s, std::int32_t n, const soft_params<T>& p,
                          std::size_t max_out, std::int32_t* keep, T* kept_scores,
                          nms_workspace<T>& ws) {
    if (n <= 0 || max_out == 0) return 0;
    std::size_t count = 0;
    // Returns true when k stays alive.
    auto decay = [&](const box<T>& bj, T aj, std::int32_t k, const box<T>& bk, T ak) {
        const T o = nms_iou(bj, aj, bk, ak, p.extra);
        if (o == T(0)) return true;
        const T ns = p.weight(o) * s[k];
        s[k] = ns;
        return !(ns < p.score_lt);
    };
    if (n <= soft_nms_dense_max) {
        auto& alive = ws.alive; // ascending positions
        alive.clear();
        for (std::int32_t j = 0; j < n; ++j)
            if (!(s[j] < p.score_lt)) alive.push_back(j);
        while (!alive.empty() && count < max_out) {
            std::size_t best = 0;
            for (std::size_t q = 1; q < alive.size(); ++q)
                if (s[alive[q]] > s[alive[best]]) best = q;
            const std::int32_t j = alive[best];
            keep[count] = j;
            kept_scores[count] = s[j];
            ++count;
            const box<T> bj = load_box(c, j);
            const T aj = a[j];
            std::size_t out = 0;
            for (std::size_t q = 0; q < alive.size(); ++q) {
                const std::int32_t k = alive[q];
                if (k == j) continue;
                if (!(aj > T(0)) || decay(bj, aj, k, load_box(c, k), a[k])) alive[out++] = k;
            }
            alive.resize(out);
        }
        return count;
    }

    auto& state = ws.flag; // 1 alive, 0 dropped or selected
    state.assign(std::size_t(n), 0);
    for (std::int32_t j = 0; j < n; ++j) state[std::size_t(j)] = !(s[j] < p.score_lt);
    auto& g = ws.grid;
    auto in_grid = [&](std::int32_t j) { return state[std::size_t(j)] && a[j] > T(0); };
    // (Re)builds the grid over the alive boxes; returns how many it holds.
    auto build_grid = [&] {
        g.reset(c, a, n, p.extra, in_grid);
        std::int32_t held = 0;
        for (std::int32_t j = 0; j < n; ++j)
            if (in_grid(j)) {
                g.insert(j, load_box(c, j), a[j], p.extra);
                ++held;
            }
        return held;
    };
    std::int32_t held = build_grid(), gone = 0; // gone: held boxes no longer alive
    auto& best = ws.best;
    auto alive = [&](std::int32_t j) { return state[std::size_t(j)] != 0; };
    best.build(s, n, alive);
    auto& stamp = ws.stamp;
    stamp.assign(std::size_t(n), -1);
    const bool linear = p.method == soft_nms_method::linear;
    for (std::int32_t step = 0; count < max_out; ++step) {
        const std::int32_t j = best.top(alive);
        if (j < 0) break;
        state[std::size_t(j)] = 0;
        best.remove(j);
        keep[count] = j;
        kept_scores[count] = s[j];
        ++count;
        if (!(a[j] > T(0))) continue; // overlaps nothing
        ++gone;
        const box<T> bj = load_box(c, j);
        const T aj = a[j];
        auto visit = [&](const auto& e) {
            const std::int32_t k = e.j;
            if (!state[std::size_t(k)] || stamp[std::size_t(k)] == step) return false;
            stamp[std::size_t(k)] = step;
            const T before = s[k];
            if (!decay(bj, aj, k, e.b, e.area)) {
                state[std::size_t(k)] = 0;
                best.remove(k);
                ++gone;
            } else if (s[k] != before) {
                best.set(k, s[k]);
            }
            return false;
        };
        // Linear: only IoU > Nt decays, so levels of too different areas are skipped.
        const area_filter filter = linear ? area_filter::make(p.nt_gt, aj) : area_filter{};
        T lo, hi;
        filter.window(lo, hi);
        g.any(bj, p.extra, g.levels_for(lo, hi), filter, visit);
        if (gone > 32 && 2 * gone > held) { // mostly dead entries: rebuild
            held = build_grid();
            gone = 0;
        }
    }
    return count;
}

template <class T>
std::size_t soft_nms_impl(box_view<const T> boxes, std::span<const T> scores,
                          const soft_nms_options& opt, std::span<std::int64_t> keep,
                          std::span<T> kept_scores, nms_workspace<T>& ws) {
    constexpr const char* fn = "soft_nms";
    check_scores(fn, std::size_t(boxes.size()), scores);
    opt.validate();
    const std::size_t n = scores.size();
    check_keep_capacity(fn, n, opt.max_out, keep.size());
    check_keep_capacity(fn, n, opt.max_out, kept_scores.size());
    const auto p = soft_params<T>::from(opt);
    ws.coords.resize(4 * n);
    ws.area.resize(n);
    ws.cur.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        require(!std::isnan(scores[i]), fn, ": score ", i, " is NaN");
        gather_box(fn, boxes, std::int64_t(i), i, p.extra, ws);
        ws.cur[i] = scores[i];
    }
    ws.kept.resize(std::min(n, opt.max_out));
    const std::size_t count =
        soft_nms_core(ws.coords.data(), ws.area.data(), ws.cur.data(), std::int32_t(n), p,
                             opt.max_out, ws.kept.data(), kept_scores.data(), ws);
    for (std::size_t k = 0; k < count; ++k) keep[k] = ws.kept[k];
    return count;
}

} // namespace detail

/// @brief Soft-NMS (Bodla et al. 2017). Boxes with score < score_threshold are dropped
/// first. Then, repeatedly: the alive box with the highest current score is selected
/// (equal scores: lower index first) and every other alive box's score s becomes, with
/// o = IoU(selected, box) in T,
///   linear:   s = (o > iou_threshold ? 1 - o : 1) * s
///   gaussian: s = T(exp(double(-(o * o) / T(sigma)))) * s   (as the original code)
/// and the box is dropped when s < score_threshold. Writes the selected indices and their
/// scores at selection (non-increasing) in selection order to `keep` / `kept_scores`
/// (each must hold min(N, opt.max_out)); returns the count.
template <class T>
std::size_t soft_nms(box_view<T> boxes, detail::score_span<T> scores, const soft_nms_options& opt,
                     std::span<std::int64_t> keep, std::span<std::remove_const_t<T>> kept_scores,
                     nms_workspace<std::remove_const_t<T>>& ws) {
    using V = std::remove_const_t<T>;
    static_assert(detail::nms_float_v<V>, "soft_nms: boxes must be float or double");
    return detail::soft_nms_impl<V>(box_view<const V>(boxes), scores, opt, keep, kept_scores, ws);
}

/// @brief soft_nms() returning vectors.
template <class T>
soft_nms_result<std::remove_const_t<T>> soft_nms(box_view<T> boxes, detail::score_span<T> scores,
                                                 const soft_nms_options& opt = {}) {
    using V = std::remove_const_t<T>;
    nms_workspace<V> ws;
    soft_nms_result<V> r;
    const std::size_t cap = std::min(scores.size(), opt.max_out);
    r.keep.resize(cap);
    r.scores.resize(cap);
    const std::size_t cnt = soft_nms(boxes, scores, opt, std::span<std::int64_t>(r.keep),
                                     std::span<V>(r.scores), ws);
    r.keep.resize(cnt);
    r.scores.resize(cnt);
    return r;
}

} // namespace snip
