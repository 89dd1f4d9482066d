// The training loop (trainer/include/snip/train/train.hpp): the learning-rate schedule against
// hand-computed values, a smoke training of a tiny model where the loss falls, the RPN-only
// stage, checkpoint + resume giving exactly the loss sequence of an uninterrupted run,
// refused checkpoints (another model, another setup, a truncated file) that leave the model
// untouched, bad options, and the CSV / PNG outputs.
// LibTorch first: its headers bring glog, whose CHECK would otherwise replace doctest's.
#include <snip/train/train.hpp>

#include "trainer_test_util.hpp"

#include "test_util.hpp"

#include <snip/core/random.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <iterator>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

using trainer_test::tiny_model;


/// Four small images with 2-3 solid rectangles each on a noisy background; class 1 red,
/// class 2 blue. Boxes continuous, original px.
struct toy_set {
    snip::dataset ds;
    std::vector<snip::train::image> pixels;
};

toy_set make_toy(int n = 4, std::uint64_t seed = 5) {
    toy_set t;
    t.ds.source = "toy";
    t.ds.categories = {{3, "red"}, {7, "blue"}};
    snip::splitmix64 g{seed};
    for (int i = 0; i < n; ++i) {
        const int w = 160, h = 128;
        snip::train::image im(w, h);
        for (auto& v : im.px) v = std::uint8_t(100 + g.below(40));
        snip::image_record r;
        r.id = i + 1;
        r.file_name = "toy_" + std::to_string(i) + ".png";
        r.width = w;
        r.height = h;
        const int k = 2 + int(g.below(2));
        for (int j = 0; j < k; ++j) {
            const int bw = 16 + int(g.below(40)), bh = 16 + int(g.below(40));
            const int x = int(g.below(std::uint64_t(w - bw))), y = int(g.below(std::uint64_t(h - bh)));
            const int cls = int(g.below(2));
            for (int yy = y; yy < y + bh; ++yy)
                for (int xx = x; xx < x + bw; ++xx) {
                    std::uint8_t* p = im.row(yy) + 3 * xx;
                    p[0] = cls == 0 ? 230 : 20;
                    p[1] = 30;
                    p[2] = cls == 0 ? 20 : 230;
                }
            r.boxes.push_back({double(x), double(y), double(x + bw), double(y + bh)});
            r.ann_ids.push_back(100 * (i + 1) + j);
            r.categories.push_back(cls == 0 ? 3 : 7);
            r.crowd.push_back(0);
        }
        t.ds.images.push_back(std::move(r));
        t.pixels.push_back(std::move(im));
    }
    return t;
}

snip::plan_config toy_plan() {
    snip::plan_config c;
    c.name = "toy";
    c.scales = {snip::scale_spec::by_factor(1.0)};
    c.ranges = {snip::valid_range{-1.0, -1.0}};
    c.chip_size = 128;
    c.stride = 32;
    return c;
}

snip::train::image_source source_of(const toy_set& t) {
    return [&t](std::size_t i) { return t.pixels.at(i); };
}

snip::train::train_options toy_train(const std::string& out) {
    snip::train::train_options o;
    o.epochs = 3;
    o.batch_size = 2;
    o.base_lr = 0.16; // 0.02 on the 2 chips' mean loss (train.hpp: lr x B / 16)
    o.warmup_chips = 4;
    o.lr_steps = {2.5};
    o.seed = 17;
    o.flip = snip::train::flip_policy::random; // 4 chips per epoch (the default, both, has 8)
    o.workers = 1;
    o.out_dir = out;
    o.checkpoint_every = 0;
    o.log_every = 2;
    o.quiet = true;
    return o;
}

fs::path fresh_dir(const std::string& name) {
    const fs::path d = fs::temp_directory_path() / ("snip_train_test_" + name);
    fs::remove_all(d);
    return d;
}

std::vector<double> totals(const std::vector<snip::train::log_row>& h) {
    std::vector<double> v;
    for (const auto& r : h) v.push_back(r.total);
    return v;
}

} // namespace

