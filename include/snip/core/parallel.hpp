// core/parallel.hpp: a minimal parallel-for over an index range on std::thread, for
// the CPU paths of the detection ops. Deterministic: each index is processed by exactly
// one thread, and results must not depend on which.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace snip {

/// @brief Threads used by snip's CPU ops: 0 (the default) means all hardware threads.
inline unsigned& default_threads() {
    static unsigned n = 0;
    return n;
}

/// @brief The thread count an op with `threads` (0 = default_threads(), which 0 means all
/// hardware threads) will use.
inline unsigned resolve_threads(unsigned threads) {
    if (threads == 0) threads = default_threads();
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    return threads;
}

namespace detail {

/// Calls fn(begin, end), or fn(worker, begin, end) with worker in [0, threads), on
/// disjoint blocks of [0, n), each at least `grain` long, on up to `threads` threads (the
/// calling thread is worker 0). A worker runs its blocks one after another, so per-worker
/// scratch needs no lock. The first exception thrown by any block is rethrown after all
/// threads finish.
template <class Fn>
void parallel_for(std::ptrdiff_t n, std::ptrdiff_t grain, Fn&& fn, unsigned threads = 0) {
    if (n <= 0) return;
    grain = std::max<std::ptrdiff_t>(1, grain);
    const unsigned nt = static_cast<unsigned>(std::min<std::ptrdiff_t>(
        resolve_threads(threads), (n + grain - 1) / grain));
    auto call = [&](unsigned worker, std::ptrdiff_t b, std::ptrdiff_t e) {
        if constexpr (std::is_invocable_v<Fn&, unsigned, std::ptrdiff_t, std::ptrdiff_t>)
            fn(worker, b, e);
        else
            fn(b, e);
    };
    if (nt <= 1) {
        call(0u, std::ptrdiff_t(0), n);
        return;
    }
    // Blocks of `grain` handed out dynamically: balances uneven work (RoIs of different sizes).
    std::atomic<std::ptrdiff_t> next{0};
    std::exception_ptr err;
    std::mutex mu;
    auto work = [&](unsigned worker) {
        for (;;) {
            const std::ptrdiff_t b = next.fetch_add(grain);
            if (b >= n) return;
            try {
                call(worker, b, std::min(n, b + grain));
            } catch (...) {
                std::lock_guard<std::mutex> lk(mu);
                if (!err) err = std::current_exception();
                next.store(n);
                return;
            }
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(nt - 1);
    for (unsigned t = 1; t < nt; ++t) pool.emplace_back(work, t);
    work(0u);
    for (auto& t : pool) t.join();
    if (err) std::rethrow_exception(err);
}

} // namespace detail
} // namespace snip
