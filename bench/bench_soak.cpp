// bench_soak: leaks and unbounded memory growth of a long run. Trains the tiny detector
// (ResNet-18 width 8, the trainer tests' tiny_model) for 2,000 steps through
// snip::train::train() - the whole loop: per-epoch plans, 2 loader threads and their image
// cache, SGD, log.csv, checkpoints - then runs snip::train::detect_image (the path of
// `snip-train detect`) on 1,000 synthetic images, and records the process's resident memory
// (RSS, /proc/self/statm) every 100 steps and every 100 images.
//
//   soak/train/<N>steps     RSS sampled from train_options::on_log (log_every 100) at every
//                           100th step, and once before the first step
//   soak/detect/<N>images   RSS sampled after every 100th image, and once before the first;
//                           uses the network the train row trained (a fresh one when that row
//                           is filtered out)
//
// The measure (one run, one ratio): after a warm-up (the first 500 steps; the first 100
// images) the process may keep what it has reached but must not keep growing:
//   growth = (largest RSS sample after the warm-up - RSS at the end of the warm-up)
//            / RSS at the end of the warm-up
// must stay under 2%; otherwise the row fails (SkipWithError) and the program exits with 1.
// slope_KiB_per_100 is the least-squares slope of RSS over the samples from the end of the
// warm-up on, in KiB per 100 steps (per 100 images on the detect row): a leak of a few bytes
// per step shows there long before it crosses 2%. heap_* counters (glibc mallinfo2: bytes
// handed out by malloc and not freed) tell a leak (the heap grows) from allocator retention
// (RSS grows, the heap does not).
//
// Counters: rss_start_MiB (before the first step / image), rss_warm_MiB (end of the warm-up),
// rss_end_MiB (last sample), rss_max_MiB (largest after the warm-up), growth_pct,
// slope_KiB_per_100, heap_warm_MiB, heap_end_MiB, heap_growth_pct; train: loss_first,
// loss_last (mean of the first / last 100 steps); detect: detections (total kept).
// Times are wall seconds of the whole phase (manual time, one iteration).
//
// Outputs: a PNG of RSS against step and against image (warm-up shaded, the warm level and
// the +2% limit drawn) and a CSV of every sample (phase, x, rss_MiB, heap_MiB, seconds).
// Their paths: --png=PATH / --csv=PATH, else $SNIP_SOAK_PNG / $SNIP_SOAK_CSV, else soak_rss.png
// and soak_rss.csv in the current folder. The PNG needs the programs' plotting library
// (snip_apps, SNIP_BUILD_APPS=ON); without it only the CSV is written.
//
// Data: synthetic.hpp, 32 training images of 128..192 px (3 classes, objects from 8 px),
// planned at 3 scales (2x, 1x, 0.5x) into 128 x 128 chips, every chip plain and mirrored;
// detection images drawn 100 at a time (a new synthetic set per 100, seed 1000 + k, so the
// program never holds more than 100), each side then resized to the nearest of 128, 160 and
// 192 px. Training writes log.csv every 100 steps and a checkpoint every 500 to a temporary
// folder (removed at the end; --out_dir=DIR keeps them in DIR).
//
// Why the detection sizes are snapped: LibTorch's CPU convolutions keep per-input-shape caches
// (oneDNN's primitive cache, ONEDNN_PRIMITIVE_CACHE_CAPACITY, and ideep's LRU cache,
// LRU_CACHE_CAPACITY; 1024 entries each by default). Images at their drawn sizes give ~115
// padded input shapes, whose primitives keep arriving for thousands of images: with
// --any_sizes RSS rose from 223 to 248 MiB (+11%) over the first 2,300 images and then stayed
// within 0.6 MiB up to image 4,000 (bounded by the caches' capacity, not a leak; with both
// caches off, ONEDNN_PRIMITIVE_CACHE_CAPACITY=0 LRU_CACHE_CAPACITY=1, it stays flat from the
// first 100 images on). Snapped sides give 27 shapes, all seen within the warm-up, so what
// remains is snip's own memory.
//
// Usage: bench_soak [benchmark flags] [--steps=N] [--images=N] [--warmup_steps=N]
//                   [--warmup_images=N] [--png=PATH] [--csv=PATH] [--out_dir=DIR]
//                   [--any_sizes] [--glibc_malloc]
//   --steps=N          training steps (default 2000; a multiple of 100, > warmup_steps)
//   --images=N         detection images (default 1000; a multiple of 100, > warmup_images)
//   --warmup_steps=N   default 500 (a multiple of 100)
//   --warmup_images=N  default 100 (a multiple of 100)
//   --any_sizes        detect images at their drawn sizes (see "Why the detection sizes")
//   --glibc_malloc     keep glibc's dynamic mmap threshold (see "Allocator")
// The default run takes a few minutes on 2 cores.
//
// Allocator: glibc raises its mmap threshold each time an mmap'ed block is freed, after which
// blocks of that size stay resident in the heap or a thread's arena when freed. Under that
// default policy training RSS took one-off steps of 3.8-5.6 MiB after the warm-up (growth
// 1.8%, 2.5% and 2.6% in three runs, at steps 1100-1400), with the bytes in use flat
// (+0.5%): retention, bounded, not a leak, but as large as the 2% this program is meant to
// resolve. With the threshold fixed: 0.3% and 0.7%. So, as bench_train_step fixes
// its policy, this program fixes the threshold at glibc's initial 128 KiB (mallopt
// M_MMAP_THRESHOLD, which turns the adaptation off) unless --glibc_malloc is given.
//
// Built only with the trainer (target snip_trainer: SNIP_ENABLE_TORCH). Not a CTest test.

