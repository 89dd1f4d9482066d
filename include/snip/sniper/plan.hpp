// plan.hpp: presets and the per-image positive chip plan (all scales of one image).
//
// Input boxes are xyxy in ORIGINAL-image pixels, continuous convention (COCO
// [x, y, w, h] -> [x, y, x + w, y + h]). The plan converts them to the preset's pixel
// convention itself. Chips come out in scaled pixels (`rect`) and original pixels
// (`original()`).
#pragma once

#include <snip/core/box.hpp>
#include <snip/sniper/cover.hpp>
#include <snip/core/error.hpp>
#include <snip/core/random.hpp>
#include <snip/sniper/pyramid.hpp>
#include <snip/core/valid_range.hpp>
#include <snip/core/views.hpp>

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
    int stride = 32;                  ///< candidate grid step, scaled px (when not drawn)
    /// Draw the stride per epoch uniformly from [stride_min, stride_max] with the seed
    /// (the released SNIPER code draws 56..59, see sniper_coco()); 0, 0 = always `stride`.
    /// The epoch's stride is used for the candidate grid AND the max-side rule.
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
        // (messages built only on failure: validate() runs on every plan_image call)
        for (std::size_t i = 0; i + 1 < ranges.size(); ++i) {
            const auto& a = ranges[i];
            const auto& b = ranges[i + 1];
            if (!(!a.has_hi() || !b.has_lo() || b.lo <= a.hi))
                fail(what, ": valid ranges of scales ", i, " ", a.to_string(), " and ", i + 1, " ",
                     b.to_string(), " leave a gap: boxes of size ", a.hi, "..", b.lo,
                     " are trained at no scale");
            if ((a.has_lo() && b.has_lo() && b.lo < a.lo) || (a.has_hi() && b.has_hi() && b.hi < a.hi))
                fail(what, ": valid ranges must grow from the finest scale to the coarsest; scale ",
                     i, " has ", a.to_string(), ", scale ", i + 1, " has ", b.to_string());
            if (!(a.has_hi() && b.has_lo()))
                fail(what, ": valid range ", a.to_string(), " of scale ", i, " and ", b.to_string(),
                     " of scale ", i + 1,
                     " both leave the shared end open: the finer scale needs an upper bound and "
                     "the coarser a lower bound");
        }
        require(negatives_per_image >= 0, what, ": negatives per image must be >= 0, got ",
                negatives_per_image);
        require(min_proposals_finest >= 0 && min_proposals_other >= 0, what,
                ": minimum proposals per negative chip must be >= 0");
    }

    int max_stride() const { return stride_max > 0 ? stride_max : stride; }
    bool draws_stride() const { return stride_min != 0 || stride_max != 0; }

    /// @brief Throws snip::error unless `s` is a stride this config can plan with: in
    /// [1, chip size) and, when the config draws its stride, in [stride_min, stride_max]
    /// (a stride outside the draw range could break the max-side bound validate() checked).
    void validate_stride(int s, const char* who) const {
        require(s > 0 && s < chip_size, who, ": stride must be in [1, chip size ", chip_size,
                "), got ", s);
        if (draws_stride())
            require(s >= stride_min && s <= stride_max, who, ": stride ", s,
                    " is outside the config's stride draw range ", stride_min, "..", stride_max);
    }

    /// @brief The exact rules of the original SNIPER code for COCO: scales 3, 1.667 and
    /// long side 512; ranges (-1,80), (32,150), (120,-1); 512 px chips; the chip stride
    /// drawn uniformly from 56..59 every epoch (data_workers.py:380 and :391,
    /// `np.random.randint(56, 60)` in chip_worker.__init__ / reset; snip draws it from the
    /// seed, see epoch_stride) and used for the candidate grid (chip_generator.py:12-19 ->
    /// chips.pyx -> cchips.cpp:83-102) and the max-side rule `chip - stride - 1`
    /// (data_workers.py:434, :438, :509); `stride` (32) is kept for callers that clear
    /// the draw; inclusive pixels; the original candidate set; >25 / >10 proposals per
    /// negative chip; 2 negatives per image per epoch.
    static plan_config sniper_coco() {
        plan_config c;
        c.name = "sniper_coco";
        c.scales = {scale_spec::by_factor(3.0), scale_spec::by_factor(1.667),
                    scale_spec::by_long_side(512)};
        c.ranges = {{-1, 80}, {32, 150}, {120, -1}};
        c.stride_min = 56;  // data_workers.py:380, np.random.randint(56, 60)
        c.stride_max = 59;
        c.convention = pixel_convention::inclusive;
        c.layout = chip_layout::sniper;
        return c;
    }

    /// @brief snip's default: SNIPER's COCO scales and ranges, with continuous pixel
    /// coordinates and the aligned candidate grid (every chip exactly 512 x 512 or the
    /// whole image side; no one-pixel-larger corner chips), and a FIXED stride of 32
    /// instead of the original's per-epoch draw from 56..59: the same plan every epoch
    /// (only the negative sample changes), a denser candidate grid for the greedy cover,
    /// and a max-side bound of 512 - 32 - 1 = 479 px instead of 452..455, so fewer long
    /// boxes are lost at the two finer scales. `stride_min`/`stride_max` (CLI
    /// `--stride-draw 56:59`) bring the draw back.
    static plan_config defaults() {
        plan_config c = sniper_coco();
        c.name = "default";
        c.stride = 32;
        c.stride_min = c.stride_max = 0;
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
        require(i < scales.size() && i < ranges.size(), "plan_config::filter: scale index ", i,
                " but the config has ", scales.size(), " scales and ", ranges.size(),
                " valid ranges");
        scale_filter f;
        f.range = ranges[i];
        f.factor = factor;
        const bool coarsest = i + 1 == scales.size();
        if (i == 0 && !coarsest) f.min_side = finest_min_side;
        if (!coarsest && max_side_rule) f.max_side_scaled = double(chip_size - stride_used - 1);
        return f;
    }
};

