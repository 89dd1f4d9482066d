// bench_matching: IoU matrices and RPN label assignment, snip against naive loops.
//
//   iou_matrix/snip/threads:T      2,000 x 2,000 float boxes, snip::iou_matrix on T threads
//   iou_matrix/naive               the same with a double loop over snip::iou(box, box)
//   rpn_labels/snip                one 512 x 512 chip: 32 x 32 cells x 21 anchors = 21,504
//                                  anchors, 20 gt (4 invalid), SNIPER's rules, no sampling
//                                  (one chip is below the threading threshold: one thread)
//   rpn_labels/naive               the same rules on full IoU matrices with straight loops
//   assign_rpn/snip                labels + SNIPER's 256 / 0.5 sampling
//   rpn_labels_image/snip/threads:T  a whole 1400 x 2000 image: 88 x 125 x 21 = 231,000
//                                  anchors, 40 gt (8 invalid), split over T threads
//
// Ratios are measured in the same run and reported as counters (speedup_vs_naive,
// speedup_vs_1_thread): each side's time is its fastest single call over >= 3 x 50 ms,
// which is robust to other processes sharing the cores. Before any timing, main() checks
// that snip and the naive code give identical IoUs and identical labels / matched gt.
//
// Usage: bench_matching [--benchmark_min_time=0.5] [--benchmark_filter=REGEX]

#include <snip/det/anchors.hpp>
#include <snip/core/version.hpp>
#include <snip/det/iou.hpp>
#include <snip/det/rpn_targets.hpp>

#include <benchmark/benchmark.h>

#include "common.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;
using snip::box;
using snip::gt_state;

constexpr std::uint64_t iou_seed = 2000, chip_seed = 512;
constexpr int iou_n = 2000;
constexpr int chip_side = 512, feat = 32, num_gt = 20, num_invalid = 4;

double seconds_since(steady::time_point t0) {
    return std::chrono::duration<double>(steady::now() - t0).count();
}

/// Seconds of the fastest single call of `f`, over at least 3 x 50 ms of calls.
template <class F>
double seconds_per_call(F&& f) {
    double best = std::numeric_limits<double>::infinity();
    for (int rep = 0; rep < 3; ++rep) {
        const auto t0 = steady::now();
        do {
            const auto c0 = steady::now();
            f();
            best = std::min(best, seconds_since(c0));
        } while (seconds_since(t0) < 0.05);
    }
    return best;
}

/// `n` boxes with sides 8..200 px in a 1000 x 1000 image (fixed seed).
std::vector<box<float>> random_boxes(std::uint64_t seed, int n, double lo = 8, double hi = 200,
                                     double extent = 1000) {
    snip::splitmix64 g{seed};
    std::vector<box<float>> out;
    out.reserve(std::size_t(n));
    for (int i = 0; i < n; ++i) {
        const double w = lo + g.uniform() * (hi - lo), h = lo + g.uniform() * (hi - lo);
        const double x = g.uniform() * (extent - w), y = g.uniform() * (extent - h);
        out.push_back(box<double>{x, y, x + w, y + h}.cast<float>());
    }
    return out;
}

// ---------------------------------------------------------------------------------
// Naive baselines, written here on purpose (not the library's code paths).

void naive_iou(const std::vector<box<float>>& a, const std::vector<box<float>>& b, std::vector<float>& out) {
    const std::size_t M = b.size();
    for (std::size_t i = 0; i < a.size(); ++i)
        for (std::size_t j = 0; j < M; ++j) out[i * M + j] = snip::iou(a[i], b[j]);
}

