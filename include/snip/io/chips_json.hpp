// io/chips_json.hpp: the chips JSON written by `snip-chips plan` (format "snip-chips/2").
//
// Schema (all boxes xyxy; "box" in ORIGINAL-image pixels, "rect" in the pixels of the
// chip's scaled image, both closed intervals in the config's pixel convention):
// {
//   "format": "snip-chips/2", "annotations": path, "proposals": path | null,
//   "config": {"preset", "scales": ["3", "1.667", "512px", "(1400,2000)"],
//              "valid_ranges": [[lo, hi], ...], "chip_size", "stride", "stride_min",
//              "stride_max", "convention": "inclusive" | "continuous",
//              "layout": "sniper" | "aligned", "negatives_per_image",
//              "min_proposals_finest", "min_proposals_other"},
//   "seed": uint, "epoch": int,
//   "images": [{"id", "file_name", "width", "height",
//     "scales": [{"factor", "width", "height", "stride", "valid_ids": [ann id...],
//                 "uncoverable_ids": [ann id...]}],
//     "chips": [{"scale", "kind": "positive", "box", "rect", "ann_ids": [ann id...]},
//               {"scale", "kind": "negative", "box", "rect", "proposals": n,
//                "proposal_ids": [index into the image's proposal list...],
//                "ann_ids": [ann id...], "sampled": bool}]}]
// }
// A negative chip's "ann_ids" are the ground-truth annotations the miner itself assigned
// to it (usually none): the only boxes valid in it. "proposals" = size of "proposal_ids".
//
// Format "snip-chips/1" (before negative chips kept their ground truth apart) is still
// read: its negative chips have no "ann_ids" and no "proposal_ids" (read as empty: no
// ground truth valid in them), and their "proposals" counted every mining candidate,
// ground truth included.
#pragma once

#include <snip/sniper/dataset.hpp>
#include <snip/sniper/dataset_plan.hpp>
#include <snip/io/coco.hpp>
#include <snip/sniper/plan.hpp>
#include <snip/sniper/tune.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace snip::io {

struct chip_entry {
    int scale = 0;
    bool negative = false;
    snip::box<double> box;  ///< original px
    snip::box<int> rect;  ///< scaled px
    /// Annotations assigned to the chip (negatives: the ground truth the miner assigned).
    std::vector<std::int64_t> ann_ids;
    int proposals = 0;                  ///< negatives: proposals counted in the chip
    /// Negatives: those proposals, as indices into the image's proposal list.
    std::vector<std::int64_t> proposal_ids;
    bool sampled = false;               ///< negatives: used this epoch
};

struct scale_entry {
    double factor = 1;
    int width = 0, height = 0, stride = 0;
    std::vector<std::int64_t> valid_ids, uncoverable_ids;
};

struct image_chips {
    std::int64_t id = 0;
    std::string file_name;
    int width = 0, height = 0;
    std::vector<scale_entry> scales;
    std::vector<chip_entry> chips;
};

struct chips_file {
    /// 2 (what make_chips_file gives); 1 for a file read in the old "snip-chips/1" format,
    /// written back in that format (its negatives have no id lists).
    int version = 2;
    std::string annotations, proposals;
    plan_config config;
    std::uint64_t seed = 0;
    int epoch = 0;
    std::vector<image_chips> images;
};

inline const char* to_string(pixel_convention c) {
    return c == pixel_convention::inclusive ? "inclusive" : "continuous";
}
inline const char* to_string(chip_layout l) { return l == chip_layout::sniper ? "sniper" : "aligned"; }

/// @brief A plan_config as JSON (the "config" object above).
inline nlohmann::json config_to_json(const plan_config& c) {
    nlohmann::json j;
    // "preset" names the base that fills keys left out when reading; "name" is the label.
    const bool known = c.name == "default" || c.name == "sniper_coco";
    j["preset"] = known ? c.name : (c.convention == pixel_convention::inclusive ? "sniper_coco" : "default");
    j["name"] = c.name;
    j["scales"] = nlohmann::json::array();
    for (const auto& s : c.scales) j["scales"].push_back(s.to_string());
    j["valid_ranges"] = nlohmann::json::array();
    for (const auto& r : c.ranges) j["valid_ranges"].push_back({r.lo, r.hi});
    j["chip_size"] = c.chip_size;
    j["stride"] = c.stride;
    j["stride_min"] = c.stride_min;
    j["stride_max"] = c.stride_max;
    j["convention"] = to_string(c.convention);
    j["layout"] = to_string(c.layout);
    j["negatives_per_image"] = c.negatives_per_image;
    j["min_proposals_finest"] = c.min_proposals_finest;
    j["min_proposals_other"] = c.min_proposals_other;
    j["finest_min_side"] = c.finest_min_side;
    j["max_side_rule"] = c.max_side_rule;
    return j;
}

