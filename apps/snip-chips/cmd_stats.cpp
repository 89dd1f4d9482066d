// cmd_stats.cpp: `snip-chips stats`, what a dataset looks like to a scale config: box
// sizes, aspect ratios, boxes per image, image sizes, and per scale which boxes are
// valid and how large they are once scaled. Tables, --json, and a PNG of charts.
#include <snip_apps/common.hpp>
#include <snip_apps/draw.hpp>
#include <snip_apps/plot.hpp>

#include <snip/sniper/negatives.hpp>
#include <snip/sniper/plan.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace snip::apps;

const double levels[] = {0.01, 0.10, 0.25, 0.50, 0.75, 0.90, 0.99};
constexpr std::size_t n_levels = sizeof(levels) / sizeof(levels[0]);
const char* const level_names[] = {"1%", "10%", "25%", "50%", "75%", "90%", "99%"};

/// Quantiles at `levels`, linear interpolation between order statistics (numpy's
/// default); empty for no values.
std::vector<double> quantiles(std::vector<double> v) {
    std::vector<double> q;
    if (v.empty()) return q;
    std::sort(v.begin(), v.end());
    for (double l : levels) {
        const double pos = l * double(v.size() - 1);
        const auto i = static_cast<std::size_t>(std::floor(pos));
        const double f = pos - double(i);
        q.push_back(i + 1 < v.size() ? v[i] + (v[i + 1] - v[i]) * f : v[i]);
    }
    return q;
}

/// Histogram over [2^k, 2^(k+1)) for k = k0 .. k1, with the values below and above.
struct log2_hist {
    int k0 = 0, k1 = 10;
    std::vector<std::size_t> counts;
    std::size_t under = 0, over = 0;

    log2_hist(int lo = 0, int hi = 10) : k0(lo), k1(hi), counts(std::size_t(hi - lo + 1), 0) {}
    void add(double v) {
        if (!(v >= std::ldexp(1.0, k0))) {
            ++under;
            return;
        }
        const int k = int(std::floor(std::log2(v)));
        if (k > k1)
            ++over;
        else
            ++counts[std::size_t(k - k0)];
    }
    double lo(std::size_t i) const { return std::ldexp(1.0, k0 + int(i)); }
    double hi(std::size_t i) const { return std::ldexp(1.0, k0 + int(i) + 1); }
    std::size_t total() const {
        std::size_t n = under + over;
        for (auto c : counts) n += c;
        return n;
    }
};

// aspect ratio log2(w/h): bins of 0.5 centred on -4, -3.5, .., 4, plus the two tails
constexpr double aspect_step = 0.5, aspect_max = 4.0;
constexpr int aspect_bins = int(2 * aspect_max / aspect_step) + 1;

constexpr int per_image_max = 30;  // boxes per image: 0..30, then 31+

// validity by size: quarter-octave bins [2^(i/4), 2^((i+1)/4)) from 1 to 2048 px
constexpr int fine_per_octave = 4, fine_bins = 11 * fine_per_octave;
double fine_edge(int i) { return std::exp2(double(i) / fine_per_octave); }
int fine_bin(double size) {
    if (!(size >= 1.0)) return -1;
    const int i = int(std::floor(std::log2(size) * fine_per_octave));
    return i < fine_bins ? i : -1;
}

struct scale_stats {
    std::string spec;
    snip::valid_range range;
    std::size_t valid = 0;
    log2_hist scaled{0, 12};                  ///< scaled size sqrt(w*h) * factor of valid boxes
    std::vector<double> scaled_q;             ///< its quantiles
    std::vector<double> long_q, short_q;      ///< scaled image sides
    double factor_min = 0, factor_max = 0;
};

