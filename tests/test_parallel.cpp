// Tests of include/snip/core/parallel.hpp: every index once, worker ids, errors from
// blocks, and threads that cannot start.
#include "test_util.hpp"

#include <snip/core/parallel.hpp>

#include <atomic>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

/// Sets the thread-start budget of snip's pools for one scope.
struct thread_budget {
    explicit thread_budget(long n) { snip::detail::thread_start_budget() = n; }
    ~thread_budget() { snip::detail::thread_start_budget() = -1; }
    thread_budget(const thread_budget&) = delete;
    thread_budget& operator=(const thread_budget&) = delete;
};

} // namespace

TEST_CASE("parallel_for: every index exactly once, worker ids below the thread count") {
    for (unsigned threads : {1u, 2u, 3u, 8u})
        for (std::ptrdiff_t grain : {1, 7, 5000}) {
            CAPTURE(threads);
            CAPTURE(grain);
            const std::ptrdiff_t n = 1003;
            std::vector<int> hits(std::size_t(n), 0);  // disjoint blocks: no two writers
            std::atomic<int> bad_worker{0}, short_block{0}, blocks{0};
            snip::detail::parallel_for(
                n, grain,
                [&](unsigned worker, std::ptrdiff_t b, std::ptrdiff_t e) {
                    bad_worker += worker >= threads;
                    short_block += e - b < grain && e != n;  // only the last may be short
                    ++blocks;
                    for (std::ptrdiff_t i = b; i < e; ++i) ++hits[std::size_t(i)];
                },
                threads);
            for (int h : hits) CHECK(h == 1);
            CHECK(bad_worker == 0);
            CHECK(short_block == 0);
            // one thread: the caller runs the whole range as one block
            if (threads == 1) CHECK(blocks == 1);
        }
}

TEST_CASE("parallel_for: an exception from a block is rethrown after every thread ends") {
    std::atomic<int> running{0};
    CHECK_THROWS_WITH_AS(snip::detail::parallel_for(
                             1000, 10,
                             [&](std::ptrdiff_t b, std::ptrdiff_t) {
                                 ++running;
                                 if (b == 500) throw std::runtime_error("block 500 failed");
                                 --running;
                             },
                             4),
                         "block 500 failed", std::runtime_error);
    CHECK(running == 1);  // only the failed block did not finish; no block is still running
}

TEST_CASE("parallel_for: a thread that cannot start gives a snip::error naming it; the others are joined") {
    for (long budget : {0L, 1L, 2L}) {
        CAPTURE(budget);
        std::atomic<int> active{0};  // blocks being worked on
        std::string msg;
        {
            thread_budget limit(budget);
            msg = snip_test::error_of([&] {
                snip::detail::parallel_for(
                    100000, 16,
                    [&](std::ptrdiff_t, std::ptrdiff_t) {
                        ++active;
                        --active;
                    },
                    4);
            });
        }
        // the caller is thread 1; threads 2 .. budget + 1 started, budget + 2 did not
        CHECK(snip_test::contains(msg, "parallel_for: could not start thread " +
                                           std::to_string(budget + 2) + " of 4"));
        CHECK(snip_test::contains(msg, "Resource temporarily unavailable"));
        CHECK(active == 0);  // the started threads were joined (an unjoined one terminates)
    }
    // one thread needs no start: no budget is spent
    thread_budget none(0);
    std::atomic<long> done{0};
    snip::detail::parallel_for(100, 1, [&](std::ptrdiff_t b, std::ptrdiff_t e) { done += e - b; }, 1);
    CHECK(done == 100);
}
