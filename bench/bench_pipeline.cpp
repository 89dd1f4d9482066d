// bench_pipeline: chips per second through the SNIPER trainer's data pipeline
// (the trainer, snip::train: decode + one-pass crop/resize to 512 x 512 + per-chip ground
// truth + batching into tensors), on coco128 planned with snip::plan_config::sniper_coco().
//
//   pipeline/<variant>/<data>    the first `chips_per_pass` chips of the shuffled epoch,
//                                batches of 16, 2 threads, a fresh loader (and image cache)
//                                every pass
//       chip_loader   snip::train::chip_loader: 2 workers, Q = 2, 64 MiB LRU of decoded images;
//                     each chip resampled in one pass straight from the original image
//       naive         the same decode, cache, ground truth and 2 threads, but each chip's
//                     image is made by resizing the WHOLE image to the chip's scale
//                     (snip::train::crop_resize over the full image, uint8) and then cropping
//   resample/<variant>/<data>    the pixels of the same chips alone, one thread, images
//                                decoded beforehand
//       onepass       snip::train::fill_chip
//       whole_then_crop  the naive path's resize + crop
//
// Counters: chips/s; speedup_vs_naive = t(naive) / t(variant) from wall times of the two
// variants measured in this run (interleaved, best of 3, as bench_roi does); for the loader
// also cache_hit_rate. <data> is "coco128" (JPEGs under SNIP_DATA_DIR/coco128) or
// "synthetic" when they are absent: 128 images of 640 x 480 made in memory (no JPEG
// decode) with random boxes. Before any timing, main() checks that the one-pass and the
// naive chips agree within one grey level.
//
// Data folder: --data_dir=DIR, else $SNIP_DATA_DIR, else the SNIP_DATA_DIR the build
// defines, else ../shared/data beside the source tree.
//
// Usage: bench_pipeline [--benchmark_min_time=0.5] [--benchmark_filter=REGEX] [--data_dir=DIR]
//
// Built only with the trainer (target sniper_trainer: SNIP_ENABLE_TORCH and the examples).

#include <cstdio>

#include <snip/train/data.hpp>
#include <snip/train/image.hpp>

#include <snip/sniper/dataset_plan.hpp>
#include <snip/core/version.hpp>
#include <snip/core/random.hpp>
#include <snip/io/coco.hpp>
#include <snip/sniper/plan.hpp>

#include <benchmark/benchmark.h>

#include "common.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

constexpr int threads = 2;
constexpr int batch_size = 16;
constexpr std::size_t chips_per_pass = 96;
constexpr std::size_t cache_bytes = std::size_t(64) << 20;
constexpr std::uint64_t seed = 2017;

// ---------------------------------------------------------------------------------
// Data

struct bench_data {
    snip::dataset ds;
    snip::plan_config cfg = snip::plan_config::sniper_coco();
    std::vector<snip::train::chip_job> jobs; ///< the first chips_per_pass of the epoch
    std::size_t epoch_chips = 0;
    snip::train::image_source source;
    std::string label;
    std::string description;
};

bench_data g;

/// A synthetic picture: gradients and texture (a pure function of the index).
snip::train::image synthetic_image(int w, int h, std::uint64_t s) {
    snip::train::image im(w, h);
    snip::splitmix64 r{s};
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            std::uint8_t* p = im.row(y) + 3 * x;
            p[0] = std::uint8_t(x * 255 / (w - 1));
            p[1] = std::uint8_t(y * 255 / (h - 1));
            p[2] = std::uint8_t(r.next() >> 56);
        }
    return im;
}

/// 128 images of 640 x 480 with 2..12 boxes (sides 8..300 px, log-uniform).
snip::dataset synthetic_dataset() {
    snip::dataset ds;
    ds.source = "synthetic";
    ds.categories = {{1, "object"}};
    snip::splitmix64 r{seed};
    for (int i = 0; i < 128; ++i) {
        snip::image_record im;
        im.id = i + 1;
        im.file_name = "synthetic_" + std::to_string(i);
        im.width = 640;
        im.height = 480;
        const int n = 2 + int(r.below(11));
        for (int b = 0; b < n; ++b) {
            const double side = 8.0 * std::pow(300.0 / 8.0, r.uniform());
            const double w = side * (0.7 + 0.6 * r.uniform()), h = side * side / w;
            const double x = r.uniform() * std::max(1.0, 640 - w),
                         y = r.uniform() * std::max(1.0, 480 - h);
            im.boxes.push_back({x, y, std::min(640.0, x + w), std::min(480.0, y + h)});
            im.ann_ids.push_back(i * 100 + b);
            im.categories.push_back(1);
            im.crowd.push_back(0);
        }
        ds.images.push_back(std::move(im));
    }
    return ds;
}

