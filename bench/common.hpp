// bench/common.hpp: what every benchmark program records about the build that made it, so
// that a number is never read without its compiler, flags and build type; and the pieces the
// op benchmarks share: interleaved best-of-N wall times for in-run ratios, the largest
// difference of two results and (with LibTorch) the loading of torchvision's compiled ops.
#pragma once

#include <snip/core/version.hpp>

#include <benchmark/benchmark.h>

#ifdef SNIP_WITH_TORCH
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <dlfcn.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#ifndef SNIP_BUILD_TYPE
#define SNIP_BUILD_TYPE ""
#endif
#ifndef SNIP_CXX_FLAGS
#define SNIP_CXX_FLAGS ""
#endif

namespace snip_bench {

/// "gcc 12.2.0", "clang 14.0.6", ...
inline std::string compiler_name() {
#if defined(__clang__)
    return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    return std::string("gcc ") + __VERSION__;
#elif defined(_MSC_VER)
    return "msvc " + std::to_string(_MSC_FULL_VER);
#else
    return "unknown";
#endif
}

/// The build type, with a warning when assertions are on (numbers not representative).
inline std::string build_type() {
    std::string build = SNIP_BUILD_TYPE;
    if (build.empty()) build = "(none)";
#ifdef NDEBUG
    build += ", NDEBUG";
#else
    build += ", assertions ON (not a release build: numbers are not representative)";
#endif
    return build;
}

/// Adds snip_version, compiler, build_type, cxx_flags and threads_available to the
/// benchmark context (printed in the header of the console and JSON reports).
inline void add_build_context() {
    benchmark::AddCustomContext("snip_version", SNIP_VERSION_STRING);
    benchmark::AddCustomContext("compiler", compiler_name());
    benchmark::AddCustomContext("build_type", build_type());
    benchmark::AddCustomContext("cxx_flags", SNIP_CXX_FLAGS);
    benchmark::AddCustomContext("threads_available",
                                std::to_string(std::thread::hardware_concurrency()));
}

using steady = std::chrono::steady_clock;

inline double seconds_since(steady::time_point t0) {
    return std::chrono::duration<double>(steady::now() - t0).count();
}

/// Wall seconds per call of each of `runs` (same order): each called once as a warm-up, then
/// `rounds` rounds in which each is repeated for at least `min_seconds`, the runs interleaved
/// within a round so that a burst of load from other processes hits all alike; the best round.
inline std::vector<double> interleaved_best_times(const std::vector<const std::function<void()>*>& runs,
                                                  int rounds, double min_seconds) {
    std::vector<double> best(runs.size(), std::numeric_limits<double>::infinity());
    for (const auto* run : runs)
        (*run)(); // warm-up
    for (int round = 0; round < rounds; ++round)
        for (std::size_t i = 0; i < runs.size(); ++i) {
            std::size_t calls = 0;
            const auto t0 = steady::now();
            double s = 0;
            do {
                (*runs[i])();
                ++calls;
                s = seconds_since(t0);
            } while (s < min_seconds);
            best[i] = std::min(best[i], s / double(calls));
        }
    return best;
}

/// The benchmark loop over `run` (after one warm-up call).
inline void warm_loop(benchmark::State& state, const std::function<void()>& run) {
    run(); // warm-up
    for (auto _ : state) {
        run();
        benchmark::ClobberMemory();
    }
}

/// max |a[i] - b[i]|.
inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
    return m;
}

/// Every hardware thread (at least 1).
inline int all_threads() {
    return int(std::max(1u, std::thread::hardware_concurrency()));
}

#ifdef SNIP_WITH_TORCH

/// max |a - b| (infinity when the shapes differ).
inline double max_abs(const at::Tensor& a, const at::Tensor& b) {
    if (a.sizes() != b.sizes()) return std::numeric_limits<double>::infinity();
    return a.numel() == 0 ? 0.0
                          : (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

/// Loads torchvision's compiled ops (the library SNIP_TORCHVISION_OPS); `status` becomes its
/// path, or why it could not be loaded.
inline bool load_torchvision(std::string& status) {
#ifdef SNIP_TORCHVISION_OPS
    if (dlopen(SNIP_TORCHVISION_OPS, RTLD_NOW | RTLD_GLOBAL) != nullptr) {
        status = SNIP_TORCHVISION_OPS;
        return true;
    }
    const char* why = dlerror();
    status = std::string("dlopen(") + SNIP_TORCHVISION_OPS + ") failed: " + (why ? why : "?");
#else
    status = "SNIP_TORCHVISION_OPS is not defined";
#endif
    return false;
}

/// A torchvision op (e.g. "torchvision::nms") through the dispatcher; throws when absent.
inline c10::OperatorHandle tv_op(const char* name) {
    return c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
}

#endif // SNIP_WITH_TORCH

} // namespace snip_bench
