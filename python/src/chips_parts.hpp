// chips_parts.hpp: the parts of snip._chips, one function per file (chips_*.cpp).
#pragma once

#include "common.hpp"

namespace snip::py {

/// read_image, crop_chip (chips_image.cpp)
void bind_chips_image(pybind11::module_& m);

} // namespace snip::py
