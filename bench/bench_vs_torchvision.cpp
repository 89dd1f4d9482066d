// bench_vs_torchvision: snip's LibTorch ops (snip/torch/ops.hpp) against torchvision 0.14's
// compiled CPU ops in the same process, on the same tensors:
//
//   <op>/threads:<1|all>/<snip|torchvision>
//     roi_align_forward   512 RoIs on 1 x 256 x 64 x 64 float32 features (stride 16 of a
//     roi_align_backward  1024 x 1024 image), 7 x 7, sampling ratio 2, aligned
//     roi_pool_forward    the same RoIs and features, 7 x 7
//     roi_pool_backward
//     nms                 10,000 clustered detections, IoU threshold 0.7
//     box_iou             2,000 x 2,000 boxes: snip::iou_matrix vs torchvision's box_iou
//                         formula (Python-only in torchvision) in LibTorch operations
//
// snip runs through snip::torch_ops (forward: the autograd entry points roi_align/roi_pool,
// as torchvision's ops are called through their autograd kernels; backward: the backward
// kernels, like torchvision::_roi_*_backward); torchvision through the dispatcher. Both
// allocate their outputs (backward: zero-initialised feature gradients) in every pass.
// threads:1 sets at::set_num_threads(1) (snip's ops follow at::get_num_threads()); threads:all
// sets it to every hardware thread.
//
// Counter tv_over_snip = t(torchvision) / t(snip) of the same op and thread count, on both
// rows: wall times measured in this run, the two interleaved, best of 5 rounds of >= 0.1 s
// each (as bench_roi). Before any timing, main() checks that both give the same results.
//
// Built without LibTorch (SNIP_WITH_TORCH undefined) this program only prints a skip
// message; without torchvision's library it prints "[skip] torchvision ops not found".
//
// Usage: bench_vs_torchvision [--benchmark_min_time=0.5] [--benchmark_filter=REGEX]

#include <benchmark/benchmark.h>

#include "common.hpp"

#include <cstdio>

#ifndef SNIP_WITH_TORCH

int main() {
    std::printf("[skip] bench_vs_torchvision: built without LibTorch; configure with "
                "-DSNIP_ENABLE_TORCH=ON to compare snip with torchvision\n");
    return 0;
}

#else

