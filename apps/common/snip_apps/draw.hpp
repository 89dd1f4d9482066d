// draw.hpp: the small raster toolkit of `snip-chips draw`: an RGB canvas with pixels,
// outlines, dashed outlines, lines, a built-in 5x7 bitmap font, a box-filter resize,
// and PNG/JPEG input and PNG output through stb_image (implemented in stb_impl.cpp).
#pragma once

#include <snip/core/error.hpp>

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace draw {

struct rgb {
    std::uint8_t r = 0, g = 0, b = 0;
};

/// @brief An 8-bit RGB image, row-major, 3 bytes per pixel. Drawing outside it is
/// silently clipped.
struct canvas {
    int w = 0, h = 0;
    std::vector<std::uint8_t> px;

    canvas() = default;
    canvas(int width, int height, rgb fill) : w(width), h(height) {
        snip::require(width > 0 && height > 0, "canvas size must be positive, got ", width, "x",
                      height);
        px.resize(std::size_t(width) * std::size_t(height) * 3);
        for (std::size_t i = 0; i < px.size(); i += 3) {
            px[i] = fill.r;
            px[i + 1] = fill.g;
            px[i + 2] = fill.b;
        }
    }

    bool inside(int x, int y) const { return x >= 0 && y >= 0 && x < w && y < h; }

    void set_pixel(int x, int y, rgb c) {
        if (!inside(x, y)) return;
        std::uint8_t* p = &px[(std::size_t(y) * std::size_t(w) + std::size_t(x)) * 3];
        p[0] = c.r;
        p[1] = c.g;
        p[2] = c.b;
    }

    rgb pixel(int x, int y) const {
        const std::uint8_t* p = &px[(std::size_t(y) * std::size_t(w) + std::size_t(x)) * 3];
        return {p[0], p[1], p[2]};
    }

    /// Filled rectangle, corners inclusive.
    void fill_rect(int x1, int y1, int x2, int y2, rgb c) {
        for (int y = std::max(y1, 0); y <= std::min(y2, h - 1); ++y)
            for (int x = std::max(x1, 0); x <= std::min(x2, w - 1); ++x) set_pixel(x, y, c);
    }

    /// Outline of [x1, x2] x [y1, y2] (inclusive), `thickness` px drawn inwards.
    void rect(int x1, int y1, int x2, int y2, rgb c, int thickness = 1) {
        for (int t = 0; t < thickness; ++t) {
            const int a = x1 + t, b = y1 + t, e = x2 - t, f = y2 - t;
            if (a > e || b > f) break;
            fill_rect(a, b, e, b, c);
            fill_rect(a, f, e, f, c);
            fill_rect(a, b, a, f, c);
            fill_rect(e, b, e, f, c);
        }
    }

    /// Dashed outline: `dash` px on, `gap` px off, the pattern running around the
    /// perimeter clockwise from the top-left corner.
    void dashed_rect(int x1, int y1, int x2, int y2, rgb c, int thickness = 1, int dash = 8,
                     int gap = 5) {
        const int period = std::max(1, dash + gap);
        for (int t = 0; t < thickness; ++t) {
            const int a = x1 + t, b = y1 + t, e = x2 - t, f = y2 - t;
            if (a > e || b > f) break;
            int k = 0;  // position along the perimeter
            auto put = [&](int x, int y) {
                if (k++ % period < dash) set_pixel(x, y, c);
            };
            for (int x = a; x <= e; ++x) put(x, b);
            for (int y = b + 1; y <= f; ++y) put(e, y);
            for (int x = e - 1; x >= a; --x) put(x, f);
            for (int y = f - 1; y > b; --y) put(a, y);
        }
    }

    /// Straight line (Bresenham) with a square brush of side `thickness`.
    void line(int x0, int y0, int x1, int y1, rgb c, int thickness = 1) {
        const int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
        const int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
        const int lo = -(thickness - 1) / 2, hi = thickness / 2;
        int err = dx + dy;
        for (;;) {
            for (int oy = lo; oy <= hi; ++oy)
                for (int ox = lo; ox <= hi; ++ox) set_pixel(x0 + ox, y0 + oy, c);
            if (x0 == x1 && y0 == y1) break;
            const int e2 = 2 * err;
            if (e2 >= dy) err += dy, x0 += sx;
            if (e2 <= dx) err += dx, y0 += sy;
        }
    }

    /// Pastes `src` with its top-left corner at (x, y).
    void blit(const canvas& src, int x, int y) {
        for (int j = 0; j < src.h; ++j)
            for (int i = 0; i < src.w; ++i) set_pixel(x + i, y + j, src.pixel(i, j));
    }

    /// Draws `s` in the built-in 5x7 font, each font pixel a `scale` x `scale` square,
    /// top-left at (x, y). Letters are drawn upper case, except 'x'. Returns the x after
    /// the text.
    int text(int x, int y, std::string_view s, rgb c, int scale = 1);
};

// --- the 5x7 font ------------------------------------------------------------------
// Each glyph is 7 rows of 5 bits, the most significant of the 5 being the leftmost
// pixel. Advance: 6 font pixels; line height: 9 font pixels.

inline constexpr int glyph_advance = 6;
inline constexpr int glyph_line = 9;

struct glyph {
    char c;
    std::array<std::uint8_t, 7> rows;
};

// clang-format off
inline constexpr std::array<glyph, 63> font{{
    {'0', {0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110}},
    {'1', {0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110}},
    {'2', {0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111}},
    {'3', {0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110}},
    {'4', {0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010}},
    {'5', {0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110}},
    {'6', {0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110}},
    {'7', {0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000}},
    {'8', {0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110}},
    {'9', {0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100}},
    {'A', {0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001}},
    {'B', {0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110}},
    {'C', {0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110}},
    {'D', {0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100}},
    {'E', {0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111}},
    {'F', {0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000}},
    {'G', {0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111}},
    {'H', {0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001}},
    {'I', {0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110}},
    {'J', {0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100}},
    {'K', {0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001}},
    {'L', {0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111}},
    {'M', {0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001}},
    {'N', {0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001}},
    {'O', {0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110}},
    {'P', {0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000}},
    {'Q', {0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101}},
    {'R', {0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001}},
    {'S', {0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110}},
    {'T', {0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100}},
    {'U', {0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110}},
    {'V', {0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100}},
    {'W', {0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010}},
    {'X', {0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001}},
    {'Y', {0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00100}},
    {'Z', {0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111}},
    {'x', {0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001}},
    {' ', {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000}},
    {'.', {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100}},
    {',', {0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000}},
    {':', {0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000}},
    {';', {0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b00100, 0b01000}},
    {'-', {0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000}},
    {'+', {0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000}},
    {'/', {0b00001, 0b00010, 0b00010, 0b00100, 0b01000, 0b01000, 0b10000}},
    {'(', {0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010}},
    {')', {0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000}},
    {'[', {0b01110, 0b01000, 0b01000, 0b01000, 0b01000, 0b01000, 0b01110}},
    {']', {0b01110, 0b00010, 0b00010, 0b00010, 0b00010, 0b00010, 0b01110}},
    {'=', {0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000}},
    {'%', {0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011}},
    {'#', {0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010}},
    {'<', {0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010}},
    {'>', {0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000}},
    {'_', {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111}},
    {'*', {0b00000, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0b00000}},
    {'!', {0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00100}},
    {'?', {0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100}},
    {'\'', {0b00100, 0b00100, 0b01000, 0b00000, 0b00000, 0b00000, 0b00000}},
    {'"', {0b01010, 0b01010, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000}},
    {'|', {0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100}},
    {'@', {0b01110, 0b10001, 0b10111, 0b10101, 0b10111, 0b10000, 0b01110}},
    {'&', {0b01100, 0b10010, 0b10100, 0b01000, 0b10101, 0b10010, 0b01101}},
}};
// clang-format on

/// The glyph of `c` ('?' for characters the font lacks; lower case drawn upper case).
inline const glyph& glyph_of(char c) {
    if (c >= 'a' && c <= 'z' && c != 'x') c = static_cast<char>(c - 'a' + 'A');
    for (const auto& g : font)
        if (g.c == c) return g;
    for (const auto& g : font)
        if (g.c == '?') return g;
    return font[0];
}

/// Width in pixels of `s` drawn at `scale`.
inline int text_width(std::string_view s, int scale = 1) {
    return s.empty() ? 0 : int(s.size()) * glyph_advance * scale - scale;
}

inline int canvas::text(int x, int y, std::string_view s, rgb c, int scale) {
    for (char ch : s) {
        const glyph& g = glyph_of(ch);
        for (int r = 0; r < 7; ++r)
            for (int col = 0; col < 5; ++col)
                if (g.rows[std::size_t(r)] & (0b10000 >> col))
                    fill_rect(x + col * scale, y + r * scale, x + col * scale + scale - 1,
                              y + r * scale + scale - 1, c);
        x += glyph_advance * scale;
    }
    return x;
}

/// @brief Resizes `src` to `w` x `h` with a box filter (each output pixel averages the
/// source pixels it covers); meant for shrinking, exact for any size.
inline canvas resize_box(const canvas& src, int w, int h) {
    canvas out(w, h, {});
    for (int y = 0; y < h; ++y) {
        const int y0 = int(std::int64_t(y) * src.h / h);
        const int y1 = std::max(y0 + 1, int(std::int64_t(y + 1) * src.h / h));
        for (int x = 0; x < w; ++x) {
            const int x0 = int(std::int64_t(x) * src.w / w);
            const int x1 = std::max(x0 + 1, int(std::int64_t(x + 1) * src.w / w));
            unsigned sr = 0, sg = 0, sb = 0, n = 0;
            for (int j = y0; j < y1; ++j)
                for (int i = x0; i < x1; ++i) {
                    const rgb p = src.pixel(i, j);
                    sr += p.r, sg += p.g, sb += p.b, ++n;
                }
            out.set_pixel(x, y,
                          {std::uint8_t((sr + n / 2) / n), std::uint8_t((sg + n / 2) / n),
                           std::uint8_t((sb + n / 2) / n)});
        }
    }
    return out;
}

/// @brief Decodes a JPEG/PNG/BMP file to RGB. Throws snip::error naming the file.
inline canvas load_image(const std::string& path) {
    int w = 0, h = 0, comp = 0;
    stbi_uc* data = stbi_load(path.c_str(), &w, &h, &comp, 3);
    if (!data) {
        const char* why = stbi_failure_reason();
        snip::fail(path, ": cannot decode image (", why ? why : "unknown reason", ")");
    }
    canvas c;
    c.w = w;
    c.h = h;
    c.px.assign(data, data + std::size_t(w) * std::size_t(h) * 3);
    stbi_image_free(data);
    return c;
}

/// @brief Encodes `c` as PNG and writes it atomically (path + ".tmp", then rename).
/// Throws snip::error naming the file.
inline void write_png(const canvas& c, const std::string& path) {
    std::string bytes;
    auto sink = [](void* ctx, void* data, int size) {
        static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), std::size_t(size));
    };
    if (!stbi_write_png_to_func(sink, &bytes, c.w, c.h, 3, c.px.data(), c.w * 3))
        snip::fail(path, ": PNG encoding failed");
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) snip::fail(path, ": cannot open ", tmp, " for writing");
        out.write(bytes.data(), std::streamsize(bytes.size()));
        out.close();
        if (!out) {
            std::error_code ignore;
            std::filesystem::remove(tmp, ignore);
            snip::fail(path, ": writing ", tmp, " failed");
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::error_code ignore;
        std::filesystem::remove(tmp, ignore);
        snip::fail(path, ": cannot rename ", tmp, " onto it: ", ec.message());
    }
}

} // namespace draw
