// The trainer's backbone (trainer/include/snip/train/backbone.hpp) and weight files (weights.hpp):
//  - shapes of ResNet-18/34/50/101 with and without the dilated res5, torchvision's parameter
//    counts and state_dict names, the dilation of each layer4 block;
//  - frozen stem + layer1 (no gradient) and FrozenBatchNorm2d (formula; buffers unchanged by a
//    train-mode forward/backward);
//  - equality with torchvision 0.14: export_torchvision_resnet.py, run with /usr/bin/python3,
//    writes random resnet18/resnet50 weights (random BatchNorm statistics too), a random input
//    and torchvision's eval-mode logits and layer3/layer4 maps, in float32 and (model and
//    input converted) float64; the C++ model loads the weights and must agree within 1e-4 in
//    float32 and 1e-9 in float64 (max abs differences, printed; on the same LibTorch they are
//    0), also for replace_stride_with_dilation=[False, False, True]. Skips ("[skip] ...")
//    when /usr/bin/python3 cannot import torch and torchvision;
//  - the .snipw format: round trips of modules and of every dtype, and the errors (bad magic,
//    truncated, trailing bytes, unknown dtype, missing tensor, shape mismatch, unexpected
//    tensor when strict).
// LibTorch first: its headers bring glog, whose one-argument CHECK(condition) macro would
// otherwise replace doctest's CHECK (included after, doctest's definition wins).
#include <snip/train/backbone.hpp>
#include <snip/train/weights.hpp>

#include <torch/nn/modules/batchnorm.h>

#include "test_util.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

/// A fresh folder under the system temp dir, removed with its contents at the end.
struct temp_dir {
    fs::path path;
    explicit temp_dir(const std::string& tag) {
        path = fs::temp_directory_path() /
               ("snip_test_backbone_" + std::to_string(::getpid()) + "_" + tag);
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

using snip_test::error_of;
using snip_test::contains;

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
    REQUIRE(a.sizes() == b.sizes());
    return (a - b).abs().max().item<double>();
}

snip::train::ResNet make_resnet(int depth, bool dilate, bool classifier = false, int frozen = 1,
                           bool train_bn = true) {
    snip::train::resnet_options o;
    o.train_bn = train_bn;
    o.depth = depth;
    o.dilate_res5 = dilate;
    o.classifier = classifier;
    o.frozen_stages = frozen;
    return snip::train::ResNet(o);
}

// ---------------------------------------------------------------------------------------
// torchvision through export_torchvision_resnet.py

/// Debian's Python with python3-torch and python3-torchvision; SNIP_TEST_PYTHON overrides.
std::string python() {
    const char* env = std::getenv("SNIP_TEST_PYTHON");
    return env && *env ? env : "/usr/bin/python3";
}

std::string export_script() {
    return (fs::path(SNIP_TEST_DIR) / ".." / "apps" / "snip-train" / "export_torchvision_resnet.py")
        .lexically_normal()
        .string();
}

std::string quoted(const std::string& s) {
    REQUIRE(s.find('\'') == std::string::npos);
    return "'" + s + "'";
}

/// Runs the exporter with `args`; false (and a printed "[skip] ...") when torch/torchvision
/// are unavailable.
bool run_export(const std::string& args) {
    const std::string py = python();
    if (::access(py.c_str(), X_OK) != 0) {
        std::printf("[skip] %s not found: equality with torchvision not tested\n", py.c_str());
        return false;
    }
    const std::string script = export_script();
    REQUIRE_MESSAGE(fs::exists(script), script);
    const std::string cmd = quoted(py) + " " + quoted(script) + " " + args;
    std::printf("running: %s\n", cmd.c_str());
    std::fflush(stdout);
    const int status = std::system(cmd.c_str());
    REQUIRE_MESSAGE(WIFEXITED(status), cmd);
    const int code = WEXITSTATUS(status);
    if (code == 3 || code == 127) {
        std::printf("[skip] %s cannot import torch/torchvision (exit %d): equality with "
                    "torchvision not tested\n",
                    py.c_str(), code);
        return false;
    }
    REQUIRE_MESSAGE(code == 0, cmd << " exited with " << code);
    return true;
}

torch::Tensor get(const snip::train::named_tensors& ts, const std::string& name) {
    for (const auto& [n, t] : ts)
        if (n == name) return t;
    FAIL("no tensor named " << name);
    return {};
}

/// Loads `weights` (strict) into a C++ ResNet and compares with torchvision's outputs.
void compare_with_torchvision(const char* label, int depth, bool dilate, const std::string& weights,
                              const std::string& io) {
    snip::train::ResNet net = make_resnet(depth, dilate, /*classifier=*/true);
    const snip::train::load_report r = snip::train::load_weights(*net, weights, /*strict=*/true);
    CHECK(r.unexpected.empty());
    CHECK(r.ignored.empty());
    net->eval();
    const snip::train::named_tensors ref = snip::train::read_weights(io);
    const torch::Tensor x = get(ref, "input");
    torch::NoGradGuard no_grad;
    const snip::train::resnet_features f = net->forward(x);
    const torch::Tensor logits = net->forward_classifier(x);
    struct item {
        const char* name;
        torch::Tensor ours;
    };
    const item items[] = {{"logits", logits}, {"layer3", f.res4}, {"layer4", f.res5}};
    std::printf("%-17s float32:", label);
    for (const auto& [name, ours] : items) {
        const torch::Tensor theirs = get(ref, name);
        REQUIRE_MESSAGE(ours.sizes() == theirs.sizes(), std::string(label) << " " << name);
        const double d = max_abs_diff(ours, theirs);
        std::printf("  %s %s max|diff| %.2e (max|ref| %.3g)", name,
                    snip::train::detail::sizes_str(theirs.sizes()).c_str(), d,
                    theirs.abs().max().item<double>());
        CHECK_MESSAGE(d <= 1e-4, std::string(label) << " " << name << ": max abs difference " << d);
    }
    std::printf("\n");

    // The same weights and input in float64 on both sides: free of float32 rounding.
    net->to(torch::kFloat64);
    const torch::Tensor xd = x.to(torch::kFloat64);
    const snip::train::resnet_features fd = net->forward(xd);
    const item items64[] = {
        {"logits_f64", net->forward_classifier(xd)}, {"layer3_f64", fd.res4}, {"layer4_f64", fd.res5}};
    std::printf("%-17s float64:", "");
    for (const auto& [name, ours] : items64) {
        const torch::Tensor theirs = get(ref, name);
        REQUIRE((theirs.scalar_type() == torch::kFloat64));
        const double d = max_abs_diff(ours, theirs);
        std::printf("  %s max|diff| %.2e", name, d);
        CHECK_MESSAGE(d <= 1e-9, std::string(label) << " " << name << ": max abs difference " << d);
    }
    std::printf("\n");
}

} // namespace