#include <snip/train/inference.hpp>
#include <snip/train/synthetic.hpp>
#include <snip/train/train.hpp>

#include <snip/core/version.hpp>

#include <ATen/Parallel.h>
#include <torch/version.h>

#include <benchmark/benchmark.h>

#include "common.hpp"

#ifdef SNIP_SOAK_WITH_PLOT
#include <snip_apps/draw.hpp>
#include <snip_apps/plot.hpp>
#endif

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------
// Memory of the process

/// Resident set size in bytes (/proc/self/statm, field 2 in pages); 0 when unreadable.
double resident_bytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, resident = 0;
    const int n = std::fscanf(f, "%lu %lu", &size, &resident);
    std::fclose(f);
    return n == 2 ? double(resident) * double(sysconf(_SC_PAGESIZE)) : 0.0;
}

/// Bytes malloc has handed out and not had back (all arenas, mmap'ed blocks included); -1
/// when the C library cannot tell.
double heap_in_use_bytes() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    const struct mallinfo2 m = mallinfo2();
    return double(m.uordblks) + double(m.hblkhd);
#else
    return -1.0;
#endif
}

constexpr double mib = 1024.0 * 1024.0;

struct sample {
    std::int64_t x = 0; ///< steps or images done
    double rss = 0;     ///< MiB
    double heap = 0;    ///< MiB (-1: unknown)
    double seconds = 0; ///< since the phase started
};

/// What the samples of a phase say about growth after its warm-up.
struct analysis {
    double start = 0, warm = 0, end = 0, max_after = 0; ///< RSS, MiB
    double growth = 0;                                  ///< (max_after - warm) / warm
    double slope_kib_per_100 = 0;
    double heap_warm = 0, heap_end = 0, heap_growth = 0;
};

/// Least-squares slope of y over x.
double slope(const std::vector<double>& x, const std::vector<double>& y) {
    const double n = double(x.size());
    double sx = 0, sy = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
        sx += x[i], sy += y[i];
    const double mx = sx / n, my = sy / n;
    double sxy = 0, sxx = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
    }
    return sxx > 0 ? sxy / sxx : 0.0;
}

/// Throws std::runtime_error when the samples do not cover the warm-up and something after it.
analysis analyse(const std::vector<sample>& s, std::int64_t warmup) {
    const auto warm_it = std::find_if(s.begin(), s.end(), [&](const sample& p) { return p.x == warmup; });
    if (s.empty() || warm_it == s.end() || warm_it + 1 == s.end())
        throw std::runtime_error("no RSS sample at the end of the warm-up, or none after it");
    analysis a;
    a.start = s.front().rss;
    a.warm = warm_it->rss;
    a.end = s.back().rss;
    a.heap_warm = warm_it->heap;
    a.heap_end = s.back().heap;
    double heap_max = a.heap_warm;
    a.max_after = 0;
    std::vector<double> x, y;
    for (auto it = warm_it; it != s.end(); ++it) {
        if (it != warm_it) a.max_after = std::max(a.max_after, it->rss);
        heap_max = std::max(heap_max, it->heap);
        x.push_back(double(it->x));
        y.push_back(it->rss * 1024.0); // KiB
    }
    a.growth = (a.max_after - a.warm) / a.warm;
    a.slope_kib_per_100 = 100.0 * slope(x, y);
    a.heap_growth = a.heap_warm > 0 ? (heap_max - a.heap_warm) / a.heap_warm : 0.0;
    return a;
}

