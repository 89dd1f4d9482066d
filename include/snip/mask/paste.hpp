// paste.hpp: a detection's M x M mask probabilities pasted into its image as an RLE mask,
// built column by column (no image-sized buffer).
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/mask/rle.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace snip::mask {

namespace detail {

/// Where an image coordinate c falls on the M cells of [lo, lo + size]: the two cells to
/// interpolate between and the weight of the second.
struct lerp_at {
    int i0 = 0, i1 = 0;
    double f = 0.0;
};

inline lerp_at cell_of(double c, double lo, double size, int M) {
    double u = (c - lo) * M / size - 0.5; // cell i is centred at u = i
    u = std::clamp(u, 0.0, static_cast<double>(M - 1));
    lerp_at r;
    r.i0 = static_cast<int>(std::floor(u));
    r.i1 = std::min(r.i0 + 1, M - 1);
    r.f = u - r.i0;
    return r;
}

/// First index i in [0, n] with lo <= i + 0.5, and first with i + 0.5 >= hi: the pixels
/// whose centres lie in [lo, hi) are [first, last).
inline void centre_range(double lo, double hi, int n, int& first, int& last) {
    auto in_lo = [&](int i) { return lo <= i + 0.5; };
    auto below_hi = [&](int i) { return i + 0.5 < hi; };
    first = static_cast<int>(std::clamp(std::ceil(lo - 0.5), 0.0, static_cast<double>(n)));
    while (first > 0 && in_lo(first - 1))
        --first;
    while (first < n && !in_lo(first))
        ++first;
    last = static_cast<int>(
        std::clamp(std::ceil(hi - 0.5), static_cast<double>(first), static_cast<double>(n)));
    while (last > first && !below_hi(last - 1))
        --last;
    while (last < n && below_hi(last))
        ++last;
}

} // namespace detail

/// @brief Pastes a detection's mask probabilities into its image, as Mask R-CNN inference
/// does, and thresholds them: an RLE of height x width.
///
/// `prob` is M x M, row-major (prob[i * M + j], row i, column j), and covers the box `det`
/// (xyxy, continuous pixels of the image): cell (j, i) is centred at
/// (det.x1 + (j + 0.5) * det.width() / M, det.y1 + (i + 0.5) * det.height() / M).
/// Image pixel (x, y), centre (x + 0.5, y + 0.5), is set when its centre lies in the box
/// (det.x1 <= x + 0.5 < det.x2, same for y) and the bilinear interpolation of `prob` at the
/// centre is >= `threshold`. Interpolation: u = (x + 0.5 - det.x1) * M / det.width() - 0.5
/// clamped to [0, M - 1] (so the outer half cells take the edge values), j0 = floor(u),
/// j1 = min(j0 + 1, M - 1), fx = u - j0, likewise i0, i1, fy for rows; in double,
/// value = (1 - fy) * ((1 - fx) * p[i0][j0] + fx * p[i0][j1])
///       + fy * ((1 - fx) * p[i1][j0] + fx * p[i1][j1]).
/// Pixels outside the box are 0; so is the whole mask for an empty box. The RLE is built
/// column by column with O(M + height) memory.
inline rle paste(const float* prob, int M, const box<double>& det, int height, int width,
                 float threshold = 0.5f) {
    require(M > 0, "mask::paste: mask size M is ", M, ", must be > 0");
    require(height >= 0 && width >= 0, "mask::paste: image size ", height, "x", width,
            " (height x width) is negative");
    detail::run_builder b;
    const std::uint64_t total =
        static_cast<std::uint64_t>(height) * static_cast<std::uint64_t>(width);
    const bool usable = std::isfinite(det.x1) && std::isfinite(det.y1) && std::isfinite(det.x2) &&
                        std::isfinite(det.y2) && !det.empty();
    if (!usable) {
        b.push(false, total);
        return rle{height, width, b.take()};
    }
    int x0, x1, y0, y1;
    detail::centre_range(det.x1, det.x2, width, x0, x1);
    detail::centre_range(det.y1, det.y2, height, y0, y1);
    const double bw = det.width(), bh = det.height();
    std::vector<detail::lerp_at> rows(static_cast<std::size_t>(std::max(0, y1 - y0)));
    for (int y = y0; y < y1; ++y)
        rows[static_cast<std::size_t>(y - y0)] = detail::cell_of(y + 0.5, det.y1, bh, M);
    std::vector<double> col(static_cast<std::size_t>(M));
    const double t = threshold;
    // columns before the box
    b.push(false, static_cast<std::uint64_t>(x0) * static_cast<std::uint64_t>(height));
    for (int x = x0; x < x1; ++x) {
        const detail::lerp_at cx = detail::cell_of(x + 0.5, det.x1, bw, M);
        for (int i = 0; i < M; ++i) {
            const float* r = prob + static_cast<std::size_t>(i) * static_cast<std::size_t>(M);
            col[static_cast<std::size_t>(i)] = (1.0 - cx.f) * r[cx.i0] + cx.f * r[cx.i1];
        }
        b.push(false, static_cast<std::uint64_t>(y0));
        for (int y = y0; y < y1; ++y) {
            const detail::lerp_at& cy = rows[static_cast<std::size_t>(y - y0)];
            const double v = (1.0 - cy.f) * col[static_cast<std::size_t>(cy.i0)] +
                             cy.f * col[static_cast<std::size_t>(cy.i1)];
            b.push(v >= t, 1);
        }
        b.push(false, static_cast<std::uint64_t>(height - y1));
    }
    b.push(false, static_cast<std::uint64_t>(width - x1) * static_cast<std::uint64_t>(height));
    return rle{height, width, b.take()};
}

} // namespace snip::mask
