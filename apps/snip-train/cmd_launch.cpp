// snip-train launch: starts N ranks of a snip-train command on this machine (as torchrun
// does for one node): each child gets WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR=127.0.0.1
// and MASTER_PORT; when one fails, the others are stopped; the exit code is the first
// failure's. The ranks' stderr passes through launch, which remembers each rank's last
// error line and prints the first failing rank's last, so that it is what a user sees.
#include "train_cli.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace snip::apps;

volatile std::sig_atomic_t g_interrupted = 0; // the signal launch got
volatile std::sig_atomic_t g_from_terminal = 0; // sent by the kernel (a terminal's ^C) to the
                                                // whole foreground group, ranks included
extern "C" void on_signal(int signo, siginfo_t* info, void*) {
    g_interrupted = signo;
    g_from_terminal = info && info->si_code == SI_KERNEL;
}

/// A free TCP port on 127.0.0.1 (the kernel's pick; free when we return it).
int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    snip::require(fd >= 0, "launch: cannot open a socket to find a free port");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    ::close(fd);
    snip::require(ok, "launch: cannot find a free port on 127.0.0.1 (give one with --port)");
    return ntohs(addr.sin_port);
}

std::string self_exe() {
    std::vector<char> buf(4096);
    const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
    snip::require(n > 0, "launch: cannot find this program's path (/proc/self/exe)");
    return std::string(buf.data(), std::size_t(n));
}

int parse_count(const std::vector<std::string>& argv, std::size_t& i, const char* flag, int lo,
                int hi) {
    snip::require(i + 1 < argv.size(), "launch: ", flag, " needs a value");
    const std::string& v = argv[++i];
    const int n = snip::train::dist_options::parse_int(v, flag);
    snip::require(n >= lo && n <= hi, "launch: ", flag, " must be in ", lo, "..", hi, ", got '", v, "'");
    return n;
}