#include <snip/core/random.hpp>
#include <snip/core/version.hpp>
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
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace {

namespace ops = snip::torch_ops;

// ---------------------------------------------------------------------------------
// The problems (RoI problem as bench_roi: same sizes, same generator and seed)

constexpr int batch = 1, channels = 256, height = 64, width = 64, num_rois = 512;
constexpr double image_side = 1024.0, spatial_scale = 1.0 / 16.0;
constexpr int pooled = 7, sampling_ratio = 2;
constexpr bool aligned = true;
constexpr std::uint64_t roi_seed = 2017;
constexpr int nms_boxes = 10000, nms_objects = 300, iou_side = 2000;
constexpr double nms_threshold = 0.7;

struct problem {
    at::Tensor features, rois, grad_out, argmax; // RoI ops
    at::Tensor nms_boxes, nms_scores;            // NMS
    at::Tensor iou_a, iou_b;                     // IoU
};
problem g_p;

/// Detections in a 1333 x 800 image: 85% jittered copies of `objects` objects (sides 16..400
/// px log-uniform, aspect 0.5..2, every edge moved by up to 20% of the side, score = object
/// confidence x 0.5..1), 15% background boxes with low scores; clipped to the image.
std::pair<at::Tensor, at::Tensor> clustered(int n, int objects, std::uint64_t seed) {
    snip::splitmix64 g{seed};
    auto uni = [&](double lo, double hi) { return lo + (hi - lo) * g.uniform(); };
    struct object {
        double x, y, w, h, conf;
    };
    std::vector<object> obj;
    for (int k = 0; k < objects; ++k) {
        const double side = 16.0 * std::pow(25.0, g.uniform()), aspect = std::pow(2.0, uni(-1, 1));
        const double w = side * std::sqrt(aspect), h = side / std::sqrt(aspect);
        obj.push_back({uni(0, 1333 - w), uni(0, 800 - h), w, h, uni(0.3, 1.0)});
    }
    std::vector<float> b, s;
    for (int i = 0; i < n; ++i) {
        double x1, y1, x2, y2, sc;
        if (g.uniform() < 0.15) {
            const double w = 16.0 * std::pow(25.0, g.uniform()),
                         h = 16.0 * std::pow(25.0, g.uniform());
            x1 = uni(0, 1333 - std::min(w, 1333.0));
            y1 = uni(0, 800 - std::min(h, 800.0));
            x2 = x1 + w, y2 = y1 + h, sc = uni(0.0, 0.3);
        } else {
            const object& o = obj[std::size_t(g.below(std::uint64_t(objects)))];
            const double jx = 0.2 * o.w, jy = 0.2 * o.h;
            x1 = o.x + uni(-jx, jx), y1 = o.y + uni(-jy, jy);
            x2 = o.x + o.w + uni(-jx, jx), y2 = o.y + o.h + uni(-jy, jy);
            sc = o.conf * uni(0.5, 1.0);
        }
        x1 = std::clamp(x1, 0.0, 1333.0), y1 = std::clamp(y1, 0.0, 800.0);
        x2 = std::max(x1, std::clamp(x2, 0.0, 1333.0)),
        y2 = std::max(y1, std::clamp(y2, 0.0, 800.0));
        b.insert(b.end(), {float(x1), float(y1), float(x2), float(y2)});
        s.push_back(float(sc));
    }
    return {at::tensor(b).reshape({n, 4}), at::tensor(s)};
}

void make_problem() {
    auto& p = g_p;
    snip::splitmix64 g{roi_seed};
    std::vector<float> f(std::size_t(batch) * channels * height * width);
    for (auto& v : f)
        v = float(g.uniform() * 2 - 1);
    p.features = at::tensor(f).reshape({batch, channels, height, width});
    std::vector<float> r;
    for (int k = 0; k < num_rois; ++k) {
        const double w = 16.0 * std::pow(32.0, g.uniform()), h = 16.0 * std::pow(32.0, g.uniform());
        const double x = g.uniform() * (image_side - w), y = g.uniform() * (image_side - h);
        r.insert(r.end(), {float(g.below(batch)), float(x), float(y), float(x + w), float(y + h)});
    }
    p.rois = at::tensor(r).reshape({num_rois, 5});
    std::vector<float> go(std::size_t(num_rois) * channels * pooled * pooled);
    for (auto& v : go)
        v = float(g.uniform() * 2 - 1);
    p.grad_out = at::tensor(go).reshape({num_rois, channels, pooled, pooled});
    std::tie(p.nms_boxes, p.nms_scores) = clustered(nms_boxes, nms_objects, 7);
    p.iou_a = clustered(iou_side, 200, 8).first;
    p.iou_b = clustered(iou_side, 200, 9).first;
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
// torchvision through the dispatcher

std::string g_tv_status;

using snip_bench::tv_op;

at::Tensor tv_roi_align(const at::Tensor& x, const at::Tensor& rois) {
    static const auto op = tv_op("torchvision::roi_align")
                               .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double,
                                                 std::int64_t, std::int64_t, std::int64_t, bool)>();
    return op.call(x, rois, spatial_scale, pooled, pooled, sampling_ratio, aligned);
}
at::Tensor tv_roi_align_backward(const at::Tensor& grad, const at::Tensor& rois) {
    static const auto op =
        tv_op("torchvision::_roi_align_backward")
            .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double, std::int64_t,
                              std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                              std::int64_t, bool)>();
    return op.call(grad, rois, spatial_scale, pooled, pooled, batch, channels, height, width,
                   sampling_ratio, aligned);
}
std::tuple<at::Tensor, at::Tensor> tv_roi_pool(const at::Tensor& x, const at::Tensor& rois) {
    static const auto op =
        tv_op("torchvision::roi_pool")
            .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, double,
                                                      std::int64_t, std::int64_t)>();
    return op.call(x, rois, spatial_scale, pooled, pooled);
}
at::Tensor tv_roi_pool_backward(const at::Tensor& grad, const at::Tensor& rois,
                                const at::Tensor& argmax) {
    static const auto op =
        tv_op("torchvision::_roi_pool_backward")
            .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                              std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                              std::int64_t)>();
    return op.call(grad, rois, argmax, spatial_scale, pooled, pooled, batch, channels, height,
                   width);
}
at::Tensor tv_nms(const at::Tensor& boxes, const at::Tensor& scores, double thr) {
    static const auto op =
        tv_op("torchvision::nms").typed<at::Tensor(const at::Tensor&, const at::Tensor&, double)>();
    return op.call(boxes, scores, thr);
}
/// torchvision.ops.box_iou, in LibTorch operations.
at::Tensor tv_box_iou(const at::Tensor& b1, const at::Tensor& b2) {
    const at::Tensor area1 =
        (b1.select(1, 2) - b1.select(1, 0)) * (b1.select(1, 3) - b1.select(1, 1));
    const at::Tensor area2 =
        (b2.select(1, 2) - b2.select(1, 0)) * (b2.select(1, 3) - b2.select(1, 1));
    const at::Tensor lt = at::max(b1.unsqueeze(1).slice(2, 0, 2), b2.slice(1, 0, 2));
    const at::Tensor rb = at::min(b1.unsqueeze(1).slice(2, 2, 4), b2.slice(1, 2, 4));
    const at::Tensor wh = (rb - lt).clamp_min(0);
    const at::Tensor inter = wh.select(2, 0) * wh.select(2, 1);
    return inter / (area1.unsqueeze(1) + area2 - inter);
}