/// The allocator policy. glibc raises its mmap threshold whenever a block it had mmap'ed is
/// freed (up to 32 MiB): later blocks of that size come from the heap or a thread's arena and
/// stay resident after free. RSS then takes one-off steps of several MiB at moments that
/// depend on thread timing, while the bytes in use stay flat. Fixing the threshold at glibc's
/// initial 128 KiB (mallopt, which also turns the adaptation off) makes RSS follow the memory
/// in use; `keep_default` (--glibc_malloc) leaves glibc's policy. Returns the description.
std::string fix_mmap_threshold(bool keep_default) {
#if defined(__GLIBC__)
    if (keep_default) return "glibc malloc, default policy (--glibc_malloc)";
    if (mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1)
        return "glibc malloc, mmap threshold fixed at 128 KiB (no dynamic threshold; "
               "--glibc_malloc for glibc's default)";
    return "glibc malloc, default policy (mallopt failed)";
#else
    (void)keep_default;
    return "the C library's default malloc policy";
#endif
}

// ---------------------------------------------------------------------------------
// Settings

constexpr double growth_limit = 0.02;
constexpr std::int64_t sample_every = 100;
constexpr std::uint64_t seed = 1;

struct settings {
    std::int64_t steps = 2000, images = 1000;
    std::int64_t warmup_steps = 500, warmup_images = 100;
    std::string png = "soak_rss.png", csv = "soak_rss.csv";
    std::string out_dir; ///< empty: a temporary folder, removed at the end
    bool any_sizes = false; ///< detect images at their drawn sizes (see the file comment)
    bool glibc_malloc = false; ///< keep glibc's dynamic mmap threshold (see fix_mmap_threshold)
};

settings g_set;

struct phase {
    std::string name; ///< "train", "detect"
    std::string unit; ///< "step", "image"
    std::int64_t warmup = 0;
    std::vector<sample> samples;
    std::optional<analysis> result;
    double seconds = 0;
    bool ran = false;
};

phase g_train{"train", "step", 0, {}, {}, 0, false};
phase g_detect{"detect", "image", 0, {}, {}, 0, false};
bool g_failed = false;

/// The tiny detector (tests/trainer_test_util.hpp tiny_model): ResNet-18 at width 8 from
/// scratch, RPN 32, head 16 and FC 64 channels.
snip::train::detector_options tiny_model(std::int64_t classes) {
    snip::train::detector_options o;
    o.backbone.depth = 18;
    o.backbone.width = 8;
    o.backbone.frozen_stages = -1;
    o.num_classes = classes;
    o.rpn_channels = 32;
    o.head_channels = 16;
    o.fc_channels = 64;
    return o;
}

snip::train::synthetic_options data_options(int images, std::uint64_t s) {
    snip::train::synthetic_options so;
    so.images = images;
    so.min_side = 128;
    so.max_side = 192;
    so.classes = 3;
    so.min_object = 8.0;
    so.seed = s;
    return so;
}

/// Three scales into 128 px chips: 2x for objects below 40 px, 1x for 24..96, 0.5x above 64.
snip::plan_config soak_plan() {
    snip::plan_config c;
    c.name = "soak";
    c.scales = {snip::scale_spec::by_factor(2.0), snip::scale_spec::by_factor(1.0),
                snip::scale_spec::by_factor(0.5)};
    c.ranges = {snip::valid_range{-1.0, 40.0}, snip::valid_range{24.0, 96.0},
                snip::valid_range{64.0, -1.0}};
    c.chip_size = 128;
    c.stride = 32;
    return c;
}

