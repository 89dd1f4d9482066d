// plan.hpp: presets and the per-image positive chip plan (all scales of one image).
//
// Input boxes are xyxy in ORIGINAL-image pixels, continuous convention (COCO
// [x, y, w, h] -> [x, y, x + w, y + h]). The plan converts them to the preset's pixel
// convention itself. Chips come out in scaled pixels (`rect`) and original pixels
// (`original()`).
#pragma once

#include <snip/box.hpp>
#include <snip/chips.hpp>
#include <snip/config.hpp>
#include <snip/pyramid.hpp>
#include <snip/valid_range.hpp>
#include <snip/views.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace snip {

/// @brief Everything that decides a chip plan. Scales are listed finest first (the
/// scale that enlarges most, which trains the smallest objects).
struct plan_config {
    std::string name = "custom";
    std::vector<scale_spec> scales;
    std::vector<valid_range> ranges;  ///< one per scale, sqrt(w*h) in original px
    int chip_size = 512;              ///< chip side, scaled px
    int stride = 32;                  ///< candidate grid step, scaled px
    /// Draw the stride per epoch uniformly from [stride_min, stride_max] with the seed
    /// (the released SNIPER code draws 56..59); 0 = use `stride`.
    int stride_min = 0, stride_max = 0;
    pixel_convention convention = pixel_convention::continuous;
    chip_layout layout = chip_layout::aligned;
    /// Finest scale (of several): a box needs w >= this and h >= this (original px).
    double finest_min_side = 2.0;
    /// Non-coarsest scales: a box's longer side, scaled, must be < chip - stride - 1.
    bool max_side_rule = true;
    // negative chip mining
    int negatives_per_image = 2;   ///< negative chips sampled per image per epoch
    int min_proposals_finest = 25; ///< a negative chip at the finest scale needs MORE than this
    int min_proposals_other = 10;  ///< ... at the other scales

    std::size_t num_scales() const { return scales.size(); }

    /// @brief Throws snip::error naming the bad value when scales, ranges, chip size
    /// and stride do not fit together.
    void validate(const std::string& what = "config") const {
        require(!scales.empty(), what, ": at least one scale is needed");
        require(ranges.size() == scales.size(), what, ": ", scales.size(), " scales but ",
                ranges.size(), " valid ranges; give one range per scale");
        for (std::size_t i = 0; i < scales.size(); ++i) {
            try {
                scales[i].validate();
                ranges[i].validate();
            } catch (const error& e) {
                fail(what, ": scale ", i, ": ", e.what());
            }
        }
        require(chip_size >= 16, what, ": chip size must be >= 16 px, got ", chip_size);
        require(stride > 0 && stride < chip_size, what, ": stride must be in [1, chip size ",
                chip_size, "), got ", stride);
        if (stride_min != 0 || stride_max != 0)
            require(stride_min > 0 && stride_min <= stride_max && stride_max < chip_size, what,
                    ": stride draw range must satisfy 0 < min <= max < chip size, got ",
                    stride_min, "..", stride_max);
        if (max_side_rule && scales.size() > 1)
            require(chip_size - max_stride() - 1 > 0, what, ": chip size ", chip_size,
                    " minus stride ", max_stride(), " leaves no room for any box");
        for (std::size_t i = 0; i + 1 < ranges.size(); ++i) {
            const auto& a = ranges[i];
            const auto& b = ranges[i + 1];
            require(!a.has_hi() || !b.has_lo() || b.lo <= a.hi, what, ": valid ranges of scales ",
                    i, " ", a.to_string(), " and ", i + 1, " ", b.to_string(),
                    " leave a gap: boxes of size ", a.hi, "..", b.lo, " are trained at no scale");
            require(!(a.has_lo() && b.has_lo() && b.lo < a.lo) &&
                        !(a.has_hi() && b.has_hi() && b.hi < a.hi),
                    what, ": valid ranges must grow from the finest scale to the coarsest; scale ",
                    i, " has ", a.to_string(), ", scale ", i + 1, " has ", b.to_string());
            require(a.has_hi() && b.has_lo(), what, ": valid range ", a.to_string(), " of scale ",
                    i, " and ", b.to_string(), " of scale ", i + 1,
                    " both leave the shared end open: the finer scale needs an upper bound and "
                    "the coarser a lower bound");
        }
        require(negatives_per_image >= 0, what, ": negatives per image must be >= 0, got ",
                negatives_per_image);
        require(min_proposals_finest >= 0 && min_proposals_other >= 0, what,
                ": minimum proposals per negative chip must be >= 0");
    }

