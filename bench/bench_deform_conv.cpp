// bench_deform_conv: snip's deformable convolution v1 on the CPU against torchvision 0.14's
// compiled CPU deform_conv2d (use_mask = false) in the same process, on the same tensors, and
// against two baselines:
//
//   <problem>/<op>/<impl>
//     problem  res5   N=1, C=512, O=512, 32 x 32 map, 3 x 3 kernel, dilation 2, padding 2,
//                     offset_groups 4: the conv2 of a ResNet-101 res5 bottleneck made
//                     deformable, on a 512 x 512 chip at stride 16 (dilated res5)
//              small  N=2, C=64, O=64, 32 x 32 map, 3 x 3, padding 1, offset_groups 1
//     op       forward            the output (bias included)
//              forward_backward   the output, then the gradients of input, weight, offset and
//                                 bias for a random output gradient
//     impl     snip               snip::torch_ops (snip's threaded column fill and scatter,
//                                 LibTorch's GEMM): deform_conv2d_forward, deform_conv2d_backward
//              torchvision        torchvision::deform_conv2d, torchvision::_deform_conv2d_backward
//                                 through the dispatcher
//              snip_no_blas       snip::deform_conv2d / deform_conv2d_backward of
//                                 ops/deform_conv.hpp: the header-only path (same columns, a
//                                 plain threaded multiply loop instead of a GEMM)
//              naive              small problem, forward only: one output element at a time,
//                                 every bilinear sample recomputed (the textbook loop, 1 thread)
//
// Counters: over_snip = t(impl) / t(snip) of the same problem and op (1 on snip's own rows):
// wall times measured in this run, interleaved, best of 3 rounds of >= 0.2 s each. All rows
// use every hardware thread (at::set_num_threads; snip's ops follow at::get_num_threads()).
// Before any timing, main() checks that snip and torchvision agree on both problems.
//
// Built without LibTorch (SNIP_WITH_TORCH undefined) this program only prints a skip message;
// without torchvision's library it prints "[skip] torchvision ops not found".
//
// Usage: bench_deform_conv [--benchmark_filter=REGEX]

#include <benchmark/benchmark.h>

#include "common.hpp"

#include <cstdio>

#ifndef SNIP_WITH_TORCH

int main() {
    std::printf("[skip] bench_deform_conv: built without LibTorch; configure with "
                "-DSNIP_ENABLE_TORCH=ON to compare snip with torchvision\n");
    return 0;
}

#else

#include <snip/ops/deform_conv.hpp>
#include <snip/torch/ops.hpp>

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

namespace ops = snip::torch_ops;

struct problem {
    std::string name;
    std::int64_t n, c, o, h, w, k, pad, dil, offset_groups;
    at::Tensor x, weight, offset, bias, grad;
    snip::deform_conv_options opts() const {
        snip::deform_conv_options d;
        d.pad_h = d.pad_w = int(pad);
        d.dilation_h = d.dilation_w = int(dil);
        d.offset_groups = int(offset_groups);
        return d;
    }
    std::int64_t out() const { return (h + 2 * pad - (dil * (k - 1) + 1)) + 1; }
    std::string text() const {
        return snip::concat("N=", n, " C=", c, " O=", o, " ", h, "x", w, " kernel ", k, "x", k,
                            " dilation ", dil, " pad ", pad, " offset_groups ", offset_groups,
                            " float32");
    }
};
std::vector<problem> g_problems;

void make_problems() {
    g_problems = {{"res5", 1, 512, 512, 32, 32, 3, 2, 2, 4, {}, {}, {}, {}, {}},
                  {"small", 2, 64, 64, 32, 32, 3, 1, 1, 1, {}, {}, {}, {}, {}}};
    at::manual_seed(2017);
    for (problem& p : g_problems) {
        p.x = at::randn({p.n, p.c, p.h, p.w});
        p.weight = at::randn({p.o, p.c, p.k, p.k}) * (1.0 / std::sqrt(double(p.c * p.k * p.k)));
        p.offset = at::randn({p.n, 2 * p.offset_groups * p.k * p.k, p.out(), p.out()}) * 2.0;
        p.bias = at::randn({p.o});
        p.grad = at::randn({p.n, p.o, p.out(), p.out()});
    }
}

// ---------------------------------------------------------------------------------
// The implementations

std::string g_tv_status;

using snip_bench::tv_op;

at::Tensor tv_forward(const problem& p) {
    static const auto op =
        tv_op("torchvision::deform_conv2d")
            .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                              const at::Tensor&, const at::Tensor&, std::int64_t, std::int64_t,
                              std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                              std::int64_t, std::int64_t, bool)>();
    return op.call(p.x, p.weight, p.offset, at::zeros({p.n, 1}), p.bias, 1, 1, p.pad, p.pad, p.dil,
                   p.dil, 1, p.offset_groups, false);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> tv_backward(const problem& p) {
    static const auto op =
        tv_op("torchvision::_deform_conv2d_backward")
            .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
                const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                const at::Tensor&, const at::Tensor&, std::int64_t, std::int64_t, std::int64_t,
                std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, bool)>();
    return op.call(p.grad, p.x, p.weight, p.offset, at::zeros({p.n, 1}), p.bias, 1, 1, p.pad, p.pad,
                   p.dil, p.dil, 1, p.offset_groups, false);
}