// ---------------------------------------------------------------------------------------

TEST_CASE("backbone: res4/res5 shapes, parameter counts and names for ResNet-18/34/50/101") {
    torch::manual_seed(0);
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::randn({1, 3, 224, 224});
    struct depth_case {
        int depth;
        std::int64_t c4, c5, params; // params: torchvision's count (BN affine included)
    };
    const depth_case cases[] = {{18, 256, 512, 11689512},
                                {34, 256, 512, 21797672},
                                {50, 1024, 2048, 25557032},
                                {101, 1024, 2048, 44549160}};
    for (const auto& c : cases) {
        for (const bool dilate : {false, true}) {
            CAPTURE(c.depth);
            CAPTURE(dilate);
            snip::train::ResNet net = make_resnet(c.depth, dilate, /*classifier=*/true);
            net->eval();
            const snip::train::resnet_features f = net->forward(x);
            CHECK(f.res4.sizes() == at::IntArrayRef{1, c.c4, 14, 14});
            const std::int64_t s5 = dilate ? 14 : 7;
            CHECK(f.res5.sizes() == at::IntArrayRef{1, c.c5, s5, s5});
            CHECK(net->res4_channels() == c.c4);
            CHECK(net->res5_channels() == c.c5);
            CHECK(net->res5_stride() == (dilate ? 16 : 32));
            CHECK(net->forward_classifier(x).sizes() == at::IntArrayRef{1, 1000});

            // torchvision's parameters = ours + the FrozenBatchNorm2d affine buffers.
            std::int64_t n = 0;
            for (const auto& [name, t] : snip::train::module_tensors(*net))
                if (!contains(name, "running_")) n += t.numel();
            CHECK(n == c.params);
        }
    }

    // Names as torchvision's state_dict keys.
    snip::train::ResNet r50 = make_resnet(50, true, true);
    std::set<std::string> names;
    for (const auto& [name, t] : snip::train::module_tensors(*r50)) names.insert(name);
    for (const char* key : {"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean",
                            "bn1.running_var", "layer1.0.conv1.weight", "layer1.0.conv3.weight",
                            "layer1.0.bn3.running_var", "layer1.0.downsample.0.weight",
                            "layer1.0.downsample.1.weight", "layer1.0.downsample.1.running_mean",
                            "layer3.5.conv2.weight", "layer4.2.bn3.bias", "fc.weight", "fc.bias"})
        CHECK_MESSAGE(names.count(key) == 1, key);
    CHECK(names.count("conv1.bias") == 0);
    CHECK(names.count("layer1.1.downsample.0.weight") == 0);
    CHECK(names.size() == 267u); // torchvision resnet50 state_dict without num_batches_tracked

    // layer4's dilations: torchvision's semantics (first block 1), or all 2 (official SNIPER).
    auto dilations = [](const snip::train::ResNet& net) {
        std::vector<std::int64_t> d;
        for (std::size_t i = 0; i < net->layer4->size(); ++i)
            d.push_back(
                net->layer4->ptr(i)->as<snip::train::Bottleneck>()->conv2->options.dilation()->at(0));
        return d;
    };
    CHECK(dilations(r50) == std::vector<std::int64_t>{1, 2, 2});
    snip::train::resnet_options o;
    o.depth = 50;
    o.dilate_first_res5_block = true;
    snip::train::ResNet r50_all(o);
    CHECK(dilations(r50_all) == std::vector<std::int64_t>{2, 2, 2});
    CHECK(r50_all->forward(x).res5.sizes() == at::IntArrayRef{1, 2048, 14, 14});
    CHECK(dilations(make_resnet(50, false)) == std::vector<std::int64_t>{1, 1, 1});
    // A dilated BasicBlock dilates both convs (torchvision refuses; SNIPER on a small net).
    const snip::train::ResNet r18_dilated = make_resnet(18, true); // b points into it
    auto* b = r18_dilated->layer4->ptr(1)->as<snip::train::BasicBlock>();
    CHECK(b->conv1->options.dilation()->at(0) == 2);
    CHECK(b->conv2->options.dilation()->at(0) == 2);

    // Option errors.
    snip::train::resnet_options bad;
    bad.depth = 152;
    CHECK(contains(error_of([&] { snip::train::ResNet n(bad); }),
                   "ResNet: depth must be 18, 34, 50 or 101, got 152"));
    bad.depth = 18;
    bad.frozen_stages = 5;
    CHECK(contains(error_of([&] { snip::train::ResNet n(bad); }), "frozen_stages must be in [-1, 4]"));
    snip::train::ResNet r18 = make_resnet(18, true);
    CHECK(contains(error_of([&] { r18->forward_classifier(torch::zeros({1, 3, 32, 32})); }),
                   "built without a classifier"));
    CHECK(contains(error_of([&] { r18->forward(torch::zeros({1, 1, 32, 32})); }),
                   "input must be N x 3 x H x W, got a tensor of rank 4 with 1 channels"));
}

