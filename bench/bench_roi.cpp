// bench_roi: RoIAlign and RoIPool, forward and backward, on a Faster R-CNN-sized problem:
// 512 RoIs on 1 x 256 x 64 x 64 float features (stride 16 of a 1024 x 1024 image), 7 x 7
// output; RoIAlign with sampling ratio 2, aligned.
//
//   <op>/<variant>     op: roi_align_forward, roi_align_backward, roi_pool_forward,
//                          roi_pool_backward
//                      variant: snip          (precomputed taps/bins, all threads)
//                               snip_1thread  (the same, one thread)
//                               naive         (per-output-element recomputation, one
//                                              thread, written below)
//
// Counters: speedup_vs_naive = t(naive) / t(variant) and, for snip, speedup_vs_1_thread =
// t(snip_1thread) / t(snip): wall times of all variants of one op measured in this run,
// interleaved, best of 3 (as bench_chips does). Backward passes include zeroing the 4 MiB
// feature gradient (every variant alike). Before any timing, main() checks that snip and
// naive agree on every output.
//
// To add a row (e.g. torchvision's kernels), append a variant to an op in register_ops():
// {name, function running one pass}; its speed-ups appear automatically.
//
// Usage: bench_roi [--benchmark_min_time=0.5] [--benchmark_filter=REGEX]

#include <snip/core/parallel.hpp>
#include <snip/core/version.hpp>
#include <snip/core/random.hpp>
#include <snip/ops/roi_align.hpp>
#include <snip/ops/roi_pool.hpp>

#include <benchmark/benchmark.h>

#include "common.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

// ---------------------------------------------------------------------------------
// The problem

constexpr int batch = 1, channels = 256, height = 64, width = 64;
constexpr int num_rois = 512;
constexpr double image_side = 1024.0;
constexpr double spatial_scale = 1.0 / 16.0;
constexpr int pooled = 7;
constexpr int sampling_ratio = 2;
constexpr bool aligned = true;
constexpr std::uint64_t seed = 2017;

struct problem {
    std::vector<float> features;      ///< contiguous N x C x H x W
    std::vector<float> rois;          ///< contiguous K x 5
    std::vector<float> grad_out;      ///< contiguous K x C x 7 x 7
    std::vector<std::int32_t> argmax; ///< RoIPool's, for its backward
    std::vector<float> out, grad_features;
    std::vector<std::int32_t> out_argmax;

    snip::feature_view<const float> fview() const {
        return {features.data(), batch, channels, height, width};
    }
    snip::roi_view<const float> rview() const { return {rois.data(), num_rois}; }
    snip::feature_view<const float> gview() const {
        return {grad_out.data(), num_rois, channels, pooled, pooled};
    }
    snip::feature_view<float> oview() { return {out.data(), num_rois, channels, pooled, pooled}; }
    snip::feature_view<std::int32_t> aview() {
        return {out_argmax.data(), num_rois, channels, pooled, pooled};
    }
    snip::feature_view<float> gfview() {
        return {grad_features.data(), batch, channels, height, width};
    }
};

problem g_p;

/// Features uniform in [-1, 1); RoIs with sides log-uniform in [16, 512] image pixels, placed
/// uniformly inside the 1024 x 1024 image; gradients uniform in [-1, 1).
void make_problem() {
    snip::splitmix64 g{seed};
    auto& p = g_p;
    p.features.resize(std::size_t(batch) * channels * height * width);
    for (auto& v : p.features)
        v = float(g.uniform() * 2 - 1);
    p.rois.resize(std::size_t(num_rois) * 5);
    for (int k = 0; k < num_rois; ++k) {
        const double w = 16.0 * std::pow(32.0, g.uniform()), h = 16.0 * std::pow(32.0, g.uniform());
        const double x = g.uniform() * (image_side - w), y = g.uniform() * (image_side - h);
        const float r[5] = {float(g.below(batch)), float(x), float(y), float(x + w), float(y + h)};
        std::copy(r, r + 5, p.rois.begin() + 5 * k);
    }
    const std::size_t nout = std::size_t(num_rois) * channels * pooled * pooled;
    p.grad_out.resize(nout);
    for (auto& v : p.grad_out)
        v = float(g.uniform() * 2 - 1);
    p.out.resize(nout);
    p.out_argmax.resize(nout);
    p.grad_features.resize(p.features.size());
}

