// bench_train_step: wall time of one training step of the SNIPER Faster R-CNN
// (examples/sniper_trainer/detector.hpp) on the CPU - forward_train + backward + one SGD step
// (momentum 0.9, weight decay 1e-4) - per 512 x 512 chip and per single-scale 800 x 1333
// image, for ResNet-18, ResNet-50 and ResNet-101 backbones. This is what SNIPER's claim rests
// on: a chip costs much less than a full-resolution image, so training on a few chips per
// image is cheaper than training on the image; here the program measures by how much.
//
//   train_step/<backbone>/chips_2x512x512          a batch of 2 chips, 3 x 512 x 512
//   train_step/<backbone>/image_1x800x1333         one image, 3 x 800 x 1333 (Faster R-CNN's
//                                                  standard single-scale input)
//   train_step/resnet18/chips_2x512x512/1thread    the chip batch with one intra-op thread
//
// Every row uses 2 intra-op threads (at::set_num_threads; snip's CPU ops in the detector
// follow it) except the 1thread row. The model is SNIPER's (detector_options defaults:
// 21 anchors, res5 dilated, stem + layer1 frozen, RoIAlign head, 128 sampled RoIs per chip)
// with 80 classes and random weights (the backbone's Kaiming init; the time of a step does
// not depend on the weights). The inputs are random normalised pixels; each chip or image has
// 5..10 valid ground-truth boxes of mixed sizes (sides log-uniform from 16 px to 3/4 of the
// shorter side, aspect ratios 1:2..2:1, classes 1..80), seeded. Each row builds its
// batch once, runs `warm-up` untimed steps (allocation, oneDNN primitive caches), then
// Iterations(n) timed steps, a new sampling seed per step as in training.
//
// Counters: chips/s or images/s (Google Benchmark's mean over the timed steps);
// s/chip_best or s/image_best (the fastest timed step, divided by the batch); on image rows
// ratio_image_vs_chip = s/image_best / s/chip_best of the same backbone (its chip row ran
// just before in this run) and pixel_ratio = (800 * 1333) / (512 * 512) = 4.07; on the
// 1thread row speedup_2_vs_1_thread = s/chip_best (1 thread) / s/chip_best (2 threads). A
// ratio above pixel_ratio means a chip costs less per pixel than a full image. After the
// rows, a summary table repeats these numbers (best and mean step times) and the wall time
// of the whole program. Steps of seconds cannot be interleaved as bench_roi interleaves its
// variants, so the ratios compare rows measured one after the other: other processes on
// the same cores show up as a large best/worst spread in the table.
//
// Usage: bench_train_step [--benchmark_filter=REGEX] [--steps=N] [--warmup=N]
//   --steps=N   timed steps of every row instead of the defaults (ResNet-18: 5 per chip
//               row, 3 per image row; ResNet-50: 3 / 2; ResNet-101: 2 / 2)
//   --warmup=N  untimed steps before each row (default 1)
// The default run takes about 5-6 minutes on 2 cores and needs ~6 GB of memory (ResNet-101
// at 800 x 1333).
//
// Built only with the trainer (target sniper_trainer: SNIP_ENABLE_TORCH and the examples).

#include <detector.hpp>

#include <snip/detail/random.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/optim/sgd.h>
#include <torch/version.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#ifndef SNIP_BUILD_TYPE
#define SNIP_BUILD_TYPE ""
#endif
#ifndef SNIP_CXX_FLAGS
#define SNIP_CXX_FLAGS ""
#endif

