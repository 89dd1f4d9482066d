// trainer_test_util.hpp: what the trainer's tests share. LibTorch only (no doctest), so it
// can be included before "test_util.hpp" as those tests must.
#pragma once

#include <snip/train/detector.hpp>
#include <snip/train/synthetic.hpp>

#include <spawn.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace trainer_test {

/// A tiny detector for fast CPU tests: ResNet-18 at width 8 trained from scratch (nothing
/// frozen), RPN 32, head 16 and FC 64 channels.
inline snip::train::detector_options tiny_model(std::int64_t classes = 2) {
    snip::train::detector_options o;
    o.backbone.depth = 18;
    o.backbone.width = 8;
    o.backbone.frozen_stages = -1;
    o.num_classes = classes;
    o.rpn_channels = 32;
    o.head_channels = 16;
    o.fc_channels = 64;
    return o;
}

/// Six small synthetic images (96..128 px, 2 classes, objects from 12 px), from `seed`.
inline snip::train::synthetic_set small_synthetic(std::uint64_t seed) {
    snip::train::synthetic_options so;
    so.images = 6;
    so.min_side = 96;
    so.max_side = 128;
    so.classes = 2;
    so.min_object = 12.0;
    so.seed = seed;
    return snip::train::make_synthetic(so);
}

/// One scale (x1) where every box is valid, chips of 128 px.
inline snip::plan_config one_scale_plan(const std::string& name) {
    snip::plan_config c;
    c.name = name;
    c.scales = {snip::scale_spec::by_factor(1.0)};
    c.ranges = {snip::valid_range{-1.0, -1.0}};
    c.chip_size = 128;
    return c;
}

/// Starts this test program again running only `test_case`, with `env` added to (and every
/// variable that starts with one of `drop` removed from) this process's environment; its
/// stdout and stderr go to `output` when given. Returns its pid.
inline pid_t spawn_self(const std::string& test_case, const std::vector<std::string>& env,
                        const std::vector<std::string>& drop, const std::string& output = "") {
    const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
    std::vector<std::string> envs = env;
    for (char** e = environ; *e; ++e) {
        const std::string v(*e);
        bool keep = true;
        for (const auto& d : drop) keep = keep && v.rfind(d, 0) != 0;
        if (keep) envs.push_back(v);
    }
    std::vector<char*> envp;
    for (auto& v : envs) envp.push_back(v.data());
    envp.push_back(nullptr);
    std::string a0 = exe, a1 = "--test-case=" + test_case, a2 = "--no-version";
    char* argv[] = {a0.data(), a1.data(), a2.data(), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (!output.empty()) {
        posix_spawn_file_actions_addopen(&fa, 2, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&fa, 2, 1);
    }
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv, envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("spawn_self: cannot start " + exe);
    return pid;
}

} // namespace trainer_test