snip::roi_align_options align_options() {
    snip::roi_align_options o;
    o.pooled_h = o.pooled_w = pooled;
    o.spatial_scale = spatial_scale;
    o.sampling_ratio = sampling_ratio;
    o.aligned = aligned;
    return o;
}
snip::roi_pool_options pool_options() {
    snip::roi_pool_options o;
    o.pooled_h = o.pooled_w = pooled;
    o.spatial_scale = spatial_scale;
    return o;
}

// ---------------------------------------------------------------------------------
// Naive baselines: one output element at a time, everything recomputed, one thread,
// contiguous NCHW (the structure of a one-thread-per-element GPU kernel run serially).

float naive_bilinear(const float* plane, float y, float x) {
    if (y < -1.0f || y > float(height) || x < -1.0f || x > float(width)) return 0.0f;
    y = std::max(y, 0.0f);
    x = std::max(x, 0.0f);
    int y0 = int(y), x0 = int(x), y1, x1;
    if (y0 >= height - 1) {
        y0 = y1 = height - 1;
        y = float(y0);
    } else {
        y1 = y0 + 1;
    }
    if (x0 >= width - 1) {
        x0 = x1 = width - 1;
        x = float(x0);
    } else {
        x1 = x0 + 1;
    }
    const float ly = y - float(y0), lx = x - float(x0), hy = 1 - ly, hx = 1 - lx;
    return hy * hx * plane[y0 * width + x0] + hy * lx * plane[y0 * width + x1] +
           ly * hx * plane[y1 * width + x0] + ly * lx * plane[y1 * width + x1];
}

struct naive_align_geometry {
    float sy, sx, bh, bw;
    int gh, gw;
    float count;
};
naive_align_geometry naive_geometry(const float* r) {
    const float s = float(spatial_scale), off = aligned ? 0.5f : 0.0f;
    naive_align_geometry g;
    g.sx = r[1] * s - off;
    g.sy = r[2] * s - off;
    float w = r[3] * s - off - g.sx, h = r[4] * s - off - g.sy;
    if (!aligned) {
        w = std::max(w, 1.0f);
        h = std::max(h, 1.0f);
    }
    g.bh = h / pooled;
    g.bw = w / pooled;
    g.gh = sampling_ratio > 0 ? sampling_ratio : int(std::ceil(h / pooled));
    g.gw = sampling_ratio > 0 ? sampling_ratio : int(std::ceil(w / pooled));
    g.count = float(std::max(g.gh * g.gw, 1));
    return g;
}

void naive_align_forward(problem& p) {
    const std::size_t total = p.out.size();
    for (std::size_t i = 0; i < total; ++i) {
        const int pw = int(i % pooled), ph = int(i / pooled % pooled);
        const int c = int(i / (pooled * pooled) % channels);
        const std::size_t k = i / (std::size_t(pooled) * pooled * channels);
        const float* r = p.rois.data() + 5 * k;
        const naive_align_geometry g = naive_geometry(r);
        const float* plane =
            p.features.data() + (std::size_t(r[0]) * channels + c) * height * width;
        float sum = 0;
        for (int iy = 0; iy < g.gh; ++iy)
            for (int ix = 0; ix < g.gw; ++ix)
                sum += naive_bilinear(plane, g.sy + ph * g.bh + (iy + 0.5f) * g.bh / g.gh,
                                      g.sx + pw * g.bw + (ix + 0.5f) * g.bw / g.gw);
        p.out[i] = sum / g.count;
    }
}

void naive_align_backward(problem& p) {
    std::fill(p.grad_features.begin(), p.grad_features.end(), 0.0f);
    const std::size_t total = p.grad_out.size();
    for (std::size_t i = 0; i < total; ++i) {
        const int pw = int(i % pooled), ph = int(i / pooled % pooled);
        const int c = int(i / (pooled * pooled) % channels);
        const std::size_t k = i / (std::size_t(pooled) * pooled * channels);
        const float* r = p.rois.data() + 5 * k;
        const naive_align_geometry g = naive_geometry(r);
        float* plane = p.grad_features.data() + (std::size_t(r[0]) * channels + c) * height * width;
        const float grad = p.grad_out[i];
        for (int iy = 0; iy < g.gh; ++iy)
            for (int ix = 0; ix < g.gw; ++ix) {
                float y = g.sy + ph * g.bh + (iy + 0.5f) * g.bh / g.gh;
                float x = g.sx + pw * g.bw + (ix + 0.5f) * g.bw / g.gw;
                if (y < -1.0f || y > float(height) || x < -1.0f || x > float(width)) continue;
                y = std::max(y, 0.0f);
                x = std::max(x, 0.0f);
                int y0 = int(y), x0 = int(x), y1, x1;
                if (y0 >= height - 1) {
                    y0 = y1 = height - 1;
                    y = float(y0);
                } else {
                    y1 = y0 + 1;
                }
                if (x0 >= width - 1) {
                    x0 = x1 = width - 1;
                    x = float(x0);
                } else {
                    x1 = x0 + 1;
                }
                const float ly = y - float(y0), lx = x - float(x0), hy = 1 - ly, hx = 1 - lx;
                plane[y0 * width + x0] += grad * (hy * hx) / g.count;
                plane[y0 * width + x1] += grad * (hy * lx) / g.count;
                plane[y1 * width + x0] += grad * (ly * hx) / g.count;
                plane[y1 * width + x1] += grad * (ly * lx) / g.count;
            }
    }
}