struct model_state {
    snip::train::synthetic_set train_set = snip::train::make_synthetic(data_options(32, seed));
    snip::train::FasterRCNN net{tiny_model(3)};
};
std::optional<model_state> g_model;

model_state& model() {
    if (!g_model) {
        torch::manual_seed(seed);
        g_model.emplace();
    }
    return *g_model;
}

/// The detection images' sides: each drawn side (128..192) resized to the nearest of 128, 160
/// and 192 px, so the network sees 27 input shapes (9 image sizes x 3 scales) - all of them
/// within the warm-up - instead of ~115 (see --any_sizes and the file comment).
int snapped(int side) {
    return 128 + 32 * std::clamp((side - 128 + 16) / 32, 0, 2);
}

sample take_sample(std::int64_t x, steady::time_point t0) {
    const double heap = heap_in_use_bytes();
    return {x, resident_bytes() / mib, heap < 0 ? -1.0 : heap / mib,
            std::chrono::duration<double>(steady::now() - t0).count()};
}

void report(benchmark::State& state, phase& p) {
    const analysis a = analyse(p.samples, p.warmup);
    p.result = a;
    state.counters["rss_start_MiB"] = a.start;
    state.counters["rss_warm_MiB"] = a.warm;
    state.counters["rss_end_MiB"] = a.end;
    state.counters["rss_max_MiB"] = a.max_after;
    state.counters["growth_pct"] = 100.0 * a.growth;
    state.counters["slope_KiB_per_100"] = a.slope_kib_per_100;
    if (a.heap_warm >= 0) {
        state.counters["heap_warm_MiB"] = a.heap_warm;
        state.counters["heap_end_MiB"] = a.heap_end;
        state.counters["heap_growth_pct"] = 100.0 * a.heap_growth;
    }
    if (a.growth >= growth_limit) {
        g_failed = true;
        const std::string msg = snip::concat(
            "RSS grew ", 100.0 * a.growth, "% after the warm-up (", a.warm, " -> ", a.max_after,
            " MiB; limit ", 100.0 * growth_limit, "%)");
        state.SkipWithError(msg.c_str());
    }
}

// ---------------------------------------------------------------------------------
// The rows

void bm_train(benchmark::State& state) {
    phase& p = g_train;
    p.samples.clear();
    p.warmup = g_set.warmup_steps;
    try {
        model_state& m = model();
        const snip::plan_config cfg = soak_plan();
        const bool temp_dir = g_set.out_dir.empty();
        const fs::path out = temp_dir ? fs::temp_directory_path() /
                                            ("snip-bench-soak-" + std::to_string(getpid()))
                                      : fs::path(g_set.out_dir);
        snip::train::train_options o;
        o.epochs = 1000000; // max_steps ends the run
        o.max_steps = g_set.steps;
        o.batch_size = 2;
        o.base_lr = 0.08; // 0.01 on the 2 chips' mean loss (train.hpp: lr x B / 16)
        o.warmup_chips = 40;
        o.warmup_start = 0.1;
        o.lr_steps = {};
        o.clip_grad_norm = 10.0;
        o.workers = 2;
        o.seed = seed;
        o.out_dir = out.string();
        o.overwrite = true;
        o.log_every = sample_every;
        o.checkpoint_every = 500;
        o.quiet = true;
        o.description = "bench_soak";
        steady::time_point t0 = steady::now();
        o.on_log = [&](const std::vector<snip::train::log_row>& h, const std::string&) {
            const auto done = std::int64_t(h.size());
            if (done % sample_every != 0 || (!p.samples.empty() && p.samples.back().x >= done))
                return;
            p.samples.push_back(take_sample(done, t0));
            if (done % 500 == 0)
                std::printf("[soak] train step %lld: RSS %.1f MiB, %.0f s\n",
                            static_cast<long long>(done), p.samples.back().rss,
                            p.samples.back().seconds);
        };
        snip::train::train_result r;
        for (auto _ : state) {
            t0 = steady::now();
            p.samples.push_back(take_sample(0, t0));
            r = snip::train::train(m.net, m.train_set.ds, cfg,
                                   snip::train::synthetic_source(m.train_set), nullptr, o);
            p.seconds = std::chrono::duration<double>(steady::now() - t0).count();
            state.SetIterationTime(p.seconds);
        }
        p.ran = true;
        if (temp_dir) {
            std::error_code ec;
            fs::remove_all(out, ec);
        }
        if (r.steps_this_run != g_set.steps) {
            state.SkipWithError(
                snip::concat("train stopped after ", r.steps_this_run, " steps").c_str());
            g_failed = true;
            return;
        }
        auto mean_total = [&](std::size_t from, std::size_t to) {
            double s = 0;
            for (std::size_t i = from; i < to; ++i)
                s += r.history[i].total;
            return s / double(to - from);
        };
        const std::size_t n = r.history.size(), k = std::min<std::size_t>(100, n);
        state.counters["loss_first"] = mean_total(0, k);
        state.counters["loss_last"] = mean_total(n - k, n);
        state.counters["steps"] = double(r.steps_this_run);
        report(state, p);
    } catch (const std::exception& e) {
        g_failed = true;
        state.SkipWithError(e.what());
    }
}

