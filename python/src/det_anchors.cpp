// det_anchors.cpp: RPN anchors in snip._det: anchor templates (SNIPER's py-faster-rcnn
// rule or continuous boxes), AnchorConfig, anchors over a feature grid and the anchors
// inside a chip.
#include "det_parts.hpp"

#include <snip/det/anchors.hpp>
#include <snip/io/chips_json.hpp>

#include <pybind11/stl.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace snip::py {

namespace {

/// (A, 4) float64 templates from the C++ boxes.
pyb::array_t<double> templates_array(std::vector<box<double>>&& t) { return boxes_to_array(std::move(t)); }

/// An (A, 4) float32/float64 array of templates as box<double> (a small copy).
std::vector<box<double>> templates_of(const pyb::array& a, const char* what) {
    return with_boxes(a, what, [](auto v) {
        std::vector<box<double>> out(static_cast<std::size_t>(v.size()));
        for (std::ptrdiff_t i = 0; i < v.size(); ++i) out[static_cast<std::size_t>(i)] = v[i].template cast<double>();
        return out;
    });
}

pyb::array grid_array(const std::vector<box<double>>& templates, int height, int width, double stride,
                      bool f32) {
    if (f32) {
        std::vector<box<float>> out;
        {
            release_gil nogil;
            out = snip::grid_anchors<float>(templates, height, width, stride);
        }
        return boxes_to_array(std::move(out));
    }
    std::vector<box<double>> out;
    {
        release_gil nogil;
        out = snip::grid_anchors<double>(templates, height, width, stride);
    }
    return boxes_to_array(std::move(out));
}

/// snip::anchor_config wrapped in a type of this namespace (a class of namespace snip as a
/// pybind11 template argument would make pybind11's unqualified concat() find snip::concat).
struct anchors_cfg {
    anchor_config c;
};

} // namespace

