// polygon.hpp: geometry of COCO polygons (area, bounds, moving them into a chip, flipping,
// clipping to a rectangle) and the per-RoI mask targets of Mask R-CNN training, from
// polygons (by COCO's rasterisation rule, at the target's resolution) or from an RLE mask;
// plus an RLE mask resampled into a chip's frame.
//
// Coordinates are continuous pixels (pixel (x, y) covers [x, x + 1) x [y, y + 1)).
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/mask/rle.hpp>
#include <snip/mask/segmentation.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace snip::mask {

/// @brief The polygon's area by the shoelace formula (absolute value; a self-intersecting
/// polygon's lobes of opposite orientation cancel). 0 for fewer than 3 vertices.
inline double area(const polygon& p) {
    const std::size_t k = p.size() / 2;
    if (k < 3) return 0.0;
    double s = 0.0;
    for (std::size_t i = 0, j = k - 1; i < k; j = i++)
        s += p[2 * j] * p[2 * i + 1] - p[2 * i] * p[2 * j + 1];
    return std::abs(s) * 0.5;
}

/// @brief The box spanned by all vertices of all polygons (xyxy); all zeros when there
/// are no vertices.
inline box<double> bounds(const std::vector<polygon>& ps) {
    box<double> b{};
    bool any = false;
    for (const polygon& p : ps)
        for (std::size_t i = 0; i + 1 < p.size(); i += 2) {
            const double x = p[i], y = p[i + 1];
            if (!any) {
                b = {x, y, x, y};
                any = true;
            } else {
                b = {std::min(b.x1, x), std::min(b.y1, y), std::max(b.x2, x), std::max(b.y2, y)};
            }
        }
    return b;
}

/// @brief The polygon in the frame of a chip: every vertex scaled by `factor` (the image's
/// resize factor) and moved by (-x1, -y1) (the chip's corner in scaled pixels):
/// x * factor - x1, y * factor - y1. No clipping: vertices may fall outside the chip.
inline polygon to_chip(const polygon& p, double factor, double x1, double y1) {
    polygon out(p.size());
    for (std::size_t i = 0; i + 1 < p.size(); i += 2) {
        out[i] = p[i] * factor - x1;
        out[i + 1] = p[i + 1] * factor - y1;
    }
    return out;
}

/// @brief The polygon mirrored left-right in an image of width `w`: x -> w - x.
inline polygon flip_x(const polygon& p, double w) {
    polygon out(p);
    for (std::size_t i = 0; i + 1 < p.size(); i += 2)
        out[i] = w - p[i];
    return out;
}

namespace detail {

/// One Sutherland-Hodgman pass: keeps the part of `in` (as x, y pairs) where
/// side(x, y) >= 0; `axis` 0 cuts at x = c, 1 at y = c; keep_below keeps coordinates <= c.
inline void clip_pass(const polygon& in, polygon& out, int axis, double c, bool keep_below) {
    out.clear();
    const std::size_t k = in.size() / 2;
    if (k == 0) return;
    auto keep = [&](std::size_t i) {
        const double v = in[2 * i + axis];
        return keep_below ? v <= c : v >= c;
    };
    for (std::size_t i = 0; i < k; ++i) {
        const std::size_t j = (i + k - 1) % k; // previous vertex
        const bool ki = keep(i), kj = keep(j);
        if (ki != kj) { // the edge j -> i crosses the line: add the crossing
            const double a = in[2 * j + axis], b = in[2 * i + axis];
            const double t = (c - a) / (b - a);
            const int o = 1 - axis;
            const double other = in[2 * j + o] + t * (in[2 * i + o] - in[2 * j + o]);
            if (axis == 0)
                out.insert(out.end(), {c, other});
            else
                out.insert(out.end(), {other, c});
        }
        if (ki) out.insert(out.end(), {in[2 * i], in[2 * i + 1]});
    }
}

} // namespace detail

/// @brief The part of polygon `p` inside the closed rectangle `rect` (Sutherland-Hodgman).
/// The result may have edges along the rectangle's sides where a non-convex polygon leaves
/// and re-enters it. Empty when fewer than 3 vertices remain or the area is 0. An odd
/// number of values throws snip::error.
inline polygon clip(const polygon& p, const box<double>& rect) {
    require(p.size() % 2 == 0, "mask::clip: a polygon has an odd number of values (", p.size(),
            ")");
    polygon a(p), b;
    detail::clip_pass(a, b, 0, rect.x1, false);
    detail::clip_pass(b, a, 0, rect.x2, true);
    detail::clip_pass(a, b, 1, rect.y1, false);
    detail::clip_pass(b, a, 1, rect.y2, true);
    if (a.size() < 6 || area(a) <= 0.0) return {};
    return a;
}

