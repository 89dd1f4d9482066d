// nms_common.hpp: what hard NMS (nms.hpp, batched_nms.hpp), Soft-NMS (soft_nms.hpp) and
// the multi-scale merge (merge.hpp) share: the "no limit" constant, the reusable
// workspace, the view of class ids, and how the inputs are ranked by score and gathered
// into flat arrays.
//
// Errors (snip::error, naming the value): score count != box count, NaN score, NaN or
// infinite box coordinate, more than 2^31 - 2 boxes.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/core/views.hpp>
#include <snip/ops/detail/block_max.hpp>
#include <snip/ops/detail/level_grid.hpp>
#include <snip/ops/detail/nms_input.hpp>
#include <snip/ops/nms_math.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <ranges>
#include <span>
#include <type_traits>
#include <vector>

namespace snip {

/// @brief "No limit" for max_out / max_per_image.
inline constexpr std::size_t nms_unlimited = std::numeric_limits<std::size_t>::max();

/// @brief Reusable scratch memory for nms(), batched_nms() and soft_nms(): pass the same
/// workspace to repeated calls to avoid allocations. Its contents mean nothing between
/// calls. Not thread-safe: one workspace per thread.
template <class T>
struct nms_workspace {
    static_assert(detail::nms_float_v<T>, "nms_workspace<T>: T must be float or double");
    std::vector<std::int32_t> order, order_tmp, group, kept, local;
    std::vector<detail::score_key_t<T>> keys, keys_tmp;
    std::vector<T> coords, area, cur, out_scores;
    std::vector<std::uint8_t> flag;
    std::vector<std::uint64_t> masks, removed;
    std::vector<std::int32_t> stamp, alive;
    detail::level_grid<T> grid;
    detail::block_max<T> best;
};

/// @brief A read-only view of N class ids held as std::int32_t or std::int64_t: any
/// contiguous range of either (std::vector, std::span, std::array) converts to it. Used by
/// batched_nms() and merge_multiscale(); never owns or copies.
class class_id_view {
public:
    constexpr class_id_view() = default;
    template <class R>
        requires(std::ranges::contiguous_range<const R> && std::ranges::sized_range<const R> &&
                 (std::is_same_v<std::ranges::range_value_t<const R>, std::int32_t> ||
                  std::is_same_v<std::ranges::range_value_t<const R>, std::int64_t>))
    constexpr class_id_view(const R& ids) {
        if constexpr (std::is_same_v<std::ranges::range_value_t<const R>, std::int32_t>)
            narrow_ = std::span<const std::int32_t>(std::ranges::data(ids), std::ranges::size(ids));
        else
            wide_ = std::span<const std::int64_t>(std::ranges::data(ids), std::ranges::size(ids));
    }

    constexpr std::size_t size() const { return narrow_.size() + wide_.size(); }
    constexpr bool empty() const { return size() == 0; }

    /// @brief f(ids) with the ids as the span they are stored in:
    /// std::span<const std::int32_t> or std::span<const std::int64_t> (an empty view: the
    /// latter). Both calls must return the same type.
    template <class F>
    constexpr decltype(auto) visit(F&& f) const {
        if (!narrow_.empty()) return f(narrow_);
        return f(wide_);
    }

private:
    std::span<const std::int32_t> narrow_;
    std::span<const std::int64_t> wide_;
};

namespace detail {

/// ws.order = indices of `scores` by decreasing score, equal scores by increasing index
/// (a stable sort; LSD radix on the float bits for n > 64). Throws on a NaN score.
template <class T>
void sort_by_score(const char* fn, std::span<const T> scores, nms_workspace<T>& ws) {
    using K = score_key_t<T>;
    const std::size_t n = scores.size();
    ws.keys.resize(n);
    ws.order.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        require(!std::isnan(scores[i]), fn, ": score ", i, " is NaN");
        ws.keys[i] = descending_key(scores[i]);
        ws.order[i] = std::int32_t(i);
    }
    if (n < 2) return;
    if (n <= 64) {
        const K* k = ws.keys.data();
        std::sort(ws.order.begin(), ws.order.end(), [k](std::int32_t a, std::int32_t b) {
            return k[a] < k[b] || (k[a] == k[b] && a < b);
        });
        return;
    }
    constexpr int bytes = int(sizeof(K));
    std::array<std::array<std::uint32_t, 256>, bytes> hist{};
    for (std::size_t i = 0; i < n; ++i) {
        const K k = ws.keys[i];
        for (int b = 0; b < bytes; ++b) ++hist[std::size_t(b)][std::size_t((k >> (8 * b)) & 0xFF)];
    }
    ws.keys_tmp.resize(n);
    ws.order_tmp.resize(n);
    for (int b = 0; b < bytes; ++b) {
        auto& h = hist[std::size_t(b)];
        if (h[std::size_t((ws.keys[0] >> (8 * b)) & 0xFF)] == n) continue; // one digit: no-op
        std::array<std::uint32_t, 256> off;
        std::uint32_t sum = 0;
        for (std::size_t d = 0; d < 256; ++d) {
            off[d] = sum;
            sum += h[d];
        }
        for (std::size_t i = 0; i < n; ++i) {
            const K k = ws.keys[i];
            const std::uint32_t p = off[std::size_t((k >> (8 * b)) & 0xFF)]++;
            ws.keys_tmp[p] = k;
            ws.order_tmp[p] = ws.order[i];
        }
        ws.keys.swap(ws.keys_tmp);
        ws.order.swap(ws.order_tmp);
    }
}

/// Copies box `src` of `boxes` to slot `dst` of ws.coords / ws.area; throws on NaN/inf.
template <class T>
inline void gather_box(const char* fn, box_view<const T> boxes, std::int64_t src, std::size_t dst,
                       T extra, nms_workspace<T>& ws) {
    const box<T> b = boxes[src];
    require(std::isfinite(b.x1) && std::isfinite(b.y1) && std::isfinite(b.x2) &&
                std::isfinite(b.y2),
            fn, ": box ", src, " has a coordinate that is not finite: [", b.x1, ", ", b.y1, ", ",
            b.x2, ", ", b.y2, "]");
    T* c = ws.coords.data() + 4 * dst;
    c[0] = b.x1;
    c[1] = b.y1;
    c[2] = b.x2;
    c[3] = b.y2;
    ws.area[dst] = nms_area(b, extra);
}

} // namespace detail

} // namespace snip