struct stats {
    std::string source, config_name, convention;
    int chip_size = 0, stride = 0;
    std::size_t images = 0, boxes = 0, crowd = 0, noncrowd = 0, zero_area = 0;
    log2_hist size{0, 10};
    std::vector<double> size_q;
    std::vector<std::size_t> aspect = std::vector<std::size_t>(aspect_bins, 0);
    std::size_t aspect_below = 0, aspect_above = 0;
    std::vector<double> aspect_q;
    std::vector<std::size_t> per_image = std::vector<std::size_t>(per_image_max + 2, 0);
    double per_image_mean = 0;
    std::size_t per_image_most = 0;
    std::size_t distinct_sizes = 0;
    std::vector<std::pair<std::pair<int, int>, std::size_t>> top_sizes;  ///< 10 most common
    std::vector<std::pair<std::pair<int, int>, std::size_t>> all_sizes;  ///< (w, h) -> images
    std::vector<double> long_q, short_q;
    std::vector<scale_stats> scales;
    std::size_t at_none = 0, at_several = 0;
    // per fine size bin (original sqrt(w*h)): boxes, valid at each scale, valid at none
    std::vector<std::size_t> fine_total = std::vector<std::size_t>(fine_bins, 0);
    std::vector<std::vector<std::size_t>> fine_valid;
    std::vector<std::size_t> fine_none = std::vector<std::size_t>(fine_bins, 0);
};

const char* convention_name(snip::pixel_convention c) {
    return c == snip::pixel_convention::inclusive ? "inclusive" : "continuous";
}