std::string data_dir(const std::string& flag) {
    if (!flag.empty()) return flag;
    if (const char* env = std::getenv("SNIP_DATA_DIR"); env && *env) return env;
#ifdef SNIP_DATA_DIR
    return SNIP_DATA_DIR;
#else
    return (fs::path(__FILE__).parent_path().parent_path().parent_path() / "shared" / "data")
        .string();
#endif
}

void load_data(const std::string& dir) {
    const fs::path ann = fs::path(dir) / "coco128" / "instances_coco128.json";
    const fs::path images = fs::path(dir) / "coco128" / "images";
    if (fs::exists(ann) && fs::is_directory(images)) {
        g.ds = snip::io::read_coco(ann.string());
        g.source = snip::train::files_in(g.ds, images.string());
        g.label = "coco128";
        g.description =
            snip::concat(ann.string(), ": ", g.ds.images.size(), " images, ",
                                 g.ds.num_boxes(), " boxes; JPEG decode from ", images.string());
    } else {
        std::printf("[data] %s not found: synthetic images in memory (no JPEG decode)\n",
                    ann.string().c_str());
        g.ds = synthetic_dataset();
        g.source = [](std::size_t i) {
            const auto& r = g.ds.images.at(i);
            return synthetic_image(r.width, r.height, seed + i);
        };
        g.label = "synthetic";
        g.description = snip::concat("synthetic: ", g.ds.images.size(),
                                             " images of 640 x 480 made in memory, ",
                                             g.ds.num_boxes(), " boxes");
    }
    snip::dataset_plan_options po;
    po.seed = seed;
    const auto plans = snip::plan_dataset(g.cfg, g.ds, nullptr, po);
    snip::train::job_options jo;
    jo.seed = seed;
    auto jobs = snip::train::make_chip_jobs(plans, jo);
    g.epoch_chips = jobs.size();
    jobs.resize(std::min(jobs.size(), chips_per_pass));
    g.jobs = std::move(jobs);
}

// ---------------------------------------------------------------------------------
// The two ways of making a chip

/// The naive chip: the whole image resized to the chip's scale (exact factor, uint8, the
/// scaled image materialised), then the chip cropped out of it, normalised and padded.
void naive_fill(const snip::train::image& src, const snip::train::chip_job& job, snip::train::chw_view dst,
                const snip::train::normalisation& norm) {
    const snip::chip& c = job.chip;
    const int ws = int(src.w * c.factor), hs = int(src.h * c.factor);
    const snip::train::image scaled =
        snip::train::crop_resize(src, {0, 0, ws / c.factor, hs / c.factor}, ws, hs);
    const auto geo = snip::train::chip_crop(c, g.cfg.chip_size, g.cfg.convention);
    const int S = g.cfg.chip_size;
    for (int ch = 0; ch < 3; ++ch) {
        const float a = 1.f / (255.f * norm.std[std::size_t(ch)]);
        const float b = -norm.mean[std::size_t(ch)] / norm.std[std::size_t(ch)];
        float* plane = dst.data + ch * dst.plane_stride;
        for (int y = 0; y < S; ++y) {
            float* row = plane + y * dst.row_stride;
            const int Y = c.rect.y1 + y;
            for (int x = 0; x < S; ++x) {
                const int X = c.rect.x1 + (job.flipped ? geo.width - 1 - x : x);
                const bool inside =
                    x < geo.width && y < geo.height && X >= 0 && X < ws && Y >= 0 && Y < hs;
                row[x] = inside ? float(scaled.at(X, Y, ch)) * a + b : 0.f;
            }
        }
    }
}

