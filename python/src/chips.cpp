// chips.cpp: the module snip._chips, the chip layer of the Python package. Its parts are
// bound in chips_*.cpp (see chips_parts.hpp); the order registers every class before a
// function that names it, so that signatures read with Python names.
#include "chips_parts.hpp"

#include <snip/core/version.hpp>

PYBIND11_MODULE(_chips, m) {
    m.doc() = "snip's chip layer: presets and configs, planning, negative chips, chip ground "
              "truth, chip pixels, pixel reports and tune.";
    m.attr("__version__") = SNIP_VERSION_STRING;
    snip::py::register_errors(m, /*owner=*/true);
    snip::py::bind_chips_config(m);
    snip::py::bind_chips_data(m);
    snip::py::bind_chips_plan(m);
    snip::py::bind_chips_gt(m);
    snip::py::bind_chips_image(m);
    snip::py::bind_chips_io(m);
    snip::py::bind_chips_report(m);
    snip::py::bind_chips_tune(m);
    snip::py::bind_chips_testing(m);
}
