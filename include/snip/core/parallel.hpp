// core/parallel.hpp: a minimal parallel-for over an index range on std::thread, for
// the CPU paths of the detection ops. Deterministic: each index is processed by exactly
// one thread, and results must not depend on which.
//
// Starting a thread can fail (std::system_error: a process or cgroup thread limit, no
// memory for a stack). snip's thread pools then stop and join the threads they did start
// and throw snip::error naming the pool, the thread and the system's reason: no
// std::terminate, no hang, nothing left running.
#pragma once

#include <snip/core/error.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <system_error>
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

/// Test seam: how many more threads snip's pools may start before a start fails as it
/// does when the system has none left (std::system_error, EAGAIN); -1 (the default) is
/// no limit. Tests of the failure paths set it; nothing else should.
inline std::atomic<long>& thread_start_budget() {
    static std::atomic<long> n{-1};
    return n;
}

/// std::thread(f), counted against thread_start_budget().
template <class F>
std::thread start_thread(F&& f) {
    auto& budget = thread_start_budget();
    for (long v = budget.load(); v >= 0;) {
        if (v == 0)
            throw std::system_error(
                std::make_error_code(std::errc::resource_unavailable_try_again),
                "thread start budget of the test seam exhausted");
        if (budget.compare_exchange_weak(v, v - 1)) break;
    }
    return std::thread(std::forward<F>(f));
}

/// Throws the snip::error of a pool (`who`) whose thread `index` (1-based, of `wanted`
/// including the caller's) could not start.
[[noreturn]] inline void thread_start_failed(const char* who, std::size_t index, unsigned wanted,
                                             const std::system_error& e) {
    fail(who, ": could not start thread ", index, " of ", wanted, " (", e.what(),
         "): the threads that started were stopped and joined; use fewer threads or raise "
         "the process's thread limit");
}

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
    try {
        for (unsigned t = 1; t < nt; ++t) pool.push_back(start_thread([&work, t] { work(t); }));
    } catch (const std::system_error& e) {
        next.store(n);  // the started workers finish their current block and return
        for (auto& t : pool) t.join();
        thread_start_failed("parallel_for", pool.size() + 2, nt, e);
    }
    work(0u);
    for (auto& t : pool) t.join();
    if (err) std::rethrow_exception(err);
}

} // namespace detail
} // namespace snip