// ---------------------------------------------------------------------------------
// Rows and the in-run ratios

struct row {
    std::string op;   ///< e.g. roi_align_forward
    int threads;      ///< at::set_num_threads value
    std::string impl; ///< snip | torchvision
    std::function<void()> run;
};
std::vector<row> g_rows;

using snip_bench::all_threads;

void register_rows() {
    auto& p = g_p;
    for (const int t : {1, all_threads()}) {
        auto add = [&](const char* op, std::function<void()> snip_fn, std::function<void()> tv_fn) {
            g_rows.push_back({op, t, "snip", std::move(snip_fn)});
            g_rows.push_back({op, t, "torchvision", std::move(tv_fn)});
        };
        add(
            "roi_align_forward",
            [&p] {
                benchmark::DoNotOptimize(ops::roi_align(p.features, p.rois, pooled, spatial_scale,
                                                        sampling_ratio, aligned));
            },
            [&p] { benchmark::DoNotOptimize(tv_roi_align(p.features, p.rois)); });
        add(
            "roi_align_backward",
            [&p] {
                benchmark::DoNotOptimize(ops::roi_align_backward(
                    p.grad_out, p.rois, align_options(), p.features.sizes()));
            },
            [&p] { benchmark::DoNotOptimize(tv_roi_align_backward(p.grad_out, p.rois)); });
        add(
            "roi_pool_forward",
            [&p] {
                benchmark::DoNotOptimize(ops::roi_pool(p.features, p.rois, pooled, spatial_scale));
            },
            [&p] { benchmark::DoNotOptimize(tv_roi_pool(p.features, p.rois)); });
        add(
            "roi_pool_backward",
            [&p] {
                benchmark::DoNotOptimize(ops::roi_pool_backward(
                    p.grad_out, p.rois, p.argmax, pool_options(), p.features.sizes()));
            },
            [&p] { benchmark::DoNotOptimize(tv_roi_pool_backward(p.grad_out, p.rois, p.argmax)); });
        add(
            "nms",
            [&p] { benchmark::DoNotOptimize(ops::nms(p.nms_boxes, p.nms_scores, nms_threshold)); },
            [&p] { benchmark::DoNotOptimize(tv_nms(p.nms_boxes, p.nms_scores, nms_threshold)); });
        add(
            "box_iou", [&p] { benchmark::DoNotOptimize(ops::box_iou(p.iou_a, p.iou_b)); },
            [&p] { benchmark::DoNotOptimize(tv_box_iou(p.iou_a, p.iou_b)); });
    }
}

/// Wall seconds per call of snip and torchvision for one (op, threads): each repeated for at
/// least 0.1 s, best of 5 rounds, the two interleaved within a round. Measured once.
std::pair<double, double> measured(const std::string& op, int threads) {
    static std::map<std::pair<std::string, int>, std::pair<double, double>> cache;
    const auto key = std::make_pair(op, threads);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    const row* pair[2] = {nullptr, nullptr};
    for (const row& r : g_rows)
        if (r.op == op && r.threads == threads) pair[r.impl == "snip" ? 0 : 1] = &r;
    at::set_num_threads(threads);
    const std::vector<double> best =
        snip_bench::interleaved_best_times({&pair[0]->run, &pair[1]->run}, 5, 0.1);
    return cache.emplace(key, std::make_pair(best[0], best[1])).first->second;
}

void bm_row(benchmark::State& state, const row* r) {
    at::set_num_threads(r->threads);
    snip_bench::warm_loop(state, r->run);
    const auto [snip_s, tv_s] = measured(r->op, r->threads);
    state.counters["tv_over_snip"] = tv_s / snip_s;
    state.counters["snip_ms"] = snip_s * 1e3;
    state.counters["tv_ms"] = tv_s * 1e3;
}

// ---------------------------------------------------------------------------------
// The guard: both give the same results on the benchmark's inputs

using snip_bench::max_abs;

