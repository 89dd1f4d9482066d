// run.hpp: what keeps a training run's folder and process safe: one run per output folder
// (run_lock), stale temporaries cleaned at start, and a stop on SIGINT / SIGTERM that
// finishes the current step and writes a checkpoint (stop_signals, stop_requested()).
//
// Signals: stop_signals installs handlers that only record the signal; train() looks at
// stop_requested() after every step (in a distributed run, every rank learns of it through
// the step's loss reduction, so all stop after the same step), writes a checkpoint and
// returns with train_result::stopped_by set. A second SIGINT / SIGTERM restores the default
// action and re-raises: the process ends at once, and the previous checkpoint is intact
// (checkpoints are written to a temporary file and renamed). SIGXFSZ is ignored while
// stop_signals lives, so a file-size limit (ulimit -f) becomes a failed write (EFBIG) that
// names the file instead of a killed process.
#pragma once

#include <exception>
#include <string>
#include <vector>

namespace snip::train {

/// @brief The signal (SIGINT, SIGTERM) that asked the run to stop, or 0.
int stop_requested() noexcept;

/// @brief Records `signo` as a stop request, as the handler does (tests, embedding code).
void request_stop(int signo) noexcept;

/// @brief Forgets a stop request.
void clear_stop() noexcept;

/// @brief "SIGINT", "SIGTERM" or "signal N".
std::string signal_name(int signo);

/// @brief While alive: SIGINT and SIGTERM request a stop (a second one ends the process at
/// once) and SIGXFSZ is ignored. The previous handlers come back on destruction.
class stop_signals {
public:
    stop_signals();
    ~stop_signals();
    stop_signals(const stop_signals&) = delete;
    stop_signals& operator=(const stop_signals&) = delete;

private:
    struct saved;
    saved* saved_;
};

/// @brief An exclusive lock on a run's output folder (DIR/.snip-run.lock, flock): a second
/// run into the same folder fails at start with a message naming the first (its process id,
/// host, start time and command line). Creates the folder, checks that files can be written
/// there (the error names the folder and errno's reason) and removes temporaries
/// (`*.tmp`) that an earlier killed run left behind (no other run can be writing them while
/// the lock is held). The lock goes with the object, or with the process.
class run_lock {
public:
    /// @param dir the output folder. @param what this run, for the second run's message
    /// (for example the command line).
    run_lock(const std::string& dir, const std::string& what);
    ~run_lock();
    run_lock(const run_lock&) = delete;
    run_lock& operator=(const run_lock&) = delete;

    /// The temporaries removed at start (their paths).
    const std::vector<std::string>& removed() const { return removed_; }

private:
    int fd_ = -1;
    std::vector<std::string> removed_;
};

/// @brief Whether `e` is an allocation failure: std::bad_alloc, or LibTorch's "not enough
/// memory" (CPU) / "out of memory" (CUDA) error.
bool is_out_of_memory(const std::exception& e);

/// @brief Throws the snip::error of out_of_memory_guard.
[[noreturn]] void fail_out_of_memory(const std::string& what, const std::string& hint,
                                     const std::exception& e);

/// @brief Runs `fn()`; an allocation failure becomes a snip::error "WHAT: out of memory
/// (the allocator's first line, with the bytes it wanted); HINT" instead of LibTorch's
/// message with its backtrace. Anything else passes through unchanged.
template <class Fn>
decltype(auto) out_of_memory_guard(const std::string& what, const std::string& hint, Fn&& fn) {
    try {
        return fn();
    } catch (const std::exception& e) {
        if (!is_out_of_memory(e)) throw;
        fail_out_of_memory(what, hint, e);
    }
}

/// @brief Physical memory of this machine in bytes (0 when unknown).
double physical_memory_bytes();

} // namespace snip::train
