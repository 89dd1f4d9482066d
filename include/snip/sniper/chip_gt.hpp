// assign.hpp: the ground truth of one chip, in the chip's own pixels.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/gt_state.hpp>
#include <snip/sniper/plan.hpp>
#include <snip/core/views.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace snip {

/// @brief One ground-truth box as seen by one chip.
struct chip_gt {
    box<float> b;   ///< chip pixels: origin at the chip's top-left corner, scaled
    int index = 0;  ///< index of the box in the image's list
    gt_state state = gt_state::invalid;
};

/// @brief Options of per-chip assignment.
struct assign_options {
    /// A box whose clipped width or height, in chip pixels, is below this is dropped (SNIPER: 10).
    double min_size = 10.0;
};

/// @brief Expresses every ground-truth box of an image in the frame of chip `c`:
/// converted to the plan's pixel convention, scaled by the chip's factor, shifted to
/// the chip's corner and clipped to it. Boxes whose clipped width or height is below
/// `opt.min_size` are dropped. A box listed in `c.boxes` (ground-truth indices, for a
/// negative chip only those the miner assigned to it) is valid, a crowd box is crowd, any
/// other visible box is invalid; `c.proposals` plays no part (the original's valid boxes
/// are `np.intersect1d(gtids, nids)`, data_workers.py:213).
/// @param width, height the image in original px.
/// @param boxes xyxy continuous, original px. @param crowd flags (may be empty).
/// Throws snip::error naming the value for a chip of another image or config (scale,
/// factor, rectangle, a box index out of range), bad boxes or a negative min_size.
template <class T>
std::vector<chip_gt> assign_chip(const plan_config& cfg, const chip& c, int width, int height,
                                 box_view<const T> boxes, const std::vector<std::uint8_t>& crowd,
                                 const assign_options& opt = {}) {
    require(width > 0 && height > 0, "assign_chip: image size must be positive, got ", width,
            "x", height);
    require(crowd.empty() || crowd.size() == static_cast<std::size_t>(boxes.size()),
            "assign_chip: ", crowd.size(), " crowd flags for ", boxes.size(), " boxes");
    require(c.scale >= 0 && static_cast<std::size_t>(c.scale) < cfg.scales.size(),
            "assign_chip: chip scale ", c.scale, " but the config has ", cfg.scales.size(),
            " scales");
    require(std::isfinite(c.factor) && c.factor > 0.0, "assign_chip: chip factor must be a "
            "finite number > 0, got ", c.factor);
    require(c.rect.x2 >= c.rect.x1 && c.rect.y2 >= c.rect.y1, "assign_chip: chip rect [",
            c.rect.x1, ", ", c.rect.y1, ", ", c.rect.x2, ", ", c.rect.y2,
            "] must have x1 <= x2 and y1 <= y2");
    require(std::isfinite(opt.min_size) && opt.min_size >= 0.0,
            "assign_chip: min_size must be a finite number >= 0, got ", opt.min_size);
    for (int k : c.boxes)
        require(k >= 0 && k < boxes.size(), "assign_chip: chip box index ", k, " but the image has ",
                boxes.size(), " boxes (chip::boxes holds ground-truth indices)");
    validate_boxes(boxes, "assign_chip: boxes");
    const double e = cfg.convention == pixel_convention::inclusive ? 1.0 : 0.0;
    const double cw = c.rect.x2 - c.rect.x1, ch = c.rect.y2 - c.rect.y1;
    std::vector<int> mine = c.boxes;
    std::sort(mine.begin(), mine.end());
    std::vector<chip_gt> out;
    for (std::ptrdiff_t i = 0; i < boxes.size(); ++i) {
        const box<double> conv =
            to_convention(boxes[i].template cast<double>(), width, height, cfg.convention);
        const box<double> s = shift(scale(conv, c.factor), double(c.rect.x1), double(c.rect.y1));
        const box<double> k = clip(s, cw, ch);
        if (k.x2 - k.x1 + e < opt.min_size || k.y2 - k.y1 + e < opt.min_size) continue;
        gt_state st = gt_state::invalid;
        if (!crowd.empty() && crowd[static_cast<std::size_t>(i)])
            st = gt_state::crowd;
        else if (std::binary_search(mine.begin(), mine.end(), static_cast<int>(i)))
            st = gt_state::valid;
        out.push_back({k.template cast<float>(), static_cast<int>(i), st});
    }
    return out;
}

/// @brief Mutable views are read as const ones.
template <class T>
    requires(!std::is_const_v<T>)
std::vector<chip_gt> assign_chip(const plan_config& cfg, const chip& c, int width, int height,
                                 box_view<T> boxes, const std::vector<std::uint8_t>& crowd,
                                 const assign_options& opt = {}) {
    return assign_chip(cfg, c, width, height, box_view<const T>(boxes), crowd, opt);
}

} // namespace snip