/// @brief The candidate stride of one epoch: cfg.stride, or, when the config draws its
/// stride (stride_min..stride_max, as the released SNIPER code draws 56..59 every epoch,
/// data_workers.py:380/:391), a draw from a generator seeded by (seed, epoch): the same
/// seed and epoch always give the same stride. Validates the draw range.
inline int epoch_stride(const plan_config& cfg, std::uint64_t seed, int epoch) {
    require(epoch >= 0, "epoch_stride: epoch must be >= 0, got ", epoch);
    if (!cfg.draws_stride()) {
        require(cfg.stride > 0, "epoch_stride: stride must be > 0, got ", cfg.stride);
        return cfg.stride;
    }
    require(cfg.stride_min > 0 && cfg.stride_min <= cfg.stride_max, "epoch_stride: stride draw "
            "range must satisfy 0 < stride_min <= stride_max, got ", cfg.stride_min, "..",
            cfg.stride_max);
    splitmix64 g{mix(seed, 0x5354524944ull + static_cast<std::uint64_t>(epoch))};
    return cfg.stride_min +
           static_cast<int>(g.below(static_cast<std::uint64_t>(cfg.stride_max - cfg.stride_min + 1)));
}

/// @brief One chip of a plan.
struct chip {
    int scale = 0;            ///< index into plan_config::scales
    double factor = 1.0;      ///< resize factor of that scale
    box<int> rect;            ///< scaled pixels, closed interval in the plan's convention
    /// Indices of the GROUND-TRUTH boxes assigned to this chip: a positive chip's boxes,
    /// or the ground-truth mining candidates a negative chip counted (usually none).
    /// assign_chip marks exactly these valid (the original's
    /// `np.intersect1d(gtids, nids)`, data_workers.py:213).
    std::vector<int> boxes;
    /// Negative chips only: indices of the proposals counted in the chip (into the
    /// proposal list given to mine_negatives). Empty for positive chips.
    std::vector<int> proposals;
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
    /// Boxes (not ignored) that lie entirely outside the image: nothing of them is left
    /// after clipping, so no scale can train them. Sorted indices.
    std::vector<int> outside;
    /// Boxes (not ignored, not outside) valid at no scale: outside every valid range, too
    /// long for the chip at a finer scale or thinner than finest_min_side. Sorted indices.
    std::vector<int> valid_nowhere;
};

