// bench_train_step: wall time of one SNIPER Faster R-CNN training step on the CPU
// (trainer/include/snip/train/detector.hpp: forward_train + backward + one SGD step) per 512 x 512
// chip and per single-scale 800 x 1333 image, for ResNet-18, ResNet-50 and ResNet-101
// backbones. SNIPER's claim rests on this: a chip costs much less than a full-resolution image,
// so training on a few chips per image beats training on the image. The program measures the
// cost ratio image / chip next to the pixel ratio (800 * 1333) / (512 * 512) = 4.07.
//
//   train_step/<backbone>/chips_2x512x512          a batch of 2 chips, 2 x 3 x 512 x 512
//   train_step/<backbone>_plain/chips_2x512x512    the same with the plain network (counter
//                                                  sniper_vs_plain: the sniper row's s/chip
//                                                  over this row's)
//   train_step/resnet18/chips_2x512x512/1thread    the same with one intra-op thread
//   train_step/<backbone>/image_1x800x1333         one image, 1 x 3 x 800 x 1333 (Faster
//                                                  R-CNN's standard single-scale input)
//
// Model: SNIPER's (detector_options defaults, the original's network: 21 anchors, deformable
// res5, stem + layer1 frozen, RPN on concat(res4, res5), deformable RoI pooling head on the
// same; _plain rows: detector_options::plain(), dilated res5, RPN on res4, RoIAlign; every
// RoI of a chip or image, up to 300 proposals + gt, as the original), 80 classes,
// random weights: the backbone's Kaiming init, with the last frozen BatchNorm of every residual
// branch scaling it by 0.2 so that a random ResNet-101 keeps finite losses (model::make_net);
// the work of a step does not depend on the weights. SGD with momentum 0.9, weight decay 1e-4,
// lr 0.015 per 16 chips (SNIPER's) scaled to 2. Inputs: random N(0, 1) pixels; each chip or
// image has 5..10 valid ground-truth boxes (sides log-uniform from 16 px to 3/4 of its
// shorter side, aspect ratios 1:2..2:1, classes 1..80), seeded.
//
// Threads: 2 intra-op threads on every row but the 1thread row (at::set_num_threads, which
// snip's CPU ops in the detector follow; OpenBLAS's own threads, which it does not control,
// are set to the same number when the process has OpenBLAS).
//
// Each row builds its batch once, runs --warmup untimed steps (allocations, oneDNN primitive
// caches), then Iterations(n) timed steps with a new sampling seed each, as in training.
// Counters: chips/s or images/s (Google Benchmark's mean over the timed steps); s/chip_best or
// s/image_best (the fastest timed step divided by the batch size); gt_boxes and loss (the last
// step's) of the batch; on image rows ratio_image_vs_chip = s/image_best / s/chip_best of the
// same backbone (its chip row ran just before, in this run) and pixel_ratio; on the 1thread row
// speedup_2_vs_1_thread = s/chip_best (1 thread) / s/chip_best (2 threads). A ratio above the
// pixel ratio means a chip costs less per pixel than the full image. After the rows a summary
// table repeats the numbers (best and mean), each row's step-time spread and the program's
// wall time. Steps last seconds, so unlike bench_roi's variants they are not interleaved: the
// ratios compare rows measured one after the other, and other processes on the same cores
// show up as a large worst / best spread.
//
// Memory: by default malloc is told never to return memory to the kernel (mmap off, heap never
// trimmed; see keep_memory): with glibc's default policy every step page-faults its big
// activations in again (~1M page faults and 20-27% of the CPU time in the kernel per 800 x 1333
// step with ResNet-50/101, against 6-14% for the chips), by an amount that also depends on
// which rows ran before in the same process. --glibc_malloc keeps glibc's default to measure
// that too. Counters sys_share (kernel / process CPU time over the timed steps) and
// faults/step (minor page faults) show it.
//
// Usage: bench_train_step [--benchmark_filter=REGEX] [--steps=N] [--warmup=N] [--glibc_malloc]
//   --steps=N    timed steps of every row instead of the defaults (ResNet-18: 8 per chip row,
//                4 per image row; ResNet-50: 4 / 3; ResNet-101: 3 / 3)
//   --warmup=N   untimed steps before each row's timed ones (default 1)
// The default run takes about 1.5 minutes on 2 idle cores (several times that on busy ones)
// and peaks at ~4 GB of memory (ResNet-101 at 800 x 1333).
//
// Built only with the trainer (target sniper_trainer: SNIP_ENABLE_TORCH and the examples).