stats compute(const snip::dataset& ds, const snip::plan_config& cfg, int stride) {
    stats s;
    s.source = ds.source;
    s.config_name = cfg.name;
    s.convention = convention_name(cfg.convention);
    s.chip_size = cfg.chip_size;
    s.stride = stride;
    s.images = ds.images.size();
    const std::size_t ns = cfg.scales.size();
    s.scales.resize(ns);
    s.fine_valid.assign(ns, std::vector<std::size_t>(fine_bins, 0));
    std::vector<std::vector<double>> scaled_sizes(ns), sc_long(ns), sc_short(ns);
    for (std::size_t k = 0; k < ns; ++k) {
        s.scales[k].spec = cfg.scales[k].to_string();
        s.scales[k].range = cfg.ranges[k];
        s.scales[k].factor_min = std::numeric_limits<double>::infinity();
        s.scales[k].factor_max = -std::numeric_limits<double>::infinity();
    }
    std::vector<double> sizes, aspects, longs, shorts;
    std::map<std::pair<int, int>, std::size_t> size_count;
    std::vector<snip::scaled_image> pyr(ns);
    std::vector<snip::scale_filter> filters(ns);
    for (const auto& im : ds.images) {
        s.boxes += im.boxes.size();
        ++size_count[{im.width, im.height}];
        longs.push_back(std::max(im.width, im.height));
        shorts.push_back(std::min(im.width, im.height));
        for (std::size_t k = 0; k < ns; ++k) {
            pyr[k] = snip::scale_image(cfg.scales[k], im.width, im.height);
            filters[k] = cfg.filter(k, pyr[k].factor, stride);
            auto& sc = s.scales[k];
            sc.factor_min = std::min(sc.factor_min, pyr[k].factor);
            sc.factor_max = std::max(sc.factor_max, pyr[k].factor);
            sc_long[k].push_back(std::max(pyr[k].width, pyr[k].height));
            sc_short[k].push_back(std::min(pyr[k].width, pyr[k].height));
        }
        std::size_t here = 0;
        for (std::size_t b = 0; b < im.boxes.size(); ++b) {
            if (b < im.crowd.size() && im.crowd[b]) {
                ++s.crowd;
                continue;
            }
            ++here;
            const auto& bx = im.boxes[b];
            const double w = bx.x2 - bx.x1, h = bx.y2 - bx.y1;
            const int fb = w > 0 && h > 0 ? fine_bin(std::sqrt(w * h)) : -1;
            if (fb >= 0) ++s.fine_total[std::size_t(fb)];
            if (w > 0 && h > 0) {
                const double sz = std::sqrt(w * h);
                s.size.add(sz);
                sizes.push_back(sz);
                const double a = std::log2(w / h);
                aspects.push_back(a);
                const double bin = std::round(a / aspect_step);
                if (bin < -aspect_max / aspect_step)
                    ++s.aspect_below;
                else if (bin > aspect_max / aspect_step)
                    ++s.aspect_above;
                else
                    ++s.aspect[std::size_t(bin + aspect_max / aspect_step)];
            } else {
                ++s.zero_area;
            }
            // validity exactly as plan_image decides it
            const snip::box<double> conv =
                snip::to_convention(bx, im.width, im.height, cfg.convention);
            const snip::box_size bs = snip::size_of(conv, cfg.convention);
            int n_valid = 0;
            for (std::size_t k = 0; k < ns; ++k) {
                if (pyr[k].width <= 0 || pyr[k].height <= 0) continue;
                if (!filters[k].accepts(bs)) continue;
                ++n_valid;
                ++s.scales[k].valid;
                if (fb >= 0) ++s.fine_valid[k][std::size_t(fb)];
                const double scaled = bs.sqrt_area() * pyr[k].factor;
                s.scales[k].scaled.add(scaled);
                scaled_sizes[k].push_back(scaled);
            }
            s.at_none += n_valid == 0;
            if (fb >= 0 && n_valid == 0) ++s.fine_none[std::size_t(fb)];
            s.at_several += n_valid >= 2;
        }
        s.noncrowd += here;
        ++s.per_image[std::min<std::size_t>(here, per_image_max + 1)];
        s.per_image_most = std::max(s.per_image_most, here);
    }
    s.per_image_mean = s.images ? double(s.noncrowd) / double(s.images) : 0.0;
    s.size_q = quantiles(std::move(sizes));
    s.aspect_q = quantiles(std::move(aspects));
    s.long_q = quantiles(std::move(longs));
    s.short_q = quantiles(std::move(shorts));
    s.distinct_sizes = size_count.size();
    s.all_sizes.assign(size_count.begin(), size_count.end());
    s.top_sizes = s.all_sizes;
    std::stable_sort(s.top_sizes.begin(), s.top_sizes.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    if (s.top_sizes.size() > 10) s.top_sizes.resize(10);
    for (std::size_t k = 0; k < ns; ++k) {
        auto& sc = s.scales[k];
        sc.scaled_q = quantiles(std::move(scaled_sizes[k]));
        sc.long_q = quantiles(std::move(sc_long[k]));
        sc.short_q = quantiles(std::move(sc_short[k]));
        if (s.images == 0) sc.factor_min = sc.factor_max = 0;
    }
    return s;
}

// --- text ---------------------------------------------------------------------------

double pct(std::size_t a, std::size_t b) { return b ? 100.0 * double(a) / double(b) : 0.0; }

std::string num(double v) {
    char buf[32];
    if (std::fabs(v) >= 100 || v == std::round(v))
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else if (std::fabs(v) >= 10)
        std::snprintf(buf, sizeof buf, "%.1f", v);
    else
        std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

std::string range_text(const snip::valid_range& r) {
    return "[" + (r.has_lo() ? num(r.lo) : std::string("0")) + ", " +
           (r.has_hi() ? num(r.hi) : std::string("inf")) + ")";
}

void print_quantile_header(const char* first) {
    std::printf("| %s |", first);
    for (auto n : level_names) std::printf(" %s |", n);
    std::printf("\n|---|");
    for (std::size_t i = 0; i < n_levels; ++i) std::printf("---:|");
    std::printf("\n");
}

void print_quantile_row(const std::string& name, const std::vector<double>& q) {
    std::printf("| %s |", name.c_str());
    for (std::size_t i = 0; i < n_levels; ++i)
        std::printf(" %s |", i < q.size() ? num(q[i]).c_str() : "-");
    std::printf("\n");
}

void print(const stats& s) {
    std::printf("\n%s: %zu images, %zu boxes: %zu non-crowd (%zu with zero area), %zu crowd "
                "(left out of everything below)\n",
                s.source.c_str(), s.images, s.boxes, s.noncrowd, s.zero_area, s.crowd);
    std::printf("config %s: %zu scales, %s pixels, chip %d, stride %d\n", s.config_name.c_str(),
                s.scales.size(), s.convention.c_str(), s.chip_size, s.stride);

    const std::size_t measured = s.noncrowd - s.zero_area;
    std::printf("\n## box size sqrt(w*h), original px (%zu non-crowd boxes with area > 0)\n\n",
                measured);
    print_quantile_header("quantile");
    print_quantile_row("size px", s.size_q);
    std::printf("\n| size px | boxes | share | cumulative |\n|---|---:|---:|---:|\n");
    std::size_t cum = 0;
    auto size_row = [&](const std::string& label, std::size_t n) {
        cum += n;
        std::printf("| %s | %zu | %.2f%% | %.2f%% |\n", label.c_str(), n, pct(n, measured),
                    pct(cum, measured));
    };
    if (s.size.under) size_row("< 1", s.size.under);
    for (std::size_t i = 0; i < s.size.counts.size(); ++i)
        size_row("[" + num(s.size.lo(i)) + ", " + num(s.size.hi(i)) + ")", s.size.counts[i]);
    if (s.size.over) size_row(">= " + num(s.size.hi(s.size.counts.size() - 1)), s.size.over);

    std::printf("\n## aspect ratio log2(w/h), bins of %.1f (negative: taller than wide)\n\n",
                aspect_step);
    print_quantile_header("quantile");
    print_quantile_row("log2(w/h)", s.aspect_q);
    std::printf("\n| log2(w/h) | w/h | boxes | share |\n|---|---|---:|---:|\n");
    auto aspect_row = [&](const std::string& a, const std::string& b, std::size_t n) {
        std::printf("| %s | %s | %zu | %.2f%% |\n", a.c_str(), b.c_str(), n, pct(n, measured));
    };
    const double h = aspect_step / 2;
    char lb[64], rb[64];
    std::snprintf(lb, sizeof lb, "< %.2f", -aspect_max - h);
    std::snprintf(rb, sizeof rb, "< %.3f", std::exp2(-aspect_max - h));
    aspect_row(lb, rb, s.aspect_below);
    for (int i = 0; i < aspect_bins; ++i) {
        const double c = -aspect_max + i * aspect_step;
        std::snprintf(lb, sizeof lb, "[%.2f, %.2f)", c - h, c + h);
        std::snprintf(rb, sizeof rb, "%.3f .. %.3f", std::exp2(c - h), std::exp2(c + h));
        aspect_row(lb, rb, s.aspect[std::size_t(i)]);
    }
    std::snprintf(lb, sizeof lb, ">= %.2f", aspect_max + h);
    std::snprintf(rb, sizeof rb, ">= %.3f", std::exp2(aspect_max + h));
    aspect_row(lb, rb, s.aspect_above);

    std::printf("\n## non-crowd boxes per image: mean %.2f, most %zu\n\n", s.per_image_mean,
                s.per_image_most);
    std::printf("| boxes | images | share |\n|---|---:|---:|\n");
    for (int i = 0; i <= per_image_max + 1; ++i) {
        const std::size_t n = s.per_image[std::size_t(i)];
        if (n == 0) continue;
        std::printf("| %d%s | %zu | %.2f%% |\n", i, i > per_image_max ? "+" : "", n,
                    pct(n, s.images));
    }
    std::printf("(rows with no image left out)\n");

    std::printf("\n## image sizes, original px (%zu distinct)\n\n", s.distinct_sizes);
    print_quantile_header("quantile");
    print_quantile_row("long side", s.long_q);
    print_quantile_row("short side", s.short_q);
    std::printf("\n| w x h | images | share |\n|---|---:|---:|\n");
    for (const auto& [wh, n] : s.top_sizes)
        std::printf("| %d x %d | %zu | %.2f%% |\n", wh.first, wh.second, n, pct(n, s.images));

    std::printf("\n## per scale (validity as the planner decides it, %zu non-crowd boxes)\n\n",
                s.noncrowd);
    std::printf("| scale | valid range, orig px | factor | valid boxes | share | scaled size "
                "p1 / p50 / p99 | scaled image long side p1 / p50 / p99 | short side p50 |\n");
    std::printf("|---|---|---|---:|---:|---|---|---:|\n");
    for (std::size_t k = 0; k < s.scales.size(); ++k) {
        const auto& c = s.scales[k];
        auto q3 = [](const std::vector<double>& q) {
            return q.empty() ? std::string("-") : num(q[0]) + " / " + num(q[3]) + " / " + num(q[6]);
        };
        const std::string factor = c.factor_min == c.factor_max
                                       ? num(c.factor_min)
                                       : num(c.factor_min) + " .. " + num(c.factor_max);
        std::printf("| %zu: %s | %s | %s | %zu | %.2f%% | %s | %s | %s |\n", k, c.spec.c_str(),
                    range_text(c.range).c_str(), factor.c_str(), c.valid, pct(c.valid, s.noncrowd),
                    q3(c.scaled_q).c_str(), q3(c.long_q).c_str(),
                    c.short_q.empty() ? "-" : num(c.short_q[3]).c_str());
    }
    std::printf("\nscaled size sqrt(w*h) * factor of the valid boxes, px:\n\n| scaled px |");
    for (std::size_t k = 0; k < s.scales.size(); ++k) std::printf(" %zu: %s |", k, s.scales[k].spec.c_str());
    std::printf("\n|---|");
    for (std::size_t k = 0; k < s.scales.size(); ++k) std::printf("---:|");
    std::printf("\n");
    if (!s.scales.empty()) {
        const log2_hist& h0 = s.scales[0].scaled;
        auto any = [&](auto get) {
            for (const auto& c : s.scales)
                if (get(c.scaled)) return true;
            return false;
        };
        auto row = [&](const std::string& label, auto get) {
            std::printf("| %s |", label.c_str());
            for (const auto& c : s.scales) std::printf(" %zu |", get(c.scaled));
            std::printf("\n");
        };
        if (any([](const log2_hist& x) { return x.under; }))
            row("< 1", [](const log2_hist& x) { return x.under; });
        for (std::size_t i = 0; i < h0.counts.size(); ++i) {
            if (!any([i](const log2_hist& x) { return x.counts[i]; })) continue;
            row("[" + num(h0.lo(i)) + ", " + num(h0.hi(i)) + ")",
                [i](const log2_hist& x) { return x.counts[i]; });
        }
        if (any([](const log2_hist& x) { return x.over; }))
            row(">= " + num(h0.hi(h0.counts.size() - 1)), [](const log2_hist& x) { return x.over; });
    }
    std::printf("(empty rows left out)\n");
    std::printf("\nvalid at no scale: %zu of %zu non-crowd boxes (%.2f%%); at 2+ scales: %zu "
                "(%.2f%%); crowd boxes: %zu; zero-area boxes: %zu\n",
                s.at_none, s.noncrowd, pct(s.at_none, s.noncrowd), s.at_several,
                pct(s.at_several, s.noncrowd), s.crowd, s.zero_area);
}

// --- json ---------------------------------------------------------------------------

nlohmann::json quantiles_json(const std::vector<double>& q) {
    nlohmann::json j = nlohmann::json::object();
    for (std::size_t i = 0; i < n_levels; ++i)
        j[level_names[i]] = i < q.size() ? nlohmann::json(q[i]) : nlohmann::json(nullptr);
    return j;
}

nlohmann::json hist_json(const log2_hist& h) {
    nlohmann::json bins = nlohmann::json::array();
    for (std::size_t i = 0; i < h.counts.size(); ++i)
        bins.push_back({{"lo", h.lo(i)}, {"hi", h.hi(i)}, {"count", h.counts[i]}});
    return {{"below", h.under}, {"bins", bins}, {"above", h.over}};
}

nlohmann::json as_json(const stats& s) {
    const double open = -1;
    nlohmann::json j;
    j["annotations"] = s.source;
    j["config"] = {{"name", s.config_name},
                   {"convention", s.convention},
                   {"chip_size", s.chip_size},
                   {"stride", s.stride}};
    j["images"] = s.images;
    j["boxes"] = {{"total", s.boxes},
                  {"crowd", s.crowd},
                  {"non_crowd", s.noncrowd},
                  {"zero_area", s.zero_area},
                  {"valid_at_no_scale", s.at_none},
                  {"valid_at_no_scale_share", s.noncrowd ? double(s.at_none) / double(s.noncrowd) : 0.0},
                  {"valid_at_several_scales", s.at_several}};
    j["size"] = {{"what", "sqrt(w*h), original px, non-crowd boxes with area > 0"},
                 {"quantiles", quantiles_json(s.size_q)},
                 {"histogram", hist_json(s.size)}};
    nlohmann::json ab = nlohmann::json::array();
    for (int i = 0; i < aspect_bins; ++i) {
        const double c = -aspect_max + i * aspect_step;
        ab.push_back({{"lo", c - aspect_step / 2}, {"hi", c + aspect_step / 2},
                      {"count", s.aspect[std::size_t(i)]}});
    }
    j["aspect"] = {{"what", "log2(w/h)"},
                   {"quantiles", quantiles_json(s.aspect_q)},
                   {"histogram", {{"below", s.aspect_below}, {"bins", ab}, {"above", s.aspect_above}}}};
    nlohmann::json pi = nlohmann::json::array();
    for (int i = 0; i <= per_image_max; ++i) pi.push_back(s.per_image[std::size_t(i)]);
    j["boxes_per_image"] = {{"mean", s.per_image_mean},
                            {"most", s.per_image_most},
                            {"histogram", pi},
                            {"more_than_30", s.per_image[per_image_max + 1]}};
    nlohmann::json top = nlohmann::json::array();
    for (const auto& [wh, n] : s.top_sizes)
        top.push_back({{"width", wh.first}, {"height", wh.second}, {"images", n}});
    j["image_sizes"] = {{"distinct", s.distinct_sizes},
                        {"most_common", top},
                        {"long_side_quantiles", quantiles_json(s.long_q)},
                        {"short_side_quantiles", quantiles_json(s.short_q)}};
    nlohmann::json vb = nlohmann::json::array();
    for (int i = 0; i < fine_bins; ++i) {
        if (!s.fine_total[std::size_t(i)]) continue;
        nlohmann::json v = nlohmann::json::array();
        for (const auto& f : s.fine_valid) v.push_back(f[std::size_t(i)]);
        vb.push_back({{"lo", fine_edge(i)}, {"hi", fine_edge(i + 1)}, {"boxes", s.fine_total[std::size_t(i)]},
                      {"valid_per_scale", v}, {"valid_at_no_scale", s.fine_none[std::size_t(i)]}});
    }
    j["validity_by_size"] = {{"what", "boxes with area > 0 by sqrt(w*h), original px, in "
                                      "quarter-octave bins (empty bins left out)"},
                             {"bins", vb}};
    j["scales"] = nlohmann::json::array();
    for (const auto& c : s.scales)
        j["scales"].push_back(
            {{"scale", c.spec},
             {"valid_range", {c.range.has_lo() ? c.range.lo : open, c.range.has_hi() ? c.range.hi : open}},
             {"factor_min", c.factor_min},
             {"factor_max", c.factor_max},
             {"valid_boxes", c.valid},
             {"valid_share", s.noncrowd ? double(c.valid) / double(s.noncrowd) : 0.0},
             {"scaled_size_quantiles", quantiles_json(c.scaled_q)},
             {"scaled_size_histogram", hist_json(c.scaled)},
             {"scaled_long_side_quantiles", quantiles_json(c.long_q)},
             {"scaled_short_side_quantiles", quantiles_json(c.short_q)}});
    return j;
}

// --- png ----------------------------------------------------------------------------

const draw::rgb palette[] = {{230, 25, 25}, {20, 160, 40}, {30, 80, 235},
                             {255, 140, 0}, {140, 80, 20}, {0, 160, 160}};
constexpr draw::rgb bar_grey{85, 95, 115};

draw::rgb scale_colour(std::size_t k) { return palette[k % (sizeof(palette) / sizeof(palette[0]))]; }

std::string scale_label(const stats& s, std::size_t k) {
    return snip::concat("scale ", k, ": ", s.scales[k].spec);
}

draw::canvas render_png(const stats& s) {
    const std::string name = std::filesystem::path(s.source).filename().string();
    std::vector<draw::canvas> panels;

    {  // box sizes with the valid ranges
        plot::chart c;
        c.title = "Box size, " + name;
        c.xlabel = "sqrt(w*h), original px (log2 bins)";
        c.ylabel = "boxes";
        c.log_x = true;
        plot::series h{"non-crowd boxes", {}, {}, bar_grey, plot::series::bars};
        for (std::size_t i = 0; i < s.size.counts.size(); ++i) {
            h.x.push_back(std::sqrt(s.size.lo(i) * s.size.hi(i)));
            h.y.push_back(double(s.size.counts[i]));
        }
        c.data.push_back(h);
        constexpr double inf = std::numeric_limits<double>::infinity();
        for (std::size_t k = 0; k < s.scales.size(); ++k) {
            const auto& r = s.scales[k].range;
            c.xbands.push_back({r.has_lo() ? r.lo : -inf, r.has_hi() ? r.hi : inf, scale_colour(k),
                                scale_label(s, k) + " valid " + range_text(r)});
        }
        panels.push_back(plot::render(c));
    }
    {  // aspect ratio
        plot::chart c;
        c.title = "Aspect ratio";
        c.xlabel = "log2(w/h)  (-1: twice as tall as wide; tails in the end bins)";
        c.ylabel = "boxes";
        plot::series h{"", {}, {}, bar_grey, plot::series::bars};
        for (int i = 0; i < aspect_bins; ++i) {
            std::size_t n = s.aspect[std::size_t(i)];
            if (i == 0) n += s.aspect_below;
            if (i == aspect_bins - 1) n += s.aspect_above;
            h.x.push_back(-aspect_max + i * aspect_step);
            h.y.push_back(double(n));
        }
        c.data.push_back(h);
        panels.push_back(plot::render(c));
    }
    {  // boxes per image
        plot::chart c;
        c.title = snip::concat("Boxes per image (mean ", num(s.per_image_mean), ")");
        c.xlabel = "non-crowd boxes in the image (31: 31 or more)";
        c.ylabel = "images";
        plot::series h{"", {}, {}, bar_grey, plot::series::bars};
        for (int i = 0; i <= per_image_max + 1; ++i) {
            h.x.push_back(i);
            h.y.push_back(double(s.per_image[std::size_t(i)]));
        }
        c.data.push_back(h);
        panels.push_back(plot::render(c));
    }
    {  // scaled sizes per scale
        plot::chart c;
        c.title = "Valid boxes per scale, scaled size";
        c.xlabel = "sqrt(w*h) * factor, scaled px (log2 bins)";
        c.ylabel = "valid boxes";
        c.log_x = true;
        int first = int(s.scales.empty() ? 0 : s.scales[0].scaled.counts.size()), last = 0;
        for (const auto& sc : s.scales)
            for (std::size_t i = 0; i < sc.scaled.counts.size(); ++i)
                if (sc.scaled.counts[i]) first = std::min(first, int(i)), last = std::max(last, int(i));
        if (first > last) first = 0, last = 1;  // nothing valid anywhere
        first = std::max(0, first - 1);
        if (!s.scales.empty()) last = std::min(int(s.scales[0].scaled.counts.size()) - 1, last + 1);
        for (std::size_t k = 0; k < s.scales.size(); ++k) {
            const auto& hh = s.scales[k].scaled;
            plot::series l{snip::concat(scale_label(s, k), " (", hh.total(), ")"), {}, {},
                           scale_colour(k), plot::series::line_points, 3, "os*x"[k % 4]};
            for (int i = first; i <= last; ++i) {
                l.x.push_back(std::sqrt(hh.lo(std::size_t(i)) * hh.hi(std::size_t(i))));
                l.y.push_back(double(hh.counts[std::size_t(i)]));
            }
            c.data.push_back(l);
        }
        c.xbands.push_back({double(s.chip_size), std::numeric_limits<double>::infinity(),
                            {120, 120, 120}, snip::concat("over the chip size ", s.chip_size)});
        panels.push_back(plot::render(c));
    }
    {  // image sizes
        plot::chart c;
        c.title = snip::concat("Image sizes (", s.distinct_sizes, " distinct)");
        c.xlabel = "width, px";
        c.ylabel = "height, px";
        c.xmin = c.ymin = 0.0;
        plot::series p{"each size", {}, {}, {30, 80, 235}, plot::series::points, 2, 'o'};
        for (const auto& [wh, n] : s.all_sizes) {
            p.x.push_back(wh.first);
            p.y.push_back(wh.second);
        }
        plot::series top{"10 most common", {}, {}, {230, 25, 25}, plot::series::points, 5, 'x'};
        for (const auto& [wh, n] : s.top_sizes) {
            top.x.push_back(wh.first);
            top.y.push_back(wh.second);
        }
        c.data.push_back(p);
        c.data.push_back(top);
        panels.push_back(plot::render(c));
    }
    {  // validity by size
        plot::chart c;
        c.title = snip::concat("Valid share by size (valid at no scale: ",
                                       num(pct(s.at_none, s.noncrowd)), "%)");
        c.xlabel = "sqrt(w*h), original px (quarter-octave bins)";
        c.ylabel = "% of the boxes of that size";
        c.log_x = true;
        c.ymin = 0.0;
        c.ymax = 105.0;
        int first = fine_bins, last = -1;
        for (int i = 0; i < fine_bins; ++i)
            if (s.fine_total[std::size_t(i)]) first = std::min(first, i), last = i;
        auto share = [&](const std::vector<std::size_t>& v, const std::string& label, draw::rgb col,
                         char m) {
            plot::series l{label, {}, {}, col, plot::series::line_points, 3, m};
            for (int i = first; i <= last; ++i) {
                const std::size_t n = s.fine_total[std::size_t(i)];
                if (!n) continue;
                l.x.push_back(std::sqrt(fine_edge(i) * fine_edge(i + 1)));
                l.y.push_back(pct(v[std::size_t(i)], n));
            }
            c.data.push_back(l);
        };
        for (std::size_t k = 0; k < s.scales.size(); ++k)
            share(s.fine_valid[k],
                  snip::concat(scale_label(s, k), ": ", num(pct(s.scales[k].valid, s.noncrowd)),
                                       "% of all"),
                  scale_colour(k), "os*x"[k % 4]);
        share(s.fine_none, "valid at no scale", {255, 0, 255}, 's');
        panels.push_back(plot::render(c));
    }
    return plot::grid(panels, 2);
}

// --- the command --------------------------------------------------------------------

int run_stats(const std::vector<std::string>& argv) {
    cli::args a("stats", argv,
                {"--annotations", "--preset", "--config", "--scales", "--ranges", "--chip-size",
                 "--stride", "--stride-draw", "--seed", "--epoch", "--png"},
                {"--json", "--no-png"});
    const bool json = a.has("--json");
    const std::string ann = a.required("--annotations");
    snip::plan_config cfg;
    try {
        cfg = cli::config_from_args(a);
    } catch (const snip::error& e) {
        if (std::string(e.what()).rfind("unknown preset", 0) == 0) snip::fail("--preset: ", e.what());
        throw;
    }
    const long long seed = a.integer("--seed", 0);
    snip::require(seed >= 0, "--seed must be >= 0, got ", seed);
    const int stride = snip::epoch_stride(cfg, static_cast<std::uint64_t>(seed),
                                          static_cast<int>(a.integer("--epoch", 0)));
    std::string png;
    if (!a.has("--no-png")) {  // the folder first: fail before the work
        png = a.get_or("--png", "snip-stats.png");
        snip::require(!png.empty(), "--png: empty path (use --no-png for no picture)");
        const std::filesystem::path parent = std::filesystem::path(png).parent_path();
        if (!parent.empty()) {
            std::error_code ec;
            std::filesystem::create_directories(parent, ec);
            snip::require(!ec, "--png ", png, ": cannot create folder ", parent.string(), ": ",
                          ec.message());
        }
    }
    const snip::dataset ds = cli::load_annotations(ann, json);
    const stats s = compute(ds, cfg, stride);
    if (!png.empty()) draw::write_png(render_png(s), png);
    if (json) {
        nlohmann::json j = as_json(s);
        if (!png.empty()) j["png"] = png;
        std::printf("%s\n", j.dump(2).c_str());
        if (!png.empty()) std::fprintf(stderr, "wrote %s\n", png.c_str());
    } else {
        print(s);
        if (!png.empty()) std::printf("\ncharts: %s\n", png.c_str());
    }
    return 0;
}

const std::string usage =
    "snip-chips stats: box sizes, aspect ratios, boxes per image, image sizes, and which\n"
    "boxes each scale of a config trains on\n\n"
    "usage: snip-chips stats --annotations FILE [--preset NAME | --config FILE |\n"
    "                        --scales LIST --ranges LIST] [--png OUT.png | --no-png] [--json]\n\n"
    "  --annotations FILE  COCO instances JSON (required)\n"
    "  --preset NAME       default | sniper_coco (default: default)\n"
    "  --config FILE       a JSON config (the \"config\" object of a chips file)\n"
    "  --scales LIST       ';'-separated scales, finest first: 3;1.667;512px\n"
    "  --ranges LIST       ';'-separated valid ranges in original px: -1,80;32,150;120,-1\n"
    "  --chip-size PX, --stride PX, --stride-draw A:B, --seed S, --epoch E\n"
    "                      as for `plan`: the chip size and stride enter the max-side rule\n"
    "  --png FILE          charts to FILE (default: snip-stats.png in the current folder)\n"
    "  --no-png            no charts\n"
    "  --json              print the numbers as JSON instead of tables\n\n"
    "Crowd boxes are counted and otherwise left out. Sizes and aspect ratios use the\n"
    "annotated w, h (continuous, original px) of boxes with area > 0; validity at a scale\n"
    "is decided exactly as the planner does (the config's pixel convention, valid range,\n"
    "finest-scale minimum side and max-side rule), over all non-crowd boxes. Quantiles\n"
    "interpolate linearly between order statistics. Histograms of sizes use log2 bins\n"
    "[2^k, 2^(k+1)); aspect bins are 0.5 wide, centred on multiples of 0.5.";

} // namespace

SNIP_COMMAND("stats", "dataset statistics against a scale config (tables, --json, PNG charts)",
             usage, run_stats);
