// mask_test_util.hpp: the slow, obviously-correct polygon geometry the mask tests compare
// against (even-odd point-in-polygon, distance to the nearest edge) and random star-shaped
// polygons.
#pragma once

#include <snip/mask/segmentation.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <random>
#include <vector>

namespace mask_test {

using snip::mask::polygon;

/// Even-odd point-in-polygon.
inline bool inside(const polygon& p, double px, double py) {
    bool in = false;
    const std::size_t k = p.size() / 2;
    for (std::size_t i = 0, j = k - 1; i < k; j = i++) {
        double xi = p[2 * i], yi = p[2 * i + 1], xj = p[2 * j], yj = p[2 * j + 1];
        if ((yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi) in = !in;
    }
    return in;
}

/// Distance from (px, py) to the segment (ax, ay)-(bx, by).
inline double segment_distance(double px, double py, double ax, double ay, double bx, double by) {
    double vx = bx - ax, vy = by - ay, l2 = vx * vx + vy * vy;
    double t = l2 > 0 ? std::clamp(((px - ax) * vx + (py - ay) * vy) / l2, 0.0, 1.0) : 0.0;
    double dx = ax + t * vx - px, dy = ay + t * vy - py;
    return std::sqrt(dx * dx + dy * dy);
}

/// Distance from (px, py) to the polygon's nearest edge.
inline double edge_distance(const polygon& p, double px, double py) {
    double d = 1e300;
    const std::size_t k = p.size() / 2;
    for (std::size_t i = 0, j = k - 1; i < k; j = i++)
        d = std::min(d, segment_distance(px, py, p[2 * j], p[2 * j + 1], p[2 * i], p[2 * i + 1]));
    return d;
}

/// A simple star-shaped polygon around (cx, cy): `n` vertices at increasing angles and
/// radii in [rmin, rmax] (convex when rmin == rmax, non-convex otherwise).
inline polygon star(double cx, double cy, double rmin, double rmax, int n, std::mt19937& g) {
    std::uniform_real_distribution<double> ur(rmin, rmax), ua(0.0, 1.0);
    std::vector<double> ang(static_cast<std::size_t>(n));
    for (auto& a : ang)
        a = ua(g) * 2 * std::numbers::pi;
    std::sort(ang.begin(), ang.end());
    polygon p;
    for (double a : ang) {
        double r = ur(g);
        p.push_back(cx + r * std::cos(a));
        p.push_back(cy + r * std::sin(a));
    }
    return p;
}

} // namespace mask_test
