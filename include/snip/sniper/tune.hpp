// tune.hpp: choosing scales and valid ranges for a dataset from its boxes.
//
// A box of size s = sqrt(w * h) (original px) is *valid* at a scale when the plan's
// filter accepts it there, and *good* at a scale when it is valid there and its scaled
// size s * factor lies in the band the backbone handles well (default 32..150 px).
// tune() searches scale sets (1..4 factors on a log grid up to the largest allowed
// upscale, optionally a coarsest scale that fits the long side into one chip), derives
// each set's valid ranges from the band, and picks the cheapest set, in pixels of
// positive chips, whose good share is within a tolerance of the best found (or the
// best good share within a pixel budget), keeping every box valid at some scale.
#pragma once

#include <snip/sniper/dataset.hpp>
#include <snip/core/parallel.hpp>
#include <snip/core/random.hpp>
#include <snip/sniper/pixel_budget.hpp>
#include <snip/sniper/plan.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace snip {

/// @brief Object sizes the detector handles well, sqrt(w * h) in SCALED pixels.
struct size_band {
    double lo = 32.0;
    double hi = 150.0;
};

/// @brief What a configuration does to a dataset (or a sample of it).
struct config_metrics {
    std::size_t images = 0;
    std::size_t boxes = 0;  ///< non-crowd boxes with positive area
    std::size_t valid = 0;  ///< ... valid at one scale at least
    std::size_t good = 0;   ///< ... valid at a scale where their scaled size is in the band
    double chips = 0;       ///< positive chips, total
    double chip_pixels = 0; ///< area of positive chips as cut, total (scaled px)
    double padded_pixels = 0; ///< positive chips x chip_size^2: the network input, total
    double single_pixels = 0; ///< single-scale 800x1333 pixels, total
    std::vector<std::size_t> per_scale_valid;  ///< boxes valid at each scale

    double valid_share() const { return boxes ? double(valid) / double(boxes) : 1.0; }
    double good_share() const { return boxes ? double(good) / double(boxes) : 1.0; }
    double chips_per_image() const { return images ? chips / double(images) : 0.0; }
    double pixels_per_image() const { return images ? chip_pixels / double(images) : 0.0; }
    double padded_per_image() const { return images ? padded_pixels / double(images) : 0.0; }
    double ratio_to_single_scale() const { return single_pixels > 0 ? chip_pixels / single_pixels : 0.0; }
};

namespace detail {

/// Valid/good counts of one image under `cfg` (no planning).
inline void count_valid_good(const plan_config& cfg, const image_record& im, const size_band& band,
                             config_metrics& m) {
    std::vector<scaled_image> sizes = scale_pyramid(cfg.scales, im.width, im.height);
    m.per_scale_valid.resize(cfg.scales.size(), 0);
    // The stride plan_image uses by default (the draw of seed 0, epoch 0 when cfg draws).
    const int stride = epoch_stride(cfg, 0, 0);
    for (std::size_t b = 0; b < im.boxes.size(); ++b) {
        if (!im.crowd.empty() && im.crowd[b]) continue;
        const box<double> c = to_convention(im.boxes[b], im.width, im.height, cfg.convention);
        if (!(im.boxes[b].area() > 0)) continue;
        ++m.boxes;
        const box_size sz = size_of(c, cfg.convention);
        bool valid = false, good = false;
        for (std::size_t s = 0; s < cfg.scales.size(); ++s) {
            if (!cfg.filter(s, sizes[s].factor, stride).accepts(sz)) continue;
            valid = true;
            ++m.per_scale_valid[s];
            const double scaled = sz.sqrt_area() * sizes[s].factor;
            good = good || (scaled >= band.lo && scaled <= band.hi);
        }
        m.valid += valid;
        m.good += good;
    }
}

} // namespace detail