    int max_stride() const { return stride_max > 0 ? stride_max : stride; }

    /// @brief The exact rules of the original SNIPER code for COCO: scales 3, 1.667 and
    /// long side 512; ranges (-1,80), (32,150), (120,-1); 512 px chips, stride 32;
    /// inclusive pixels; the original candidate set; >25 / >10 proposals per negative
    /// chip; 2 negatives per image per epoch.
    static plan_config sniper_coco() {
        plan_config c;
        c.name = "sniper_coco";
        c.scales = {scale_spec::by_factor(3.0), scale_spec::by_factor(1.667),
                    scale_spec::by_long_side(512)};
        c.ranges = {{-1, 80}, {32, 150}, {120, -1}};
        c.convention = pixel_convention::inclusive;
        c.layout = chip_layout::sniper;
        return c;
    }

    /// @brief snip's default: SNIPER's COCO scales and ranges, with continuous pixel
    /// coordinates and the aligned candidate grid (every chip exactly 512 x 512 or the
    /// whole image side; no one-pixel-larger corner chips).
    static plan_config defaults() {
        plan_config c = sniper_coco();
        c.name = "default";
        c.convention = pixel_convention::continuous;
        c.layout = chip_layout::aligned;
        return c;
    }

    /// @brief Looks a preset up by name ("default", "sniper_coco").
    static plan_config preset(const std::string& name) {
        if (name == "default") return defaults();
        if (name == "sniper_coco") return sniper_coco();
        fail("unknown preset '", name, "' (known: default, sniper_coco)");
    }

    /// @brief The box filter of scale `i` for an image of the given factor, following
    /// the original rules: every scale tests its valid range; the finest of several
    /// also needs w, h >= finest_min_side; every non-coarsest scale applies the
    /// max-side rule with `stride_used`.
    scale_filter filter(std::size_t i, double factor, int stride_used) const {
        scale_filter f;
        f.range = ranges[i];
        f.factor = factor;
        const bool coarsest = i + 1 == scales.size();
        if (i == 0 && !coarsest) f.min_side = finest_min_side;
        if (!coarsest && max_side_rule) f.max_side_scaled = double(chip_size - stride_used - 1);
        return f;
    }
};

/// @brief One chip of a plan.
struct chip {
    int scale = 0;            ///< index into plan_config::scales
    double factor = 1.0;      ///< resize factor of that scale
    box<int> rect;            ///< scaled pixels, closed interval in the plan's convention
    std::vector<int> boxes;   ///< indices of the boxes assigned to this chip
    /// The chip in original pixels (rect / factor).
    box<double> original() const {
        return {rect.x1 / factor, rect.y1 / factor, rect.x2 / factor, rect.y2 / factor};
    }
};

/// @brief The plan of one scale of one image.
struct scale_plan {
    scaled_image size;
    std::vector<int> valid;        ///< indices of the boxes valid at this scale
    std::vector<int> uncoverable;  ///< valid boxes no candidate chip can contain
};

/// @brief The positive chips of one image at every scale.
struct image_plan {
    std::vector<scale_plan> scales;
    std::vector<chip> positives;
};

/// @brief Scratch memory for plan_image, one per thread.
struct plan_workspace {
    cover_workspace cover;
    chip_grid_cache grids;
    std::vector<box<float>> scaled;
    std::vector<box<double>> converted;
    std::vector<int> ids;
};

/// @brief Converts continuous original-pixel boxes to the convention's closed
/// intervals, clipped to the image as the original code does.
inline box<double> to_convention(const box<double>& b, int width, int height,
                                 pixel_convention conv) {
    if (conv == pixel_convention::inclusive) {
        const double x1 = std::max(0.0, b.x1), y1 = std::max(0.0, b.y1);
        return {x1, y1, std::min(double(width - 1), x1 + std::max(0.0, b.x2 - b.x1 - 1.0)),
                std::min(double(height - 1), y1 + std::max(0.0, b.y2 - b.y1 - 1.0))};
    }
    return clip(b, double(width), double(height));
}

/// @brief The most candidate chips plan_image lays over one scaled image (about 1.7e7:
/// some 85 MB of grid and cover memory per planning thread, and a cover of a second or
/// so); a larger grid is an error, not an out-of-memory crash or a planner that seems to
/// hang (2^28 chips took minutes and GBs per thread). Real grids are far smaller: 3x of a
/// 20000 x 15000 image at stride 32 has 2.6e6.
inline constexpr double max_candidate_chips = double(1 << 24);

