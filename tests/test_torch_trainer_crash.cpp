// Crash safety of training (train.hpp): a training process is killed with SIGKILL at random
// moments (before, during and between checkpoint writes) and restarted with resume, again and
// again, until it finishes. After every kill the checkpoint on disk must load, and the final
// loss history must equal, bit for bit, that of one uninterrupted run with the same seed.
//
// The same for SIGINT / SIGTERM (run.hpp): the child stops after the step in flight with a
// checkpoint and exits 130 / 143; a second signal ends it at once and the checkpoint on disk
// still loads; resumed again and again, it ends with the uninterrupted run's weights.
//
// The training process is this test program itself, run again with the test case
// "crash: child" (or "crash: signal child") selected and SNIP_CRASH_CHILD_DIR (or
// SNIP_SIGNAL_CHILD_DIR) set; without that variable the child case does nothing.
// LibTorch first: its headers bring glog, whose CHECK would otherwise replace doctest's.
#include <snip/train/synthetic.hpp>
#include <snip/train/train.hpp>

#include "trainer_test_util.hpp"

#include "test_util.hpp"

#include <snip/core/random.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;

snip::train::train_options crash_options(const std::string& dir) {
    snip::train::train_options o;
    o.epochs = 10;
    o.batch_size = 2;
    o.flip = snip::train::flip_policy::random; // the step counts of the default (both) halved
    o.base_lr = 0.08; // 0.01 on the 2 chips' mean loss (train.hpp: lr x B / 16)
    o.warmup_chips = 4;
    o.lr_steps = {8.0};
    o.seed = 5;
    o.workers = 1;
    o.out_dir = dir;
    o.checkpoint_every = 1; // a checkpoint after every step: many writes to interrupt
    o.log_every = 1;
    o.quiet = true;
    return o;
}

snip::train::train_result run_training(const std::string& dir, bool resume) {
    const snip::train::synthetic_set data = trainer_test::small_synthetic(21);
    torch::manual_seed(77);
    snip::train::FasterRCNN net(trainer_test::tiny_model(2));
    snip::train::train_options o = crash_options(dir);
    o.resume = resume;
    return snip::train::train(net, data.ds, trainer_test::one_scale_plan("crash"),
                         snip::train::synthetic_source(data), nullptr, o);
}

/// Data rows of a log.csv (0 when absent).
std::size_t csv_rows(const fs::path& p) {
    std::ifstream in(p);
    std::size_t n = 0;
    std::string line;
    while (std::getline(in, line)) ++n;
    return n > 0 ? n - 1 : 0;
}

/// Starts this program as the training child; returns its pid.
pid_t spawn_child(const std::string& dir) {
    return trainer_test::spawn_self("crash: child", {"SNIP_CRASH_CHILD_DIR=" + dir},
                                    {"SNIP_CRASH_CHILD_DIR="});
}

/// One uninterrupted run (computed once, shared by the test cases) and its time.
struct reference_run {
    snip::train::train_result result;
    double seconds = 0;
    fs::path dir;
};
const reference_run& reference() {
    static const reference_run ref = [] {
        reference_run r;
        r.dir = fs::temp_directory_path() / "snip_crash_reference";
        fs::remove_all(r.dir);
        const auto t0 = std::chrono::steady_clock::now();
        r.result = run_training(r.dir.string(), false);
        r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return r;
    }();
    return ref;
}

/// The final checkpoint of `dir` holds the reference run's history and weights, bit for bit.
void check_same_as_reference(const fs::path& dir) {
    const reference_run& ref = reference();
    snip::train::FasterRCNN final_net(trainer_test::tiny_model(2));
    const snip::train::checkpoint_info fin =
        snip::train::load_checkpoint((dir / "checkpoint.pt").string(), final_net);
    REQUIRE(fin.history.size() == ref.result.history.size());
    for (std::size_t i = 0; i < ref.result.history.size(); ++i) {
        INFO("step ", i);
        CHECK(fin.history[i].total == ref.result.history[i].total);
        CHECK(fin.history[i].lr == ref.result.history[i].lr);
    }
    snip::train::FasterRCNN ref_net(trainer_test::tiny_model(2));
    snip::train::load_checkpoint((ref.dir / "checkpoint.pt").string(), ref_net);
    const auto a = ref_net->named_parameters(), b = final_net->named_parameters();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(torch::equal(a[i].value(), b[i].value()));
}

} // namespace

