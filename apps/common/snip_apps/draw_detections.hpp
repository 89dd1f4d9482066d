// draw_detections.hpp: a picture of an image's detections (snip-train detect / demo).
#pragma once

#include <snip_apps/draw.hpp>

#include <snip/mask/segmentation.hpp>
#include <snip/train/inference.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
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

/// @brief How strongly a detection's mask tints its pixels (draw::canvas::blend_mask).
inline constexpr double detection_mask_alpha = 0.45;

/// @brief Draws the image with its detections scoring >= min_score as antialiased outlines
/// in their class colour (class_colour), labelled "name 0.87" in DejaVu Sans on a band of
/// that colour (name = class_names[k - 1] for label k, or the number k when the list is
/// shorter), best detection on top; with `gt`, its boxes as thin dashed outlines (white;
/// crowd boxes grey) under the detections. Boxes are original px, continuous: the outline
/// lies inside [x1, x2) x [y1, y2), so a whole-pixel box outlines the pixels x1 .. x2 - 1.
/// When the detections have masks (d.masks, parallel to the boxes; an entry of size 0 x 0
/// is no mask), each one is blended in its class colour with detection_mask_alpha
/// (lowest score first) under all the outlines and labels.
/// Written as PNG (draw::write_png, atomic).
/// @throws snip::error on an empty image, arrays of different lengths (masks may be
/// empty), a mask whose size is not the image's, a NaN min_score, a `gt` record whose size
/// differs from the image's, or a write failure (naming the path).
inline void draw_detections(const image& img, const image_detections& d,
                            const std::vector<std::string>& class_names, double min_score,
                            const std::string& png_path, const snip::image_record* gt = nullptr) {
    snip::require(!img.empty() && img.px.size() == std::size_t(img.w) * std::size_t(img.h) * 3,
                  "draw_detections: ", png_path, ": the image is empty or its buffer does not hold ",
                  img.w, " x ", img.h, " RGB pixels");
    snip::require(d.scores.size() == d.boxes.size() && d.labels.size() == d.boxes.size(),
                  "draw_detections: ", png_path, ": ", d.boxes.size(), " boxes, ", d.scores.size(),
                  " scores and ", d.labels.size(), " labels");
    snip::require(d.masks.empty() || d.masks.size() == d.boxes.size(),
                  "draw_detections: ", png_path, ": ", d.boxes.size(), " boxes but ",
                  d.masks.size(), " masks (must be as many, or none)");
    for (std::size_t r = 0; r < d.masks.size(); ++r) {
        const snip::mask::rle& m = d.masks[r];
        snip::require((m.height == 0 && m.width == 0) || (m.height == img.h && m.width == img.w),
                      "draw_detections: ", png_path, ": the mask of detection ", r, " is ", m.width,
                      " x ", m.height, ", the image is ", img.w, " x ", img.h);
    }
    snip::require(!std::isnan(min_score), "draw_detections: ", png_path,
                  ": min_score must be a number");
    if (gt)
        snip::require(gt->width == img.w && gt->height == img.h, "draw_detections: ", png_path,
                      ": ground truth of image id ", gt->id, " is for a ", gt->width, " x ",
                      gt->height, " image, the image is ", img.w, " x ", img.h);
    draw::canvas c = draw::canvas::from_rgb(img.w, img.h, img.px.data());
    // Masks under all the outlines, lowest score first, so the best ones end on top.
    for (std::size_t r = d.masks.size(); r-- > 0;)
        if (d.scores[r] >= min_score && d.masks[r].height > 0)
            c.blend_mask(d.masks[r], class_colour(d.labels[r]), detection_mask_alpha);
    const double thick = std::max(1, std::min(img.w, img.h) / 300);
    const double font = 11.0 * std::max(1, std::min(img.w, img.h) / 400);
    // Boxes far outside (or NaN / inf) are skipped; the rest are clamped near the canvas.
    auto usable = [](double a1, double a2) {
        return std::isfinite(a1) && std::isfinite(a2) && a1 < 1e8 && a2 > -1e8;
    };
    auto clamp = [](double v) { return std::clamp(v, -1e5, 1e5); };
    if (gt) {
        for (std::size_t i = 0; i < gt->boxes.size(); ++i) {
            const snip::box<double>& b = gt->boxes[i];
            if (!usable(b.x1, b.x2) || !usable(b.y1, b.y2)) continue;
            const bool crowd = i < gt->crowd.size() && gt->crowd[i] != 0;
            c.dashed_rect(clamp(b.x1), clamp(b.y1), clamp(b.x2) - 1, clamp(b.y2) - 1,
                          crowd ? draw::rgb{150, 150, 150} : draw::rgb{255, 255, 255}, 1, 6, 4);
        }
    }
    // Lowest score first, so the best detections end on top.
    for (std::size_t r = d.boxes.size(); r-- > 0;) {
        if (!(d.scores[r] >= min_score)) continue;
        const snip::box<float>& b = d.boxes[r];
        if (!usable(b.x1, b.x2) || !usable(b.y1, b.y2)) continue;
        const double x1 = clamp(b.x1), y1 = clamp(b.y1), x2 = clamp(b.x2), y2 = clamp(b.y2);
        const std::int64_t k = d.labels[r];
        const draw::rgb col = class_colour(k);
        c.rect(x1, y1, std::max(x1, x2 - 1), std::max(y1, y2 - 1), col, thick);
        const std::string name = k >= 1 && std::size_t(k) <= class_names.size()
                                     ? class_names[std::size_t(k - 1)]
                                     : std::to_string(k);
        char score[32];
        std::snprintf(score, sizeof score, "%.2f", static_cast<double>(d.scores[r]));
        const std::string text = name + " " + score;
        const int margin = std::max(1, int(font / 6));
        const int tw = int(std::ceil(draw::text_width(text, font))) + 2 * margin;
        const int th = int(std::ceil(draw::text_height(font)));
        // Above the box when there is room, else just inside its top edge.
        const int top = int(std::floor(y1));
        const int ty = top - th >= 0 ? top - th : std::max(0, top);
        const int tx = std::clamp(int(std::floor(x1)), 0, std::max(0, img.w - tw));
        c.fill_rect(tx, ty, tx + tw - 1, ty + th - 1, col);
        const bool light = 299 * col.r + 587 * col.g + 114 * col.b > 140000;
        c.text(tx + margin, ty, text, light ? draw::rgb{0, 0, 0} : draw::rgb{255, 255, 255}, font);
    }
    c.write_png(png_path);
}

} // namespace snip::apps
