// bench_deform_roi_pool: deformable PS RoI pooling (ops/deform_roi_pool.hpp) on SNIPER's
// R-CNN head for one 512 x 512 chip: 1 x 256 x 32 x 32 float features (stride 16), 512 RoIs,
// 7 x 7 bins, 7 x 7 offsets, 4 x 4 samples per bin, trans_std 0.1; beside snip's RoIAlign of
// the same shape (7 x 7, sampling ratio 2, aligned) for scale.
//
//   <op>/<variant>   op: deform_forward_no_offsets  (SNIPER's first pass)
//                        deform_forward             (the second pass, with offsets)
//                        deform_forward_backward    (with offsets: forward, then the
//                                                    gradients of features and offsets)
//                        roi_align_forward, roi_align_forward_backward
//                    variant: snip          (separable rows x columns per bin, all threads)
//                             snip_1thread  (the same, one thread)
//                             naive         (the original kernel run serially: one output
//                                            element at a time, sample by sample, one
//                                            thread, written below)
//
// Counters: speedup_vs_naive = t(naive) / t(variant), speedup_vs_1_thread (snip rows) and,
// for the deformable rows of snip, time_vs_roi_align = t(this) / t(RoIAlign's same pass,
// snip): wall times measured in this run, interleaved, best of 3 (as bench_roi does).
// Backward passes include zeroing the gradients (every variant alike). Before any timing,
// main() checks that snip and naive agree.
//
// Usage: bench_deform_roi_pool [--benchmark_min_time=0.5] [--benchmark_filter=REGEX]

#include <snip/core/parallel.hpp>
#include <snip/core/random.hpp>
#include <snip/core/version.hpp>
#include <snip/ops/deform_roi_pool.hpp>
#include <snip/ops/roi_align.hpp>

#include <benchmark/benchmark.h>

#include "common.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace {

// ---------------------------------------------------------------------------------
// The problem

constexpr int channels = 256, height = 32, width = 32;
constexpr int num_rois = 512;
constexpr double chip_side = 512.0;
constexpr double spatial_scale = 1.0 / 16.0;
constexpr int pooled = 7, samples = 4;
constexpr double trans_std = 0.1;
constexpr std::uint64_t seed = 2018;

struct problem {
    std::vector<float> features, rois, offsets, grad_out; ///< contiguous
    std::vector<float> out, grad_features, grad_offsets;

    snip::feature_view<const float> fview() const {
        return {features.data(), 1, channels, height, width};
    }
    snip::roi_view<const float> rview() const { return {rois.data(), num_rois}; }
    snip::feature_view<const float> oview() const {
        return {offsets.data(), num_rois, 2, pooled, pooled};
    }
    snip::feature_view<const float> gview() const {
        return {grad_out.data(), num_rois, channels, pooled, pooled};
    }
    snip::feature_view<float> outview() { return {out.data(), num_rois, channels, pooled, pooled}; }
    snip::feature_view<float> gfview() {
        return {grad_features.data(), 1, channels, height, width};
    }
    snip::feature_view<float> goview() {
        return {grad_offsets.data(), num_rois, 2, pooled, pooled};
    }
};

problem g_p;

