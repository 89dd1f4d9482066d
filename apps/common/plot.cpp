// plot.cpp: the charts of plot.hpp, drawn with cairo through draw::canvas.
#include <snip_apps/plot.hpp>

#include <snip/core/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace snip::apps::plot {

namespace {

using draw::mix;

constexpr draw::rgb white{255, 255, 255};
constexpr draw::rgb ink{25, 25, 25};
constexpr draw::rgb tick_ink{70, 70, 70};
constexpr draw::rgb grid_grey{228, 228, 228};
constexpr draw::rgb frame_grey{90, 90, 90};

bool usable(double v, bool log) { return std::isfinite(v) && (!log || v > 0.0); }

bool same(draw::rgb a, draw::rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

/// One axis: data range, scale type and length in pixels.
struct axis {
    double lo = 0, hi = 1;
    bool log = false;
    int len = 1;
    double t(double v) const { return log ? std::log10(v) : v; }
    double from_t(double u) const { return log ? std::pow(10.0, u) : u; }
    /// Pixel offset of value v along the axis, 0 .. len-1 (may fall outside).
    double pos(double v) const { return (t(v) - t(lo)) / (t(hi) - t(lo)) * double(len - 1); }
    bool contains(double v) const {
        const double eps = 1e-9 * (t(hi) - t(lo));
        return usable(v, log) && t(v) >= t(lo) - eps && t(v) <= t(hi) + eps;
    }
};

struct tick {
    double v = 0;
    bool major = true;
    std::string label;
};

/// "1e7", "2e-5", or plain digits for 1e-3 .. 1e6.
std::string format_log(double v) {
    char buf[48];
    if (v >= 1e-3 && v < 1e6) {
        std::snprintf(buf, sizeof buf, "%.6g", v);
    } else {
        const int e = int(std::floor(std::log10(v) + 1e-9));
        const double m = v / std::pow(10.0, e);
        if (std::fabs(m - 1.0) < 1e-6)
            std::snprintf(buf, sizeof buf, "1e%d", e);
        else
            std::snprintf(buf, sizeof buf, "%.3ge%d", m, e);
    }
    return buf;
}

std::string format_linear(double v, double step) {
    char buf[48];
    if (std::fabs(v) < step * 1e-6) v = 0.0;
    const double big = std::fabs(v);
    if (big >= 1e7 || (big > 0 && big < 1e-4)) {
        std::snprintf(buf, sizeof buf, "%.3g", v);
        return buf;
    }
    const int decimals = step >= 1.0 ? 0 : int(std::ceil(-std::log10(step) - 1e-9));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

/// Do the labelled ticks sit far enough apart? x: labels must not touch; y: rows
/// must be `min_px` apart.
bool ticks_fit(const std::vector<tick>& ts, const axis& a, bool is_x, double fs, int min_px) {
    double last = -1e18;
    double last_w = 0;
    for (const auto& k : ts) {
        if (!k.major) continue;
        const double p = a.pos(k.v);
        const double w = draw::text_width(k.label, fs);
        if (last > -1e17) {
            const double need = is_x ? std::max<double>(min_px, (w + last_w) / 2.0 + fs)
                                     : double(min_px);
            if (p - last < need) return false;
        }
        last = p;
        last_w = w;
    }
    return true;
}

int count_major(const std::vector<tick>& ts) {
    int n = 0;
    for (const auto& k : ts) n += k.major;
    return n;
}

/// Linear 1-2-5 ticks (in data units, also on a log axis): the smallest step whose
/// labels fit.
std::vector<tick> linear_ticks(const axis& a, bool is_x, double fs, int min_px) {
    const double span = a.hi - a.lo;
    double step = std::pow(10.0, std::floor(std::log10(span / 100.0)));
    const double mult[] = {1, 2, 5};
    std::vector<tick> best;
    for (int iter = 0; iter < 60; ++iter) {
        for (double m : mult) {
            const double s = step * m;
            const double k0 = std::ceil(a.lo / s - 1e-9), k1 = std::floor(a.hi / s + 1e-9);
            if (k1 - k0 > 200) continue;
            std::vector<tick> ts;
            for (double k = k0; k <= k1; k += 1.0) {
                const double v = k * s;
                if (!usable(v, a.log)) continue;
                ts.push_back({v, true, format_linear(v, s)});
            }
            if (ticks_fit(ts, a, is_x, fs, min_px)) return ts;
            best = std::move(ts);
        }
        step *= 10.0;
    }
    return best;
}

/// Log ticks: 1-2-5 per decade, decades, or every n-th decade; else linear ones.
std::vector<tick> log_ticks(const axis& a, bool is_x, double fs, int min_px) {
    const int d0 = int(std::floor(std::log10(a.lo))) - 1;
    const int d1 = int(std::ceil(std::log10(a.hi))) + 1;
    auto make = [&](const std::vector<int>& labelled, const std::vector<int>& minor, int every) {
        std::vector<tick> ts;
        for (int d = d0; d <= d1; ++d) {
            const double p = std::pow(10.0, d);
            for (int m = 1; m <= 9; ++m) {
                const double v = m * p;
                if (!a.contains(v)) continue;
                const bool lab = std::find(labelled.begin(), labelled.end(), m) != labelled.end() &&
                                 (m != 1 || ((d % every) + every) % every == 0);
                const bool min = std::find(minor.begin(), minor.end(), m) != minor.end() ||
                                 (m == 1 && !lab);
                if (lab)
                    ts.push_back({v, true, format_log(v)});
                else if (min)
                    ts.push_back({v, false, {}});
            }
        }
        return ts;
    };
    auto ts = make({1, 2, 5}, {3, 4, 6, 7, 8, 9}, 1);
    if (count_major(ts) >= 3 && ticks_fit(ts, a, is_x, fs, min_px)) return ts;
    const int decades_in = count_major(make({1}, {}, 1));
    if (decades_in < 2) return linear_ticks(a, is_x, fs, min_px);
    ts = make({1}, {2, 3, 4, 5, 6, 7, 8, 9}, 1);
    if (ticks_fit(ts, a, is_x, fs, min_px)) return ts;
    for (int every : {2, 3, 5, 10, 20, 50, 100}) {
        ts = make({1}, {}, every);
        if (ticks_fit(ts, a, is_x, fs, min_px) || every == 100) return ts;
    }
    return ts;
}

std::vector<tick> make_ticks(const axis& a, bool is_x, double fs, int min_px) {
    return a.log ? log_ticks(a, is_x, fs, min_px) : linear_ticks(a, is_x, fs, min_px);
}

/// Bin edges [left, right] in axis t-space of bar i of `s` (x = bin centres).
std::pair<double, double> bar_edges(const series& s, std::size_t i, const axis& a) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    auto tx = [&](std::size_t k) {
        return k < s.x.size() && usable(s.x[k], a.log) ? a.t(s.x[k]) : nan;
    };
    const double c = tx(i);
    const double prev = i > 0 ? tx(i - 1) : nan, next = tx(i + 1);
    const bool has_prev = !std::isnan(prev), has_next = !std::isnan(next);
    double l, r;
    if (has_prev && has_next) {
        l = (prev + c) / 2, r = (c + next) / 2;
    } else if (has_next) {
        r = (c + next) / 2, l = c - (r - c);
    } else if (has_prev) {
        l = (prev + c) / 2, r = c + (c - l);
    } else {
        const double half = a.log ? std::log10(2.0) / 2 : 0.5;
        l = c - half, r = c + half;
    }
    if (l > r) std::swap(l, r);
    return {l, r};
}

/// Data range of one axis over all series (bars: their edges, and 0 on linear y).
/// `pinned_lo`: the low end is the zero baseline of bars (no margin below it).
void data_range(const chart& c, bool x_axis, bool log, double& lo, double& hi,
                       bool& pinned_lo) {
    lo = std::numeric_limits<double>::infinity();
    hi = -lo;
    bool bars_y = false;
    axis probe;
    probe.log = log;
    for (const auto& s : c.data) {
        const std::size_t n = std::min(s.x.size(), s.y.size());
        for (std::size_t i = 0; i < n; ++i) {
            const double xv = s.x[i], yv = s.y[i];
            if (!usable(xv, c.log_x) || !usable(yv, c.log_y)) continue;
            if (x_axis && s.kind == series::bars) {
                auto [l, r] = bar_edges(s, i, probe);
                lo = std::min(lo, probe.from_t(l));
                hi = std::max(hi, probe.from_t(r));
                continue;
            }
            const double v = x_axis ? xv : yv;
            lo = std::min(lo, v);
            hi = std::max(hi, v);
            if (!x_axis && s.kind == series::bars && !log) {
                bars_y = true;
                lo = std::min(lo, 0.0);
                hi = std::max(hi, 0.0);
            }
        }
    }
    pinned_lo = bars_y && lo == 0.0;
}

/// The axis range: given ends, else the data with a margin.
axis make_axis(const chart& c, bool x_axis, int len) {
    axis a;
    a.log = x_axis ? c.log_x : c.log_y;
    a.len = len;
    const auto& fix_lo = x_axis ? c.xmin : c.ymin;
    const auto& fix_hi = x_axis ? c.xmax : c.ymax;
    const char* name = x_axis ? "x" : "y";
    double lo, hi;
    bool pinned;
    data_range(c, x_axis, a.log, lo, hi, pinned);
    if (!(lo <= hi)) {  // no data
        lo = a.log ? 1.0 : 0.0;
        hi = a.log ? 10.0 : 1.0;
    }
    if (fix_lo) lo = *fix_lo;
    if (fix_hi) hi = *fix_hi;
    if (a.log)
        snip::require(std::isfinite(lo) && std::isfinite(hi) && lo > 0 && hi > 0, "plot '",
                      c.title, "': log ", name, " axis needs positive ends, got ", lo, " .. ", hi);
    snip::require(std::isfinite(lo) && std::isfinite(hi), "plot '", c.title, "': ", name,
                  " axis ends must be finite, got ", lo, " .. ", hi);
    if (lo == hi && !(fix_lo && fix_hi)) {
        if (a.log) {
            if (!fix_lo) lo /= 2;
            if (!fix_hi) hi *= 2;
        } else if (pinned && !fix_hi) {  // all bars zero: keep the baseline at the bottom
            hi = lo + 1.0;
        } else {
            const double d = std::max(1.0, std::fabs(lo) * 0.1);
            if (!fix_lo) lo -= d;
            if (!fix_hi) hi += d;
        }
    }
    snip::require(lo < hi, "plot '", c.title, "': ", name, " axis range ", lo, " .. ", hi,
                  " is empty (min must be below max)");
    const double tl = a.t(lo), th = a.t(hi), m = (th - tl) * (x_axis ? 0.03 : 0.06);
    if (!fix_lo && !(pinned && !a.log && lo == 0.0)) lo = a.from_t(tl - m);
    if (!fix_hi) hi = a.from_t(th + m);
    a.lo = lo;
    a.hi = hi;
    return a;
}

/// Clips segment (x0,y0)-(x1,y1) to [xl,xh] x [yl,yh] (Liang-Barsky). False if outside.
bool clip_segment(double& x0, double& y0, double& x1, double& y1, double xl, double xh,
                         double yl, double yh) {
    double t0 = 0, t1 = 1;
    const double dx = x1 - x0, dy = y1 - y0;
    const double p[4] = {-dx, dx, -dy, dy};
    const double q[4] = {x0 - xl, xh - x0, y0 - yl, yh - y0};
    for (int i = 0; i < 4; ++i) {
        if (p[i] == 0) {
            if (q[i] < 0) return false;
        } else {
            const double r = q[i] / p[i];
            if (p[i] < 0)
                t0 = std::max(t0, r);
            else
                t1 = std::min(t1, r);
        }
    }
    if (t0 > t1) return false;
    const double ax = x0 + t0 * dx, ay = y0 + t0 * dy;
    x1 = x0 + t1 * dx, y1 = y0 + t1 * dy;
    x0 = ax, y0 = ay;
    return true;
}

void marker(draw::canvas& cv, double x, double y, char m, int r, draw::rgb c) {
    r = std::max(1, r);
    const double th = std::max(1.0, (r + 1) / 2.0);
    switch (m) {
    case 'x':
        cv.line(x - r, y - r, x + r, y + r, c, th);
        cv.line(x - r, y + r, x + r, y - r, c, th);
        break;
    case '*':
        cv.line(x - r, y - r, x + r, y + r, c, std::max(1.0, th - 1));
        cv.line(x - r, y + r, x + r, y - r, c, std::max(1.0, th - 1));
        cv.line(x - r, y, x + r, y, c, th);
        cv.line(x, y - r, x, y + r, c, th);
        break;
    case 's': cv.fill_rect(x - r, y - r, x + r, y + r, c); break;
    default: cv.disc(x, y, r + 0.5, c); break;
    }
}

int clamp_px(double v, int lo, int hi) {
    if (!(v == v)) return lo;
    return static_cast<int>(std::lround(std::clamp(v, double(lo), double(hi))));
}

} // namespace

draw::canvas render(const chart& c, int width, int height) {
    snip::require(width >= 120 && height >= 90, "plot '", c.title, "': canvas ", width, "x",
                  height, " is too small (at least 120x90)");
    for (const auto& s : c.data)
        snip::require(s.x.size() == s.y.size(), "plot '", c.title, "': series '", s.label,
                      "' has ", s.x.size(), " x values but ", s.y.size(), " y values");
    const int ts = std::max(1, std::min(width / 600, height / 380));  // size scale
    const double fs = 12.0 * ts, title_fs = 15.0 * ts;                // font sizes, px
    const int pad = 8 * ts, tick_len = 5 * ts;
    const int char_h = int(std::ceil(draw::text_height(fs)));

    const int top = pad + (c.title.empty() ? 0 : int(std::ceil(draw::text_height(title_fs))) + pad);
    const int bottom = tick_len + 3 * ts + char_h + (c.xlabel.empty() ? 0 : 4 * ts + char_h) + pad;
    const int ph = height - top - bottom;
    snip::require(ph >= 40, "plot '", c.title, "': canvas height ", height,
                  " leaves no room for the plot");
    const axis yprobe = make_axis(c, false, ph);
    const auto yticks = make_ticks(yprobe, false, fs, 30 * ts);
    int ylab_w = 0;
    for (const auto& k : yticks)
        ylab_w = std::max(ylab_w, int(std::ceil(draw::text_width(k.label, fs))));
    const int left = pad + (c.ylabel.empty() ? 0 : char_h + 6 * ts) + ylab_w + 4 * ts + tick_len;
    const int right = 18 * ts;
    const int pw = width - left - right;
    snip::require(pw >= 40, "plot '", c.title, "': canvas width ", width,
                  " leaves no room for the plot");
    const axis xa = make_axis(c, true, pw);
    const axis& ya = yprobe;
    const auto xticks = make_ticks(xa, true, fs, 56 * ts);

    draw::canvas out(width, height, white);
    draw::canvas pc(pw, ph, white);
    auto X = [&](double v) { return xa.pos(v); };
    auto Y = [&](double v) { return double(ph - 1) - ya.pos(v); };
    auto inside_px = [&](double px, double py) {
        return px > -1000 && px < pw + 1000 && py > -1000 && py < ph + 1000;
    };

    // grid lines at the labelled ticks
    for (const auto& k : xticks)
        if (k.major) {
            const int x = clamp_px(X(k.v), -1, pw);
            pc.fill_rect(x, 0, x, ph - 1, grid_grey);
        }
    for (const auto& k : yticks)
        if (k.major) {
            const int y = clamp_px(Y(k.v), -1, ph);
            pc.fill_rect(0, y, pw - 1, y, grid_grey);
        }

    // bands: tinted, with dashed edges
    auto band_px = [&](double v) {
        if (std::isnan(v) || v == -std::numeric_limits<double>::infinity() || (xa.log && v <= 0))
            return -1.0;
        if (v == std::numeric_limits<double>::infinity()) return double(pw);
        return X(v);
    };
    for (const auto& b : c.xbands) {
        const double x0 = std::clamp(band_px(b.lo), -1.0, double(pw));
        const double x1 = std::clamp(band_px(b.hi), -1.0, double(pw));
        pc.fill_rect(std::max(0.0, x0), 0, std::min(pw - 1.0, x1), ph - 1, b.color, 0.2);
    }
    const draw::canvas base = pc;

    // bars first, then lines and markers in series order; bars of several series at the
    // same x share its bin, side by side in series order
    std::map<double, std::vector<const series*>> at_x;
    for (const auto& s : c.data)
        if (s.kind == series::bars)
            for (std::size_t i = 0; i < s.x.size(); ++i)
                if (usable(s.x[i], xa.log) && usable(s.y[i], ya.log)) {
                    auto& v = at_x[s.x[i]];
                    if (v.empty() || v.back() != &s) v.push_back(&s);
                }
    for (const auto& s : c.data) {
        if (s.kind != series::bars) continue;
        const double base_y = ya.log ? double(ph - 1) : Y(std::clamp(0.0, ya.lo, ya.hi));
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            if (!usable(s.x[i], xa.log) || !usable(s.y[i], ya.log)) continue;
            const auto& group = at_x[s.x[i]];
            const std::size_t nbars = group.size();
            const std::size_t j = std::size_t(std::find(group.begin(), group.end(), &s) - group.begin());
            auto [l, r] = bar_edges(s, i, xa);
            const double gap = (r - l) * 0.06, sub = (r - l - 2 * gap) / double(nbars);
            const double bl = l + gap + sub * double(j), br = bl + sub;
            const double px0 = X(xa.from_t(bl)), px1 = X(xa.from_t(br));
            const int x0 = clamp_px(std::ceil(px0), -2, pw + 1);
            const int x1 = std::max(x0, clamp_px(std::floor(px1), -2, pw + 1) - (nbars > 1 ? 0 : 1));
            const int yt = clamp_px(Y(s.y[i]), -2, ph + 1), yb = clamp_px(base_y, -2, ph + 1);
            const int ya0 = std::min(yt, yb), ya1 = std::max(yt, yb);
            pc.fill_rect(x0, ya0, x1, ya1, s.color);
            if (x1 - x0 >= 4 && ya1 - ya0 >= 2) pc.rect(x0, ya0, x1, ya1, mix(s.color, ink, 0.45));
        }
    }
    for (const auto& s : c.data) {
        if (s.kind == series::bars) continue;
        const bool lines = s.kind == series::line || s.kind == series::line_points;
        const bool marks = s.kind == series::points || s.kind == series::line_points;
        const double thick = s.kind == series::line ? std::max(1, s.size) : std::max(1, s.size / 2);
        if (lines) {
            bool have = false;
            double px = 0, py = 0;
            for (std::size_t i = 0; i < s.x.size(); ++i) {
                if (!usable(s.x[i], xa.log) || !usable(s.y[i], ya.log)) {
                    have = false;
                    continue;
                }
                const double qx = X(s.x[i]), qy = Y(s.y[i]);
                if (have) {
                    double ax = px, ay = py, bx = qx, by = qy;
                    if (clip_segment(ax, ay, bx, by, -20, pw + 20, -20, ph + 20))
                        pc.line(ax, ay, bx, by, s.color, thick);
                }
                px = qx, py = qy, have = true;
            }
        }
        if (marks)
            for (std::size_t i = 0; i < s.x.size(); ++i) {
                if (!usable(s.x[i], xa.log) || !usable(s.y[i], ya.log)) continue;
                const double qx = X(s.x[i]), qy = Y(s.y[i]);
                if (!inside_px(qx, qy)) continue;
                marker(pc, qx, qy, s.marker, s.size, s.color);
            }
    }