/// @brief Measures a configuration on the images `subset` of `ds` (all when empty):
/// valid and good shares and the positive chips' pixels, planned with `threads`.
inline config_metrics evaluate_config(const plan_config& cfg, const dataset& ds, const size_band& band,
                                      const std::vector<std::size_t>& subset = {},
                                      unsigned threads = 0) {
    cfg.validate();
    require(band.lo > 0 && band.hi > band.lo, "evaluate_config: size band must satisfy 0 < lo < hi, got ",
            band.lo, "..", band.hi);
    for (std::size_t i = 0; i < subset.size(); ++i)
        require(subset[i] < ds.images.size(), "evaluate_config: subset[", i, "] is ", subset[i],
                " but the dataset has ", ds.images.size(), " images");
    const std::size_t n = subset.empty() ? ds.images.size() : subset.size();
    auto image = [&](std::size_t i) -> const image_record& {
        return ds.images[subset.empty() ? i : subset[i]];
    };
    const unsigned nt = resolve_threads(threads);
    std::vector<config_metrics> part(nt);
    std::vector<plan_workspace> ws(nt);
    detail::parallel_for(
        static_cast<std::ptrdiff_t>(n), 64,
        [&](unsigned worker, std::ptrdiff_t b0, std::ptrdiff_t b1) {
            auto& m = part[worker];
            auto& w = ws[worker];
            for (std::ptrdiff_t i = b0; i < b1; ++i) {
                const auto& im = image(static_cast<std::size_t>(i));
                detail::count_valid_good(cfg, im, band, m);
                const auto p = plan_image(cfg, im.width, im.height,
                                          box_view<const double>(as_box_view(im.boxes)), im.crowd, w);
                const auto px = count_pixels(cfg, im.width, im.height, p.positives);
                m.chips += double(p.positives.size());
                m.chip_pixels += px.chips;
                m.padded_pixels += px.chips_padded;
                m.single_pixels += px.single_scale;
                ++m.images;
            }
        },
        nt);
    config_metrics out;
    out.per_scale_valid.assign(cfg.scales.size(), 0);
    for (const auto& m : part) {
        out.images += m.images, out.boxes += m.boxes, out.valid += m.valid, out.good += m.good;
        out.chips += m.chips, out.chip_pixels += m.chip_pixels, out.single_pixels += m.single_pixels;
        out.padded_pixels += m.padded_pixels;
        for (std::size_t s = 0; s < m.per_scale_valid.size(); ++s) out.per_scale_valid[s] += m.per_scale_valid[s];
    }
    return out;
}

/// @brief What tune() minimises.
enum class tune_cost {
    padded,  ///< positive chips x chip_size^2: what a batch of fixed-size chips processes
    cut      ///< the area of positive chips as cut from their scaled images
};

/// @brief Median over images of how much of a chip the scaled image fills at scale
/// `s` (1 when the scaled image is at least a chip on both sides; else its area over
/// chip_size^2). Low values mean chips that are mostly padding.
inline double median_chip_fill(const scale_spec& s, const dataset& ds, int chip_size,
                               const std::vector<std::size_t>& subset = {}) {
    require(chip_size > 0, "median_chip_fill: chip size must be > 0, got ", chip_size);
    for (std::size_t i = 0; i < subset.size(); ++i)
        require(subset[i] < ds.images.size(), "median_chip_fill: subset[", i, "] is ", subset[i],
                " but the dataset has ", ds.images.size(), " images");
    std::vector<double> fill;
    const std::size_t n = subset.empty() ? ds.images.size() : subset.size();
    fill.reserve(n);
    const double c = chip_size;
    for (std::size_t i = 0; i < n; ++i) {
        const auto& im = ds.images[subset.empty() ? i : subset[i]];
        const auto sz = scale_image(s, im.width, im.height);
        fill.push_back(std::min(1.0, std::min<double>(sz.width, c) * std::min<double>(sz.height, c) / (c * c)));
    }
    if (fill.empty()) return 1.0;
    std::nth_element(fill.begin(), fill.begin() + long(fill.size() / 2), fill.end());
    return fill[fill.size() / 2];
}

