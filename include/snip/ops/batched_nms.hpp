// batched_nms.hpp: per-class hard NMS, equal to torchvision.ops.batched_nms: boxes are
// grouped by class id and each group runs nms.hpp's hard NMS; the kept indices of all
// classes come back merged by decreasing score.
//
// Errors (snip::error, naming the value): those of nms(), and class id count != box count.
#pragma once

#include <snip/core/error.hpp>
#include <snip/core/views.hpp>
#include <snip/ops/detail/nms_input.hpp>
#include <snip/ops/nms.hpp>
#include <snip/ops/nms_common.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <type_traits>
#include <vector>

namespace snip {

namespace detail {

template <class T, class C>
std::size_t batched_nms_impl(box_view<const T> boxes, std::span<const T> scores,
                             std::span<const C> classes, double iou_threshold,
                             std::span<std::int64_t> keep, nms_workspace<T>& ws,
                             const nms_options& opt) {
    constexpr const char* fn = "batched_nms";
    check_scores(fn, std::size_t(boxes.size()), scores);
    require(classes.size() == scores.size(), fn, ": got ", classes.size(), " class ids for ",
            scores.size(), " boxes");
    check_threshold(fn, iou_threshold);
    const std::size_t n = scores.size();
    check_keep_capacity(fn, n, opt.max_out, keep.size());
    if (n == 0 || opt.max_out == 0) return 0;
    sort_by_score(fn, scores, ws);
    const std::int32_t* order = ws.order.data();

    // Rank positions grouped by class, rank order kept inside a class (stable).
    auto& group = ws.group;
    group.resize(n);
    C mn = classes[0], mx = classes[0];
    for (C k : classes) {
        mn = std::min(mn, k);
        mx = std::max(mx, k);
    }
    const std::uint64_t span =
        std::uint64_t(std::int64_t(mx)) - std::uint64_t(std::int64_t(mn)); // mx >= mn
    if (span < 4 * std::uint64_t(n) + 1024) {
        auto& start = ws.local;
        start.assign(std::size_t(span) + 2, 0);
        for (std::size_t p = 0; p < n; ++p)
            ++start[std::size_t(std::int64_t(classes[order[p]]) - std::int64_t(mn)) + 1];
        for (std::size_t k = 1; k < start.size(); ++k) start[k] += start[k - 1];
        for (std::size_t p = 0; p < n; ++p)
            group[std::size_t(start[std::size_t(std::int64_t(classes[order[p]]) - std::int64_t(mn))]++)] =
                std::int32_t(p);
    } else {
        std::iota(group.begin(), group.end(), 0);
        std::stable_sort(group.begin(), group.end(), [&](std::int32_t x, std::int32_t y) {
            return classes[order[x]] < classes[order[y]];
        });
    }

    const T extra = width_extra<T>(opt.convention);
    ws.coords.resize(4 * n);
    ws.area.resize(n);
    for (std::size_t q = 0; q < n; ++q) gather_box(fn, boxes, order[group[q]], q, extra, ws);
    ws.flag.assign(n, 0);
    ws.kept.resize(n);
    const T thr = gt_threshold<T>(iou_threshold);
    for (std::size_t s = 0; s < n;) {
        const C k = classes[order[group[s]]];
        std::size_t e = s + 1;
        while (e < n && classes[order[group[e]]] == k) ++e;
        // A class never contributes more than max_out boxes to the merged top max_out.
        const std::size_t cnt =
            nms_sorted(ws.coords.data() + 4 * s, ws.area.data() + s, std::int32_t(e - s), thr,
                       extra, opt.max_out, ws.kept.data(), opt, ws);
        for (std::size_t q = 0; q < cnt; ++q) ws.flag[std::size_t(group[s + std::size_t(ws.kept[q])])] = 1;
        s = e;
    }
    std::size_t count = 0;
    for (std::size_t p = 0; p < n && count < opt.max_out; ++p)
        if (ws.flag[p]) keep[count++] = order[p];
    return count;
}

} // namespace detail

/// @brief Per-class NMS (torchvision.ops.batched_nms): NMS runs independently on the boxes
/// of each class id; the kept indices of all classes come merged by decreasing score
/// (equal scores: lower index first). Implemented by grouping (one stable sort by score,
/// then a stable grouping by class), not by offsetting coordinates, so no precision is
/// lost for large coordinates or many classes. (torchvision 0.14 offsets coordinates for
/// up to 1000 boxes on the CPU, 5000 on the GPU - equal to this for coordinates that stay
/// exact after the offset - and above that loops over classes, leaving the order of equal
/// scores unspecified.)
/// `classes` may be any integers (negative too). Writes up to min(N, opt.max_out) indices.
/// `classes` may be any integers (negative too), held as std::int32_t or std::int64_t
/// (class_id_view).
template <class T>
std::size_t batched_nms(box_view<T> boxes, detail::score_span<T> scores, class_id_view classes,
                        double iou_threshold, std::span<std::int64_t> keep,
                        nms_workspace<std::remove_const_t<T>>& ws, const nms_options& opt = {}) {
    using V = std::remove_const_t<T>;
    static_assert(detail::nms_float_v<V>, "batched_nms: boxes must be float or double");
    return classes.visit([&](auto ids) {
        return detail::batched_nms_impl<V>(box_view<const V>(boxes), scores, ids, iou_threshold,
                                           keep, ws, opt);
    });
}

/// @brief batched_nms() returning a vector.
template <class T>
std::vector<std::int64_t> batched_nms(box_view<T> boxes, detail::score_span<T> scores,
                                      class_id_view classes, double iou_threshold,
                                      const nms_options& opt = {}) {
    nms_workspace<std::remove_const_t<T>> ws;
    std::vector<std::int64_t> keep(std::min(scores.size(), opt.max_out));
    keep.resize(batched_nms(boxes, scores, classes, iou_threshold, std::span<std::int64_t>(keep),
                            ws, opt));
    return keep;
}

} // namespace snip
