// merge.hpp: SNIPER's multi-scale merge at inference: the detections of one image from
// all test scales (boxes in ORIGINAL image pixels) filtered by each scale's valid range,
// pooled per class, Gaussian Soft-NMS per class (soft_nms.hpp), top-k over all classes.
//
// Errors (snip::error, naming the value): score, class id or scale index count != box
// count, a scale index without a valid range, NaN score, NaN or infinite box coordinate,
// bad options (multiscale_merge_options::validate).
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/core/valid_range.hpp>
#include <snip/core/views.hpp>
#include <snip/ops/detail/nms_input.hpp>
#include <snip/ops/nms_common.hpp>
#include <snip/ops/soft_nms.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <type_traits>
#include <vector>

namespace snip {

/// @brief Options of merge_multiscale(): SNIPER's inference merge of detections from
/// several scales. The defaults are snip's rules; sniper_coco() reproduces the original.
struct multiscale_merge_options {
    /// Per-scale valid range on sqrt(w * h) in ORIGINAL image pixels (w = x2 - x1),
    /// lo <= size < hi, negative = open (snip::valid_range). Scale s of a detection
    /// uses ranges[s].
    std::vector<valid_range> ranges{{-1.0, 90.0}, {32.0, 180.0}, {75.0, -1.0}};
    double sigma = 0.55;             ///< Gaussian Soft-NMS per class
    double score_threshold = 0.001;  ///< Soft-NMS drop threshold
    std::size_t max_per_image = 200; ///< top-k over all classes (nms_unlimited: no cut)
    pixel_convention convention = pixel_convention::continuous; ///< Soft-NMS IoU widths
    /// The original code's rules instead of snip's: a box is in range when
    /// lo^2 < w * h <= hi^2 (computed in T; lo, hi <= 0 open); a (scale, class) group with
    /// no box in range keeps ALL its boxes; the top-k cut keeps every box scoring at
    /// least the k-th score (ties may give more than k).
    bool sniper_compatible = false;

    /// @brief The official SNIPER COCO inference: ranges (-1,90), (32,180), (75,-1), Gaussian
    /// Soft-NMS sigma 0.55 with +1 pixel widths, threshold 0.001, 200 per image, and the
    /// original range test, empty-group fallback and tie rule (sniper_compatible).
    /// Remaining differences from the original cpu_soft_nms: boxes with an initial score
    /// below the threshold are dropped up front (the original only drops a box after a
    /// decay; its pipeline never passes such boxes), and exactly equal scores are taken
    /// in pool order rather than in the order its in-place swaps leave them.
    static multiscale_merge_options sniper_coco() {
        multiscale_merge_options o;
        o.convention = pixel_convention::inclusive;
        o.sniper_compatible = true;
        return o;
    }

    void validate() const {
        require(!ranges.empty(), "merge_multiscale: at least one valid range is needed");
        for (std::size_t s = 0; s < ranges.size(); ++s)
            ranges[s].validate(concat("merge_multiscale: valid range of scale ", s));
        require(std::isfinite(sigma) && sigma > 0.0,
                "merge_multiscale: sigma must be a finite number > 0, got ", sigma);
        require(!std::isnan(score_threshold),
                "merge_multiscale: score_threshold must be a number, got ", score_threshold);
    }
};

/// @brief Merged detections of one image, sorted by decreasing score (ties: lower class
/// id, then Soft-NMS selection order). `index` points into the inputs of merge_multiscale.
template <class T>
struct merged_detections {
    std::vector<std::int64_t> index; ///< input detection index
    std::vector<box<T>> boxes;       ///< its box (original pixels, unchanged)
    std::vector<T> scores;           ///< score after Soft-NMS
    std::vector<std::int64_t> labels; ///< class id
    std::vector<int> scales;          ///< scale index
    std::size_t size() const { return index.size(); }
};

namespace detail {

template <class T, class C>
merged_detections<T> merge_multiscale_impl(box_view<const T> boxes, std::span<const T> scores,
                                           std::span<const C> classes, std::span<const int> scale,
                                           const multiscale_merge_options& opt) {
    constexpr const char* fn = "merge_multiscale";
    opt.validate();
    check_scores(fn, std::size_t(boxes.size()), scores);
    const std::size_t n = scores.size();
    require(classes.size() == n, fn, ": got ", classes.size(), " class ids for ", n,
            " detections");
    require(scale.size() == n, fn, ": got ", scale.size(), " scale indices for ", n,
            " detections");
    const int nscales = int(opt.ranges.size());
    for (std::size_t i = 0; i < n; ++i) {
        require(scale[i] >= 0 && scale[i] < nscales, fn, ": detection ", i, " has scale index ",
                scale[i], " but ", nscales, " valid ranges are given");
        require(!std::isnan(scores[i]), fn, ": score ", i, " is NaN");
    }

    // Detections in (class, scale, index) order: each class pools its scales in scale order.
    std::vector<std::int32_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](std::int32_t x, std::int32_t y) {
        if (classes[x] != classes[y]) return classes[x] < classes[y];
        if (scale[x] != scale[y]) return scale[x] < scale[y];
        return x < y;
    });