/// @brief An upper bound on the candidate positions along one side of `side` scaled px.
inline double candidate_grid_bound(int side, int chip, int stride) {
    return side > chip ? double(side - chip) / double(stride) + 3.0 : 3.0;
}

/// @brief Plans the positive chips of one image.
/// @param width, height image size, original px.
/// @param boxes ground-truth boxes, xyxy continuous, original px.
/// @param ignore optional flags (same length as boxes, non-zero = crowd / ignore
///        region): such boxes never drive a chip. Empty = none.
/// @param stride_used the candidate stride of this epoch (cfg.stride unless drawn).
/// @param greedy_naive use the slow reference cover (tests and benchmarks).
template <class T>
image_plan plan_image(const plan_config& cfg, int width, int height, box_view<const T> boxes,
                      const std::vector<std::uint8_t>& ignore, plan_workspace& ws,
                      int stride_used = 0, bool greedy_naive = false) {
    require(width > 0 && height > 0, "plan_image: image size must be positive, got ", width, "x",
            height);
    require(ignore.empty() || ignore.size() == static_cast<std::size_t>(boxes.size()),
            "plan_image: ", ignore.size(), " ignore flags for ", boxes.size(), " boxes");
    if (stride_used <= 0) stride_used = cfg.stride;
    const auto n = static_cast<std::size_t>(boxes.size());
    ws.converted.resize(n);
    for (std::size_t b = 0; b < n; ++b)
        ws.converted[b] = to_convention(boxes[static_cast<std::ptrdiff_t>(b)].template cast<double>(),
                                        width, height, cfg.convention);
    const double e = cfg.convention == pixel_convention::inclusive ? 1.0 : 0.0;
    image_plan out;
    out.scales.resize(cfg.scales.size());
    for (std::size_t s = 0; s < cfg.scales.size(); ++s) {
        auto& sp = out.scales[s];
        sp.size = scale_image(cfg.scales[s], width, height);
        require(candidate_grid_bound(sp.size.width, cfg.chip_size, stride_used) *
                        candidate_grid_bound(sp.size.height, cfg.chip_size, stride_used) <=
                    max_candidate_chips,
                "image ", width, " x ", height, " at scale ", s, " (", cfg.scales[s].to_string(),
                ") is ", sp.size.width, " x ", sp.size.height, " px: more than ",
                max_candidate_chips, " candidate chips of ", cfg.chip_size, " px at stride ",
                stride_used, " (is the image size right?)");
        const scale_filter f = cfg.filter(s, sp.size.factor, stride_used);
        ws.scaled.clear();
        ws.ids.clear();
        if (sp.size.width <= 0 || sp.size.height <= 0) continue;
        const double mx = sp.size.width - e, my = sp.size.height - e;
        for (std::size_t b = 0; b < n; ++b) {
            if (!ignore.empty() && ignore[b]) continue;
            const auto& c = ws.converted[b];
            if (!f.accepts(size_of(c, cfg.convention))) continue;
            sp.valid.push_back(static_cast<int>(b));
            ws.scaled.push_back(clip(scale(c, sp.size.factor), mx, my).template cast<float>());
        }
        if (ws.scaled.empty()) continue;
        const auto view = as_box_view(std::as_const(ws.scaled));
        cover_result cr;
        if (greedy_naive) {
            cr = greedy_cover_naive(candidate_chips(cfg.layout, sp.size.width, sp.size.height,
                                                    cfg.chip_size, stride_used, cfg.convention),
                                    view);
        } else {
            const chip_grid& grid = ws.grids.get(cfg.layout, sp.size.width, sp.size.height,
                                                 cfg.chip_size, stride_used, cfg.convention);
            cr = greedy_cover(grid, view, ws.cover);
        }
        const std::size_t first = out.positives.size();
        for (const auto& r : cr.chips) out.positives.push_back({int(s), sp.size.factor, r, {}});
        for (std::size_t v = 0; v < cr.owner.size(); ++v) {
            if (cr.owner[v] < 0)
                sp.uncoverable.push_back(sp.valid[v]);
            else
                out.positives[first + static_cast<std::size_t>(cr.owner[v])].boxes.push_back(
                    sp.valid[v]);
        }
    }
    return out;
}

/// @brief Mutable views are read as const ones.
template <class T>
    requires(!std::is_const_v<T>)
image_plan plan_image(const plan_config& cfg, int width, int height, box_view<T> boxes,
                      const std::vector<std::uint8_t>& ignore, plan_workspace& ws,
                      int stride_used = 0, bool greedy_naive = false) {
    return plan_image(cfg, width, height, box_view<const T>(boxes), ignore, ws, stride_used,
                      greedy_naive);
}

} // namespace snip
