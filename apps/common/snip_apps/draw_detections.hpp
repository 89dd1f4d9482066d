// draw_detections.hpp: a picture of an image's detections (snip-train detect / demo).
#pragma once

#include <snip_apps/draw.hpp>

#include <snip/train/inference.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace snip::apps {

using snip::train::image;
using snip::train::image_detections;

// ---------------------------------------------------------------------------------------
// Picture

/// @brief The outline colour of class label k (1..K; a fixed palette, cycled).
inline draw::rgb class_colour(std::int64_t label) {
    static constexpr std::array<draw::rgb, 10> palette{{{230, 25, 75},
                                                        {60, 180, 75},
                                                        {255, 225, 25},
                                                        {0, 130, 200},
                                                        {245, 130, 48},
                                                        {145, 30, 180},
                                                        {70, 240, 240},
                                                        {240, 50, 230},
                                                        {210, 245, 60},
                                                        {250, 190, 190}}};
    const std::int64_t n = static_cast<std::int64_t>(palette.size());
    const std::int64_t k = ((label - 1) % n + n) % n;
    return palette[static_cast<std::size_t>(k)];
}

/// @brief Draws the image with its detections scoring >= min_score as outlines in their
/// class colour (class_colour), labelled "name 0.87" in the built-in 5x7 font (name =
/// class_names[k - 1] for label k, or the number k when the list is shorter), best
/// detection on top; with `gt`, its boxes as thin dashed outlines (white; crowd boxes
/// grey) under the detections. Boxes are original px, continuous: the outline covers
/// pixels floor(x1) .. ceil(x2) - 1. Written as PNG (draw::write_png, atomic).
/// @throws snip::error on an empty image, arrays of different lengths, a NaN min_score, a
/// `gt` record whose size differs from the image's, or a write failure (naming the path).
inline void draw_detections(const image& img, const image_detections& d,
                            const std::vector<std::string>& class_names, double min_score,
                            const std::string& png_path, const snip::image_record* gt = nullptr) {
    snip::train::detail::check_image(img, "draw_detections");
    snip::require(d.scores.size() == d.boxes.size() && d.labels.size() == d.boxes.size(),
                  "draw_detections: ", png_path, ": ", d.boxes.size(), " boxes, ", d.scores.size(),
                  " scores and ", d.labels.size(), " labels");
    snip::require(!std::isnan(min_score), "draw_detections: ", png_path,
                  ": min_score must be a number");
    if (gt)
        snip::require(gt->width == img.w && gt->height == img.h, "draw_detections: ", png_path,
                      ": ground truth of image id ", gt->id, " is for a ", gt->width, " x ",
                      gt->height, " image, the image is ", img.w, " x ", img.h);
    draw::canvas c;
    c.w = img.w;
    c.h = img.h;
    c.px = img.px;
    const int thick = std::max(1, std::min(img.w, img.h) / 300);
    const int font = std::max(1, std::min(img.w, img.h) / 400);
    // Continuous [x1, x2) -> inclusive pixel columns; NaN / inf boxes are skipped.
    auto pixels = [](double a1, double a2, std::array<int, 2>& out) {
        if (!std::isfinite(a1) || !std::isfinite(a2)) return false;
        const double lo = std::floor(a1), hi = std::max(lo, std::ceil(a2) - 1.0);
        if (lo > 1e8 || hi < -1e8) return false;
        out = {static_cast<int>(std::max(lo, -1e8)), static_cast<int>(std::min(hi, 1e8))};
        return true;
    };
    if (gt) {
        for (std::size_t i = 0; i < gt->boxes.size(); ++i) {
            const snip::box<double>& b = gt->boxes[i];
            std::array<int, 2> xs{}, ys{};
            if (!pixels(b.x1, b.x2, xs) || !pixels(b.y1, b.y2, ys)) continue;
            const bool crowd = i < gt->crowd.size() && gt->crowd[i] != 0;
            c.dashed_rect(xs[0], ys[0], xs[1], ys[1],
                          crowd ? draw::rgb{150, 150, 150} : draw::rgb{255, 255, 255}, 1, 6, 4);
        }
    }
    // Lowest score first, so the best detections end on top.
    for (std::size_t r = d.boxes.size(); r-- > 0;) {
        if (!(d.scores[r] >= min_score)) continue;
        const snip::box<float>& b = d.boxes[r];
        std::array<int, 2> xs{}, ys{};
        if (!pixels(b.x1, b.x2, xs) || !pixels(b.y1, b.y2, ys)) continue;
        const std::int64_t k = d.labels[r];
        const draw::rgb col = class_colour(k);
        c.rect(xs[0], ys[0], xs[1], ys[1], col, thick);
        const std::string name = k >= 1 && std::size_t(k) <= class_names.size()
                                     ? class_names[std::size_t(k - 1)]
                                     : std::to_string(k);
        char score[32];
        std::snprintf(score, sizeof score, "%.2f", static_cast<double>(d.scores[r]));
        const std::string text = name + " " + score;
        const int tw = draw::text_width(text, font) + 2 * font;
        const int th = draw::glyph_line * font;
        // Above the box when there is room, else just inside its top edge.
        const int ty = ys[0] - th >= 0 ? ys[0] - th : std::max(0, ys[0]);
        const int tx = std::clamp(xs[0], 0, std::max(0, img.w - tw));
        c.fill_rect(tx, ty, tx + tw - 1, ty + th - 1, col);
        const bool light = 299 * col.r + 587 * col.g + 114 * col.b > 140000;
        c.text(tx + font, ty + font, text, light ? draw::rgb{0, 0, 0} : draw::rgb{255, 255, 255},
               font);
    }
    draw::write_png(c, png_path);
}

} // namespace snip::apps