TEST_CASE("train: the learning-rate schedule is SNIPER's, the same lr for any batch") {
    // The lr applies to the sum of the 16-chip group losses (detector.hpp), so it does not
    // scale with the batch; the warmup keeps its length in chips (128,000).
    snip::train::train_options o; // batch 16: one of the original's 8 GPUs
    CHECK(o.warmup_steps() == 8000);
    CHECK(o.lr_at(0, 0.0) == doctest::Approx(0.0005));
    CHECK(o.lr_at(4000, 0.5) == doctest::Approx(0.015 * (1.0 / 30 + (29.0 / 30) * 0.5)));
    CHECK(o.lr_at(8000, 1.0) == doctest::Approx(0.015));
    CHECK(o.lr_at(100000, 5.32) == doctest::Approx(0.015));
    CHECK(o.lr_at(100000, 5.33) == doctest::Approx(0.0015));
    o.batch_size = 128;
    CHECK(o.warmup_steps() == 1000);
    CHECK(o.lr_at(1000, 2.0) == doctest::Approx(0.015));
    o.lr_steps = {1.0, 2.0};
    CHECK(o.lr_at(5000, 2.5) == doctest::Approx(0.00015));
    o.warmup_chips = 0;
    CHECK(o.lr_at(0, 0.0) == doctest::Approx(0.015));
}

TEST_CASE("train: bad options are refused with the field named") {
    auto msg = [](snip::train::train_options o) {
        try {
            o.validate();
        } catch (const snip::error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    snip::train::train_options o;
    o.batch_size = 0;
    CHECK(msg(o).find("batch size must be >= 1, got 0") != std::string::npos);
    o = {};
    o.base_lr = -1;
    CHECK(msg(o).find("learning rate must be > 0, got -1") != std::string::npos);
    o = {};
    o.lr_steps = {3.0, 2.0};
    CHECK(msg(o).find("lr steps must be increasing") != std::string::npos);
    o = {};
    o.momentum = 1.0;
    CHECK(msg(o).find("momentum must be in [0, 1), got 1") != std::string::npos);
    o = {};
    o.resume = true;
    CHECK(msg(o).find("--resume needs an output folder") != std::string::npos);
    o = {};
    CHECK(msg(o).empty());
}

TEST_CASE("train: a tiny model's loss falls; outputs are written") {
    torch::manual_seed(1);
    const toy_set t = make_toy();
    snip::train::FasterRCNN net(tiny_model());
    const fs::path out = fresh_dir("smoke");
    snip::train::train_options o = toy_train(out.string());
    o.epochs = 12; // 4 chips per epoch at batch 2: 24 steps
    o.lr_steps = {};
    std::size_t log_calls = 0, last_logged = 0;
    std::string log_title;
    o.on_log = [&](const std::vector<snip::train::log_row>& h, const std::string& title) {
        ++log_calls;
        last_logged = h.size();
        log_title = title;
    };
    const snip::train::train_result r = snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o);
    REQUIRE(r.finished);
    REQUIRE(r.history.size() == std::size_t(r.steps));
    REQUIRE(r.steps >= 20);
    const auto v = totals(r.history);
    double first = 0, last = 0;
    for (int i = 0; i < 4; ++i) first += v[std::size_t(i)] / 4, last += v[v.size() - 1 - std::size_t(i)] / 4;
    std::printf("[train] smoke: %lld steps in %.1f s, total loss %.3f -> %.3f (first/last 4 steps)\n",
                static_cast<long long>(r.steps), r.seconds, first, last);
    CHECK(last < 0.7 * first);
    for (const auto& row : r.history) CHECK(row.rcnn_cls > 0.0);
    // Outputs: CSV with a header and one row per step, a PNG, the checkpoint.
    std::ifstream csv(out / "log.csv");
    std::string line;
    std::getline(csv, line);
    CHECK(line == "step,epoch,lr,rpn_cls,rpn_box,rcnn_cls,rcnn_box,rcnn_mask,total,chips_per_s");
    std::size_t rows = 0;
    while (std::getline(csv, line)) ++rows;
    CHECK(rows == r.history.size());
    // The log hook (the programs draw loss.png from it) saw every row at the last log point.
    CHECK(log_calls >= 2);
    CHECK(last_logged == r.history.size());
    CHECK(log_title.find("training: sniper network, ResNet-") == 0);
    CHECK(fs::exists(out / "checkpoint.pt"));
    CHECK_FALSE(fs::exists(out / "checkpoint.pt.tmp"));
}

TEST_CASE("train: the RPN-only stage trains the RPN alone") {
    torch::manual_seed(2);
    const toy_set t = make_toy();
    snip::train::FasterRCNN net(tiny_model());
    const torch::Tensor fc6_before = net->fc6->weight.clone();
    snip::train::train_options o = toy_train("");
    o.rpn_only = true;
    o.epochs = 2;
    const snip::train::train_result r = snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o);
    REQUIRE(r.steps == 4);
    for (const auto& row : r.history) {
        CHECK(row.rcnn_cls == 0.0);
        CHECK(row.rcnn_box == 0.0);
        CHECK(row.rpn_cls > 0.0);
    }
    // The head gets no gradient; weight decay does not touch a parameter without one.
    CHECK(torch::equal(net->fc6->weight, fc6_before));
}

