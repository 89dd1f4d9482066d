// bench_dist: what data-parallel training (trainer/include/snip/train/distributed.hpp: c10d Gloo
// over loopback, c10d's DDP Reducer) costs and gains on this machine's CPU cores.
//
// One training step of the SAME global batch (4 chips of 256 x 256, ResNet-18 Faster R-CNN,
// SNIPER's default model, 80 classes, random weights and inputs, seeded) done four ways:
//   dist_step/1proc/1thread   one process, one intra-op thread, 4 chips
//   dist_step/1proc/2threads  one process, two threads, 4 chips (the other use of 2 cores)
//   dist_step/2proc/sync      two processes (this program re-run as ranks 0 and 1), one thread
//                             each, 2 chips each, gradients averaged by the Reducer in buckets
//                             during backward, global loss normalisers all-reduced
//   dist_step/2proc/nosync    the same two processes with no communication at all (each
//                             trains its own 2 chips): the compute-only floor of the row above
// and, in the 2-process run, the all-reduce of one flat float32 tensor as large as every
// trainable gradient together (what the Reducer moves per step), timed alone:
//   allreduce/grads
// A step's time is the slowest rank's (the ranks start every step together, at a barrier).
// Counters: speedup_vs_1thread = 1proc/1thread / 2proc/sync (2 is perfect scaling on two cores),
// scaling_efficiency = speedup / 2, vs_2threads = 1proc/2threads / 2proc/sync (> 1: two ranks
// use the 2 cores better than one process's threads), exposed_comm_share = (sync - nosync) /
// sync (the share of a step spent waiting on communication that backward did not hide),
// allreduce_share = allreduce / 2proc/sync step, values = float32 values all-reduced.
// Usage: bench_dist [--steps=N] [--warmup=N] [--benchmark_filter=...]   (defaults 4 and 1)
// Built only with the trainer and Gloo (SNIP_TORCH_HAS_GLOO).

#include <snip/train/detector.hpp>
#include <snip/train/distributed.hpp>

#include <snip/core/random.hpp>

#include <ATen/Parallel.h>
#include <torch/optim/sgd.h>

#include <benchmark/benchmark.h>

#include <dlfcn.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

constexpr std::int64_t chip_side = 256, global_batch = 4, num_classes = 80;
constexpr std::uint64_t seed = 2017;
int g_steps = 4, g_warmup = 1;
std::map<std::string, std::vector<double>> g_times; ///< seconds per step, by row
double g_grad_values = 0; ///< trainable parameters (values all-reduced per step)

using blas_set_threads_fn = void (*)(int);
void set_threads(int n) {
    at::set_num_threads(n);
    static const auto f =
        reinterpret_cast<blas_set_threads_fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (f) f(n);
}

/// Chips [first, first + n) of the global batch: N(0, 1) pixels and 5..10 valid boxes each,
/// the same whichever process makes them.
std::pair<torch::Tensor, std::vector<snip::train::chip_target>> chips(std::int64_t first, std::int64_t n) {
    std::vector<torch::Tensor> images;
    std::vector<snip::train::chip_target> targets;
    for (std::int64_t c = first; c < first + n; ++c) {
        snip::splitmix64 r{seed * 1000 + std::uint64_t(c)};
        const at::Generator gen = at::detail::createCPUGenerator(seed + std::uint64_t(c));
        images.push_back(torch::randn({3, chip_side, chip_side}, gen, torch::kFloat));
        const auto k = std::int64_t(5 + r.below(6));
        snip::train::chip_target t;
        t.boxes = torch::empty({k, 4}, torch::kFloat);
        t.classes = torch::empty({k}, torch::kLong);
        t.states = torch::zeros({k}, torch::kByte);
        t.gt_index = torch::arange(k, torch::kLong);
        for (std::int64_t i = 0; i < k; ++i) {
            const double side = 16.0 * std::pow(0.75 * chip_side / 16.0, r.uniform());
            const double x = r.uniform() * (double(chip_side) - 1.0 - side);
            const double y = r.uniform() * (double(chip_side) - 1.0 - side);
            t.boxes[i] = torch::tensor({float(x), float(y), float(x + side), float(y + side)});
            t.classes[i] = std::int64_t(1 + r.below(num_classes));
        }
        t.width = int(chip_side);
        t.height = int(chip_side);
        targets.push_back(std::move(t));
    }
    return {torch::stack(images), std::move(targets)};
}

snip::train::FasterRCNN make_net() {
    torch::manual_seed(seed);
    snip::train::detector_options o;
    o.backbone.depth = 18;
    o.num_classes = num_classes;
    snip::train::FasterRCNN net(o);
    torch::NoGradGuard ng; // keep random activations in range (see bench_train_step)
    for (const auto& m : net->backbone->modules(false))
        if (auto* b = m->as<snip::train::BasicBlockImpl>()) b->bn2->weight.fill_(0.2);
    net->train();
    return net;
}