void bm_detect(benchmark::State& state) {
    phase& p = g_detect;
    p.samples.clear();
    p.warmup = g_set.warmup_images;
    try {
        model_state& m = model();
        snip::train::inference_options io = snip::train::inference_options::for_plan(soak_plan());
        io.score_threshold = 0.05;
        io.merge.max_per_image = 100;
        io.per_scale_nms = 0.5;
        std::size_t detections = 0;
        for (auto _ : state) {
            const steady::time_point t0 = steady::now();
            p.samples.push_back(take_sample(0, t0));
            std::int64_t done = 0;
            for (std::uint64_t chunk = 0; done < g_set.images; ++chunk) {
                const snip::train::synthetic_set s = snip::train::make_synthetic(
                    data_options(int(sample_every), 1000 + chunk));
                for (const snip::train::image& drawn : s.pixels) {
                    const snip::train::image img =
                        g_set.any_sizes ? drawn
                                        : snip::train::crop_resize(
                                              drawn, {0.0, 0.0, double(drawn.w), double(drawn.h)},
                                              snapped(drawn.w), snapped(drawn.h));
                    const snip::train::image_detections d = snip::train::detect_image(m.net, img, io);
                    detections += d.size();
                    benchmark::DoNotOptimize(d.boxes.data());
                    if (++done % sample_every == 0) p.samples.push_back(take_sample(done, t0));
                }
            }
            p.seconds = std::chrono::duration<double>(steady::now() - t0).count();
            state.SetIterationTime(p.seconds);
            std::printf("[soak] detect: %lld images, RSS %.1f MiB, %.0f s\n",
                        static_cast<long long>(done), p.samples.back().rss, p.seconds);
        }
        p.ran = true;
        state.counters["images"] = double(g_set.images);
        state.counters["detections"] = double(detections);
        report(state, p);
    } catch (const std::exception& e) {
        g_failed = true;
        state.SkipWithError(e.what());
    }
}

// ---------------------------------------------------------------------------------
// Outputs

void write_csv(const std::string& path) {
    std::ofstream f(path);
    if (!f) throw std::runtime_error("cannot write " + path);
    f << "phase,x,rss_MiB,heap_MiB,seconds\n";
    for (const phase* p : {&g_train, &g_detect})
        for (const sample& s : p->samples)
            f << p->name << ',' << s.x << ',' << s.rss << ',' << s.heap << ',' << s.seconds << '\n';
    f.flush();
    if (!f) throw std::runtime_error("cannot write " + path);
}

