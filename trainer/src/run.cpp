// run.cpp: the run's folder lock and the stop signals (declared in snip/train/run.hpp).
#include <snip/train/run.hpp>

#include <snip/core/error.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <new>
#include <system_error>

namespace snip::train {

namespace {

volatile std::sig_atomic_t g_stop = 0;
std::int64_t g_first_ns = 0; // when the first stop signal came (CLOCK_MONOTONIC)

std::int64_t now_ns() {
    timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t); // async-signal-safe
    return std::int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}

void on_stop_signal(int signo) {
    if (g_stop != 0) {
        // One signal often arrives twice: a scheduler or `timeout` signals the whole process
        // group, and `snip-train launch` passes it on too. Within a second it is the same one.
        if (now_ns() - g_first_ns < 1000000000) return;
        std::signal(signo, SIG_DFL); // a second one, later: the default action, now
        std::raise(signo);
        return;
    }
    g_first_ns = now_ns();
    g_stop = signo;
}

std::string errno_text(int e) { return std::error_code(e, std::generic_category()).message(); }

} // namespace

int stop_requested() noexcept { return int(g_stop); }
void request_stop(int signo) noexcept { g_stop = signo; }
void clear_stop() noexcept { g_stop = 0; }

std::string signal_name(int signo) {
    if (signo == SIGINT) return "SIGINT";
    if (signo == SIGTERM) return "SIGTERM";
    return "signal " + std::to_string(signo);
}

struct stop_signals::saved {
    struct sigaction intr {}, term{}, xfsz{};
};

stop_signals::stop_signals() : saved_(new saved) {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; // reads and writes in flight go on; the loop looks after the step
    sigaction(SIGINT, &sa, &saved_->intr);
    sigaction(SIGTERM, &sa, &saved_->term);
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGXFSZ, &ign, &saved_->xfsz);
}

stop_signals::~stop_signals() {
    sigaction(SIGINT, &saved_->intr, nullptr);
    sigaction(SIGTERM, &saved_->term, nullptr);
    sigaction(SIGXFSZ, &saved_->xfsz, nullptr);
    delete saved_;
}

run_lock::run_lock(const std::string& dir, const std::string& what) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) snip::fail("--out ", dir, ": cannot create the folder (", ec.message(), ")");
    const std::string path = (fs::path(dir) / ".snip-run.lock").string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        const int e = errno;
        snip::fail("--out ", dir, ": cannot write in the folder (", path, ": ", errno_text(e), ")");
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int e = errno;
        std::string holder(4096, '\0');
        const ssize_t n = ::pread(fd_, holder.data(), holder.size(), 0);
        holder.resize(n > 0 ? std::size_t(n) : 0);
        while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
        ::close(fd_);
        fd_ = -1;
        if (e == EWOULDBLOCK)
            snip::fail("--out ", dir, ": another run is writing into this folder (",
                       holder.empty() ? std::string("its lock file names no process") : holder,
                       "); wait for it to end or choose another --out");
        snip::fail("--out ", dir, ": cannot lock ", path, " (", errno_text(e), ")");
    }
    // The lock is ours: say who holds it, for a second run's message.
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const std::time_t now = std::time(nullptr);
    char when[64] = {};
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
    const std::string me = snip::concat("process ", ::getpid(), " on ", host, ", started ", when,
                                        what.empty() ? "" : ": ", what, "\n");
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != ssize_t(me.size())) {
        const int e = errno;
        ::close(fd_);
        fd_ = -1;
        snip::fail("--out ", dir, ": cannot write in the folder (", path, ": ", errno_text(e), ")");
    }
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (!entry.is_regular_file(ec) || entry.path().extension() != ".tmp") continue;
        if (fs::remove(entry.path(), ec)) removed_.push_back(entry.path().string());
    }
}

bool is_out_of_memory(const std::exception& e) {
    if (dynamic_cast<const std::bad_alloc*>(&e)) return true;
    const std::string m = e.what();
    return m.find("not enough memory") != std::string::npos ||
           m.find("out of memory") != std::string::npos;
}

void fail_out_of_memory(const std::string& what, const std::string& hint, const std::exception& e) {
    std::string m = e.what();
    m = m.substr(0, std::min<std::size_t>(m.find('\n'), 300)); // no backtrace
    snip::fail(what, ": out of memory (", m, ")", hint.empty() ? "" : "; ", hint);
}

double physical_memory_bytes() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), size = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? double(pages) * double(size) : 0.0;
}

run_lock::~run_lock() {
    if (fd_ >= 0) ::close(fd_); // releases the flock; the file stays (removing it would race)
}

} // namespace snip::train
