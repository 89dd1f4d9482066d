// fuzz_util.hpp: what the libFuzzer programs in tests/fuzz share.
//
// Contract checked by every fuzzer: the code under test either succeeds or throws
// snip::error; any other exception escapes LLVMFuzzerTestOneInput and libFuzzer reports
// it as a crash (uncaught exception -> abort). A broken invariant calls fuzz::violation,
// which prints the reason and aborts, so it is reported (and minimised) like a crash.
#pragma once

#include <snip/core/error.hpp>
#include <snip/io/coco.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

namespace fuzz {

/// @brief Prints "invariant violated: <what>" and aborts.
template <class... Args>
[[noreturn]] void violation(Args&&... args) {
    const std::string msg = snip::concat(std::forward<Args>(args)...);
    std::fprintf(stderr, "invariant violated: %s\n", msg.c_str());
    std::abort();
}

/// @brief Aborts with the message unless `cond` holds.
template <class... Args>
void expect(bool cond, Args&&... args) {
    if (!cond) violation(std::forward<Args>(args)...);
}

/// @brief The fuzz input as text.
inline std::string_view text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

/// @brief Runs `f`; a snip::error is the expected failure and ends the input. When
/// `source` is not empty, the message must name it (errors name the file they read).
/// @return true when `f` returned normally.
template <class F>
bool accepts(F&& f, std::string_view source = {}) {
    try {
        std::forward<F>(f)();
        return true;
    } catch (const snip::error& e) {
        const std::string_view msg = e.what();
        expect(!msg.empty(), "snip::error with an empty message");
        if (!source.empty())
            expect(msg.find(source) != std::string_view::npos,
                   "snip::error does not name the source '", source, "': ", msg);
        return false;
    }
}

/// @brief Parses the fuzz input as JSON text the way the file readers do
/// (snip::io::parse_json_text, errors naming `source`) into `out`.
/// @return false when the text is rejected (a snip::error naming `source`).
inline bool parse_json(const std::uint8_t* data, std::size_t size, std::string_view source,
                       nlohmann::json& out) {
    const std::string src(source);
    return accepts([&] { out = snip::io::parse_json_text(text(data, size), src); },
                   source);
}

/// @brief Reads typed values off the fuzz input; past the end every value is zero.
class bytes {
public:
    bytes(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}

    bool empty() const { return n_ == 0; }

    std::uint64_t raw(std::size_t width) {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < width; ++i) {
            v |= std::uint64_t(n_ ? *p_ : 0) << (8 * i);
            if (n_) ++p_, --n_;
        }
        return v;
    }
    std::uint8_t u8() { return static_cast<std::uint8_t>(raw(1)); }
    bool flag() { return u8() & 1; }
    /// An integer in [0, n), n > 0.
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(raw(2) % n); }
    int any_int() { return static_cast<int>(static_cast<std::uint32_t>(raw(4))); }
    double any_double() {
        const std::uint64_t v = raw(8);
        double d;
        std::memcpy(&d, &v, sizeof d);
        return d;
    }

    /// One of `table`, or (index past the table) a raw 32-bit integer.
    template <std::size_t N>
    int pick_int(const int (&table)[N]) {
        const std::size_t k = u8() % (N + 2);
        if (k < N) return table[k];
        return k == N ? static_cast<int>(raw(2)) : any_int();
    }
    /// One of `table`, a value in [0, scale) with 16-bit resolution, or raw bits.
    template <std::size_t N>
    double pick_double(const double (&table)[N], double scale = 1.0) {
        const std::size_t k = u8() % (N + 2);
        if (k < N) return table[k];
        if (k == N) return scale * static_cast<double>(raw(2)) / 65536.0;
        return any_double();
    }

private:
    const std::uint8_t* p_;
    std::size_t n_;
};

inline constexpr double nan = std::numeric_limits<double>::quiet_NaN();
inline constexpr double inf = std::numeric_limits<double>::infinity();

} // namespace fuzz