int cmd_launch(const std::vector<std::string>& argv) {
    int nproc = 0, port = 0, threads = 0;
    std::size_t i = 0;
    for (; i < argv.size(); ++i) {
        const std::string& f = argv[i];
        if (f == "-n" || f == "--nproc") nproc = parse_count(argv, i, "--nproc", 1, 1024);
        else if (f == "--port") port = parse_count(argv, i, "--port", 1, 65535);
        else if (f == "--threads-per-process") threads = parse_count(argv, i, "--threads-per-process", 1, 1024);
        else if (f == "--") { ++i; break; }
        else if (!f.empty() && f[0] == '-') snip::fail("launch: unknown option '", f, "' (see snip-train launch --help)");
        else break;
    }
    snip::require(nproc >= 1, "launch: give the number of processes with -n N");
    snip::require(i < argv.size(), "launch: no command to run, e.g. snip-train launch -n 2 train ...");
    const std::vector<std::string> cmd(argv.begin() + std::ptrdiff_t(i), argv.end());
    snip::require(cmd[0] != "launch", "launch: cannot launch `launch`");
    if (port == 0) port = free_port();
    if (threads == 0)
        threads = std::max(1, int(std::thread::hardware_concurrency()) / nproc);
    const std::string exe = self_exe();
    std::fprintf(stderr, "launch: %d ranks of `%s` on 127.0.0.1:%d, %d threads each\n", nproc,
                 cmd[0].c_str(), port, threads);
    std::fflush(stderr);

    struct sigaction sa{};
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO;
    ::sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);

    std::vector<pid_t> pids(std::size_t(nproc), -1);
    std::vector<int> err_fd(std::size_t(nproc), -1); // each rank's stderr, read here
    std::vector<std::string> partial(static_cast<std::size_t>(nproc)),
        last_error(static_cast<std::size_t>(nproc));
    for (int r = 0; r < nproc; ++r) {
        int fds[2] = {-1, -1};
        snip::require(::pipe(fds) == 0, "launch: cannot make a pipe for rank ", r, "'s output");
        const pid_t pid = ::fork();
        snip::require(pid >= 0, "launch: cannot start rank ", r, " (fork failed)");
        if (pid == 0) {
            ::close(fds[0]);
            ::dup2(fds[1], 2);
            ::close(fds[1]);
            ::signal(SIGINT, SIG_DFL);
            ::signal(SIGTERM, SIG_DFL);
            ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
            ::setenv("RANK", std::to_string(r).c_str(), 1);
            ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
            ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
            ::setenv("MASTER_ADDR", "127.0.0.1", 1);
            ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
            ::setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 0);
            ::setenv("MKL_NUM_THREADS", std::to_string(threads).c_str(), 0);
            std::vector<std::string> args{exe};
            args.insert(args.end(), cmd.begin(), cmd.end());
            std::vector<char*> cargs;
            for (auto& s : args) cargs.push_back(s.data());
            cargs.push_back(nullptr);
            ::execv(exe.c_str(), cargs.data());
            std::fprintf(stderr, "launch: rank %d: cannot run %s\n", r, exe.c_str());
            ::_exit(127);
        }
        pids[std::size_t(r)] = pid;
        ::close(fds[1]);
        ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
        ::fcntl(fds[0], F_SETFD, FD_CLOEXEC);
        err_fd[std::size_t(r)] = fds[0];
    }
    // Copies what the ranks wrote to stderr through, remembering each one's last error line
    // (a line with "error: "); waits at most `ms` for output.
    auto pump = [&](int ms) {
        std::vector<pollfd> pf;
        for (int fd : err_fd)
            if (fd >= 0) pf.push_back({fd, POLLIN, 0});
        if (pf.empty()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(ms));
            return;
        }
        if (::poll(pf.data(), pf.size(), ms) <= 0) return;
        for (const pollfd& q : pf) {
            if (!(q.revents & (POLLIN | POLLHUP | POLLERR))) continue;
            std::size_t r = 0;
            while (err_fd[r] != q.fd) ++r;
            char buf[4096];
            const ssize_t n = ::read(q.fd, buf, sizeof buf);
            if (n <= 0) {
                if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                    ::close(q.fd);
                    err_fd[r] = -1;
                }
                continue;
            }
            std::fwrite(buf, 1, std::size_t(n), stderr);
            std::fflush(stderr);
            partial[r].append(buf, std::size_t(n));
            for (std::size_t nl; (nl = partial[r].find('\n')) != std::string::npos;) {
                const std::string line = partial[r].substr(0, nl);
                partial[r].erase(0, nl + 1);
                if (line.find("error: ") != std::string::npos) last_error[r] = line;
            }
        }
    };

    // Wait for all; on the first failure stop the others: SIGTERM, SIGKILL after 10 s.
    int running = nproc, code = 0, first_failed = -1;
    bool stopping = false;
    auto stop_at = std::chrono::steady_clock::time_point::max();
    bool killed = false;
    auto stop_others = [&] {
        if (stopping) return;
        stopping = true;
        for (pid_t p : pids)
            if (p > 0) ::kill(p, SIGTERM);
        stop_at = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    };
    while (running > 0) {
        int st = 0;
        const pid_t p = ::waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            std::size_t r = 0;
            while (r < pids.size() && pids[r] != p) ++r;
            if (r == pids.size()) continue;
            pids[r] = -1;
            --running;
            const int c = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
            if (c != 0 && !stopping) {
                code = c;
                first_failed = int(r);
                std::fprintf(stderr, "launch: rank %zu %s %d; stopping the other ranks\n", r,
                             WIFEXITED(st) ? "exited with code" : "was killed by signal",
                             WIFEXITED(st) ? c : c - 128);
                stop_others();
            }
            continue;
        }
        if (g_interrupted && !stopping) {
            // A training rank finishes its step, writes a checkpoint and exits 128 + signal;
            // a second signal to it would end it at once, so a terminal's ^C, which every
            // rank got too, is not passed on again. SIGKILL after 2 minutes, the last resort.
            const int sig = g_interrupted;
            code = 128 + sig;
            stopping = true;
            stop_at = std::chrono::steady_clock::now() + std::chrono::minutes(2);
            if (g_from_terminal) {
                std::fprintf(stderr, "launch: interrupted: the ranks got it too; training ranks "
                                     "finish their step, write a checkpoint and stop\n");
            } else {
                std::fprintf(stderr, "launch: %s: passed to the ranks; training ranks finish "
                                     "their step, write a checkpoint and stop\n",
                             snip::train::signal_name(sig).c_str());
                for (pid_t q : pids)
                    if (q > 0) ::kill(q, sig);
            }
        }
        if (stopping && !killed && std::chrono::steady_clock::now() > stop_at) {
            for (pid_t q : pids)
                if (q > 0) ::kill(q, SIGKILL);
            killed = true;
        }
        pump(20);
    }
    for (bool open = true; open;) { // what the ranks wrote last
        pump(50);
        open = false;
        for (int fd : err_fd) open = open || fd >= 0;
    }
    if (first_failed >= 0) {
        const std::string& why = last_error[std::size_t(first_failed)];
        std::fprintf(stderr, "launch: rank %d failed first%s%s\n", first_failed,
                     why.empty() ? " (it printed no error line; see its output above)" : ": ",
                     why.c_str());
    }
    return code;
}

} // namespace

SNIP_COMMAND("launch", "start N local ranks of a command (distributed training on one machine)",
             "snip-train launch: runs N processes of a snip-train command on this machine, rank\n"
             "0..N-1, with WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR=127.0.0.1 and MASTER_PORT set\n"
             "(the variables every snip-train command reads; on CUDA rank r uses cuda:r). When a\n"
             "rank fails, the others are stopped and its exit code is returned; launch prints\n"
             "the ranks' output and, last, the first failing rank's error line. SIGTERM (or a\n"
             "SIGINT sent to launch alone) is passed to the ranks; a terminal's Ctrl-C reaches\n"
             "them directly: training ranks finish their step, write a checkpoint and exit\n"
             "130 / 143, and so does launch.\n\n"
             "usage: snip-train launch -n N [--port P] [--threads-per-process T] COMMAND [ARGS...]\n\n"
             "  -n, --nproc N       processes (one per GPU on a GPU machine)\n"
             "  --port P            rendezvous port on 127.0.0.1 (default: a free one)\n"
             "  --threads-per-process T  OMP_NUM_THREADS of each rank unless already set\n"
             "                      (default: cores / N)\n\n"
             "example: snip-train launch -n 2 train --annotations train.json --out run --batch 16\n"
             "Several machines: start one `snip-train COMMAND` per process yourself with\n"
             "--world-size, --rank and --dist-init tcp://HOST0:PORT (see the README).\n",
             cmd_launch);