/// One pass of the naive pipeline: `threads` threads take chips in turn, each decoding
/// through a shared LRU, making the chip the naive way into its batch tensor and building
/// its ground truth. Returns the number of chips.
std::size_t naive_pass() {
    snip::train::image_cache cache(cache_bytes);
    const snip::train::class_map classes(g.ds);
    const std::int64_t S = g.cfg.chip_size;
    const std::size_t nb = (g.jobs.size() + batch_size - 1) / batch_size;
    std::vector<at::Tensor> batches(nb);
    std::vector<std::vector<snip::train::chip_target>> targets(nb);
    for (std::size_t k = 0; k < nb; ++k) {
        const std::size_t n = std::min<std::size_t>(batch_size, g.jobs.size() - k * batch_size);
        batches[k] = at::empty({std::int64_t(n), 3, S, S}, at::kFloat);
        targets[k].resize(n);
    }
    std::atomic<std::size_t> next{0};
    std::exception_ptr err;
    auto work = [&] {
        try {
            for (std::size_t j; (j = next.fetch_add(1)) < g.jobs.size();) {
                const auto& job = g.jobs[j];
                const auto img = cache.get(job.image, [&] { return g.source(job.image); });
                const std::size_t k = j / batch_size, i = j % batch_size;
                float* d = batches[k].data_ptr<float>() + std::int64_t(i) * 3 * S * S;
                naive_fill(*img, job, snip::train::chw_view{d, S, S * S}, {});
                targets[k][i] = snip::train::make_target(g.ds, g.cfg, job, classes);
            }
        } catch (...) {
            err = std::current_exception();
            next.store(g.jobs.size());
        }
    };
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back(work);
    for (auto& t : pool)
        t.join();
    if (err) std::rethrow_exception(err);
    benchmark::DoNotOptimize(batches.data());
    return g.jobs.size();
}

double g_hit_rate = 0;

/// One pass through snip::train::chip_loader. Returns the number of chips.
std::size_t loader_pass() {
    snip::train::loader_options o;
    o.batch_size = batch_size;
    o.workers = threads;
    o.max_batches = 2;
    o.cache_bytes = cache_bytes;
    snip::train::chip_loader loader(g.ds, g.cfg, g.jobs, g.source, o);
    std::size_t chips = 0;
    while (auto b = loader.next()) {
        benchmark::DoNotOptimize(b->images.data_ptr<float>());
        chips += b->targets.size();
    }
    const double h = double(loader.cache().hits()), m = double(loader.cache().misses());
    g_hit_rate = h / std::max(1.0, h + m);
    return chips;
}

/// Decoded images of the jobs, for the resample rows.
std::map<std::size_t, snip::train::image> g_decoded;
std::vector<float> g_out;

void resample_onepass() {
    const std::int64_t S = g.cfg.chip_size;
    for (const auto& job : g.jobs)
        snip::train::fill_chip(g_decoded.at(job.image), g.cfg, job,
                          snip::train::chw_view{g_out.data(), S, S * S});
    benchmark::DoNotOptimize(g_out.data());
}

void resample_naive() {
    const std::int64_t S = g.cfg.chip_size;
    for (const auto& job : g.jobs)
        naive_fill(g_decoded.at(job.image), job, snip::train::chw_view{g_out.data(), S, S * S}, {});
    benchmark::DoNotOptimize(g_out.data());
}

// ---------------------------------------------------------------------------------
// Rows and in-run ratios (as bench_roi)

struct variant {
    std::string name;
    std::function<void()> run;
};
struct row_group {
    std::string name;
    std::vector<variant> variants;
};
std::vector<row_group> g_groups;

double seconds_since(steady::time_point t0) {
    return std::chrono::duration<double>(steady::now() - t0).count();
}

/// Wall seconds per pass of every variant of a group: best of 3 rounds, variants
/// interleaved within a round, each repeated for >= 0.5 s. Measured once per run.
const std::map<std::string, double>& measured_times(const row_group& grp) {
    static std::map<std::string, std::map<std::string, double>> cache;
    if (auto it = cache.find(grp.name); it != cache.end()) return it->second;
    std::map<std::string, double> t;
    for (const auto& v : grp.variants)
        t[v.name] = std::numeric_limits<double>::infinity();
    for (int round = 0; round < 3; ++round)
        for (const auto& v : grp.variants) {
            std::size_t calls = 0;
            const auto t0 = steady::now();
            double s = 0;
            do {
                v.run();
                ++calls;
                s = seconds_since(t0);
            } while (s < 0.5);
            t[v.name] = std::min(t[v.name], s / double(calls));
        }
    return cache.emplace(grp.name, std::move(t)).first->second;
}

