// chips_report.cpp: pixel accounting in snip._chips: PixelBudget and count_pixels (one
// image), and the dataset-level report of `snip-chips report`: the same statistics
// computed the same way from the chips file of one planned epoch (apps/snip-chips/
// cmd_report.cpp: compute, as_json and print), as a dict (its --json) or as its tables.
#include "chips_parts.hpp"

#include <snip/io/chips_json.hpp>
#include <snip/sniper/pixel_budget.hpp>

#include <cstdarg>
#include <cstdio>

namespace snip::py {

namespace {

// ---- the statistics of cmd_report.cpp, the same fields and sums in the same order

struct scale_stats {
    std::string spec;
    std::size_t valid = 0, covered = 0, uncoverable = 0, positives = 0, negatives = 0, sampled = 0;
    double pyramid_px = 0, pos_px = 0, neg_px = 0;
};

struct stats {
    std::string name;
    int negatives_per_image = 0;
    double chip_px = 0;
    std::size_t images = 0;
    std::vector<scale_stats> scales;
    double single_px = 0, pyramid_px = 0, pos_px = 0, neg_px = 0, padded_pos = 0, padded_neg = 0;
    std::size_t positives = 0, sampled = 0, valid = 0, covered = 0;
};

stats compute(const snip::io::chips_file& f) {
    stats s;
    s.name = f.config.name;
    s.negatives_per_image = f.config.negatives_per_image;
    s.chip_px = double(f.config.chip_size) * f.config.chip_size;
    s.images = f.images.size();
    s.scales.resize(f.config.scales.size());
    for (std::size_t k = 0; k < s.scales.size(); ++k) s.scales[k].spec = f.config.scales[k].to_string();
    const double pad = double(f.config.chip_size) * f.config.chip_size;
    for (const auto& im : f.images) {
        s.single_px += snip::single_scale(im.width, im.height).pixels();
        for (std::size_t k = 0; k < im.scales.size(); ++k) {
            auto& sc = s.scales[k];
            sc.valid += im.scales[k].valid_ids.size();
            sc.uncoverable += im.scales[k].uncoverable_ids.size();
            sc.pyramid_px += double(im.scales[k].width) * im.scales[k].height;
        }
        for (const auto& c : im.chips) {
            auto& sc = s.scales[static_cast<std::size_t>(c.scale)];
            const double a = snip::chip_area(c.rect, f.config.convention);
            if (!c.negative) {
                ++sc.positives;
                sc.covered += c.ann_ids.size();
                sc.pos_px += a;
                s.padded_pos += pad;
            } else {
                ++sc.negatives;
                if (c.sampled) ++sc.sampled, sc.neg_px += a, s.padded_neg += pad;
            }
        }
    }
    for (const auto& sc : s.scales) {
        s.pyramid_px += sc.pyramid_px;
        s.pos_px += sc.pos_px;
        s.neg_px += sc.neg_px;
        s.positives += sc.positives;
        s.sampled += sc.sampled;
        s.valid += sc.valid;
        s.covered += sc.covered;
    }
    return s;
}

double pct(std::size_t a, std::size_t b) { return b ? 100.0 * double(a) / double(b) : 100.0; }

__attribute__((format(printf, 2, 3))) void appendf(std::string& out, const char* fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) out.append(buf, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1));
}

