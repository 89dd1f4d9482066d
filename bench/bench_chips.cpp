// bench_chips: how fast snip plans positive chips.
//
//   plan/<preset>/<path>/<data>          every image of the dataset, one workspace
//   plan_threads/<preset>/<data>/threads:T   the dataset split over T threads
//   greedy_cover/{fast,naive}/boxes:N    the cover alone, one 1920x1440 scaled image
//   chip_grid_assign/<layout>            building the candidate grid of that image
//
// <data> is "coco_val2017" (the 5,000 COCO val2017 images under SNIP_DATA_DIR) or
// "synthetic" when that file is absent. Before any timing, main() checks that the fast
// and the naive greedy cover give identical plans on every image for both presets.
//
// Usage: bench_chips [--benchmark_min_time=0.5] [--benchmark_filter=REGEX] [data.json]

#include <snip/sniper/cover.hpp>
#include <snip/core/version.hpp>
#include <snip/sniper/dataset.hpp>
#include <snip/io/coco.hpp>
#include <snip/sniper/plan.hpp>

#include <benchmark/benchmark.h>

#include "common.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifndef SNIP_DATA_DIR
#define SNIP_DATA_DIR ""
#endif
namespace {

using steady = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------
// Data

/// The images every dataset benchmark plans.
struct bench_data {
    snip::dataset ds;
    std::string label;  ///< "coco_val2017" or "synthetic": part of the benchmark names
    std::string description;
    std::size_t crowd = 0;
    std::size_t empty_images = 0;
};

bench_data g_data;

/// A portable random source: std::mt19937's output sequence is fixed by the standard,
/// the mapping to [0, 1) below is ours, so the synthetic data are the same everywhere
/// (std::uniform_*_distribution is implementation-defined).
class rng {
public:
    explicit rng(std::uint32_t seed) : eng_(seed) {}
    double uniform() { return double(eng_() >> 8) * (1.0 / 16777216.0); }
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

private:
    std::mt19937 eng_;
};

constexpr std::uint32_t synthetic_seed = 20170;
constexpr std::uint32_t primitive_seed = 512;

/// 5,000 images of 640 x 480 with 7 boxes each: sides log-uniform in [4, 400] px,
/// whole pixels, inside the image; no crowd boxes.
snip::dataset synthetic_dataset() {
    snip::dataset d;
    d.source = "synthetic";
    rng r(synthetic_seed);
    d.images.resize(5000);
    for (std::size_t i = 0; i < d.images.size(); ++i) {
        auto& im = d.images[i];
        im.id = static_cast<std::int64_t>(i + 1);
        im.width = 640;
        im.height = 480;
        for (int k = 0; k < 7; ++k) {
            const double w = std::min(639.0, std::round(4.0 * std::pow(100.0, r.uniform())));
            const double h = std::min(479.0, std::round(4.0 * std::pow(100.0, r.uniform())));
            const double x = std::floor(r.uniform(0.0, 640.0 - w));
            const double y = std::floor(r.uniform(0.0, 480.0 - h));
            im.boxes.push_back({x, y, x + w, y + h});
            im.ann_ids.push_back(static_cast<std::int64_t>(i * 7 + std::size_t(k) + 1));
            im.categories.push_back(1);
            im.crowd.push_back(0);
        }
    }
    return d;
}

/// Loads the COCO file, or the synthetic dataset when it is absent. Returns false
/// (after printing why) when the file exists but cannot be read.
bool load_data(const std::string& path) {
    if (!std::filesystem::exists(path)) {
        std::printf("[skip] %s not found: the dataset benchmarks use a synthetic dataset "
                    "(5000 images, 640x480, 7 random boxes each, seed %u)\n",
                    path.c_str(), unsigned(synthetic_seed));
        g_data.ds = synthetic_dataset();
        g_data.label = "synthetic";
        g_data.description = "synthetic (COCO file not found: " + path + ")";
    } else {
        try {
            snip::io::load_report rep;
            g_data.ds = snip::io::read_coco(path, &rep);
            for (const auto& w : rep.warnings) std::printf("[load] %s\n", w.c_str());
        } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_chips: cannot read %s: %s\n", path.c_str(), e.what());
            return false;
        }
        g_data.label = "coco_val2017";
        std::error_code ec;
        const auto canon = std::filesystem::weakly_canonical(path, ec);
        g_data.description = ec ? path : canon.string();
    }
    for (const auto& im : g_data.ds.images) {
        g_data.empty_images += im.boxes.empty() ? 1 : 0;
        for (auto c : im.crowd) g_data.crowd += c ? 1 : 0;
    }
    return true;
}