TEST_CASE("crash: signal child") {
    const char* dir = std::getenv("SNIP_SIGNAL_CHILD_DIR");
    if (!dir) return; // only when started by the test below
    const snip::train::stop_signals signals; // what snip-train train installs
    const bool resume = fs::exists(fs::path(dir) / "checkpoint.pt");
    const snip::train::train_result r = run_training(dir, resume);
    std::fflush(nullptr);
    if (r.stopped_by) std::_Exit(128 + r.stopped_by); // the code snip-train exits with
    REQUIRE(r.finished);
}

TEST_CASE("crash: SIGINT / SIGTERM stop after the step with a checkpoint; resume finishes the "
          "same run; a second signal ends the process at once, the checkpoint intact") {
    const reference_run& ref = reference();
    REQUIRE(ref.result.finished);
    const fs::path dir = fs::temp_directory_path() / "snip_crash_signalled";
    fs::remove_all(dir);
    fs::create_directories(dir);
    snip::splitmix64 g{777};
    int stops = 0, doubles = 0, finished_runs = 0;
    for (int round = 0; round < 40 && finished_runs == 0; ++round) {
        const pid_t pid = trainer_test::spawn_self(
            "crash: signal child", {"SNIP_SIGNAL_CHILD_DIR=" + dir.string()},
            {"SNIP_SIGNAL_CHILD_DIR=", "SNIP_CRASH_CHILD_DIR="});
        const bool signal_it = round < 8;
        const int sig = round % 2 == 0 ? SIGTERM : SIGINT;
        const bool twice = round == 3 || round == 6; // the second signal: no clean stop
        int status = 0;
        bool reaped = false;
        std::size_t before = 0;
        if (signal_it) {
            const std::size_t start = csv_rows(dir / "log.csv");
            const std::size_t target = start + 1 + std::size_t(g.below(2));
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
            while (!reaped && csv_rows(dir / "log.csv") < target &&
                   std::chrono::steady_clock::now() < deadline) {
                reaped = waitpid(pid, &status, WNOHANG) == pid;
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
            const double step_ms = 1000.0 * ref.seconds / double(ref.result.steps);
            if (!reaped)
                std::this_thread::sleep_for(
                    std::chrono::microseconds(g.below(std::uint64_t(step_ms * 1000.0) + 1)));
            if (!reaped) reaped = waitpid(pid, &status, WNOHANG) == pid;
            if (!reaped) {
                before = csv_rows(dir / "log.csv");
                ::kill(pid, sig);
                if (twice) ::kill(pid, sig);
            }
        }
        if (!reaped) REQUIRE(waitpid(pid, &status, 0) == pid);
        INFO("round ", round, " signal ", sig, twice ? " twice" : "");
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            ++finished_runs;
        } else if (WIFEXITED(status)) {
            // A clean stop: 128 + the signal, after the step, with its checkpoint.
            CHECK(WEXITSTATUS(status) == 128 + sig);
            ++stops;
            snip::train::FasterRCNN probe(trainer_test::tiny_model(2));
            const snip::train::checkpoint_info info =
                snip::train::load_checkpoint((dir / "checkpoint.pt").string(), probe);
            CHECK(info.history.size() == std::size_t(info.position.step));
            CHECK(std::size_t(info.position.step) >= before); // the step in flight was finished
        } else {
            // Killed by the second signal's default action.
            REQUIRE(WIFSIGNALED(status));
            CHECK(WTERMSIG(status) == sig);
            ++doubles;
            if (fs::exists(dir / "checkpoint.pt")) {
                snip::train::FasterRCNN probe(trainer_test::tiny_model(2));
                CHECK_NOTHROW(snip::train::load_checkpoint((dir / "checkpoint.pt").string(), probe));
            }
        }
    }
    std::printf("[signal] %d clean stops (exit 130 / 143), %d double-signal kills, finished\n",
                stops, doubles);
    REQUIRE(finished_runs == 1);
    CHECK(stops >= 4);
    check_same_as_reference(dir);
}

