// chips_report.cpp: pixel accounting in snip._chips: PixelBudget and count_pixels (one
// image), and the dataset-level report of `snip-chips report` (snip/io/chips_report.hpp:
// make_chips_report of the chips file of one planned epoch), as a dict (to_json, its
// --json) or as its tables (to_text).
#include "chips_parts.hpp"

#include <snip/io/chips_json.hpp>
#include <snip/io/chips_report.hpp>
#include <snip/sniper/pixel_budget.hpp>

namespace snip::py {

namespace {

// The report of the chips file of one planned epoch.
snip::io::chips_report report_of(const py_dataset& d, const std::vector<snip::image_chips_plan>& plans,
                                 const snip::plan_config& cfg, std::uint64_t seed, int epoch) {
    return snip::io::make_chips_report(snip::io::make_chips_file(d.ds, plans, cfg, seed, epoch, d.ds.source, ""));
}

} // namespace

void bind_chips_report(pyb::module_& m) {
    pyb::class_<snip::pixel_budget>(m, "PixelBudget", R"doc(Pixels of one image, by the three ways of training on it (snip::pixel_budget).

chips: sum of chip areas as cut (scaled px); chips_padded: chips x chip_size^2 (the
network input); single_scale: the image resized to short 800 / long <= 1333; pyramid:
every scale of the pyramid, whole.)doc")
        .def_readonly("chips", &snip::pixel_budget::chips, "Chip areas as cut, scaled px.")
        .def_readonly("chips_padded", &snip::pixel_budget::chips_padded, "Chips x chip_size^2.")
        .def_readonly("single_scale", &snip::pixel_budget::single_scale, "Single-scale pixels (800 x 1333).")
        .def_readonly("pyramid", &snip::pixel_budget::pyramid, "Every scale, whole.")
        .def("to_dict",
             [](const snip::pixel_budget& p) {
                 pyb::dict d;
                 d["chips"] = p.chips;
                 d["chips_padded"] = p.chips_padded;
                 d["single_scale"] = p.single_scale;
                 d["pyramid"] = p.pyramid;
                 return d;
             },
             "The four numbers as a dict.")
        .def("__repr__", [](const snip::pixel_budget& p) {
            return snip::concat("PixelBudget(chips=", p.chips, ", chips_padded=", p.chips_padded,
                                ", single_scale=", p.single_scale, ", pyramid=", p.pyramid, ")");
        });

    m.def(
        "count_pixels",
        [](const snip::plan_config& cfg, int width, int height, const std::vector<snip::chip>& chips, int single_short,
           int single_max) { return snip::count_pixels(cfg, width, height, chips, single_short, single_max); },
        pyb::arg("cfg"), pyb::arg("width"), pyb::arg("height"), pyb::arg("chips"), pyb::arg("single_short") = 800,
        pyb::arg("single_max") = 1333,
        R"doc(Pixel accounting of one width x height image for a list of Chips (positives, or
positives and this epoch's negatives) (snip::count_pixels) -> PixelBudget.)doc");

    const char* report_doc = R"doc(The dataset-level report of `snip-chips report --json` for one planned epoch, as a dict.

report(dataset, plans, cfg, seed=0, epoch=0): plans from plan_dataset(cfg, dataset, ...,
seed=seed, epoch=epoch); or report(chips_file) for a ChipsFile (read_chips). The
statistics are those of snip-chips report, computed the same way from the epoch's chips
file: valid / covered / uncoverable boxes per scale, positive and sampled negative chips
per image, and pixels per image (chips as cut, padded, single scale 800x1333, full
pyramid) with their ratios.)doc";
    m.def(
        "report",
        [](const py_dataset& d, const std::vector<snip::image_chips_plan>& plans, const snip::plan_config& cfg,
           std::uint64_t seed, int epoch) {
            return from_json_value(io::to_json(report_of(d, plans, cfg, seed, epoch)));
        },
        pyb::arg("dataset"), pyb::arg("plans"), pyb::arg("cfg"), pyb::arg("seed") = 0, pyb::arg("epoch") = 0,
        report_doc);
    m.def(
        "report",
        [](const snip::io::chips_file& f) { return from_json_value(io::to_json(io::make_chips_report(f))); },
        pyb::arg("chips_file"), "report(chips_file): the report of a ChipsFile.");
    const char* text_doc = R"doc(The tables `snip-chips report` prints for one planned epoch (the same text).

report_text(dataset, plans, cfg, seed=0, epoch=0) or report_text(chips_file).)doc";
    m.def(
        "report_text",
        [](const py_dataset& d, const std::vector<snip::image_chips_plan>& plans, const snip::plan_config& cfg,
           std::uint64_t seed, int epoch) { return io::to_text(report_of(d, plans, cfg, seed, epoch)); },
        pyb::arg("dataset"), pyb::arg("plans"), pyb::arg("cfg"), pyb::arg("seed") = 0, pyb::arg("epoch") = 0,
        text_doc);
    m.def(
        "report_text", [](const snip::io::chips_file& f) { return io::to_text(io::make_chips_report(f)); },
        pyb::arg("chips_file"), "report_text(chips_file): the tables of a ChipsFile.");
}

} // namespace snip::py