    // Valid-range filter.
    std::vector<std::uint8_t> ok(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
        const box<T> b = boxes[std::ptrdiff_t(i)];
        const valid_range& r = opt.ranges[std::size_t(scale[i])];
        if (opt.sniper_compatible) {
            const T area = (b.x2 - b.x1) * (b.y2 - b.y1);
            ok[i] = (!(r.lo > 0.0) || area > T(r.lo * r.lo)) &&
                    (!(r.hi > 0.0) || area <= T(r.hi * r.hi));
        } else {
            const double w = std::max(0.0, double(b.x2) - double(b.x1));
            const double h = std::max(0.0, double(b.y2) - double(b.y1));
            ok[i] = r.contains(std::sqrt(w * h));
        }
    }
    if (opt.sniper_compatible) { // a (scale, class) group with nothing in range keeps all
        for (std::size_t s = 0; s < n;) {
            std::size_t e = s + 1;
            while (e < n && classes[idx[e]] == classes[idx[s]] && scale[idx[e]] == scale[idx[s]]) ++e;
            bool any = false;
            for (std::size_t q = s; q < e; ++q) any = any || ok[std::size_t(idx[q])];
            if (!any)
                for (std::size_t q = s; q < e; ++q) ok[std::size_t(idx[q])] = 1;
            s = e;
        }
    }

    struct row {
        T score;
        std::int64_t label;
        std::int32_t rank;
        std::int32_t index;
    };
    std::vector<row> rows;
    nms_workspace<T> ws;
    std::vector<std::int32_t> member;
    std::vector<T> kept_scores;
    soft_nms_options so;
    so.method = soft_nms_method::gaussian;
    so.sigma = opt.sigma;
    so.score_threshold = opt.score_threshold;
    so.convention = opt.convention;
    const auto p = soft_params<T>::from(so);
    // snip's exact top-k: a class never contributes more than k boxes.
    const std::size_t per_class = opt.sniper_compatible ? nms_unlimited : opt.max_per_image;
    for (std::size_t s = 0; s < n;) {
        std::size_t e = s + 1;
        while (e < n && classes[idx[e]] == classes[idx[s]]) ++e;
        member.clear();
        for (std::size_t q = s; q < e; ++q)
            if (ok[std::size_t(idx[q])]) member.push_back(idx[q]);
        const std::size_t m = member.size();
        ws.coords.resize(4 * m);
        ws.area.resize(m);
        ws.cur.resize(m);
        for (std::size_t q = 0; q < m; ++q) {
            gather_box(fn, boxes, member[q], q, p.extra, ws);
            ws.cur[q] = scores[std::size_t(member[q])];
        }
        ws.kept.resize(m);
        kept_scores.resize(m);
        const std::size_t cnt =
            soft_nms_core(ws.coords.data(), ws.area.data(), ws.cur.data(), std::int32_t(m),
                                 p, per_class, ws.kept.data(), kept_scores.data(), ws);
        for (std::size_t q = 0; q < cnt; ++q)
            rows.push_back({kept_scores[q], std::int64_t(classes[idx[s]]), std::int32_t(q),
                            member[std::size_t(ws.kept[q])]});
        s = e;
    }
    std::sort(rows.begin(), rows.end(), [](const row& x, const row& y) {
        if (x.score != y.score) return x.score > y.score;
        if (x.label != y.label) return x.label < y.label;
        return x.rank < y.rank;
    });
    std::size_t out = rows.size();
    if (opt.max_per_image < out) {
        out = opt.max_per_image;
        if (opt.sniper_compatible && out > 0) {
            const T kth = rows[out - 1].score;
            while (out < rows.size() && rows[out].score >= kth) ++out;
        }
    }
    merged_detections<T> r;
    r.index.reserve(out);
    r.boxes.reserve(out);
    r.scores.reserve(out);
    r.labels.reserve(out);
    r.scales.reserve(out);
    for (std::size_t k = 0; k < out; ++k) {
        const row& x = rows[k];
        r.index.push_back(x.index);
        r.boxes.push_back(boxes[x.index]);
        r.scores.push_back(x.score);
        r.labels.push_back(x.label);
        r.scales.push_back(scale[std::size_t(x.index)]);
    }
    return r;
}

} // namespace detail

/// @brief SNIPER's multi-scale merge for ONE image. Inputs: N detections from all test
/// scales, boxes xyxy in ORIGINAL image pixels, scores, class ids and the scale index
/// (0 = finest; selects opt.ranges[scale]). Rule (snip defaults): keep a detection when
/// sqrt(w * h) (w = x2 - x1, in double) is inside its scale's valid range [lo, hi); pool
/// the kept detections of all scales per class (pool order: scale, then index - this
/// breaks ties in Soft-NMS); run Gaussian Soft-NMS per class (sigma, score_threshold,
/// convention); keep the max_per_image best over all classes, sorted by decreasing score
/// (ties: lower class id, then selection order). `opt.sniper_compatible` switches to the
/// original code's range test, empty-group fallback and tie-inclusive cut (see
/// multiscale_merge_options).
/// `classes` are held as std::int32_t or std::int64_t (class_id_view).
template <class T>
merged_detections<std::remove_const_t<T>>
merge_multiscale(box_view<T> boxes, detail::score_span<T> scores, class_id_view classes,
                 std::span<const int> scale, const multiscale_merge_options& opt = {}) {
    using V = std::remove_const_t<T>;
    static_assert(detail::nms_float_v<V>, "merge_multiscale: boxes must be float or double");
    return classes.visit([&](auto ids) {
        return detail::merge_multiscale_impl<V>(box_view<const V>(boxes), scores, ids, scale, opt);
    });
}

} // namespace snip