#include <snip/train/detector.hpp>

#include <snip/core/random.hpp>
#include <snip/core/version.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/optim/sgd.h>
#include <torch/version.h>

#include <benchmark/benchmark.h>

#include "common.hpp"

#include <dlfcn.h>
#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------
// The problem

constexpr std::int64_t chip_side = 512, chip_batch = 2;
constexpr std::int64_t image_height = 800, image_width = 1333;
constexpr std::int64_t num_classes = 80;
constexpr int threads = 2;
// SNIPER's SGD: lr 0.015 for 16 chips a batch, here scaled to 2 chips.
constexpr double learning_rate = 0.015 * 2 / 16, momentum = 0.9, weight_decay = 1e-4;
constexpr double residual_scale = 0.2; ///< see model::make_net
constexpr std::uint64_t seed = 2017;
constexpr double pixel_ratio = double(image_height * image_width) / double(chip_side * chip_side);

enum class input_kind { chips, image };

/// One benchmark row.
struct row {
    std::string name;
    int depth = 18;
    input_kind kind = input_kind::chips;
    int threads = 2;
    int steps = 2; ///< timed steps (Iterations)
    bool plain = false; ///< detector_options::plain() instead of the default sniper network
};

/// What a row measured, per chip or per image (one unit of its batch).
struct measurement {
    double best = 0, mean = 0, worst = 0; ///< seconds per unit
    int steps = 0;
    double first_loss = 0, last_loss = 0;
    std::vector<double> step_seconds; ///< every timed step, whole batch
    double sys_share = 0;             ///< kernel CPU time / process CPU time over the timed steps
    double faults_per_step = 0;       ///< minor page faults per timed step
};

/// Process CPU seconds (user, system) and minor page faults so far, every thread.
struct usage {
    double user = 0, sys = 0;
    long faults = 0;
    static usage now() {
        rusage r{};
        getrusage(RUSAGE_SELF, &r);
        auto sec = [](const timeval& t) { return double(t.tv_sec) + 1e-6 * double(t.tv_usec); };
        return {sec(r.ru_utime), sec(r.ru_stime), r.ru_minflt};
    }
};

/// OpenBLAS (pthreads) runs the GEMMs of LibTorch's non-oneDNN convolutions and linear
/// layers on its own threads, which at::set_num_threads does not control; set_threads sets
/// both when the process has OpenBLAS.
using blas_set_threads_fn = void (*)(int);
blas_set_threads_fn openblas_set_threads() {
    static const auto f =
        reinterpret_cast<blas_set_threads_fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    return f;
}

void set_threads(int n) {
    at::set_num_threads(n);
    if (const auto f = openblas_set_threads()) f(n);
}

/// The allocator policy. LibTorch's CPU tensors come from malloc; with glibc's default policy
/// big blocks are mmap'ed and returned on free (the threshold adapting to what the process
/// freed before), so every step page-faults its activations in again, and how much depends
/// on which rows ran earlier in the process. `keep` makes malloc never use mmap and never trim
/// the heap: memory once touched stays (as with a caching allocator, jemalloc or tcmalloc),
/// and rows measure compute rather than the kernel zeroing pages. Returns the description.
std::string keep_memory(bool keep) {
#if defined(__GLIBC__)
    if (keep && mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, -1) == 1)
        return "glibc malloc, mmap off and heap never trimmed (pass --glibc_malloc for "
               "glibc's default policy)";
    return keep ? "glibc malloc, default policy (mallopt failed)"
                : "glibc malloc, default policy (--glibc_malloc)";
#else
    (void)keep;
    return "the C library's default malloc policy";
#endif
}

std::vector<row> g_rows;
std::map<std::string, measurement> g_measured; ///< by row name
int g_warmup = 1;