TEST_CASE("train: checkpoint + resume gives the loss sequence of an uninterrupted run") {
    const toy_set t = make_toy();
    const snip::plan_config cfg = toy_plan();
    // Uninterrupted: 3 epochs x 2 batches.
    torch::manual_seed(9);
    snip::train::FasterRCNN a(tiny_model());
    const fs::path da = fresh_dir("resume_a");
    const snip::train::train_result ra = snip::train::train(a, t.ds, cfg, source_of(t), nullptr, toy_train(da.string()));
    REQUIRE(ra.finished);
    REQUIRE(ra.steps == 6);

    // Interrupted after 3 steps (mid-epoch 2), then after 1 more, then to the end; each part
    // in a fresh model object that only sees the checkpoint.
    const fs::path db = fresh_dir("resume_b");
    std::vector<std::int64_t> parts{3, 1, 0};
    snip::train::train_result rb;
    for (std::size_t k = 0; k < parts.size(); ++k) {
        // later parts start from another init: the checkpoint must overwrite all of it
        torch::manual_seed(k == 0 ? 9 : 1000 + k);
        snip::train::FasterRCNN b(tiny_model());
        snip::train::train_options o = toy_train(db.string());
        o.max_steps = parts[k];
        o.resume = k > 0;
        rb = snip::train::train(b, t.ds, cfg, source_of(t), nullptr, o);
        CHECK(rb.steps_this_run == (k == 2 ? 2 : parts[k]));
    }
    REQUIRE(rb.finished);
    const auto va = totals(ra.history), vb = totals(rb.history);
    REQUIRE(va.size() == vb.size());
    for (std::size_t i = 0; i < va.size(); ++i) {
        INFO("step ", i);
        CHECK(va[i] == vb[i]); // bit-identical: same plan, jobs, seeds and state
    }
    for (std::size_t i = 0; i < va.size(); ++i) CHECK(ra.history[i].lr == rb.history[i].lr);
}