#ifdef SNIP_SOAK_WITH_PLOT
void write_png(const std::string& path) {
    namespace plot = snip::apps::plot;
    namespace draw = snip::apps::draw;
    std::vector<draw::canvas> panels;
    for (const phase* p : {&g_train, &g_detect}) {
        if (!p->ran || p->samples.empty()) continue;
        plot::chart c;
        c.xlabel = p->unit == "step" ? "training step" : "images detected";
        c.ylabel = "resident memory, MiB";
        std::vector<double> x, y;
        for (const sample& s : p->samples)
            x.push_back(double(s.x)), y.push_back(s.rss);
        const double x_end = x.back();
        c.xbands.push_back({0.0, double(p->warmup), {200, 200, 215}, "warm-up"});
        if (p->result) {
            const analysis& a = *p->result;
            c.title = snip::concat(p->name == "train" ? "train() " : "detect_image ", "RSS: ",
                                   std::round(a.warm * 10) / 10, " MiB after warm-up, growth ",
                                   std::round(a.growth * 1000) / 10, "% (limit 2%)");
            c.data.push_back({"limit: warm + 2%",
                              {double(p->warmup), x_end},
                              {a.warm * (1 + growth_limit), a.warm * (1 + growth_limit)},
                              {214, 39, 40},
                              plot::series::line,
                              1});
            c.data.push_back({"warm level",
                              {double(p->warmup), x_end},
                              {a.warm, a.warm},
                              {120, 120, 120},
                              plot::series::line,
                              1});
        } else {
            c.title = p->name + ": RSS";
        }
        c.data.push_back({"RSS", x, y, {31, 119, 180}, plot::series::line_points, 3});
        panels.push_back(plot::render(c, 800, 420));
    }
    if (panels.empty()) return;
    draw::write_png(plot::grid(panels, 1), path);
}
#endif

void print_summary(double wall) {
    std::printf("\nSoak summary (RSS in MiB; growth = (max after warm-up - warm) / warm, limit "
                "%.0f%%; slope by least squares from the end of the warm-up)\n",
                100 * growth_limit);
    std::printf("%-7s %8s %7s %8s %8s %8s %8s %9s %13s %9s %9s %8s\n", "phase", "count",
                "warm-up", "start", "warm", "max", "end", "growth%", "KiB/100", "heap_warm",
                "heap_end", "seconds");
    for (const phase* p : {&g_train, &g_detect}) {
        if (!p->result) continue;
        const analysis& a = *p->result;
        std::printf("%-7s %8lld %7lld %8.1f %8.1f %8.1f %8.1f %9.2f %13.1f %9.1f %9.1f %8.1f\n",
                    p->name.c_str(), static_cast<long long>(p->samples.back().x),
                    static_cast<long long>(p->warmup), a.start, a.warm, a.max_after, a.end,
                    100 * a.growth, a.slope_kib_per_100, a.heap_warm, a.heap_end, p->seconds);
    }
    for (const phase* p : {&g_train, &g_detect}) {
        if (p->samples.empty()) continue;
        std::string curve;
        for (const sample& s : p->samples)
            curve += snip::concat(curve.empty() ? "" : " ", std::round(s.rss * 10) / 10);
        std::printf("%s RSS every %lld %ss: %s\n", p->name.c_str(),
                    static_cast<long long>(sample_every), p->unit.c_str(), curve.c_str());
    }
    std::printf("Wall time of the whole program: %.1f s\n", wall);
}

std::optional<std::int64_t> int_flag(const std::string& arg, const std::string& name) {
    const std::string prefix = "--" + name + "=";
    if (arg.rfind(prefix, 0) != 0) return std::nullopt;
    const std::string v = arg.substr(prefix.size());
    char* end = nullptr;
    const long long n = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < 0 || n > 100000000 || n % sample_every != 0) {
        std::fprintf(stderr, "bench_soak: bad value in '%s' (a multiple of %lld)\n", arg.c_str(),
                     static_cast<long long>(sample_every));
        std::exit(2);
    }
    return std::int64_t(n);
}

std::optional<std::string> string_flag(const std::string& arg, const std::string& name) {
    const std::string prefix = "--" + name + "=";
    if (arg.rfind(prefix, 0) != 0) return std::nullopt;
    return arg.substr(prefix.size());
}

} // namespace