void naive_pool_forward(problem& p) {
    const std::size_t total = p.out.size();
    for (std::size_t i = 0; i < total; ++i) {
        const int pw = int(i % pooled), ph = int(i / pooled % pooled);
        const int c = int(i / (pooled * pooled) % channels);
        const std::size_t k = i / (std::size_t(pooled) * pooled * channels);
        const float* r = p.rois.data() + 5 * k;
        const float s = float(spatial_scale);
        const int sx = int(std::round(r[1] * s)), sy = int(std::round(r[2] * s));
        const int ex = int(std::round(r[3] * s)), ey = int(std::round(r[4] * s));
        const float bw = float(std::max(ex - sx + 1, 1)) / pooled;
        const float bh = float(std::max(ey - sy + 1, 1)) / pooled;
        const int y0 = std::clamp(int(std::floor(ph * bh)) + sy, 0, height);
        const int y1 = std::clamp(int(std::ceil((ph + 1) * bh)) + sy, 0, height);
        const int x0 = std::clamp(int(std::floor(pw * bw)) + sx, 0, width);
        const int x1 = std::clamp(int(std::ceil((pw + 1) * bw)) + sx, 0, width);
        const float* plane =
            p.features.data() + (std::size_t(r[0]) * channels + c) * height * width;
        float best = (y1 <= y0 || x1 <= x0) ? 0.0f : -FLT_MAX;
        std::int32_t arg = -1;
        for (int y = y0; y < y1; ++y)
            for (int x = x0; x < x1; ++x)
                if (plane[y * width + x] > best) {
                    best = plane[y * width + x];
                    arg = y * width + x;
                }
        p.out[i] = best;
        p.out_argmax[i] = arg;
    }
}

void naive_pool_backward(problem& p) {
    std::fill(p.grad_features.begin(), p.grad_features.end(), 0.0f);
    const std::size_t total = p.grad_out.size();
    for (std::size_t i = 0; i < total; ++i) {
        const int c = int(i / (pooled * pooled) % channels);
        const std::size_t k = i / (std::size_t(pooled) * pooled * channels);
        const std::int32_t a = p.argmax[i];
        if (a < 0) continue;
        p.grad_features[(std::size_t(p.rois[5 * k]) * channels + c) * height * width +
                        std::size_t(a)] += p.grad_out[i];
    }
}

// ---------------------------------------------------------------------------------
// snip

void snip_align_forward(problem& p, unsigned threads) {
    snip::roi_align(p.fview(), p.rview(), p.oview(), align_options(), threads);
}
void snip_align_backward(problem& p, unsigned threads) {
    std::fill(p.grad_features.begin(), p.grad_features.end(), 0.0f);
    snip::roi_align_backward(p.gview(), p.rview(), p.gfview(), align_options(), threads);
}
void snip_pool_forward(problem& p, unsigned threads) {
    snip::roi_pool(p.fview(), p.rview(), p.oview(), p.aview(), pool_options(), threads);
}
void snip_pool_backward(problem& p, unsigned threads) {
    std::fill(p.grad_features.begin(), p.grad_features.end(), 0.0f);
    snip::roi_pool_backward(
        p.gview(), p.rview(),
        snip::feature_view<const std::int32_t>(p.argmax.data(), num_rois, channels, pooled, pooled),
        p.gfview(), pool_options(), threads);
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
};
std::vector<op_bench> g_ops;