TEST_CASE("train: checkpoints of another model or setup, and broken files, are refused") {
    const toy_set t = make_toy();
    torch::manual_seed(4);
    snip::train::FasterRCNN net(tiny_model());
    const fs::path d = fresh_dir("refuse");
    snip::train::train_options o = toy_train(d.string());
    o.max_steps = 1;
    snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o);
    const std::string ck = (d / "checkpoint.pt").string();
    REQUIRE(fs::exists(ck));

    // Another model: a wider backbone. The message names both; the model is untouched.
    snip::train::detector_options other = tiny_model();
    other.backbone.width = 16;
    snip::train::FasterRCNN wide(other);
    const torch::Tensor before = wide->backbone->conv1->weight.clone();
    try {
        snip::train::load_checkpoint(ck, wide);
        FAIL("loaded a checkpoint of another model");
    } catch (const snip::error& e) {
        const std::string m = e.what();
        CHECK(m.find("checkpoint of another model") != std::string::npos);
        CHECK(m.find("width 8") != std::string::npos);
        CHECK(m.find("width 16") != std::string::npos);
    }
    CHECK(torch::equal(before, wide->backbone->conv1->weight));

    // Another setup (seed): refused on --resume.
    snip::train::FasterRCNN same(tiny_model());
    o.seed = 18;
    o.resume = true;
    try {
        snip::train::train(same, t.ds, toy_plan(), source_of(t), nullptr, o);
        FAIL("resumed another setup");
    } catch (const snip::error& e) {
        CHECK(std::string(e.what()).find("another training setup") != std::string::npos);
        CHECK(std::string(e.what()).find("seed 17") != std::string::npos);
    }

    // A truncated file.
    const fs::path cut = d / "cut.pt";
    fs::copy_file(ck, cut);
    fs::resize_file(cut, fs::file_size(cut) / 2);
    CHECK_THROWS_WITH_AS(snip::train::load_checkpoint(cut.string(), same),
                         doctest::Contains("cannot read the checkpoint"), snip::error);
    CHECK_THROWS_WITH_AS(snip::train::load_checkpoint((d / "none.pt").string(), same),
                         doctest::Contains("no such checkpoint file"), snip::error);
    // A model with another class count.
    snip::train::FasterRCNN three(tiny_model(3));
    CHECK_THROWS_WITH_AS(snip::train::load_checkpoint(ck, three), doctest::Contains("classes 2"),
                         snip::error);
    // The dataset must match the model's classes.
    snip::train::train_options fresh = toy_train("");
    CHECK_THROWS_WITH_AS(snip::train::train(three, t.ds, toy_plan(), source_of(t), nullptr, fresh),
                         doctest::Contains("has 2 categories, the model 3 classes"), snip::error);
}

namespace {

std::string file_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

TEST_CASE("train: a folder holding a checkpoint is refused without resume or overwrite; one run "
          "per folder; stale temporaries removed; an unusable folder fails at start") {
    const toy_set t = make_toy();
    const fs::path d = fresh_dir("guard");
    snip::train::train_options o = toy_train(d.string());
    o.max_steps = 2;
    torch::manual_seed(3);
    snip::train::FasterRCNN net(tiny_model());
    snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o);
    const fs::path ck = d / "checkpoint.pt";
    REQUIRE(fs::exists(ck));
    const std::string kept = file_bytes(ck);

    // A forgotten --resume: refused before anything is written; the checkpoint is unchanged.
    o.max_steps = 1;
    const std::string refused = snip_test::error_of(
        [&] { snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o); });
    CHECK(refused.find(ck.string() + " exists") != std::string::npos);
    CHECK(refused.find("--resume") != std::string::npos);
    CHECK(refused.find("--overwrite") != std::string::npos);
    CHECK(file_bytes(ck) == kept);

    // A second run while the first holds the folder: refused, naming the first.
    {
        const snip::train::run_lock first(d.string(), "snip-train train --out first-run");
        o.overwrite = true;
        const std::string m = snip_test::error_of(
            [&] { snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o); });
        CHECK(m.find("another run is writing into this folder") != std::string::npos);
        CHECK(m.find("snip-train train --out first-run") != std::string::npos);
        CHECK(m.find("process " + std::to_string(::getpid())) != std::string::npos);
        CHECK(file_bytes(ck) == kept);
    }
    // The lock went with its holder. Temporaries a killed run left are removed at start;
    // --overwrite replaces the checkpoint.
    std::ofstream(d / "checkpoint.pt.tmp") << "half a checkpoint";
    std::ofstream(d / "log.csv.tmp") << "step,";
    const snip::train::train_result r =
        snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o);
    CHECK(r.steps == 1);
    CHECK_FALSE(fs::exists(d / "checkpoint.pt.tmp"));
    CHECK_FALSE(fs::exists(d / "log.csv.tmp"));
    CHECK(file_bytes(ck) != kept);

    // An output folder that cannot be made fails at start, naming it and the reason.
    snip::train::train_options bad = toy_train((d / "checkpoint.pt" / "sub").string());
    const std::string m = snip_test::error_of(
        [&] { snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, bad); });
    CHECK(m.find("cannot create the folder") != std::string::npos);
    CHECK(m.find("Not a directory") != std::string::npos);
}