/// Features and gradients uniform in [-1, 1); RoIs with sides log-uniform in [16, 512] chip
/// pixels, inside the chip; offsets uniform in [-1, 1) (moves of up to 0.1 RoI size).
void make_problem() {
    snip::splitmix64 g{seed};
    auto& p = g_p;
    p.features.resize(std::size_t(channels) * height * width);
    for (auto& v : p.features)
        v = float(g.uniform() * 2 - 1);
    p.rois.resize(std::size_t(num_rois) * 5);
    for (int k = 0; k < num_rois; ++k) {
        const double w = 16.0 * std::pow(32.0, g.uniform()), h = 16.0 * std::pow(32.0, g.uniform());
        const double x = g.uniform() * (chip_side - w), y = g.uniform() * (chip_side - h);
        const float r[5] = {0.0f, float(x), float(y), float(x + w), float(y + h)};
        std::copy(r, r + 5, p.rois.begin() + 5 * k);
    }
    p.offsets.resize(std::size_t(num_rois) * 2 * pooled * pooled);
    for (auto& v : p.offsets)
        v = float(g.uniform() * 2 - 1);
    const std::size_t nout = std::size_t(num_rois) * channels * pooled * pooled;
    p.grad_out.resize(nout);
    for (auto& v : p.grad_out)
        v = float(g.uniform() * 2 - 1);
    p.out.resize(nout);
    p.grad_features.resize(p.features.size());
    p.grad_offsets.resize(p.offsets.size());
}

snip::deform_roi_pool_options deform_options(bool with_offsets) {
    snip::deform_roi_pool_options o;
    o.spatial_scale = spatial_scale;
    o.output_dim = channels;
    o.group_size = 1;
    o.pooled_size = pooled;
    o.part_size = pooled;
    o.sample_per_part = samples;
    o.trans_std = trans_std;
    o.no_trans = !with_offsets;
    return o;
}

snip::roi_align_options align_options() {
    snip::roi_align_options o;
    o.pooled_h = o.pooled_w = pooled;
    o.spatial_scale = spatial_scale;
    o.sampling_ratio = 2;
    o.aligned = true;
    return o;
}

// ---------------------------------------------------------------------------------
// Naive baseline: the original CUDA kernel's loop body run serially (one output element at
// a time, sample by sample, everything recomputed), one thread, contiguous NCHW.

struct naive_bin {
    float x0, y0, sub_w, sub_h, roi_w, roi_h;
    int part;
};

naive_bin naive_locate(const float* r, const float* offsets, int k, int ph, int pw,
                       bool with_offsets) {
    const float s = float(spatial_scale);
    const float sx = std::round(r[1]) * s - 0.5f, sy = std::round(r[2]) * s - 0.5f;
    const float ex = (std::round(r[3]) + 1) * s - 0.5f, ey = (std::round(r[4]) + 1) * s - 0.5f;
    naive_bin b;
    b.roi_w = std::max(ex - sx, 0.1f);
    b.roi_h = std::max(ey - sy, 0.1f);
    const float bw = b.roi_w / pooled, bh = b.roi_h / pooled;
    b.sub_w = bw / samples;
    b.sub_h = bh / samples;
    b.part = ph * pooled + pw; // part size = pooled size
    float tx = 0, ty = 0;
    if (with_offsets) {
        tx = offsets[(k * 2 + 0) * pooled * pooled + b.part] * float(trans_std);
        ty = offsets[(k * 2 + 1) * pooled * pooled + b.part] * float(trans_std);
    }
    b.x0 = float(pw) * bw + sx + tx * b.roi_w;
    b.y0 = float(ph) * bh + sy + ty * b.roi_h;
    return b;
}

struct naive_sample {
    bool kept;
    int x0, x1, y0, y1;
    float dx, dy;
};
naive_sample naive_at(float w, float h) {
    naive_sample s{};
    if (w < -0.5f || w > width - 0.5f || h < -0.5f || h > height - 0.5f) return s;
    s.kept = true;
    w = std::min(std::max(w, 0.0f), float(width - 1));
    h = std::min(std::max(h, 0.0f), float(height - 1));
    s.x0 = int(std::floor(w));
    s.x1 = int(std::ceil(w));
    s.y0 = int(std::floor(h));
    s.y1 = int(std::ceil(h));
    s.dx = w - float(s.x0);
    s.dy = h - float(s.y0);
    return s;
}

