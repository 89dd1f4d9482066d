// synthetic.cpp: the synthetic shapes dataset (declared in snip/train/synthetic.hpp).
#include <snip/train/synthetic.hpp>

#include <snip/mask/polygon.hpp>

#include <initializer_list>

namespace snip::train {

void synthetic_options::validate() const {
    const char* w = "synthetic_options: ";
    snip::require(images >= 1 && images <= 1000000, w, "images is ", images,
                  ", must be in 1..1000000");
    snip::require(min_side >= 16, w, "min_side is ", min_side, ", must be >= 16 px");
    snip::require(max_side <= 16384, w, "max_side is ", max_side, ", must be <= 16384 px");
    snip::require(min_side <= max_side, w, "min_side ", min_side, " is larger than max_side ",
                  max_side);
    snip::require(classes >= 1 && classes <= int(synthetic_class_names.size()), w, "classes is ",
                  classes, ", must be in 1..", synthetic_class_names.size());
    snip::require(min_objects >= 0, w, "min_objects is ", min_objects, ", must be >= 0");
    snip::require(max_objects <= 1000, w, "max_objects is ", max_objects, ", must be <= 1000");
    snip::require(min_objects <= max_objects, w, "min_objects ", min_objects,
                  " is larger than max_objects ", max_objects);
    snip::require(std::isfinite(min_object) && min_object >= 1.0, w, "min_object is ", min_object,
                  ", must be a finite number >= 1 px");
    snip::require(std::isfinite(max_object_fraction) && max_object_fraction > 0.0 &&
                      max_object_fraction <= 1.0,
                  w, "max_object_fraction is ", max_object_fraction, ", must be in (0, 1]");
    snip::require(min_object <= max_object_fraction * min_side, w, "min_object ", min_object,
                  " px is larger than the largest object max_object_fraction x min_side = ",
                  max_object_fraction, " x ", min_side, " = ", max_object_fraction * min_side,
                  " px");
    snip::require(std::isfinite(crowd_fraction) && crowd_fraction >= 0.0 && crowd_fraction <= 1.0,
                  w, "crowd_fraction is ", crowd_fraction, ", must be in [0, 1]");
}

namespace detail {

double synth_uniform(snip::splitmix64& g, double a, double b) {
    return a + (b - a) * g.uniform();
}

double synth_log_uniform(snip::splitmix64& g, double a, double b) {
    return a * std::exp(g.uniform() * std::log(b / a));
}

std::array<float, 3> synth_hsv(double h, double s, double v) {
    h = std::fmod(h, 360.0);
    if (h < 0) h += 360.0;
    const double c = v * s;
    const double hp = h / 60.0;
    const double x = c * (1.0 - std::fabs(std::fmod(hp, 2.0) - 1.0));
    double r = 0, g = 0, b = 0;
    switch (int(hp)) {
    case 0:
        r = c, g = x;
        break;
    case 1:
        r = x, g = c;
        break;
    case 2:
        g = c, b = x;
        break;
    case 3:
        g = x, b = c;
        break;
    case 4:
        r = x, b = c;
        break;
    default:
        r = c, b = x;
        break;
    }
    const double m = v - c;
    return {float(255.0 * (r + m)), float(255.0 * (g + m)), float(255.0 * (b + m))};
}

double synth_shape_distance(int cls, int direction, double u, double v) {
    switch (cls) {
    case 0: // disc
        return std::sqrt(u * u + v * v) - 1.0;
    case 1: // square
        return std::max(std::fabs(u), std::fabs(v)) - 1.0;
    case 2: { // triangle, apex at v = -1 (up) before turning
        if (direction == 1)
            v = -v;
        else if (direction == 2)
            std::swap(u, v);
        else if (direction == 3) {
            std::swap(u, v);
            v = -v;
        }
        constexpr double inv_sqrt5 = 0.44721359549995793;
        return std::max(
            {v - 1.0, -(2.0 * u + v + 1.0) * inv_sqrt5, (2.0 * u - v - 1.0) * inv_sqrt5});
    }
    case 3: // diamond
        return (std::fabs(u) + std::fabs(v) - 1.0) * 0.70710678118654752;
    case 4: { // cross: a horizontal and a vertical bar of half thickness t
        constexpr double t = 0.36;
        const double au = std::fabs(u), av = std::fabs(v);
        return std::min(std::max(au - 1.0, av - t), std::max(au - t, av - 1.0));
    }
    default: // ring: outer radius 1, inner 0.4
        return std::fabs(std::sqrt(u * u + v * v) - 0.7) - 0.3;
    }
}

namespace {

/// Where a shape's box sits in the image: the frame of its unit square [-1, 1]^2.
struct synth_frame {
    double cx, cy, inv_hw, inv_hh, min_half;
    int x0, x1, y0, y1; ///< pixels the box touches, clipped to the image: [x0, x1) x [y0, y1)