at::Tensor snip_forward(const problem& p) {
    return ops::deform_conv2d_forward(p.x, p.weight, p.offset, p.bias, p.opts());
}

void snip_backward(const problem& p) {
    benchmark::DoNotOptimize(ops::deform_conv2d_backward(p.grad, p.x, p.weight, p.offset, p.opts()));
}

at::Tensor core_forward(const problem& p) {
    at::Tensor out = at::empty({p.n, p.o, p.out(), p.out()});
    snip::deform_conv2d(snip::as_feature_view<const float>(p.x),
                        snip::as_feature_view<const float>(p.weight),
                        snip::as_feature_view<const float>(p.offset),
                        std::span<const float>(p.bias.data_ptr<float>(), std::size_t(p.o)),
                        snip::as_feature_view<float>(out), p.opts(), ops::op_threads());
    return out;
}

void core_backward(const problem& p) {
    at::Tensor gi = at::zeros_like(p.x), gw = at::zeros_like(p.weight),
               goff = at::zeros_like(p.offset), gb = at::zeros_like(p.bias);
    snip::deform_conv2d_backward(
        snip::as_feature_view<const float>(p.grad), snip::as_feature_view<const float>(p.x),
        snip::as_feature_view<const float>(p.weight), snip::as_feature_view<const float>(p.offset),
        snip::as_feature_view<float>(gi), snip::as_feature_view<float>(gw),
        snip::as_feature_view<float>(goff), std::span<float>(gb.data_ptr<float>(), std::size_t(p.o)),
        p.opts(), ops::op_threads());
    benchmark::DoNotOptimize(gi.data_ptr<float>());
}

/// The textbook loop: every output element sums C x k x k bilinear samples, each computed
/// from scratch (torchvision's bilinear rule), one thread.
at::Tensor naive_forward(const problem& p) {
    at::Tensor out = at::empty({p.n, p.o, p.out(), p.out()});
    const float* x = p.x.data_ptr<float>();
    const float* w = p.weight.data_ptr<float>();
    const float* off = p.offset.data_ptr<float>();
    const float* b = p.bias.data_ptr<float>();
    float* y = out.data_ptr<float>();
    const std::int64_t H = p.h, W = p.w, K = p.k, Ho = p.out(), Wo = p.out();
    const std::int64_t cpg = p.c / p.offset_groups;
    auto sample = [&](const float* plane, float sy, float sx) {
        if (sy <= -1 || sy >= float(H) || sx <= -1 || sx >= float(W)) return 0.0f;
        const auto y0 = std::int64_t(std::floor(sy)), x0 = std::int64_t(std::floor(sx));
        const float ly = sy - float(y0), lx = sx - float(x0);
        auto at = [&](std::int64_t yy, std::int64_t xx) {
            return yy >= 0 && yy < H && xx >= 0 && xx < W ? plane[yy * W + xx] : 0.0f;
        };
        return (1 - ly) * (1 - lx) * at(y0, x0) + (1 - ly) * lx * at(y0, x0 + 1) +
               ly * (1 - lx) * at(y0 + 1, x0) + ly * lx * at(y0 + 1, x0 + 1);
    };
    for (std::int64_t n = 0; n < p.n; ++n)
        for (std::int64_t o = 0; o < p.o; ++o)
            for (std::int64_t oy = 0; oy < Ho; ++oy)
                for (std::int64_t ox = 0; ox < Wo; ++ox) {
                    float s = b[o];
                    for (std::int64_t c = 0; c < p.c; ++c)
                        for (std::int64_t i = 0; i < K; ++i)
                            for (std::int64_t j = 0; j < K; ++j) {
                                const std::int64_t ch = 2 * (((c / cpg) * K + i) * K + j);
                                const float* od = off + (n * 2 * p.offset_groups * K * K + ch) * Ho * Wo;
                                const float sy = float(oy - p.pad + i * p.dil) + od[oy * Wo + ox];
                                const float sx =
                                    float(ox - p.pad + j * p.dil) + od[Ho * Wo + oy * Wo + ox];
                                s += w[((o * p.c + c) * K + i) * K + j] *
                                     sample(x + (n * p.c + c) * H * W, sy, sx);
                            }
                    y[((n * p.o + o) * Ho + oy) * Wo + ox] = s;
                }
    return out;
}

// ---------------------------------------------------------------------------------
// Rows and the in-run ratios

struct row {
    std::string problem, op, impl;
    std::function<void()> run;
    std::string key() const { return problem + "/" + op; }
};
std::vector<row> g_rows;