/// SNIPER's anchor labels on full matrices, step by step.
void naive_rpn(const std::vector<box<float>>& anchors, const std::vector<box<float>>& gt,
               const std::vector<gt_state>& st, const snip::rpn_options& o, std::vector<std::int8_t>& labels,
               std::vector<std::int32_t>& matched) {
    const std::size_t N = anchors.size();
    std::vector<std::size_t> valid, other;
    for (std::size_t g = 0; g < gt.size(); ++g) (st[g] == gt_state::valid ? valid : other).push_back(g);
    const std::size_t K = valid.size();
    std::vector<float> ov(N * K);
    for (std::size_t i = 0; i < N; ++i)
        for (std::size_t k = 0; k < K; ++k) ov[i * K + k] = snip::iou(anchors[i], gt[valid[k]], o.convention);
    std::vector<float> gmax(K, 0.f);
    for (std::size_t i = 0; i < N; ++i)
        for (std::size_t k = 0; k < K; ++k) gmax[k] = std::max(gmax[k], ov[i * K + k]);
    for (std::size_t i = 0; i < N; ++i) {
        std::size_t arg = 0;
        for (std::size_t k = 1; k < K; ++k)
            if (ov[i * K + k] > ov[i * K + arg]) arg = k;
        const float m = K ? ov[i * K + arg] : 0.f;
        matched[i] = K ? std::int32_t(valid[arg]) : -1;
        std::int8_t l = m < float(o.negative_below) ? 0 : -1;
        for (std::size_t k = 0; k < K; ++k)
            if (gmax[k] > 0 && ov[i * K + k] == gmax[k]) l = 1;
        if (m >= float(o.positive_from)) l = 1;
        for (std::size_t g : other) {
            const float v = snip::iou(anchors[i], gt[g], o.convention);
            if (v > float(st[g] == gt_state::crowd ? o.ignore_crowd_above : o.ignore_invalid_above)) l = -1;
        }
        labels[i] = l;
    }
}

// ---------------------------------------------------------------------------------
// Inputs

struct iou_inputs {
    std::vector<box<float>> a = random_boxes(iou_seed, iou_n);
    std::vector<box<float>> b = random_boxes(iou_seed + 1, iou_n);
};
const iou_inputs& iou_data() {
    static const iou_inputs d;
    return d;
}

struct chip_inputs {
    std::vector<box<float>> anchors;
    std::vector<box<float>> gt;
    std::vector<gt_state> states;
    snip::rpn_options opt = snip::rpn_options::sniper();
    chip_inputs(int fh, int fw, int ngt, int ninvalid, double extent, std::uint64_t seed) {
        const auto t = snip::anchor_config::sniper().templates();
        anchors = snip::grid_anchors<float>(t, fh, fw, 16);
        gt = random_boxes(seed, ngt, 12, 300, extent);
        states.assign(gt.size(), gt_state::valid);
        for (int k = 0; k < ninvalid; ++k) states[std::size_t(k * 5)] = gt_state::invalid;
        opt.batch = 0;
    }
};
const chip_inputs& chip_data() {
    static const chip_inputs d(feat, feat, num_gt, num_invalid, chip_side, chip_seed);
    return d;
}
constexpr int image_fh = 88, image_fw = 125, image_gt = 40, image_invalid = 8;
const chip_inputs& image_data() {
    static const chip_inputs d(image_fh, image_fw, image_gt, image_invalid, 1400, chip_seed + 1);
    return d;
}

unsigned hw_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

// ---------------------------------------------------------------------------------
// Ratios measured in this run

double iou_seconds(unsigned threads) {  // threads 0 = naive
    static std::map<unsigned, double> cache;
    if (auto it = cache.find(threads); it != cache.end()) return it->second;
    const auto& d = iou_data();
    std::vector<float> out(d.a.size() * d.b.size());
    const double s = threads == 0 ? seconds_per_call([&] {
        naive_iou(d.a, d.b, out);
        benchmark::DoNotOptimize(out.data());
    })
                                  : seconds_per_call([&] {
                                        snip::iou_matrix(d.a, d.b, std::span<float>(out),
                                                         snip::pixel_convention::continuous, threads);
                                        benchmark::DoNotOptimize(out.data());
                                    });
    return cache.emplace(threads, s).first->second;
}

constexpr unsigned naive_code = ~0u;  ///< rpn_seconds: time the naive reference