TEST_CASE("crash: child") {
    const char* dir = std::getenv("SNIP_CRASH_CHILD_DIR");
    if (!dir) return; // only when started by the test below
    const bool resume = fs::exists(fs::path(dir) / "checkpoint.pt");
    const snip::train::train_result r = run_training(dir, resume);
    REQUIRE(r.finished);
}

TEST_CASE("crash: SIGKILL at random moments never loses a checkpoint; resume finishes the same run") {
    // The reference: one uninterrupted run.
    const snip::train::train_result& ref = reference().result;
    const double ref_s = reference().seconds;
    REQUIRE(ref.finished);
    REQUIRE(ref.steps == 30);

    const fs::path dir = fs::temp_directory_path() / "snip_crash_killed";
    fs::remove_all(dir);
    fs::create_directories(dir);
    snip::splitmix64 g{12345};
    int kills = 0, mid_write = 0, finished_runs = 0, loads = 0;
    for (int round = 0; round < 40 && finished_runs == 0; ++round) {
        const pid_t pid = spawn_child(dir.string());
        // Let the child get k = 1..3 steps past where it starts (log.csv gains a row per
        // step), then kill it at a random moment within the next step: during the forward
        // and backward pass, the optimizer step or a checkpoint write. From round 12 on let
        // it finish.
        const bool kill_it = round < 12;
        int status = 0;
        bool reaped = false;
        if (kill_it) {
            const std::size_t start = csv_rows(dir / "log.csv");
            const std::size_t target = start + 1 + std::size_t(g.below(3));
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
            while (!reaped && csv_rows(dir / "log.csv") < target &&
                   std::chrono::steady_clock::now() < deadline) {
                reaped = waitpid(pid, &status, WNOHANG) == pid;
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
            const double step_ms = 1000.0 * ref_s / double(ref.steps);
            if (!reaped)
                std::this_thread::sleep_for(
                    std::chrono::microseconds(g.below(std::uint64_t(step_ms * 1000.0) + 1)));
            if (!reaped) reaped = waitpid(pid, &status, WNOHANG) == pid;
            if (!reaped) {
                ::kill(pid, SIGKILL);
                REQUIRE(waitpid(pid, &status, 0) == pid);
                ++kills;
                if (fs::exists(dir / "checkpoint.pt.tmp")) ++mid_write;
            }
        } else {
            REQUIRE(waitpid(pid, &status, 0) == pid);
        }
        if (WIFEXITED(status)) {
            REQUIRE(WEXITSTATUS(status) == 0);
            ++finished_runs;
        }
        // Whatever happened, the checkpoint on disk (if any yet) is whole.
        if (fs::exists(dir / "checkpoint.pt")) {
            snip::train::FasterRCNN probe(trainer_test::tiny_model(2));
            const snip::train::checkpoint_info info =
                snip::train::load_checkpoint((dir / "checkpoint.pt").string(), probe);
            CHECK(info.history.size() == std::size_t(info.position.step));
            ++loads;
        }
    }
    std::printf("[crash] reference run %.1f s; %d kills (%d while a checkpoint was being "
                "written), %d checkpoint loads after kills, finished\n",
                ref_s, kills, mid_write, loads);
    REQUIRE(finished_runs == 1);
    CHECK(kills >= 1);

    // The final history and weights equal the uninterrupted run's, bit for bit.
    check_same_as_reference(dir);
}