/// @brief clip() of every polygon; the empty results are dropped.
inline std::vector<polygon> clip(const std::vector<polygon>& ps, const box<double>& rect) {
    std::vector<polygon> out;
    for (const polygon& p : ps) {
        polygon c = clip(p, rect);
        if (!c.empty()) out.push_back(std::move(c));
    }
    return out;
}

namespace detail {

/// Reads the columns of an rle one at a time, in nondecreasing column order, without
/// decoding the rest of the mask.
class column_reader {
public:
    explicit column_reader(const rle& r)
        : r_(r), col_(static_cast<std::size_t>(std::max(r.height, 0))) {}

    /// The 0/1 values of column x (0 <= x < width), rows 0..height-1.
    const std::vector<std::uint8_t>& column(int x) {
        if (x == cached_) return col_;
        const std::uint64_t h = static_cast<std::uint64_t>(r_.height);
        const std::uint64_t start = static_cast<std::uint64_t>(x) * h, stop = start + h;
        // advance to the run that contains `start`
        while (k_ < r_.counts.size() && run_end_() <= start) {
            pos_ += r_.counts[k_++];
        }
        std::size_t k = k_;
        std::uint64_t pos = pos_;
        std::fill(col_.begin(), col_.end(), std::uint8_t{0});
        while (k < r_.counts.size() && pos < stop) {
            const std::uint64_t end = pos + r_.counts[k];
            if (k % 2 == 1) {
                const std::uint64_t a = std::max(pos, start), b = std::min(end, stop);
                for (std::uint64_t p = a; p < b; ++p)
                    col_[static_cast<std::size_t>(p - start)] = 1;
            }
            pos = end;
            ++k;
        }
        cached_ = x;
        return col_;
    }

private:
    std::uint64_t run_end_() const { return pos_ + r_.counts[k_]; }
    const rle& r_;
    std::vector<std::uint8_t> col_;
    std::size_t k_ = 0;     // first run not wholly before the last requested column
    std::uint64_t pos_ = 0; // start of run k_
    int cached_ = -1;
};

} // namespace detail

/// @brief The Mask R-CNN training target of an object given as polygons for the RoI `roi`
/// (xyxy, in the polygons' pixel frame): M x M row-major 0/1 into `out` (out[i * M + j],
/// row i, column j). As the original SNIPER computes it: with w = max(1, x2 - x1) and
/// h = max(1, y2 - y1), every vertex is mapped to ((x - x1) * M / w, (y - y1) * M / h), each
/// polygon is rasterised at M x M by COCO's rule (see from_polygon) and the target is the
/// union of the parts. Like the original, the rasterisation is done with x and y exchanged
/// (the polygon's rows as COCO's columns), so that COCO's column-major result is the
/// row-major target: COCO's rule samples columns and rows a little differently, and the
/// target equals the transpose of from_polygon(transposed polygon), which may differ from
/// from_polygon of the mapped polygon in a few boundary pixels. Only M x M work memory.
inline void roi_mask(const std::vector<polygon>& ps, const box<double>& roi, int M,
                     std::uint8_t* out) {
    require(M > 0, "mask::roi_mask: mask size M is ", M, ", must be > 0");
    const double w = std::max(1.0, roi.x2 - roi.x1), h = std::max(1.0, roi.y2 - roi.y1);
    const std::size_t n = static_cast<std::size_t>(M) * static_cast<std::size_t>(M);
    std::fill(out, out + n, std::uint8_t{0});
    polygon q;
    std::vector<std::int64_t> toggles;
    for (const polygon& p : ps) {
        detail::check_polygon(p, "mask::roi_mask");
        q.resize(p.size());
        for (std::size_t i = 0; i + 1 < p.size(); i += 2) {
            q[i] = (p[i + 1] - roi.y1) * M / h; // exchanged: y first
            q[i + 1] = (p[i] - roi.x1) * M / w;
        }
        toggles.clear();
        detail::polygon_toggles(q.data(), q.size() / 2, M, M, toggles);
        const std::vector<std::uint32_t> counts = detail::counts_from_toggles(toggles, n);
        // COCO's column-major positions of the exchanged polygon are row-major positions
        std::size_t pos = 0;
        for (std::size_t k = 0; k < counts.size(); ++k) {
            if (k % 2 == 1) std::fill(out + pos, out + pos + counts[k], std::uint8_t{1});
            pos += counts[k];
        }
    }
}