bool check_agreement() {
    auto& p = g_p;
    bool ok = true;
    auto report = [&](const char* what, double diff, double tol) {
        std::printf("[check] %s: snip vs torchvision max |difference| %.3g (tolerance %.0e)\n",
                    what, diff, tol);
        ok = ok && diff <= tol;
    };
    report(
        "roi_align_forward",
        max_abs(ops::roi_align(p.features, p.rois, pooled, spatial_scale, sampling_ratio, aligned),
                tv_roi_align(p.features, p.rois)),
        1e-5);
    report("roi_align_backward",
           max_abs(ops::roi_align_backward(p.grad_out, p.rois, align_options(), p.features.sizes()),
                   tv_roi_align_backward(p.grad_out, p.rois)),
           1e-4);
    const auto [tv_out, tv_arg] = tv_roi_pool(p.features, p.rois);
    const auto [sn_out, sn_arg] = ops::roi_pool_forward(p.features, p.rois, pool_options());
    report("roi_pool_forward", max_abs(sn_out, tv_out), 0.0);
    const bool same_arg = at::equal(sn_arg, tv_arg);
    std::printf("[check] roi_pool_forward: argmax %s\n", same_arg ? "identical" : "DIFFERS");
    ok = ok && same_arg;
    p.argmax = tv_arg;
    report("roi_pool_backward",
           max_abs(ops::roi_pool_backward(p.grad_out, p.rois, p.argmax, pool_options(),
                                          p.features.sizes()),
                   tv_roi_pool_backward(p.grad_out, p.rois, p.argmax)),
           1e-4);
    const at::Tensor k1 = ops::nms(p.nms_boxes, p.nms_scores, nms_threshold);
    const at::Tensor k2 = tv_nms(p.nms_boxes, p.nms_scores, nms_threshold);
    const bool same_keep = k1.sizes() == k2.sizes() && at::equal(k1, k2);
    std::printf("[check] nms: %lld of %d boxes kept, indices %s\n",
                static_cast<long long>(k2.numel()), nms_boxes, same_keep ? "identical" : "DIFFER");
    ok = ok && same_keep;
    report("box_iou", max_abs(ops::box_iou(p.iou_a, p.iou_b), tv_box_iou(p.iou_a, p.iou_b)), 1e-5);
    return ok;
}

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (argc > 1) {
        std::fprintf(stderr, "bench_vs_torchvision: unknown argument '%s'\n", argv[1]);
        return 2;
    }
    if (!snip_bench::load_torchvision(g_tv_status)) {
        std::printf("[skip] torchvision ops not found (%s): nothing to compare\n",
                    g_tv_status.c_str());
        return 0;
    }
    make_problem();
    at::set_num_threads(all_threads());
    if (!check_agreement()) {
        std::fprintf(stderr, "bench_vs_torchvision: snip and torchvision disagree\n");
        return 1;
    }
    register_rows();

    snip_bench::add_build_context();
    benchmark::AddCustomContext("libtorch", TORCH_VERSION);
    benchmark::AddCustomContext("torchvision_ops", g_tv_status);
    benchmark::AddCustomContext("aten_parallel_backend",
#if AT_PARALLEL_OPENMP
                                "OpenMP"
#elif AT_PARALLEL_NATIVE
                                "native"
#else
                                "other"
#endif
    );
    benchmark::AddCustomContext("threads_available", std::to_string(all_threads()));
    benchmark::AddCustomContext(
        "threads",
        "threads:N rows call at::set_num_threads(N); snip's ops use at::get_num_threads()");
    benchmark::AddCustomContext(
        "roi_problem",
        snip::concat(num_rois, " RoIs (sides log-uniform 16..512 px in a ", image_side,
                             " px image, seed ", roi_seed, ") on ", batch, " x ", channels, " x ",
                             height, " x ", width, " float32 features"));
    benchmark::AddCustomContext(
        "roi_align", snip::concat("output ", pooled, " x ", pooled, ", spatial_scale 1/",
                                          1 / spatial_scale, ", sampling_ratio ", sampling_ratio,
                                          ", aligned ", aligned ? "true" : "false"));
    benchmark::AddCustomContext("roi_pool",
                                snip::concat("output ", pooled, " x ", pooled,
                                                     ", spatial_scale 1/", 1 / spatial_scale));
    benchmark::AddCustomContext(
        "nms", snip::concat(nms_boxes, " clustered detections (", nms_objects,
                                    " objects), IoU threshold ", nms_threshold));
    benchmark::AddCustomContext(
        "box_iou", snip::concat(iou_side, " x ", iou_side,
                                        " float32 boxes; torchvision's formula in LibTorch ops"));
    benchmark::AddCustomContext("ratio",
                                "tv_over_snip = t(torchvision) / t(snip): interleaved, best "
                                "of 5 rounds of >= 0.1 s, measured in this run");

    for (const row& r : g_rows)
        benchmark::RegisterBenchmark(
            (r.op + "/threads:" + (r.threads == 1 ? std::string("1") : std::string("all")) + "/" +
             r.impl)
                .c_str(),
            [rp = &r](benchmark::State& s) { bm_row(s, rp); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();

    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

#endif // SNIP_WITH_TORCH
