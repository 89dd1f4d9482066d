// core/gt_state.hpp: the role of a ground-truth box in one chip (shared by sniper/chip_gt.hpp
// and the RPN / RCNN targets in det/ without pulling in the planner).
#pragma once

#include <cstdint>

namespace snip {

/// @brief What a ground-truth box is to the detector trained on a chip.
enum class gt_state : std::uint8_t {
    valid,    ///< assigned to this chip: a training target
    invalid,  ///< visible in the chip but out of this scale's range: anchors overlapping it are ignored
    crowd     ///< a crowd / ignore region: never a target, overlapping anchors are ignored
};

} // namespace snip