TEST_CASE("train: resume refuses another plan config (scales, ranges, stride), not only a seed") {
    const toy_set t = make_toy();
    const fs::path d = fresh_dir("setup");
    snip::train::train_options o = toy_train(d.string());
    o.max_steps = 1;
    torch::manual_seed(3);
    snip::train::FasterRCNN net(tiny_model());
    snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o);
    o.resume = true;
    snip::plan_config ranges = toy_plan();
    ranges.ranges = {snip::valid_range{-1.0, 120.0}};
    snip::plan_config scales = toy_plan();
    scales.scales = {snip::scale_spec::by_factor(1.5)};
    snip::plan_config stride = toy_plan();
    stride.stride = 16;
    for (const snip::plan_config* c : {&ranges, &scales, &stride})
        CHECK_THROWS_WITH_AS(snip::train::train(net, t.ds, *c, source_of(t), nullptr, o),
                             doctest::Contains("another training setup"), snip::error);
    // The same config resumes.
    CHECK(snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o).steps == 2);
}

TEST_CASE("train: a failed checkpoint write (file size limit) stops the run naming the file and "
          "keeps the previous checkpoint; failed log and picture writes only warn") {
    const toy_set t = make_toy();
    const fs::path d = fresh_dir("full");
    snip::train::train_options o = toy_train(d.string());
    o.max_steps = 2;
    torch::manual_seed(3);
    snip::train::FasterRCNN net(tiny_model());
    snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o);
    const fs::path ck = d / "checkpoint.pt";
    const std::string kept = file_bytes(ck);
    REQUIRE(kept.size() > 4096);

    // As `ulimit -f` would: writes past half the checkpoint's size fail with EFBIG (SIGXFSZ
    // ignored, as snip-train does through stop_signals).
    o.resume = true;
    {
        const snip::train::stop_signals signals;
        rlimit old{};
        REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
        rlimit low = old;
        low.rlim_cur = rlim_t(kept.size() / 2);
        REQUIRE(setrlimit(RLIMIT_FSIZE, &low) == 0);
        std::string m;
        try {
            snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o);
        } catch (const snip::error& e) {
            m = e.what();
        }
        REQUIRE(setrlimit(RLIMIT_FSIZE, &old) == 0);
        CHECK(m.find(ck.string()) != std::string::npos);
        CHECK(m.find("File too large") != std::string::npos);
        CHECK(m.find("is intact") != std::string::npos);
    }
    CHECK(file_bytes(ck) == kept);
    CHECK_FALSE(fs::exists(d / "checkpoint.pt.tmp"));
    snip::train::FasterRCNN probe(tiny_model());
    CHECK(snip::train::load_checkpoint(ck.string(), probe).position.step == 2);

    // log.csv that cannot be written (a folder in its place) and a picture hook that throws:
    // the run goes on to the end, with its checkpoint.
    fs::remove(d / "log.csv");
    fs::create_directories(d / "log.csv" / "blocked");
    int pictures = 0;
    o.on_log = [&](const std::vector<snip::train::log_row>&, const std::string&) {
        ++pictures;
        throw snip::error("loss.png: No space left on device");
    };
    o.max_steps = 0;
    const snip::train::train_result r =
        snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o);
    CHECK(r.finished);
    CHECK(pictures >= 2);
    CHECK(snip::train::load_checkpoint(ck.string(), probe).position.step == r.steps);
}

