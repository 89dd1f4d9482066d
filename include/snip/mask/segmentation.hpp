// segmentation.hpp: the in-memory forms of an instance mask - COCO polygons and
// run-length encodings (RLE) - shared by the readers (io/coco.hpp), the mask operations
// (mask/rle.hpp, mask/polygon.hpp), the trainer and the evaluator. Types only.
//
// Coordinates: polygon vertices are in pixels of the image they belong to, continuous
// convention (COCO's: pixel (i, j) covers [i, i + 1) x [j, j + 1)), x before y.
// An RLE is COCO's: the mask read in COLUMN-major order (down the first column, then the
// next), as alternating run lengths that start with a run of zeros (possibly empty).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace snip::mask {

/// @brief One closed polygon: x0, y0, x1, y1, ... (an even number of finite values; COCO
/// requires at least 3 vertices). The last vertex connects back to the first.
using polygon = std::vector<double>;

/// @brief A binary mask of height x width pixels as COCO's run-length encoding.
struct rle {
    int height = 0;
    int width = 0;
    /// Run lengths in column-major order, zeros first; they sum to height * width.
    std::vector<std::uint32_t> counts;

    friend bool operator==(const rle&, const rle&) = default;
};

/// @brief The segmentation of one annotation: either polygons (COCO's list of lists) or
/// one RLE (COCO's uncompressed {"counts": [...]} or compressed {"counts": "..."} forms),
/// or nothing (an annotation without "segmentation").
struct segmentation {
    std::vector<polygon> polygons; ///< non-empty: the mask is the union of these
    rle mask;                      ///< used when `polygons` is empty and mask.height > 0

    bool is_polygons() const { return !polygons.empty(); }
    bool is_rle() const { return polygons.empty() && mask.height > 0 && mask.width > 0; }
    bool empty() const { return !is_polygons() && !is_rle(); }
    friend bool operator==(const segmentation&, const segmentation&) = default;
};

} // namespace snip::mask