/// @brief The Mask R-CNN training target for the RoI `roi` from an RLE mask `m` in the same
/// pixel frame: M x M row-major 0/1 into `out`. With w = max(1, x2 - x1) and
/// h = max(1, y2 - y1), bin (i, j) (row i, column j) takes the value of the mask pixel that
/// contains the bin's centre (x1 + (j + 0.5) * w / M, y1 + (i + 0.5) * h / M); 0 where the
/// centre lies outside the mask. Reads only the mask columns it needs.
inline void roi_mask(const rle& m, const box<double>& roi, int M, std::uint8_t* out) {
    require(M > 0, "mask::roi_mask: mask size M is ", M, ", must be > 0");
    check(m, "mask::roi_mask");
    const double w = std::max(1.0, roi.x2 - roi.x1), h = std::max(1.0, roi.y2 - roi.y1);
    std::vector<int> rows(static_cast<std::size_t>(M));
    for (int i = 0; i < M; ++i) {
        const double cy = std::floor(roi.y1 + (i + 0.5) * h / M);
        rows[static_cast<std::size_t>(i)] = cy >= 0 && cy < m.height ? static_cast<int>(cy) : -1;
    }
    detail::column_reader reader(m);
    for (int j = 0; j < M; ++j) {
        const double cx = std::floor(roi.x1 + (j + 0.5) * w / M);
        const bool in = cx >= 0 && cx < m.width;
        const std::vector<std::uint8_t>* col = in ? &reader.column(static_cast<int>(cx)) : nullptr;
        for (int i = 0; i < M; ++i) {
            const int y = rows[static_cast<std::size_t>(i)];
            out[static_cast<std::size_t>(i) * M + j] =
                (col && y >= 0) ? (*col)[static_cast<std::size_t>(y)] : std::uint8_t{0};
        }
    }
}

/// @brief An RLE mask `m` of the original image resampled into a chip's frame:
/// out_height x out_width, where chip pixel (x, y) covers the scaled-image pixel
/// rect.x1 + x .. rect.x1 + x + 1 (same for y), the image being scaled by `factor`. Chip
/// pixel (x, y) takes the original pixel that contains its centre,
/// (floor((rect.x1 + x + 0.5) / factor), floor((rect.y1 + y + 0.5) / factor)); it is 0 when
/// that centre lies outside `rect` or outside the original mask. Works column by column,
/// without an image-sized buffer.
inline rle crop_rle(const rle& m, double factor, const box<double>& rect, int out_height,
                    int out_width) {
    require(factor > 0 && std::isfinite(factor), "mask::crop_rle: factor is ", factor,
            ", must be finite and > 0");
    require(out_height >= 0 && out_width >= 0, "mask::crop_rle: output size ", out_height, "x",
            out_width, " (height x width) is negative");
    check(m, "mask::crop_rle");
    auto source = [&](double lo, double hi, int i, int limit) {
        const double c = lo + i + 0.5;
        if (!(c >= lo && c <= hi)) return -1;
        const double s = std::floor(c / factor);
        return s >= 0 && s < limit ? static_cast<int>(s) : -1;
    };
    std::vector<int> rows(static_cast<std::size_t>(out_height));
    for (int y = 0; y < out_height; ++y)
        rows[static_cast<std::size_t>(y)] = source(rect.y1, rect.y2, y, m.height);
    detail::column_reader reader(m);
    detail::run_builder b;
    for (int x = 0; x < out_width; ++x) {
        const int sx = source(rect.x1, rect.x2, x, m.width);
        if (sx < 0) {
            b.push(false, static_cast<std::uint64_t>(out_height));
            continue;
        }
        const std::vector<std::uint8_t>& col = reader.column(sx);
        // runs of equal value down the column
        int y = 0;
        while (y < out_height) {
            const int sy = rows[static_cast<std::size_t>(y)];
            const bool v = sy >= 0 && col[static_cast<std::size_t>(sy)] != 0;
            int e = y + 1;
            while (e < out_height) {
                const int se = rows[static_cast<std::size_t>(e)];
                if ((se >= 0 && col[static_cast<std::size_t>(se)] != 0) != v) break;
                ++e;
            }
            b.push(v, static_cast<std::uint64_t>(e - y));
            y = e;
        }
    }
    return rle{out_height, out_width, b.take()};
}

} // namespace snip::mask
