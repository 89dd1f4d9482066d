// bench/common.hpp: what every benchmark program records about the build that made it, so
// that a number is never read without its compiler, flags and build type.
#pragma once

#include <snip/core/version.hpp>

#include <benchmark/benchmark.h>

#include <string>
#include <thread>

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

} // namespace snip_bench