/// @brief Checks a configuration against a dataset: scales no box is valid at, scales
/// whose chips would be mostly padding (median fill below `min_fill`), and boxes valid
/// at no scale (`box_counts` false leaves that one out, for callers that report the
/// plan's own image_plan::outside / valid_nowhere lists instead). Returns one message per
/// finding, each naming the values.
inline std::vector<std::string> dataset_warnings(const plan_config& cfg, const dataset& ds,
                                                 double min_fill = 0.5, bool box_counts = true) {
    cfg.validate("dataset_warnings: config");
    std::vector<std::string> out;
    config_metrics m;
    for (const auto& im : ds.images) detail::count_valid_good(cfg, im, size_band{}, m);
    for (std::size_t s = 0; s < cfg.scales.size(); ++s) {
        if (m.per_scale_valid.size() > s && m.per_scale_valid[s] == 0)
            out.push_back(concat("scale ", s, " (", cfg.scales[s].to_string(), ", valid range ",
                                         cfg.ranges[s].to_string(), "): no box of the dataset is valid there"));
        const double f = median_chip_fill(cfg.scales[s], ds, cfg.chip_size);
        if (f < min_fill)
            out.push_back(concat("scale ", s, " (", cfg.scales[s].to_string(), "): the median image fills ",
                                         std::round(f * 1000) / 10, "% of a ", cfg.chip_size, " px chip; its chips are mostly padding"));
    }
    if (box_counts && m.valid < m.boxes)
        out.push_back(concat(m.boxes - m.valid, " of ", m.boxes,
                                     " boxes are valid at no scale (outside every range, too long for the chip at "
                                     "their scale, or thinner than ", cfg.finest_min_side, " px at the finest)"));
    return out;
}

/// @brief Options of tune().
struct tune_options {
    tune_cost cost = tune_cost::padded;
    size_band band;              ///< good object sizes after scaling, px
    double max_upscale = 3.0;    ///< largest factor allowed
    double min_factor = 0.25;    ///< smallest factor on the grid
    int grid_points = 12;        ///< factors on a log grid from max_upscale down to min_factor
    bool long_side_scale = true; ///< also try a coarsest scale with the long side = chip size
    double min_chip_fill = 0.5;  ///< skip scales whose median image fills less of a chip
    int min_scales = 1, max_scales = 4;
    double overlap = 0.2;        ///< neighbouring ranges share at least this ratio (hi / lo - 1)
    double min_valid_share = 1.0;  ///< every box valid at some scale (the best reachable if none reaches it)
    double good_tolerance = 0.02;  ///< accept good share >= best * (1 - tolerance)
    std::optional<double> pixel_budget;  ///< max cost (pixels per image): maximise good share within it
    std::size_t sample_images = 1000;    ///< images used for the search (all when fewer)
    std::uint64_t seed = 0;
    int chip_size = 512, stride = 32;
    double finest_min_side = 1.0;  ///< SNIPER drops w or h < 2 px at the finest scale; tune keeps w, h >= 1
    unsigned threads = 0;
    std::function<void(std::size_t, std::size_t)> progress;  ///< (configurations done, total)

    void validate() const {
        require(band.lo > 0 && band.hi > band.lo, "tune: size band must satisfy 0 < lo < hi, got ", band.lo,
                "..", band.hi);
        require(std::isfinite(max_upscale) && max_upscale > 0, "tune: max upscale must be > 0, got ", max_upscale);
        require(min_factor > 0 && min_factor < max_upscale, "tune: min factor must be in (0, max upscale ",
                max_upscale, "), got ", min_factor);
        require(grid_points >= 2 && grid_points <= 40, "tune: grid points must be in 2..40, got ", grid_points);
        require(min_scales >= 1 && min_scales <= max_scales && max_scales <= 6,
                "tune: scales must satisfy 1 <= min <= max <= 6, got ", min_scales, "..", max_scales);
        require(overlap >= 0 && overlap < 10, "tune: overlap must be in [0, 10), got ", overlap);
        require(min_chip_fill >= 0 && min_chip_fill <= 1, "tune: min chip fill must be in [0, 1], got ",
                min_chip_fill);
        require(min_valid_share >= 0 && min_valid_share <= 1, "tune: min valid share must be in [0, 1], got ",
                min_valid_share);
        require(good_tolerance >= 0 && good_tolerance < 1, "tune: good tolerance must be in [0, 1), got ",
                good_tolerance);
        require(!pixel_budget || *pixel_budget > 0, "tune: pixel budget must be > 0, got ",
                pixel_budget.value_or(0));
        require(chip_size >= 16 && stride > 0 && stride < chip_size, "tune: chip size ", chip_size, " and stride ",
                stride, " do not fit");
    }
};