// ---------------------------------------------------------------------------------
// Planning passes

/// Plans images [first, last) with one workspace; returns the number of chips.
std::size_t plan_range(const snip::plan_config& cfg, const std::vector<snip::image_record>& ims,
                       std::size_t first, std::size_t last, snip::plan_workspace& ws,
                       bool naive) {
    std::size_t chips = 0;
    for (std::size_t i = first; i < last; ++i) {
        const auto& im = ims[i];
        auto p = snip::plan_image(cfg, im.width, im.height, snip::as_box_view(im.boxes), im.crowd,
                                  ws, /*stride_used=*/0, /*greedy_naive=*/naive);
        chips += p.positives.size();
        benchmark::DoNotOptimize(p.positives.data());
    }
    return chips;
}

std::size_t plan_all(const snip::plan_config& cfg, snip::plan_workspace& ws, bool naive) {
    return plan_range(cfg, g_data.ds.images, 0, g_data.ds.images.size(), ws, naive);
}

double seconds_since(steady::time_point t0) {
    return std::chrono::duration<double>(steady::now() - t0).count();
}

/// Fast and naive wall time of one pass over the dataset, best of 3 each (interleaved
/// so that a burst of load from other processes hits both alike). Measured once per
/// preset per run.
struct pass_times {
    double fast = 0, naive = 0;
};