void naive_forward(problem& p, bool with_offsets) {
    const std::size_t total = p.out.size();
    for (std::size_t i = 0; i < total; ++i) {
        const int pw = int(i % pooled), ph = int(i / pooled % pooled);
        const int c = int(i / (pooled * pooled) % channels);
        const int k = int(i / (std::size_t(pooled) * pooled * channels));
        const naive_bin b =
            naive_locate(p.rois.data() + 5 * k, p.offsets.data(), k, ph, pw, with_offsets);
        const float* plane = p.features.data() + std::size_t(c) * height * width;
        float sum = 0;
        int count = 0;
        for (int ih = 0; ih < samples; ++ih)
            for (int iw = 0; iw < samples; ++iw) {
                const naive_sample s = naive_at(b.x0 + iw * b.sub_w, b.y0 + ih * b.sub_h);
                if (!s.kept) continue;
                sum += (1 - s.dx) * (1 - s.dy) * plane[s.y0 * width + s.x0] +
                       (1 - s.dx) * s.dy * plane[s.y1 * width + s.x0] +
                       s.dx * (1 - s.dy) * plane[s.y0 * width + s.x1] +
                       s.dx * s.dy * plane[s.y1 * width + s.x1];
                ++count;
            }
        p.out[i] = count == 0 ? 0.0f : sum / float(count);
    }
}

void naive_backward(problem& p) {
    std::fill(p.grad_features.begin(), p.grad_features.end(), 0.0f);
    std::fill(p.grad_offsets.begin(), p.grad_offsets.end(), 0.0f);
    const std::size_t total = p.grad_out.size();
    for (std::size_t i = 0; i < total; ++i) {
        const int pw = int(i % pooled), ph = int(i / pooled % pooled);
        const int c = int(i / (pooled * pooled) % channels);
        const int k = int(i / (std::size_t(pooled) * pooled * channels));
        const naive_bin b = naive_locate(p.rois.data() + 5 * k, p.offsets.data(), k, ph, pw, true);
        const std::size_t base = std::size_t(c) * height * width;
        int count = 0;
        for (int ih = 0; ih < samples; ++ih)
            for (int iw = 0; iw < samples; ++iw)
                count += naive_at(b.x0 + iw * b.sub_w, b.y0 + ih * b.sub_h).kept;
        if (count == 0) continue;
        const float diff = p.grad_out[i] / float(count);
        for (int ih = 0; ih < samples; ++ih)
            for (int iw = 0; iw < samples; ++iw) {
                const naive_sample s = naive_at(b.x0 + iw * b.sub_w, b.y0 + ih * b.sub_h);
                if (!s.kept) continue;
                float* gf = p.grad_features.data() + base;
                gf[s.y0 * width + s.x0] += (1 - s.dx) * (1 - s.dy) * diff;
                gf[s.y1 * width + s.x0] += (1 - s.dx) * s.dy * diff;
                gf[s.y0 * width + s.x1] += s.dx * (1 - s.dy) * diff;
                gf[s.y1 * width + s.x1] += s.dx * s.dy * diff;
                const float* u = p.features.data() + base;
                const float u00 = u[s.y0 * width + s.x0], u01 = u[s.y1 * width + s.x0];
                const float u10 = u[s.y0 * width + s.x1], u11 = u[s.y1 * width + s.x1];
                p.grad_offsets[(k * 2 + 0) * pooled * pooled + b.part] +=
                    (u11 * s.dy + u10 * (1 - s.dy) - u01 * s.dy - u00 * (1 - s.dy)) *
                    float(trans_std) * diff * b.roi_w;
                p.grad_offsets[(k * 2 + 1) * pooled * pooled + b.part] +=
                    (u11 * s.dx + u01 * (1 - s.dx) - u10 * s.dx - u00 * (1 - s.dx)) *
                    float(trans_std) * diff * b.roi_h;
            }
    }
}

// ---------------------------------------------------------------------------------
// snip

