// Data-parallel training (distributed.hpp, train.hpp) on c10d's Gloo backend over loopback:
//   - the shard arithmetic (disjoint, equal, covering) and the options' bad input;
//   - two processes of 2 chips give the same losses and weights as one process of 4 chips;
//   - a rank that dies, or hangs, stops the other with a clear error in bounded time.
// The ranks are this test program itself, started again with the test case "dist: worker"
// selected and SNIP_DIST_WORKER set (the mode); without that variable the case does nothing.
// LibTorch first: its headers bring glog, whose CHECK would otherwise replace doctest's.
#include <snip/train/distributed.hpp>
#include <snip/train/synthetic.hpp>
#include <snip/train/train.hpp>

#include "trainer_test_util.hpp"

#include "test_util.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

/// The tiny model with the mask branch and frozen BatchNorm: trained BN normalises each rank's own chips (as the
/// original's per-GPU BN, unsynchronised), so 2 ranks x 2 chips equal 1 process x 4 chips
/// exactly only when BN does not use batch statistics. (snip-train's distributed runs with
/// trained BN are exercised by train_cli_end_to_end.)
snip::train::detector_options dist_model() {
    snip::train::detector_options o = trainer_test::tiny_model(2);
    o.backbone.train_bn = false;
    // with the mask branch: its loss normaliser is summed over the ranks too
    o.masks = true;
    o.mask_channels = 16;
    o.mask_init_std = 0.0;
    return o;
}

namespace fs = std::filesystem;

/// Global batch 4, two epochs (the second batch of each is padded by wrapping round).
snip::train::train_options dist_train_options(const std::string& out_dir) {
    snip::train::train_options o;
    o.epochs = 2;
    o.batch_size = 4;
    o.flip = snip::train::flip_policy::random; // the step counts of the default (both) halved
    o.base_lr = 0.08; // 0.02 on the 4 chips' mean loss (train.hpp: lr x B / 16)
    o.warmup_chips = 0;
    o.lr_steps = {};
    o.seed = 9;
    o.workers = 1;
    o.out_dir = out_dir;
    o.log_every = 1;
    o.quiet = true;
    return o;
}

/// Trains `net` on the small synthetic set (one process when `g` is null).
/// `bad_images`: this rank cannot read any image (as a file missing on one machine only).
snip::train::train_result train_tiny(snip::train::FasterRCNN& net, const snip::train::train_options& o,
                                snip::train::dist_group* g, bool bad_images = false) {
    const snip::train::synthetic_set data = trainer_test::small_synthetic(31);
    snip::train::image_source src = snip::train::synthetic_source(data);
    if (bad_images)
        src = [&data](std::size_t i) -> snip::train::image {
            snip::fail("/data/", data.ds.images.at(i).file_name,
                       ": cannot open image file (No such file or directory)");
        };
    return snip::train::train(net, data.ds, trainer_test::one_scale_plan("dist"), src, nullptr, o, g);
}

std::vector<torch::Tensor> weights_of(snip::train::FasterRCNN& net) {
    std::vector<torch::Tensor> w;
    for (const auto& p : net->parameters()) w.push_back(p.detach().clone());
    return w;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Starts this program as rank `rank` of `world` in mode `mode` (its output to dir/rank<r>.err).
pid_t spawn_rank(const std::string& mode, const fs::path& dir, int rank, int world) {
    return trainer_test::spawn_self(
        "dist: worker",
        {"SNIP_DIST_WORKER=" + mode, "SNIP_DIST_DIR=" + dir.string(), "RANK=" + std::to_string(rank),
         "WORLD_SIZE=" + std::to_string(world), "OMP_NUM_THREADS=1"},
        {"SNIP_DIST_", "RANK=", "WORLD_SIZE=", "MASTER_", "LOCAL_RANK=", "OMP_NUM_THREADS="},
        (dir / ("rank" + std::to_string(rank) + ".err")).string());
}

/// Waits for `pid` at most `seconds` (then kills it); returns its exit code, or -signal.
int wait_rank(pid_t pid, double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) != pid) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            FAIL("rank (pid ", pid, ") still running after ", seconds, " s: killed");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