namespace detail {

[[noreturn]] inline void bad_field(const std::string& src, const std::string& path,
                                   const nlohmann::json& v, const std::string& want) {
    fail(src, ": ", path, " is ", show(v), ", expected ", want);
}

inline const nlohmann::json& field(const nlohmann::json& o, const char* key,
                                   const std::string& src, const std::string& path) {
    if (!o.is_object()) bad_field(src, path, o, "an object");
    auto it = o.find(key);
    if (it == o.end()) fail(src, ": ", path, ".", key, " is missing");
    return *it;
}

inline double num(const nlohmann::json& o, const char* key, const std::string& src,
                  const std::string& path) {
    const auto& v = field(o, key, src, path);
    if (!v.is_number()) bad_field(src, path + "." + key, v, "a number");
    const double d = v.get<double>();
    if (!std::isfinite(d)) bad_field(src, path + "." + key, v, "a finite number");
    return d;
}

inline long long integer(const nlohmann::json& o, const char* key, const std::string& src,
                         const std::string& path) {
    const auto& v = field(o, key, src, path);
    if (!v.is_number_integer() ||
        (v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(INT64_MAX)))
        bad_field(src, path + "." + key, v, "an integer");
    return v.get<long long>();
}

/// An integer that fits an int (no silent wrap-around of 2^32 + 64 to 64).
inline int int32(const nlohmann::json& o, const char* key, const std::string& src,
                 const std::string& path) {
    const long long v = integer(o, key, src, path);
    if (v < INT_MIN || v > INT_MAX)
        bad_field(src, path + "." + key, o[key], "an integer in int range");
    return static_cast<int>(v);
}

inline std::string str(const nlohmann::json& o, const char* key, const std::string& src,
                       const std::string& path) {
    const auto& v = field(o, key, src, path);
    if (!v.is_string()) bad_field(src, path + "." + key, v, "a string");
    return v.get<std::string>();
}

template <class T>
snip::box<T> box4(const nlohmann::json& o, const char* key, const std::string& src,
                  const std::string& path) {
    const auto& v = field(o, key, src, path);
    const std::string p = path + "." + key;
    if (!v.is_array() || v.size() != 4) bad_field(src, p, v, "an array of 4 numbers");
    T c[4];
    for (int k = 0; k < 4; ++k) {
        if (!v[k].is_number()) bad_field(src, p, v, "an array of 4 numbers");
        const double d = v[k].get<double>();
        if (!std::isfinite(d)) bad_field(src, p, v, "4 finite numbers");
        if constexpr (std::is_integral_v<T>)
            if (d != std::floor(d) || d < INT_MIN || d > INT_MAX)
                bad_field(src, p, v, "4 integers (pixels) in int range");
        c[k] = static_cast<T>(d);
    }
    if (c[2] < c[0] || c[3] < c[1]) bad_field(src, p, v, "x1 <= x2 and y1 <= y2");
    return {c[0], c[1], c[2], c[3]};
}

inline std::vector<std::int64_t> ids(const nlohmann::json& o, const char* key,
                                     const std::string& src, const std::string& path) {
    const auto& v = field(o, key, src, path);
    if (!v.is_array()) bad_field(src, path + "." + key, v, "an array of integers");
    std::vector<std::int64_t> out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_number_integer())
            bad_field(src, path + "." + key + "[" + std::to_string(i) + "]", v[i], "an integer");
        out.push_back(v[i].get<std::int64_t>());
    }
    return out;
}

} // namespace detail

/// @brief One configuration `tune` measured, as JSON: its config (config_to_json) and its
/// metrics (valid and good shares, chips and pixels per image, ratio to single scale).
inline nlohmann::json tune_candidate_to_json(const tune_candidate& c) {
    const auto& m = c.metrics;
    return {{"config", config_to_json(c.cfg)},
            {"valid_share", m.valid_share()},
            {"good_share", m.good_share()},
            {"chips_per_image", m.chips_per_image()},
            {"padded_pixels_per_image", m.padded_per_image()},
            {"chip_pixels_per_image", m.pixels_per_image()},
            {"ratio_to_single_scale", m.ratio_to_single_scale()}};
}

/// @brief What `tune` chose, as JSON (`snip-chips tune --json` adds its file names): rule,
/// sample_images, chosen, best_per_scale_count and, when measured, reference.
inline nlohmann::json tune_result_to_json(const tune_result& r) {
    nlohmann::json j = {{"rule", r.rule}, {"sample_images", r.sample_images},
                        {"chosen", tune_candidate_to_json(r.chosen)}};
    j["best_per_scale_count"] = nlohmann::json::array();
    for (const auto& c : r.best_per_count) j["best_per_scale_count"].push_back(tune_candidate_to_json(c));
    if (r.reference) j["reference"] = tune_candidate_to_json(*r.reference);
    return j;
}