void register_rows() {
    for (const problem& pr : g_problems) {
        const problem* p = &pr;
        auto add = [&](const char* op, const char* impl, std::function<void()> fn) {
            g_rows.push_back({p->name, op, impl, std::move(fn)});
        };
        add("forward", "snip", [p] { benchmark::DoNotOptimize(snip_forward(*p)); });
        add("forward", "torchvision", [p] { benchmark::DoNotOptimize(tv_forward(*p)); });
        add("forward", "snip_no_blas", [p] { benchmark::DoNotOptimize(core_forward(*p)); });
        if (p->name == "small")
            add("forward", "naive", [p] { benchmark::DoNotOptimize(naive_forward(*p)); });
        add("forward_backward", "snip", [p] {
            benchmark::DoNotOptimize(snip_forward(*p));
            snip_backward(*p);
        });
        add("forward_backward", "torchvision", [p] {
            benchmark::DoNotOptimize(tv_forward(*p));
            benchmark::DoNotOptimize(tv_backward(*p));
        });
        add("forward_backward", "snip_no_blas", [p] {
            benchmark::DoNotOptimize(core_forward(*p));
            core_backward(*p);
        });
    }
}

/// Wall seconds per call of every implementation of one (problem, op), interleaved within a
/// round, best of 3 rounds of >= 0.2 s each. Measured once.
const std::map<std::string, double>& measured(const std::string& key) {
    static std::map<std::string, std::map<std::string, double>> cache;
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    std::vector<const row*> rows;
    for (const row& r : g_rows)
        if (r.key() == key) rows.push_back(&r);
    std::vector<const std::function<void()>*> runs;
    for (const row* r : rows) runs.push_back(&r->run);
    const std::vector<double> t = snip_bench::interleaved_best_times(runs, 3, 0.2);
    std::map<std::string, double> best;
    for (std::size_t i = 0; i < rows.size(); ++i) best[rows[i]->impl] = t[i];
    return cache.emplace(key, std::move(best)).first->second;
}

void bm_row(benchmark::State& state, const row* r) {
    for (auto _ : state) {
        r->run();
        benchmark::ClobberMemory();
    }
    const auto& t = measured(r->key());
    state.counters["over_snip"] = t.at(r->impl) / t.at("snip");
    state.counters["ms"] = t.at(r->impl) * 1e3;
}

using snip_bench::max_abs;

bool check_agreement() {
    bool ok = true;
    for (const problem& p : g_problems) {
        auto report = [&](const char* what, double diff, double tol) {
            std::printf("[check] %s %s: snip vs torchvision max |difference| %.3g (tolerance "
                        "%.0e)\n",
                        p.name.c_str(), what, diff, tol);
            ok = ok && diff <= tol;
        };
        const at::Tensor want = tv_forward(p);
        report("forward", max_abs(snip_forward(p), want), 1e-4);
        report("forward (snip_no_blas)", max_abs(core_forward(p), want), 1e-4);
        if (p.name == "small") report("forward (naive)", max_abs(naive_forward(p), want), 1e-4);
        const auto [gi, gw, goff, gm, gb] = tv_backward(p);
        const auto [si, sw, soff, sb] = ops::deform_conv2d_backward(p.grad, p.x, p.weight,
                                                                    p.offset, p.opts());
        report("grad_input", max_abs(si, gi), 1e-4);
        report("grad_weight", max_abs(sw, gw) / (1 + gw.abs().max().item<double>()), 1e-5);
        report("grad_offset", max_abs(soff, goff), 1e-4);
        report("grad_bias", max_abs(sb, gb) / (1 + gb.abs().max().item<double>()), 1e-5);
    }
    return ok;
}

using snip_bench::all_threads;

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (argc > 1) {
        std::fprintf(stderr, "bench_deform_conv: unknown argument '%s'\n", argv[1]);
        return 2;
    }
    if (!snip_bench::load_torchvision(g_tv_status)) {
        std::printf("[skip] torchvision ops not found (%s): nothing to compare\n",
                    g_tv_status.c_str());
        return 0;
    }
    at::set_num_threads(all_threads());
    make_problems();
    if (!check_agreement()) {
        std::fprintf(stderr, "bench_deform_conv: snip and torchvision disagree\n");
        return 1;
    }
    register_rows();

    snip_bench::add_build_context();
    benchmark::AddCustomContext("libtorch", TORCH_VERSION);
    benchmark::AddCustomContext("torchvision_ops", g_tv_status);
    benchmark::AddCustomContext("threads", snip::concat(all_threads(), " (at::set_num_threads)"));
    for (const problem& p : g_problems)
        benchmark::AddCustomContext("problem_" + p.name, p.text());
    benchmark::AddCustomContext("ratio",
                                "over_snip = t(impl) / t(snip): interleaved, best of 3 rounds "
                                "of >= 0.2 s, measured in this run");

    for (const row& r : g_rows)
        benchmark::RegisterBenchmark((r.key() + "/" + r.impl).c_str(),
                                     [rp = &r](benchmark::State& s) { bm_row(s, rp); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(0.2);

    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

#endif // SNIP_WITH_TORCH