TEST_CASE("backbone: the original's deformable res5 starts as the dilated one and loads ImageNet names") {
    // resnet_mx_101_e2e.py residual_unit_deform: every res5 unit's 3x3 conv deformable, 4
    // offset groups (72 offset channels for a 3x3 kernel), dilation 2, stride 1, offsets zero.
    temp_dir dir("deform");
    for (const int depth : {18, 50}) {
        CAPTURE(depth);
        torch::manual_seed(3);
        snip::train::resnet_options o;
        o.depth = depth;
        o.width = 16;
        o.dilate_first_res5_block = true;
        snip::train::ResNet plain(o);
        o.deformable_res5_groups = 4;
        snip::train::ResNet deform(o);
        // The plain backbone's file (an ImageNet file's names) loads strictly; only the offset
        // convs are absent from it, and they stay at zero.
        const std::string file = dir.file(depth == 18 ? "r18.snipw" : "r50.snipw");
        snip::train::save_weights(*plain, file);
        std::vector<std::string> offsets;
        for (const auto& p : deform->named_parameters())
            if (contains(p.key(), ".offset.")) offsets.push_back(p.key());
        const std::size_t convs = depth == 18 ? 4 : 3; // BasicBlock: both 3x3 convs of 2 blocks
        CHECK(offsets.size() == 2 * convs);
        CHECK(contains(error_of([&] { snip::train::load_weights(*deform, file); }),
                       "missing from the file: layer4.0."));
        const snip::train::load_report r =
            snip::train::load_weights(*deform, file, /*strict=*/true, {}, offsets);
        CHECK(r.kept == offsets);
        CHECK(r.unexpected.empty());
        for (const auto& p : deform->named_parameters())
            if (contains(p.key(), ".offset.")) CHECK(p.value().abs().max().item<double>() == 0.0);
        const auto* d = depth == 18 ? deform->layer4->ptr(0)->as<snip::train::BasicBlock>()->deform1.get()
                                    : deform->layer4->ptr(0)->as<snip::train::Bottleneck>()->deform2.get();
        REQUIRE(d != nullptr);
        CHECK(d->offset->weight.size(0) == 72);
        CHECK(d->offset->options.dilation()->at(0) == 2);
        CHECK(d->offset->options.stride()->at(0) == 1);

        // Same weights, zero offsets: the same maps (eval and train mode alike).
        const torch::Tensor x = torch::randn({2, 3, 96, 80});
        plain->eval();
        deform->eval();
        {
            torch::NoGradGuard ng;
            const snip::train::resnet_features a = plain->forward(x), b = deform->forward(x);
            CHECK(torch::equal(a.res4, b.res4));
            const double diff = (a.res5 - b.res5).abs().max().item<double>();
            const double scale = a.res5.abs().max().item<double>();
            std::printf("[backbone] ResNet-%d deformable res5 at init vs dilated: max |diff| %.3g "
                        "(values up to %.3g)\n", depth, diff, scale);
            CHECK(diff <= 1e-5 * std::max(1.0, scale));
        }
        // The offsets learn: a loss on res5 reaches every offset conv.
        deform->train();
        deform->forward(x).res5.square().mean().backward();
        for (const auto& p : deform->named_parameters())
            if (contains(p.key(), ".offset.weight")) {
                CAPTURE(p.key());
                REQUIRE(p.value().grad().defined());
                CHECK(p.value().grad().abs().sum().item<double>() > 0.0);
            }
    }
    snip::train::resnet_options bad;
    bad.depth = 18;
    bad.deformable_res5_groups = 4;
    bad.dilate_res5 = false;
    CHECK(contains(error_of([&] { snip::train::ResNet n(bad); }),
                   "a deformable res5 needs dilate_res5"));
    bad.dilate_res5 = true;
    bad.deformable_res5_groups = 3; // layer4 reads 256 channels: not divisible by 3
    CHECK(contains(error_of([&] { snip::train::ResNet n(bad); }),
                   "offset_groups must be >= 1 and divide the 256 input channels, got 3"));
}