/// @brief Reads a plan_config from JSON ("config" object or a preset file). Missing
/// keys take the value of `preset` (by name) or of the defaults; every value is
/// checked and the config validated. `src` names the file in messages.
inline plan_config config_from_json(const nlohmann::json& j, const std::string& src,
                                    const std::string& path = "config") {
    using namespace detail;
    if (!j.is_object()) bad_field(src, path, j, "an object");
    plan_config c = plan_config::defaults();
    if (j.contains("preset")) {
        const std::string name = str(j, "preset", src, path);
        try {
            c = plan_config::preset(name);
        } catch (const error& e) {
            fail(src, ": ", path, ".preset: ", e.what());
        }
    }
    if (j.contains("name")) c.name = str(j, "name", src, path);
    if (j.contains("scales")) {
        const auto& a = j["scales"];
        if (!a.is_array() || a.empty()) bad_field(src, path + ".scales", a, "a non-empty array");
        c.scales.clear();
        for (std::size_t i = 0; i < a.size(); ++i) {
            const std::string p = src + ": " + path + ".scales[" + std::to_string(i) + "]";
            if (a[i].is_number())
                c.scales.push_back(scale_spec::parse(a[i].dump(), p));
            else if (a[i].is_string())
                c.scales.push_back(scale_spec::parse(a[i].get<std::string>(), p));
            else
                bad_field(src, path + ".scales[" + std::to_string(i) + "]", a[i],
                          "a factor, \"512px\" or \"(short,max)\"");
        }
    }
    if (j.contains("valid_ranges")) {
        const auto& a = j["valid_ranges"];
        if (!a.is_array()) bad_field(src, path + ".valid_ranges", a, "an array of [lo, hi]");
        c.ranges.clear();
        for (std::size_t i = 0; i < a.size(); ++i) {
            const std::string p = path + ".valid_ranges[" + std::to_string(i) + "]";
            if (!a[i].is_array() || a[i].size() != 2 || !a[i][0].is_number() || !a[i][1].is_number())
                bad_field(src, p, a[i], "[lo, hi] (numbers, -1 for open)");
            valid_range r{a[i][0].get<double>(), a[i][1].get<double>()};
            r.validate(src + ": " + p);
            c.ranges.push_back(r);
        }
    }
    auto geti = [&](const char* k, int& dst) {
        if (j.contains(k)) dst = int32(j, k, src, path);
    };
    geti("chip_size", c.chip_size);
    geti("stride", c.stride);
    // A fixed "stride" replaces a preset's draw (sniper_coco draws 56..59) unless the
    // draw is given too, as the CLI's --stride.
    if (j.contains("stride") && !j.contains("stride_min") && !j.contains("stride_max"))
        c.stride_min = c.stride_max = 0;
    geti("stride_min", c.stride_min);
    geti("stride_max", c.stride_max);
    geti("negatives_per_image", c.negatives_per_image);
    geti("min_proposals_finest", c.min_proposals_finest);
    geti("min_proposals_other", c.min_proposals_other);
    if (j.contains("finest_min_side")) c.finest_min_side = num(j, "finest_min_side", src, path);
    if (j.contains("max_side_rule")) {
        if (!j["max_side_rule"].is_boolean())
            bad_field(src, path + ".max_side_rule", j["max_side_rule"], "true or false");
        c.max_side_rule = j["max_side_rule"].get<bool>();
    }
    if (j.contains("convention")) {
        const auto v = str(j, "convention", src, path);
        if (v == "inclusive") c.convention = pixel_convention::inclusive;
        else if (v == "continuous") c.convention = pixel_convention::continuous;
        else bad_field(src, path + ".convention", j["convention"], "\"inclusive\" or \"continuous\"");
    }
    if (j.contains("layout")) {
        const auto v = str(j, "layout", src, path);
        if (v == "sniper") c.layout = chip_layout::sniper;
        else if (v == "aligned") c.layout = chip_layout::aligned;
        else bad_field(src, path + ".layout", j["layout"], "\"sniper\" or \"aligned\"");
    }
    c.validate(src + ": " + path);
    return c;
}

/// @brief Builds the chips file of one planned epoch (annotation ids, not indices).
inline chips_file make_chips_file(const dataset& ds, const std::vector<image_chips_plan>& plans,
                                  const plan_config& cfg, std::uint64_t seed, int epoch,
                                  const std::string& annotations, const std::string& proposals) {
    require(plans.size() == ds.images.size(), "make_chips_file: ", plans.size(), " plans for ",
            ds.images.size(), " images");
    chips_file f;
    f.annotations = annotations;
    f.proposals = proposals;
    f.config = cfg;
    f.seed = seed;
    f.epoch = epoch;
    f.images.resize(ds.images.size());
    const int stride = epoch_stride(cfg, seed, epoch);
    for (std::size_t i = 0; i < ds.images.size(); ++i) {
        const auto& im = ds.images[i];
        const auto& p = plans[i];
        auto& o = f.images[i];
        o.id = im.id;
        o.file_name = im.file_name;
        o.width = im.width;
        o.height = im.height;
        auto ann = [&](int k) { return im.ann_ids[static_cast<std::size_t>(k)]; };
        for (const auto& s : p.plan.scales) {
            scale_entry e{s.size.factor, s.size.width, s.size.height, stride, {}, {}};
            for (int k : s.valid) e.valid_ids.push_back(ann(k));
            for (int k : s.uncoverable) e.uncoverable_ids.push_back(ann(k));
            o.scales.push_back(std::move(e));
        }
        for (const auto& c : p.plan.positives) {
            chip_entry e;
            e.scale = c.scale;
            e.box = c.original();
            e.rect = c.rect;
            for (int k : c.boxes) e.ann_ids.push_back(ann(k));
            o.chips.push_back(std::move(e));
        }
        for (std::size_t k = 0; k < p.negatives.size(); ++k) {
            const auto& c = p.negatives[k];
            chip_entry e;
            e.scale = c.scale;
            e.negative = true;
            e.box = c.original();
            e.rect = c.rect;
            e.proposals = static_cast<int>(c.proposals.size());
            for (int q : c.proposals) e.proposal_ids.push_back(q);
            for (int q : c.boxes) e.ann_ids.push_back(ann(q));
            e.sampled = std::find(p.sampled.begin(), p.sampled.end(), int(k)) != p.sampled.end();
            o.chips.push_back(std::move(e));
        }
    }
    return f;
}

