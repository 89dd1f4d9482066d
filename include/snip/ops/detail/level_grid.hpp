// detail/level_grid.hpp: the overlap index of the CPU NMS strategies: boxes bucketed by
// area level, each level a uniform grid, and the area filter that lets hard NMS and linear
// Soft-NMS skip levels whose areas are too different to reach the threshold.
#pragma once

#include <snip/core/box.hpp>
#include <snip/ops/nms_math.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace snip::detail {

/// Boxes (positive area only) bucketed by area for overlap queries. Level e holds the
/// boxes with area in [2^(e-1), 2^e) and has its own uniform grid, with cells about 1.5x
/// the side of its largest box (grown until the level has at most 4 * count + 16 cells).
/// A box is listed in every cell of its level that its extent [x1, x2 + extra] x
/// [y1, y2 + extra] touches (more than `max_cells` cells: the level's `big` list), and in
/// the level's `all` list. Two boxes with a positive intersection (under the convention)
/// always share a cell of either box's level, because the cell index is a monotone
/// function of the coordinate. A query visits the levels a predicate accepts (hard NMS
/// skips levels whose areas are too different for the IoU to pass the threshold) and in
/// each either the cells the box touches or, when that is cheaper, the `all` list.
template <class T>
struct level_grid {
    static constexpr std::int64_t max_cells = 64;
    struct level {
        double x0 = std::numeric_limits<double>::infinity(), y0 = x0, x1 = -x0, y1 = -x0;
        double lo_area = x0, hi_area = 0.0; ///< areas of the boxes framed in this level
        double inv = 1.0;
        std::int64_t gx = 0, gy = 0, head0 = 0;
        std::int64_t all = -1, big = -1; ///< list heads (into entries)
        std::int32_t count = 0, inserted = 0;
    };
    struct cell_span {
        std::int64_t x1, y1, x2, y2;
        std::int64_t cells() const { return (x2 - x1 + 1) * (y2 - y1 + 1); }
    };
    /// A listed box, stored inline so that a walk reads one record per box.
    struct entry {
        box<T> b;
        T area;
        std::int32_t j;
        std::int64_t next;
    };
    std::vector<level> levels;
    int emin = 0;                       ///< exponent of levels[0]
    /// Per box: its level (after reset), or `unused` when not in the grid. (Before the levels
    /// are known it holds the area's binary exponent, which is negative for areas below 0.5:
    /// the sentinel must not be a value an exponent can take.)
    std::vector<std::int32_t> level_of;
    static constexpr std::int32_t unused = std::numeric_limits<std::int32_t>::min();
    std::vector<std::int64_t> head;
    std::vector<entry> entries;

    static int exponent(T area) {
        if (!(area < std::numeric_limits<T>::infinity())) return 1 << 20;
        int e = 0;
        (void)std::frexp(double(area), &e);
        return e;
    }

    /// Frames the boxes j < n with use(j) (each must have a[j] > 0) and empties the lists.
    template <class Use>
    void reset(const T* c, const T* a, std::int32_t n, T extra, Use&& use) {
        level_of.assign(std::size_t(n), unused);
        head.clear();
        entries.clear();
        levels.clear();
        emin = std::numeric_limits<int>::max();
        int emax = std::numeric_limits<int>::min();
        for (std::int32_t j = 0; j < n; ++j) {
            if (!use(j)) continue;
            const int e = exponent(a[j]);
            level_of[std::size_t(j)] = e;
            emin = std::min(emin, e);
            emax = std::max(emax, e);
        }
        if (emin > emax) return;
        if (emax == (1 << 20)) { // infinite areas: one level above the largest finite one
            int top = emin;
            for (std::int32_t j = 0; j < n; ++j)
                if (level_of[std::size_t(j)] != unused && level_of[std::size_t(j)] < (1 << 20))
                    top = std::max(top, level_of[std::size_t(j)]);
            emax = top + 1;
            for (auto& e : level_of)
                if (e == (1 << 20)) e = emax;
        }
        levels.resize(std::size_t(emax - emin + 1));
        for (std::int32_t j = 0; j < n; ++j) {
            std::int32_t& li = level_of[std::size_t(j)];
            if (li == unused) continue;
            li -= emin;
            level& L = levels[std::size_t(li)];
            const box<T> b = load_box(c, j);
            L.x0 = std::min(L.x0, double(b.x1));
            L.y0 = std::min(L.y0, double(b.y1));
            L.x1 = std::max(L.x1, double(b.x2 + extra));
            L.y1 = std::max(L.y1, double(b.y2 + extra));
            L.lo_area = std::min(L.lo_area, double(a[j]));
            L.hi_area = std::max(L.hi_area, double(a[j]));
            ++L.count;
        }
        std::int64_t total = 0;
        for (level& L : levels) {
            if (L.count == 0) continue;
            const double ex = L.x1 - L.x0, ey = L.y1 - L.y0;
            const double cap = 4.0 * double(L.count) + 16.0;
            auto along = [](double e, double side) { return std::max(1.0, std::ceil(e / side)); };
            double side = std::max(1.5 * std::sqrt(L.hi_area), 1e-300);
            double dx = along(ex, side), dy = along(ey, side);
            if (dx * dy > cap) side *= std::sqrt(dx * dy / cap);
            for (;;) {
                dx = along(ex, side);
                dy = along(ey, side);
                if (dx * dy <= cap) break;
                side *= 1.25;
            }
            L.gx = std::int64_t(dx);
            L.gy = std::int64_t(dy);
            L.inv = 1.0 / side;
            L.head0 = total;
            total += L.gx * L.gy;
        }
        head.assign(std::size_t(total), -1);
    }