int main(int argc, char** argv) {
    const auto start = steady::now();
    if (const char* e = std::getenv("SNIP_SOAK_PNG"); e && *e) g_set.png = e;
    if (const char* e = std::getenv("SNIP_SOAK_CSV"); e && *e) g_set.csv = e;
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        const std::string a = argv[i];
        if (auto v = int_flag(a, "steps"))
            g_set.steps = *v;
        else if (auto v2 = int_flag(a, "images"))
            g_set.images = *v2;
        else if (auto v3 = int_flag(a, "warmup_steps"))
            g_set.warmup_steps = *v3;
        else if (auto v4 = int_flag(a, "warmup_images"))
            g_set.warmup_images = *v4;
        else if (auto s = string_flag(a, "png"))
            g_set.png = *s;
        else if (auto s2 = string_flag(a, "csv"))
            g_set.csv = *s2;
        else if (auto s3 = string_flag(a, "out_dir"))
            g_set.out_dir = *s3;
        else if (a == "--any_sizes")
            g_set.any_sizes = true;
        else if (a == "--glibc_malloc")
            g_set.glibc_malloc = true;
        else
            args.push_back(argv[i]);
    }
    if (g_set.steps <= g_set.warmup_steps || g_set.images <= g_set.warmup_images) {
        std::fprintf(stderr, "bench_soak: --steps must exceed --warmup_steps and --images "
                             "--warmup_images (something to measure after the warm-up)\n");
        return 2;
    }
    int n = int(args.size());
    benchmark::Initialize(&n, args.data());
    if (n > 1) {
        std::fprintf(stderr,
                     "bench_soak: unknown argument '%s'\nusage: %s [benchmark flags] [--steps=N] "
                     "[--images=N] [--warmup_steps=N] [--warmup_images=N] [--png=PATH] "
                     "[--csv=PATH] [--out_dir=DIR] [--any_sizes] [--glibc_malloc]\n",
                     args[1], args[0]);
        return 2;
    }
    const std::string malloc_policy = fix_mmap_threshold(g_set.glibc_malloc);
    if (resident_bytes() <= 0) {
        std::fprintf(stderr, "bench_soak: cannot read /proc/self/statm (Linux only)\n");
        return 1;
    }

    const snip::train::detector_options mo = tiny_model(3);
    snip_bench::add_build_context();
    benchmark::AddCustomContext("libtorch", TORCH_VERSION);
    benchmark::AddCustomContext("threads_intra_op", std::to_string(at::get_num_threads()));
    benchmark::AddCustomContext(
        "model", snip::concat("Faster R-CNN, ResNet-18 width ", mo.backbone.width,
                              " from scratch, RPN ", mo.rpn_channels, ", head ",
                              mo.head_channels, ", FC ", mo.fc_channels, ", 3 classes"));
    benchmark::AddCustomContext(
        "train", snip::concat(g_set.steps, " steps of train(): batch 2, 2 loader workers, chips "
                              "128 px at 2x/1x/0.5x, 32 synthetic images of 128..192 px, "
                              "log.csv every 100 steps, checkpoint every 500; warm-up ",
                              g_set.warmup_steps, " steps"));
    benchmark::AddCustomContext(
        "detect",
        snip::concat(g_set.images, " synthetic images through detect_image at 3 scales, 100 "
                     "generated at a time, ",
                     g_set.any_sizes ? "at their drawn sizes, 128..192 px (--any_sizes)"
                                     : "sides resized to 128, 160 or 192 px",
                     "; warm-up ", g_set.warmup_images, " images"));
    benchmark::AddCustomContext(
        "ratio", "growth_pct = (largest RSS after the warm-up - RSS at its end) / RSS at its "
                 "end, measured in this run; a row fails at 2%");
    benchmark::AddCustomContext("malloc", malloc_policy);

    benchmark::RegisterBenchmark(
        ("soak/train/" + std::to_string(g_set.steps) + "steps").c_str(), bm_train)
        ->Unit(benchmark::kSecond)
        ->UseManualTime()
        ->Iterations(1);
    benchmark::RegisterBenchmark(
        ("soak/detect/" + std::to_string(g_set.images) + "images").c_str(), bm_detect)
        ->Unit(benchmark::kSecond)
        ->UseManualTime()
        ->Iterations(1);

    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();

    int rc = g_failed ? 1 : 0;
    try {
        if (!g_train.samples.empty() || !g_detect.samples.empty()) {
            write_csv(g_set.csv);
            std::printf("\n[soak] samples: %s\n", g_set.csv.c_str());
#ifdef SNIP_SOAK_WITH_PLOT
            write_png(g_set.png);
            std::printf("[soak] curve: %s\n", g_set.png.c_str());
#else
            std::printf("[soak] no PNG: built without the programs' plotting (snip_apps)\n");
#endif
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_soak: %s\n", e.what());
        rc = 1;
    }
    print_summary(std::chrono::duration<double>(steady::now() - start).count());
    if (g_failed) std::printf("bench_soak: FAILED (see the rows above)\n");
    return rc;
}