    synth_frame(const synth_object& o, int w, int h) {
        cx = 0.5 * (o.b.x1 + o.b.x2), cy = 0.5 * (o.b.y1 + o.b.y2);
        const double hw = 0.5 * o.b.width(), hh = 0.5 * o.b.height();
        min_half = std::min(hw, hh), inv_hw = 1.0 / hw, inv_hh = 1.0 / hh;
        x0 = std::max(0, int(std::floor(o.b.x1))), x1 = std::min(w, int(std::ceil(o.b.x2)));
        y0 = std::max(0, int(std::floor(o.b.y1))), y1 = std::min(h, int(std::ceil(o.b.y2)));
    }

    /// Coverage of pixel (x, y), whose centre is (u, v) in the unit square: 0 or 1 when the
    /// centre is clearly outside or inside, else the share of 4 x 4 sub-samples inside.
    float coverage(const synth_object& o, int x, int y, double u, double v) const {
        // Distance in px is at least |d| x the shorter half side; the pixel's corners
        // are within 0.71 px of its centre.
        const double d = synth_shape_distance(o.cls, o.direction, u, v) * min_half;
        if (d <= -0.75) return 1.f;
        if (d >= 0.75) return 0.f;
        int inside = 0;
        for (int sy = 0; sy < 4; ++sy)
            for (int sx = 0; sx < 4; ++sx) {
                const double su = (x + (sx + 0.5) * 0.25 - cx) * inv_hw;
                const double sv = (y + (sy + 0.5) * 0.25 - cy) * inv_hh;
                inside += synth_shape_distance(o.cls, o.direction, su, sv) < 0.0;
            }
        return float(inside) / 16.f;
    }
};

} // namespace

void synth_draw(std::vector<float>& buf, int w, int h, const synth_object& o) {
    const synth_frame f(o, w, h);
    for (int y = f.y0; y < f.y1; ++y) {
        float* row = buf.data() + std::size_t(y) * std::size_t(w) * 3;
        const double v = (y + 0.5 - f.cy) * f.inv_hh;
        for (int x = f.x0; x < f.x1; ++x) {
            const double u = (x + 0.5 - f.cx) * f.inv_hw;
            const float a = f.coverage(o, x, y, u, v);
            if (a <= 0.f) continue;
            const float shade = 1.f + 0.12f * (o.shade_x * float(u) + o.shade_y * float(v));
            float* p = row + 3 * x;
            for (int c = 0; c < 3; ++c) {
                const float col = std::min(255.f, o.rgb[std::size_t(c)] * shade);
                p[c] += a * (col - p[c]);
            }
        }
    }
}

std::vector<float> synth_coverage(const synth_object& o, int w, int h) {
    snip::require(w > 0 && h > 0, "synth_coverage: image size ", w, " x ", h, " must be positive");
    std::vector<float> out(std::size_t(w) * std::size_t(h), 0.f);
    const synth_frame f(o, w, h);
    for (int y = f.y0; y < f.y1; ++y) {
        const double v = (y + 0.5 - f.cy) * f.inv_hh;
        for (int x = f.x0; x < f.x1; ++x)
            out[std::size_t(y) * std::size_t(w) + std::size_t(x)] =
                f.coverage(o, x, y, (x + 0.5 - f.cx) * f.inv_hw, v);
    }
    return out;
}

int synth_ellipse_vertices(double a, double b) {
    snip::require(std::isfinite(a) && std::isfinite(b) && a > 0 && b > 0,
                  "synth_ellipse_vertices: semi-axes ", a, " and ", b,
                  " must be finite and positive");
    constexpr double pi = 3.14159265358979323846;
    const double r = std::max(a, b);
    int n = 8;
    if (synth_max_gap > 0 && synth_max_gap < r) {
        // The fewest multiple of 4 with r (1 - cos(pi / n)) <= synth_max_gap; the loop
        // guards against the last bit of acos and cos.
        const double half_step = std::acos(1.0 - synth_max_gap / r);
        n = std::max(n, 4 * int(std::ceil(pi / (4.0 * half_step))));
        while (r * (1.0 - std::cos(pi / n)) > synth_max_gap)
            n += 4;
    }
    return n;
}

std::vector<mask::polygon> synth_polygons(const synth_object& o) {
    const snip::box<double>& b = o.b;
    const double cx = 0.5 * (b.x1 + b.x2), cy = 0.5 * (b.y1 + b.y2);
    const double hw = 0.5 * b.width(), hh = 0.5 * b.height();
    // Unit-square coordinates to px; the box's own edges and centre exactly.
    auto px = [&](double u) { return u == -1.0 ? b.x1 : u == 1.0 ? b.x2 : cx + u * hw; };
    auto py = [&](double v) { return v == -1.0 ? b.y1 : v == 1.0 ? b.y2 : cy + v * hh; };
    auto of = [&](std::initializer_list<std::array<double, 2>> uv) {
        mask::polygon p;
        p.reserve(2 * uv.size());
        for (const auto& q : uv) {
            p.push_back(px(q[0]));
            p.push_back(py(q[1]));
        }
        return p;
    };
    // Ellipse of radii (k hw, k hh) from angle 0 (the +u end), every 2 pi / n, in the
    // direction of increasing v first; `reverse` walks it the other way round from angle 0.
    auto ellipse = [&](mask::polygon& p, double k, int n, bool reverse) {
        constexpr double half_pi = 1.57079632679489662;
        const int m = n / 4;
        for (int i = 0; i < n; ++i) {
            const int j = reverse ? (n - i) % n : i;
            const int q = j / m, r = j % m;
            // cos and sin of the angle within its quarter, exact at the quarter's start
            const double c = r == 0 ? 1.0 : std::cos(half_pi * r / m);
            const double s = r == 0 ? 0.0 : std::sin(half_pi * r / m);
            double u = c, v = s; // rotate by q quarter turns
            if (q == 1) u = -s, v = c;
            if (q == 2) u = -c, v = -s;
            if (q == 3) u = s, v = -c;
            p.push_back(k == 1.0 ? px(u) : cx + k * u * hw);
            p.push_back(k == 1.0 ? py(v) : cy + k * v * hh);
        }
    };
    switch (o.cls) {
    case 0: { // disc
        mask::polygon p;
        const int n = synth_ellipse_vertices(hw, hh);
        p.reserve(2 * std::size_t(n));
        ellipse(p, 1.0, n, false);
        return {std::move(p)};
    }
    case 1: // square
        return {of({{-1, -1}, {1, -1}, {1, 1}, {-1, 1}})};
    case 2: { // triangle: apex at v = -1 before turning (see synth_shape_distance)
        std::array<std::array<double, 2>, 3> t{{{0, -1}, {1, 1}, {-1, 1}}};
        for (auto& q : t) {
            const double u = q[0], v = q[1];
            if (o.direction == 1)
                q = {u, -v}; // apex down
            else if (o.direction == 2)
                q = {v, u}; // apex left
            else if (o.direction == 3)
                q = {-v, u}; // apex right
        }
        return {of({t[0], t[1], t[2]})};
    }
    case 3: // diamond
        return {of({{0, -1}, {1, 0}, {0, 1}, {-1, 0}})};
    case 4: { // cross, bars of half thickness t (as in synth_shape_distance)
        constexpr double t = 0.36;
        return {of({{-t, -1},
                    {t, -1},
                    {t, -t},
                    {1, -t},
                    {1, t},
                    {t, t},
                    {t, 1},
                    {-t, 1},
                    {-t, t},
                    {-1, t},
                    {-1, -t},
                    {-t, -t}})};
    }
    default: { // ring: a keyhole (outer boundary, cut, inner boundary reversed, cut back)
        mask::polygon p;
        const int n = synth_ellipse_vertices(hw, hh);
        p.reserve(4 * std::size_t(n) + 4);
        ellipse(p, 1.0, n, false);
        p.push_back(b.x2); // back at the outer boundary's first vertex
        p.push_back(cy);
        ellipse(p, 0.4, n, true);
        p.push_back(cx + 0.4 * hw); // back at the inner boundary's first vertex
        p.push_back(cy);
        return {std::move(p)};
    }
    }
}

double synth_overlap(const snip::box<double>& a, const snip::box<double>& b) {
    const double iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
    const double ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
    if (iw <= 0 || ih <= 0) return 0.0;
    return iw * ih / std::min(a.area(), b.area());
}

void synth_image(const synthetic_options& o, std::size_t index, snip::image_record& rec, image& out,
                 std::vector<synth_object>* objects) {
    snip::splitmix64 g{snip::mix(o.seed, std::uint64_t(index) + 1)};
    auto int_in = [&](int lo, int hi) { return lo + int(g.below(std::uint64_t(hi - lo) + 1)); };
    const int W = int_in(o.min_side, o.max_side), H = int_in(o.min_side, o.max_side);

    // Objects: sizes first, then placement largest first.
    const int n = int_in(o.min_objects, o.max_objects);
    const double max_object = o.max_object_fraction * std::min(W, H);
    // Sides in eighths of a pixel.
    const auto lo8 = std::int64_t(std::ceil(o.min_object * 8.0));
    const auto hi8 = std::max(lo8, std::int64_t(std::floor(max_object * 8.0)));
    auto eighths = [&](double side) {
        return std::clamp(std::int64_t(std::llround(side * 8.0)), lo8, hi8);
    };
    struct drawn {
        synth_object obj;
        std::int64_t w8, h8;
    };
    std::vector<drawn> objs;
    objs.reserve(std::size_t(n));
    for (int k = 0; k < n; ++k) {
        drawn d;
        d.obj.cls = int(g.below(std::uint64_t(o.classes)));
        const double s = synth_log_uniform(g, o.min_object, std::max(o.min_object, max_object));
        const double r = std::sqrt(synth_log_uniform(g, 0.8, 1.25));
        d.w8 = eighths(s * r);
        d.h8 = eighths(s / r);
        d.obj.direction = int(g.below(4));
        const double hue = synthetic_class_hues[std::size_t(d.obj.cls)] + synth_uniform(g, -15, 15);
        d.obj.rgb = synth_hsv(hue, synth_uniform(g, 0.6, 1.0), synth_uniform(g, 0.6, 1.0));
        d.obj.shade_x = float(synth_uniform(g, -1, 1));
        d.obj.shade_y = float(synth_uniform(g, -1, 1));
        d.obj.crowd = g.uniform() < o.crowd_fraction;
        objs.push_back(d);
    }
    std::stable_sort(objs.begin(), objs.end(),
                     [](const drawn& a, const drawn& b) { return a.w8 * a.h8 > b.w8 * b.h8; });
    std::vector<synth_object> placed;
    placed.reserve(objs.size());
    const std::int64_t W8 = std::int64_t(W) * 8, H8 = std::int64_t(H) * 8;
    for (drawn& d : objs) {
        bool ok = false;
        for (;;) {
            for (int attempt = 0; attempt < 40 && !ok; ++attempt) {
                const auto x8 = std::int64_t(g.below(std::uint64_t(W8 - d.w8) + 1));
                const auto y8 = std::int64_t(g.below(std::uint64_t(H8 - d.h8) + 1));
                const snip::box<double> b{double(x8) / 8, double(y8) / 8, double(x8 + d.w8) / 8,
                                          double(y8 + d.h8) / 8};
                ok = std::all_of(placed.begin(), placed.end(), [&](const synth_object& p) {
                    return synth_overlap(b, p.b) <= 0.2;
                });
                if (ok) d.obj.b = b;
            }
            if (ok || (d.w8 == lo8 && d.h8 == lo8)) break;
            d.w8 = std::max(lo8, d.w8 * 3 / 4);
            d.h8 = std::max(lo8, d.h8 * 3 / 4);
        }
        if (ok) placed.push_back(d.obj);
    }

    // Background: two desaturated colours blended by three plane waves.
    std::array<float, 3> base[2];
    for (auto& c : base)
        c = synth_hsv(synth_uniform(g, 0, 360), synth_uniform(g, 0, 0.3),
                      synth_uniform(g, 0.2, 0.85));
    struct wave {
        float amp, sharp;
        std::vector<float> sx, cx, sy, cy;
    };
    std::array<wave, 3> waves;
    constexpr double two_pi = 6.283185307179586;
    for (wave& wv : waves) {
        wv.amp = float(synth_uniform(g, 0.05, 0.16));
        wv.sharp = g.below(3) == 0 ? 4.f : 1.f; // a third of the waves become soft stripes
        const double len = synth_log_uniform(g, 20, 400), angle = synth_uniform(g, 0, two_pi / 2);
        const double phase = synth_uniform(g, 0, two_pi);
        const double kx = two_pi * std::cos(angle) / len, ky = two_pi * std::sin(angle) / len;
        wv.sx.resize(std::size_t(W));
        wv.cx.resize(std::size_t(W));
        wv.sy.resize(std::size_t(H));
        wv.cy.resize(std::size_t(H));
        for (int x = 0; x < W; ++x) {
            wv.sx[std::size_t(x)] = float(std::sin(kx * (x + 0.5)));
            wv.cx[std::size_t(x)] = float(std::cos(kx * (x + 0.5)));
        }
        for (int y = 0; y < H; ++y) {
            wv.sy[std::size_t(y)] = float(std::sin(ky * (y + 0.5) + phase));
            wv.cy[std::size_t(y)] = float(std::cos(ky * (y + 0.5) + phase));
        }
    }
    std::vector<float> buf(std::size_t(W) * std::size_t(H) * 3);
    std::vector<float> blend(static_cast<std::size_t>(W)); // weight of base[1] along a row
    for (int y = 0; y < H; ++y) {
        float* t = blend.data();
        std::fill_n(t, W, 0.5f);
        for (const wave& wv : waves) {
            // sin(kx x + ky y + phase) from the separable tables, clamped after sharpening
            const float sy = wv.sy[std::size_t(y)], cy = wv.cy[std::size_t(y)];
            const float amp = wv.amp, sharp = wv.sharp;
            const float* sx = wv.sx.data();
            const float* cx = wv.cx.data();
            for (int x = 0; x < W; ++x) {
                const float s = sharp * (sx[x] * cy + cx[x] * sy);
                t[x] += amp * std::min(1.f, std::max(-1.f, s));
            }
        }
        float* row = buf.data() + std::size_t(y) * std::size_t(W) * 3;
        for (int x = 0; x < W; ++x)
            for (std::size_t c = 0; c < 3; ++c)
                row[3 * x + int(c)] = base[0][c] + t[x] * (base[1][c] - base[0][c]);
    }
    for (const synth_object& p : placed)
        synth_draw(buf, W, H, p);

    // Noise and quantisation (a stream of its own: one draw per pixel).
    out = image(W, H);
    snip::splitmix64 noise{snip::mix(g.next(), 0x6e6f697365ull)};
    for (std::size_t i = 0, np = std::size_t(W) * std::size_t(H); i < np; ++i) {
        const std::uint64_t r = noise.next();
        const int grey = int(((r & 0xFF) * 17) >> 8) - 8; // -8..8
        for (std::size_t c = 0; c < 3; ++c) {
            const int chroma = int((((r >> (8 + 8 * c)) & 0xFF) * 7) >> 8) - 3; // -3..3
            const int v = int(buf[3 * i + c] + 0.5f) + grey + chroma; // buf is in [0, 255]
            out.px[3 * i + c] = std::uint8_t(std::min(255, std::max(0, v)));
        }
    }

    rec = snip::image_record{};
    rec.width = W;
    rec.height = H;
    for (const synth_object& p : placed) {
        rec.boxes.push_back(p.b);
        rec.categories.push_back(p.cls + 1);
        rec.crowd.push_back(p.crowd ? 1 : 0);
        mask::segmentation seg;
        seg.polygons = synth_polygons(p);
        double area = 0;
        for (const mask::polygon& q : seg.polygons)
            area += mask::area(q);
        rec.areas.push_back(area);
        rec.segments.push_back(std::move(seg));
    }
    if (objects) *objects = std::move(placed);
}

} // namespace detail

synthetic_set make_synthetic(const synthetic_options& o) {
    o.validate();
    synthetic_set s;
    s.ds.source = snip::concat("synthetic (", o.images, " images, ", o.classes, " classes, seed ",
                               o.seed, ")");
    for (int k = 0; k < o.classes; ++k)
        s.ds.categories.push_back({k + 1, synthetic_class_names[std::size_t(k)]});
    const auto n = std::size_t(o.images);
    s.ds.images.resize(n);
    s.pixels.resize(n);
    std::int64_t next_ann = 1;
    for (std::size_t i = 0; i < n; ++i) {
        snip::image_record& rec = s.ds.images[i];
        detail::synth_image(o, i, rec, s.pixels[i]);
        rec.id = std::int64_t(i) + 1;
        std::string num = std::to_string(rec.id);
        rec.file_name =
            "synth_" + std::string(num.size() < 6 ? 6 - num.size() : 0, '0') + num + ".png";
        for (std::size_t k = 0; k < rec.boxes.size(); ++k)
            rec.ann_ids.push_back(next_ann++);
    }
    return s;
}

image_source synthetic_source(const synthetic_set& s) {
    return [&s](std::size_t i) {
        snip::require(i < s.pixels.size(), "synthetic_source: image index ", i, " but the set has ",
                      s.pixels.size(), " images");
        return s.pixels[i];
    };
}

void write_synthetic(const synthetic_set& s, const std::string& dir) {
    namespace fs = std::filesystem;
    snip::require(s.pixels.size() == s.ds.images.size(), "write_synthetic: ", s.ds.images.size(),
                  " images but ", s.pixels.size(), " pixel buffers");
    std::error_code ec, ec_dir;
    fs::create_directories(dir, ec);
    if (ec || !fs::is_directory(dir, ec_dir))
        snip::fail(dir, ": cannot create the folder for the synthetic set",
                   ec ? " (" + ec.message() + ")" : std::string());
    std::string png;
    for (std::size_t i = 0; i < s.pixels.size(); ++i) {
        const image& im = s.pixels[i];
        const std::string path = (fs::path(dir) / s.ds.images[i].file_name).string();
        snip::require(!im.empty() && im.px.size() == std::size_t(im.w) * std::size_t(im.h) * 3,
                      path, ": image ", i, " has no valid pixels (", im.w, " x ", im.h, ")");
        png.clear();
        const int ok = stbi_write_png_to_func(
            [](void* ctx, void* data, int size) {
                static_cast<std::string*>(ctx)->append(static_cast<const char*>(data),
                                                       std::size_t(size));
            },
            &png, im.w, im.h, 3, im.px.data(), im.w * 3);
        snip::require(ok != 0 && !png.empty(), path, ": PNG encoding failed");
        snip::io::write_atomically(path, png);
    }
    snip::io::write_coco(s.ds, (fs::path(dir) / "annotations.json").string());
}

} // namespace snip::train