inline nlohmann::json to_json(const chips_file& f) {
    using nlohmann::json;
    json j;
    require(f.version == 1 || f.version == 2, "to_json: chips file version ", f.version,
            ", expected 1 or 2");
    j["format"] = f.version == 1 ? "snip-chips/1" : "snip-chips/2";
    j["annotations"] = f.annotations;
    j["proposals"] = f.proposals.empty() ? json(nullptr) : json(f.proposals);
    j["config"] = config_to_json(f.config);
    j["seed"] = f.seed;
    j["epoch"] = f.epoch;
    json imgs = json::array();
    for (const auto& im : f.images) {
        json ji = {{"id", im.id}, {"file_name", im.file_name}, {"width", im.width},
                   {"height", im.height}};
        json sc = json::array();
        for (const auto& s : im.scales)
            sc.push_back({{"factor", s.factor}, {"width", s.width}, {"height", s.height},
                          {"stride", s.stride}, {"valid_ids", s.valid_ids},
                          {"uncoverable_ids", s.uncoverable_ids}});
        ji["scales"] = std::move(sc);
        json ch = json::array();
        for (const auto& c : im.chips) {
            json jc = {{"scale", c.scale},
                       {"kind", c.negative ? "negative" : "positive"},
                       {"box", {c.box.x1, c.box.y1, c.box.x2, c.box.y2}},
                       {"rect", {c.rect.x1, c.rect.y1, c.rect.x2, c.rect.y2}}};
            if (c.negative) {
                jc["proposals"] = c.proposals;
                if (f.version >= 2) jc["proposal_ids"] = c.proposal_ids;
                jc["sampled"] = c.sampled;
            }
            if (!c.negative || f.version >= 2) jc["ann_ids"] = c.ann_ids;
            ch.push_back(std::move(jc));
        }
        ji["chips"] = std::move(ch);
        imgs.push_back(std::move(ji));
    }
    j["images"] = std::move(imgs);
    return j;
}

/// @brief Parses a chips JSON; every error names `src`, the field path and the value.
inline chips_file chips_from_json(const nlohmann::json& j, const std::string& src) {
    using namespace detail;
    if (!j.is_object()) bad_field(src, "top level", j, "an object");
    chips_file f;
    const auto fmt = str(j, "format", src, "top level");
    if (fmt != "snip-chips/2" && fmt != "snip-chips/1")
        bad_field(src, "format", j["format"], "\"snip-chips/2\" (or the older \"snip-chips/1\")");
    const bool v1 = fmt == "snip-chips/1";
    f.version = v1 ? 1 : 2;
    if (j.contains("annotations")) f.annotations = str(j, "annotations", src, "top level");
    if (j.contains("proposals") && !j["proposals"].is_null()) {
        if (!j["proposals"].is_string())
            bad_field(src, "proposals", j["proposals"], "a string or null");
        f.proposals = j["proposals"].get<std::string>();
    }
    f.config = config_from_json(field(j, "config", src, "top level"), src);
    if (j.contains("seed")) {
        if (!j["seed"].is_number_unsigned()) bad_field(src, "seed", j["seed"], "an integer >= 0");
        f.seed = j["seed"].get<std::uint64_t>();
    }
    if (j.contains("epoch")) f.epoch = int32(j, "epoch", src, "top level");
    const auto& imgs = field(j, "images", src, "top level");
    if (!imgs.is_array()) bad_field(src, "images", imgs, "an array");
    const int ns = static_cast<int>(f.config.scales.size());
    for (std::size_t i = 0; i < imgs.size(); ++i) {
        const std::string p = "images[" + std::to_string(i) + "]";
        const auto& ji = imgs[i];
        image_chips im;
        im.id = integer(ji, "id", src, p);
        if (ji.contains("file_name")) im.file_name = str(ji, "file_name", src, p);
        im.width = int32(ji, "width", src, p);
        im.height = int32(ji, "height", src, p);
        if (im.width <= 0 || im.height <= 0)
            fail(src, ": ", p, " has size ", im.width, "x", im.height, ", must be positive");
        const auto& sc = field(ji, "scales", src, p);
        if (!sc.is_array() || static_cast<int>(sc.size()) != ns)
            bad_field(src, p + ".scales", sc, "an array with one entry per config scale");
        for (std::size_t s = 0; s < sc.size(); ++s) {
            const std::string ps = p + ".scales[" + std::to_string(s) + "]";
            scale_entry e;
            e.factor = num(sc[s], "factor", src, ps);
            e.width = int32(sc[s], "width", src, ps);
            e.height = int32(sc[s], "height", src, ps);
            e.stride = int32(sc[s], "stride", src, ps);
            e.valid_ids = ids(sc[s], "valid_ids", src, ps);
            e.uncoverable_ids = ids(sc[s], "uncoverable_ids", src, ps);
            im.scales.push_back(std::move(e));
        }
        const auto& ch = field(ji, "chips", src, p);
        if (!ch.is_array()) bad_field(src, p + ".chips", ch, "an array");
        for (std::size_t k = 0; k < ch.size(); ++k) {
            const std::string pc = p + ".chips[" + std::to_string(k) + "]";
            chip_entry c;
            c.scale = int32(ch[k], "scale", src, pc);
            if (c.scale < 0 || c.scale >= ns)
                bad_field(src, pc + ".scale", ch[k]["scale"],
                          "a scale index below " + std::to_string(ns));
            const auto kind = str(ch[k], "kind", src, pc);
            if (kind != "positive" && kind != "negative")
                bad_field(src, pc + ".kind", ch[k]["kind"], "\"positive\" or \"negative\"");
            c.negative = kind == "negative";
            c.box = box4<double>(ch[k], "box", src, pc);
            c.rect = box4<int>(ch[k], "rect", src, pc);
            if (c.negative) {
                c.proposals = int32(ch[k], "proposals", src, pc);
                if (c.proposals < 0)
                    bad_field(src, pc + ".proposals", ch[k]["proposals"], "a count >= 0");
                const auto& sv = field(ch[k], "sampled", src, pc);
                if (!sv.is_boolean()) bad_field(src, pc + ".sampled", sv, "true or false");
                c.sampled = sv.get<bool>();
                if (!v1) {  // snip-chips/1 negatives carry neither list (see the top)
                    c.proposal_ids = ids(ch[k], "proposal_ids", src, pc);
                    if (c.proposal_ids.size() != static_cast<std::size_t>(c.proposals))
                        bad_field(src, pc + ".proposal_ids", ch[k]["proposal_ids"],
                                  std::to_string(c.proposals) + " proposal indices (\"proposals\")");
                    for (std::size_t q = 0; q < c.proposal_ids.size(); ++q)
                        if (c.proposal_ids[q] < 0)
                            bad_field(src, pc + ".proposal_ids[" + std::to_string(q) + "]",
                                      ch[k]["proposal_ids"][q], "an index >= 0");
                    c.ann_ids = ids(ch[k], "ann_ids", src, pc);
                }
            } else {
                c.ann_ids = ids(ch[k], "ann_ids", src, pc);
            }
            im.chips.push_back(std::move(c));
        }
        f.images.push_back(std::move(im));
    }
    return f;
}