/// Runs warmup + steps training steps of chips [first, first + n); `before_step` runs
/// untimed before each, `backward` does the backward pass. Returns each timed step's seconds.
template <class Before, class Backward>
std::vector<double> run_steps(snip::train::FasterRCNN& net, std::int64_t first, std::int64_t n,
                              const snip::train::batch_share& share, Before&& before_step,
                              Backward&& backward, snip::train::grad_sync* sync) {
    torch::optim::SGD sgd(net->trainable_parameters(),
                          torch::optim::SGDOptions(0.015 * global_batch / 16).momentum(0.9).weight_decay(1e-4));
    const auto [images, targets] = chips(first, n);
    std::vector<double> out;
    for (int s = 0; s < g_warmup + g_steps; ++s) {
        before_step();
        const auto t0 = steady::now();
        sgd.zero_grad();
        if (sync) sync->before_forward();
        const snip::train::detector_losses l =
            net->forward_train(images, targets, snip::mix(seed, std::uint64_t(s)), false, share);
        backward(l.total());
        sgd.step();
        if (s >= g_warmup) out.push_back(std::chrono::duration<double>(steady::now() - t0).count());
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// A rank of the 2-process rows: SNIP_BENCH_DIST=<dir> <rank> <sync|nosync>

int rank_main(const std::string& dir, int rank, const std::string& mode) {
    set_threads(1);
    snip::train::dist_options d;
    d.world_size = 2;
    d.rank = rank;
    d.init = "file://" + dir + "/store_" + mode;
    d.timeout_s = 600;
    auto g = snip::train::dist_group::connect(d, torch::kCPU);
    snip::train::FasterRCNN net = make_net();
    const std::int64_t per = global_batch / 2;
    snip::train::batch_share share;
    std::unique_ptr<snip::train::grad_sync> sync;
    if (mode == "sync") {
        share.first_chip = std::size_t(rank * per);
        share.world = 2;
        share.sum_counts = [&g](std::array<double, 3>& c) {
            const torch::Tensor s = g->all_sum(torch::tensor({c[0], c[1], c[2]}, torch::kDouble));
            c = {s[0].item<double>(), s[1].item<double>(), s[2].item<double>()};
        };
        sync = std::make_unique<snip::train::grad_sync>(*g, net->trainable_parameters(), d.bucket_mb);
    }
    std::vector<double> t = run_steps(
        net, rank * per, per, share, [&] { g->barrier(); },
        [&](const torch::Tensor& loss) {
            if (sync) sync->backward(loss);
            else loss.backward();
        },
        sync.get());
    // The all-reduce of every gradient at once, alone.
    std::int64_t n = 0;
    for (const auto& p : net->trainable_parameters()) n += p.numel();
    std::vector<double> ar;
    for (int s = 0; s < g_warmup + g_steps; ++s) {
        std::vector<torch::Tensor> v{torch::ones({n}, torch::kFloat)};
        g->barrier();
        const auto t0 = steady::now();
        g->process_group()->allreduce(v)->wait();
        if (s >= g_warmup) ar.push_back(std::chrono::duration<double>(steady::now() - t0).count());
    }
    std::ofstream out(dir + "/rank" + std::to_string(rank) + "_" + mode + ".txt");
    out.precision(9);
    for (double x : t) out << x << " ";
    out << "\n";
    for (double x : ar) out << x << " ";
    out << "\n" << n << "\n";
    g->barrier();
    return 0;
}

/// Runs the two ranks of `mode`; fills g_times' 2-process rows (the slower rank per step).
void run_two(const std::string& mode) {
    const fs::path dir = fs::temp_directory_path() / ("snip_bench_dist_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    fs::remove(dir / ("store_" + mode));
    const std::string exe = fs::read_symlink("/proc/self/exe").string();
    pid_t pids[2];
    for (int r = 0; r < 2; ++r) {
        std::vector<std::string> envs{"SNIP_BENCH_DIST=" + dir.string() + " " + std::to_string(r) + " " + mode,
                                      "OMP_NUM_THREADS=1"};
        for (char** e = environ; *e; ++e)
            if (std::string(*e).rfind("SNIP_BENCH_DIST=", 0) != 0 && std::string(*e).rfind("OMP_NUM_THREADS=", 0) != 0)
                envs.emplace_back(*e);
        std::vector<char*> envp;
        for (auto& s : envs) envp.push_back(s.data());
        envp.push_back(nullptr);
        std::string a0 = exe, a1 = "--steps=" + std::to_string(g_steps), a2 = "--warmup=" + std::to_string(g_warmup);
        char* argv[] = {a0.data(), a1.data(), a2.data(), nullptr};
        snip::require(posix_spawn(&pids[r], exe.c_str(), nullptr, nullptr, argv, envp.data()) == 0,
                      "bench_dist: cannot start rank ", r);
    }
    for (pid_t p : pids) {
        int st = 0;
        waitpid(p, &st, 0);
        snip::require(WIFEXITED(st) && WEXITSTATUS(st) == 0, "bench_dist: a rank of ", mode, " failed");
    }
    std::vector<double> step(std::size_t(g_steps), 0.0), ar(std::size_t(g_steps), 0.0);
    for (int r = 0; r < 2; ++r) {
        std::ifstream in(dir / ("rank" + std::to_string(r) + "_" + mode + ".txt"));
        for (auto& x : step) { double v = 0; in >> v; x = std::max(x, v); }
        for (auto& x : ar) { double v = 0; in >> v; x = std::max(x, v); }
        in >> g_grad_values;
    }
    g_times["dist_step/2proc/" + mode] = step;
    if (mode == "sync") g_times["allreduce/grads"] = ar;
    fs::remove_all(dir);
}

double best(const std::string& row) {
    const auto it = g_times.find(row);
    return it == g_times.end() || it->second.empty() ? 0.0 : *std::min_element(it->second.begin(), it->second.end());
}

void bm_one(benchmark::State& state, int threads) {
    const std::string row = "dist_step/1proc/" + std::to_string(threads) + (threads == 1 ? "thread" : "threads");
    set_threads(threads);
    snip::train::FasterRCNN net = make_net();
    const std::vector<double> t = run_steps(
        net, 0, global_batch, {}, [] {}, [](const torch::Tensor& l) { l.backward(); }, nullptr);
    g_times[row] = t;
    std::size_t i = 0;
    for (auto _ : state) state.SetIterationTime(t[i++]);
    state.counters["chips/step"] = double(global_batch);
    state.counters["s/step_best"] = best(row);
}

void bm_two(benchmark::State& state, const std::string& mode) {
    run_two(mode);
    const std::vector<double>& t = g_times["dist_step/2proc/" + mode];
    std::size_t i = 0;
    for (auto _ : state) state.SetIterationTime(t[i++]);
    state.counters["s/step_best"] = best("dist_step/2proc/" + mode);
    const double sync = best("dist_step/2proc/sync");
    if (mode == "sync") {
        if (const double one = best("dist_step/1proc/1thread"); one > 0) {
            state.counters["speedup_vs_1thread"] = one / sync;
            state.counters["scaling_efficiency"] = one / sync / 2.0;
        }
        if (const double two = best("dist_step/1proc/2threads"); two > 0)
            state.counters["vs_2threads"] = two / sync;
    } else if (sync > 0) {
        state.counters["exposed_comm_share"] = (sync - best("dist_step/2proc/nosync")) / sync;
    }
}

void bm_allreduce(benchmark::State& state) {
    if (!g_times.count("allreduce/grads")) run_two("sync");
    const std::vector<double>& t = g_times["allreduce/grads"];
    std::size_t i = 0;
    for (auto _ : state) state.SetIterationTime(t[i++]);
    state.counters["s/allreduce_best"] = best("allreduce/grads");
    state.counters["values"] = g_grad_values;
    state.counters["allreduce_share"] = best("allreduce/grads") / best("dist_step/2proc/sync");
}

} // namespace

int main(int argc, char** argv) {
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        const std::string a = argv[i];
        if (a.rfind("--steps=", 0) == 0) g_steps = std::max(1, std::atoi(a.c_str() + 8));
        else if (a.rfind("--warmup=", 0) == 0) g_warmup = std::max(0, std::atoi(a.c_str() + 9));
        else args.push_back(argv[i]);
    }
    if (const char* r = std::getenv("SNIP_BENCH_DIST")) { // a rank of a 2-process row
        char dir[4096] = {}, mode[16] = {};
        int rank = 0;
        if (std::sscanf(r, "%4095s %d %15s", dir, &rank, mode) != 3) return 2;
        try {
            return rank_main(dir, rank, mode);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_dist rank %d: %s\n", rank, e.what());
            return 1;
        }
    }
    std::printf("bench_dist: a training step of %lld chips of %lldx%lld (ResNet-18 Faster R-CNN, "
                "%lld classes), %d timed steps after %d warmup, on %u cores\n",
                (long long)global_batch, (long long)chip_side, (long long)chip_side,
                (long long)num_classes, g_steps, g_warmup, std::thread::hardware_concurrency());
    auto reg = [](const char* name, auto fn) {
        benchmark::RegisterBenchmark(name, fn)->UseManualTime()->Iterations(g_steps)->Unit(benchmark::kMillisecond);
    };
    reg("dist_step/1proc/1thread", [](benchmark::State& s) { bm_one(s, 1); });
    reg("dist_step/1proc/2threads", [](benchmark::State& s) { bm_one(s, 2); });
    reg("dist_step/2proc/sync", [](benchmark::State& s) { bm_two(s, "sync"); });
    reg("dist_step/2proc/nosync", [](benchmark::State& s) { bm_two(s, "nosync"); });
    reg("allreduce/grads", [](benchmark::State& s) { bm_allreduce(s); });
    int n = int(args.size());
    benchmark::Initialize(&n, args.data());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
