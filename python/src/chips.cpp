// chips.cpp: the module snip._chips, the chip layer of the Python package. Its parts are
// bound in chips_*.cpp.
#include "chips_parts.hpp"

#include <snip/core/version.hpp>

PYBIND11_MODULE(_chips, m) {
    m.doc() = "snip's chip layer: presets and configs, planning, negative chips, chip ground "
              "truth, chip pixels, pixel reports and tune.";
    m.attr("__version__") = SNIP_VERSION_STRING;
    snip::py::register_errors(m, /*owner=*/true);
    snip::py::bind_chips_image(m);
}