/// A fresh directory for one multi-process case (its FileStore file must not exist).
fs::path case_dir(const std::string& name) {
    const fs::path d = fs::temp_directory_path() / ("snip_dist_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

} // namespace

// ---------------------------------------------------------------------------------------
// A rank (only when started by the cases below).

TEST_CASE("dist: worker") {
    const char* mode_c = std::getenv("SNIP_DIST_WORKER");
    if (!mode_c) return;
    const std::string mode = mode_c;
    const fs::path dir = std::getenv("SNIP_DIST_DIR");
    snip::train::dist_options d = snip::train::dist_options::from_env();
    d.init = "file://" + (dir / "store").string();
    d.timeout_s = mode == "hang" ? 15.0 : 60.0;
    at::set_num_threads(1);
    std::ofstream done(dir / ("rank" + std::to_string(d.rank) + ".out"));
    try {
        auto g = snip::train::dist_group::connect(d, torch::kCPU);
        REQUIRE(g);
        // Different initial weights on every rank: rank 0's must win (broadcast).
        torch::manual_seed(d.rank == 0 ? 77 : 1000 + std::uint64_t(d.rank));
        snip::train::FasterRCNN net(dist_model());
        snip::train::train_options o = dist_train_options((dir / "run").string());
        if (mode == "bad_batch") o.batch_size = 3;
        std::thread saboteur;
        if ((mode == "die" || mode == "hang") && d.rank == 1) {
            // Once rank 0 has logged its first step, this rank exits (or stops) mid-run.
            saboteur = std::thread([dir, mode] {
                for (int i = 0; i < 60000; ++i) {
                    std::ifstream in(dir / "run" / "log.csv");
                    std::string line;
                    int rows = 0;
                    while (std::getline(in, line)) ++rows;
                    if (rows >= 2) break;
                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
                }
                std::ofstream(dir / "sabotage") << "now";
                if (mode == "die") ::_exit(3);
                ::raise(SIGSTOP);
            });
            saboteur.detach();
        }
        const snip::train::train_result r =
            train_tiny(net, o, g.get(), mode == "bad_image" && d.rank == 1);
        torch::save(weights_of(net), (dir / ("weights" + std::to_string(d.rank) + ".pt")).string());
        std::ostringstream hist;
        hist.precision(17);
        for (const auto& row : r.history) hist << row.total << "\n";
        done << "ok " << r.steps << "\n" << hist.str();
    } catch (const std::exception& e) {
        done << "error " << e.what() << "\n";
    }
}

// ---------------------------------------------------------------------------------------

TEST_CASE("dist: shards are disjoint, equal and cover the padded plan") {
    for (std::size_t n : {1u, 5u, 16u, 17u, 101u})
        for (std::size_t G : {1u, 2u, 4u, 6u, 8u})
            for (int W : {1, 2, 3, 4}) {
                if (G % std::size_t(W) != 0) {
                    CHECK_THROWS_WITH_AS(snip::train::shard_positions(n, G, W, 0),
                                         doctest::Contains("does not split over"), snip::error);
                    continue;
                }
                INFO("n ", n, " G ", G, " W ", W);
                const std::size_t batches = (n + G - 1) / G;
                std::vector<int> seen(batches * G, 0);
                std::size_t len = 0;
                for (int r = 0; r < W; ++r) {
                    const auto s = snip::train::shard_positions(n, G, W, r);
                    if (r == 0) len = s.size();
                    CHECK(s.size() == len); // equal shards: no rank waits on a short one
                    CHECK(s.size() == batches * G / std::size_t(W));
                    for (std::size_t k = 0; k < s.size(); ++k) {
                        REQUIRE(s[k] < seen.size());
                        ++seen[s[k]];
                        // step k/(G/W) of rank r is inside global batch k/(G/W)
                        CHECK(s[k] / G == k / (G / std::size_t(W)));
                    }
                }
                for (std::size_t p = 0; p < seen.size(); ++p) CHECK(seen[p] == 1);
                // a resumed epoch: the same positions minus the batches done
                const auto full = snip::train::shard_positions(n, G, W, W - 1);
                const auto tail = snip::train::shard_positions(n, G, W, W - 1, 1);
                CHECK(std::vector<std::size_t>(full.begin() + std::ptrdiff_t(G / std::size_t(W)),
                                               full.end()) == tail);
            }
    CHECK_THROWS_WITH_AS(snip::train::shard_positions(4, 2, 2, 2), doctest::Contains("rank 2 of world 2"),
                         snip::error);
}

TEST_CASE("dist: bad options fail with the field and value") {
    snip::train::dist_options d;
    d.world_size = 2;
    d.rank = 5;
    d.init = "tcp://127.0.0.1:29500";
    CHECK_THROWS_WITH_AS(d.validate(), doctest::Contains("rank must be in [0, 1], got 5"), snip::error);
    d.rank = 1;
    d.init = "";
    CHECK_THROWS_WITH_AS(d.validate(), doctest::Contains("needs a rendezvous"), snip::error);
    d.init = "udp://x:1";
    CHECK_THROWS_WITH_AS(d.validate(), doctest::Contains("'udp://x:1': expected tcp://HOST:PORT"),
                         snip::error);
    d.init = "tcp://host:99999";
    CHECK_THROWS_WITH_AS(d.validate(), doctest::Contains("port must be in 1..65535, got 99999"),
                         snip::error);
    d.init = "tcp://host:2x";
    CHECK_THROWS_WITH_AS(d.validate(), doctest::Contains("expected an integer, got '2x'"), snip::error);
    d.init = "tcp://[::1]:29500";
    CHECK(d.parse_init().where == "::1");
    CHECK(d.parse_init().port == 29500);
    d.timeout_s = std::nan("");
    CHECK_THROWS_WITH_AS(d.validate(), doctest::Contains("timeout must be in (0, 604800] seconds, got nan"),
                         snip::error);
    d.timeout_s = 10;
    d.world_size = 0;
    CHECK_THROWS_WITH_AS(d.validate(), doctest::Contains("world size must be >= 1, got 0"), snip::error);

    // One process needs no group at all.
    snip::train::dist_options one;
    CHECK(snip::train::dist_group::connect(one, torch::kCPU) == nullptr);

#if !defined(SNIP_TORCH_HAS_NCCL)
    // CUDA devices need NCCL: without it the error comes at once, before any rendezvous.
    snip::train::dist_options cuda;
    cuda.world_size = 2;
    cuda.init = "file://" + (fs::temp_directory_path() / "snip_dist_never_created").string();
    CHECK_THROWS_WITH_AS(snip::train::dist_group::connect(cuda, torch::Device(torch::kCUDA, 0)),
                         doctest::Contains("the NCCL backend (CUDA devices) is not compiled"),
                         snip::error);
    CHECK_FALSE(fs::exists(fs::temp_directory_path() / "snip_dist_never_created"));
#endif

    // Environment variables: a malformed one is named.
    ::setenv("WORLD_SIZE", "two", 1);
    CHECK_THROWS_WITH_AS(snip::train::dist_options::from_env(),
                         doctest::Contains("WORLD_SIZE: expected an integer, got 'two'"), snip::error);
    ::setenv("WORLD_SIZE", "2", 1);
    ::setenv("RANK", "1", 1);
    ::setenv("MASTER_ADDR", "10.0.0.7", 1);
    ::setenv("MASTER_PORT", "1234", 1);
    const snip::train::dist_options e = snip::train::dist_options::from_env();
    CHECK(e.world_size == 2);
    CHECK(e.rank == 1);
    CHECK(e.init == "tcp://10.0.0.7:1234");
    for (const char* k : {"WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"}) ::unsetenv(k);
}

#if defined(SNIP_TORCH_HAS_GLOO)

TEST_CASE("dist: 2 processes x 2 chips train the same weights as 1 process x 4 chips") {
    // The reference: one process, the global batch of 4 chips, rank 0's initial weights.
    const fs::path dir = case_dir("equal");
    torch::manual_seed(77);
    snip::train::FasterRCNN ref_net(dist_model());
    const std::vector<torch::Tensor> w0 = weights_of(ref_net);
    const snip::train::train_result ref = train_tiny(ref_net, dist_train_options((dir / "ref").string()), nullptr);
    REQUIRE(ref.finished);
    REQUIRE(ref.steps == 4); // 2 epochs of 2 batches (6 chips, the second batch padded)
    const std::vector<torch::Tensor> w_ref = weights_of(ref_net);

    const pid_t p0 = spawn_rank("train", dir, 0, 2), p1 = spawn_rank("train", dir, 1, 2);
    CHECK(wait_rank(p0, 600) == 0);
    CHECK(wait_rank(p1, 600) == 0);
    for (int r = 0; r < 2; ++r) {
        const std::string out = slurp(dir / ("rank" + std::to_string(r) + ".out"));
        INFO("rank ", r, ": ", out, slurp(dir / ("rank" + std::to_string(r) + ".err")));
        REQUIRE(out.rfind("ok 4\n", 0) == 0);
        // the loss history (of the global batch) is the reference's
        std::istringstream in(out.substr(5));
        for (std::size_t s = 0; s < ref.history.size(); ++s) {
            double v = 0;
            REQUIRE(static_cast<bool>(in >> v));
            CHECK(v == doctest::Approx(ref.history[s].total).epsilon(1e-4));
        }
    }
    std::vector<torch::Tensor> w[2];
    torch::load(w[0], (dir / "weights0.pt").string());
    torch::load(w[1], (dir / "weights1.pt").string());
    REQUIRE(w[0].size() == w_ref.size());
    REQUIRE(w[1].size() == w_ref.size());
    double max_diff = 0, max_moved = 0;
    for (std::size_t i = 0; i < w_ref.size(); ++i) {
        // both ranks hold the very same weights (the averaged gradients are bit-identical)
        CHECK(torch::equal(w[0][i], w[1][i]));
        max_diff = std::max(max_diff, (w[0][i] - w_ref[i]).abs().max().item<double>());
        max_moved = std::max(max_moved, (w_ref[i] - w0[i]).abs().max().item<double>());
        CHECK(torch::allclose(w[0][i], w_ref[i], /*rtol=*/1e-3, /*atol=*/1e-5));
    }
    std::printf("[dist] 2 ranks vs 1: max |w_2 - w_1| %.3g after 4 steps (weights moved up to "
                "%.3g)\n", max_diff, max_moved);
    CHECK(max_moved > 100 * max_diff); // the weights did move, far more than they differ
    // rank 0 alone wrote the outputs, and they are readable
    CHECK(fs::exists(dir / "run" / "checkpoint.pt"));
    CHECK(fs::exists(dir / "run" / "log.csv"));
    fs::remove_all(dir);
}

TEST_CASE("dist: a global batch the world size does not divide fails on every rank") {
    const fs::path dir = case_dir("batch");
    const pid_t p0 = spawn_rank("bad_batch", dir, 0, 2), p1 = spawn_rank("bad_batch", dir, 1, 2);
    CHECK(wait_rank(p0, 300) == 0);
    CHECK(wait_rank(p1, 300) == 0);
    for (int r = 0; r < 2; ++r)
        CHECK(slurp(dir / ("rank" + std::to_string(r) + ".out")).find(
                  "a batch of 3 chips does not split over 2 processes") != std::string::npos);
    fs::remove_all(dir);
}

TEST_CASE("dist: a rank that dies stops the others with a clear error") {
    const fs::path dir = case_dir("die");
    const pid_t p0 = spawn_rank("die", dir, 0, 2), p1 = spawn_rank("die", dir, 1, 2);
    CHECK(wait_rank(p1, 600) == 3); // it did die, mid-run
    const auto t_died = std::chrono::steady_clock::now();
    CHECK(wait_rank(p0, 120) == 0); // the timeout is 60 s; a dead peer is seen at once
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_died).count();
    const std::string out = slurp(dir / "rank0.out");
    INFO(out, slurp(dir / "rank0.err"));
    CHECK(out.rfind("error distributed (rank 0 of 2): ", 0) == 0);
    CHECK(out.find("failed: another rank exited") != std::string::npos);
    std::printf("[dist] rank 0 stopped %.2f s after rank 1 died: %s", s, out.c_str());
    fs::remove_all(dir);
}

