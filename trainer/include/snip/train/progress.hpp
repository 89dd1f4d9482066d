// progress.hpp: what a run shows while it trains: the CSV loss log (log.csv, written
// atomically, then appended) and the progress line on stderr.
#pragma once

#include <snip/train/options.hpp>

#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace snip::train {

// ---------------------------------------------------------------------------------------
// Logs and pictures

/// @brief Writes the whole loss log (header and every row) atomically.
void write_log_csv(const std::string& path, const std::vector<log_row>& h);

/// @brief Appends rows h[from..] to an existing log written by write_log_csv (a training
/// run appends at each log point instead of rewriting the file: O(new rows) per write).
/// @throws snip::error naming the file and errno's reason (missing file, disk full, file
/// size limit); rows may then be partly written, so the caller rewrites the whole log next.
void append_log_csv(const std::string& path, const std::vector<log_row>& h, std::size_t from);

/// @brief A progress line on stderr: \r-updated on a terminal, one line every ~10 s
/// otherwise.
class train_progress {
public:
    explicit train_progress(bool quiet) : quiet_(quiet), tty_(::isatty(2) != 0) {}
    void operator()(int epoch, int epochs, std::size_t batch, std::size_t batches,
                    std::int64_t step, const log_row& smoothed, double chips_per_s,
                    double eta_s, bool last);
    static std::string format_time(double s);

private:
    using clock = std::chrono::steady_clock;
    bool quiet_, tty_;
    clock::time_point last_ = clock::now() - std::chrono::hours(1);
};

} // namespace snip::train