namespace {

using steady = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------
// The problem

constexpr std::int64_t chip_side = 512, chip_batch = 2;
constexpr std::int64_t image_height = 800, image_width = 1333;
constexpr std::int64_t num_classes = 80;
constexpr int threads = 2;
constexpr double learning_rate = 0.001, momentum = 0.9, weight_decay = 1e-4;
constexpr std::uint64_t seed = 2017;
constexpr double pixel_ratio =
    double(image_height * image_width) / double(chip_side * chip_side);

enum class input_kind { chips, image };

/// One benchmark row.
struct row {
    std::string name;
    int depth = 18;
    input_kind kind = input_kind::chips;
    int threads = 2;
    int steps = 2; ///< timed steps (Iterations)
};

/// What a row measured, per chip or per image (one unit of its batch).
struct measurement {
    double best = 0, mean = 0, worst = 0; ///< seconds per unit
    int steps = 0;
    double first_loss = 0, last_loss = 0;
};

std::vector<row> g_rows;
std::map<std::string, measurement> g_measured; ///< by row name
int g_warmup = 1;

/// 5..10 valid boxes inside width x height (inclusive pixel convention), sides log-uniform in
/// [16, 0.75 * min(width, height)], aspect ratio 1:2..2:1, classes 1..num_classes.
sniper::chip_target random_target(snip::detail::splitmix64& r, int width, int height) {
    const auto n = std::int64_t(5 + r.below(6));
    const double lo = 16.0, hi = 0.75 * std::min(width, height);
    sniper::chip_target t;
    t.boxes = torch::empty({n, 4}, torch::kFloat);
    t.classes = torch::empty({n}, torch::kLong);
    t.states = torch::zeros({n}, torch::kByte); // all valid
    t.gt_index = torch::arange(n, torch::kLong);
    float* b = t.boxes.data_ptr<float>();
    std::int64_t* c = t.classes.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < n; ++i) {
        const double side = lo * std::pow(hi / lo, r.uniform());
        const double aspect = std::pow(2.0, 2.0 * r.uniform() - 1.0);
        const double w = std::min(side * std::sqrt(aspect), width - 1.0);
        const double h = std::min(side / std::sqrt(aspect), height - 1.0);
        const double x = r.uniform() * (width - 1.0 - w), y = r.uniform() * (height - 1.0 - h);
        b[4 * i + 0] = float(x);
        b[4 * i + 1] = float(y);
        b[4 * i + 2] = float(x + w);
        b[4 * i + 3] = float(y + h);
        c[i] = std::int64_t(1 + r.below(num_classes));
    }
    t.width = width;
    t.height = height;
    return t;
}

struct batch {
    torch::Tensor images;
    std::vector<sniper::chip_target> targets;
};

batch make_batch(input_kind kind) {
    const std::int64_t n = kind == input_kind::chips ? chip_batch : 1;
    const std::int64_t h = kind == input_kind::chips ? chip_side : image_height;
    const std::int64_t w = kind == input_kind::chips ? chip_side : image_width;
    snip::detail::splitmix64 r{seed + (kind == input_kind::chips ? 0 : 1)};
    batch b;
    const at::Generator gen = at::detail::createCPUGenerator(seed);
    b.images = torch::randn({n, 3, h, w}, gen, torch::kFloat);
    for (std::int64_t i = 0; i < n; ++i)
        b.targets.push_back(random_target(r, int(w), int(h)));
    return b;
}

std::int64_t total_boxes(const batch& b) {
    std::int64_t n = 0;
    for (const auto& t : b.targets)
        n += t.boxes.size(0);
    return n;
}

// ---------------------------------------------------------------------------------
// The model: one backbone alive at a time (rows of a backbone are registered together)

sniper::detector_options options_for(int depth) {
    sniper::detector_options o;
    o.backbone.depth = depth;
    o.num_classes = num_classes;
    return o;
}

struct model {
    int depth;
    sniper::FasterRCNN net;
    torch::optim::SGD sgd;
    std::uint64_t steps = 0;

    explicit model(int d)
        : depth(d), net(options_for(d)),
          sgd(net->trainable_parameters(), torch::optim::SGDOptions(learning_rate)
                                               .momentum(momentum)
                                               .weight_decay(weight_decay)) {
        net->train();
    }

    /// One training step; returns the total loss.
    double step(const batch& b) {
        sgd.zero_grad();
        const sniper::detector_losses l =
            net->forward_train(b.images, b.targets, snip::detail::mix(seed, steps++));
        const torch::Tensor total = l.total();
        total.backward();
        sgd.step();
        return total.item<double>();
    }
};

std::unique_ptr<model> g_model;

model& model_for(int depth) {
    if (!g_model || g_model->depth != depth) {
        g_model.reset(); // free the previous backbone first
        torch::manual_seed(seed + std::uint64_t(depth));
        g_model = std::make_unique<model>(depth);
    }
    return *g_model;
}

std::int64_t count_parameters(const sniper::FasterRCNN& net, bool trainable) {
    std::int64_t n = 0;
    for (const auto& p : net->parameters())
        if (!trainable || p.requires_grad()) n += p.numel();
    return n;
}

// ---------------------------------------------------------------------------------
// Rows

std::string backbone_name(int depth) { return "resnet" + std::to_string(depth); }

std::string chip_row(int depth, int nthreads) {
    std::string s = "train_step/" + backbone_name(depth) + "/chips_2x512x512";
    if (nthreads != threads) s += "/" + std::to_string(nthreads) + "thread";
    return s;
}

std::string image_row(int depth) {
    return "train_step/" + backbone_name(depth) + "/image_1x800x1333";
}

const measurement* measured(const std::string& name) {
    const auto it = g_measured.find(name);
    return it == g_measured.end() ? nullptr : &it->second;
}