/// @brief The valid ranges of a scale set (finest first) under `opt.band`: each scale
/// takes the original sizes that land in the band, [lo / f, hi / f); the finest scale
/// is open below, the coarsest open above; neighbours that do not overlap by
/// `opt.overlap` are widened symmetrically (in log size) around their meeting point.
/// `typical_factor` gives the factor of a long-side scale (it depends on the image).
inline plan_config make_tuned_config(const std::vector<scale_spec>& scales,
                                     const std::vector<double>& typical_factor, const tune_options& opt) {
    plan_config c = plan_config::defaults();
    c.name = "tuned";
    c.scales = scales;
    c.chip_size = opt.chip_size;
    c.stride = opt.stride;
    c.finest_min_side = opt.finest_min_side;
    const std::size_t k = scales.size();
    c.ranges.resize(k);
    for (std::size_t i = 0; i < k; ++i)
        c.ranges[i] = {opt.band.lo / typical_factor[i], opt.band.hi / typical_factor[i]};
    c.ranges.front().lo = -1.0;
    c.ranges.back().hi = -1.0;
    const double need = 1.0 + opt.overlap;
    for (std::size_t i = 0; i + 1 < k; ++i) {
        double& hi = c.ranges[i].hi;
        double& lo = c.ranges[i + 1].lo;
        if (hi < lo * need) {
            const double m = std::sqrt(hi * lo);
            hi = m * std::sqrt(need);
            lo = m / std::sqrt(need);
        }
    }
    for (auto& r : c.ranges) {  // whole tenths of a pixel: readable presets
        if (r.lo >= 0) r.lo = std::floor(r.lo * 10.0) / 10.0;
        if (r.hi >= 0) r.hi = std::ceil(r.hi * 10.0) / 10.0;
    }
    return c;
}

/// @brief Widens valid ranges so that boxes valid at no scale become valid at one:
/// for each such box (non-crowd, positive area), the scale needing the smallest
/// widening (in log size) among those whose other rules (max side, min side) accept
/// it, keeping ranges ordered from finest to coarsest. Boxes no scale can take are
/// left (for example longer than any non-coarsest chip allows and smaller than the
/// coarsest range). Returns how many boxes were made valid.
inline std::size_t widen_ranges_for(plan_config& cfg, const dataset& ds) {
    cfg.validate("widen_ranges_for: config");
    std::size_t fixed = 0;
    const std::size_t k = cfg.scales.size();
    const int stride = epoch_stride(cfg, 0, 0);  // as plan_image's default
    for (const auto& im : ds.images) {
        const auto sizes = scale_pyramid(cfg.scales, im.width, im.height);
        for (std::size_t b = 0; b < im.boxes.size(); ++b) {
            if ((!im.crowd.empty() && im.crowd[b]) || !(im.boxes[b].area() > 0)) continue;
            const box_size sz = size_of(to_convention(im.boxes[b], im.width, im.height, cfg.convention),
                                        cfg.convention);
            bool valid = false;
            for (std::size_t s = 0; s < k && !valid; ++s)
                valid = cfg.filter(s, sizes[s].factor, stride).accepts(sz);
            if (valid) continue;
            const double v = sz.sqrt_area();
            if (!(v > 0)) continue;
            double best_cost = 0;
            long best = -1;
            valid_range best_range;
            for (std::size_t s = 0; s < k; ++s) {
                scale_filter f = cfg.filter(s, sizes[s].factor, stride);
                f.range = {};  // everything but the range
                if (!f.accepts(sz)) continue;
                valid_range r = cfg.ranges[s];
                if (r.has_lo() && v < r.lo) r.lo = std::floor(v * 10.0) / 10.0;
                if (r.has_hi() && v >= r.hi) r.hi = std::floor(v * 10.0) / 10.0 + 0.1;
                // keep the order: lower bounds and upper bounds grow with the scale index
                if (s > 0 && r.has_lo() && cfg.ranges[s - 1].has_lo() && r.lo < cfg.ranges[s - 1].lo) continue;
                if (s + 1 < k && r.has_hi() && cfg.ranges[s + 1].has_hi() && r.hi > cfg.ranges[s + 1].hi) continue;
                const double c = std::abs(std::log((r.has_lo() ? cfg.ranges[s].lo / std::max(r.lo, 1e-9) : 1.0))) +
                                 std::abs(std::log((r.has_hi() ? r.hi / cfg.ranges[s].hi : 1.0)));
                if (best < 0 || c < best_cost) best = long(s), best_cost = c, best_range = r;
            }
            if (best >= 0) {
                cfg.ranges[std::size_t(best)] = best_range;
                ++fixed;
            }
        }
    }
    return fixed;
}

/// @brief One evaluated configuration.
struct tune_candidate {
    plan_config cfg;
    config_metrics metrics;
};