    static std::int64_t index(double v, double origin, double inv, std::int64_t g) {
        const double q = (v - origin) * inv;
        if (!(q >= 0.0)) return 0;
        if (q >= double(g)) return g - 1;
        return std::min<std::int64_t>(g - 1, std::int64_t(q));
    }

    static cell_span span(const level& L, const box<T>& b, T extra) {
        return {index(double(b.x1), L.x0, L.inv, L.gx), index(double(b.y1), L.y0, L.inv, L.gy),
                index(double(b.x2 + extra), L.x0, L.inv, L.gx),
                index(double(b.y2 + extra), L.y0, L.inv, L.gy)};
    }

    void push(std::int64_t& list, std::int32_t j, const box<T>& b, T area) {
        entries.push_back({b, area, j, list});
        list = std::int64_t(entries.size()) - 1;
    }

    /// Lists box j (framed by reset; `area` its nms_area) in its level.
    void insert(std::int32_t j, const box<T>& b, T area, T extra) {
        level& L = levels[std::size_t(level_of[std::size_t(j)])];
        ++L.inserted;
        push(L.all, j, b, area);
        const cell_span s = span(L, b, extra);
        if (s.cells() > max_cells) {
            push(L.big, j, b, area);
            return;
        }
        for (std::int64_t y = s.y1; y <= s.y2; ++y)
            for (std::int64_t x = s.x1; x <= s.x2; ++x)
                push(head[std::size_t(L.head0 + y * L.gx + x)], j, b, area);
    }

    template <class F>
    bool walk(std::int64_t e, F& f) const {
        for (; e >= 0; e = entries[std::size_t(e)].next)
            if (f(entries[std::size_t(e)])) return true;
        return false;
    }

    /// The levels that can hold areas in [lo, hi] (lo <= 0: from the first, hi = inf: to
    /// the last), as [first, last) indices.
    std::pair<std::size_t, std::size_t> levels_for(T lo, T hi) const {
        const auto nl = std::int64_t(levels.size());
        std::int64_t first = 0, last = nl;
        if (lo > T(0)) first = std::clamp<std::int64_t>(exponent(lo) - emin, 0, nl);
        if (hi < std::numeric_limits<T>::infinity())
            last = std::clamp<std::int64_t>(exponent(hi) - emin + 1, 0, nl);
        return {std::size_t(first), std::size_t(std::max(first, last))};
    }

    /// Calls f(entry) for listed boxes that may share a cell with `b` in the levels
    /// [range.first, range.second) with want(level) (a box may come more than once);
    /// returns true as soon as f does.
    template <class Want, class F>
    bool any(const box<T>& b, T extra, std::pair<std::size_t, std::size_t> range, Want&& want,
             F&& f) const {
        for (std::size_t li = range.first; li < range.second; ++li) {
            const level& L = levels[li];
            if (L.inserted == 0 || !want(L)) continue;
            const cell_span s = span(L, b, extra);
            if (s.cells() >= L.inserted) {
                if (walk(L.all, f)) return true;
                continue;
            }
            for (std::int64_t y = s.y1; y <= s.y2; ++y)
                for (std::int64_t x = s.x1; x <= s.x2; ++x)
                    if (walk(head[std::size_t(L.head0 + y * L.gx + x)], f)) return true;
            if (walk(L.big, f)) return true;
        }
        return false;
    }
};

/// Whether a level can hold a box whose IoU with a box of area `area` exceeds `thr`.
/// IoU <= min(area) / max(area), and in floating point the computed intersection never
/// exceeds the computed smaller area, so the computed IoU stays below
/// (min / max) * (1 + 4 eps); the 1e-5 margin covers that. Not used (always true) when
/// thr < 1e-3 or the area is below 1e-30 (where rounding is no longer relative).
struct area_filter {
    double thr = 0.0, area = 0.0;
    bool active = false;
    template <class T>
    static area_filter make(T thr, T area) {
        area_filter f;
        f.thr = double(thr);
        f.area = double(area);
        f.active = f.thr >= 1e-3 && f.area >= 1e-30;
        return f;
    }
    template <class L>
    bool operator()(const L& lv) const {
        if (!active) return true;
        constexpr double margin = 1.0 + 1e-5;
        return !(lv.hi_area * margin <= thr * area || area * margin <= thr * lv.lo_area);
    }
    /// The same test for one box, as an area window [lo, hi] in T: areas outside it cannot
    /// reach the threshold (the window is widened by a further 1e-5 for the rounding of
    /// its own computation). Everything passes when the filter is inactive.
    template <class T>
    void window(T& lo, T& hi) const {
        if (!active) {
            lo = T(0);
            hi = std::numeric_limits<T>::infinity();
            return;
        }
        constexpr double margin = 1.0 + 2e-5;
        lo = T(thr * area / margin);
        const double h = area * margin / thr;
        hi = h < double(std::numeric_limits<T>::max()) ? T(h) : std::numeric_limits<T>::infinity();
    }
};

} // namespace snip::detail