TEST_CASE("backbone: frozen BatchNorm formula, frozen stem + layer1, BN never updated") {
    torch::manual_seed(1);
    // y = x * scale + shift, scale = w / sqrt(var + eps), shift = b - mean * scale, in float64.
    snip::train::BatchNorm2d bn = snip::train::FrozenBatchNorm2d(5);
    bn->weight.uniform_(0.5, 1.5);
    bn->bias.normal_();
    bn->running_mean.normal_();
    bn->running_var.uniform_(0.1, 2.0);
    const torch::Tensor x = torch::randn({2, 5, 3, 4});
    auto per_channel = [](const torch::Tensor& t) { return t.to(torch::kFloat64).view({1, -1, 1, 1}); };
    const torch::Tensor scale = per_channel(bn->weight) / (per_channel(bn->running_var) + 1e-5).sqrt();
    const torch::Tensor shift = per_channel(bn->bias) - per_channel(bn->running_mean) * scale;
    const torch::Tensor want = x.to(torch::kFloat64) * scale + shift;
    CHECK(max_abs_diff(bn->forward(x).to(torch::kFloat64), want) <= 1e-5);
    CHECK(max_abs_diff(bn->forward(x.to(torch::kFloat64)), want) <= 1e-5); // float64 input
    {
        // The gradient reaches the input (d y / d x = scale); the buffers get none.
        const torch::Tensor xg = x.clone().requires_grad_(true);
        bn->forward(xg).sum().backward();
        CHECK(max_abs_diff(xg.grad().to(torch::kFloat64), scale.expand_as(want)) <= 1e-6);
    }
    CHECK(bn->parameters().empty());
    CHECK(bn->buffers().size() == 4u);
    CHECK(contains(error_of([&] { bn->forward(torch::zeros({1, 4, 2, 2})); }),
                   "BatchNorm2d: input must be N x 5 x H x W"));

    // ResNet-18, SNIPER's freezing, frozen BN (train_bn = false), train mode.
    snip::train::ResNet net = make_resnet(18, true, false, 1, /*train_bn=*/false);
    net->train();
    std::vector<torch::Tensor> before;
    for (const auto& b : net->buffers()) before.push_back(b.clone());
    std::size_t frozen_bn = 0;
    for (const auto& m : net->modules(false)) {
        CHECK(m->as<torch::nn::BatchNorm2d>() == nullptr);
        if (const auto* b = m->as<snip::train::BatchNorm2d>()) frozen_bn += !b->trained();
    }
    CHECK(frozen_bn == 20u); // stem 1 + 8 blocks x 2 + 3 projections

    const snip::train::resnet_features f = net->forward(torch::randn({2, 3, 64, 64}));
    (f.res4.mean() + f.res5.square().mean()).backward();
    std::size_t trainable = 0;
    for (const auto& item : net->named_parameters()) {
        const std::string& name = item.key();
        const torch::Tensor& p = item.value();
        CAPTURE(name);
        const bool frozen = name.starts_with("conv1.") || name.starts_with("layer1.");
        CHECK(p.requires_grad() == !frozen);
        CHECK(p.grad().defined() == !frozen);
        if (!frozen) {
            CHECK(p.grad().abs().sum().item<double>() > 0);
            ++trainable;
        }
    }
    CHECK(net->trainable_parameters().size() == trainable);
    const auto after = net->buffers();
    REQUIRE(after.size() == before.size());
    for (std::size_t i = 0; i < after.size(); ++i) {
        CHECK(!after[i].requires_grad());
        CHECK(torch::equal(after[i], before[i]));
    }

    // Other freezing depths (mmdetection's convention).
    auto frozen_prefixes = [](int k) {
        std::set<std::string> out;
        for (const auto& item : make_resnet(18, true, false, k)->named_parameters())
            if (!item.value().requires_grad())
                out.insert(item.key().substr(0, item.key().find('.')));
        return out;
    };
    CHECK(frozen_prefixes(-1).empty());
    CHECK(frozen_prefixes(0) == std::set<std::string>{"conv1"});
    CHECK(frozen_prefixes(1) == std::set<std::string>{"conv1", "layer1"});
    CHECK(frozen_prefixes(3) == std::set<std::string>{"conv1", "layer1", "layer2", "layer3"});
}