const pass_times& measured_pass_times(const snip::plan_config& cfg) {
    static std::map<std::string, pass_times> cache;
    if (auto it = cache.find(cfg.name); it != cache.end()) return it->second;
    snip::plan_workspace ws;
    pass_times t{std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
    plan_all(cfg, ws, false);  // warm the workspace
    for (int rep = 0; rep < 3; ++rep) {
        auto t0 = steady::now();
        benchmark::DoNotOptimize(plan_all(cfg, ws, false));
        t.fast = std::min(t.fast, seconds_since(t0));
        t0 = steady::now();
        benchmark::DoNotOptimize(plan_all(cfg, ws, true));
        t.naive = std::min(t.naive, seconds_since(t0));
    }
    return cache.emplace(cfg.name, t).first->second;
}

// ---------------------------------------------------------------------------------
// Benchmarks over the dataset

void bm_plan(benchmark::State& state, const snip::plan_config& cfg, bool naive) {
    const auto n = static_cast<double>(g_data.ds.images.size());
    snip::plan_workspace ws;
    std::size_t chips = plan_all(cfg, ws, naive);  // warm-up, sizes the workspace
    for (auto _ : state) chips = plan_all(cfg, ws, naive);
    state.counters["images/s"] = benchmark::Counter(n, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["chips/image"] = double(chips) / n;
    if (!naive) {
        const auto& t = measured_pass_times(cfg);
        state.counters["speedup_vs_naive"] = t.naive / t.fast;
    }
}

/// Wall seconds of one single-thread pass of the thread-scaling benchmark, from the
/// threads:1 run when it ran first, else measured here (best of 3).
double g_one_thread_seconds = 0.0;

void bm_threads(benchmark::State& state, const snip::plan_config& cfg) {
    const auto T = static_cast<std::size_t>(state.range(0));
    const auto& ims = g_data.ds.images;
    const std::size_t n = ims.size();
    // One workspace per thread, each on its own cache lines: plan_image writes the
    // workspace's vector headers for every image, adjacent ones would share a line.
    struct alignas(128) padded {
        snip::plan_workspace ws;
        std::size_t chips = 0;
    };
    std::vector<padded> per(T);
    auto part = [&](std::size_t t) {
        per[t].chips = plan_range(cfg, ims, n * t / T, n * (t + 1) / T, per[t].ws, false);
    };
    auto pass = [&] {
        std::vector<std::thread> pool;
        pool.reserve(T - 1);
        for (std::size_t t = 1; t < T; ++t) pool.emplace_back(part, t);
        part(0);
        for (auto& th : pool) th.join();
    };
    pass();  // warm-up: sizes every workspace
    double wall = 0.0;
    for (auto _ : state) {
        const auto t0 = steady::now();
        pass();
        wall += seconds_since(t0);
    }
    const double per_pass = wall / double(state.iterations());
    if (T == 1) {
        g_one_thread_seconds = per_pass;
    } else if (g_one_thread_seconds <= 0.0) {
        snip::plan_workspace w1;
        plan_all(cfg, w1, false);
        double best = std::numeric_limits<double>::infinity();
        for (int rep = 0; rep < 3; ++rep) {
            const auto t0 = steady::now();
            benchmark::DoNotOptimize(plan_all(cfg, w1, false));
            best = std::min(best, seconds_since(t0));
        }
        g_one_thread_seconds = best;
    }
    std::size_t total = 0;
    for (const auto& p : per) total += p.chips;
    state.counters["images/s"] =
        benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["chips/image"] = double(total) / double(n);
    state.counters["speedup_vs_1_thread"] = g_one_thread_seconds / per_pass;
}

// ---------------------------------------------------------------------------------
// Primitives on one synthetic scaled image

constexpr int prim_width = 1920, prim_height = 1440, prim_chip = 512, prim_stride = 32;

/// `n` boxes with sides of 8..150 px inside the 1920 x 1440 image (fixed seed).
std::vector<snip::box<float>> primitive_boxes(int n) {
    rng r(primitive_seed + static_cast<std::uint32_t>(n));
    std::vector<snip::box<float>> out;
    for (int i = 0; i < n; ++i) {
        const double w = std::floor(r.uniform(8.0, 151.0));
        const double h = std::floor(r.uniform(8.0, 151.0));
        const double x = std::floor(r.uniform(0.0, prim_width - w));
        const double y = std::floor(r.uniform(0.0, prim_height - h));
        out.push_back(snip::box<double>{x, y, x + w - 1, y + h - 1}.cast<float>());
    }
    return out;
}

/// The sniper_coco candidate set of the 1920 x 1440 image (inclusive pixels).
snip::chip_grid primitive_grid() {
    snip::chip_grid g;
    g.assign(snip::chip_layout::sniper, prim_width, prim_height, prim_chip, prim_stride,
             snip::pixel_convention::inclusive);
    return g;
}
std::vector<snip::box<int>> primitive_candidates() {
    return snip::candidate_chips(snip::chip_layout::sniper, prim_width, prim_height, prim_chip,
                                 prim_stride, snip::pixel_convention::inclusive);
}

/// Seconds per call of `f`: calls repeated for at least 50 ms, best of 3.
template <class F>
double seconds_per_call(F&& f) {
    double best = std::numeric_limits<double>::infinity();
    for (int rep = 0; rep < 3; ++rep) {
        std::size_t calls = 0;
        const auto t0 = steady::now();
        double s = 0.0;
        do {
            f();
            ++calls;
            s = seconds_since(t0);
        } while (s < 0.05);
        best = std::min(best, s / double(calls));
    }
    return best;
}

double cover_speedup(int n) {
    static std::map<int, double> cache;
    if (auto it = cache.find(n); it != cache.end()) return it->second;
    const auto boxes = primitive_boxes(n);
    const auto view = snip::as_box_view(boxes);
    const auto grid = primitive_grid();
    const auto cands = primitive_candidates();
    snip::cover_workspace ws;
    const double fast = seconds_per_call([&] {
        auto r = snip::greedy_cover(grid, view, ws);
        benchmark::DoNotOptimize(r.chips.data());
    });
    const double naive = seconds_per_call([&] {
        auto r = snip::greedy_cover_naive(cands, view);
        benchmark::DoNotOptimize(r.chips.data());
    });
    return cache.emplace(n, naive / fast).first->second;
}

void bm_cover_fast(benchmark::State& state) {
    const auto boxes = primitive_boxes(static_cast<int>(state.range(0)));
    const auto view = snip::as_box_view(boxes);
    const auto grid = primitive_grid();
    snip::cover_workspace ws;
    std::size_t chips = 0;
    for (auto _ : state) {
        auto r = snip::greedy_cover(grid, view, ws);
        chips = r.chips.size();
        benchmark::DoNotOptimize(r.chips.data());
    }
    state.counters["chips"] = double(chips);
    state.counters["candidates"] = double(primitive_candidates().size());
    state.counters["speedup_vs_naive"] = cover_speedup(static_cast<int>(state.range(0)));
}

void bm_cover_naive(benchmark::State& state) {
    const auto boxes = primitive_boxes(static_cast<int>(state.range(0)));
    const auto view = snip::as_box_view(boxes);
    const auto cands = primitive_candidates();
    std::size_t chips = 0;
    for (auto _ : state) {
        auto r = snip::greedy_cover_naive(cands, view);  // takes its own copy of cands
        chips = r.chips.size();
        benchmark::DoNotOptimize(r.chips.data());
    }
    state.counters["chips"] = double(chips);
    state.counters["candidates"] = double(cands.size());
}

void bm_grid_assign(benchmark::State& state, snip::chip_layout layout, snip::pixel_convention conv) {
    snip::chip_grid g;
    for (auto _ : state) {
        g.assign(layout, prim_width, prim_height, prim_chip, prim_stride, conv);
        benchmark::DoNotOptimize(g.mask.data());
        benchmark::ClobberMemory();
    }
    state.counters["grid_cells"] = double(g.size());
    state.counters["candidates"] = double(
        std::count_if(g.mask.begin(), g.mask.end(), [](std::uint8_t m) { return m != 0; }));
}

// ---------------------------------------------------------------------------------
// The guard: fast and naive plans are identical

/// Empty when equal, else what differs first.
std::string plan_difference(const snip::image_plan& a, const snip::image_plan& b) {
    using snip::concat;
    if (a.scales.size() != b.scales.size()) return "number of scales";
    for (std::size_t s = 0; s < a.scales.size(); ++s) {
        const auto &x = a.scales[s], &y = b.scales[s];
        if (x.size.factor != y.size.factor || x.size.width != y.size.width ||
            x.size.height != y.size.height)
            return concat("scale ", s, ": scaled size");
        if (x.valid != y.valid) return concat("scale ", s, ": valid boxes");
        if (x.uncoverable != y.uncoverable) return concat("scale ", s, ": uncoverable boxes");
    }
    if (a.positives.size() != b.positives.size())
        return concat("number of chips: fast ", a.positives.size(), ", naive ", b.positives.size());
    for (std::size_t k = 0; k < a.positives.size(); ++k) {
        const auto &x = a.positives[k], &y = b.positives[k];
        if (x.scale != y.scale || x.factor != y.factor || !(x.rect == y.rect))
            return concat("chip ", k, ": fast [", x.rect.x1, ",", x.rect.y1, ",", x.rect.x2, ",",
                          x.rect.y2, "] at scale ", x.scale, ", naive [", y.rect.x1, ",", y.rect.y1,
                          ",", y.rect.x2, ",", y.rect.y2, "] at scale ", y.scale);
        if (x.boxes != y.boxes) return concat("chip ", k, ": assigned boxes");
    }
    return {};
}

/// Prints "identical plans on N images" per preset; false at the first difference.
bool check_identical(const snip::plan_config& cfg) {
    snip::plan_workspace ws;
    const auto& ims = g_data.ds.images;
    for (std::size_t i = 0; i < ims.size(); ++i) {
        const auto& im = ims[i];
        const auto view = snip::as_box_view(im.boxes);
        const auto fast = snip::plan_image(cfg, im.width, im.height, view, im.crowd, ws, 0, false);
        const auto naive = snip::plan_image(cfg, im.width, im.height, view, im.crowd, ws, 0, true);
        if (auto d = plan_difference(fast, naive); !d.empty()) {
            std::fprintf(stderr,
                         "[check] %s: fast and naive plans DIFFER on image id %lld (index %zu, "
                         "%dx%d, %zu boxes): %s\n",
                         cfg.name.c_str(), static_cast<long long>(im.id), i, im.width, im.height,
                         im.boxes.size(), d.c_str());
            return false;
        }
    }
    std::printf("[check] %s: fast == naive: identical plans on %zu images\n", cfg.name.c_str(),
                ims.size());
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    std::string path = std::string(SNIP_DATA_DIR) + "/coco_val2017_boxes/instances_val2017_boxes.json";
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        std::fprintf(stderr, "bench_chips: unknown argument '%s'\nusage: %s [benchmark flags] "
                             "[coco.json]\n", argv[1], argv[0]);
        return 2;
    }
    if (argc == 2) path = argv[1];
    if (!load_data(path)) return 1;

    const auto sniper = snip::plan_config::sniper_coco();
    const auto dflt = snip::plan_config::defaults();
    for (const auto* cfg : {&sniper, &dflt})
        if (!check_identical(*cfg)) return 1;

    const std::size_t hw = std::thread::hardware_concurrency();
    const auto& ims = g_data.ds.images;
    snip_bench::add_build_context();
    benchmark::AddCustomContext("data", g_data.label + ": " + g_data.description);
    benchmark::AddCustomContext(
        "data_counts", snip::concat(ims.size(), " images, ", g_data.ds.num_boxes(),
                                            " boxes (", g_data.crowd, " crowd), ",
                                            g_data.empty_images, " images without boxes"));
    benchmark::AddCustomContext(
        "plan_check", snip::concat("fast == naive (chips, order, assignment, valid, "
                                           "uncoverable) on ", ims.size(),
                                           " images for sniper_coco and default"));

    const std::string& d = g_data.label;
    benchmark::RegisterBenchmark(("plan/sniper_coco/fast/" + d).c_str(),
                                 [sniper](benchmark::State& s) { bm_plan(s, sniper, false); })
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("plan/sniper_coco/naive/" + d).c_str(),
                                 [sniper](benchmark::State& s) { bm_plan(s, sniper, true); })
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("plan/default/fast/" + d).c_str(),
                                 [dflt](benchmark::State& s) { bm_plan(s, dflt, false); })
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("plan/default/naive/" + d).c_str(),
                                 [dflt](benchmark::State& s) { bm_plan(s, dflt, true); })
        ->Unit(benchmark::kMillisecond);

    auto* threads = benchmark::RegisterBenchmark(
        ("plan_threads/sniper_coco/" + d).c_str(),
        [sniper](benchmark::State& s) { bm_threads(s, sniper); });
    threads->ArgName("threads")->Arg(1)->Arg(2);
    if (hw > 2) threads->Arg(static_cast<std::int64_t>(hw));
    threads->UseRealTime()->Unit(benchmark::kMillisecond);

    benchmark::RegisterBenchmark("greedy_cover/fast", bm_cover_fast)
        ->ArgName("boxes")->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("greedy_cover/naive", bm_cover_naive)
        ->ArgName("boxes")->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("chip_grid_assign/sniper", [](benchmark::State& s) {
        bm_grid_assign(s, snip::chip_layout::sniper, snip::pixel_convention::inclusive);
    })->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("chip_grid_assign/aligned", [](benchmark::State& s) {
        bm_grid_assign(s, snip::chip_layout::aligned, snip::pixel_convention::continuous);
    })->Unit(benchmark::kMicrosecond);

    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