/// @brief Scratch memory for plan_image, one per thread.
struct plan_workspace {
    cover_workspace cover;
    chip_grid_cache grids;
    std::vector<box<float>> scaled;
    std::vector<box<double>> converted;
    std::vector<int> ids;
    std::vector<std::uint8_t> flags; ///< plan_image: per-box state (outside / valid somewhere)
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

/// @brief Throws snip::error naming `what`, the index and the values unless every box
/// of `boxes` has finite coordinates with x1 <= x2 and y1 <= y2.
template <class T>
void validate_boxes(box_view<const T> boxes, const char* what) {
    for (std::ptrdiff_t i = 0; i < boxes.size(); ++i) {
        const box<double> b = boxes[i].template cast<double>();
        require(std::isfinite(b.x1) && std::isfinite(b.y1) && std::isfinite(b.x2) &&
                    std::isfinite(b.y2),
                what, "[", i, "] is [", b.x1, ", ", b.y1, ", ", b.x2, ", ", b.y2,
                "]: coordinates must be finite numbers");
        require(b.x2 >= b.x1 && b.y2 >= b.y1, what, "[", i, "] is [", b.x1, ", ", b.y1, ", ",
                b.x2, ", ", b.y2, "]: must have x1 <= x2 and y1 <= y2 (xyxy, not xywh?)");
    }
}

/// @brief True when the continuous box `b` has no area in common with a `width` x
/// `height` image (touching an edge counts as outside).
inline bool outside_image(const box<double>& b, int width, int height) {
    return b.x2 <= 0.0 || b.y2 <= 0.0 || b.x1 >= double(width) || b.y1 >= double(height);
}

/// @brief Plans the positive chips of one image.
/// @param width, height image size, original px.
/// @param boxes ground-truth boxes, xyxy continuous, original px; finite, x1 <= x2 and
///        y1 <= y2 (anything else throws snip::error naming the box's index and values).
/// @param ignore optional flags (same length as boxes, non-zero = crowd / ignore
///        region): such boxes never drive a chip. Empty = none.
/// @param stride_used the candidate stride of this epoch; 0 = epoch_stride(cfg, 0, 0)
///        (cfg.stride, or the draw of seed 0, epoch 0 for a config that draws its stride).
/// @param greedy_naive use the slow reference cover (tests and benchmarks).
/// The config is validated on every call (a few comparisons per scale). Boxes entirely
/// outside the image and boxes valid at no scale are listed in the result's `outside`
/// and `valid_nowhere`.
template <class T>
image_plan plan_image(const plan_config& cfg, int width, int height, box_view<const T> boxes,
                      const std::vector<std::uint8_t>& ignore, plan_workspace& ws,
                      int stride_used = 0, bool greedy_naive = false) {
    cfg.validate("plan_image: config");
    require(width > 0 && height > 0, "plan_image: image size must be positive, got ", width, "x",
            height);
    require(ignore.empty() || ignore.size() == static_cast<std::size_t>(boxes.size()),
            "plan_image: ", ignore.size(), " ignore flags for ", boxes.size(), " boxes");
    if (stride_used == 0) stride_used = epoch_stride(cfg, 0, 0);
    cfg.validate_stride(stride_used, "plan_image");
    validate_boxes(boxes, "plan_image: boxes");
    const auto n = static_cast<std::size_t>(boxes.size());
    ws.converted.resize(n);
    // Per box, decided once: box_outside (entirely outside the image, never valid), then
    // box_valid once a scale accepts it; 0 otherwise.
    constexpr std::uint8_t box_valid = 1, box_outside = 2;
    std::vector<std::uint8_t>& state = ws.flags;
    state.assign(n, 0);
    for (std::size_t b = 0; b < n; ++b) {
        const box<double> raw = boxes[static_cast<std::ptrdiff_t>(b)].template cast<double>();
        if (outside_image(raw, width, height)) state[b] = box_outside;
        ws.converted[b] = to_convention(raw, width, height, cfg.convention);
    }
    const double e = cfg.convention == pixel_convention::inclusive ? 1.0 : 0.0;
    image_plan out;
    out.scales.resize(cfg.scales.size());
    for (std::size_t s = 0; s < cfg.scales.size(); ++s) {
        auto& sp = out.scales[s];
        sp.size = scale_image(cfg.scales[s], width, height);
        if (candidate_grid_bound(sp.size.width, cfg.chip_size, stride_used) *
                candidate_grid_bound(sp.size.height, cfg.chip_size, stride_used) >
            max_candidate_chips)
            fail("image ", width, " x ", height, " at scale ", s, " (", cfg.scales[s].to_string(),
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
            if (state[b] == box_outside) continue;
            const auto& c = ws.converted[b];
            if (!f.accepts(size_of(c, cfg.convention))) continue;
            state[b] = box_valid;
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
        for (const auto& r : cr.chips) out.positives.push_back({int(s), sp.size.factor, r, {}, {}});
        for (std::size_t v = 0; v < cr.owner.size(); ++v) {
            if (cr.owner[v] < 0)
                sp.uncoverable.push_back(sp.valid[v]);
            else
                out.positives[first + static_cast<std::size_t>(cr.owner[v])].boxes.push_back(
                    sp.valid[v]);
        }
    }
    for (std::size_t b = 0; b < n; ++b) {
        if ((!ignore.empty() && ignore[b]) || state[b] == box_valid) continue;
        if (state[b] == box_outside)
            out.outside.push_back(static_cast<int>(b));
        else
            out.valid_nowhere.push_back(static_cast<int>(b));
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
