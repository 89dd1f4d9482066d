// progress.hpp: what a run shows while it trains: the CSV loss log (log.csv, rewritten
// atomically) and the progress line on stderr.
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

void write_log_csv(const std::string& path, const std::vector<log_row>& h);

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