void snip_forward(problem& p, bool with_offsets, unsigned threads) {
    snip::deform_roi_pool(p.fview(), p.rview(), p.oview(), p.outview(),
                          deform_options(with_offsets), threads);
}
void snip_backward(problem& p, unsigned threads) {
    std::fill(p.grad_features.begin(), p.grad_features.end(), 0.0f);
    std::fill(p.grad_offsets.begin(), p.grad_offsets.end(), 0.0f);
    snip::deform_roi_pool_backward(p.gview(), p.fview(), p.rview(), p.oview(), p.gfview(),
                                   p.goview(), deform_options(true), threads);
}
void align_forward(problem& p) {
    snip::roi_align(p.fview(), p.rview(), p.outview(), align_options(), 0);
}
void align_backward(problem& p) {
    std::fill(p.grad_features.begin(), p.grad_features.end(), 0.0f);
    snip::roi_align_backward(p.gview(), p.rview(), p.gfview(), align_options(), 0);
}

// ---------------------------------------------------------------------------------
// Ops, variants and the in-run ratios

struct variant {
    std::string name;
    std::function<void()> run; ///< one full pass
};
struct op_bench {
    std::string name;
    std::vector<variant> variants;
    std::string align; ///< the RoIAlign op of the same pass ("" for none)
};
std::vector<op_bench> g_ops;

void register_ops() {
    auto& p = g_p;
    g_ops.push_back({"deform_forward_no_offsets",
                     {{"snip", [&p] { snip_forward(p, false, 0); }},
                      {"snip_1thread", [&p] { snip_forward(p, false, 1); }},
                      {"naive", [&p] { naive_forward(p, false); }}},
                     "roi_align_forward"});
    g_ops.push_back({"deform_forward",
                     {{"snip", [&p] { snip_forward(p, true, 0); }},
                      {"snip_1thread", [&p] { snip_forward(p, true, 1); }},
                      {"naive", [&p] { naive_forward(p, true); }}},
                     "roi_align_forward"});
    g_ops.push_back({"deform_forward_backward",
                     {{"snip",
                       [&p] {
                           snip_forward(p, true, 0);
                           snip_backward(p, 0);
                       }},
                      {"snip_1thread",
                       [&p] {
                           snip_forward(p, true, 1);
                           snip_backward(p, 1);
                       }},
                      {"naive",
                       [&p] {
                           naive_forward(p, true);
                           naive_backward(p);
                       }}},
                     "roi_align_forward_backward"});
    g_ops.push_back({"roi_align_forward", {{"snip", [&p] { align_forward(p); }}}, ""});
    g_ops.push_back({"roi_align_forward_backward",
                     {{"snip",
                       [&p] {
                           align_forward(p);
                           align_backward(p);
                       }}},
                     ""});
}

/// Wall seconds per pass of every variant of `op`: each variant repeated for at least
/// 0.1 s, best of 3 rounds, variants interleaved within a round. Measured once per op.
const std::map<std::string, double>& measured_times(const op_bench& op) {
    static std::map<std::string, std::map<std::string, double>> cache;
    if (auto it = cache.find(op.name); it != cache.end()) return it->second;
    std::vector<const std::function<void()>*> runs;
    for (const auto& v : op.variants) runs.push_back(&v.run);
    const std::vector<double> best = snip_bench::interleaved_best_times(runs, 3, 0.1);
    std::map<std::string, double> t;
    for (std::size_t i = 0; i < op.variants.size(); ++i) t[op.variants[i].name] = best[i];
    return cache.emplace(op.name, std::move(t)).first->second;
}

const op_bench* find_op(const std::string& name) {
    for (const auto& op : g_ops)
        if (op.name == name) return &op;
    return nullptr;
}

