// chips.hpp: candidate chips and greedy positive chip coverage.
//
// All coordinates here are in SCALED-image pixels. A chip and a box are closed
// intervals [x1, x2] x [y1, y2]; a box is covered by a chip when it lies fully inside
// it (touching edges count). Under pixel_convention::inclusive (the original SNIPER
// code) a chip of side c at pixel p is [p, p + c - 1]; under continuous it is [p, p + c].
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/core/views.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <set>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace snip {

/// @brief Where candidate chips are placed.
enum class chip_layout {
    /// The original SNIPER candidate set, quirks included: a grid with stride s over
    /// [0, W - c) x [0, H - c), a right-edge column starting at W - c - 1, a bottom row
    /// starting at H - c - 1, and three corner chips (top-right, bottom-left,
    /// bottom-right), two of which are one pixel longer than c on one side. Meant for
    /// pixel_convention::inclusive.
    sniper,
    /// A clean grid: starts 0, s, 2s, ... below W - c plus one column flush with the
    /// right edge (W - c), the same for rows, every combination; every chip is exactly
    /// c x c (or the whole image side when the image is smaller than c).
    aligned
};

/// @brief The candidate chips of one scaled image of `width` x `height` pixels.
/// @param chip chip side in scaled pixels; @param stride grid step in scaled pixels.
/// An image no larger than the chip gives one chip, the whole image.
inline std::vector<box<int>> candidate_chips(chip_layout layout, int width, int height, int chip,
                                             int stride, pixel_convention conv) {
    require(width > 0 && height > 0, "candidate_chips: image size must be positive, got ", width,
            "x", height);
    require(chip > 0, "candidate_chips: chip size must be > 0, got ", chip);
    require(stride > 0, "candidate_chips: stride must be > 0, got ", stride);
    const int e = conv == pixel_convention::inclusive ? 1 : 0;
    std::vector<box<int>> out;
    if (layout == chip_layout::sniper) {
        // Transcribed rule by rule from the original generator (inclusive pixel indices).
        out.push_back({std::max(width - chip, 0), 0, width - 1, std::min(chip, height - 1)});
        out.push_back({0, std::max(height - chip, 0), std::min(chip, width - 1), height - 1});
        out.push_back({std::max(width - chip, 0), std::max(height - chip, 0), width - 1, height - 1});
        for (int i = 0; i < width - chip; i += stride)
            for (int j = 0; j < height - chip; j += stride)
                out.push_back({i, j, i + chip - 1, j + chip - 1});
        for (int j = 0; j < height - chip; j += stride)
            out.push_back({std::max(width - chip - 1, 0), j, width - 1, j + chip - 1});
        for (int i = 0; i < width - chip; i += stride)
            out.push_back({i, std::max(height - chip - 1, 0), i + chip - 1, height - 1});
        return out;
    }
    auto starts = [&](int side) {
        std::vector<int> s;
        for (int p = 0; p < side - chip; p += stride) s.push_back(p);
        s.push_back(std::max(side - chip, 0));
        return s;
    };
    const auto xs = starts(width), ys = starts(height);
    const int cw = std::min(chip, width), ch = std::min(chip, height);
    for (int y : ys)
        for (int x : xs) out.push_back({x, y, x + cw - e, y + ch - e});
    return out;
}

/// @brief The result of a greedy cover: the chosen chips in the order they were
/// chosen, and for every input box the index of the first chosen chip that contains it
/// (the chip it is assigned to), or -1 when no candidate contains it.
struct cover_result {
    std::vector<box<int>> chips;
    std::vector<int> owner;
    /// Number of boxes assigned to chip k.
    std::vector<int> counts;
};

/// @brief Tie-break order between candidates with equal counts: the smallest
/// (y1, y2, x1, x2) wins. The original code broke ties by an unseeded shuffle, which
/// cannot be reproduced; this rule makes every plan deterministic.
inline bool chip_before(const box<int>& a, const box<int>& b) {
    return std::tie(a.y1, a.y2, a.x1, a.x2) < std::tie(b.y1, b.y2, b.x1, b.x2);
}

/// @brief The reference greedy cover: a dense chips x boxes containment table, one
/// set of uncovered boxes per chip, and a set difference over every chip each round,
/// as the original code does. Slow (chips x boxes per round) but obviously correct;
/// tests and the benchmark compare the fast path against it.
/// @param candidates chips in scaled pixels (any order, duplicates allowed).
/// @param boxes closed-interval boxes in the same pixels.
template <class T>
cover_result greedy_cover_naive(std::vector<box<int>> candidates, box_view<const T> boxes) {
    std::sort(candidates.begin(), candidates.end(), chip_before);
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    const auto nb = static_cast<std::size_t>(boxes.size());
    std::vector<std::vector<char>> inside(candidates.size(), std::vector<char>(nb, 0));
    for (std::size_t c = 0; c < candidates.size(); ++c)
        for (std::size_t b = 0; b < nb; ++b)
            inside[c][b] = contains(candidates[c].cast<double>(),
                                    boxes[static_cast<std::ptrdiff_t>(b)].template cast<double>());
    std::vector<std::set<int>> matches(candidates.size());
    for (std::size_t c = 0; c < candidates.size(); ++c)
        for (std::size_t b = 0; b < nb; ++b)
            if (inside[c][b]) matches[c].insert(static_cast<int>(b));
    cover_result r;
    r.owner.assign(nb, -1);
    for (;;) {
        std::size_t best = 0, best_n = 0;
        for (std::size_t c = 0; c < matches.size(); ++c)
            if (matches[c].size() > best_n) best_n = matches[c].size(), best = c;
        if (best_n == 0) break;
        const std::set<int> taken = matches[best];
        for (int b : taken) r.owner[static_cast<std::size_t>(b)] = static_cast<int>(r.chips.size());
        r.chips.push_back(candidates[best]);
        r.counts.push_back(static_cast<int>(best_n));
        for (auto& m : matches) {
            std::set<int> rest;
            std::set_difference(m.begin(), m.end(), taken.begin(), taken.end(),
                                std::inserter(rest, rest.end()));
            m.swap(rest);
        }
    }
    return r;
}

/// @brief Candidates organised as columns x rows. Every candidate chip is (column,
/// row) for one of `cols` and one of `rows`; `mask` says which pairs are candidates.
/// When columns sorted by start also have non-decreasing ends (true of both layouts),
/// the chips that contain a box form a rectangle of (column, row) indices: that is
/// what makes the fast cover linear in grid size plus boxes.
struct chip_grid {
    struct span1 {
        int lo, hi;
        friend bool operator==(const span1&, const span1&) = default;
        friend bool operator<(const span1& a, const span1& b) {
            return std::tie(a.lo, a.hi) < std::tie(b.lo, b.hi);
        }
    };
    std::vector<span1> cols, rows;
    std::vector<std::uint8_t> mask;  ///< rows.size() x cols.size(), row-major
    bool full = true;                ///< every (column, row) pair is a candidate
    bool monotone = true;            ///< the rectangle property holds

    /// @brief Builds the grid of an arbitrary candidate list.
    static chip_grid from_candidates(const std::vector<box<int>>& cands) {
        chip_grid g;
        for (const auto& c : cands) {
            g.cols.push_back({c.x1, c.x2});
            g.rows.push_back({c.y1, c.y2});
        }
        auto uniq = [](std::vector<span1>& v) {
            std::sort(v.begin(), v.end());
            v.erase(std::unique(v.begin(), v.end()), v.end());
        };
        uniq(g.cols);
        uniq(g.rows);
        auto mono = [](const std::vector<span1>& v) {
            for (std::size_t i = 1; i < v.size(); ++i)
                if (v[i].hi < v[i - 1].hi) return false;
            return true;
        };
        g.monotone = mono(g.cols) && mono(g.rows);
        g.mask.assign(g.cols.size() * g.rows.size(), 0);
        for (const auto& c : cands) {
            auto ci = std::lower_bound(g.cols.begin(), g.cols.end(), span1{c.x1, c.x2}) - g.cols.begin();
            auto ri = std::lower_bound(g.rows.begin(), g.rows.end(), span1{c.y1, c.y2}) - g.rows.begin();
            g.mask[static_cast<std::size_t>(ri) * g.cols.size() + static_cast<std::size_t>(ci)] = 1;
        }
        g.full = std::all_of(g.mask.begin(), g.mask.end(), [](auto m) { return m != 0; });
        return g;
    }

    /// @brief Builds the grid of `candidate_chips(layout, ...)` directly, reusing this
    /// object's memory: the same candidate set, without materialising the list.
    void assign(chip_layout layout, int width, int height, int chip, int stride,
                pixel_convention conv) {
        require(width > 0 && height > 0, "chip_grid: image size must be positive, got ", width,
                "x", height);
        require(chip > 0 && stride > 0, "chip_grid: chip size and stride must be > 0, got ",
                chip, " and ", stride);
        const int e = conv == pixel_convention::inclusive ? 1 : 0;
        monotone = true;
        if (layout == chip_layout::aligned) {
            auto axis = [&](std::vector<span1>& v, int side) {
                v.clear();
                const int len = std::min(chip, side);
                for (int p = 0; p < side - chip; p += stride) v.push_back({p, p + len - e});
                v.push_back({std::max(side - chip, 0), std::max(side - chip, 0) + len - e});
            };
            axis(cols, width);
            axis(rows, height);
            full = true;
            mask.assign(size(), 1);
            return;
        }
        // sniper layout: grid spans, then the special spans of the edge and corner chips.
        // idx[k] receives the sorted position of the k-th span pushed.
        auto axis = [&](std::vector<span1>& v, std::vector<int>& idx, int side, int& ngrid) {
            v.clear();
            for (int p = 0; p < side - chip; p += stride) v.push_back({p, p + chip - 1});
            ngrid = static_cast<int>(v.size());
            v.push_back({0, std::min(chip, side - 1)});                 // corner span at 0
            v.push_back({std::max(side - chip - 1, 0), side - 1});      // edge span
            v.push_back({std::max(side - chip, 0), side - 1});          // corner span at end
            std::vector<span1> sorted = v;
            std::sort(sorted.begin(), sorted.end());
            sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
            idx.resize(v.size());
            // grid spans are already sorted and distinct; map every pushed span.
            for (std::size_t k = 0; k < v.size(); ++k)
                idx[k] = static_cast<int>(std::lower_bound(sorted.begin(), sorted.end(), v[k]) -
                                          sorted.begin());
            v.swap(sorted);
        };
        std::vector<int> ci, ri;
        int ngx = 0, ngy = 0;
        axis(cols, ci, width, ngx);
        axis(rows, ri, height, ngy);
        auto mono = [](const std::vector<span1>& v) {
            for (std::size_t i = 1; i < v.size(); ++i)
                if (v[i].hi < v[i - 1].hi) return false;
            return true;
        };
        monotone = mono(cols) && mono(rows);
        mask.assign(size(), 0);
        const std::size_t C = cols.size();
        auto set = [&](int r, int c) {
            mask[static_cast<std::size_t>(r) * C + static_cast<std::size_t>(c)] = 1;
        };
        const int c_zero = ci[ngx], c_edge = ci[ngx + 1], c_end = ci[ngx + 2];
        const int r_zero = ri[ngy], r_edge = ri[ngy + 1], r_end = ri[ngy + 2];
        set(r_zero, c_end);  // top-right corner: [W-c, W-1] x [0, min(c, H-1)]
        set(r_end, c_zero);  // bottom-left corner: [0, min(c, W-1)] x [H-c, H-1]
        set(r_end, c_end);   // bottom-right corner
        for (int i = 0; i < ngx; ++i)
            for (int j = 0; j < ngy; ++j) set(ri[j], ci[i]);
        for (int j = 0; j < ngy; ++j) set(ri[j], c_edge);  // right-edge column
        for (int i = 0; i < ngx; ++i) set(r_edge, ci[i]);  // bottom row
        full = std::all_of(mask.begin(), mask.end(), [](auto m) { return m != 0; });
    }

    std::size_t size() const { return cols.size() * rows.size(); }
    box<int> chip(std::size_t r, std::size_t c) const {
        return {cols[c].lo, rows[r].lo, cols[c].hi, rows[r].hi};
    }

    /// Indices [first, last] of the spans that contain [lo, hi]; first > last if none.
    static std::pair<int, int> containing(const std::vector<span1>& v, double lo, double hi) {
        // last span whose start <= lo
        auto up = std::upper_bound(v.begin(), v.end(), lo,
                                   [](double x, const span1& s) { return x < double(s.lo); });
        // first span whose end >= hi
        auto dn = std::lower_bound(v.begin(), v.end(), hi,
                                   [](const span1& s, double x) { return double(s.hi) < x; });
        return {static_cast<int>(dn - v.begin()), static_cast<int>(up - v.begin()) - 1};
    }
};

/// @brief Chip grids by (layout, scaled size, chip, stride, convention), built once and
/// reused: a dataset has few distinct image sizes (COCO val2017: 603 for 5,000 images).
class chip_grid_cache {
public:
    explicit chip_grid_cache(std::size_t max_entries = 4096) : max_(max_entries) {}
    const chip_grid& get(chip_layout layout, int width, int height, int chip, int stride,
                         pixel_convention conv) {
        const key k{static_cast<int>(layout), width, height, chip, stride, static_cast<int>(conv)};
        if (auto it = map_.find(k); it != map_.end()) return it->second;
        if (map_.size() >= max_) map_.clear();  // bounded memory
        chip_grid& g = map_[k];
        g.assign(layout, width, height, chip, stride, conv);
        return g;
    }
    std::size_t size() const { return map_.size(); }

private:
    struct key {
        int layout, width, height, chip, stride, conv;
        friend bool operator==(const key&, const key&) = default;
    };
    struct hasher {
        std::size_t operator()(const key& k) const {
            std::uint64_t h = 1469598103934665603ull;
            for (int v : {k.layout, k.width, k.height, k.chip, k.stride, k.conv})
                h = (h ^ static_cast<std::uint32_t>(v)) * 1099511628211ull;
            return static_cast<std::size_t>(h);
        }
    };
    std::size_t max_;
    std::unordered_map<key, chip_grid, hasher> map_;
};

/// @brief Scratch memory for greedy_cover, reused across images to avoid allocation.
struct cover_workspace {
    std::vector<int> counts;  ///< all zero between calls (greedy_cover restores it)
    std::vector<int> rects;  ///< 4 per box: c0, c1, r0, r1
    std::vector<int> live;   ///< boxes not yet covered
    std::vector<int> row_max, row_arg;  ///< per grid row: largest count > 0 and its first column
    std::vector<std::uint8_t> row_dirty;
};

/// @brief Greedy cover on a chip grid: repeatedly takes the candidate that contains
/// the most uncovered boxes (ties: smallest (y1, y2, x1, x2)) until no candidate
/// contains an uncovered box. Gives exactly the plan of greedy_cover_naive.
/// Cost: O(boxes * log(grid side) + grid cells + chips * (grid rows + boxes) + sum over
/// boxes of the number of chips containing them + the rows rescanned): every grid row
/// keeps its largest count, and a row is scanned again only when a covered box lowered
/// the cell holding it, so a chip costs far less than a scan of the whole grid.
/// @param boxes closed-interval boxes in scaled pixels.
template <class T>
cover_result greedy_cover(const chip_grid& g, box_view<const T> boxes, cover_workspace& ws) {
    const auto nb = static_cast<std::size_t>(boxes.size());
    cover_result r;
    r.owner.assign(nb, -1);
    if (nb == 0 || g.size() == 0) return r;
    if (!g.monotone) {
        std::vector<box<int>> cands;
        for (std::size_t y = 0; y < g.rows.size(); ++y)
            for (std::size_t x = 0; x < g.cols.size(); ++x)
                if (g.mask[y * g.cols.size() + x]) cands.push_back(g.chip(y, x));
        return greedy_cover_naive(std::move(cands), boxes);
    }
    const int C = static_cast<int>(g.cols.size()), R = static_cast<int>(g.rows.size());
    constexpr int masked = std::numeric_limits<int>::min() / 2;
    // ws.counts is all zero between calls; only the bounding rectangle of the boxes'
    // rectangles (plus one row and column of differences) is touched, and zeroed again
    // before returning, so the cost follows the boxes, not the whole grid.
    const std::size_t need = static_cast<std::size_t>(R + 1) * static_cast<std::size_t>(C + 1);
    if (ws.counts.size() < need) ws.counts.resize(need, 0);
    ws.rects.resize(4 * nb);
    ws.live.clear();
    int br0 = R, br1 = -1, bc0 = C, bc1 = -1;  // bounding rectangle of all box rectangles
    int* cnt = ws.counts.data();
    const int W1 = C + 1;
    for (std::size_t b = 0; b < nb; ++b) {
        const auto bx = boxes[static_cast<std::ptrdiff_t>(b)];
        auto [c0, c1] = chip_grid::containing(g.cols, double(bx.x1), double(bx.x2));
        auto [r0, r1] = chip_grid::containing(g.rows, double(bx.y1), double(bx.y2));
        int* rc = &ws.rects[4 * b];
        rc[0] = c0, rc[1] = c1, rc[2] = r0, rc[3] = r1;
        if (c0 > c1 || r0 > r1) continue;
        ws.live.push_back(static_cast<int>(b));
        // 2-D difference array: +1 on the rectangle [r0, r1] x [c0, c1].
        cnt[r0 * W1 + c0] += 1;
        cnt[r0 * W1 + c1 + 1] -= 1;
        cnt[(r1 + 1) * W1 + c0] -= 1;
        cnt[(r1 + 1) * W1 + c1 + 1] += 1;
        br0 = std::min(br0, r0), br1 = std::max(br1, r1);
        bc0 = std::min(bc0, c0), bc1 = std::max(bc1, c1);
    }
    if (ws.live.empty()) return r;
    // Prefix sums over the bounding rectangle turn differences into counts.
    for (int y = br0; y <= br1; ++y)
        for (int x = bc0 + 1; x <= bc1; ++x) cnt[y * W1 + x] += cnt[y * W1 + x - 1];
    for (int y = br0 + 1; y <= br1; ++y)
        for (int x = bc0; x <= bc1; ++x) cnt[y * W1 + x] += cnt[(y - 1) * W1 + x];
    if (!g.full)
        for (int y = br0; y <= br1; ++y)
            for (int x = bc0; x <= bc1; ++x)
                if (!g.mask[static_cast<std::size_t>(y * C + x)]) cnt[y * W1 + x] = masked;
    // Row maxima: the first column of the largest positive count in each row. Counts only
    // decrease, so a row's maximum changes only when its own cell was lowered.
    ws.row_max.resize(static_cast<std::size_t>(R));
    ws.row_arg.resize(static_cast<std::size_t>(R));
    ws.row_dirty.assign(static_cast<std::size_t>(R), 0);
    auto rescan = [&](int y) {
        const int* row = cnt + y * W1;
        int m = 0, a = -1;
        for (int x = bc0; x <= bc1; ++x)
            if (row[x] > m) m = row[x], a = x;
        ws.row_max[static_cast<std::size_t>(y)] = m;
        ws.row_arg[static_cast<std::size_t>(y)] = a;
    };
    for (int y = br0; y <= br1; ++y) rescan(y);
    for (;;) {
        // The first largest count in row-major order, as a scan of every cell would find it.
        int best = 0, by = -1, bxi = -1;
        for (int y = br0; y <= br1; ++y)
            if (ws.row_max[static_cast<std::size_t>(y)] > best)
                best = ws.row_max[static_cast<std::size_t>(y)], by = y,
                bxi = ws.row_arg[static_cast<std::size_t>(y)];
        if (best <= 0) break;
        const int k = static_cast<int>(r.chips.size());
        r.chips.push_back(g.chip(static_cast<std::size_t>(by), static_cast<std::size_t>(bxi)));
        r.counts.push_back(best);
        std::size_t keep = 0;
        for (std::size_t i = 0; i < ws.live.size(); ++i) {
            const int b = ws.live[i];
            const int* rc = &ws.rects[4 * static_cast<std::size_t>(b)];
            if (bxi < rc[0] || bxi > rc[1] || by < rc[2] || by > rc[3]) {
                ws.live[keep++] = b;
                continue;
            }
            r.owner[static_cast<std::size_t>(b)] = k;
            for (int y = rc[2]; y <= rc[3]; ++y) {
                int* row = cnt + y * W1;
                for (int x = rc[0]; x <= rc[1]; ++x) row[x] -= 1;
                const int a = ws.row_arg[static_cast<std::size_t>(y)];
                if (a >= rc[0] && a <= rc[1]) ws.row_dirty[static_cast<std::size_t>(y)] = 1;
            }
        }
        ws.live.resize(keep);
        if (keep == 0) break;
        for (int y = br0; y <= br1; ++y)
            if (ws.row_dirty[static_cast<std::size_t>(y)]) {
                ws.row_dirty[static_cast<std::size_t>(y)] = 0;
                rescan(y);
            }
    }
    for (int y = br0; y <= br1 + 1; ++y)
        std::fill(cnt + y * W1 + bc0, cnt + y * W1 + bc1 + 2, 0);
    return r;
}

/// @brief Mutable views are read as const ones.
template <class T>
    requires(!std::is_const_v<T>)
cover_result greedy_cover(const chip_grid& g, box_view<T> boxes, cover_workspace& ws) {
    return greedy_cover(g, box_view<const T>(boxes), ws);
}
template <class T>
    requires(!std::is_const_v<T>)
cover_result greedy_cover_naive(std::vector<box<int>> candidates, box_view<T> boxes) {
    return greedy_cover_naive(std::move(candidates), box_view<const T>(boxes));
}

/// @brief Convenience overload: builds the grid of `candidates` and covers `boxes`.
template <class T>
cover_result greedy_cover(const std::vector<box<int>>& candidates, box_view<T> boxes) {
    cover_workspace ws;
    return greedy_cover(chip_grid::from_candidates(candidates), box_view<const T>(boxes), ws);
}

} // namespace snip