TEST_CASE("backbone: trained BatchNorm (the SNIPER recipe): batch statistics, running ones in eval") {
    torch::manual_seed(3);
    // One layer: train() normalises with the batch's statistics (biased variance) and moves the
    // running ones by the momentum (unbiased variance, PyTorch's convention); eval() uses them.
    snip::train::bn_spec spec;
    spec.trained = true;
    spec.momentum = 0.005; // MXNet's 0.995 (main_train.py:27)
    snip::train::BatchNorm2d bn(4, spec);
    CHECK(bn->parameters().size() == 2u); // weight, bias
    CHECK(bn->buffers().size() == 2u);    // running_mean, running_var
    {
        torch::NoGradGuard ng;
        bn->weight.uniform_(0.5, 1.5);
        bn->bias.normal_();
    }
    const torch::Tensor x = torch::randn({3, 4, 5, 6}, torch::kFloat64).mul(2.0).add(0.7);
    auto pc = [](const torch::Tensor& t) { return t.to(torch::kFloat64).view({1, -1, 1, 1}); };
    const torch::Tensor mean = x.mean({0, 2, 3}), var_b = x.var({0, 2, 3}, /*unbiased=*/false),
                        var_u = x.var({0, 2, 3}, /*unbiased=*/true);
    bn->train();
    const torch::Tensor y = bn->forward(x.to(torch::kFloat));
    const torch::Tensor want = (x - pc(mean)) / (pc(var_b) + 1e-5).sqrt() * pc(bn->weight) + pc(bn->bias);
    CHECK(max_abs_diff(y.to(torch::kFloat64), want) <= 1e-4);
    CHECK(max_abs_diff(bn->running_mean.to(torch::kFloat64), 0.005 * mean) <= 1e-6);
    CHECK(max_abs_diff(bn->running_var.to(torch::kFloat64), 0.995 + 0.005 * var_u) <= 1e-6);
    // eval(): the running statistics, and no update.
    bn->eval();
    const torch::Tensor rm = bn->running_mean.clone(), rv = bn->running_var.clone();
    const torch::Tensor ye = bn->forward(x.to(torch::kFloat));
    const torch::Tensor want_e = (x - pc(rm)) / (pc(rv) + 1e-5).sqrt() * pc(bn->weight) + pc(bn->bias);
    CHECK(max_abs_diff(ye.to(torch::kFloat64), want_e) <= 1e-4);
    CHECK(torch::equal(bn->running_mean, rm));
    CHECK(torch::equal(bn->running_var, rv));
    // Gradients reach weight and bias.
    bn->train();
    bn->forward(x.to(torch::kFloat)).square().sum().backward();
    CHECK(bn->weight.grad().abs().sum().item<double>() > 0);
    CHECK(bn->bias.grad().abs().sum().item<double>() > 0);
    CHECK(contains(error_of([&] { bn->forward(torch::zeros({1, 4, 1, 1})); }),
                   "needs more than one value per channel"));

    // ResNet-18 with the recipe's defaults: stem + layer1 BN frozen, layers 2-4 trained.
    snip::train::ResNet net = make_resnet(18, true);
    std::map<std::string, bool> trained;
    for (const auto& item : net->named_modules("", false))
        if (const auto* b = item.value()->as<snip::train::BatchNorm2d>())
            trained[item.key()] = b->trained();
    CHECK(trained.size() == 20u);
    for (const auto& [name, t] : trained) {
        CAPTURE(name);
        CHECK(t == !(name == "bn1" || name.starts_with("layer1.")));
    }
    std::map<std::string, torch::Tensor> before;
    for (const auto& b : net->named_buffers()) before[b.key()] = b.value().clone();
    net->train();
    (void)net->forward(torch::randn({2, 3, 64, 64}));
    for (const auto& b : net->named_buffers()) {
        CAPTURE(b.key());
        const bool frozen = b.key().starts_with("bn1.") || b.key().starts_with("layer1.");
        CHECK(torch::equal(b.value(), before[b.key()]) == frozen); // only trained BN moves
    }
    // eval() is deterministic and uses the (moved) running statistics: no further change.
    net->eval();
    std::map<std::string, torch::Tensor> after_train;
    for (const auto& b : net->named_buffers()) after_train[b.key()] = b.value().clone();
    const torch::Tensor in = torch::randn({1, 3, 64, 64});
    const torch::Tensor r1 = net->forward(in).res5, r2 = net->forward(in).res5;
    CHECK(torch::equal(r1, r2));
    for (const auto& b : net->named_buffers()) CHECK(torch::equal(b.value(), after_train[b.key()]));
    // The running statistics of trained BN are in the identity's tensors (checkpoints save
    // named_parameters and named_buffers): weight and bias are parameters here.
    std::set<std::string> params;
    for (const auto& p : net->named_parameters()) params.insert(p.key());
    CHECK(params.count("layer2.0.bn1.weight") == 1u);
    CHECK(params.count("layer1.0.bn1.weight") == 0u); // frozen: a buffer
}