void bm_step(benchmark::State& state, const row* rw) {
    at::set_num_threads(rw->threads);
    try {
        model& m = model_for(rw->depth);
        const batch b = make_batch(rw->kind);
        const double units = double(b.images.size(0));
        measurement res;
        for (int i = 0; i < g_warmup; ++i)
            res.first_loss = m.step(b);
        std::vector<double> seconds;
        double loss = 0;
        for (auto _ : state) {
            const auto t0 = steady::now();
            loss = m.step(b);
            seconds.push_back(std::chrono::duration<double>(steady::now() - t0).count());
        }
        if (g_warmup == 0) res.first_loss = loss;
        res.last_loss = loss;
        if (!std::isfinite(loss)) {
            state.SkipWithError("the loss is not finite");
            at::set_num_threads(threads);
            return;
        }
        res.steps = int(seconds.size());
        res.best = *std::min_element(seconds.begin(), seconds.end()) / units;
        res.worst = *std::max_element(seconds.begin(), seconds.end()) / units;
        double sum = 0;
        for (double s : seconds)
            sum += s;
        res.mean = sum / double(seconds.size()) / units;
        g_measured[rw->name] = res;

        const bool chips = rw->kind == input_kind::chips;
        state.counters[chips ? "chips/s" : "images/s"] =
            benchmark::Counter(units, benchmark::Counter::kIsIterationInvariantRate);
        state.counters[chips ? "s/chip_best" : "s/image_best"] = res.best;
        state.counters["gt_boxes"] = double(total_boxes(b));
        state.counters["loss"] = res.last_loss;
        if (!chips) {
            if (const measurement* c = measured(chip_row(rw->depth, threads)))
                state.counters["ratio_image_vs_chip"] = res.best / c->best;
            state.counters["pixel_ratio"] = pixel_ratio;
        } else if (rw->threads != threads) {
            if (const measurement* c = measured(chip_row(rw->depth, threads)))
                state.counters["speedup_2_vs_1_thread"] = res.best / c->best;
        }
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
    at::set_num_threads(threads);
}

// ---------------------------------------------------------------------------------
// Summary

void print_summary(double wall_seconds) {
    std::printf("\nSummary (seconds per training step per chip / per image; best of the timed "
                "steps, mean in brackets; %d intra-op threads)\n",
                threads);
    std::printf("%-11s %-22s %-24s %-8s %-8s %-10s\n", "model", "s/chip 512x512",
                "s/image 800x1333", "ratio", "pixels", "ratio/pix");
    auto cell = [](const measurement* m) {
        if (!m) return std::string("-");
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.3f (%.3f)", m->best, m->mean);
        return std::string(buf);
    };
    for (int depth : {18, 50, 101}) {
        const measurement* c = measured(chip_row(depth, threads));
        const measurement* i = measured(image_row(depth));
        if (!c && !i) continue;
        char ratio[32] = "-", per_pixel[32] = "-";
        if (c && i) {
            std::snprintf(ratio, sizeof ratio, "%.2f", i->best / c->best);
            std::snprintf(per_pixel, sizeof per_pixel, "%.2f", i->best / c->best / pixel_ratio);
        }
        std::printf("%-11s %-22s %-24s %-8s %-8.2f %-10s\n", backbone_name(depth).c_str(),
                    cell(c).c_str(), cell(i).c_str(), ratio, pixel_ratio, per_pixel);
    }
    std::printf("ratio = s/image / s/chip; pixels = (800*1333)/(512*512); ratio/pix > 1: a chip "
                "costs less per pixel than the full image\n");
    if (const measurement* one = measured(chip_row(18, 1))) {
        const measurement* two = measured(chip_row(18, threads));
        char speedup[32] = "-";
        if (two) std::snprintf(speedup, sizeof speedup, "%.2f", one->best / two->best);
        std::printf("\nresnet18 chips, 1 vs %d intra-op threads: s/chip %s (1 thread) vs %s "
                    "(%d threads): speedup %s\n",
                    threads, cell(one).c_str(), cell(two).c_str(), threads, speedup);
    }
    std::printf("\nStep-time spread (worst / best) per row, > 1.2 suggests interference:\n");
    for (const auto& rw : g_rows)
        if (const measurement* m = measured(rw.name))
            std::printf("  %-44s %d steps, spread %.2f, loss %.4g -> %.4g\n", rw.name.c_str(),
                        m->steps, m->worst / m->best, m->first_loss, m->last_loss);
    std::printf("\nWall time of the whole program: %.1f s\n", wall_seconds);
}

std::string compiler_name() {
#if defined(__clang__)
    return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    return std::string("gcc ") + __VERSION__;
#else
    return "unknown";
#endif
}

std::optional<int> int_flag(const std::string& arg, const std::string& name) {
    const std::string prefix = "--" + name + "=";
    if (arg.rfind(prefix, 0) != 0) return std::nullopt;
    const std::string v = arg.substr(prefix.size());
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < 0 || n > 1000) {
        std::fprintf(stderr, "bench_train_step: bad value in '%s'\n", arg.c_str());
        std::exit(2);
    }
    return int(n);
}

} // namespace

