// train_cli.hpp: what the snip-train commands share: model and device flags, training
// flags, loading a dataset with its images, and rebuilding a model from a checkpoint.
#pragma once

#include <snip_apps/common.hpp> // flags, plan config, progress line (shared with snip-chips)
#include <snip_apps/loss_plot.hpp>
#include <snip/train/distributed.hpp>
#include <snip/train/train.hpp>
#include <snip/train/weights.hpp>

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace snip::apps::train_cli {

/// Flags that pick the model and where it runs.
inline const std::vector<std::string> model_flags = {"--depth", "--width", "--weights", "--device",
                                                     "--threads", "--bn", "--model", "--head"};
inline const char* model_flags_help =
    "  --model NET         sniper: the original SNIPER network (deformable res5, RPN and head on\n"
    "                      concat(res4, res5), deformable RoI pooling with learned offsets) |\n"
    "                      plain: dilated res5, RPN on res4, RoIAlign head (sniper)\n"
    "  --head POOL         deformable | roialign: the head's RoI pooling (the network's own)\n"
    "  --masks             add the Mask R-CNN branch (the original's sniper_res101_e2e_mask.yml):\n"
    "                      14x14 RoI features, 4 x conv 256, deconv, 28x28 mask per class; the\n"
    "                      annotations' segmentations are its targets\n"
    "  --depth D           ResNet depth: 18, 34, 50 or 101 (101)\n"
    "  --width W           backbone width: 64 is the real ResNet; smaller makes tiny CPU models (64)\n"
    "  --weights FILE      ImageNet backbone weights (.snipw, see export_torchvision_resnet.py);\n"
    "                      without it the backbone starts from scratch (a warning says so).\n"
    "                      Strict: every backbone tensor must be in the file, and the file may\n"
    "                      hold nothing else but the ImageNet classifier (fc.*); the offset\n"
    "                      convs of a deformable res5 may be absent (they start at zero)\n"
    "  --partial-weights   load the backbone tensors the file has in common with the model\n"
    "                      (a deeper ResNet's file into a shallower model); still refuses\n"
    "                      missing or misshapen tensors\n"
    "  --bn MODE           trained (the original's: BatchNorm of stages 2-5 on each process's\n"
    "                      batch, momentum 0.995 in MXNet's terms) | frozen (trained)\n"
    "  --device DEV        cpu | cuda | cuda:N (cpu)\n"
    "  --threads T         LibTorch's and OpenBLAS's threads on the CPU (default: all cores)\n";

/// Flags of the training commands (besides the plan flags of snip-chips).
inline const std::vector<std::string> train_flags = {
    "--images",  "--out",        "--epochs",   "--batch",     "--lr",
    "--warmup-chips", "--lr-steps", "--momentum", "--weight-decay", "--clip", "--workers",
    "--max-steps", "--checkpoint-every", "--log-every", "--init", "--flip"};
inline const std::vector<std::string> train_switches = {
    "--resume", "--overwrite", "--quiet", "--amp", "--skip-bad-images", "--partial-weights",
    "--masks"};
inline const char* train_flags_help =
    "  --images DIR        folder of the annotation file's images (default: the file's folder)\n"
    "  --out DIR           checkpoint.pt, log.csv and loss.png go here (required)\n"
    "  --epochs N          epochs (train: 7, rpn: 2)\n"
    "  --batch B           chips per step (16)\n"
    "  --lr LR             the original SNIPER's learning rate (0.015): the loss is the sum over\n"
    "                      groups of 16 chips of the original's per-GPU loss, as it sums its 8\n"
    "                      GPUs' gradients, so LR needs no scaling with --batch (on a loss\n"
    "                      averaged over B chips it is LR x B / 16)\n"
    "  --warmup-chips C    linear warmup over this many chips (128000 = 1000 steps of 128)\n"
    "  --lr-steps LIST     ','-separated epoch positions where lr drops x0.1 (train: 5.33, rpn: none)\n"
    "  --momentum M        (0.9)\n"
    "  --weight-decay W    (0.0001)\n"
    "  --clip N            clip the gradient norm to N (0: off)\n"
    "  --flip MODE         both (every chip plain and mirrored, as the original) | random | none (both)\n"
    "  --workers N         chip loader threads (2)\n"
    "  --max-steps N       stop after N steps (a checkpoint is written; --resume continues)\n"
    "  --checkpoint-every N  steps between checkpoints, besides every epoch end (500)\n"
    "  --log-every N       steps between log.csv / loss.png updates (20)\n"
    "  --init CKPT         start from this checkpoint's weights (not its optimizer or position)\n"
    "  --resume            continue from OUT/checkpoint.pt (the same data, config and training\n"
    "                      flags; a change is refused)\n"
    "  --overwrite         replace an existing OUT/checkpoint.pt (without it or --resume, a run\n"
    "                      into a folder that holds a checkpoint is refused)\n"
    "  --skip-bad-images   leave out the chips of an image that cannot be read, is corrupt or\n"
    "                      has another size than its annotation, name it and go on (default:\n"
    "                      stop with the error before the step)\n"
    "  --amp               mixed precision (CUDA only): float16 autocast + dynamic loss scaling\n"
    "  --quiet             no progress line\n";

/// Flags of a distributed run (every command that runs the model accepts them).
inline const std::vector<std::string> dist_flags = {"--world-size", "--rank", "--dist-init",
                                                    "--dist-timeout"};
inline const char* dist_flags_help =
    "  --world-size N      processes in the run (default: $WORLD_SIZE, else 1)\n"
    "  --rank R            this process, 0..N-1; rank 0 writes the outputs (default: $RANK, else 0)\n"
    "  --dist-init URL     rendezvous: tcp://HOST:PORT (rank 0 listens there) or file:///PATH on a\n"
    "                      shared file system (default: tcp://$MASTER_ADDR:$MASTER_PORT)\n"
    "  --dist-timeout S    longest wait for the rendezvous and any collective, seconds (300)\n"
    "                      (`snip-train launch -n N CMD ...` starts N local ranks with these set)\n";

/// @brief The distributed run the flags (else WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR and
/// MASTER_PORT) describe; world size 1 when none is given.
inline snip::train::dist_options dist_from(const cli::args& a) {
    snip::train::dist_options d = snip::train::dist_options::from_env();
    if (a.get("--world-size")) d.world_size = int(a.integer("--world-size", 1));
    if (a.get("--rank")) d.rank = int(a.integer("--rank", 0));
    if (auto i = a.get("--dist-init")) d.init = *i;
    d.timeout_s = a.number("--dist-timeout", 300);
    d.validate();
    return d;
}

/// @brief Joins the distributed run of the flags on `device` (null for one process).
inline std::shared_ptr<snip::train::dist_group> dist_connect(const cli::args& a,
                                                        const torch::Device& device) {
    const snip::train::dist_options d = dist_from(a);
    auto g = snip::train::dist_group::connect(d, device);
    if (g && g->main())
        std::fprintf(stderr, "distributed: %d processes (%s, rendezvous %s)\n", g->size(),
                     device.is_cuda() ? "NCCL" : "Gloo", d.init.c_str());
    return g;
}

/// @brief The device the flag names. cuda needs a LibTorch built with CUDA; plain `cuda`
/// in a distributed run is cuda:LOCAL_RANK.
inline torch::Device device_from(const cli::args& a) {
    std::string d = a.get_or("--device", "cpu");
    if (d == "cuda") {
        const snip::train::dist_options o = dist_from(a);
        if (o.distributed()) d = "cuda:" + std::to_string(o.local_rank);
    }
    if (d == "cpu") return torch::kCPU;
    if (d.rfind("cuda", 0) == 0) {
        snip::require(torch::cuda::is_available(), "--device ", d,
                      ": this LibTorch has no usable CUDA (Debian's libtorch-dev is CPU-only; "
                      "configure snip against a CUDA LibTorch, see the README's GPU section)");
        try {
            return torch::Device(d);
        } catch (const std::exception&) {
            snip::fail("--device: expected cpu, cuda or cuda:N, got '", d, "'");
        }
    }
    snip::fail("--device: expected cpu, cuda or cuda:N, got '", d, "'");
}

/// @brief --threads T: LibTorch's intra-op threads and, when the process has OpenBLAS
/// (Debian's LibTorch does its GEMMs there, on threads of its own), OpenBLAS's too. Results
/// then depend only on T: the same image gives the same bits in any process.
inline void set_threads(const cli::args& a) {
    if (auto t = a.get("--threads")) {
        const long long n = a.integer("--threads", 0);
        snip::require(n >= 1 && n <= 1024, "--threads: expected 1..1024, got '", *t, "'");
        at::set_num_threads(int(n));
        using set_fn = void (*)(int);
        if (const auto f = reinterpret_cast<set_fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
            f(int(n));
    }
}

/// @brief --bn: true for "trained" (the default), false for "frozen".
inline bool bn_trained(const cli::args& a) {
    const std::string m = a.get_or("--bn", "trained");
    if (m == "trained") return true;
    if (m == "frozen") return false;
    snip::fail("--bn: expected trained or frozen, got '", m, "'");
}

/// @brief A new detector for `classes` classes from the model flags; loads --weights into
/// the backbone or says that it starts from scratch.
/// @brief The network --model and --head name (sniper by default).
inline snip::train::detector_options network_from(const cli::args& a) {
    const std::string m = a.get("--model").value_or("sniper");
    snip::train::detector_options o;
    if (m == "sniper")
        o = snip::train::detector_options::sniper();
    else if (m == "plain")
        o = snip::train::detector_options::plain();
    else
        snip::fail("--model: unknown network '", m, "' (sniper or plain)");
    if (auto h = a.get("--head")) o.head_pooling = snip::train::roi_pooling_from(*h, "--head");
    o.masks = a.has("--masks");
    return o;
}

/// @brief The names of the deformable convs' offset tensors in `backbone` (absent from
/// ImageNet files: they start at zero).
inline std::vector<std::string> offset_tensors(torch::nn::Module& backbone) {
    std::vector<std::string> out;
    for (const auto& p : backbone.named_parameters())
        if (p.key().find(".offset.") != std::string::npos) out.push_back(p.key());
    return out;
}

inline snip::train::FasterRCNN model_from(const cli::args& a, std::int64_t classes, bool quiet = false) {
    // The initial weights are a function of the seed, like the rest of the run.
    torch::manual_seed(std::uint64_t(a.integer("--seed", 0)));
    snip::train::detector_options o = network_from(a);
    o.backbone.depth = int(a.integer("--depth", 101));
    o.backbone.width = a.integer("--width", 64);
    o.backbone.train_bn = bn_trained(a);
    o.num_classes = classes;
    if (o.backbone.width < 64) { // a tiny model gets a proportionally smaller head
        o.rpn_channels = std::max<std::int64_t>(16, 8 * o.backbone.width);
        o.head_channels = std::max<std::int64_t>(16, 4 * o.backbone.width);
        o.fc_channels = std::max<std::int64_t>(64, 16 * o.backbone.width);
        o.mask_channels = o.head_channels;
        o.mask_init_std = 0.0; // He's init: the narrow branch trains from scratch
    }
    snip::train::FasterRCNN net(o);
    if (auto w = a.get("--weights")) {
        const bool partial = a.has("--partial-weights");
        snip::train::load_report r;
        try {
            r = snip::train::load_weights(*net->backbone, *w, /*strict=*/!partial,
                                          {"fc.weight", "fc.bias"},
                                          offset_tensors(*net->backbone));
        } catch (const snip::error& e) {
            if (partial) throw;
            snip::fail(e.what(), " (weights of another ResNet depth? --depth is ", o.backbone.depth,
                       "; --partial-weights loads what fits)");
        }
        if (!quiet)
            std::fprintf(stderr,
                         "loaded backbone weights %s: %zu tensors (%zu in the file unused%s; %zu "
                         "deformable offset tensors start at zero)\n",
                         w->c_str(), r.loaded.size(), r.unexpected.size(),
                         partial ? ", --partial-weights" : "", r.kept.size());
    } else if (!quiet) {
        std::fprintf(stderr, "note: no --weights: the ResNet-%d backbone starts from scratch "
                             "(random init), not from ImageNet\n",
                     o.backbone.depth);
    }
    return net;
}

/// @brief The model a checkpoint holds, rebuilt from its identity and loaded.
inline snip::train::FasterRCNN model_from_checkpoint(const std::string& path,
                                                snip::train::checkpoint_info* info = nullptr) {
    return snip::train::load_model(path, info);
}

/// @brief Fails now, naming `flag`, the file and errno's reason, when `path` (a file about
/// to be written atomically, through path.tmp) cannot be written: its folder is missing or
/// read-only, or it is a folder. Leaves nothing behind.
inline void check_writable(const std::string& path, const std::string& flag) {
    std::error_code ec;
    snip::require(!std::filesystem::is_directory(path, ec), flag, " ", path, ": is a folder");
    const std::string probe = path + ".tmp";
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST)
        snip::fail(flag, " ", path, ": cannot write there (",
                   std::error_code(errno, std::generic_category()).message(), ")");
    if (fd >= 0) {
        ::close(fd);
        ::unlink(probe.c_str());
    }
}

/// @brief Runs `fn()`; on an error, leaves its message for the other ranks of `g` (when
/// distributed) before passing it on, so that they name this rank and its message.
template <class Fn>
int reporting_failure(snip::train::dist_group* g, Fn&& fn) {
    try {
        return fn();
    } catch (const std::exception& e) {
        if (g) g->report_failure(e.what());
        throw;
    }
}

/// @brief The folder of the images: --images, or the annotation file's folder.
inline std::string images_dir(const cli::args& a) {
    if (auto d = a.get("--images")) return *d;
    return std::filesystem::path(a.required("--annotations")).parent_path().string();
}

/// @brief Training options from the flags, with the command's defaults.
inline snip::train::train_options train_options_from(const cli::args& a, bool rpn_only) {
    snip::train::train_options o;
    o.rpn_only = rpn_only;
    o.epochs = int(a.integer("--epochs", rpn_only ? 2 : 7));
    o.batch_size = int(a.integer("--batch", 16));
    o.base_lr = a.number("--lr", 0.015);
    o.warmup_chips = a.number("--warmup-chips", 128000);
    o.momentum = a.number("--momentum", 0.9);
    o.weight_decay = a.number("--weight-decay", 1e-4);
    o.clip_grad_norm = a.number("--clip", 0.0);
    o.workers = unsigned(std::max(0LL, a.integer("--workers", 2)));
    o.max_steps = a.integer("--max-steps", 0);
    o.checkpoint_every = a.integer("--checkpoint-every", 500);
    o.log_every = a.integer("--log-every", 20);
    o.seed = std::uint64_t(a.integer("--seed", 0));
    o.resume = a.has("--resume");
    o.overwrite = a.has("--overwrite");
    snip::require(!(o.resume && o.overwrite), "--resume and --overwrite exclude each other");
    o.skip_bad_images = a.has("--skip-bad-images");
    o.amp = a.has("--amp");
    o.quiet = a.has("--quiet");
    o.out_dir = a.required("--out");
    o.on_log = snip::apps::loss_png_writer(o.out_dir);
    o.lr_steps.clear();
    if (auto s = a.get("--lr-steps")) {
        for (const auto& t : cli::split(*s, ','))
            if (!t.empty()) {
                try {
                    o.lr_steps.push_back(std::stod(t));
                } catch (const std::exception&) {
                    snip::fail("--lr-steps: expected numbers such as 5.33, got '", t, "'");
                }
            }
    } else if (!rpn_only) {
        o.lr_steps = {5.33 * o.epochs / 7.0};
    }
    const std::string flip = a.get_or("--flip", "both");
    if (flip == "random") o.flip = snip::train::flip_policy::random;
    else if (flip == "none") o.flip = snip::train::flip_policy::none;
    else if (flip == "both") o.flip = snip::train::flip_policy::both;
    else snip::fail("--flip: expected random, none or both, got '", flip, "'");
    o.validate();
    return o;
}

/// The class names of a dataset, index k - 1 for class k.
inline std::vector<std::string> class_names(const snip::dataset& ds, const snip::train::class_map& m) {
    std::vector<std::string> names;
    for (int k = 1; k <= m.num_classes(); ++k) {
        std::string n = std::to_string(m.category(k));
        for (const auto& c : ds.categories)
            if (c.id == m.category(k)) n = c.name;
        names.push_back(n);
    }
    return names;
}

/// @brief Checks that a checkpoint's classes are the dataset's categories.
inline void check_categories(const snip::train::checkpoint_info& info, const snip::train::class_map& m,
                             const std::string& ckpt, const std::string& ann) {
    std::vector<int> mine;
    for (int k = 1; k <= m.num_classes(); ++k) mine.push_back(m.category(k));
    snip::require(info.category_ids == mine, ckpt, ": the model was trained on ",
                  info.category_ids.size(), " categories that differ from the ", mine.size(),
                  " of ", ann);
}

} // namespace snip::apps::train_cli
