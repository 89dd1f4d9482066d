// core/random.hpp: a tiny portable generator, so a seed gives the same chips on every
// platform and standard library (std:: distributions differ between them). Public: code on
// top of snip (the trainer, a data loader) draws from the same stream kind.
#pragma once

#include <cstdint>

namespace snip {

/// SplitMix64.
struct splitmix64 {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    /// Uniform integer in [0, n), n > 0 (rejection keeps it unbiased).
    std::uint64_t below(std::uint64_t n) {
        const std::uint64_t threshold = (0 - n) % n;
        for (;;) {
            const std::uint64_t r = next();
            if (r >= threshold) return r % n;
        }
    }
    /// Uniform double in [0, 1).
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    /// The output number k (0: the first) of splitmix64{seed}, without the k steps before it:
    /// k independent streams from one seed.
    static std::uint64_t nth(std::uint64_t seed, std::uint64_t k) {
        splitmix64 g{seed + 0x9E3779B97F4A7C15ull * k};
        return g.next();
    }
};

/// Combines two 64-bit values into a well-mixed seed.
inline std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
    splitmix64 g{a ^ (b * 0xD1B54A32D192ED03ull)};
    return g.next();
}

} // namespace snip
