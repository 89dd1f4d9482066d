// bench_limits: how much memory and time plan_image needs at the extremes: many boxes in
// one image (10^4 .. 2 x 10^6) and very large images (up to 40,000 x 40,000 px; beyond about
// 43,700 px the finest scale's candidate grid passes plan_image's 2^24 limit and is refused), with the
// sniper_coco preset (scales 3, 1.667 and 512 px; the finest upscales 3x).
//
// Reported per run (one iteration each: these are sizes, not hot loops):
//   peak_MB          growth of the process's peak resident memory during the call (the
//                    kernel's peak counter is reset first via /proc/self/clear_refs)
//   MB_per_Mbox      peak_MB per million boxes
//   x_input          peak_MB / the input boxes' own bytes (16 per box): the planner's
//                    overhead as a ratio
//   chips            positive chips planned
//
// Usage: bench_limits [--benchmark_filter=REGEX]
#include <snip/core/random.hpp>
#include <snip/sniper/plan.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace {

/// The process's peak resident set (VmHWM), KiB.
long peak_kib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return 0;
}

/// Resets VmHWM to the current resident set (Linux >= 4.0); false when not allowed.
bool reset_peak() {
    std::ofstream f("/proc/self/clear_refs");
    f << "5";
    return bool(f);
}

/// n boxes of 8..63 px, uniformly placed in a w x h image (flat xyxy floats).
std::vector<float> random_boxes(int w, int h, long n) {
    std::vector<float> b;
    b.reserve(std::size_t(n) * 4);
    snip::splitmix64 g{42};
    for (long i = 0; i < n; ++i) {
        const float x = float(g.below(std::uint64_t(w - 64))), y = float(g.below(std::uint64_t(h - 64)));
        const float s = 8.f + float(g.below(56));
        b.insert(b.end(), {x, y, x + s, y + s});
    }
    return b;
}

void plan_extreme(benchmark::State& state, int w, int h, long n) {
    const snip::plan_config cfg = snip::plan_config::sniper_coco();
    const std::vector<float> boxes = random_boxes(w, h, n);
    std::size_t chips = 0;
    double peak_mb = 0;
    for (auto _ : state) {
        const bool reset = reset_peak();
        const long before = peak_kib();
        snip::plan_workspace ws;
        const snip::image_plan p = snip::plan_image(cfg, w, h, snip::as_box_view(boxes), {}, ws);
        chips = p.positives.size();
        benchmark::DoNotOptimize(chips);
        peak_mb = reset ? double(peak_kib() - before) / 1024.0 : -1.0;
    }
    state.counters["chips"] = double(chips);
    state.counters["peak_MB"] = peak_mb;
    if (n > 0) {
        state.counters["MB_per_Mbox"] = peak_mb / (double(n) / 1e6);
        state.counters["x_input"] = peak_mb / (double(n) * 16.0 / (1024.0 * 1024.0));
    }
}

} // namespace

BENCHMARK_CAPTURE(plan_extreme, boxes_1e4_4000x3000, 4000, 3000, 10000L)
    ->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(plan_extreme, boxes_1e5_4000x3000, 4000, 3000, 100000L)
    ->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(plan_extreme, boxes_1e6_4000x3000, 4000, 3000, 1000000L)
    ->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(plan_extreme, boxes_2e6_4000x3000, 4000, 3000, 2000000L)
    ->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(plan_extreme, boxes_1e6_640x480, 640, 480, 1000000L)
    ->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(plan_extreme, image_20000x20000_10_boxes, 20000, 20000, 10L)
    ->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(plan_extreme, image_40000x40000_10_boxes, 40000, 40000, 10L)
    ->Iterations(1)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
