// Fuzzer of the planner: bytes -> a plan_config (scales, valid ranges, chip size,
// strides, layout, convention, ...), an image size, ground-truth boxes, crowd flags and
// proposals, NaN / inf / negative / huge values included -> plan_config::validate ->
// plan_image -> mine_negatives -> sample_negatives, and sometimes plan_dataset.
// When the planner accepts the input, its plan must hold:
// - every chip lies inside its scaled image (closed interval in the convention);
// - every box valid at a scale is assigned to exactly one positive chip of that scale
//   and lies inside it, unless it is listed uncoverable, and then no chip contains it;
// - with few boxes and candidates, the fast cover equals the naive reference;
// - negative chips lie inside their scaled image; sampling picks distinct chips;
// - plan_dataset (one thread) gives the same positive chips as plan_image.
#include "fuzz_util.hpp"

#include <snip/sniper/chip_gt.hpp>
#include <snip/sniper/cover.hpp>
#include <snip/sniper/dataset.hpp>
#include <snip/sniper/dataset_plan.hpp>
#include <snip/sniper/negatives.hpp>
#include <snip/sniper/plan.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace {

constexpr int k_int_max = std::numeric_limits<int>::max();
constexpr int k_int_min = std::numeric_limits<int>::min();

const int k_sizes[] = {0,    -1,   1,    2,    15,     16,      17,        31,       32,  33,
                       48,   56,   100,  256,  480,    511,     512,       513,      640, 1000,
                       1333, 1400, 2000, 5000, 100000, 1 << 24, k_int_max, k_int_min};
const int k_small[] = {0,  -1, 1,   2,   3,   10,  25,  31,  32,  56,
                       59, 64, 100, 255, 256, 480, 511, 512, 513, k_int_max};
const double k_factors[] = {3.0, 1.667, 1.0,   0.5, 0.1, 1e-3,  1e-300,    0.0,        -1.0,
                            2.0, 7.5,   100.0, 1e4, 1e9, 1e300, fuzz::inf, -fuzz::inf, fuzz::nan};
const double k_bounds[] = {-1.0,  0.0,   1.0, 24.0,  32.0,      40.0,       80.0,      120.0,
                           150.0, 160.0, 1e6, 1e300, fuzz::inf, -fuzz::inf, fuzz::nan, -0.5};
const double k_coords[] = {0.0, -1.0, 1.0,   0.5,    10.0,      100.0,      639.0,     640.0,
                           1e9, -1e9, 1e308, -1e308, fuzz::inf, -fuzz::inf, fuzz::nan, 5e-324};

snip::scale_spec read_scale(fuzz::bytes& in) {
    switch (in.u8() % 3) {
    case 0:
        return snip::scale_spec::by_factor(in.pick_double(k_factors, 4.0));
    case 1:
        return snip::scale_spec::by_long_side(in.pick_int(k_sizes));
    default: {
        const int s = in.pick_int(k_sizes);
        return snip::scale_spec::by_resolution(s, in.pick_int(k_sizes));
    }
    }
}

snip::plan_config read_config(fuzz::bytes& in) {
    snip::plan_config c =
        in.flag() ? snip::plan_config::sniper_coco() : snip::plan_config::defaults();
    const std::uint8_t edits = in.u8();
    if (edits & 1) {
        const std::size_t n = 1 + in.below(4);
        c.scales.clear();
        c.ranges.clear();
        for (std::size_t i = 0; i < n; ++i) {
            c.scales.push_back(read_scale(in));
            const double lo = in.pick_double(k_bounds, 200.0);
            c.ranges.push_back({lo, in.pick_double(k_bounds, 200.0)});
        }
    }
    if (edits & 2) c.chip_size = in.pick_int(k_sizes);
    if (edits & 4) c.stride = in.pick_int(k_small);
    if (edits & 8) {
        c.stride_min = in.pick_int(k_small);
        c.stride_max = in.pick_int(k_small);
    }
    if (edits & 16)
        c.convention =
            in.flag() ? snip::pixel_convention::inclusive : snip::pixel_convention::continuous;
    if (edits & 32) c.layout = in.flag() ? snip::chip_layout::sniper : snip::chip_layout::aligned;
    if (edits & 64) {
        c.finest_min_side = in.pick_double(k_bounds, 8.0);
        c.max_side_rule = in.flag();
    }
    if (edits & 128) {
        c.negatives_per_image = in.pick_int(k_small);
        c.min_proposals_finest = in.pick_int(k_small);
        c.min_proposals_other = in.pick_int(k_small);
    }
    return c;
}