/// @brief Reads a chips JSON file. Checks its form (every field, type and range) but not
/// its content against the annotations: use read_chips(path, ds) or validate_chips for that.
inline chips_file read_chips(const std::string& path) {
    return chips_from_json(read_json_file(path), path);
}

/// Relative tolerance of validate_chips on a scale's factor and on a chip's box against
/// rect / factor (|a - b| <= tol * max(1, |b|)): far below a pixel, above the rounding of
/// a value written with 7 or more significant digits. What snip writes reads back exactly.
inline constexpr double chips_value_tolerance = 1e-6;

namespace detail {

template <class T>
std::string show_box(const snip::box<T>& b) {
    return concat("[", b.x1, ", ", b.y1, ", ", b.x2, ", ", b.y2, "]");
}

inline bool near_value(double a, double b) {
    return std::fabs(a - b) <= chips_value_tolerance * std::max(1.0, std::fabs(b));
}

} // namespace detail

/// @brief Checks a chips file against the annotations it was planned from and against
/// its own config, so that a report or picture of it counts what the planner planned.
/// Every file `snip-chips plan` (make_chips_file of plan_dataset) writes passes; for
/// anything else the snip::error names `src`, the image (index, id, file name), the
/// scale or chip index, the field and its value. Checked:
///  - the config is valid and `epoch` >= 0;
///  - images: no id listed twice; each id is an image of `ds` with the same width and
///    height (and the same file name when the chips file gives one);
///  - scales: one per config scale; factor (within chips_value_tolerance) and scaled
///    width and height as scale_image gives them for the image's size; stride that of
///    epoch_stride(config, seed, epoch); valid_ids annotations of this image, not crowd,
///    none twice; uncoverable_ids among the scale's valid_ids, none twice;
///  - chips: scale index below the number of config scales; rect inside the scaled image;
///    rect of the size the layout gives (aligned: min(chip_size, side) per side; sniper:
///    that or one pixel more, the original's corner and edge chips); rect one of the
///    layout's candidate chips at the file's stride (chip_grid); box = rect / factor
///    (within chips_value_tolerance); no chip of the same kind, scale and rect twice in
///    an image; ann_ids annotations of this image, none twice in a chip; a positive
///    chip's ann_ids valid at its scale, not uncoverable there and in no other positive
///    chip of that scale (each valid box is assigned to at most one chip, so coverage
///    cannot pass 100%); a negative chip's proposal_ids none twice; at most
///    negatives_per_image negative chips of an image marked sampled.
/// Not checked: proposal_ids against the proposals file (not read here), and that every
/// valid box is covered or uncoverable (a file with chips left out reads as less coverage).
inline void validate_chips(const chips_file& f, const dataset& ds, const std::string& src) {
    using detail::show_box;
    const plan_config& cfg = f.config;
    cfg.validate(src + ": config");
    require(f.epoch >= 0, src, ": epoch is ", f.epoch, ", expected >= 0");
    const int stride = epoch_stride(cfg, f.seed, f.epoch);
    const std::string anns = ds.source.empty() ? std::string("the annotations") : ds.source;
    const std::size_t ns = cfg.scales.size();
    const int e = cfg.convention == pixel_convention::inclusive ? 1 : 0;
    const bool sniper = cfg.layout == chip_layout::sniper;
    const int c = cfg.chip_size;

    // The annotations by id: image index, and (image, box) of every annotation id.
    std::unordered_map<std::int64_t, std::size_t> image_of;
    std::unordered_map<std::int64_t, std::pair<std::size_t, std::size_t>> ann_of;
    image_of.reserve(ds.images.size());
    ann_of.reserve(ds.num_boxes());
    for (std::size_t i = 0; i < ds.images.size(); ++i) {
        image_of.emplace(ds.images[i].id, i);
        for (std::size_t b = 0; b < ds.images[i].ann_ids.size(); ++b)
            ann_of.emplace(ds.images[i].ann_ids[b], std::pair{i, b});
    }

    std::unordered_map<std::int64_t, std::size_t> seen_images;
    seen_images.reserve(f.images.size());
    chip_grid_cache grids;
    // Per scale of the current image: annotation id -> its state there.
    struct id_state {
        std::size_t valid_at = 0;  ///< index in valid_ids
        bool uncoverable = false;
        long long chip = -1;       ///< the positive chip that lists it
    };
    std::vector<std::unordered_map<std::int64_t, id_state>> at_scale(ns);
    std::map<std::tuple<bool, int, int, int, int, int>, std::size_t> chip_seen;
    std::unordered_map<std::int64_t, std::size_t> in_chip;

    for (std::size_t i = 0; i < f.images.size(); ++i) {
        const image_chips& im = f.images[i];
        auto where = [&] {
            return concat(src, ": images[", i, "] (id ", im.id, ", '", im.file_name, "')");
        };
        if (auto [it, fresh] = seen_images.emplace(im.id, i); !fresh)
            fail(where(), ": id ", im.id, " is listed twice (also images[", it->second, "])");
        const auto rit = image_of.find(im.id);
        if (rit == image_of.end())
            fail(where(), ": id is ", im.id, ": ", anns, " has no image with this id (were the "
                 "chips planned from another annotation file?)");
        const image_record& rec = ds.images[rit->second];
        if (im.width != rec.width || im.height != rec.height)
            fail(where(), ": width x height is ", im.width, "x", im.height, " but ", anns,
                 " has ", rec.width, "x", rec.height, " for image ", im.id,
                 " (were the chips planned from another annotation file?)");
        if (!im.file_name.empty() && im.file_name != rec.file_name)
            fail(where(), ": file_name is '", im.file_name, "' but ", anns, " names image ",
                 im.id, " '", rec.file_name, "'");
        if (im.scales.size() != ns)
            fail(where(), ": has ", im.scales.size(), " scales but the config has ", ns);

        // An annotation id listed in field() must be one of this image's: its box index.
        // (Field names are built only for a message: a COCO-sized file has millions of ids.)
        auto box_of = [&](std::int64_t id, auto field) -> std::size_t {
            const auto a = ann_of.find(id);
            if (a != ann_of.end() && a->second.first == rit->second) return a->second.second;
            for (std::size_t b = 0; b < rec.ann_ids.size(); ++b)  // ids repeated across images
                if (rec.ann_ids[b] == id) return b;
            if (a == ann_of.end())
                fail(where(), ": ", field(), " is ", id, ": ", anns, " has no annotation with this id");
            const image_record& other = ds.images[a->second.first];
            fail(where(), ": ", field(), " is ", id, ": annotation ", id, " belongs to image ",
                 other.id, " ('", other.file_name, "') in ", anns, ", not to this image");
        };

        std::vector<scaled_image> sizes(ns);
        for (std::size_t s = 0; s < ns; ++s) {
            const scale_entry& se = im.scales[s];
            auto ps = [s] { return concat("scales[", s, "]"); };
            try {
                sizes[s] = scale_image(cfg.scales[s], im.width, im.height);
            } catch (const error& err) {
                fail(where(), ": ", ps(), ": ", err.what());
            }
            const scaled_image& want = sizes[s];
            if (!detail::near_value(se.factor, want.factor))
                fail(where(), ": ", ps(), ".factor is ", se.factor, " but config scale ", s, " (",
                     cfg.scales[s].to_string(), ") gives ", want.factor, " for this ", im.width,
                     "x", im.height, " image");
            if (se.width != want.width || se.height != want.height)
                fail(where(), ": ", ps(), " width x height is ", se.width, "x", se.height,
                     " but config scale ", s, " (", cfg.scales[s].to_string(), ") sizes this ",
                     im.width, "x", im.height, " image to ", want.width, "x", want.height);
            if (se.stride != stride)
                fail(where(), ": ", ps(), ".stride is ", se.stride, " but the config's stride for "
                     "seed ", f.seed, ", epoch ", f.epoch, " is ", stride);
            auto& st = at_scale[s];
            st.clear();
            for (std::size_t q = 0; q < se.valid_ids.size(); ++q) {
                const std::int64_t id = se.valid_ids[q];
                auto field = [&] { return concat(ps(), ".valid_ids[", q, "]"); };
                const std::size_t b = box_of(id, field);
                if (b < rec.crowd.size() && rec.crowd[b])
                    fail(where(), ": ", field(), " is ", id, ": a crowd annotation in ", anns,
                         ", never valid");
                if (auto [it, fresh] = st.emplace(id, id_state{q, false, -1}); !fresh)
                    fail(where(), ": ", field(), " is ", id, ", listed twice (also valid_ids[",
                         it->second.valid_at, "])");
            }
            for (std::size_t q = 0; q < se.uncoverable_ids.size(); ++q) {
                const std::int64_t id = se.uncoverable_ids[q];
                const auto it = st.find(id);
                if (it == st.end())
                    fail(where(), ": ", ps(), ".uncoverable_ids[", q, "] is ", id,
                         ": not among the scale's valid_ids");
                if (it->second.uncoverable)
                    fail(where(), ": ", ps(), ".uncoverable_ids[", q, "] is ", id, ", listed twice");
                it->second.uncoverable = true;
            }
        }

        chip_seen.clear();
        std::size_t sampled = 0;
        for (std::size_t k = 0; k < im.chips.size(); ++k) {
            const chip_entry& ch = im.chips[k];
            auto pc = [k] { return concat("chips[", k, "]"); };
            if (ch.scale < 0 || static_cast<std::size_t>(ch.scale) >= ns)
                fail(where(), ": ", pc(), ".scale is ", ch.scale, ", expected a scale index below ",
                     ns);
            const auto s = static_cast<std::size_t>(ch.scale);
            const scaled_image& sz = sizes[s];
            const box<int>& r = ch.rect;
            // Inside the scaled image: the sniper layout's chips are inclusive pixel
            // indices whatever the convention (the last pixel is side - 1).
            const int hx = sniper ? sz.width - 1 : sz.width - e;
            const int hy = sniper ? sz.height - 1 : sz.height - e;
            if (r.x1 < 0 || r.y1 < 0 || r.x2 > hx || r.y2 > hy)
                fail(where(), ": ", pc(), ".rect is ", show_box(r), ": outside the ", sz.width,
                     "x", sz.height, " image of scale ", s, " (x in [0, ", hx, "], y in [0, ", hy,
                     "])");
            // Its size: aligned min(chip, side); sniper also one pixel more (corner and edge).
            const int ext = sniper ? 1 : e;
            const int lw = r.x2 - r.x1 + ext, lh = r.y2 - r.y1 + ext;
            auto size_ok = [&](int len, int side) {
                return len == std::min(c, side) || (sniper && len == std::min(c + 1, side));
            };
            if (!size_ok(lw, sz.width) || !size_ok(lh, sz.height)) {
                auto want = [&](int side) {
                    return sniper && std::min(c + 1, side) != std::min(c, side)
                               ? concat(std::min(c, side), " or ", std::min(c + 1, side))
                               : concat(std::min(c, side));
                };
                fail(where(), ": ", pc(), ".rect is ", show_box(r), ": ", lw, " x ", lh,
                     " px, but the config's chip_size ", c, " gives chips of ", want(sz.width),
                     " x ", want(sz.height), " px on the ", sz.width, "x", sz.height,
                     " image of scale ", s, " (", to_string(cfg.layout), " layout, ",
                     to_string(cfg.convention), " pixels)");
            }
            // (the planner refuses a scaled image with more candidates; so does the check,
            // rather than build an absurd grid)
            if (candidate_grid_bound(sz.width, c, stride) * candidate_grid_bound(sz.height, c, stride) >
                max_candidate_chips)
                fail(where(), ": ", pc(), ": scale ", s, " is ", sz.width, "x", sz.height,
                     " px, more than the planner's ", max_candidate_chips, " candidate chips of ", c,
                     " px at stride ", stride, ": no plan has chips there");
            const chip_grid& g = grids.get(cfg.layout, sz.width, sz.height, c, stride, cfg.convention);
            const auto col = std::lower_bound(g.cols.begin(), g.cols.end(), chip_grid::span1{r.x1, r.x2});
            const auto row = std::lower_bound(g.rows.begin(), g.rows.end(), chip_grid::span1{r.y1, r.y2});
            const bool on_grid =
                col != g.cols.end() && *col == chip_grid::span1{r.x1, r.x2} && row != g.rows.end() &&
                *row == chip_grid::span1{r.y1, r.y2} &&
                g.mask[static_cast<std::size_t>(row - g.rows.begin()) * g.cols.size() +
                       static_cast<std::size_t>(col - g.cols.begin())];
            if (!on_grid)
                fail(where(), ": ", pc(), ".rect is ", show_box(r), ": not a candidate chip of the ",
                     to_string(cfg.layout), " layout at stride ", stride, " on the ", sz.width, "x",
                     sz.height, " image of scale ", s, " (the planner places chips only there)");
            const box<double> want{r.x1 / sz.factor, r.y1 / sz.factor, r.x2 / sz.factor,
                                   r.y2 / sz.factor};
            const box<double>& b = ch.box;
            if (!detail::near_value(b.x1, want.x1) || !detail::near_value(b.y1, want.y1) ||
                !detail::near_value(b.x2, want.x2) || !detail::near_value(b.y2, want.y2))
                fail(where(), ": ", pc(), ".box is ", show_box(b), " but its rect ", show_box(r),
                     " / factor ", sz.factor, " of scale ", s, " is ", show_box(want),
                     " (original pixels)");
            if (auto [it, fresh] = chip_seen.emplace(
                    std::tuple{ch.negative, ch.scale, r.x1, r.y1, r.x2, r.y2}, k);
                !fresh)
                fail(where(), ": ", pc(), " (", ch.negative ? "negative" : "positive", ", scale ", s,
                     ", rect ", show_box(r), ") is listed twice (also chips[", it->second, "])");
            in_chip.clear();
            auto& st = at_scale[s];
            for (std::size_t q = 0; q < ch.ann_ids.size(); ++q) {
                const std::int64_t id = ch.ann_ids[q];
                auto field = [&] { return concat(pc(), ".ann_ids[", q, "]"); };
                box_of(id, field);
                if (auto [it, fresh] = in_chip.emplace(id, q); !fresh)
                    fail(where(), ": ", field(), " is ", id, ", listed twice in the chip (also ann_ids[",
                         it->second, "])");
                if (ch.negative) continue;
                const auto v = st.find(id);
                if (v == st.end())
                    fail(where(), ": ", field(), " is ", id, ": not among the valid_ids of scale ", s,
                         " (a positive chip holds only boxes valid at its scale)");
                if (v->second.uncoverable)
                    fail(where(), ": ", field(), " is ", id, ": listed as uncoverable at scale ", s,
                         " (scales[", s, "].uncoverable_ids), yet in a chip");
                if (v->second.chip >= 0)
                    fail(where(), ": ", field(), " is ", id, ": already in positive chip chips[",
                         v->second.chip, "] of scale ", s, " (a box is assigned to one chip)");
                v->second.chip = static_cast<long long>(k);
            }
            if (ch.negative) {
                in_chip.clear();
                for (std::size_t q = 0; q < ch.proposal_ids.size(); ++q)
                    if (auto [it, fresh] = in_chip.emplace(ch.proposal_ids[q], q); !fresh)
                        fail(where(), ": ", pc(), ".proposal_ids[", q, "] is ", ch.proposal_ids[q],
                             ", listed twice in the chip (also proposal_ids[", it->second, "])");
                sampled += ch.sampled;
            }
        }
        if (sampled > static_cast<std::size_t>(cfg.negatives_per_image))
            fail(where(), ": ", sampled, " of its negative chips are marked sampled, more than "
                 "the config's negatives_per_image ", cfg.negatives_per_image);
    }
}