TEST_CASE("backbone: equals torchvision 0.14 (resnet18, resnet50, resnet50 dilated)") {
    temp_dir dir("tv");
    const std::string common = " --random-seed 0 --randomize-bn --input-size 64 --io-float64 ";
    // resnet18
    const std::string w18 = dir.file("resnet18.snipw"), io18 = dir.file("resnet18_io.snipw");
    if (!run_export("--arch resnet18" + common + "--out " + quoted(w18) + " --io-out " +
                    quoted(io18)))
        return;
    // resnet50, plain and dilated (the same weights).
    const std::string w50 = dir.file("resnet50.snipw"), io50 = dir.file("resnet50_io.snipw"),
                      io50d = dir.file("resnet50_dilated_io.snipw");
    REQUIRE(run_export("--arch resnet50" + common + "--out " + quoted(w50) + " --io-out " +
                       quoted(io50) + " --dilated-io-out " + quoted(io50d)));

    compare_with_torchvision("resnet18", 18, false, w18, io18);
    compare_with_torchvision("resnet50", 50, false, w50, io50);
    compare_with_torchvision("resnet50 dilated", 50, true, w50, io50d);

    // The BatchNorm state in the file is not the identity (else the test would prove little).
    const snip::train::named_tensors w = snip::train::read_weights(w50);
    CHECK(get(w, "layer2.1.bn2.running_var").sub(1).abs().max().item<double>() > 0.1);
    CHECK(get(w, "layer2.1.bn2.bias").abs().max().item<double>() > 0.1);

    // Dilating layer4's first block too (official SNIPER) is a different function.
    {
        snip::train::resnet_options o;
        o.depth = 50;
        o.classifier = true;
        o.dilate_first_res5_block = true;
        snip::train::ResNet net(o);
        snip::train::load_weights(*net, w50);
        net->eval();
        torch::NoGradGuard no_grad;
        const snip::train::named_tensors ref = snip::train::read_weights(io50d);
        const torch::Tensor res5 = net->forward(get(ref, "input")).res5;
        CHECK(max_abs_diff(res5, get(ref, "layer4")) > 1e-2);
    }

    // A backbone without a classifier: fc.* are unexpected (an error only when strict).
    snip::train::ResNet bare = make_resnet(18, false);
    CHECK(contains(error_of([&] { snip::train::load_weights(*bare, w18); }),
                   "load_weights(" + w18 +
                       "): 2 tensors in the file are not in the model (strict): fc.weight, "
                       "fc.bias"));
    const snip::train::load_report r = snip::train::load_weights(*bare, w18, /*strict=*/false);
    CHECK(r.unexpected == std::vector<std::string>{"fc.weight", "fc.bias"});
    CHECK(r.loaded.size() == snip::train::module_tensors(*bare).size());
    // The classifier tolerated by name (what snip-train does): strict, and it loads.
    const std::vector<std::string> fc{"fc.weight", "fc.bias"};
    CHECK(snip::train::load_weights(*bare, w18, true, fc).loaded.size() == r.loaded.size());
    // A deeper ResNet's weights into a shallower backbone: strict refuses, naming the extra
    // blocks, and leaves the model unchanged; a partial load takes what fits.
    snip::train::ResNet deeper = make_resnet(34, true);
    const std::string w34 = (fs::temp_directory_path() / "snip_backbone_resnet34.snipw").string();
    snip::train::save_weights(*deeper, w34);
    const torch::Tensor before = bare->conv1->weight.clone();
    const std::string m = error_of([&] { snip::train::load_weights(*bare, w34, true, fc); });
    CHECK(contains(m, "not in the model (strict)"));
    CHECK(contains(m, "layer1.2.conv1.weight"));
    CHECK_FALSE(contains(m, "fc.weight"));
    CHECK(torch::equal(before, bare->conv1->weight));
    const snip::train::load_report partial = snip::train::load_weights(*bare, w34, false, fc);
    CHECK(partial.loaded.size() == snip::train::module_tensors(*bare).size());
    CHECK(partial.unexpected.size() > 2);
    CHECK(torch::equal(bare->conv1->weight, deeper->conv1->weight));
    fs::remove(w34);
}

