// snip-chips report: coverage, chips and pixels of a plan, per scale and overall.
#include <snip_apps/common.hpp>

#include <snip/sniper/pixel_budget.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>

namespace {

using namespace snip::apps;

struct scale_stats {
    std::string spec;
    std::size_t valid = 0, covered = 0, uncoverable = 0, positives = 0, negatives = 0,
                sampled = 0;
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

void print(const stats& s) {
    const double n = s.images ? double(s.images) : 1.0;
    std::printf("\npreset %s: %zu images\n", s.name.c_str(), s.images);
    std::printf("| scale | valid boxes | covered | coverage | uncoverable | positive chips/img | "
                "negative chips/img (sampled/mined) | chip Mpx/img | full scale Mpx/img |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (std::size_t k = 0; k < s.scales.size(); ++k) {
        const auto& c = s.scales[k];
        std::printf("| %zu: %s | %zu | %zu | %.2f%% | %zu | %.3f | %.3f / %.3f | %.3f | %.3f |\n", k,
                    c.spec.c_str(), c.valid, c.covered, pct(c.covered, c.valid), c.uncoverable,
                    c.positives / n, c.sampled / n, c.negatives / n, (c.pos_px + c.neg_px) / n / 1e6,
                    c.pyramid_px / n / 1e6);
    }
    std::printf("| all | %zu | %zu | %.2f%% | | %.3f | %.3f | %.3f | %.3f |\n", s.valid, s.covered,
                pct(s.covered, s.valid), s.positives / n, s.sampled / n, (s.pos_px + s.neg_px) / n / 1e6,
                s.pyramid_px / n / 1e6);
    std::printf("\npixels per image (Mpx)               positives   + sampled negatives\n");
    std::printf("  chips, as cut                      %8.3f   %8.3f\n", s.pos_px / n / 1e6,
                (s.pos_px + s.neg_px) / n / 1e6);
    std::printf("  chips, padded to chip size         %8.3f   %8.3f\n", s.padded_pos / n / 1e6,
                (s.padded_pos + s.padded_neg) / n / 1e6);
    std::printf("  single scale 800x1333              %8.3f\n", s.single_px / n / 1e6);
    std::printf("  full pyramid                       %8.3f\n", s.pyramid_px / n / 1e6);
    const double budget = s.pos_px / n + s.negatives_per_image * s.chip_px;
    std::printf("  positives + budget of %d negative chips/img (full chips)  %8.3f  (%.3f of single scale)\n",
                s.negatives_per_image, budget / 1e6, budget / (s.single_px / n));
    std::printf("ratios: chips / single scale = %.3f (%.3f with negatives), chips / pyramid = %.3f "
                "(%.3f); padded: %.3f (%.3f) of single scale\n",
                s.pos_px / s.single_px, (s.pos_px + s.neg_px) / s.single_px, s.pos_px / s.pyramid_px,
                (s.pos_px + s.neg_px) / s.pyramid_px, s.padded_pos / s.single_px,
                (s.padded_pos + s.padded_neg) / s.single_px);
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

int run_report(const std::vector<std::string>& argv) {
    auto flags = cli::plan_flags;
    flags.push_back("--chips");
    cli::args a("report", argv, flags, {"--json"});
    std::vector<stats> all;
    if (auto c = a.get("--chips")) {
        // The file is checked against its annotations (given, or the file it names) and
        // its config first: a foreign id or a duplicated chip must not pass for coverage.
        const snip::io::chips_file f = snip::io::read_chips(*c);
        std::string ann;
        if (auto given = a.get("--annotations")) {
            ann = *given;
        } else {
            try {
                ann = snip::io::chips_annotations_path(f, *c);
            } catch (const snip::error& e) {
                snip::fail(e.what(), "; give the COCO file the chips were planned from with "
                                     "--annotations");
            }
        }
        snip::io::validate_chips(f, snip::io::read_coco(ann), *c);
        all.push_back(compute(f));
    } else {
        const auto presets = cli::split(a.get_or("--preset", "default"), ',');
        for (const auto& p : presets) {
            std::vector<std::string> sub = argv;
            for (std::size_t i = 0; i < sub.size(); ++i)
                if (sub[i].rfind("--preset", 0) == 0) {
                    sub.erase(sub.begin() + static_cast<std::ptrdiff_t>(i),
                              sub.begin() + static_cast<std::ptrdiff_t>(
                                                i + (sub[i].find('=') == std::string::npos ? 2 : 1)));
                    break;
                }
            sub.push_back("--preset=" + p);
            cli::args pa("report", sub, flags, {"--json"});
            all.push_back(compute(cli::plan_from_args(pa, cli::config_from_args(pa), a.has("--json")).file));
        }
    }
    if (a.has("--json")) {
        nlohmann::json j = nlohmann::json::array();
        for (const auto& s : all) j.push_back(as_json(s));
        std::printf("%s\n", (all.size() == 1 ? j[0] : j).dump(2).c_str());
        return 0;
    }
    for (const auto& s : all) print(s);
    if (all.size() > 1) {
        std::printf("\nside by side             ");
        for (const auto& s : all) std::printf(" %16s", s.name.c_str());
        std::printf("\ncoverage                 ");
        for (const auto& s : all) std::printf(" %15.2f%%", pct(s.covered, s.valid));
        std::printf("\npositive chips / image   ");
        for (const auto& s : all) std::printf(" %16.3f", s.positives / double(s.images));
        std::printf("\nchips / single scale px  ");
        for (const auto& s : all) std::printf(" %16.3f", s.pos_px / s.single_px);
        std::printf("\n");
    }
    return 0;
}

const std::string usage = std::string(
    "snip-chips report: coverage, chips per image and pixels of a chip plan\n\n"
    "usage: snip-chips report --chips chips.json [--annotations FILE] [--json]\n"
    "       snip-chips report --annotations FILE [--preset default,sniper_coco] [plan options] [--json]\n\n"
    "  --chips FILE        a chips JSON written by `snip-chips plan`; it is checked against\n"
    "                      its annotation file (--annotations, else the one it names) and\n"
    "                      its config before anything is counted\n"
    "  --json              print JSON instead of tables\n"
    "Without --chips the dataset is planned in memory with the plan options below; several\n"
    "comma-separated presets are planned and shown side by side.\n\n") +
    cli::plan_flags_help +
    "\nPixels: 'chips, as cut' is the area of every chip in its scaled image; 'padded' counts\n"
    "each chip as a full chip-size square (the network input); single scale resizes the\n"
    "image to short side 800, long side at most 1333; full pyramid is every scale, whole.";

} // namespace

SNIP_COMMAND("report", "coverage, chips and pixels of a plan (table or --json)", usage, run_report);
