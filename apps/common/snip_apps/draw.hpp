// draw.hpp: pictures on cairo: an RGB canvas with antialiased outlines, dashed outlines,
// lines, markers and text in DejaVu Sans; images decoded through stb_image; PNG output
// through cairo, written atomically.
//
// Coordinates are pixel indices: (x, y) is the centre of pixel x of row y, and a filled
// or outlined rectangle [x1, x2] x [y1, y2] covers the pixels x1..x2, y1..y2 inclusive.
// Fractional coordinates are allowed and antialiased. Drawing outside is clipped.
#pragma once

#include <snip/mask/segmentation.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

struct _cairo;
struct _cairo_surface;

namespace snip::apps::draw {

/// An 8-bit RGB colour.
struct rgb {
    std::uint8_t r = 0, g = 0, b = 0;
};

/// `a` moved towards `b` by t (0: a, 1: b).
rgb mix(rgb a, rgb b, double t);

/// @brief An RGB picture on a cairo image surface.
class canvas {
public:
    canvas() = default;
    /// A `width` x `height` canvas filled with `fill`. Throws snip::error unless both are
    /// positive.
    canvas(int width, int height, rgb fill);
    /// A canvas holding `width` x `height` RGB pixels, row-major, 3 bytes each.
    static canvas from_rgb(int width, int height, const std::uint8_t* px);
    canvas(const canvas& o);
    canvas(canvas&& o) noexcept;
    canvas& operator=(const canvas& o);
    canvas& operator=(canvas&& o) noexcept;
    ~canvas();

    int width() const { return w_; }
    int height() const { return h_; }
    /// The colour of pixel (x, y), which must lie inside.
    rgb pixel(int x, int y) const;
    /// The pixels, row-major, 3 bytes each.
    std::vector<std::uint8_t> to_rgb() const;

    /// Fills the pixels [x1, x2] x [y1, y2] with `c` mixed over them with weight `alpha`.
    void fill_rect(double x1, double y1, double x2, double y2, rgb c, double alpha = 1.0);
    /// Outline of the pixels [x1, x2] x [y1, y2], `thickness` px wide, drawn inwards.
    void rect(double x1, double y1, double x2, double y2, rgb c, double thickness = 1.0);
    /// The same outline dashed: `dash` px on, `gap` px off, clockwise from the top left.
    void dashed_rect(double x1, double y1, double x2, double y2, rgb c, double thickness = 1.0,
                     double dash = 8.0, double gap = 5.0);
    /// A line between two pixel centres, `width` px wide, with round caps; dashed when
    /// `dash` > 0.
    void line(double x0, double y0, double x1, double y1, rgb c, double width = 1.0,
              double dash = 0.0, double gap = 0.0);
    /// A filled disc of radius `r` px centred on (x, y).
    void disc(double x, double y, double r, rgb c);
    /// Pastes `src` with its top-left pixel at (x, y).
    void blit(const canvas& src, int x, int y);
    /// Draws `src` scaled into the rectangle of size `w` x `h` whose top-left corner is
    /// (x, y), with cairo's good filter (it averages when shrinking).
    void blit_scaled(const canvas& src, double x, double y, double w, double h);

    /// Blends `c` with weight `alpha` (clamped to [0, 1]) into the pixels where the binary
    /// mask is set: a pixel p becomes mix(p, c, alpha), exactly; the others keep their
    /// value. The mask is `mask_w` x `mask_h` bytes, row-major, nonzero = set, in image
    /// pixels; canvas pixel (x, y) shows mask pixel (floor((x + 0.5) / scale),
    /// floor((y + 0.5) / scale)) (nearest, for a canvas of an image shown `scale` times its
    /// size), and canvas pixels beyond the mask are left alone.
    /// Throws snip::error for a negative size, a missing buffer or a scale that is not a
    /// finite number > 0.
    void blend_mask(const std::uint8_t* mask, int mask_w, int mask_h, rgb c, double alpha,
                    double scale = 1.0);
    /// The same for a COCO run-length mask (its height x width in image pixels).
    /// Throws snip::error for an invalid rle (mask::check) or a bad scale.
    void blend_mask(const mask::rle& m, rgb c, double alpha, double scale = 1.0);
    /// The closed outline of polygon `xy` (x0, y0, x1, y1, ... in image pixels, continuous
    /// as COCO's: pixel i covers [i, i + 1)) times `scale`: a line() of `width` px (round
    /// caps, so the corners are round) along every edge, the last vertex joined to the
    /// first, except edges the polygon walks both ways (a zero-width cut, as in a keyhole
    /// polygon of a shape with a hole). Fewer than two vertices draw nothing. Throws snip::error
    /// for an odd number of values, a value that is not finite, or a bad scale.
    void polygon_outline(const mask::polygon& xy, rgb c, double width = 1.0, double scale = 1.0);

    /// Draws `s` (UTF-8) in DejaVu Sans of `size` px, its line box's top-left corner at
    /// (x, y). Returns the x after the text.
    double text(double x, double y, std::string_view s, rgb c, double size, bool bold = false);
    /// The same text turned 90 degrees counter-clockwise (read bottom to top), the line
    /// box's bottom-left corner (before turning) at (x, y_bottom).
    void text_up(double x, double y_bottom, std::string_view s, rgb c, double size,
                 bool bold = false);

    /// The canvas as PNG at `path`, written atomically (path + ".tmp", then rename).
    /// Throws snip::error naming the path.
    void write_png(const std::string& path) const;

private:
    void make(int width, int height);
    _cairo* cr_ = nullptr;
    _cairo_surface* s_ = nullptr;
    int w_ = 0, h_ = 0;
};

/// Width in px of `s` in DejaVu Sans of `size` px.
double text_width(std::string_view s, double size, bool bold = false);
/// Height in px of a line of text of `size` px (ascent + descent).
double text_height(double size);

/// @brief `src` resized to `w` x `h` with cairo's good filter (averages when shrinking).
canvas resize(const canvas& src, int w, int h);

/// @brief Decodes a JPEG/PNG/BMP file to RGB through stb_image. Throws snip::error naming
/// the file.
canvas load_image(const std::string& path);

/// @brief Writes `c` as PNG atomically; see canvas::write_png.
inline void write_png(const canvas& c, const std::string& path) { c.write_png(path); }

/// @brief Replaces `path` with the file `tmp` (a rename); on failure removes `tmp` and
/// throws snip::error naming both.
void commit_file(const std::string& tmp, const std::string& path);

} // namespace snip::apps::draw
