// io/chips_report.hpp: the report of a chips file (`snip-chips report`, snip.report and
// snip.report_text in Python): coverage, chips and pixels of one planned epoch, per scale
// and overall, as numbers, as JSON and as the printed tables.
//
// JSON form (to_json; "per image" = divided by the number of images, or by 1 for none;
// pixels are px of the scaled images; a coverage of no valid box is 1):
// {
//   "preset", "images", "valid_boxes", "covered_boxes", "coverage",
//   "positive_chips_per_image", "sampled_negative_chips_per_image",
//   "pixels_per_image": {"positive_chips", "positive_and_negative_chips",
//                        "padded_positive_chips", "padded_all_chips",
//                        "single_scale_800x1333", "full_pyramid"},
//   "ratio_chips_to_single_scale", "ratio_all_chips_to_single_scale",
//   "ratio_chips_to_pyramid", "ratio_positives_plus_negative_budget_to_single_scale",
//   "scales": [{"scale", "valid_boxes", "covered_boxes", "coverage", "uncoverable_boxes",
//               "positive_chips_per_image", "negative_chips_per_image",
//               "sampled_negative_chips_per_image", "chip_pixels_per_image",
//               "scale_pixels_per_image"}]
// }
// "negative" chips are every mined one, "sampled" those used this epoch; the pixels of
// negative chips count the sampled ones only. "padded" counts each chip as a full
// chip_size x chip_size square (the network input); single scale resizes the image to
// short side 800, long side at most 1333; the full pyramid is every scale, whole.
#pragma once

#include <snip/core/error.hpp>
#include <snip/io/chips_json.hpp>
#include <snip/sniper/pixel_budget.hpp>

#include <nlohmann/json.hpp>

#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