TEST_CASE("weights: save/load round trip of a module and of every dtype") {
    temp_dir dir("roundtrip");
    torch::manual_seed(2);
    snip::train::ResNet a = make_resnet(18, true);
    torch::manual_seed(3);
    snip::train::ResNet b = make_resnet(18, true);
    {
        torch::NoGradGuard g;
        for (auto& t : a->buffers()) t.uniform_(0.5, 1.5); // non-trivial BN state
    }
    const std::string path = dir.file("r18.snipw");
    snip::train::save_weights(*a, path);
    // Atomic: only the final file is left, no temporary.
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(dir.path)) files.push_back(e.path().filename());
    CHECK(files == std::vector<std::string>{"r18.snipw"});

    const torch::Tensor conv_b = b->conv1->weight; // a reference that must stay valid
    const snip::train::load_report r = snip::train::load_weights(*b, path);
    CHECK(r.loaded.size() == snip::train::module_tensors(*a).size());
    CHECK(r.unexpected.empty());
    const auto ta = snip::train::module_tensors(*a), tb = snip::train::module_tensors(*b);
    REQUIRE(ta.size() == tb.size());
    for (std::size_t i = 0; i < ta.size(); ++i) {
        CHECK(ta[i].first == tb[i].first);
        CHECK(torch::equal(ta[i].second, tb[i].second));
        CHECK(ta[i].second.requires_grad() == tb[i].second.requires_grad());
    }
    CHECK(conv_b.is_same(b->conv1->weight));
    CHECK(torch::equal(conv_b, a->conv1->weight));
    {
        torch::NoGradGuard g;
        const torch::Tensor x = torch::randn({1, 3, 64, 64});
        CHECK(torch::equal(a->forward(x).res5, b->forward(x).res5));
    }

    // Every dtype, a scalar, an empty tensor and a non-contiguous one.
    snip::train::named_tensors ts;
    ts.emplace_back("f32", torch::randn({2, 3}));
    ts.emplace_back("f64", torch::randn({4}, torch::kFloat64));
    ts.emplace_back("f16", torch::randn({3, 1, 2}).to(torch::kFloat16));
    ts.emplace_back("bf16", torch::randn({5}).to(torch::kBFloat16));
    ts.emplace_back("i64", torch::arange(-3, 3, torch::kInt64));
    ts.emplace_back("i32", torch::arange(-3, 3, torch::kInt32).view({2, 3}));
    ts.emplace_back("i16", torch::arange(-3, 3, torch::kInt16));
    ts.emplace_back("i8", torch::arange(-3, 3, torch::kInt8));
    ts.emplace_back("u8", torch::arange(0, 250, 7, torch::kUInt8));
    ts.emplace_back("bool", torch::tensor({true, false, true}));
    ts.emplace_back("scalar", torch::tensor(2.5));
    ts.emplace_back("empty", torch::zeros({0, 3}));
    ts.emplace_back("transposed", torch::randn({3, 4}).t());
    ts.emplace_back("name with spaces/and.dots", torch::ones({1, 1, 1, 1, 1, 1, 1, 1}));
    const std::string all = dir.file("all.snipw");
    snip::train::write_weights(all, ts);
    const snip::train::named_tensors back = snip::train::read_weights(all);
    REQUIRE(back.size() == ts.size());
    for (std::size_t i = 0; i < ts.size(); ++i) {
        CAPTURE(ts[i].first);
        CHECK(back[i].first == ts[i].first);
        CHECK((back[i].second.scalar_type() == ts[i].second.scalar_type()));
        CHECK(back[i].second.sizes() == ts[i].second.sizes());
        CHECK(torch::equal(back[i].second, ts[i].second));
    }

    // A float64 file loads into a float32 module (converted); an integer one does not.
    snip::train::BatchNorm2d bn = snip::train::FrozenBatchNorm2d(3);
    const std::string f64 = dir.file("bn64.snipw");
    snip::train::write_weights(f64, {{"weight", torch::full({3}, 2.0, torch::kFloat64)},
                                {"bias", torch::full({3}, 0.25, torch::kFloat64)},
                                {"running_mean", torch::zeros({3}, torch::kFloat64)},
                                {"running_var", torch::ones({3}, torch::kFloat64)},
                                {"num_batches_tracked", torch::tensor(7, torch::kInt64)}});
    const snip::train::load_report rb = snip::train::load_weights(*bn, f64, /*strict=*/true);
    CHECK(rb.ignored == std::vector<std::string>{"num_batches_tracked"});
    CHECK((bn->weight.scalar_type() == torch::kFloat32));
    CHECK(torch::equal(bn->weight, torch::full({3}, 2.0f)));
    CHECK(torch::equal(bn->bias, torch::full({3}, 0.25f)));
    const std::string i64 = dir.file("bn_int.snipw");
    snip::train::write_weights(i64, {{"weight", torch::ones({3}, torch::kInt64)},
                                {"bias", torch::zeros({3})},
                                {"running_mean", torch::zeros({3})},
                                {"running_var", torch::ones({3})}});
    CHECK(contains(error_of([&] { snip::train::load_weights(*bn, i64); }),
                   "weight: file has dtype Long, model expects Float (no conversion between "
                   "floating point and integer)"));
}

