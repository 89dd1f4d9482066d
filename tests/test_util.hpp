// Shared helpers for the doctest programs.
#pragma once

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <stdexcept>
#include <string>

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>

#include <ostream>

namespace snip {
template <class T>
std::ostream& operator<<(std::ostream& os, const box<T>& b) {
    return os << "[" << b.x1 << ", " << b.y1 << ", " << b.x2 << ", " << b.y2 << "]";
}
} // namespace snip

namespace snip_test {

/// The real data folder (../shared/data next to the source tree), or "" when absent.
inline std::string data_dir() {
    if (const char* env = std::getenv("SNIP_DATA_DIR"); env && *env) return env;
    return SNIP_DATA_DIR;
}

/// Path of a file under the data folder; empty string (and a printed message) when
/// the folder or file is absent, so the caller can skip; but with SNIP_REQUIRE_DATA set
/// (CI sets it) a missing file throws, failing the test.
inline std::string data_file(const std::string& rel) {
    std::filesystem::path p = std::filesystem::path(data_dir()) / rel;
    if (!std::filesystem::exists(p)) {
        if (const char* req = std::getenv("SNIP_REQUIRE_DATA"); req && *req && std::string(req) != "0")
            throw std::runtime_error("real data not found at " + p.string() +
                                     " and SNIP_REQUIRE_DATA is set (as in CI): the test over "
                                     "it must run; set SNIP_DATA_DIR to the data folder");
        std::printf("[skip] real data not found at %s: test over it skipped\n", p.string().c_str());
        return {};
    }
    return p.string();
}

/// The message of the snip::error that f() throws. Anything else thrown, or nothing, fails
/// the calling check (and gives "").
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const snip::error& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL_CHECK("threw a non-snip exception: " << e.what());
        return {};
    }
    FAIL_CHECK("no exception thrown");
    return {};
}

/// True when `s` contains `part`.
inline bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

} // namespace snip_test