void bm_variant(benchmark::State& state, const op_bench* op, const variant* v) {
    snip_bench::warm_loop(state, v->run);
    state.counters["rois/s"] =
        benchmark::Counter(double(num_rois), benchmark::Counter::kIsIterationInvariantRate);
    const auto& t = measured_times(*op);
    const double self = t.at(v->name);
    if (v->name != "naive" && t.count("naive"))
        state.counters["speedup_vs_naive"] = t.at("naive") / self;
    if (v->name == "snip" && t.count("snip_1thread"))
        state.counters["speedup_vs_1_thread"] = t.at("snip_1thread") / self;
    if (v->name == "snip" && !op->align.empty())
        if (const op_bench* a = find_op(op->align))
            state.counters["time_vs_roi_align"] = self / measured_times(*a).at("snip");
}

// ---------------------------------------------------------------------------------
// The guard: snip and naive agree

using snip_bench::max_abs_diff;

bool check_agreement() {
    auto& p = g_p;
    bool ok = true;
    auto report = [&](const char* what, double diff, double tol) {
        std::printf("[check] %s: snip vs naive max |difference| %.3g (tolerance %.1g)\n", what,
                    diff, tol);
        ok = ok && diff <= tol;
    };
    for (bool with : {false, true}) {
        snip_forward(p, with, 0);
        const auto a = p.out;
        naive_forward(p, with);
        report(with ? "forward" : "forward_no_offsets", max_abs_diff(a, p.out), 1e-5);
    }
    snip_backward(p, 0);
    const auto gf = p.grad_features, go = p.grad_offsets;
    naive_backward(p);
    report("backward (features)", max_abs_diff(gf, p.grad_features), 1e-4);
    report("backward (offsets)", max_abs_diff(go, p.grad_offsets), 1e-3);
    return ok;
}

/// Mean RoI size on the feature map.
std::string roi_summary() {
    double w = 0, h = 0;
    for (int k = 0; k < num_rois; ++k) {
        w += (g_p.rois[5 * k + 3] - g_p.rois[5 * k + 1]) * spatial_scale;
        h += (g_p.rois[5 * k + 4] - g_p.rois[5 * k + 2]) * spatial_scale;
    }
    return snip::concat(num_rois, " RoIs, sides log-uniform in [16, 512] chip px inside ",
                        chip_side, " x ", chip_side, " (seed ", seed, "), mean ", w / num_rois,
                        " x ", h / num_rois, " feature px");
}

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (argc > 1) {
        std::fprintf(stderr,
                     "bench_deform_roi_pool: unknown argument '%s'\nusage: %s [benchmark flags]\n",
                     argv[1], argv[0]);
        return 2;
    }
    make_problem();
    if (!check_agreement()) {
        std::fprintf(stderr, "bench_deform_roi_pool: snip and the naive baseline disagree\n");
        return 1;
    }
    register_ops();

    snip_bench::add_build_context();
    benchmark::AddCustomContext("threads_snip", std::to_string(snip::resolve_threads(0)));
    benchmark::AddCustomContext("features", snip::concat("1 x ", channels, " x ", height, " x ",
                                                         width, " float32, contiguous NCHW"));
    benchmark::AddCustomContext("rois", roi_summary());
    benchmark::AddCustomContext(
        "deform_roi_pool", snip::concat("output ", pooled, " x ", pooled, ", parts ", pooled, " x ",
                                        pooled, ", group_size 1, sample_per_part ", samples,
                                        ", spatial_scale 1/", 1.0 / spatial_scale, ", trans_std ",
                                        trans_std, ", offsets uniform in [-1, 1)"));
    benchmark::AddCustomContext("roi_align",
                                snip::concat("output ", pooled, " x ", pooled,
                                             ", sampling_ratio 2, aligned, same features/RoIs"));
    benchmark::AddCustomContext(
        "ratios", "speedup_* and time_vs_roi_align counters: interleaved best-of-3 wall times "
                  "measured in this run; backward rows include zeroing the gradients");

    for (const auto& op : g_ops)
        for (const auto& v : op.variants)
            benchmark::RegisterBenchmark(
                (op.name + "/" + v.name).c_str(),
                [o = &op, vv = &v](benchmark::State& s) { bm_variant(s, o, vv); })
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();

    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
