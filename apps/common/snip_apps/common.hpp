// common.hpp: what several snip-chips commands share: loading with a summary,
// plan options, and the progress line.
#pragma once

#include <snip_apps/cli.hpp>

#include <snip/sniper/dataset_plan.hpp>
#include <snip/io/chips_json.hpp>
#include <snip/io/coco.hpp>
#include <snip/sniper/tune.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <unistd.h>
#include <vector>

namespace snip::apps::cli {

/// @brief A progress line with rate and ETA: rewritten in place on a terminal,
/// one line every few seconds otherwise (logs, CI).
class progress_line {
public:
    explicit progress_line(std::string what, std::string unit = "images")
        : what_(std::move(what)), unit_(std::move(unit)), t0_(clock::now()) {}
    void operator()(std::size_t done, std::size_t total) {
        const double s = std::chrono::duration<double>(clock::now() - t0_).count();
        const bool tty = isatty(fileno(stderr));
        if (!tty && done < total && s - last_ < 5.0) return;
        last_ = s;
        const double rate = s > 0 ? done / s : 0.0;
        const double eta = rate > 0 ? (total - done) / rate : 0.0;
        std::fprintf(stderr, "%s%s: %zu/%zu %s (%3.0f%%), %.0f %s/s, ETA %.1f s%s", tty ? "\r" : "",
                     what_.c_str(), done, total, unit_.c_str(), total ? 100.0 * done / total : 100.0, rate,
                     unit_.c_str(), eta, tty && done < total ? "" : "\n");
        std::fflush(stderr);
    }

private:
    using clock = std::chrono::steady_clock;
    std::string what_, unit_;
    clock::time_point t0_;
    double last_ = -1e9;
};

/// @brief Reads a COCO file and prints what was loaded, with any warnings.
inline snip::dataset load_annotations(const std::string& path, bool quiet = false) {
    snip::io::load_report rep;
    snip::dataset ds = snip::io::read_coco(path, &rep);
    if (!quiet) {
        std::fprintf(stderr, "loaded %s: %zu images, %zu boxes (%zu crowd, %zu zero-size, %zu clipped by <= 1 px)\n",
                     path.c_str(), rep.images, rep.boxes, rep.crowd, rep.degenerate, rep.clipped);
        for (const auto& w : rep.warnings) std::fprintf(stderr, "  warning: %s\n", w.c_str());
    }
    return ds;
}

/// The flags every planning command accepts.
inline const std::vector<std::string> plan_flags = {
    "--annotations", "--proposals", "--preset",  "--config",   "--scales", "--ranges",
    "--chip-size",   "--stride",    "--stride-draw", "--negatives", "--seed", "--epoch",
    "--threads"};

inline const char* plan_flags_help =
    "  --annotations FILE  COCO instances JSON (required)\n"
    "  --proposals FILE    proposals in COCO results format ([{image_id, bbox, score}]):\n"
    "                      enables negative chip mining\n"
    "  --preset NAME       default | sniper_coco (default: default)\n"
    "  --config FILE       a JSON config (the \"config\" object of a chips file)\n"
    "  --scales LIST       ';'-separated scales, finest first: 3;1.667;512px or\n"
    "                      (1400,2000);(800,1280);(-1,512)\n"
    "  --ranges LIST       ';'-separated valid ranges in original px, e.g.\n"
    "                      -1,80;32,150;120,-1 (lower bound inclusive, upper exclusive)\n"
    "  --chip-size PX      chip side in scaled pixels (512)\n"
    "  --stride PX         fixed candidate grid stride in scaled pixels (default preset: 32;\n"
    "                      sniper_coco draws 56..59 per epoch, as the released SNIPER code)\n"
    "  --stride-draw A:B   draw the stride per epoch from A..B with the seed (released SNIPER: 56:59)\n"
    "  --negatives N       negative chips sampled per image per epoch (2)\n"
    "  --seed S            seed of the per-epoch draws (0)\n"
    "  --epoch E           epoch number (0)\n"
    "  --threads T         planning threads (default: all cores)\n";

/// @brief The plan_config the flags describe: preset or config file, then overrides.
inline snip::plan_config config_from_args(const args& a) {
    snip::plan_config c;
    if (auto f = a.get("--config")) {
        c = snip::io::config_from_json(snip::io::read_json_file(*f), *f);
    } else {
        c = snip::plan_config::preset(a.get_or("--preset", "default"));
    }
    if (auto s = a.get("--scales")) {
        c.scales.clear();
        for (const auto& t : split(*s, ';')) c.scales.push_back(snip::scale_spec::parse(t, "--scales"));
    }
    if (auto r = a.get("--ranges")) {
        c.ranges.clear();
        for (const auto& t : split(*r, ';')) c.ranges.push_back(snip::valid_range::parse(t, "--ranges"));
    }
    c.chip_size = static_cast<int>(a.integer("--chip-size", c.chip_size));
    c.stride = static_cast<int>(a.integer("--stride", c.stride));
    // A fixed --stride replaces a preset's draw (sniper_coco draws 56..59) unless
    // --stride-draw is given too.
    if (a.has("--stride")) c.stride_min = c.stride_max = 0;
    c.negatives_per_image = static_cast<int>(a.integer("--negatives", c.negatives_per_image));
    if (auto d = a.get("--stride-draw")) {
        auto p = split(*d, ':');
        try {
            if (p.size() != 2) throw std::invalid_argument("form");
            c.stride_min = std::stoi(p[0]);
            c.stride_max = std::stoi(p[1]);
        } catch (const std::exception&) {
            snip::fail("--stride-draw: expected A:B such as 56:59, got '", *d, "'");
        }
    }
    if (a.has("--scales") || a.has("--ranges") || a.has("--chip-size") || a.has("--stride") ||
        a.has("--stride-draw"))
        c.name = c.name + "+custom";
    c.validate("options");
    return c;
}

/// @brief Warns about the boxes a plan cannot train: those entirely outside their image
/// and those valid at no scale (image_plan::outside, image_plan::valid_nowhere), with
/// the count and the first few (image id, annotation id).
inline void warn_lost_boxes(const std::string& ann, const snip::dataset& ds,
                            const std::vector<snip::image_chips_plan>& plans) {
    std::size_t boxes = 0;
    for (const auto& im : ds.images)
        for (std::size_t b = 0; b < im.boxes.size(); ++b) boxes += im.crowd.empty() || !im.crowd[b];
    auto report = [&](auto member, const char* what) {
        std::size_t n = 0;
        std::string examples;
        for (std::size_t i = 0; i < plans.size(); ++i)
            for (int b : plans[i].plan.*member) {
                if (n++ < 5)
                    examples += snip::concat(n > 1 ? ", " : "", "image ", ds.images[i].id,
                                                     " annotation ",
                                                     ds.images[i].ann_ids[static_cast<std::size_t>(b)]);
            }
        if (n > 0)
            std::fprintf(stderr, "warning: %s: %zu of %zu boxes %s (%s%s)\n", ann.c_str(), n, boxes,
                         what, examples.c_str(), n > 5 ? ", ..." : "");
    };
    report(&snip::image_plan::outside, "lie entirely outside their image and are never trained");
    report(&snip::image_plan::valid_nowhere,
           "are valid at no scale (outside every range, too long for the chip at their scale, or "
           "too thin for the finest) and are never trained");
}

/// @brief One planned epoch and what it was planned from.
struct planned {
    snip::dataset ds;
    snip::plan_config cfg;
    snip::io::chips_file file;
};

/// @brief Loads the annotations (and proposals) the flags name and plans one epoch.
inline planned plan_from_args(const args& a, const snip::plan_config& cfg, bool quiet = false) {
    planned p;
    p.cfg = cfg;
    const std::string ann = a.required("--annotations");
    p.ds = load_annotations(ann, quiet);
    std::vector<snip::image_proposals> props;
    const std::string prop_path = a.get_or("--proposals", "");
    if (!prop_path.empty()) props = snip::io::read_proposals(prop_path, p.ds);
    snip::dataset_plan_options o;
    o.seed = static_cast<std::uint64_t>(a.integer("--seed", 0));
    o.epoch = static_cast<int>(a.integer("--epoch", 0));
    const long long th = a.integer("--threads", 0);
    if (th < 0) snip::fail("--threads must be >= 0, got ", th);
    o.threads = static_cast<unsigned>(th);
    progress_line bar("plan " + cfg.name);
    if (!quiet) o.progress = [&](std::size_t d, std::size_t t) { bar(d, t); };
    if (!quiet)  // boxes valid nowhere come from the plan itself, below
        for (const auto& w : snip::dataset_warnings(cfg, p.ds, 0.5, false))
            std::fprintf(stderr, "warning: %s: %s\n", ann.c_str(), w.c_str());
    auto plans = snip::plan_dataset(cfg, p.ds, prop_path.empty() ? nullptr : &props, o);
    if (!quiet) warn_lost_boxes(ann, p.ds, plans);
    p.file = snip::io::make_chips_file(p.ds, plans, cfg, o.seed, o.epoch, ann, prop_path);
    return p;
}

} // namespace snip::apps::cli
