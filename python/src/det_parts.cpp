// det_parts.cpp: the list of snip._det's parts.
#include "det_parts.hpp"

namespace snip::py {

void bind_det_parts(pyb::module_&) {}

} // namespace snip::py