void register_ops() {
    auto& p = g_p;
    g_ops.push_back({"roi_align_forward",
                     {{"snip", [&p] { snip_align_forward(p, 0); }},
                      {"snip_1thread", [&p] { snip_align_forward(p, 1); }},
                      {"naive", [&p] { naive_align_forward(p); }}}});
    g_ops.push_back({"roi_align_backward",
                     {{"snip", [&p] { snip_align_backward(p, 0); }},
                      {"snip_1thread", [&p] { snip_align_backward(p, 1); }},
                      {"naive", [&p] { naive_align_backward(p); }}}});
    g_ops.push_back({"roi_pool_forward",
                     {{"snip", [&p] { snip_pool_forward(p, 0); }},
                      {"snip_1thread", [&p] { snip_pool_forward(p, 1); }},
                      {"naive", [&p] { naive_pool_forward(p); }}}});
    g_ops.push_back({"roi_pool_backward",
                     {{"snip", [&p] { snip_pool_backward(p, 0); }},
                      {"snip_1thread", [&p] { snip_pool_backward(p, 1); }},
                      {"naive", [&p] { naive_pool_backward(p); }}}});
}

/// Wall seconds per pass of every variant of `op`: each variant repeated for at least
/// 0.1 s, best of 3 rounds, variants interleaved within a round so that a burst of load from
/// other processes hits all alike. Measured once per op per run.
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
    snip_align_forward(p, 0);
    const auto fa = p.out;
    naive_align_forward(p);
    report("roi_align_forward", max_abs_diff(fa, p.out), 1e-5);
    snip_align_backward(p, 0);
    const auto ga = p.grad_features;
    naive_align_backward(p);
    report("roi_align_backward", max_abs_diff(ga, p.grad_features), 1e-4);
    snip_pool_forward(p, 0);
    const auto fp = p.out;
    const auto ap = p.out_argmax;
    naive_pool_forward(p);
    report("roi_pool_forward", max_abs_diff(fp, p.out), 0.0);
    if (ap != p.out_argmax) {
        std::printf("[check] roi_pool_forward: argmax DIFFERS\n");
        ok = false;
    }
    p.argmax = ap; // the input of the RoIPool backward rows
    snip_pool_backward(p, 0);
    const auto gp = p.grad_features;
    naive_pool_backward(p);
    report("roi_pool_backward", max_abs_diff(gp, p.grad_features), 1e-5);
    return ok;
}

/// Mean RoI size on the feature map and the share of RoIAlign samples that fall inside.
std::string roi_summary() {
    double w = 0, h = 0;
    for (int k = 0; k < num_rois; ++k) {
        w += (g_p.rois[5 * k + 3] - g_p.rois[5 * k + 1]) * spatial_scale;
        h += (g_p.rois[5 * k + 4] - g_p.rois[5 * k + 2]) * spatial_scale;
    }
    return snip::concat(num_rois, " RoIs, sides log-uniform in [16, 512] image px inside ",
                                image_side, " x ", image_side, " (seed ", seed, "), mean ",
                                w / num_rois, " x ", h / num_rois, " feature px");
}

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (argc > 1) {
        std::fprintf(stderr, "bench_roi: unknown argument '%s'\nusage: %s [benchmark flags]\n",
                     argv[1], argv[0]);
        return 2;
    }
    make_problem();
    if (!check_agreement()) {
        std::fprintf(stderr, "bench_roi: snip and the naive baseline disagree\n");
        return 1;
    }
    register_ops();

    snip_bench::add_build_context();
    benchmark::AddCustomContext("threads_snip", std::to_string(snip::resolve_threads(0)));
    benchmark::AddCustomContext("features",
                                snip::concat(batch, " x ", channels, " x ", height, " x ",
                                                     width, " float32, contiguous NCHW"));
    benchmark::AddCustomContext("rois", roi_summary());
    benchmark::AddCustomContext(
        "roi_align", snip::concat("output ", pooled, " x ", pooled, ", spatial_scale 1/",
                                          1.0 / spatial_scale, ", sampling_ratio ", sampling_ratio,
                                          ", aligned ", aligned ? "true" : "false"));
    benchmark::AddCustomContext("roi_pool",
                                snip::concat("output ", pooled, " x ", pooled,
                                                     ", spatial_scale 1/", 1.0 / spatial_scale));
    benchmark::AddCustomContext(
        "ratios", "speedup_* counters: interleaved best-of-3 wall times measured in this run; "
                  "backward rows include zeroing the feature gradient");

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
