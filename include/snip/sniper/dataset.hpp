// dataset.hpp: the in-memory form of a detection dataset and of detector proposals.
// Boxes are xyxy, continuous convention, ORIGINAL-image pixels.
#pragma once

#include <snip/core/box.hpp>
#include <snip/mask/segmentation.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace snip {

/// @brief One image and its ground truth.
struct image_record {
    std::int64_t id = 0;
    std::string file_name;
    int width = 0;
    int height = 0;
    std::vector<box<double>> boxes;    ///< xyxy, original px
    std::vector<std::int64_t> ann_ids; ///< annotation id of each box
    std::vector<int> categories;       ///< category id of each box
    std::vector<std::uint8_t> crowd;   ///< 1 = crowd / ignore region (never a positive)
    /// COCO "area" of each box (in COCO's own files the segmentation mask's area, smaller
    /// than w * h), used for COCO evaluation's small / medium / large split. Either empty
    /// (no box has one: every box's area is its w * h) or parallel to `boxes`, an entry < 0
    /// meaning "none for this box" (w * h). Code that drops or reorders boxes must do the
    /// same here when it is not empty.
    std::vector<double> areas;
    /// The instance mask of each box (original px, see mask/segmentation.hpp). Either
    /// empty (the file has no "segmentation") or parallel to `boxes`, an entry's empty()
    /// meaning "no mask for this box". Code that drops or reorders boxes must do the same
    /// here when it is not empty.
    std::vector<mask::segmentation> segments;

    /// @brief The area of box `k` for COCO's area ranges: areas[k] when there is one
    /// (>= 0), else the box's w * h.
    double area(std::size_t k) const {
        if (k < areas.size() && areas[k] >= 0) return areas[k];
        return boxes[k].width() * boxes[k].height();
    }
};

struct category {
    int id = 0;
    std::string name;
};

/// @brief A dataset: images in file order, categories, and where it came from.
struct dataset {
    std::string source;  ///< file it was read from (for messages)
    std::vector<image_record> images;
    std::vector<category> categories;
    std::size_t num_boxes() const {
        std::size_t n = 0;
        for (const auto& im : images) n += im.boxes.size();
        return n;
    }
};

/// @brief Detector proposals of one image (xyxy, original px), with scores.
struct image_proposals {
    std::vector<box<double>> boxes;
    std::vector<float> scores;
};

} // namespace snip