/// 5..10 valid boxes inside width x height (inclusive pixel convention), sides log-uniform in
/// [16, 0.75 * min(width, height)], aspect ratio 1:2..2:1, classes 1..num_classes.
snip::train::chip_target random_target(snip::splitmix64& r, int width, int height) {
    const auto n = std::int64_t(5 + r.below(6));
    const double lo = 16.0, hi = 0.75 * std::min(width, height);
    snip::train::chip_target t;
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
    std::vector<snip::train::chip_target> targets;
};

batch make_batch(input_kind kind) {
    const std::int64_t n = kind == input_kind::chips ? chip_batch : 1;
    const std::int64_t h = kind == input_kind::chips ? chip_side : image_height;
    const std::int64_t w = kind == input_kind::chips ? chip_side : image_width;
    snip::splitmix64 r{seed + (kind == input_kind::chips ? 0 : 1)};
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

snip::train::detector_options options_for(int depth, bool plain = false) {
    snip::train::detector_options o =
        plain ? snip::train::detector_options::plain() : snip::train::detector_options::sniper();
    o.backbone.depth = depth;
    o.num_classes = num_classes;
    return o;
}

struct model {
    int depth;
    bool plain;
    snip::train::FasterRCNN net;
    torch::optim::SGD sgd;
    std::uint64_t steps = 0;

    model(int d, bool p)
        : depth(d), plain(p), net(make_net(d, p)),
          sgd(net->trainable_parameters(), torch::optim::SGDOptions(learning_rate)
                                               .momentum(momentum)
                                               .weight_decay(weight_decay)) {
        net->train();
    }

    /// The detector with random weights. With identity frozen BatchNorms, each Kaiming-
    /// initialised residual block roughly triples the variance of its input, and ResNet-101's
    /// 33 blocks would reach activations ~1e7 and losses whose first SGD step overflows. A
    /// trained network keeps them in range; here the last BatchNorm of every residual branch
    /// scales it by residual_scale (weights stay random; the work of a step is the same).
    static snip::train::FasterRCNN make_net(int d, bool p) {
        snip::train::FasterRCNN n(options_for(d, p));
        torch::NoGradGuard ng;
        for (const auto& m : n->backbone->modules(/*include_self=*/false)) {
            if (auto* b = m->as<snip::train::BottleneckImpl>()) b->bn3->weight.fill_(residual_scale);
            if (auto* b = m->as<snip::train::BasicBlockImpl>()) b->bn2->weight.fill_(residual_scale);
        }
        return n;
    }

    /// One training step; returns the total loss.
    double step(const batch& b) {
        sgd.zero_grad();
        const snip::train::detector_losses l =
            net->forward_train(b.images, b.targets, snip::mix(seed, steps++));
        const torch::Tensor total = l.total();
        total.backward();
        sgd.step();
        return total.item<double>();
    }
};

std::unique_ptr<model> g_model;

model& model_for(int depth, bool plain) {
    if (!g_model || g_model->depth != depth || g_model->plain != plain) {
        g_model.reset(); // free the previous backbone first
        torch::manual_seed(seed + std::uint64_t(depth));
        g_model = std::make_unique<model>(depth, plain);
    }
    return *g_model;
}

std::int64_t count_parameters(const snip::train::FasterRCNN& net, bool trainable) {
    std::int64_t n = 0;
    for (const auto& p : net->parameters())
        if (!trainable || p.requires_grad()) n += p.numel();
    return n;
}

// ---------------------------------------------------------------------------------
// Rows

std::string backbone_name(int depth) {
    return "resnet" + std::to_string(depth);
}

std::string chip_row(int depth, int nthreads, bool plain = false) {
    std::string s = "train_step/" + backbone_name(depth) + (plain ? "_plain" : "") +
                    "/chips_2x512x512";
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
    set_threads(rw->threads);
    try {
        model& m = model_for(rw->depth, rw->plain);
        const batch b = make_batch(rw->kind);
        const double units = double(b.images.size(0));
        measurement res;
        for (int i = 0; i < g_warmup; ++i)
            res.first_loss = m.step(b);
        std::vector<double> seconds;
        double loss = 0;
        const usage u0 = usage::now();
        for (auto _ : state) {
            const auto t0 = steady::now();
            loss = m.step(b);
            seconds.push_back(std::chrono::duration<double>(steady::now() - t0).count());
        }
        const usage u1 = usage::now();
        if (g_warmup == 0) res.first_loss = loss;
        res.last_loss = loss;
        if (!std::isfinite(loss)) {
            state.SkipWithError("the loss is not finite");
            set_threads(threads);
            return;
        }
        res.steps = int(seconds.size());
        res.best = *std::min_element(seconds.begin(), seconds.end()) / units;
        res.worst = *std::max_element(seconds.begin(), seconds.end()) / units;
        double sum = 0;
        for (double s : seconds)
            sum += s;
        res.mean = sum / double(seconds.size()) / units;
        res.step_seconds = seconds;
        const double cpu = (u1.user - u0.user) + (u1.sys - u0.sys);
        res.sys_share = cpu > 0 ? (u1.sys - u0.sys) / cpu : 0.0;
        res.faults_per_step = double(u1.faults - u0.faults) / double(seconds.size());
        g_measured[rw->name] = res;

        const bool chips = rw->kind == input_kind::chips;
        state.counters[chips ? "chips/s" : "images/s"] =
            benchmark::Counter(units, benchmark::Counter::kIsIterationInvariantRate);
        state.counters[chips ? "s/chip_best" : "s/image_best"] = res.best;
        state.counters["gt_boxes"] = double(total_boxes(b));
        state.counters["loss"] = res.last_loss;
        state.counters["sys_share"] = res.sys_share;
        state.counters["faults/step"] = res.faults_per_step;
        if (!chips) {
            if (const measurement* c = measured(chip_row(rw->depth, threads)))
                state.counters["ratio_image_vs_chip"] = res.best / c->best;
            state.counters["pixel_ratio"] = pixel_ratio;
        } else if (rw->threads != threads) {
            if (const measurement* c = measured(chip_row(rw->depth, threads)))
                state.counters["speedup_2_vs_1_thread"] = res.best / c->best;
        } else if (rw->plain) {
            if (const measurement* c = measured(chip_row(rw->depth, threads)))
                state.counters["sniper_vs_plain"] = c->best / res.best;
        }
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
    set_threads(threads);
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
    std::printf("\nThe original's network (sniper: deformable res5, RPN on res4+res5, deformable "
                "RoI pooling) against the plain one (dilated res5, RPN on res4, RoIAlign), s/chip "
                "512x512:\n");
    for (int depth : {18, 50, 101}) {
        const measurement* s = measured(chip_row(depth, threads));
        const measurement* p = measured(chip_row(depth, threads, true));
        if (!s || !p) continue;
        std::printf("%-11s sniper %s, plain %s: sniper / plain %.2f\n",
                    backbone_name(depth).c_str(), cell(s).c_str(), cell(p).c_str(),
                    s->best / p->best);
    }
    if (const measurement* one = measured(chip_row(18, 1))) {
        const measurement* two = measured(chip_row(18, threads));
        char speedup[32] = "-";
        if (two) std::snprintf(speedup, sizeof speedup, "%.2f", one->best / two->best);
        std::printf("\nresnet18 chips, 1 vs %d intra-op threads: s/chip %s (1 thread) vs %s "
                    "(%d threads): speedup %s\n",
                    threads, cell(one).c_str(), cell(two).c_str(), threads, speedup);
    }
    std::printf("\nSteps per row (seconds per step of the whole batch; spread = worst / best, "
                "> 1.2 suggests interference; loss of the last warm-up step -> the last step):\n");
    for (const auto& rw : g_rows)
        if (const measurement* m = measured(rw.name)) {
            std::string steps;
            for (double s : m->step_seconds)
                steps += snip::concat(steps.empty() ? "" : " ", std::round(s * 100) / 100);
            std::printf("  %-44s spread %.2f, loss %.4g -> %.4g, kernel CPU %2.0f%%, %.3gM "
                        "page faults/step, steps: %s\n",
                        rw.name.c_str(), m->worst / m->best, m->first_loss, m->last_loss,
                        100 * m->sys_share, m->faults_per_step / 1e6, steps.c_str());
        }
    std::printf("\nWall time of the whole program: %.1f s\n", wall_seconds);
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
    bool glibc_malloc = false;
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        const std::string a = argv[i];
        if (auto s = int_flag(a, "steps"))
            steps = s;
        else if (auto w = int_flag(a, "warmup"))
            g_warmup = *w;
        else if (a == "--glibc_malloc")
            glibc_malloc = true;
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
    const std::string malloc_policy = keep_memory(!glibc_malloc);
    const int default_threads = at::get_num_threads();
    set_threads(threads);

    // {depth, timed steps per chip row, per image row}
    const int plan[3][3] = {{18, 8, 4}, {50, 4, 3}, {101, 3, 3}};
    for (const auto& p : plan) {
        const int depth = p[0];
        g_rows.push_back(
            {chip_row(depth, threads), depth, input_kind::chips, threads, steps.value_or(p[1])});
        g_rows.push_back({chip_row(depth, threads, true), depth, input_kind::chips, threads,
                          steps.value_or(p[1]), /*plain=*/true});
        if (depth == 18)
            g_rows.push_back(
                {chip_row(depth, 1), depth, input_kind::chips, 1, steps.value_or(p[1])});
        g_rows.push_back(
            {image_row(depth), depth, input_kind::image, threads, steps.value_or(p[2])});
    }

    std::string params;
    for (int depth : {18, 50, 101}) {
        const snip::train::FasterRCNN net(options_for(depth));
        params += snip::concat(params.empty() ? "" : "; ", backbone_name(depth), " ",
                                       count_parameters(net, false) / 1000000, "M (",
                                       count_parameters(net, true) / 1000000, "M trainable)");
    }
    const snip::train::detector_options o = options_for(18);
    snip_bench::add_build_context();
    benchmark::AddCustomContext("libtorch", TORCH_VERSION);
    benchmark::AddCustomContext(
        "threads_intra_op",
        snip::concat(
            threads, " (1 on the 1thread row; LibTorch's default here: ", default_threads,
            "), OpenBLAS ",
            openblas_set_threads() ? "threads set alike" : "not found (BLAS threads not set)"));
    benchmark::AddCustomContext("model",
                                snip::concat("SNIPER Faster R-CNN, ", num_classes,
                                                     " classes, ", o.anchors.templates().size(),
                                                     " anchors, frozen stem + layer1; sniper "
                                                     "rows: the original's network (deformable "
                                                     "res5, RPN on res4+res5, deformable RoI "
                                                     "pooling), _plain rows: dilated res5, RPN on "
                                                     "res4, RoIAlign; RPN ",
                                                     o.rpn_channels, ", head 1x1 ", o.head_channels,
                                                     " -> ", o.pool_size, "x", o.pool_size,
                                                     " -> 2 FC ", o.fc_channels, ", ",
                                                     o.rcnn.batch > 0
                                                         ? std::to_string(o.rcnn.batch) +
                                                               " RoIs per chip sampled"
                                                         : std::string("every RoI of a chip (up "
                                                                       "to 300 proposals + gt)"),
                                                     "; random "
                                                     "weights (Kaiming); parameters: ",
                                                     params));
    benchmark::AddCustomContext(
        "step", snip::concat("forward_train + backward + SGD step (lr ", learning_rate,
                                     ", momentum ", momentum, ", weight decay ", weight_decay,
                                     "); ", g_warmup, " untimed warm-up step(s) per row"));
    benchmark::AddCustomContext(
        "inputs",
        snip::concat("chips: ", chip_batch, " x 3 x ", chip_side, " x ", chip_side,
                             "; image: 1 x 3 x ", image_height, " x ", image_width,
                             "; float32 N(0, 1) pixels; 5..10 valid gt "
                             "boxes per chip/image, sides log-uniform 16 px .. 3/4 of "
                             "the shorter side, seed ",
                             seed));
    benchmark::AddCustomContext("malloc", malloc_policy);
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
