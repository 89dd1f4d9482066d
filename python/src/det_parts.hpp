// det_parts.hpp: the parts of snip._det, one function per file (det_*.cpp).
#pragma once

#include "common.hpp"

namespace snip::py {

/// Calls every det_*.cpp's binder (det_parts.cpp).
void bind_det_parts(pybind11::module_& m);

} // namespace snip::py