namespace snip::io {

/// @brief One scale of a chips_report: sums over every image of the file.
struct chips_report_scale {
    std::string spec;                 ///< the scale as the config writes it ("3", "512px", ...)
    std::size_t valid = 0;            ///< valid boxes (valid_ids)
    std::size_t covered = 0;          ///< boxes assigned to a positive chip (its ann_ids)
    std::size_t uncoverable = 0;      ///< uncoverable boxes (uncoverable_ids)
    std::size_t positives = 0;        ///< positive chips
    std::size_t negatives = 0;        ///< negative chips, all mined
    std::size_t sampled = 0;          ///< negative chips sampled this epoch
    double pyramid_px = 0;            ///< area of the scaled images, whole
    double pos_px = 0;                ///< area of the positive chips, as cut
    double neg_px = 0;                ///< area of the sampled negative chips, as cut
};

/// @brief The statistics of a chips file, per scale and overall (make_chips_report).
/// Counts and pixels are sums over the images; the per-image numbers of to_json and
/// to_text divide them by `images`.
struct chips_report {
    std::string name;                 ///< the config's name (the preset, or a label)
    int negatives_per_image = 0;      ///< the config's negative chips per image and epoch
    double chip_px = 0;               ///< chip_size^2
    std::size_t images = 0;
    std::vector<chips_report_scale> scales;  ///< one per config scale, finest first
    double single_px = 0;             ///< area of each image at single scale (800 x 1333)
    double pyramid_px = 0;            ///< sum of the scales' pyramid_px
    double pos_px = 0;                ///< sum of the scales' pos_px
    double neg_px = 0;                ///< sum of the scales' neg_px
    double padded_pos = 0;            ///< positive chips x chip_size^2
    double padded_neg = 0;            ///< sampled negative chips x chip_size^2
    std::size_t positives = 0;        ///< sum of the scales' positives
    std::size_t sampled = 0;          ///< sum of the scales' sampled
    std::size_t valid = 0;            ///< sum of the scales' valid
    std::size_t covered = 0;          ///< sum of the scales' covered
};

/// @brief Counts the report of a chips file. Nothing is checked against the annotations:
/// give a file that validate_chips (or read_chips(path, ds)) accepted, or one made by
/// make_chips_file, for a coverage that means what it says. Throws snip::error when an
/// image's scales are not one per config scale or a chip's scale index is out of range.
inline chips_report make_chips_report(const chips_file& f) {
    chips_report s;
    s.name = f.config.name;
    s.negatives_per_image = f.config.negatives_per_image;
    s.chip_px = double(f.config.chip_size) * f.config.chip_size;
    s.images = f.images.size();
    s.scales.resize(f.config.scales.size());
    for (std::size_t k = 0; k < s.scales.size(); ++k)
        s.scales[k].spec = f.config.scales[k].to_string();
    const double pad = double(f.config.chip_size) * f.config.chip_size;
    for (std::size_t i = 0; i < f.images.size(); ++i) {
        const auto& im = f.images[i];
        require(im.scales.size() == s.scales.size(), "make_chips_report: images[", i, "] (id ",
                im.id, ") has ", im.scales.size(), " scales, the config ", s.scales.size());
        s.single_px += snip::single_scale(im.width, im.height).pixels();
        for (std::size_t k = 0; k < im.scales.size(); ++k) {
            auto& sc = s.scales[k];
            sc.valid += im.scales[k].valid_ids.size();
            sc.uncoverable += im.scales[k].uncoverable_ids.size();
            sc.pyramid_px += double(im.scales[k].width) * im.scales[k].height;
        }
        for (const auto& c : im.chips) {
            require(c.scale >= 0 && static_cast<std::size_t>(c.scale) < s.scales.size(),
                    "make_chips_report: images[", i, "] (id ", im.id, ") has a chip of scale ",
                    c.scale, ", expected an index below ", s.scales.size());
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

/// @brief The report as JSON (the object at the top of this file).
inline nlohmann::json to_json(const chips_report& s) {
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

namespace detail {

/// printf-style formatting appended to `out`, of any length.
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
inline void appendf(std::string& out, const char* fmt, ...) {
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    const int n = std::vsnprintf(nullptr, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        const std::size_t at = out.size(), len = static_cast<std::size_t>(n);
        out.resize(at + len + 1);
        std::vsnprintf(out.data() + at, len + 1, fmt, again);
        out.resize(at + len);
    }
    va_end(again);
}

/// 100 a / b, and 100 for b = 0 (no box to cover: all covered).
inline double report_percent(std::size_t a, std::size_t b) {
    return b ? 100.0 * double(a) / double(b) : 100.0;
}

} // namespace detail

/// @brief The tables `snip-chips report` prints for one report: a Markdown table per
/// scale and overall, then the pixels per image (Mpx) and their ratios. Starts with an
/// empty line and ends with a newline.
inline std::string to_text(const chips_report& s) {
    using detail::appendf;
    using detail::report_percent;
    std::string o;
    const double n = s.images ? double(s.images) : 1.0;
    appendf(o, "\npreset %s: %zu images\n", s.name.c_str(), s.images);
    o += "| scale | valid boxes | covered | coverage | uncoverable | positive chips/img | "
         "negative chips/img (sampled/mined) | chip Mpx/img | full scale Mpx/img |\n";
    o += "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (std::size_t k = 0; k < s.scales.size(); ++k) {
        const auto& c = s.scales[k];
        appendf(o, "| %zu: %s | %zu | %zu | %.2f%% | %zu | %.3f | %.3f / %.3f | %.3f | %.3f |\n", k,
                c.spec.c_str(), c.valid, c.covered, report_percent(c.covered, c.valid),
                c.uncoverable, c.positives / n, c.sampled / n, c.negatives / n,
                (c.pos_px + c.neg_px) / n / 1e6, c.pyramid_px / n / 1e6);
    }
    appendf(o, "| all | %zu | %zu | %.2f%% | | %.3f | %.3f | %.3f | %.3f |\n", s.valid, s.covered,
            report_percent(s.covered, s.valid), s.positives / n, s.sampled / n,
            (s.pos_px + s.neg_px) / n / 1e6, s.pyramid_px / n / 1e6);
    o += "\npixels per image (Mpx)               positives   + sampled negatives\n";
    appendf(o, "  chips, as cut                      %8.3f   %8.3f\n", s.pos_px / n / 1e6,
            (s.pos_px + s.neg_px) / n / 1e6);
    appendf(o, "  chips, padded to chip size         %8.3f   %8.3f\n", s.padded_pos / n / 1e6,
            (s.padded_pos + s.padded_neg) / n / 1e6);
    appendf(o, "  single scale 800x1333              %8.3f\n", s.single_px / n / 1e6);
    appendf(o, "  full pyramid                       %8.3f\n", s.pyramid_px / n / 1e6);
    const double budget = s.pos_px / n + s.negatives_per_image * s.chip_px;
    appendf(o,
            "  positives + budget of %d negative chips/img (full chips)  %8.3f  (%.3f of single "
            "scale)\n",
            s.negatives_per_image, budget / 1e6, budget / (s.single_px / n));
    appendf(o,
            "ratios: chips / single scale = %.3f (%.3f with negatives), chips / pyramid = %.3f "
            "(%.3f); padded: %.3f (%.3f) of single scale\n",
            s.pos_px / s.single_px, (s.pos_px + s.neg_px) / s.single_px, s.pos_px / s.pyramid_px,
            (s.pos_px + s.neg_px) / s.pyramid_px, s.padded_pos / s.single_px,
            (s.padded_pos + s.padded_neg) / s.single_px);
    return o;
}

/// @brief The comparison `snip-chips report` prints after the tables of several reports:
/// coverage (%), positive chips per image and chips / single scale pixels, one column per
/// report headed by its name. Starts with an empty line and ends with a newline.
inline std::string side_by_side_text(const std::vector<chips_report>& all) {
    using detail::appendf;
    std::string o = "\nside by side             ";
    for (const auto& s : all) appendf(o, " %16s", s.name.c_str());
    o += "\ncoverage                 ";
    for (const auto& s : all) appendf(o, " %15.2f%%", detail::report_percent(s.covered, s.valid));
    o += "\npositive chips / image   ";
    for (const auto& s : all) appendf(o, " %16.3f", s.positives / double(s.images));
    o += "\nchips / single scale px  ";
    for (const auto& s : all) appendf(o, " %16.3f", s.pos_px / s.single_px);
    o += "\n";
    return o;
}

} // namespace snip::io
