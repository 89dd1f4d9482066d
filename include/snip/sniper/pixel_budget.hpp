// pixels.hpp: how many pixels a plan makes the detector process.
#pragma once

#include <snip/core/box.hpp>
#include <snip/sniper/plan.hpp>
#include <snip/sniper/pyramid.hpp>

namespace snip {

/// @brief Area of a chip as cut from its scaled image, in scaled px.
inline double chip_area(const box<int>& rect, pixel_convention conv) {
    const double e = conv == pixel_convention::inclusive ? 1.0 : 0.0;
    return (rect.x2 - rect.x1 + e) * (rect.y2 - rect.y1 + e);
}

/// @brief Pixels of one image, by the three ways of training on it.
struct pixel_budget {
    double chips = 0;         ///< sum of chip areas as cut (scaled px)
    double chips_padded = 0;  ///< chips x chip_size^2: the network input, chips padded to size
    double single_scale = 0;  ///< the image resized to short 800 / long <= 1333
    double pyramid = 0;       ///< every scale of the pyramid, whole
};

/// @brief Pixel accounting of one image for a list of chips (positives, or positives
/// and this epoch's negatives).
template <class Chips>
pixel_budget count_pixels(const plan_config& cfg, int width, int height, const Chips& chips,
                          int single_short = 800, int single_max = 1333) {
    require(cfg.chip_size > 0, "count_pixels: chip size must be > 0, got ", cfg.chip_size);
    pixel_budget p;
    for (const auto& c : chips) {
        p.chips += chip_area(c.rect, cfg.convention);
        p.chips_padded += double(cfg.chip_size) * double(cfg.chip_size);
    }
    p.single_scale = single_scale(width, height, single_short, single_max).pixels();
    for (const auto& s : cfg.scales) p.pyramid += scale_image(s, width, height).pixels();
    return p;
}

} // namespace snip
