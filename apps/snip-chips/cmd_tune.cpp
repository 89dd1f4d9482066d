// snip-chips tune: derive scales and valid ranges from a dataset.
#include <snip_apps/common.hpp>
#include <snip_apps/draw.hpp>
#include <snip_apps/plot.hpp>

#include <snip/sniper/tune.hpp>

#include <cstdio>
#include <filesystem>

namespace {

using namespace snip::apps;

std::string scales_text(const snip::plan_config& c) {
    std::string s;
    for (std::size_t i = 0; i < c.scales.size(); ++i) {
        if (i) s += ", ";
        s += c.scales[i].to_string();
    }
    return s;
}

std::string ranges_text(const snip::plan_config& c) {
    std::string s;
    for (std::size_t i = 0; i < c.ranges.size(); ++i) {
        if (i) s += " ";
        s += c.ranges[i].to_string();
    }
    return s;
}

void row(const char* tag, const snip::tune_candidate& c) {
    const auto& m = c.metrics;
    std::printf("| %-10s | %zu | %-24s | %-34s | %6.2f%% | %6.2f%% | %5.2f | %6.3f | %6.3f | %5.3f |\n", tag,
                c.cfg.scales.size(), scales_text(c.cfg).c_str(), ranges_text(c.cfg).c_str(), 100 * m.valid_share(),
                100 * m.good_share(), m.chips_per_image(), m.padded_per_image() / 1e6, m.pixels_per_image() / 1e6,
                m.ratio_to_single_scale());
}

int run_tune(const std::vector<std::string>& argv) {
    cli::args a("tune", argv,
                {"--annotations", "--band", "--max-upscale", "--min-factor", "--scales", "--overlap", "--budget",
                 "--cost", "--sample", "--seed", "--min-fill", "--tolerance", "--chip-size", "--stride", "--out",
                 "--png", "--threads", "--reference"},
                {"--json"});
    snip::tune_options o;
    if (auto b = a.get("--band")) {
        const auto r = snip::valid_range::parse(*b, "--band");
        snip::require(r.has_lo() && r.has_hi() && r.lo > 0, "--band: expected lo,hi in scaled px such as 32,150, got '",
                      *b, "'");
        o.band = {r.lo, r.hi};
    }
    o.max_upscale = a.number("--max-upscale", o.max_upscale);
    o.min_factor = a.number("--min-factor", o.min_factor);
    if (auto s = a.get("--scales"); s && *s != "auto") {
        const long long k = a.integer("--scales", 0);
        snip::require(k >= 1 && k <= 6, "--scales: expected 1..6 or auto, got ", *s);
        o.min_scales = o.max_scales = static_cast<int>(k);
    }
    o.overlap = a.number("--overlap", o.overlap);
    if (a.has("--budget")) o.pixel_budget = a.number("--budget", 0) * 1e6;
    if (auto c = a.get("--cost")) {
        if (*c == "padded") o.cost = snip::tune_cost::padded;
        else if (*c == "cut") o.cost = snip::tune_cost::cut;
        else snip::fail("--cost: expected padded or cut, got '", *c, "'");
    }
    const long long sample = a.integer("--sample", static_cast<long long>(o.sample_images));
    snip::require(sample > 0, "--sample must be > 0, got ", sample);
    o.sample_images = static_cast<std::size_t>(sample);
    o.seed = static_cast<std::uint64_t>(a.integer("--seed", 0));
    o.min_chip_fill = a.number("--min-fill", o.min_chip_fill);
    o.good_tolerance = a.number("--tolerance", o.good_tolerance);
    o.chip_size = static_cast<int>(a.integer("--chip-size", o.chip_size));
    o.stride = static_cast<int>(a.integer("--stride", o.stride));
    o.threads = static_cast<unsigned>(a.integer("--threads", 0));
    o.validate();
    const bool json = a.has("--json");
    const std::string ann = a.required("--annotations");
    const auto ds = cli::load_annotations(ann, json);
    const auto reference = snip::plan_config::preset(a.get_or("--reference", "sniper_coco"));
    cli::progress_line bar("tune", "scale sets");
    if (!json) o.progress = [&](std::size_t d, std::size_t t) { bar(d, t); };
    const auto r = snip::tune(ds, o, &reference);
    const std::string out = a.get_or("--out", "tuned_preset.json");
    const std::string png = a.get_or("--png", "tune.png");
    {
        const std::filesystem::path p(out);
        if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
        snip::io::write_atomically(out, snip::io::config_to_json(r.chosen.cfg).dump(2) + "\n");
    }
    // The trade-off plot: every scale set measured, best per count, the choice, the reference.
    {
        plot::chart c;
        c.title = "scale sets for " + std::filesystem::path(ann).filename().string() + " (band " +
                  snip::concat(o.band.lo, "..", o.band.hi) + " px)";
        c.xlabel = o.cost == snip::tune_cost::padded ? "padded positive-chip Mpx per image"
                                                      : "positive-chip Mpx per image (as cut)";
        c.ylabel = "share of boxes at a good scale";
        const draw::rgb colours[6] = {{230, 60, 50}, {40, 160, 60}, {40, 90, 220}, {240, 150, 30}, {150, 60, 170},
                                      {40, 170, 170}};
        auto cost = [&](const snip::config_metrics& m) {
            return (o.cost == snip::tune_cost::padded ? m.padded_per_image() : m.pixels_per_image()) / 1e6;
        };
        for (int k = o.min_scales; k <= o.max_scales; ++k) {
            plot::series s;
            s.label = std::to_string(k) + (k == 1 ? " scale" : " scales") + " (sample)";
            s.color = colours[(k - 1) % 6];
            s.size = 2;
            for (const auto& e : r.evaluated)
                if (int(e.cfg.scales.size()) == k) s.x.push_back(cost(e.metrics)), s.y.push_back(e.metrics.good_share());
            if (!s.x.empty()) c.data.push_back(s);
        }
        plot::series chosen{"chosen: " + scales_text(r.chosen.cfg), {cost(r.chosen.metrics)},
                            {r.chosen.metrics.good_share()}, {0, 0, 0}, plot::series::points, 9, '*'};
        c.data.push_back(chosen);
        if (r.reference)
            c.data.push_back(plot::series{"SNIPER COCO: " + scales_text(r.reference->cfg),
                                          {cost(r.reference->metrics)},
                                          {r.reference->metrics.good_share()},
                                          {0, 0, 0},
                                          plot::series::points,
                                          8,
                                          'x'});
        draw::write_png(plot::render(c, 900, 560), png);
    }
    if (json) {
        nlohmann::json j = snip::io::tune_result_to_json(r);
        j["annotations"] = ann;
        j["png"] = png;
        j["preset_file"] = out;
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("\nsearch: %zu scale sets measured on %zu images; band %g..%g px after scaling, upscale <= %g, "
                "chips at least %.0f%% image\nrule: %s\n\n",
                r.evaluated.size(), r.sample_images, o.band.lo, o.band.hi, o.max_upscale, 100 * o.min_chip_fill,
                r.rule.c_str());
    std::printf("| config | scales | factors | valid ranges (original px) | valid | good | chips/img | padded Mpx/img "
                "| cut Mpx/img | cut / single scale |\n|---|---:|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& c : r.best_per_count) row(c.cfg.scales.size() == r.chosen.cfg.scales.size() ? "best k *" : "best k", c);
    if (r.reference) row("SNIPER", *r.reference);
    std::printf("\nproposed preset (all %zu images): %s, valid ranges %s\n", ds.images.size(),
                scales_text(r.chosen.cfg).c_str(), ranges_text(r.chosen.cfg).c_str());
    std::printf("  every box valid at some scale: %.2f%% of %zu boxes; at a good scale: %.2f%%\n",
                100 * r.chosen.metrics.valid_share(), r.chosen.metrics.boxes, 100 * r.chosen.metrics.good_share());
    std::printf("  positive chips: %.2f per image, %.3f Mpx padded (%.3f as cut) = %.3fx single-scale 800x1333\n",
                r.chosen.metrics.chips_per_image(), r.chosen.metrics.padded_per_image() / 1e6,
                r.chosen.metrics.pixels_per_image() / 1e6, r.chosen.metrics.ratio_to_single_scale());
    if (r.reference)
        std::printf("  SNIPER's COCO preset on the same data: %.2f%% valid, %.2f%% good, %.3f Mpx padded per image\n",
                    100 * r.reference->metrics.valid_share(), 100 * r.reference->metrics.good_share(),
                    r.reference->metrics.padded_per_image() / 1e6);
    for (const auto& w : snip::dataset_warnings(r.chosen.cfg, ds, o.min_chip_fill))
        std::printf("  warning: %s\n", w.c_str());
    std::printf("\n%s\nwrote the preset to %s (use: snip-chips plan --config %s ...) and the trade-off plot to %s\n",
                snip::io::config_to_json(r.chosen.cfg).dump(2).c_str(), out.c_str(), out.c_str(), png.c_str());
    return 0;
}

const char* usage =
    "snip-chips tune: choose scales and valid ranges for a dataset\n\n"
    "usage: snip-chips tune --annotations FILE [options]\n\n"
    "  --band LO,HI        object sizes the detector handles well, sqrt(w*h) after scaling (32,150)\n"
    "  --max-upscale F     largest resize factor allowed (3)\n"
    "  --min-factor F      smallest factor tried (0.25)\n"
    "  --scales K|auto     number of scales (auto: 1..4)\n"
    "  --overlap R         neighbouring ranges overlap by at least this ratio (0.2)\n"
    "  --budget MPX        pixel budget per image: the best good share within it\n"
    "  --cost padded|cut   pixels counted: chips x chip size^2 (padded, default) or chip area as cut\n"
    "  --tolerance T       accept good share >= best found x (1 - T) (0.02)\n"
    "  --min-fill F        skip scales whose median image fills less than F of a chip (0.5)\n"
    "  --chip-size PX, --stride PX   chip geometry (512, 32)\n"
    "  --sample N          images used for the search (1000; the proposal is measured on all)\n"
    "  --seed S            seed of the sample (0)\n"
    "  --reference NAME    preset measured for comparison (sniper_coco)\n"
    "  --out FILE          where to write the proposed preset (tuned_preset.json)\n"
    "  --png FILE          the trade-off plot (tune.png)\n"
    "  --threads T         threads (all cores)\n"
    "  --json              print the result as JSON\n\n"
    "A box is valid at a scale when the plan's filter accepts it there; it is at a good scale when\n"
    "its size after scaling lies in the band. Every subset of 1..4 factors on a log grid (plus a\n"
    "coarsest scale whose long side is one chip) gets ranges from the band, widened where\n"
    "neighbours overlap too little; the cheapest set whose good share is within the tolerance of\n"
    "the best is proposed, with ranges widened so that every box is valid at some scale.";

} // namespace

SNIP_COMMAND("tune", "propose scales and valid ranges for a dataset (preset JSON + trade-off PNG)", usage, run_tune);
