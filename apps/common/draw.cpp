// draw.cpp: the canvas of draw.hpp on a cairo image surface.
#include <snip_apps/draw.hpp>

#include <snip/core/error.hpp>
#include <snip/mask/rle.hpp>

#include <cairo.h>
#include <stb_image.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numbers>
#include <string>
#include <utility>

namespace snip::apps::draw {

namespace {

constexpr const char* font_family = "DejaVu Sans";

void set_colour(cairo_t* cr, rgb c, double alpha = 1.0) {
    cairo_set_source_rgba(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0, alpha);
}

void set_font(cairo_t* cr, double size, bool bold) {
    cairo_select_font_face(cr, font_family, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/// A 1 x 1 surface on which text is measured.
cairo_t* measure_context() {
    thread_local struct holder {
        cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
        cairo_t* cr = cairo_create(s);
        ~holder() {
            cairo_destroy(cr);
            cairo_surface_destroy(s);
        }
    } h;
    return h.cr;
}

/// The path of the outline of pixels [x1, x2] x [y1, y2] drawn `t` px inwards: the
/// rectangle through the middle of the stroke.
void inner_rect_path(cairo_t* cr, double x1, double y1, double x2, double y2, double t) {
    const double w = std::max(0.0, x2 + 1 - x1 - t), h = std::max(0.0, y2 + 1 - y1 - t);
    cairo_rectangle(cr, x1 + t / 2, y1 + t / 2, w, h);
}

} // namespace

rgb mix(rgb a, rgb b, double t) {
    auto m = [t](std::uint8_t p, std::uint8_t q) {
        return static_cast<std::uint8_t>(std::lround(p + (double(q) - double(p)) * t));
    };
    return {m(a.r, b.r), m(a.g, b.g), m(a.b, b.b)};
}

void canvas::make(int width, int height) {
    snip::require(width > 0 && height > 0, "canvas size must be positive, got ", width, "x",
                  height);
    s_ = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    if (cairo_surface_status(s_) != CAIRO_STATUS_SUCCESS) {
        const char* why = cairo_status_to_string(cairo_surface_status(s_));
        cairo_surface_destroy(s_);
        s_ = nullptr;
        snip::fail("canvas ", width, "x", height, ": ", why);
    }
    cr_ = cairo_create(s_);
    w_ = width;
    h_ = height;
}

canvas::canvas(int width, int height, rgb fill) {
    make(width, height);
    set_colour(cr_, fill);
    cairo_paint(cr_);
}

canvas canvas::from_rgb(int width, int height, const std::uint8_t* px) {
    canvas c;
    c.make(width, height);
    cairo_surface_flush(c.s_);
    unsigned char* data = cairo_image_surface_get_data(c.s_);
    const int stride = cairo_image_surface_get_stride(c.s_);
    for (int y = 0; y < height; ++y) {
        auto* row = reinterpret_cast<std::uint32_t*>(data + std::ptrdiff_t(y) * stride);
        const std::uint8_t* p = px + std::size_t(y) * std::size_t(width) * 3;
        for (int x = 0; x < width; ++x, p += 3)
            row[x] = (std::uint32_t(p[0]) << 16) | (std::uint32_t(p[1]) << 8) | p[2];
    }
    cairo_surface_mark_dirty(c.s_);
    return c;
}

canvas::canvas(const canvas& o) {
    if (!o.s_) return;
    make(o.w_, o.h_);
    blit(o, 0, 0);
}

canvas::canvas(canvas&& o) noexcept
    : cr_(std::exchange(o.cr_, nullptr)), s_(std::exchange(o.s_, nullptr)),
      w_(std::exchange(o.w_, 0)), h_(std::exchange(o.h_, 0)) {}

canvas& canvas::operator=(const canvas& o) {
    if (this != &o) *this = canvas(o);
    return *this;
}

canvas& canvas::operator=(canvas&& o) noexcept {
    if (this != &o) {
        std::swap(cr_, o.cr_);
        std::swap(s_, o.s_);
        std::swap(w_, o.w_);
        std::swap(h_, o.h_);
    }
    return *this;
}

canvas::~canvas() {
    if (cr_) cairo_destroy(cr_);
    if (s_) cairo_surface_destroy(s_);
}

rgb canvas::pixel(int x, int y) const {
    snip::require(s_ && x >= 0 && y >= 0 && x < w_ && y < h_, "canvas::pixel: (", x, ", ", y,
                  ") lies outside the ", w_, "x", h_, " canvas");
    cairo_surface_flush(s_);
    const unsigned char* data = cairo_image_surface_get_data(s_);
    const int stride = cairo_image_surface_get_stride(s_);
    const std::uint32_t v =
        reinterpret_cast<const std::uint32_t*>(data + std::ptrdiff_t(y) * stride)[x];
    return {std::uint8_t(v >> 16), std::uint8_t(v >> 8), std::uint8_t(v)};
}

std::vector<std::uint8_t> canvas::to_rgb() const {
    std::vector<std::uint8_t> out(std::size_t(w_) * std::size_t(h_) * 3);
    if (!s_) return out;
    cairo_surface_flush(s_);
    const unsigned char* data = cairo_image_surface_get_data(s_);
    const int stride = cairo_image_surface_get_stride(s_);
    std::uint8_t* p = out.data();
    for (int y = 0; y < h_; ++y) {
        const auto* row = reinterpret_cast<const std::uint32_t*>(data + std::ptrdiff_t(y) * stride);
        for (int x = 0; x < w_; ++x) {
            *p++ = std::uint8_t(row[x] >> 16);
            *p++ = std::uint8_t(row[x] >> 8);
            *p++ = std::uint8_t(row[x]);
        }
    }
    return out;
}

void canvas::fill_rect(double x1, double y1, double x2, double y2, rgb c, double alpha) {
    if (!cr_ || x2 < x1 || y2 < y1) return;
    set_colour(cr_, c, alpha);
    cairo_rectangle(cr_, x1, y1, x2 + 1 - x1, y2 + 1 - y1);
    cairo_fill(cr_);
}

void canvas::rect(double x1, double y1, double x2, double y2, rgb c, double thickness) {
    if (!cr_ || x2 < x1 || y2 < y1 || thickness <= 0) return;
    const double t = std::min({thickness, (x2 + 1 - x1) / 2, (y2 + 1 - y1) / 2});
    set_colour(cr_, c);
    cairo_set_line_width(cr_, t);
    cairo_set_line_join(cr_, CAIRO_LINE_JOIN_MITER);
    inner_rect_path(cr_, x1, y1, x2, y2, t);
    cairo_stroke(cr_);
}

void canvas::dashed_rect(double x1, double y1, double x2, double y2, rgb c, double thickness,
                         double dash, double gap) {
    if (!cr_ || x2 < x1 || y2 < y1 || thickness <= 0) return;
    const double t = std::min({thickness, (x2 + 1 - x1) / 2, (y2 + 1 - y1) / 2});
    const double pattern[2] = {std::max(0.5, dash), std::max(0.5, gap)};
    set_colour(cr_, c);
    cairo_set_line_width(cr_, t);
    cairo_set_dash(cr_, pattern, 2, 0);
    inner_rect_path(cr_, x1, y1, x2, y2, t);
    cairo_stroke(cr_);
    cairo_set_dash(cr_, nullptr, 0, 0);
}

void canvas::line(double x0, double y0, double x1, double y1, rgb c, double width, double dash,
                  double gap) {
    if (!cr_ || width <= 0) return;
    set_colour(cr_, c);
    cairo_set_line_width(cr_, width);
    cairo_set_line_cap(cr_, dash > 0 ? CAIRO_LINE_CAP_BUTT : CAIRO_LINE_CAP_ROUND);
    cairo_set_line_join(cr_, CAIRO_LINE_JOIN_ROUND);
    if (dash > 0) {
        const double pattern[2] = {dash, std::max(0.5, gap)};
        cairo_set_dash(cr_, pattern, 2, 0);
    }
    cairo_move_to(cr_, x0 + 0.5, y0 + 0.5);
    cairo_line_to(cr_, x1 + 0.5, y1 + 0.5);
    cairo_stroke(cr_);
    cairo_set_dash(cr_, nullptr, 0, 0);
    cairo_set_line_cap(cr_, CAIRO_LINE_CAP_BUTT);
    cairo_set_line_join(cr_, CAIRO_LINE_JOIN_MITER);
}

void canvas::disc(double x, double y, double r, rgb c) {
    if (!cr_ || r <= 0) return;
    set_colour(cr_, c);
    cairo_new_sub_path(cr_);
    cairo_arc(cr_, x + 0.5, y + 0.5, r, 0, 2 * std::numbers::pi);
    cairo_fill(cr_);
}

void canvas::blit(const canvas& src, int x, int y) {
    if (!cr_ || !src.s_) return;
    cairo_surface_flush(src.s_);
    cairo_save(cr_);
    cairo_set_source_surface(cr_, src.s_, x, y);
    cairo_rectangle(cr_, x, y, src.w_, src.h_);
    cairo_fill(cr_);
    cairo_restore(cr_);
}

void canvas::blit_scaled(const canvas& src, double x, double y, double w, double h) {
    if (!cr_ || !src.s_ || w <= 0 || h <= 0) return;
    cairo_surface_flush(src.s_);
    cairo_save(cr_);
    cairo_rectangle(cr_, x, y, w, h);
    cairo_clip(cr_);
    cairo_translate(cr_, x, y);
    cairo_scale(cr_, w / src.w_, h / src.h_);
    cairo_set_source_surface(cr_, src.s_, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr_), CAIRO_FILTER_GOOD);
    cairo_pattern_set_extend(cairo_get_source(cr_), CAIRO_EXTEND_PAD);
    cairo_paint(cr_);
    cairo_restore(cr_);
}

void canvas::blend_mask(const std::uint8_t* mask, int mask_w, int mask_h, rgb c, double alpha,
                        double scale) {
    snip::require(mask_w >= 0 && mask_h >= 0, "canvas::blend_mask: mask size ", mask_w, "x",
                  mask_h, " is negative");
    snip::require(mask != nullptr || mask_w == 0 || mask_h == 0,
                  "canvas::blend_mask: no mask buffer for a ", mask_w, "x", mask_h, " mask");
    snip::require(std::isfinite(scale) && scale > 0, "canvas::blend_mask: scale ", scale,
                  " must be a finite number > 0");
    if (!s_ || mask_w == 0 || mask_h == 0) return;
    alpha = std::isnan(alpha) ? 0.0 : std::clamp(alpha, 0.0, 1.0);
    cairo_surface_flush(s_);
    unsigned char* data = cairo_image_surface_get_data(s_);
    const int stride = cairo_image_surface_get_stride(s_);
    // Canvas columns and rows that show a mask pixel (and which one).
    auto source = [scale](int i) { return static_cast<long long>(std::floor((i + 0.5) / scale)); };
    std::vector<int> mx;
    mx.reserve(std::size_t(w_));
    for (int x = 0; x < w_; ++x) {
        const long long m = source(x);
        mx.push_back(m < mask_w ? int(m) : -1);
    }
    for (int y = 0; y < h_; ++y) {
        const long long my = source(y);
        if (my >= mask_h) break;
        const std::uint8_t* mrow = mask + std::size_t(my) * std::size_t(mask_w);
        auto* row = reinterpret_cast<std::uint32_t*>(data + std::ptrdiff_t(y) * stride);
        for (int x = 0; x < w_; ++x) {
            if (mx[std::size_t(x)] < 0 || !mrow[mx[std::size_t(x)]]) continue;
            const std::uint32_t v = row[x];
            const rgb p = mix({std::uint8_t(v >> 16), std::uint8_t(v >> 8), std::uint8_t(v)}, c,
                              alpha);
            row[x] = (std::uint32_t(p.r) << 16) | (std::uint32_t(p.g) << 8) | p.b;
        }
    }
    cairo_surface_mark_dirty(s_);
}

void canvas::blend_mask(const mask::rle& m, rgb c, double alpha, double scale) {
    mask::check(m, "canvas::blend_mask");
    const std::vector<std::uint8_t> px = mask::decode(m);
    blend_mask(px.data(), m.width, m.height, c, alpha, scale);
}

void canvas::polygon_outline(const mask::polygon& xy, rgb c, double width, double scale) {
    snip::require(xy.size() % 2 == 0, "canvas::polygon_outline: ", xy.size(),
                  " values, must be an even count (x, y pairs)");
    snip::require(std::isfinite(scale) && scale > 0, "canvas::polygon_outline: scale ", scale,
                  " must be a finite number > 0");
    for (std::size_t i = 0; i < xy.size(); ++i)
        snip::require(std::isfinite(xy[i]), "canvas::polygon_outline: value ", i, " is ", xy[i],
                      ", must be finite");
    const std::size_t n = xy.size() / 2;
    if (n < 2) return;
    // Edges as (lower end, upper end), so that an edge walked both ways (a zero-width
    // cut) has two equal entries and is left out.
    using edge = std::array<double, 4>;
    auto edge_of = [&](std::size_t i) {
        const std::size_t j = (i + 1) % n;
        edge e{xy[2 * i], xy[2 * i + 1], xy[2 * j], xy[2 * j + 1]};
        if (std::make_pair(e[2], e[3]) < std::make_pair(e[0], e[1])) e = {e[2], e[3], e[0], e[1]};
        return e;
    };
    std::vector<edge> sorted(n);
    for (std::size_t i = 0; i < n; ++i)
        sorted[i] = edge_of(i);
    std::sort(sorted.begin(), sorted.end());
    // line() joins pixel centres: pixel index = continuous coordinate - 0.5.
    auto at = [&](std::size_t i, int k) { return xy[2 * (i % n) + std::size_t(k)] * scale - 0.5; };
    for (std::size_t i = 0; i < n; ++i) {
        const edge e = edge_of(i);
        const auto [lo, hi] = std::equal_range(sorted.begin(), sorted.end(), e);
        if (hi - lo > 1 && n > 2) continue;
        line(at(i, 0), at(i, 1), at(i + 1, 0), at(i + 1, 1), c, width);
    }
}

double canvas::text(double x, double y, std::string_view s, rgb c, double size, bool bold) {
    if (!cr_ || s.empty()) return x;
    const std::string str(s);
    set_font(cr_, size, bold);
    cairo_font_extents_t fe;
    cairo_font_extents(cr_, &fe);
    cairo_text_extents_t te;
    cairo_text_extents(cr_, str.c_str(), &te);
    set_colour(cr_, c);
    cairo_move_to(cr_, x, y + fe.ascent);
    cairo_show_text(cr_, str.c_str());
    cairo_new_path(cr_);
    return x + te.x_advance;
}

void canvas::text_up(double x, double y_bottom, std::string_view s, rgb c, double size,
                     bool bold) {
    if (!cr_ || s.empty()) return;
    const std::string str(s);
    set_font(cr_, size, bold);
    cairo_font_extents_t fe;
    cairo_font_extents(cr_, &fe);
    cairo_save(cr_);
    cairo_translate(cr_, x + fe.ascent, y_bottom);
    cairo_rotate(cr_, -std::numbers::pi / 2);
    set_colour(cr_, c);
    cairo_move_to(cr_, 0, 0);
    cairo_show_text(cr_, str.c_str());
    cairo_new_path(cr_);
    cairo_restore(cr_);
}

void canvas::write_png(const std::string& path) const {
    snip::require(s_ != nullptr, path, ": cannot write an empty canvas");
    cairo_surface_flush(s_);
    const std::string tmp = path + ".tmp";
    const cairo_status_t st = cairo_surface_write_to_png(s_, tmp.c_str());
    if (st != CAIRO_STATUS_SUCCESS) {
        std::error_code ignore;
        std::filesystem::remove(tmp, ignore);
        snip::fail(path, ": writing the PNG to ", tmp, " failed: ", cairo_status_to_string(st));
    }
    commit_file(tmp, path);
}

double text_width(std::string_view s, double size, bool bold) {
    if (s.empty()) return 0.0;
    cairo_t* cr = measure_context();
    set_font(cr, size, bold);
    cairo_text_extents_t te;
    cairo_text_extents(cr, std::string(s).c_str(), &te);
    return te.x_advance;
}

double text_height(double size) {
    cairo_t* cr = measure_context();
    set_font(cr, size, false);
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    return fe.ascent + fe.descent;
}

canvas resize(const canvas& src, int w, int h) {
    canvas out(w, h, {});
    out.blit_scaled(src, 0, 0, w, h);
    return out;
}

canvas load_image(const std::string& path) {
    int w = 0, h = 0, comp = 0;
    stbi_uc* data = stbi_load(path.c_str(), &w, &h, &comp, 3);
    if (!data) {
        const char* why = stbi_failure_reason();
        snip::fail(path, ": cannot decode image (", why ? why : "unknown reason", ")");
    }
    try {
        canvas c = canvas::from_rgb(w, h, data);
        stbi_image_free(data);
        return c;
    } catch (...) {
        stbi_image_free(data);
        throw;
    }
}

void commit_file(const std::string& tmp, const std::string& path) {
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::error_code ignore;
        std::filesystem::remove(tmp, ignore);
        snip::fail(path, ": cannot rename ", tmp, " onto it: ", ec.message());
    }
}

} // namespace snip::apps::draw
