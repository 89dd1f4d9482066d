// progress.cpp: log.csv and the progress line (declared in snip/train/progress.hpp).
#include <snip/train/progress.hpp>

#include <snip/io/coco.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>

namespace snip::train {

namespace {

std::string csv_rows(const std::vector<log_row>& h, std::size_t from) {
    std::string s;
    char line[320];
    for (std::size_t i = from; i < h.size(); ++i) {
        const log_row& r = h[i];
        std::snprintf(line, sizeof line, "%lld,%.5f,%.6g,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.2f\n",
                      static_cast<long long>(r.step), r.epoch, r.lr, r.rpn_cls, r.rpn_box,
                      r.rcnn_cls, r.rcnn_box, r.rcnn_mask, r.total, r.chips_per_s);
        s += line;
    }
    return s;
}

} // namespace

void write_log_csv(const std::string& path, const std::vector<log_row>& h) {
    snip::io::write_atomically(
        path, "step,epoch,lr,rpn_cls,rpn_box,rcnn_cls,rcnn_box,rcnn_mask,total,chips_per_s\n" + csv_rows(h, 0));
}

void append_log_csv(const std::string& path, const std::vector<log_row>& h, std::size_t from) {
    snip::require(from <= h.size(), "append_log_csv: ", path, ": rows from ", from, " of ",
                  h.size());
    if (from == h.size()) return;
    const std::string s = csv_rows(h, from);
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        snip::fail(path, ": cannot append to the log (", std::strerror(e), ")");
    }
    std::size_t done = 0;
    while (done < s.size()) {
        const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
        if (n <= 0) {
            const int e = n < 0 ? errno : ENOSPC;
            ::close(fd);
            snip::fail(path, ": appending to the log failed (", std::strerror(e), ")");
        }
        done += std::size_t(n);
    }
    if (::close(fd) != 0) {
        const int e = errno;
        snip::fail(path, ": appending to the log failed (", std::strerror(e), ")");
    }
}

void train_progress::operator()(int epoch, int epochs, std::size_t batch, std::size_t batches,
                                std::int64_t step, const log_row& smoothed, double chips_per_s,
                                double eta_s, bool last) {
    if (quiet_) return;
    const auto now = clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    if (!last && since < (tty_ ? 0.25 : 10.0)) return;
    last_ = now;
    const int width = 24;
    char mask_part[32] = "";
    if (smoothed.rcnn_mask != 0.0)
        std::snprintf(mask_part, sizeof mask_part, " mask %.3f", smoothed.rcnn_mask);
    const int filled = batches ? int(double(width) * double(batch) / double(batches)) : width;
    std::string bar(std::size_t(filled), '#');
    bar.resize(std::size_t(width), '.');
    std::fprintf(stderr,
                 "%sepoch %d/%d [%s] %zu/%zu step %lld loss %.4f (rpn %.3f+%.3f rcnn "
                 "%.3f+%.3f%s) lr %.3g %.1f chips/s ETA %s%s",
                 tty_ ? "\r" : "", epoch + 1, epochs, bar.c_str(), batch, batches,
                 static_cast<long long>(step), smoothed.total, smoothed.rpn_cls, smoothed.rpn_box,
                 smoothed.rcnn_cls, smoothed.rcnn_box, mask_part, smoothed.lr, chips_per_s,
                 format_time(eta_s).c_str(), tty_ && !last ? "\x1b[K" : "\n");
    std::fflush(stderr);
}

std::string train_progress::format_time(double s) {
    if (!std::isfinite(s) || s < 0) return "?";
    char b[32];
    const long long t = static_cast<long long>(s + 0.5);
    if (t >= 3600)
        std::snprintf(b, sizeof b, "%lldh%02lldm", t / 3600, (t / 60) % 60);
    else
        std::snprintf(b, sizeof b, "%lldm%02llds", t / 60, t % 60);
    return b;
}

} // namespace snip::train