TEST_CASE("train: log.csv is appended at each log point and equals the whole history after "
          "a resume") {
    const toy_set t = make_toy();
    const fs::path d = fresh_dir("csv");
    snip::train::train_options o = toy_train(d.string());
    o.log_every = 1;
    o.max_steps = 3;
    torch::manual_seed(3);
    snip::train::FasterRCNN net(tiny_model());
    snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o);
    o.resume = true;
    o.max_steps = 0;
    const snip::train::train_result r =
        snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o);
    REQUIRE(r.finished);
    const fs::path whole = d / "whole.csv";
    snip::train::write_log_csv(whole.string(), r.history);
    CHECK(file_bytes(d / "log.csv") == file_bytes(whole));
    // Appending rows the file has: only the new ones are added.
    snip::train::append_log_csv(whole.string(), r.history, r.history.size() - 2);
    std::ifstream in(whole);
    std::size_t lines = 0;
    for (std::string line; std::getline(in, line);) ++lines;
    CHECK(lines == 1 + r.history.size() + 2);
    CHECK_THROWS_WITH_AS(snip::train::append_log_csv((d / "none.csv").string(), r.history, 0),
                         doctest::Contains("No such file"), snip::error);
}

TEST_CASE("train: a stop request finishes the step, writes the checkpoint and says so") {
    const toy_set t = make_toy();
    const fs::path d = fresh_dir("stop");
    snip::train::train_options o = toy_train(d.string());
    torch::manual_seed(3);
    snip::train::FasterRCNN net(tiny_model());
    snip::train::request_stop(SIGTERM); // as the handler does
    const snip::train::train_result r =
        snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o);
    snip::train::clear_stop();
    CHECK(r.stopped_by == SIGTERM);
    CHECK(r.steps == 1);
    CHECK_FALSE(r.finished);
    snip::train::FasterRCNN probe(tiny_model());
    CHECK(snip::train::load_checkpoint((d / "checkpoint.pt").string(), probe).position.step == 1);
    CHECK(snip::train::signal_name(SIGINT) == "SIGINT");
    CHECK(snip::train::signal_name(SIGTERM) == "SIGTERM");
}

TEST_CASE("train: a bad image stops the run before its step, naming it; skip_bad_images trains "
          "on and names it") {
    const toy_set t = make_toy();
    // Image 2 cannot be read, like a file deleted in the middle of an epoch.
    const snip::train::image_source src = [&t](std::size_t i) {
        if (i == 2) snip::fail("toy_2.png: cannot open image file (No such file or directory)");
        return t.pixels.at(i);
    };
    const fs::path d = fresh_dir("bad_image");
    snip::train::train_options o = toy_train(d.string());
    o.checkpoint_every = 1;
    torch::manual_seed(3);
    snip::train::FasterRCNN net(tiny_model());
    std::string m = snip_test::error_of(
        [&] { snip::train::train(net, t.ds, toy_plan(), src, nullptr, o); });
    CHECK(m.find("toy_2.png") != std::string::npos);
    CHECK(m.find("No such file") != std::string::npos);
    // Every step before the bad batch was applied and checkpointed, none after.
    snip::train::FasterRCNN probe(tiny_model());
    const std::int64_t at = fs::exists(d / "checkpoint.pt")
                                ? snip::train::load_checkpoint((d / "checkpoint.pt").string(), probe)
                                      .position.step
                                : 0;
    CHECK(at < 6);

    o.overwrite = true;
    o.skip_bad_images = true;
    const snip::train::train_result r = snip::train::train(net, t.ds, toy_plan(), src, nullptr, o);
    CHECK(r.finished);
    REQUIRE(r.skipped_images.size() == 1);
    CHECK(r.skipped_images[0].find("toy_2.png") != std::string::npos);
}