/// A coordinate: special value, fraction of the image side, or raw bits.
double read_coord(fuzz::bytes& in, int side) {
    return in.pick_double(k_coords, 1.25 * side);
}

std::vector<snip::box<double>> read_boxes(fuzz::bytes& in, int width, int height,
                                          std::size_t max_n) {
    std::vector<snip::box<double>> out(in.below(max_n + 1));
    for (auto& b : out) {
        b.x1 = read_coord(in, width);
        b.y1 = read_coord(in, height);
        const std::uint8_t how = in.u8();
        // mostly well-formed boxes (x2 = x1 + w), sometimes arbitrary corners
        b.x2 = how & 1 ? read_coord(in, width) : b.x1 + read_coord(in, width) / 4;
        b.y2 = how & 2 ? read_coord(in, height) : b.y1 + read_coord(in, height) / 4;
    }
    return out;
}

/// How many candidate chips a scaled image has at most: the planner's own bound, the one
/// it compares with snip::max_candidate_chips (a looser estimate here once let grids just
/// under the limit through, which take over 10 s to plan under the sanitizers).
double grid_cells(const snip::plan_config& cfg, const snip::scaled_image& sz, int stride) {
    if (sz.width <= 0 || sz.height <= 0) return 0.0;
    return snip::candidate_grid_bound(sz.width, cfg.chip_size, stride) *
           snip::candidate_grid_bound(sz.height, cfg.chip_size, stride);
}

void check_chip_inside(const snip::plan_config& cfg, const snip::chip& c,
                       const snip::scaled_image& sz, const char* kind) {
    const int e = cfg.convention == snip::pixel_convention::inclusive ? 1 : 0;
    fuzz::expect(
        c.rect.x1 >= 0 && c.rect.y1 >= 0 && c.rect.x1 <= c.rect.x2 && c.rect.y1 <= c.rect.y2 &&
            c.rect.x2 <= sz.width - e && c.rect.y2 <= sz.height - e,
        kind, " chip [", c.rect.x1, ", ", c.rect.y1, ", ", c.rect.x2, ", ", c.rect.y2,
        "] of scale ", c.scale, " is not inside its scaled image ", sz.width, "x", sz.height);
    fuzz::expect(c.factor == sz.factor, kind, " chip factor ", c.factor,
                 " differs from its scale's ", sz.factor);
}

void check_plan(const snip::plan_config& cfg, int width, int height,
                const std::vector<snip::box<double>>& boxes, const std::vector<std::uint8_t>& crowd,
                int stride, const snip::image_plan& p) {
    const std::size_t ns = cfg.scales.size(), nb = boxes.size();
    fuzz::expect(p.scales.size() == ns, p.scales.size(), " scale plans for ", ns, " scales");
    const double e = cfg.convention == snip::pixel_convention::inclusive ? 1.0 : 0.0;
    // the box as the planner sees it at scale s: converted, scaled, clipped, stored as
    // float, compared with the int chip in double
    auto scaled = [&](std::size_t b, const snip::scaled_image& sz) {
        const auto conv = snip::to_convention(boxes[b], width, height, cfg.convention);
        return snip::clip(snip::scale(conv, sz.factor), sz.width - e, sz.height - e)
            .cast<float>()
            .cast<double>();
    };
    std::vector<int> owner(nb * ns, 0);
    for (const auto& c : p.positives) {
        fuzz::expect(c.scale >= 0 && static_cast<std::size_t>(c.scale) < ns, "positive chip scale ",
                     c.scale);
        const auto s = static_cast<std::size_t>(c.scale);
        check_chip_inside(cfg, c, p.scales[s].size, "positive");
        fuzz::expect(!c.boxes.empty(), "positive chip without boxes");
        for (int b : c.boxes) {
            fuzz::expect(b >= 0 && static_cast<std::size_t>(b) < nb, "chip box index ", b);
            const auto sb = scaled(static_cast<std::size_t>(b), p.scales[s].size);
            fuzz::expect(snip::contains(c.rect.cast<double>(), sb), "box ", b, " [", sb.x1, ", ",
                         sb.y1, ", ", sb.x2, ", ", sb.y2, "] is not inside its chip [", c.rect.x1,
                         ", ", c.rect.y1, ", ", c.rect.x2, ", ", c.rect.y2, "] at scale ", s);
            ++owner[static_cast<std::size_t>(b) * ns + s];
        }
    }
    for (std::size_t s = 0; s < ns; ++s) {
        const auto& sp = p.scales[s];
        const std::vector<int>& unc = sp.uncoverable;
        for (int b : sp.valid) {
            fuzz::expect(b >= 0 && static_cast<std::size_t>(b) < nb, "valid box index ", b);
            fuzz::expect(crowd.empty() || !crowd[static_cast<std::size_t>(b)], "crowd box ", b,
                         " is valid at scale ", s);
            const bool u = std::find(unc.begin(), unc.end(), b) != unc.end();
            const int n = owner[static_cast<std::size_t>(b) * ns + s];
            fuzz::expect(n == (u ? 0 : 1), "box ", b, " valid at scale ", s,
                         (u ? " (uncoverable)" : ""), " is in ", n, " chips");
        }
        if (unc.empty() || sp.size.width <= 0 || sp.size.height <= 0) continue;
        // an uncoverable box lies in no candidate chip (checked when the candidates are few)
        if (grid_cells(cfg, sp.size, stride) > 4096) continue;
        const auto cands = snip::candidate_chips(cfg.layout, sp.size.width, sp.size.height,
                                                 cfg.chip_size, stride, cfg.convention);
        for (int b : unc) {
            const auto sb = scaled(static_cast<std::size_t>(b), sp.size);
            for (const auto& r : cands)
                fuzz::expect(!snip::contains(r.cast<double>(), sb), "uncoverable box ", b,
                             " fits candidate [", r.x1, ", ", r.y1, ", ", r.x2, ", ", r.y2,
                             "] at scale ", s);
        }
    }
}