TEST_CASE("dist: a rank whose images cannot be read stops the others, who name it and its error") {
    const fs::path dir = case_dir("bad_image");
    const pid_t p0 = spawn_rank("bad_image", dir, 0, 2), p1 = spawn_rank("bad_image", dir, 1, 2);
    CHECK(wait_rank(p1, 300) == 0);
    CHECK(wait_rank(p0, 120) == 0);
    const std::string out1 = slurp(dir / "rank1.out"), out0 = slurp(dir / "rank0.out");
    INFO(out0, slurp(dir / "rank0.err"));
    CHECK(out1.find("No such file or directory") != std::string::npos);
    // Rank 0 names rank 1 and its message, not only a lost connection.
    CHECK(out0.rfind("error distributed (rank 0 of 2): ", 0) == 0);
    CHECK(out0.find("rank 1 failed: ") != std::string::npos);
    CHECK(out0.find("cannot open image file (No such file or directory)") != std::string::npos);
    std::printf("[dist] rank 0 after rank 1's bad image: %s", out0.c_str());
    fs::remove_all(dir);
}

TEST_CASE("dist: a rank that hangs stops the others after the timeout") {
    const fs::path dir = case_dir("hang");
    const pid_t p0 = spawn_rank("hang", dir, 0, 2), p1 = spawn_rank("hang", dir, 1, 2);
    int st0 = 0;
    bool p0_done = false;
    for (int i = 0; i < 60000 && !fs::exists(dir / "sabotage") && !p0_done; ++i) {
        p0_done = waitpid(p0, &st0, WNOHANG) == p0;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (p0_done) { // rank 0 gave up before rank 1 hung: a step slower than the timeout
        ::kill(p1, SIGKILL);
        waitpid(p1, &st0, 0);
        FAIL("rank 0 stopped before rank 1 hung: ", slurp(dir / "rank0.out"));
    }
    REQUIRE(fs::exists(dir / "sabotage"));
    const auto t_hung = std::chrono::steady_clock::now();
    CHECK(wait_rank(p0, 120) == 0); // the timeout is 15 s
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_hung).count();
    ::kill(p1, SIGKILL);
    int st = 0;
    waitpid(p1, &st, 0);
    const std::string out = slurp(dir / "rank0.out");
    INFO(out, slurp(dir / "rank0.err"));
    CHECK(out.rfind("error distributed (rank 0 of 2): ", 0) == 0);
    CHECK(s < 60);
    CHECK(s > 5); // it did wait for the hung rank, up to the timeout
    std::printf("[dist] rank 0 stopped %.2f s after rank 1 hung (timeout 15 s): %s", s, out.c_str());
    fs::remove_all(dir);
}

#else
TEST_CASE("dist: multi-process cases") {
    MESSAGE("skipped: this build has no Gloo backend (install libgloo-dev and reconfigure)");
}
#endif