TEST_CASE("out_of_memory_guard: an allocation failure names the step or image, without "
          "LibTorch's backtrace; anything else passes through") {
    const std::string m = snip_test::error_of([] {
        snip::train::out_of_memory_guard("detect: image id 9 (big.jpg, 12000 x 9000 px)", "use smaller --test-scales",
                                         [] {
                                             throw std::runtime_error(
                                                 "[enforce fail at alloc_cpu.cpp:75] data. "
                                                 "DefaultCPUAllocator: not enough memory: you tried "
                                                 "to allocate 41472000000 bytes.\nException raised "
                                                 "from alloc_cpu at ...\nframe #0: ...");
                                         });
    });
    CHECK(m.find("detect: image id 9 (big.jpg, 12000 x 9000 px): out of memory") == 0);
    CHECK(m.find("41472000000 bytes") != std::string::npos);
    CHECK(m.find("use smaller --test-scales") != std::string::npos);
    CHECK(m.find("frame #0") == std::string::npos);
    CHECK(snip_test::error_of([] {
              snip::train::out_of_memory_guard("train: step 3", "", [] { throw std::bad_alloc(); });
          }).find("train: step 3: out of memory") == 0);
    // Other errors pass through unchanged.
    CHECK_THROWS_WITH_AS(snip::train::out_of_memory_guard("x", "", [] { throw std::runtime_error("other"); }),
                         "other", std::runtime_error);
    CHECK(snip::train::out_of_memory_guard("x", "", [] { return 7; }) == 7);
}

TEST_CASE("train: the loss scaler skips overflowed steps, backs off and grows") {
    torch::Tensor w = torch::ones({3}, torch::requires_grad());
    snip::train::loss_scaler sc;
    sc.scale = 8.0;
    sc.interval = 2;
    // A finite gradient comes back unscaled exactly.
    (w * torch::tensor({1.0f, 2.0f, 3.0f})).sum().mul(sc.scale).backward();
    REQUIRE(sc.unscale({w}));
    CHECK(torch::equal(w.grad(), torch::tensor({1.0f, 2.0f, 3.0f})));
    sc.update(true);
    CHECK(sc.scale == 8.0);
    sc.update(true);
    CHECK(sc.scale == 16.0); // two good steps in a row
    // An overflow: reported, the scale halves, counted.
    w.mutable_grad().zero_();
    w.mutable_grad()[1] = std::numeric_limits<float>::infinity();
    CHECK_FALSE(sc.unscale({w}));
    sc.update(false);
    CHECK(sc.scale == 8.0);
    CHECK(sc.skipped == 1);
    CHECK(sc.good == 0);
    w.mutable_grad()[1] = std::numeric_limits<float>::quiet_NaN();
    CHECK_FALSE(sc.unscale({w}));
}

TEST_CASE("train: mixed precision on the CPU is refused") {
    const toy_set t = make_toy();
    snip::train::FasterRCNN net(tiny_model());
    snip::train::train_options o = toy_train("");
    o.amp = true;
    CHECK_THROWS_WITH_AS(snip::train::train(net, t.ds, toy_plan(), source_of(t), nullptr, o),
                         doctest::Contains("mixed precision (--amp) runs on CUDA only"),
                         snip::error);
}

TEST_CASE("train_options: the original SNIPER's schedule (sniper_res101_e2e.yml, utils.py)") {
    const snip::train::train_options t;
    CHECK(t.base_lr == 0.015);
    CHECK(t.flip == snip::train::flip_policy::both);
    CHECK(t.lr_at(1000000, 0.0) == 0.015); // no scaling with the batch
    CHECK(t.lr_at(1000000, 6.0) == doctest::Approx(0.0015));
    CHECK(t.epochs == 7);
    CHECK(t.lr_steps == std::vector<double>{5.33});
    CHECK(t.momentum == 0.9);
    CHECK(t.weight_decay == 1e-4);
    CHECK(t.warmup_chips == 128000); // 1,000 steps of 8 x 16 chips
    CHECK(t.lr_at(0, 0.0) == doctest::Approx(0.0005)); // warmup_lr
    CHECK(t.assign.min_size == 10.0); // filter_boxes(gt_boxes, 10), data_workers.py
}