/// @brief What tune() found.
struct tune_result {
    std::vector<tune_candidate> evaluated;  ///< every configuration tried, on the sample
    std::vector<tune_candidate> best_per_count;  ///< the choice restricted to k scales, k = min..max, all images
    tune_candidate chosen;                  ///< the proposal, all images
    std::optional<tune_candidate> reference;  ///< the reference configuration, all images
    double target_good = 0;                 ///< good share the choice had to reach (sample)
    double valid_floor = 1;                 ///< valid share the choice had to reach (sample)
    std::size_t sample_images = 0;
    std::string rule;                       ///< how the choice was made, in words
};

namespace detail {

inline double cost_of(const config_metrics& m, const tune_options& opt) {
    return opt.cost == tune_cost::padded ? m.padded_per_image() : m.pixels_per_image();
}

/// Picks from `c` (indices into `all`) by the rule of tune_options; -1 when empty.
inline long pick(const std::vector<tune_candidate>& all, const std::vector<std::size_t>& c,
                 const tune_options& opt, double& target_good, std::string& rule) {
    if (c.empty()) return -1;
    long best = -1;
    if (opt.pixel_budget) {
        for (std::size_t i : c) {
            const auto& m = all[i].metrics;
            if (cost_of(m, opt) > *opt.pixel_budget) continue;
            if (best < 0 || m.good > all[std::size_t(best)].metrics.good ||
                (m.good == all[std::size_t(best)].metrics.good &&
                 cost_of(m, opt) < cost_of(all[std::size_t(best)].metrics, opt)))
                best = long(i);
        }
        if (best >= 0) {
            target_good = all[std::size_t(best)].metrics.good_share();
            rule = concat("largest good share within ", *opt.pixel_budget / 1e6,
                                  " Mpx of positive chips per image");
            return best;
        }
        rule = concat("no configuration fits the budget of ", *opt.pixel_budget / 1e6,
                      " Mpx/image; the cheapest is chosen");
        for (std::size_t i : c)
            if (best < 0 || cost_of(all[i].metrics, opt) < cost_of(all[std::size_t(best)].metrics, opt))
                best = long(i);
        return best;
    }
    double top = 0;
    for (std::size_t i : c) top = std::max(top, all[i].metrics.good_share());
    target_good = top * (1.0 - opt.good_tolerance);
    for (std::size_t i : c) {
        const auto& m = all[i].metrics;
        if (m.good_share() + 1e-12 < target_good) continue;
        if (best < 0 || cost_of(m, opt) < cost_of(all[std::size_t(best)].metrics, opt)) best = long(i);
    }
    rule = concat("fewest ", opt.cost == tune_cost::padded ? "padded" : "as-cut",
                          " positive-chip pixels with good share >= ", target_good, " (best found ", top,
                  " minus ", opt.good_tolerance * 100, "%)");
    return best;
}

} // namespace detail