    // band edges over the data
    for (const auto& b : c.xbands)
        for (double v : {b.lo, b.hi}) {
            if (!usable(v, xa.log)) continue;
            const double p = X(v);
            if (p < 0 || p > pw - 1) continue;
            pc.line(p, 0, p, ph - 1, mix(b.color, ink, 0.15), ts, 5.0 * ts, 4.0 * ts);
        }

    // legend: top right, or where it hides the fewest data pixels
    struct entry {
        const series* s;
        const band* b;
    };
    std::vector<entry> entries;
    for (const auto& s : c.data)
        if (!s.label.empty()) entries.push_back({&s, nullptr});
    for (const auto& b : c.xbands)
        if (!b.label.empty()) entries.push_back({nullptr, &b});
    if (!entries.empty()) {
        int text_w = 0;
        for (const auto& e : entries)
            text_w = std::max(text_w, int(std::ceil(draw::text_width(e.s ? e.s->label : e.b->label, fs))));
        const int sw = 22 * ts, lh = char_h + 3 * ts, lp = 6 * ts;
        const int lw = lp + sw + lp + text_w + lp, lhh = lp + int(entries.size()) * lh + lp - (lh - char_h);
        const int m = 6 * ts;
        const int cx = (pw - lw) / 2;
        const std::pair<int, int> spots[] = {{pw - m - lw, m},           {m, m},
                                             {pw - m - lw, ph - m - lhh}, {m, ph - m - lhh},
                                             {cx, m},                    {cx, ph - m - lhh}};
        long best = -1;
        std::pair<int, int> at = spots[0];
        for (const auto& sp : spots) {
            long n = 0;
            for (int y = std::max(0, sp.second); y < std::min(ph, sp.second + lhh); ++y)
                for (int x = std::max(0, sp.first); x < std::min(pw, sp.first + lw); ++x)
                    n += !same(pc.pixel(x, y), base.pixel(x, y));
            if (best < 0 || n < best) best = n, at = sp;
        }
        const int lx = at.first, ly = at.second;
        pc.fill_rect(lx, ly, lx + lw - 1, ly + lhh - 1, white);
        pc.rect(lx, ly, lx + lw - 1, ly + lhh - 1, {170, 170, 170});
        for (std::size_t k = 0; k < entries.size(); ++k) {
            const auto& e = entries[k];
            const int ey = ly + lp + int(k) * lh;
            const double mid = ey + (char_h - 1) / 2.0;
            const int sx0 = lx + lp, sx1 = sx0 + sw - 1;
            const int sy0 = ey + 2 * ts, sy1 = ey + char_h - 1 - 2 * ts;
            if (e.b) {
                pc.fill_rect(sx0, sy0, sx1, sy1, e.b->color, 0.2);
                pc.fill_rect(sx0, sy0, sx0 + ts - 1, sy1, mix(e.b->color, ink, 0.15));
                pc.fill_rect(sx1 - ts + 1, sy0, sx1, sy1, mix(e.b->color, ink, 0.15));
            } else {
                const series& s = *e.s;
                if (s.kind == series::bars) {
                    pc.fill_rect(sx0 + 3 * ts, sy0, sx1 - 3 * ts, sy1, s.color);
                } else {
                    if (s.kind != series::points)
                        pc.line(sx0, mid, sx1, mid, s.color,
                                s.kind == series::line ? std::max(1, s.size) : std::max(1, s.size / 2));
                    if (s.kind != series::line)
                        marker(pc, (sx0 + sx1) / 2.0, mid, s.marker, std::min(s.size, lh / 2), s.color);
                }
            }
            pc.text(sx1 + 1 + lp, ey, e.s ? e.s->label : e.b->label, ink, fs);
        }
    }
    out.blit(pc, left, top);
    out.rect(left - 1, top - 1, left + pw, top + ph, frame_grey);

