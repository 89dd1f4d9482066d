// detail/block_max.hpp: the selection structure of Soft-NMS on large inputs: the best
// alive score, kept up to date in blocks of 64 as scores decay.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

namespace snip::detail {

/// The alive position with the highest score (equal scores: the lower position) under
/// decreasing scores: the scores of alive positions, -inf for the others, in blocks of 64
/// with a cached maximum per block; a changed position marks its block, and top()
/// recomputes the marked blocks, then scans the block maxima.
template <class T>
struct block_max {
    static constexpr std::int32_t width = 64;
    std::vector<T> v, bmax;
    std::vector<std::uint8_t> dirty_flag;
    std::vector<std::int32_t> dirty;
    std::int32_t n = 0, alive = 0;

    template <class Alive>
    void build(const T* s, std::int32_t count, Alive&& is_alive) {
        n = count;
        alive = 0;
        const std::int32_t blocks = (n + width - 1) / width;
        v.assign(std::size_t(blocks) * width, -std::numeric_limits<T>::infinity());
        for (std::int32_t j = 0; j < n; ++j)
            if (is_alive(j)) {
                v[std::size_t(j)] = s[j];
                ++alive;
            }
        bmax.assign(std::size_t(blocks), T(0));
        dirty_flag.assign(std::size_t(blocks), 1);
        dirty.resize(std::size_t(blocks));
        std::iota(dirty.begin(), dirty.end(), 0);
    }
    void mark(std::int32_t j) {
        const std::int32_t b = j / width;
        if (!dirty_flag[std::size_t(b)]) {
            dirty_flag[std::size_t(b)] = 1;
            dirty.push_back(b);
        }
    }
    void set(std::int32_t j, T score) {
        v[std::size_t(j)] = score;
        mark(j);
    }
    void remove(std::int32_t j) {
        v[std::size_t(j)] = -std::numeric_limits<T>::infinity();
        --alive;
        mark(j);
    }
    /// The best alive position, -1 when none. `is_alive` settles a maximum of -inf.
    template <class Alive>
    std::int32_t top(Alive&& is_alive) {
        if (alive == 0) return -1;
        for (const std::int32_t b : dirty) {
            const T* p = v.data() + std::size_t(b) * width;
            T m = p[0];
            for (std::int32_t k = 1; k < width; ++k) m = p[k] > m ? p[k] : m;
            bmax[std::size_t(b)] = m;
            dirty_flag[std::size_t(b)] = 0;
        }
        dirty.clear();
        std::size_t bb = 0;
        for (std::size_t b = 1; b < bmax.size(); ++b)
            if (bmax[b] > bmax[bb]) bb = b;
        const T m = bmax[bb];
        if (m == -std::numeric_limits<T>::infinity()) { // every alive score is -inf
            for (std::int32_t j = 0; j < n; ++j)
                if (is_alive(j)) return j;
            return -1;
        }
        const std::int32_t first = std::int32_t(bb) * width;
        for (std::int32_t j = first;; ++j)
            if (v[std::size_t(j)] == m) return j;
    }
};

} // namespace snip::detail
