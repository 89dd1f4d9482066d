// detail/nms_strategies.hpp: the three CPU strategies of hard NMS over boxes already in
// rank order (flat xyxy coordinates and their areas): greedy, grid and bitmask. All three
// keep exactly the same boxes; nms.hpp picks one (nms_algorithm).
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/parallel.hpp>
#include <snip/ops/detail/level_grid.hpp>
#include <snip/ops/nms_common.hpp>
#include <snip/ops/nms_math.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace snip::detail {

/// Greedy NMS over n boxes already in rank order (flat xyxy `c`, areas `a`): writes the
/// kept positions (ascending) to `keep`, returns their count.
template <class T>
std::size_t nms_greedy_sorted(const T* c, const T* a, std::int32_t n, T thr, T extra,
                              std::size_t max_out, std::int32_t* keep) {
    std::size_t count = 0;
    for (std::int32_t j = 0; j < n && count < max_out; ++j) {
        const box<T> bj = load_box(c, j);
        bool suppressed = false;
        for (std::size_t k = 0; k < count && !suppressed; ++k) {
            const std::int32_t i = keep[k];
            suppressed = iou_above(load_box(c, i), a[i], bj, a[j], thr, extra);
        }
        if (!suppressed) keep[count++] = j;
    }
    return count;
}

/// Grid NMS (thr >= 0): a box with zero area can neither suppress nor be suppressed (its
/// intersection is 0); any other box is tested only against the kept boxes of a similar
/// area (area_filter) that share a grid cell with it (level_grid). Same result as greedy.
template <class T>
std::size_t nms_grid_sorted(const T* c, const T* a, std::int32_t n, T thr, T extra,
                            std::size_t max_out, std::int32_t* keep, nms_workspace<T>& ws) {
    auto& g = ws.grid;
    g.reset(c, a, n, extra, [a](std::int32_t j) { return a[j] > T(0); });
    std::size_t count = 0;
    for (std::int32_t j = 0; j < n && count < max_out; ++j) {
        if (!(a[j] > T(0))) {
            keep[count++] = j;
            continue;
        }
        const box<T> bj = load_box(c, j);
        const T aj = a[j];
        const area_filter filter = area_filter::make(thr, aj);
        T lo, hi;
        filter.window(lo, hi);
        const bool suppressed = g.any(bj, extra, g.levels_for(lo, hi), filter, [&](const auto& e) {
            return e.area >= lo && e.area <= hi && iou_above(e.b, e.area, bj, aj, thr, extra);
        });
        if (suppressed) continue;
        keep[count++] = j;
        g.insert(j, bj, aj, extra);
    }
    return count;
}

/// Bitmask NMS on the CPU: the GPU algorithm (nms_mask_word per 64-box tile) with rows
/// computed in chunks on several threads, rows already removed skipped.
template <class T>
std::size_t nms_bitmask_sorted(const T* c, const T* a, std::int32_t n, T thr, T extra,
                               std::size_t max_out, std::int32_t* keep, unsigned threads,
                               nms_workspace<T>& ws) {
    const std::int64_t blocks = (std::int64_t(n) + nms_tile - 1) / nms_tile;
    constexpr std::int32_t chunk = 256;
    ws.removed.assign(std::size_t(blocks), 0);
    ws.masks.resize(std::size_t(chunk) * std::size_t(blocks));
    std::uint64_t* removed = ws.removed.data();
    std::uint64_t* masks = ws.masks.data();
    std::size_t count = 0;
    for (std::int32_t r0 = 0; r0 < n && count < max_out; r0 += chunk) {
        const std::int32_t r1 = std::min(n, r0 + chunk);
        parallel_for(
            r1 - r0, 16,
            [&](std::ptrdiff_t lo, std::ptrdiff_t hi) {
                for (std::ptrdiff_t r = lo; r < hi; ++r) {
                    const std::int32_t i = r0 + std::int32_t(r);
                    if ((removed[i / nms_tile] >> (i % nms_tile)) & 1u) continue;
                    const box<T> bi = load_box(c, i);
                    std::uint64_t* row = masks + r * blocks;
                    for (std::int64_t cb = i / nms_tile; cb < blocks; ++cb) {
                        const int begin = cb == i / nms_tile ? i % nms_tile + 1 : 0;
                        const int end = int(std::min<std::int64_t>(nms_tile, n - cb * nms_tile));
                        row[cb] = nms_mask_word(bi, a[i], c + 4 * cb * nms_tile,
                                                a + cb * nms_tile, begin, end, thr, extra);
                    }
                }
            },
            threads);
        for (std::int32_t i = r0; i < r1 && count < max_out; ++i) {
            if ((removed[i / nms_tile] >> (i % nms_tile)) & 1u) continue;
            keep[count++] = i;
            const std::uint64_t* row = masks + std::int64_t(i - r0) * blocks;
            for (std::int64_t cb = i / nms_tile; cb < blocks; ++cb) removed[cb] |= row[cb];
        }
    }
    return count;
}

/// Above this many boxes `automatic` uses the grid (measured crossover on clustered
/// detections: greedy wins below ~256 boxes, the grid above).
inline constexpr std::int32_t nms_grid_min = 256;

} // namespace snip::detail