/// @brief Reads a chips JSON file and validates it against `ds`, the annotations it was
/// planned from (validate_chips).
inline chips_file read_chips(const std::string& path, const dataset& ds) {
    chips_file f = read_chips(path);
    validate_chips(f, ds, path);
    return f;
}

/// @brief The annotation file a chips file names ("annotations"), as a path to open: as
/// written when that file exists (`snip-chips plan` writes the path it was given, relative
/// to the folder it ran in); else, for a relative path, that path from the chips file's
/// folder; else the file of that name in the chips file's folder. Throws snip::error
/// naming `chips_path` and every path tried when the file names none or none exists.
inline std::string chips_annotations_path(const chips_file& f, const std::string& chips_path) {
    namespace fs = std::filesystem;
    require(!f.annotations.empty(), chips_path,
            ": names no annotation file (\"annotations\" is missing or empty)");
    const fs::path named(f.annotations), dir = fs::path(chips_path).parent_path();
    std::vector<std::string> tried{f.annotations};
    if (named.is_relative()) tried.push_back((dir / named).string());
    if (named.has_filename()) tried.push_back((dir / named.filename()).string());
    std::string others;
    for (std::size_t k = 0; k < tried.size(); ++k) {
        std::error_code ec;
        if (fs::is_regular_file(tried[k], ec)) return tried[k];
        if (k > 0 && std::find(tried.begin(), tried.begin() + std::ptrdiff_t(k), tried[k]) ==
                         tried.begin() + std::ptrdiff_t(k))
            others += concat(others.empty() ? " (nor '" : "', '", tried[k]);
    }
    fail(chips_path, ": its annotation file '", f.annotations, "' does not exist",
         others.empty() ? std::string() : others + "')");
}

/// @brief Writes a chips JSON file atomically (temporary file, then rename), creating
/// the parent folder. `indent` < 0 writes compact JSON.
inline void write_chips(const chips_file& f, const std::string& path, int indent = -1) {
    const std::filesystem::path p(path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    write_atomically(path, to_json(f).dump(indent) + "\n");
}

} // namespace snip::io