    // ticks and their labels
    for (const auto& k : xticks) {
        const double p = X(k.v);
        if (p < -0.5 || p > pw - 0.5) continue;
        const int x = left + int(std::lround(p)), y = top + ph + 1;
        out.fill_rect(x, y, x + ts - 1, y + (k.major ? tick_len : tick_len / 2) - 1, frame_grey);
        if (k.major)
            out.text(x + ts / 2.0 - draw::text_width(k.label, fs) / 2, y + tick_len + 2 * ts,
                     k.label, tick_ink, fs);
    }
    for (const auto& k : yticks) {
        const double p = Y(k.v);
        if (p < -0.5 || p > ph - 0.5) continue;
        const int y = top + int(std::lround(p)), x = left - 2;
        const int tl = k.major ? tick_len : tick_len / 2;
        out.fill_rect(x - tl + 1, y, x, y + ts - 1, frame_grey);
        if (k.major)
            out.text(x - tick_len - 3 * ts - draw::text_width(k.label, fs), y - (char_h - ts) / 2.0,
                     k.label, tick_ink, fs);
    }

    // title and axis labels
    if (!c.title.empty()) {
        const double tw = draw::text_width(c.title, title_fs, true);
        double tx = left + (pw - tw) / 2;
        if (tx + tw > width - pad) tx = width - pad - tw;
        out.text(std::max<double>(pad, tx), pad, c.title, ink, title_fs, true);
    }
    if (!c.xlabel.empty()) {
        const double tw = draw::text_width(c.xlabel, fs);
        out.text(std::max<double>(pad, left + (pw - tw) / 2), height - pad - char_h, c.xlabel, ink, fs);
    }
    if (!c.ylabel.empty()) {
        const double tw = draw::text_width(c.ylabel, fs);
        out.text_up(pad, std::min<double>(height - pad, top + (ph + tw) / 2), c.ylabel, ink, fs);
    }
    return out;
}

/// @brief Tiles `panels` row by row, `columns` per row, each in a cell the size of the
/// largest panel (smaller panels centred), on white.
draw::canvas grid(const std::vector<draw::canvas>& panels, int columns) {
    snip::require(!panels.empty(), "plot::grid: no panels to tile");
    snip::require(columns > 0, "plot::grid: columns must be > 0, got ", columns);
    const int n = int(panels.size()), cols = std::min(columns, n), rows = (n + cols - 1) / cols;
    int cw = 1, ch = 1;
    for (const auto& p : panels) cw = std::max(cw, p.width()), ch = std::max(ch, p.height());
    draw::canvas out(cw * cols, ch * rows, white);
    for (int i = 0; i < n; ++i) {
        const auto& p = panels[std::size_t(i)];
        out.blit(p, (i % cols) * cw + (cw - p.width()) / 2, (i / cols) * ch + (ch - p.height()) / 2);
    }
    return out;
}

} // namespace snip::apps::plot
