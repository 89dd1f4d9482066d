// det_parts.cpp: the list of snip._det's parts.
#include "det_parts.hpp"

namespace snip::py {

void bind_det_parts(pyb::module_& m) {
    bind_det_anchors(m);
    bind_det_boxes(m);
    bind_det_targets(m);
    bind_det_nms(m);
    bind_det_eval(m);
}

} // namespace snip::py