TEST_CASE("weights: errors name the file and the tensor") {
    temp_dir dir("errors");
    auto write_bytes = [&](const std::string& name, const std::string& bytes) {
        const std::string p = dir.file(name);
        std::ofstream(p, std::ios::binary) << bytes;
        return p;
    };

    // Missing file, bad magic, too short.
    const std::string none = dir.file("none.snipw");
    CHECK(contains(error_of([&] { snip::train::read_weights(none); }),
                   "read_weights: cannot open " + none));
    const std::string magic = write_bytes("magic.snipw", std::string("PK\x03\x04zipfile..."));
    CHECK(contains(error_of([&] { snip::train::read_weights(magic); }),
                   "read_weights: " + magic + ": bad magic (not a .snipw file)"));
    const std::string tiny = write_bytes("tiny.snipw", "SNI");
    CHECK(contains(error_of([&] { snip::train::read_weights(tiny); }), "not a .snipw file"));

    // Truncated: in the header, in a name, in the data of the last tensor.
    snip::train::ResNet net = make_resnet(18, true);
    const std::string full = dir.file("r18.snipw");
    snip::train::save_weights(*net, full);
    const auto size = fs::file_size(full);
    const std::string cut = dir.file("cut.snipw");
    fs::copy_file(full, cut);
    fs::resize_file(cut, 8);
    CHECK(contains(error_of([&] { snip::train::read_weights(cut); }),
                   "read_weights: " + cut +
                       ": truncated file: the tensor count needs 4 bytes at offset 6, only 2 left"));
    fs::remove(cut);
    fs::copy_file(full, cut);
    fs::resize_file(cut, 16);
    const std::string name_msg = error_of([&] { snip::train::read_weights(cut); });
    CHECK_MESSAGE(contains(name_msg, ": truncated file: the name of tensor 0 of "), name_msg);
    fs::remove(cut);
    fs::copy_file(full, cut);
    fs::resize_file(cut, size - 100);
    const std::string last = snip::train::module_tensors(*net).back().first;
    const std::string msg = error_of([&] { snip::train::read_weights(cut); });
    CHECK_MESSAGE(contains(msg, "read_weights: " + cut + ": truncated file: the data of tensor"),
                  msg);
    CHECK_MESSAGE(contains(msg, "('" + last + "')"), msg);
    CHECK_MESSAGE(contains(msg, "only " + std::to_string(4 * 512 - 100) + " left"), msg);

    // Trailing bytes, unknown dtype, duplicate names.
    const std::string trail = dir.file("trail.snipw");
    fs::copy_file(full, trail);
    std::ofstream(trail, std::ios::binary | std::ios::app) << 'x';
    CHECK(contains(error_of([&] { snip::train::read_weights(trail); }), "1 trailing bytes"));
    std::string raw("SNIPW1\x01\x00\x00\x00\x01\x00\x00\x00w\x2a\x00", 17);
    const std::string dtype = write_bytes("dtype.snipw", raw);
    CHECK(contains(error_of([&] { snip::train::read_weights(dtype); }),
                   ": w: unknown dtype code 42"));
    CHECK(contains(error_of([&] {
                       snip::train::write_weights(dir.file("dup.snipw"),
                                             {{"a", torch::zeros({1})}, {"a", torch::zeros({1})}});
                   }),
                   "duplicate tensor name 'a'"));
    CHECK(!fs::exists(dir.file("dup.snipw")));

    // Missing tensor; the module is left unchanged by a failed load.
    snip::train::named_tensors ts = snip::train::module_tensors(*net);
    std::erase_if(ts, [](const auto& nt) { return nt.first == "layer2.0.downsample.0.weight"; });
    const std::string missing = dir.file("missing.snipw");
    snip::train::write_weights(missing, ts);
    snip::train::ResNet other = make_resnet(18, true);
    const torch::Tensor before = other->conv1->weight.clone();
    CHECK(error_of([&] { snip::train::load_weights(*other, missing); }) ==
          "load_weights(" + missing +
              "): 1 tensor of the model is missing from the file: layer2.0.downsample.0.weight");
    CHECK(error_of([&] { snip::train::load_weights(*other, missing, /*strict=*/false); }) ==
          "load_weights(" + missing +
              "): 1 tensor of the model is missing from the file: layer2.0.downsample.0.weight");
    CHECK(torch::equal(other->conv1->weight, before));

    // Shape mismatch (ResNet-50's layer1.0.conv1 is 1x1).
    snip::train::ResNet r50 = make_resnet(50, true);
    snip::train::named_tensors t50 = snip::train::module_tensors(*r50);
    for (auto& [name, t] : t50)
        if (name == "layer1.0.conv1.weight") t = torch::zeros({64, 64, 3, 3});
    const std::string shape = dir.file("shape.snipw");
    snip::train::write_weights(shape, t50);
    CHECK(error_of([&] { snip::train::load_weights(*r50, shape); }) ==
          "load_weights(" + shape +
              "): layer1.0.conv1.weight: file has [64,64,3,3], model expects [64,64,1,1]");

    // Unexpected tensor: an error when strict, reported otherwise; counters always skipped.
    ts = snip::train::module_tensors(*net);
    ts.emplace_back("head.extra.weight", torch::zeros({2}));
    ts.emplace_back("bn1.num_batches_tracked", torch::tensor(3, torch::kInt64));
    const std::string extra = dir.file("extra.snipw");
    snip::train::write_weights(extra, ts);
    CHECK(error_of([&] { snip::train::load_weights(*other, extra); }) ==
          "load_weights(" + extra +
              "): 1 tensor in the file is not in the model (strict): head.extra.weight");
    const snip::train::load_report r = snip::train::load_weights(*other, extra, /*strict=*/false);
    CHECK(r.unexpected == std::vector<std::string>{"head.extra.weight"});
    CHECK(r.ignored == std::vector<std::string>{"bn1.num_batches_tracked"});
    CHECK(torch::equal(other->conv1->weight, net->conv1->weight));
}