void bind_det_anchors(pyb::module_& m) {
    pyb::class_<anchors_cfg>(m, "AnchorConfig", pyb::module_local(), R"doc(An RPN anchor set.

stride: network-input pixels per feature cell; scales: anchor sides in multiples of the
stride; ratios: aspect ratios h / w; convention: 'inclusive' generates the templates the
py-faster-rcnn / SNIPER way (widths x2 - x1 + 1, rounded base boxes), 'continuous' as boxes
of area (stride * scale)^2 centred on (stride / 2, stride / 2). Templates are ratio-major:
template a = r * len(scales) + s.

AnchorConfig() is snip's default (stride 16, scales 2, 4, 7, 10, 13, 16, 24, ratios 0.5, 1,
2, continuous); AnchorConfig.sniper() the same numbers, inclusive (SNIPER's 21 anchors).)doc")
        .def(pyb::init([](double stride, std::vector<double> scales, std::vector<double> ratios,
                          const std::string& convention) {
                 anchors_cfg a;
                 a.c.stride = stride;
                 a.c.scales = std::move(scales);
                 a.c.ratios = std::move(ratios);
                 a.c.convention = convention_of(convention);
                 return a;
             }),
             pyb::arg("stride") = 16.0,
             pyb::arg("scales") = std::vector<double>{2, 4, 7, 10, 13, 16, 24},
             pyb::arg("ratios") = std::vector<double>{0.5, 1, 2},
             pyb::arg("convention") = "continuous",
             "An anchor set; the defaults are snip's (SNIPER's numbers, continuous boxes).")
        .def_static("sniper", [] { return anchors_cfg{anchor_config::sniper()}; },
                    "SNIPER's 21 anchors (stride 16, scales 2..24, ratios 0.5, 1, 2), generated "
                    "the py-faster-rcnn way (inclusive pixels).")
        .def_static("defaults", [] { return anchors_cfg{anchor_config::defaults()}; },
                    "snip's default: SNIPER's stride, scales and ratios as continuous boxes.")
        .def_property(
            "stride", [](const anchors_cfg& a) { return a.c.stride; },
            [](anchors_cfg& a, double v) { a.c.stride = v; }, "Network-input pixels per feature cell.")
        .def_property(
            "scales", [](const anchors_cfg& a) { return a.c.scales; },
            [](anchors_cfg& a, std::vector<double> v) { a.c.scales = std::move(v); },
            "Anchor sides in multiples of the stride (a copy: assign a new list to change them).")
        .def_property(
            "ratios", [](const anchors_cfg& a) { return a.c.ratios; },
            [](anchors_cfg& a, std::vector<double> v) { a.c.ratios = std::move(v); },
            "Aspect ratios h / w (a copy: assign a new list to change them).")
        .def_property(
            "convention", [](const anchors_cfg& a) { return std::string(snip::io::to_string(a.c.convention)); },
            [](anchors_cfg& a, const std::string& s) { a.c.convention = convention_of(s); },
            "'inclusive' (py-faster-rcnn templates) or 'continuous'.")
        .def("__len__", [](const anchors_cfg& a) { return a.c.size(); }, "The number of templates: len(scales) * len(ratios).")
        .def(
            "templates", [](const anchors_cfg& a) { return templates_array(a.c.templates()); },
            "The (A, 4) float64 templates around feature cell (0, 0), ratio-major. Raises "
            "snip.Error on a non-positive or non-finite stride, scale or ratio.")
        .def(
            "grid",
            [](const anchors_cfg& a, int height, int width, const pyb::object& dtype) {
                const bool f32 = is_float32_arg(dtype);
                return grid_array(a.c.templates(), height, width, a.c.stride, f32);
            },
            pyb::arg("height"), pyb::arg("width"), pyb::arg("dtype") = pyb::str("float32"),
            "The (height * width * A, 4) anchors of a height x width feature map at this "
            "config's stride: grid_anchors(self.templates(), height, width, self.stride).")
        .def("__repr__", [](const anchors_cfg& a) {
            const anchor_config& c = a.c;
            std::string s = "AnchorConfig(stride=" + pyb::repr(pyb::float_(c.stride)).cast<std::string>() +
                            ", scales=" + pyb::repr(pyb::cast(c.scales)).cast<std::string>() +
                            ", ratios=" + pyb::repr(pyb::cast(c.ratios)).cast<std::string>() +
                            ", convention='" + snip::io::to_string(c.convention) + "')";
            return s;
        });

    m.def(
        "legacy_anchor_templates",
        [](double base_size, std::vector<double> ratios, std::vector<double> scales) {
            return templates_array(snip::legacy_anchor_templates(base_size, ratios, scales));
        },
        pyb::arg("base_size"), pyb::arg("ratios"), pyb::arg("scales"),
        R"doc(The py-faster-rcnn / SNIPER anchor templates as an (A, 4) float64 array.

Base box [0, 0, b-1, b-1] (b = base_size, SNIPER: the stride 16); for each ratio r:
w_r = round(sqrt(b*b / r)), h_r = round(w_r * r) (ties to even); for each scale s the box
of inclusive width w_r * s and height h_r * s around the base box's centre. Ratio-major.
Raises snip.Error on a non-positive or non-finite value or a ratio rounding to 0 px.)doc");

    m.def(
        "continuous_anchor_templates",
        [](double stride, std::vector<double> ratios, std::vector<double> scales) {
            return templates_array(snip::continuous_anchor_templates(stride, ratios, scales));
        },
        pyb::arg("stride"), pyb::arg("ratios"), pyb::arg("scales"),
        R"doc(Continuous anchor templates as an (A, 4) float64 array: boxes of area
(stride * scale)^2 and aspect h / w = ratio centred on (stride / 2, stride / 2), ratio-major.)doc");

    m.def(
        "grid_anchors",
        [](const pyb::array& templates, int height, int width, double stride, const pyb::object& dtype) {
            const bool f32 = is_float32_arg(dtype);
            return grid_array(templates_of(templates, "templates"), height, width, stride, f32);
        },
        pyb::arg("templates"), pyb::arg("height"), pyb::arg("width"), pyb::arg("stride"),
        pyb::arg("dtype") = pyb::str("float32"),
        R"doc(The anchors of a height x width feature map: an (height * width * A, 4) array.

Anchor (y, x, a) is template a shifted by (x * stride, y * stride); its row is
(y * width + x) * A + a (row-major cells, templates fastest; SNIPER's label order).
templates: (A, 4) float32/float64 (e.g. AnchorConfig.sniper().templates()). Computed in
float64, returned as `dtype` (float32 or float64). Raises snip.Error on a negative size
or a non-positive stride.)doc");

    m.def(
        "anchors_inside",
        [](const pyb::array& anchors, double width, double height, double border,
           const std::string& convention) {
            const auto conv = convention_of(convention);
            return with_boxes(anchors, "anchors", [&](auto v) {
                std::vector<std::int64_t> out;
                {
                    release_gil nogil;
                    out = snip::anchors_inside(v, width, height, border, conv);
                }
                const auto n = static_cast<pyb::ssize_t>(out.size());
                return to_array(std::move(out), {n});
            });
        },
        pyb::arg("anchors"), pyb::arg("width"), pyb::arg("height"), pyb::arg("border") = 0.0,
        pyb::arg("convention") = "continuous",
        R"doc(Indices (int64, ascending) of the anchors inside a width x height chip grown by
`border` px on every side: x1 >= -border, y1 >= -border and x2 <= width + border
('continuous') or x2 < width + border ('inclusive', SNIPER's test), same in y.
SNIPER: a 512 x 512 chip, border 32, inclusive.)doc");
}

} // namespace snip::py