/// @brief Searches scale sets for `ds` (see the file comment). `reference`, when given,
/// is measured on all images with the same band for comparison.
inline tune_result tune(const dataset& ds, const tune_options& opt, const plan_config* reference = nullptr) {
    opt.validate();
    require(!ds.images.empty(), "tune: the dataset has no images");
    tune_result res;
    // The search sample: a seeded choice of images.
    std::vector<std::size_t> sample(ds.images.size());
    for (std::size_t i = 0; i < sample.size(); ++i) sample[i] = i;
    if (sample.size() > opt.sample_images) {
        splitmix64 g{mix(opt.seed, 0x54554e45ull)};
        for (std::size_t i = 0; i < opt.sample_images; ++i)
            std::swap(sample[i], sample[i + g.below(sample.size() - i)]);
        sample.resize(opt.sample_images);
        std::sort(sample.begin(), sample.end());
    }
    res.sample_images = sample.size();
    // Factor grid, finest first, and the long-side option's typical factor (median).
    std::vector<scale_spec> grid;
    std::vector<double> gf;
    for (int i = 0; i < opt.grid_points; ++i) {
        const double f = opt.max_upscale *
                         std::pow(opt.min_factor / opt.max_upscale, double(i) / double(opt.grid_points - 1));
        const double r = std::round(f * 1000.0) / 1000.0;
        grid.push_back(scale_spec::by_factor(r));
        gf.push_back(r);
    }
    // Scales whose chips would be mostly padding are not candidates.
    {
        std::vector<scale_spec> kept;
        std::vector<double> kf;
        for (std::size_t i = 0; i < grid.size(); ++i)
            if (median_chip_fill(grid[i], ds, opt.chip_size, sample) >= opt.min_chip_fill)
                kept.push_back(grid[i]), kf.push_back(gf[i]);
        grid.swap(kept);
        gf.swap(kf);
    }
    std::vector<double> longs;
    for (const auto& im : ds.images) longs.push_back(double(opt.chip_size) / std::max(im.width, im.height));
    std::nth_element(longs.begin(), longs.begin() + long(longs.size() / 2), longs.end());
    const double long_factor = longs[longs.size() / 2];
    // Every subset of the grid of size k (+ optionally the long-side scale as coarsest).
    std::vector<std::pair<std::vector<scale_spec>, std::vector<double>>> sets;
    const int G = static_cast<int>(grid.size());
    for (int k = opt.min_scales; k <= opt.max_scales; ++k) {
        for (int with_long = 0; with_long <= (opt.long_side_scale ? 1 : 0); ++with_long) {
            const int from_grid = k - with_long;
            if (from_grid < 0 || from_grid > G) continue;
            std::vector<int> idx(static_cast<std::size_t>(from_grid));
            for (int i = 0; i < from_grid; ++i) idx[std::size_t(i)] = i;
            for (;;) {
                std::vector<scale_spec> s;
                std::vector<double> f;
                for (int i : idx) s.push_back(grid[std::size_t(i)]), f.push_back(gf[std::size_t(i)]);
                bool ok = true;
                if (with_long) {
                    ok = f.empty() || f.back() > long_factor * 1.05;
                    s.push_back(scale_spec::by_long_side(opt.chip_size));
                    f.push_back(long_factor);
                }
                if (ok && !s.empty()) sets.emplace_back(std::move(s), std::move(f));
                // next combination
                int p = from_grid - 1;
                while (p >= 0 && idx[std::size_t(p)] == G - from_grid + p) --p;
                if (p < 0) break;
                ++idx[std::size_t(p)];
                for (int q = p + 1; q < from_grid; ++q) idx[std::size_t(q)] = idx[std::size_t(q - 1)] + 1;
            }
        }
    }
    // Measure every set on the sample.
    std::size_t done = 0;
    for (const auto& [s, f] : sets) {
        plan_config c = make_tuned_config(s, f, opt);
        try {
            c.validate();
        } catch (const error&) {
            ++done;
            continue;  // e.g. ranges that do not grow: not a usable set
        }
        res.evaluated.push_back({c, evaluate_config(c, ds, opt.band, sample, opt.threads)});
        if (opt.progress && (++done % 16 == 0 || done == sets.size())) opt.progress(done, sets.size());
    }
    require(!res.evaluated.empty(), "tune: no scale set could be evaluated");
    // Valid floor: the requested share, or the best reachable.
    double best_valid = 0;
    for (const auto& e : res.evaluated) best_valid = std::max(best_valid, e.metrics.valid_share());
    res.valid_floor = std::min(opt.min_valid_share, best_valid);
    std::vector<std::size_t> ok;
    for (std::size_t i = 0; i < res.evaluated.size(); ++i)
        if (res.evaluated[i].metrics.valid_share() + 1e-12 >= res.valid_floor) ok.push_back(i);
    const long chosen = detail::pick(res.evaluated, ok, opt, res.target_good, res.rule);
    auto finish = [&](tune_candidate c) {
        if (opt.min_valid_share >= 1.0) widen_ranges_for(c.cfg, ds);
        c.metrics = evaluate_config(c.cfg, ds, opt.band, {}, opt.threads);
        return c;
    };
    res.chosen = finish(res.evaluated[std::size_t(chosen)]);
    for (int k = opt.min_scales; k <= opt.max_scales; ++k) {
        std::vector<std::size_t> ck;
        for (std::size_t i : ok)
            if (int(res.evaluated[i].cfg.scales.size()) == k) ck.push_back(i);
        double t = 0;
        std::string r;
        const long b = detail::pick(res.evaluated, ck, opt, t, r);
        if (b < 0) continue;
        res.best_per_count.push_back(finish(res.evaluated[std::size_t(b)]));
    }
    if (reference) res.reference = tune_candidate{*reference, evaluate_config(*reference, ds, opt.band, {}, opt.threads)};
    return res;
}

} // namespace snip