void bm_variant(benchmark::State& state, const row_group* grp, const variant* v) {
    for (auto _ : state)
        v->run();
    state.counters["chips/s"] =
        benchmark::Counter(double(g.jobs.size()), benchmark::Counter::kIsIterationInvariantRate);
    const auto& t = measured_times(*grp);
    const double self = t.at(v->name);
    state.counters["chips/s_best"] = double(g.jobs.size()) / self;
    for (const char* naive : {"naive", "whole_then_crop"})
        if (v->name != naive && t.count(naive))
            state.counters["speedup_vs_naive"] = t.at(naive) / self;
    if (v->name == "chip_loader") state.counters["cache_hit_rate"] = g_hit_rate;
}

// ---------------------------------------------------------------------------------
// The guard: the one-pass chips equal the naive ones within one grey level

bool check_agreement() {
    const std::int64_t S = g.cfg.chip_size;
    std::vector<float> a(std::size_t(3 * S * S)), b(a.size());
    const snip::train::normalisation norm;
    const float min_std = std::min({norm.std[0], norm.std[1], norm.std[2]});
    double worst = 0;
    for (std::size_t j = 0; j < std::min<std::size_t>(g.jobs.size(), 8); ++j) {
        const auto& job = g.jobs[j];
        const snip::train::image src = g.source(job.image);
        snip::train::fill_chip(src, g.cfg, job, snip::train::chw_view{a.data(), S, S * S}, norm);
        naive_fill(src, job, snip::train::chw_view{b.data(), S, S * S}, norm);
        for (std::size_t i = 0; i < a.size(); ++i)
            worst = std::max(worst, double(std::fabs(a[i] - b[i])));
    }
    const double grey = worst * 255.0 * min_std; // in grey levels (upper bound)
    std::printf(
        "[check] one-pass vs naive chips: max |difference| %.3g grey levels (tolerance 1)\n", grey);
    return grey <= 1.0;
}

} // namespace

int main(int argc, char** argv) {
    std::string dir_flag;
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        const std::string a = argv[i];
        if (a.rfind("--data_dir=", 0) == 0)
            dir_flag = a.substr(11);
        else
            args.push_back(argv[i]);
    }
    int n = int(args.size());
    benchmark::Initialize(&n, args.data());
    if (n > 1) {
        std::fprintf(stderr,
                     "bench_pipeline: unknown argument '%s'\nusage: %s [benchmark flags] "
                     "[--data_dir=DIR]\n",
                     args[1], args[0]);
        return 2;
    }
    try {
        load_data(data_dir(dir_flag));
        if (g.jobs.empty()) {
            std::fprintf(stderr, "bench_pipeline: the plan has no chips\n");
            return 1;
        }
        if (!check_agreement()) {
            std::fprintf(stderr, "bench_pipeline: one-pass and naive chips disagree\n");
            return 1;
        }
        for (const auto& job : g.jobs)
            if (!g_decoded.count(job.image)) g_decoded.emplace(job.image, g.source(job.image));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_pipeline: %s\n", e.what());
        return 1;
    }
    g_out.resize(std::size_t(3) * std::size_t(g.cfg.chip_size) * std::size_t(g.cfg.chip_size));

    g_groups.push_back(
        {"pipeline", {{"chip_loader", [] { loader_pass(); }}, {"naive", [] { naive_pass(); }}}});
    g_groups.push_back(
        {"resample", {{"onepass", resample_onepass}, {"whole_then_crop", resample_naive}}});

    std::size_t scales[3] = {0, 0, 0};
    for (const auto& j : g.jobs)
        ++scales[std::min(2, j.chip.scale)];
    snip_bench::add_build_context();
    benchmark::AddCustomContext("threads_pipeline", std::to_string(threads));
    benchmark::AddCustomContext("data", g.description);
    benchmark::AddCustomContext(
        "chips", snip::concat(g.jobs.size(), " per pass (first of a shuffled epoch of ",
                                      g.epoch_chips, " positive chips, sniper_coco, seed ", seed,
                                      "); by scale 3 / 1.667 / 512px: ", scales[0], " / ",
                                      scales[1], " / ", scales[2], "; ", g.cfg.chip_size, " x ",
                                      g.cfg.chip_size, " float32 CHW, batches of ", batch_size));
    benchmark::AddCustomContext(
        "ratios", "speedup_vs_naive and chips/s_best: interleaved best-of-3 wall times measured "
                  "in this run; a fresh loader and image cache every pass");

    for (const auto& grp : g_groups)
        for (const auto& v : grp.variants)
            benchmark::RegisterBenchmark(
                (grp.name + "/" + v.name + "/" + g.label).c_str(),
                [gp = &grp, vv = &v](benchmark::State& s) { bm_variant(s, gp, vv); })
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();

    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