double grid_cells_max(const snip::plan_config& cfg, const snip::image_plan& p, int stride) {
    double m = 0.0;
    for (const auto& sp : p.scales)
        m = std::max(m, grid_cells(cfg, sp.size, stride));
    return m;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::bytes in(data, size);
    const snip::plan_config cfg = read_config(in);
    const int width = in.pick_int(k_sizes), height = in.pick_int(k_sizes);
    const std::uint64_t seed = in.u8();
    const int epoch = in.pick_int(k_small);
    const bool use_crowd = in.flag(), use_dataset = in.flag();
    const auto boxes = read_boxes(in, width, height, 48);
    std::vector<std::uint8_t> crowd;
    if (use_crowd)
        for (std::size_t i = 0; i < boxes.size(); ++i)
            crowd.push_back(in.u8() % 4 == 0);
    const auto proposals = read_boxes(in, width, height, 96);

    if (!fuzz::accepts([&] { cfg.validate("fuzz config"); })) return 0;
    int stride = 0;
    if (!fuzz::accepts([&] { stride = snip::epoch_stride(cfg, seed, epoch); })) return 0;
    fuzz::expect(stride > 0 && stride < cfg.chip_size, "epoch stride ", stride, " outside [1, ",
                 cfg.chip_size, ")");

    // Grids of 2^16 candidates up to the planner's limit plan correctly but slowly under
    // the sanitizers (up to seconds near the limit, and most of it in sorting and filling
    // the grid): fuzzing spends its time on smaller grids, which reach the same code.
    // Grids over the limit are refused at once and stay in.
    for (const auto& spec : cfg.scales) {
        if (width <= 0 || height <= 0) break;
        snip::scaled_image sz;
        if (!fuzz::accepts([&] { sz = snip::scale_image(spec, width, height); })) break;
        const double cells = grid_cells(cfg, sz, stride);
        if (cells > double(1 << 16) && cells <= snip::max_candidate_chips) return 0;
    }

    snip::plan_workspace ws;
    const auto gv = snip::box_view<const double>(snip::as_box_view(boxes));
    snip::image_plan plan;
    if (!fuzz::accepts([&] { plan = snip::plan_image(cfg, width, height, gv, crowd, ws, stride); }))
        return 0;
    check_plan(cfg, width, height, boxes, crowd, stride, plan);
    // every box not ignored is valid at a scale, outside the image or valid nowhere: exactly one
    {
        std::vector<int> seen(boxes.size(), 0);
        for (const auto& sp : plan.scales)
            for (int b : sp.valid) seen[static_cast<std::size_t>(b)] |= 1;
        for (int b : plan.outside) {
            fuzz::expect(b >= 0 && static_cast<std::size_t>(b) < boxes.size(), "outside index ", b);
            seen[static_cast<std::size_t>(b)] += 2;
        }
        for (int b : plan.valid_nowhere) {
            fuzz::expect(b >= 0 && static_cast<std::size_t>(b) < boxes.size(), "valid_nowhere index ", b);
            seen[static_cast<std::size_t>(b)] += 4;
        }
        for (std::size_t b = 0; b < boxes.size(); ++b) {
            const bool ignored = !crowd.empty() && crowd[b];
            const int v = seen[b];
            fuzz::expect(ignored ? v == 0 : (v == 1 || v == 2 || v == 4), "box ", b,
                         ignored ? " is ignored but listed" : " is not in exactly one of valid / "
                                                              "outside / valid_nowhere",
                         " (", v, ")");
        }
    }

    if (boxes.size() <= 16 && grid_cells_max(cfg, plan, stride) <= 1024) {
        const auto slow = snip::plan_image(cfg, width, height, gv, crowd, ws, stride, true);
        fuzz::expect(slow.positives.size() == plan.positives.size(),
                     "fast cover: ", plan.positives.size(),
                     " chips, naive: ", slow.positives.size());
        for (std::size_t k = 0; k < plan.positives.size(); ++k)
            fuzz::expect(slow.positives[k].rect == plan.positives[k].rect &&
                             slow.positives[k].boxes == plan.positives[k].boxes,
                         "fast and naive covers differ at chip ", k);
    }

    const auto pv = snip::box_view<const double>(snip::as_box_view(proposals));
    std::vector<snip::chip> negs;
    if (!fuzz::accepts(
            [&] { negs = snip::mine_negatives(cfg, width, height, plan, pv, gv, ws, stride); }))
        return 0;
    for (const auto& c : negs) {
        fuzz::expect(c.scale >= 0 && static_cast<std::size_t>(c.scale) < cfg.scales.size(),
                     "negative chip scale ", c.scale);
        check_chip_inside(cfg, c, plan.scales[static_cast<std::size_t>(c.scale)].size, "negative");
        const int need = c.scale == 0 ? cfg.min_proposals_finest : cfg.min_proposals_other;
        fuzz::expect(snip::mined_count(c) > static_cast<std::size_t>(need), "negative chip holds ",
                     snip::mined_count(c), " candidates, needs more than ", need);
        for (int b : c.boxes)
            fuzz::expect(b >= 0 && static_cast<std::size_t>(b) < boxes.size(),
                         "negative chip gt index ", b, " of ", boxes.size());
        for (int q : c.proposals)
            fuzz::expect(q >= 0 && static_cast<std::size_t>(q) < proposals.size(),
                         "negative chip proposal index ", q, " of ", proposals.size());
        // only ground truth the miner assigned is valid in a negative chip
        for (const auto& a : snip::assign_chip(cfg, c, width, height, gv, crowd))
            if (a.state == snip::gt_state::valid)
                fuzz::expect(std::find(c.boxes.begin(), c.boxes.end(), a.index) != c.boxes.end(),
                             "gt ", a.index, " valid in a negative chip it was not assigned to");
    }
    const auto picked =
        snip::sample_negatives(negs.size(), cfg.negatives_per_image, seed, epoch, 42);
    fuzz::expect(
        picked.size() ==
            std::min<std::size_t>(negs.size(), std::size_t(std::max(0, cfg.negatives_per_image))),
        picked.size(), " negatives sampled of ", negs.size());
    for (std::size_t i = 0; i < picked.size(); ++i)
        fuzz::expect(picked[i] >= 0 && static_cast<std::size_t>(picked[i]) < negs.size() &&
                         (i == 0 || picked[i - 1] < picked[i]),
                     "sampled negatives are not distinct increasing indices");

    // (not on huge grids: planning them twice more would only test the timeout)
    if (use_dataset && grid_cells_max(cfg, plan, stride) <= 1e6) {
        snip::dataset ds;
        snip::image_record im;
        im.id = 42;
        im.width = width;
        im.height = height;
        im.boxes = boxes;
        im.crowd = crowd.empty() ? std::vector<std::uint8_t>(boxes.size(), 0) : crowd;
        ds.images.push_back(im);
        std::vector<snip::image_proposals> props(1);
        props[0].boxes = proposals;
        props[0].scores.assign(proposals.size(), 1.0f);
        snip::dataset_plan_options opt;
        opt.seed = seed;
        opt.epoch = epoch;
        opt.threads = 1;
        std::vector<snip::image_chips_plan> out;
        fuzz::expect(fuzz::accepts([&] { out = snip::plan_dataset(cfg, ds, &props, opt); }),
                     "plan_dataset rejected an image plan_image accepted");
        fuzz::expect(out.size() == 1 && out[0].plan.positives.size() == plan.positives.size() &&
                         out[0].negatives.size() == negs.size() && out[0].sampled == picked,
                     "plan_dataset differs from plan_image / mine_negatives / sample_negatives");
        for (std::size_t k = 0; k < plan.positives.size(); ++k)
            fuzz::expect(out[0].plan.positives[k].rect == plan.positives[k].rect &&
                             out[0].plan.positives[k].boxes == plan.positives[k].boxes,
                         "plan_dataset differs from plan_image at chip ", k);
    }
    return 0;
}