/// Fastest call of snip on `threads` threads (0 = default), or of the naive code.
double rpn_seconds(const chip_inputs& d, unsigned threads) {
    static std::map<std::pair<const chip_inputs*, unsigned>, double> cache;
    if (auto it = cache.find({&d, threads}); it != cache.end()) return it->second;
    std::vector<std::int8_t> l(d.anchors.size());
    std::vector<std::int32_t> m(d.anchors.size());
    snip::rpn_workspace<float> ws;
    auto o = d.opt;
    o.threads = threads;
    const double s = threads == naive_code ? seconds_per_call([&] {
        naive_rpn(d.anchors, d.gt, d.states, d.opt, l, m);
        benchmark::DoNotOptimize(l.data());
    })
                                  : seconds_per_call([&] {
                                        snip::assign_rpn_labels(d.anchors, d.gt, d.states, std::span<std::int8_t>(l),
                                                                std::span<std::int32_t>(m), o, &ws);
                                        benchmark::DoNotOptimize(l.data());
                                    });
    return cache.emplace(std::make_pair(&d, threads), s).first->second;
}

// ---------------------------------------------------------------------------------
// Benchmarks

void bm_iou_snip(benchmark::State& state) {
    const auto T = static_cast<unsigned>(state.range(0));
    const auto& d = iou_data();
    std::vector<float> out(d.a.size() * d.b.size());
    for (auto _ : state) {
        snip::iou_matrix(d.a, d.b, std::span<float>(out), snip::pixel_convention::continuous, T);
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["pairs/s"] =
        benchmark::Counter(double(out.size()), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["speedup_vs_naive"] = iou_seconds(0) / iou_seconds(T);
    if (T > 1) state.counters["speedup_vs_1_thread"] = iou_seconds(1) / iou_seconds(T);
}

void bm_iou_naive(benchmark::State& state) {
    const auto& d = iou_data();
    std::vector<float> out(d.a.size() * d.b.size());
    for (auto _ : state) {
        naive_iou(d.a, d.b, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["pairs/s"] =
        benchmark::Counter(double(out.size()), benchmark::Counter::kIsIterationInvariantRate);
}

void bm_rpn_snip(benchmark::State& state, const chip_inputs& d, unsigned T, bool vs_naive) {
    std::vector<std::int8_t> l(d.anchors.size());
    std::vector<std::int32_t> m(d.anchors.size());
    snip::rpn_workspace<float> ws;
    auto o = d.opt;
    o.threads = T;
    snip::label_counts c;
    for (auto _ : state) {
        c = snip::assign_rpn_labels(d.anchors, d.gt, d.states, std::span<std::int8_t>(l),
                                    std::span<std::int32_t>(m), o, &ws);
        benchmark::DoNotOptimize(l.data());
    }
    state.counters["anchors/s"] =
        benchmark::Counter(double(l.size()), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["positive"] = double(c.positive);
    state.counters["ignored"] = double(c.ignored);
    if (vs_naive) state.counters["speedup_vs_naive"] = rpn_seconds(d, naive_code) / rpn_seconds(d, T);
    if (T > 1) state.counters["speedup_vs_1_thread"] = rpn_seconds(d, 1) / rpn_seconds(d, T);
}

void bm_rpn_naive(benchmark::State& state) {
    const auto& d = chip_data();
    std::vector<std::int8_t> l(d.anchors.size());
    std::vector<std::int32_t> m(d.anchors.size());
    for (auto _ : state) {
        naive_rpn(d.anchors, d.gt, d.states, d.opt, l, m);
        benchmark::DoNotOptimize(l.data());
    }
    state.counters["anchors/s"] =
        benchmark::Counter(double(l.size()), benchmark::Counter::kIsIterationInvariantRate);
}

void bm_assign_rpn(benchmark::State& state) {
    const auto& d = chip_data();
    const auto o = snip::rpn_options::sniper();
    std::uint64_t seed = 0;
    snip::rpn_assignment r;
    for (auto _ : state) {
        r = snip::assign_rpn(d.anchors, d.gt, d.states, o, seed++);
        benchmark::DoNotOptimize(r.labels.data());
    }
    state.counters["positive"] = double(r.counts.positive);
    state.counters["negative"] = double(r.counts.negative);
}

// ---------------------------------------------------------------------------------
// The guard: snip equals the naive code

bool check_identical() {
    const auto& d = iou_data();
    std::vector<float> x(d.a.size() * d.b.size()), y(x.size());
    naive_iou(d.a, d.b, x);
    snip::iou_matrix(d.a, d.b, std::span<float>(y), snip::pixel_convention::continuous, 0);
    if (x != y) {
        std::fprintf(stderr, "[check] iou_matrix differs from the naive double loop\n");
        return false;
    }
    for (const chip_inputs* c : {&chip_data(), &image_data()}) {
        std::vector<std::int8_t> l1(c->anchors.size()), l2(l1.size());
        std::vector<std::int32_t> m1(l1.size()), m2(l1.size());
        naive_rpn(c->anchors, c->gt, c->states, c->opt, l1, m1);
        auto o = c->opt;
        o.threads = hw_threads();
        snip::assign_rpn_labels(c->anchors, c->gt, c->states, std::span<std::int8_t>(l2),
                                std::span<std::int32_t>(m2), o);
        if (l1 != l2 || m1 != m2) {
            std::fprintf(stderr, "[check] RPN labels differ from the naive reference on %zu anchors\n", l1.size());
            return false;
        }
    }
    std::printf("[check] iou_matrix == naive on %zu pairs; RPN labels and matched gt == naive on %zu and %zu "
                "anchors\n", x.size(), chip_data().anchors.size(), image_data().anchors.size());
    return true;
}

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    if (!check_identical()) return 1;

    const unsigned hw = hw_threads();
    const auto& c = chip_data();
    snip_bench::add_build_context();
    benchmark::AddCustomContext(
        "iou_config", snip::concat(iou_n, " x ", iou_n, " float boxes, sides 8..200 px in 1000 x 1000, seed ",
                                           iou_seed, ", continuous"));
    benchmark::AddCustomContext(
        "rpn_config",
        snip::concat(c.anchors.size(), " anchors (", feat, " x ", feat, " x 21, stride 16, SNIPER templates), ",
                             num_gt, " gt (", num_invalid, " invalid) sides 12..300 px in a ", chip_side,
                             " chip, seed ", chip_seed, ", rules 0.4/0.5/0.3, inclusive"));
    benchmark::AddCustomContext(
        "rpn_image_config",
        snip::concat(image_data().anchors.size(), " anchors (", image_fh, " x ", image_fw, " x 21), ",
                             image_gt, " gt (", image_invalid, " invalid) sides 12..300 px in 1400 x 1400"));
    benchmark::AddCustomContext("check", "snip == naive (IoU bit for bit; labels and matched gt)");

    auto* iou = benchmark::RegisterBenchmark("iou_matrix/snip", bm_iou_snip);
    iou->ArgName("threads")->Arg(1);
    if (hw > 1) iou->Arg(hw);
    iou->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("iou_matrix/naive", bm_iou_naive)->UseRealTime()->Unit(benchmark::kMillisecond);

    benchmark::RegisterBenchmark("rpn_labels/snip", [](benchmark::State& s) {
        bm_rpn_snip(s, chip_data(), 0, true);
    })->UseRealTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("rpn_labels/naive", bm_rpn_naive)->UseRealTime()->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("assign_rpn/snip", bm_assign_rpn)->UseRealTime()->Unit(benchmark::kMicrosecond);
    for (unsigned t : {1u, hw}) {
        if (t == hw && hw == 1) break;
        benchmark::RegisterBenchmark(("rpn_labels_image/snip/threads:" + std::to_string(t)).c_str(),
                                     [t](benchmark::State& s) { bm_rpn_snip(s, image_data(), t, false); })
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
    }

    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
