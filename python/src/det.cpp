// det.cpp: the module snip._det, the detection layer of the Python package. Its parts are
// bound in det_*.cpp.
#include "det_parts.hpp"

PYBIND11_MODULE(_det, m) {
    m.doc() = "snip's detection layer: anchors, RPN labels and sampling, RCNN targets, box "
              "coding, NMS / Soft-NMS / multi-scale merge, COCO evaluation.";
    snip::py::register_errors(m, /*owner=*/false);
    snip::py::bind_det_parts(m);
}