int main(int argc, char** argv) {
    const auto start = steady::now();
    std::optional<int> steps;
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        const std::string a = argv[i];
        if (auto s = int_flag(a, "steps"))
            steps = s;
        else if (auto w = int_flag(a, "warmup"))
            g_warmup = *w;
        else
            args.push_back(argv[i]);
    }
    if (steps && *steps == 0) {
        std::fprintf(stderr, "bench_train_step: --steps must be >= 1\n");
        return 2;
    }
    int n = int(args.size());
    benchmark::Initialize(&n, args.data());
    if (n > 1) {
        std::fprintf(stderr,
                     "bench_train_step: unknown argument '%s'\nusage: %s [benchmark flags] "
                     "[--steps=N] [--warmup=N]\n",
                     args[1], args[0]);
        return 2;
    }
    at::set_num_threads(threads);

    // {depth, timed steps per chip row, per image row}
    const int plan[3][3] = {{18, 5, 3}, {50, 3, 2}, {101, 2, 2}};
    for (const auto& p : plan) {
        const int depth = p[0];
        g_rows.push_back({chip_row(depth, threads), depth, input_kind::chips, threads,
                          steps.value_or(p[1])});
        if (depth == 18)
            g_rows.push_back(
                {chip_row(depth, 1), depth, input_kind::chips, 1, steps.value_or(p[1])});
        g_rows.push_back({image_row(depth), depth, input_kind::image, threads,
                          steps.value_or(p[2])});
    }

    std::string build = SNIP_BUILD_TYPE;
    if (build.empty()) build = "(none)";
#ifdef NDEBUG
    build += ", NDEBUG";
#else
    build += ", assertions ON (not a release build: numbers are not representative)";
#endif
    std::string params;
    for (int depth : {18, 50, 101}) {
        const sniper::FasterRCNN net(options_for(depth));
        params += snip::detail::concat(params.empty() ? "" : "; ", backbone_name(depth), " ",
                                       count_parameters(net, false) / 1000000, "M (",
                                       count_parameters(net, true) / 1000000, "M trainable)");
    }
    const sniper::detector_options o = options_for(18);
    benchmark::AddCustomContext(
        "snip_version",
        snip::detail::concat(SNIP_VERSION_MAJOR, ".", SNIP_VERSION_MINOR, ".", SNIP_VERSION_PATCH));
    benchmark::AddCustomContext("libtorch", TORCH_VERSION);
    benchmark::AddCustomContext("compiler", compiler_name());
    benchmark::AddCustomContext("build_type", build);
    benchmark::AddCustomContext("cxx_flags", SNIP_CXX_FLAGS);
    benchmark::AddCustomContext("threads_available",
                                std::to_string(std::thread::hardware_concurrency()));
    benchmark::AddCustomContext("threads_intra_op",
                                snip::detail::concat(threads, " (1 on the 1thread row)"));
    benchmark::AddCustomContext(
        "model",
        snip::detail::concat("SNIPER Faster R-CNN, ", num_classes, " classes, ",
                             o.anchors.templates().size(), " anchors, res5 dilated, frozen stem + "
                             "layer1, RPN ", o.rpn_channels, ", head 1x1 ", o.head_channels,
                             " -> RoIAlign ", o.pool_size, "x", o.pool_size, " -> 2 FC ",
                             o.fc_channels, ", ", o.rcnn.batch, " RoIs per chip sampled; random "
                             "weights (Kaiming); parameters: ", params));
    benchmark::AddCustomContext(
        "step", snip::detail::concat("forward_train + backward + SGD step (lr ", learning_rate,
                                     ", momentum ", momentum, ", weight decay ", weight_decay,
                                     "); ", g_warmup, " untimed warm-up step(s) per row"));
    benchmark::AddCustomContext(
        "inputs", snip::detail::concat("chips: ", chip_batch, " x 3 x ", chip_side, " x ",
                                       chip_side, "; image: 1 x 3 x ", image_height, " x ",
                                       image_width, "; float32 N(0, 1) pixels; 5..10 valid gt "
                                       "boxes per chip/image, sides log-uniform 16 px .. 3/4 of "
                                       "the shorter side, seed ", seed));
    benchmark::AddCustomContext(
        "ratios", "ratio_image_vs_chip and speedup_2_vs_1_thread: best timed steps of rows "
                  "measured one after the other in this run");

    for (const auto& rw : g_rows)
        benchmark::RegisterBenchmark(rw.name.c_str(),
                                     [r = &rw](benchmark::State& s) { bm_step(s, r); })
            ->Unit(benchmark::kSecond)
            ->UseRealTime()
            ->Iterations(rw.steps);

    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    g_model.reset();
    print_summary(std::chrono::duration<double>(steady::now() - start).count());
    return 0;
}