std::string print(const stats& s) {
    std::string o;
    const double n = s.images ? double(s.images) : 1.0;
    appendf(o, "\npreset %s: %zu images\n", s.name.c_str(), s.images);
    appendf(o, "| scale | valid boxes | covered | coverage | uncoverable | positive chips/img | "
               "negative chips/img (sampled/mined) | chip Mpx/img | full scale Mpx/img |\n");
    appendf(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (std::size_t k = 0; k < s.scales.size(); ++k) {
        const auto& c = s.scales[k];
        appendf(o, "| %zu: %s | %zu | %zu | %.2f%% | %zu | %.3f | %.3f / %.3f | %.3f | %.3f |\n", k, c.spec.c_str(),
                c.valid, c.covered, pct(c.covered, c.valid), c.uncoverable, c.positives / n, c.sampled / n,
                c.negatives / n, (c.pos_px + c.neg_px) / n / 1e6, c.pyramid_px / n / 1e6);
    }
    appendf(o, "| all | %zu | %zu | %.2f%% | | %.3f | %.3f | %.3f | %.3f |\n", s.valid, s.covered,
            pct(s.covered, s.valid), s.positives / n, s.sampled / n, (s.pos_px + s.neg_px) / n / 1e6,
            s.pyramid_px / n / 1e6);
    appendf(o, "\npixels per image (Mpx)               positives   + sampled negatives\n");
    appendf(o, "  chips, as cut                      %8.3f   %8.3f\n", s.pos_px / n / 1e6,
            (s.pos_px + s.neg_px) / n / 1e6);
    appendf(o, "  chips, padded to chip size         %8.3f   %8.3f\n", s.padded_pos / n / 1e6,
            (s.padded_pos + s.padded_neg) / n / 1e6);
    appendf(o, "  single scale 800x1333              %8.3f\n", s.single_px / n / 1e6);
    appendf(o, "  full pyramid                       %8.3f\n", s.pyramid_px / n / 1e6);
    const double budget = s.pos_px / n + s.negatives_per_image * s.chip_px;
    appendf(o, "  positives + budget of %d negative chips/img (full chips)  %8.3f  (%.3f of single scale)\n",
            s.negatives_per_image, budget / 1e6, budget / (s.single_px / n));
    appendf(o,
            "ratios: chips / single scale = %.3f (%.3f with negatives), chips / pyramid = %.3f "
            "(%.3f); padded: %.3f (%.3f) of single scale\n",
            s.pos_px / s.single_px, (s.pos_px + s.neg_px) / s.single_px, s.pos_px / s.pyramid_px,
            (s.pos_px + s.neg_px) / s.pyramid_px, s.padded_pos / s.single_px,
            (s.padded_pos + s.padded_neg) / s.single_px);
    return o;
}

nlohmann::json as_json(const stats& s) {
    const double n = s.images ? double(s.images) : 1.0;
    nlohmann::json j = {{"preset", s.name},
                        {"images", s.images},
                        {"valid_boxes", s.valid},
                        {"covered_boxes", s.covered},
                        {"coverage", s.valid ? double(s.covered) / double(s.valid) : 1.0},
                        {"positive_chips_per_image", s.positives / n},
                        {"sampled_negative_chips_per_image", s.sampled / n},
                        {"pixels_per_image",
                         {{"positive_chips", s.pos_px / n},
                          {"positive_and_negative_chips", (s.pos_px + s.neg_px) / n},
                          {"padded_positive_chips", s.padded_pos / n},
                          {"padded_all_chips", (s.padded_pos + s.padded_neg) / n},
                          {"single_scale_800x1333", s.single_px / n},
                          {"full_pyramid", s.pyramid_px / n}}},
                        {"ratio_chips_to_single_scale", s.pos_px / s.single_px},
                        {"ratio_all_chips_to_single_scale", (s.pos_px + s.neg_px) / s.single_px},
                        {"ratio_chips_to_pyramid", s.pos_px / s.pyramid_px},
                        {"ratio_positives_plus_negative_budget_to_single_scale",
                         (s.pos_px / n + s.negatives_per_image * s.chip_px) / (s.single_px / n)}};
    j["scales"] = nlohmann::json::array();
    for (const auto& c : s.scales)
        j["scales"].push_back({{"scale", c.spec},
                               {"valid_boxes", c.valid},
                               {"covered_boxes", c.covered},
                               {"coverage", c.valid ? double(c.covered) / double(c.valid) : 1.0},
                               {"uncoverable_boxes", c.uncoverable},
                               {"positive_chips_per_image", c.positives / n},
                               {"negative_chips_per_image", c.negatives / n},
                               {"sampled_negative_chips_per_image", c.sampled / n},
                               {"chip_pixels_per_image", (c.pos_px + c.neg_px) / n},
                               {"scale_pixels_per_image", c.pyramid_px / n}});
    return j;
}

snip::io::chips_file file_of(const py_dataset& d, const std::vector<snip::image_chips_plan>& plans,
                             const snip::plan_config& cfg, std::uint64_t seed, int epoch) {
    return snip::io::make_chips_file(d.ds, plans, cfg, seed, epoch, d.ds.source, "");
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
           std::uint64_t seed, int epoch) { return from_json_value(as_json(compute(file_of(d, plans, cfg, seed, epoch)))); },
        pyb::arg("dataset"), pyb::arg("plans"), pyb::arg("cfg"), pyb::arg("seed") = 0, pyb::arg("epoch") = 0,
        report_doc);
    m.def(
        "report", [](const snip::io::chips_file& f) { return from_json_value(as_json(compute(f))); },
        pyb::arg("chips_file"), "report(chips_file): the report of a ChipsFile.");
    const char* text_doc = R"doc(The tables `snip-chips report` prints for one planned epoch (the same text).

report_text(dataset, plans, cfg, seed=0, epoch=0) or report_text(chips_file).)doc";
    m.def(
        "report_text",
        [](const py_dataset& d, const std::vector<snip::image_chips_plan>& plans, const snip::plan_config& cfg,
           std::uint64_t seed, int epoch) { return print(compute(file_of(d, plans, cfg, seed, epoch))); },
        pyb::arg("dataset"), pyb::arg("plans"), pyb::arg("cfg"), pyb::arg("seed") = 0, pyb::arg("epoch") = 0,
        text_doc);
    m.def(
        "report_text", [](const snip::io::chips_file& f) { return print(compute(f)); }, pyb::arg("chips_file"),
        "report_text(chips_file): the tables of a ChipsFile.");
}

} // namespace snip::py
