// train.hpp: the SNIPER training loop: per-epoch chip plans, SGD with momentum and weight
// decay, linear warmup and a step schedule scaled by the batch size, optional gradient
// clipping, crash-safe checkpoints with optimizer and RNG state, --resume, a progress line,
// a CSV log and a PNG of the loss curves.
//
//   snip::train::train_options o;              // SNIPER's schedule for batch 16
//   o.out_dir = "runs/coco";
//   snip::train::FasterRCNN net(model_options);
//   snip::train::train_result r = snip::train::train(net, ds, cfg, snip::train::files_in(ds, dir), &proposals, o);
//
// Schedule (the original's: mahyarnajibi/SNIPER configs/faster/sniper_res101_e2e.yml and
// lib/train_utils/utils.py get_optim_params): lr 0.015, momentum 0.9, weight decay 1e-4,
// warmup from lr 0.0005 over 1,000 steps of 8 GPUs x 16 chips, x0.1 at epoch 5.33 of 7. The
// lr means what the original's means: the loss is the sum over groups of 16 chips of the
// original's per-GPU loss (detector.hpp, loss_options), as the original sums its GPUs'
// gradients (rescale_grad 1.0, kvstore device), so lr 0.015 takes the original's step for any
// batch B; on a loss averaged over the B chips that is lr 0.015 x B / 16. The warmup keeps its
// length in CHIPS (128,000 chips: 1000 x 128 / B steps), so the schedule follows the data
// seen, not the step count; lr steps are at epoch positions (epoch + fraction of its batches
// done), whatever B is.
//
// Epochs: every epoch is planned anew (snip::plan_dataset with the seed and the epoch: the
// stride draw and the negative-chip sample change), turned into shuffled, flipped chip jobs
// (make_chip_jobs) and loaded by chip_loader. Step k of the whole run computes its losses
// with seed mix(seed, k) (anchor and RoI sampling). Same inputs + same seed = same run.
//
// Checkpoints (`out_dir/checkpoint.pt`, a LibTorch archive): the model's parameters and
// buffers by name, the SGD state (momentum buffers), the position (epoch, batch within it,
// global step), the seed, the default CPU generator's state, the loss history, and the model's
// identity (detector_identity(): backbone, widths, classes, anchors). It is written to a
// temporary file in the same folder, flushed to disk (fsync), then renamed over the old one
// and the folder synced: a crash at any moment leaves either the old or the new checkpoint,
// never a torn one. --resume reads it, refuses one of another model or training setup (the
// message names the field), and continues with the next batch: the plan, the job order and
// every sampling seed are functions of (seed, epoch, step), so the loss sequence equals an
// uninterrupted run's.
//
// Outputs in out_dir: checkpoint.pt, log.csv (step, epoch, lr, the four losses, total,
// chips/s; rewritten atomically from the history at every log point); the programs draw loss.png from it through train_options::on_log.
//
// Steps: the epoch's chip list is padded to whole batches by wrapping round to its first
// chips, so every step trains on exactly batch_size chips. Data-parallel (a dist_group, see
// distributed.hpp): batch_size is the GLOBAL batch; each of W processes trains on its
// batch_size / W chips of every global batch, gradients are averaged, and the run equals a
// single process's up to float summation order. Rank 0 alone reads the checkpoint to resume
// (and broadcasts it) and alone writes the outputs; a resume may use another world size
// with the same global batch.
#pragma once

#include <snip/train/data.hpp>
#include <snip/train/detector.hpp>
#include <snip/train/distributed.hpp>


#include <snip/sniper/dataset_plan.hpp>
#include <snip/io/coco.hpp>
#include <snip/core/random.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace snip::train {

/// @brief Everything that drives a training run. Defaults are SNIPER's schedule for a
/// @brief One log row: the losses of one step.
struct log_row {
    std::int64_t step = 0;
    double epoch = 0;  ///< epoch position (epoch + fraction done)
    double lr = 0;
    double rpn_cls = 0, rpn_box = 0, rcnn_cls = 0, rcnn_box = 0, total = 0;
    double chips_per_s = 0;
};

/// batch of 16 chips (one GPU's share).
struct train_options {
    int epochs = 7;
    int batch_size = 16;            ///< chips per step
    /// The original's learning rate (sniper_res101_e2e.yml lr 0.015): applied to the sum of
    /// the per-16-chip-group losses (detector.hpp), so it needs no scaling with the batch.
    double base_lr = 0.015;
    double momentum = 0.9;
    double weight_decay = 1e-4;
    double warmup_chips = 128000;   ///< warmup length in chips (1,000 steps of 128); 0: none
    double warmup_start = 0.0005 / 0.015; ///< warmup's first lr as a fraction of the lr
    std::vector<double> lr_steps{5.33};   ///< epoch positions where lr is multiplied by gamma
    double gamma = 0.1;
    double clip_grad_norm = 0.0;    ///< > 0: clip the global gradient L2 norm to this
    bool rpn_only = false;          ///< SNIPER's first stage: RPN losses only
    /// Mixed precision (CUDA only): the forward pass under LibTorch's autocast (float16
    /// convolutions and matrix products, float32 losses and RoIAlign) with dynamic loss
    /// scaling (loss_scaler).
    bool amp = false;
    std::uint64_t seed = 0;
    /// Every chip plain and mirrored, as the original (FLIP: true appends a flipped copy of
    /// every image to the roidb, so an epoch holds both).
    flip_policy flip = flip_policy::both;
    bool negatives = true;          ///< train on the sampled negative chips (with proposals)
    unsigned workers = 2;           ///< chip loader threads
    std::size_t prefetch = 2;       ///< batches the loader may hold
    unsigned plan_threads = 0;      ///< 0: all cores
    std::string out_dir;            ///< checkpoint.pt, log.csv; empty: nothing written
    /// Called on the writing rank at every log point, after log.csv is rewritten, with the
    /// whole loss history and a title ("training: ResNet-18, batch 2"); the programs draw
    /// out_dir/loss.png from it. Empty: nothing is called.
    std::function<void(const std::vector<log_row>& history, const std::string& title)> on_log;
    std::int64_t checkpoint_every = 500; ///< steps between checkpoints (and at each epoch end); 0: epoch ends only
    std::int64_t log_every = 20;    ///< steps between log rows (CSV, PNG, progress line)
    std::int64_t max_steps = 0;     ///< > 0: stop after this many steps in this call (a checkpoint is written)
    bool resume = false;            ///< continue from out_dir/checkpoint.pt
    bool quiet = false;             ///< no progress line
    normalisation norm{};
    snip::assign_options assign{};

    /// @brief Throws snip::error naming the field when the options cannot train.
    void validate() const {
        snip::require(epochs >= 1, "train: epochs must be >= 1, got ", epochs);
        snip::require(batch_size >= 1, "train: batch size must be >= 1, got ", batch_size);
        snip::require(std::isfinite(base_lr) && base_lr > 0, "train: learning rate must be > 0, got ",
                      base_lr);
        snip::require(std::isfinite(momentum) && momentum >= 0 && momentum < 1,
                      "train: momentum must be in [0, 1), got ", momentum);
        snip::require(std::isfinite(weight_decay) && weight_decay >= 0,
                      "train: weight decay must be >= 0, got ", weight_decay);
        snip::require(std::isfinite(warmup_chips) && warmup_chips >= 0,
                      "train: warmup chips must be >= 0, got ", warmup_chips);
        snip::require(std::isfinite(warmup_start) && warmup_start > 0 && warmup_start <= 1,
                      "train: warmup start must be in (0, 1], got ", warmup_start);
        snip::require(std::isfinite(gamma) && gamma > 0, "train: gamma must be > 0, got ", gamma);
        for (std::size_t i = 0; i < lr_steps.size(); ++i)
            snip::require(std::isfinite(lr_steps[i]) && lr_steps[i] > 0 &&
                              (i == 0 || lr_steps[i] > lr_steps[i - 1]),
                          "train: lr steps must be increasing epoch positions > 0, got ",
                          lr_steps[i], " at position ", i);
        snip::require(std::isfinite(clip_grad_norm) && clip_grad_norm >= 0,
                      "train: gradient clipping norm must be >= 0, got ", clip_grad_norm);
        snip::require(checkpoint_every >= 0, "train: checkpoint interval must be >= 0, got ",
                      checkpoint_every);
        snip::require(log_every >= 1, "train: log interval must be >= 1, got ", log_every);
        snip::require(max_steps >= 0, "train: max steps must be >= 0, got ", max_steps);
        snip::require(prefetch >= 1, "train: prefetch must be >= 1, got ", prefetch);
        snip::require(!resume || !out_dir.empty(), "train: --resume needs an output folder");
    }

    /// Steps of linear warmup: warmup_chips / batch_size, rounded up.
    std::int64_t warmup_steps() const {
        return std::int64_t(std::ceil(warmup_chips / double(batch_size)));
    }

    /// @brief The learning rate of global step `step` taken at epoch position `epoch_pos`.
    double lr_at(std::int64_t step, double epoch_pos) const {
        double lr = base_lr;
        for (double s : lr_steps)
            if (epoch_pos >= s) lr *= gamma;
        const std::int64_t w = warmup_steps();
        if (step < w) lr *= warmup_start + (1.0 - warmup_start) * double(step) / double(w);
        return lr;
    }
};

/// @brief Dynamic loss scaling for float16 training (the rule of torch.cuda.amp.GradScaler):
/// the loss is multiplied by `scale` before backward so that small float16 gradients do
/// not flush to zero; unscale() divides the gradients back and reports whether all are
/// finite. A step with an inf or NaN gradient is skipped and the scale halves; after
/// `interval` good steps in a row it doubles.
struct loss_scaler {
    double scale = 65536.0;
    double growth = 2.0;
    double backoff = 0.5;
    std::int64_t interval = 2000;
    std::int64_t good = 0;    ///< good steps since the last change
    std::int64_t skipped = 0; ///< steps skipped so far

    /// Divides every defined gradient of `params` by the scale, in place. Returns true when
    /// all of them are finite.
    bool unscale(const std::vector<torch::Tensor>& params) const {
        torch::NoGradGuard ng;
        bool finite = true;
        for (const auto& p : params) {
            torch::Tensor g = p.grad();
            if (!g.defined()) continue;
            g.mul_(1.0 / scale);
            finite = finite && torch::isfinite(g).all().item<bool>();
        }
        return finite;
    }
    /// Records the outcome of a step (after unscale()).
    void update(bool finite) {
        if (!finite) {
            scale *= backoff;
            good = 0;
            ++skipped;
        } else if (++good >= interval) {
            scale *= growth;
            good = 0;
        }
    }
};

namespace detail {

/// Autocast on for this scope (CUDA float16), off and its cast cache cleared after.
class autocast_scope {
public:
    explicit autocast_scope(bool on) : on_(on) {
        if (on_) at::autocast::set_enabled(true);
    }
    ~autocast_scope() {
        if (on_) {
            at::autocast::clear_cache();
            at::autocast::set_enabled(false);
        }
    }
    autocast_scope(const autocast_scope&) = delete;
    autocast_scope& operator=(const autocast_scope&) = delete;

private:
    bool on_;
};

} // namespace detail

/// @brief What train() did.
struct train_result {
    std::int64_t steps = 0;        ///< global steps done so far (all runs)
    std::int64_t steps_this_run = 0;
    bool finished = false;         ///< all epochs done
    std::vector<log_row> history;  ///< every step's losses (all runs, from the checkpoint)
    double seconds = 0;
};

// ---------------------------------------------------------------------------------------
// Identity and checkpoints

/// @brief The identity of a detector: what a checkpoint must match to load into it.
inline std::string detector_identity(const detector_options& o) {
    std::ostringstream s;
    s << "resnet" << o.backbone.depth << " width " << o.backbone.width << " dilate_res5 "
      << o.backbone.dilate_res5 << " dilate_first " << o.backbone.dilate_first_res5_block
      << " frozen " << o.backbone.frozen_stages << " train_bn " << o.backbone.train_bn
      << " classes " << o.num_classes << " anchors "
      << o.anchors.templates().size() << " stride " << o.anchors.stride << " rpn "
      << o.rpn_channels << " head " << o.head_channels << " fc " << o.fc_channels << " pool "
      << o.pool_size;
    return s.str();
}

namespace detail {

/// Writes `bytes` to `path` durably and atomically: path.tmp, fsync, rename, fsync(dir).
inline void write_durably(const std::string& path, const std::string& bytes) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    snip::require(fd >= 0, path, ": cannot open ", tmp, " for writing");
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n <= 0) {
            ::close(fd);
            ::unlink(tmp.c_str());
            snip::fail(path, ": writing ", tmp, " failed (disk full?)");
        }
        done += std::size_t(n);
    }
    const bool synced = ::fsync(fd) == 0;
    const bool closed = ::close(fd) == 0;
    if (!synced || !closed) {
        ::unlink(tmp.c_str());
        snip::fail(path, ": flushing ", tmp, " to disk failed");
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        ::unlink(tmp.c_str());
        snip::fail(path, ": cannot rename ", tmp, " onto it");
    }
    const std::string dir = std::filesystem::path(path).parent_path().string();
    const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd); // best effort: the rename reaches the disk
        ::close(dfd);
    }
}

inline torch::Tensor history_tensor(const std::vector<log_row>& h) {
    torch::Tensor t = torch::empty({std::int64_t(h.size()), 10}, torch::kDouble);
    double* p = t.data_ptr<double>();
    for (const log_row& r : h) {
        const double v[10] = {double(r.step), r.epoch,    r.lr,       r.rpn_cls, r.rpn_box,
                              r.rcnn_cls,     r.rcnn_box, r.total, r.chips_per_s, 0.0};
        p = std::copy(v, v + 10, p);
    }
    return t;
}

inline std::vector<log_row> history_rows(const torch::Tensor& t,
                                         const std::string& path = "checkpoint") {
    snip::require(t.dim() == 2 && t.size(1) == 10 && t.scalar_type() == torch::kDouble, path,
                  ": snip_train.history is ", c10::toString(t.scalar_type()), " ", t.sizes(),
                  ", must be Double [n, 10] (the loss history)");
    const torch::Tensor c = t.contiguous();
    const double* p = c.data_ptr<double>();
    std::vector<log_row> out(std::size_t(c.size(0)));
    for (log_row& r : out) {
        r.step = std::int64_t(p[0]);
        r.epoch = p[1], r.lr = p[2], r.rpn_cls = p[3], r.rpn_box = p[4], r.rcnn_cls = p[5];
        r.rcnn_box = p[6], r.total = p[7], r.chips_per_s = p[8];
        p += 10;
    }
    return out;
}

/// The first line of a LibTorch error (without its backtrace), at most 200 characters.
inline std::string first_line(const char* what) {
    const std::string s(what ? what : "");
    return s.substr(0, std::min<std::size_t>(s.find('\n'), 200));
}

inline c10::IValue read_value(torch::serialize::InputArchive& ar, const std::string& key,
                              const std::string& path) {
    c10::IValue v;
    snip::require(ar.try_read(key, v), path, ": not a snip-train checkpoint (no '", key, "')");
    return v;
}

/// Opens the checkpoint archive `path` into `ar`; errors name the file.
inline void open_checkpoint(torch::serialize::InputArchive& ar, const std::string& path) {
    snip::require(std::filesystem::is_regular_file(path), path, ": no such checkpoint file");
    try {
        ar.load_from(path);
    } catch (const std::exception& e) {
        snip::fail(path, ": cannot read the checkpoint (truncated or not a LibTorch archive): ",
                   first_line(e.what()));
    }
}

/// The checkpoint value `key`, which must be of the kind `is` tests (`want` names it).
template <class Is>
c10::IValue read_typed(torch::serialize::InputArchive& ar, const std::string& key,
                       const std::string& path, Is is, const char* want) {
    c10::IValue v = read_value(ar, key, path);
    if (!is(v)) snip::fail(path, ": ", key, " is of type ", v.tagKind(), ", must be ", want);
    return v;
}
inline std::string read_string(torch::serialize::InputArchive& ar, const std::string& key,
                               const std::string& path) {
    return read_typed(ar, key, path, [](const c10::IValue& v) { return v.isString(); }, "a string")
        .toStringRef();
}
inline std::int64_t read_int(torch::serialize::InputArchive& ar, const std::string& key,
                             const std::string& path, std::int64_t lo = 0,
                             std::int64_t hi = std::numeric_limits<std::int64_t>::max()) {
    const std::int64_t v =
        read_typed(ar, key, path, [](const c10::IValue& x) { return x.isInt(); }, "an integer")
            .toInt();
    if (v < lo || v > hi)
        snip::fail(path, ": ", key, " is ", v, ", must be in [", lo, ", ", hi, "]");
    return v;
}

} // namespace detail

/// @brief Where a training run stands (what a checkpoint holds besides the tensors).
struct train_position {
    int epoch = 0;            ///< current epoch
    std::int64_t batch = 0;   ///< next batch of that epoch
    std::int64_t step = 0;    ///< global steps done
};

/// @brief Writes a checkpoint durably (see the file comment). `setup` names the training
/// setup a resume must match (seed, batch, dataset size, ...).
inline void save_checkpoint(const std::string& path, FasterRCNN& net, torch::optim::SGD* sgd,
                            const train_position& pos, const std::string& setup,
                            const std::vector<log_row>& history,
                            const std::vector<int>& category_ids,
                            const loss_scaler& scaler = {}) {
    torch::serialize::OutputArchive ar;
    ar.write("snip_train.format", c10::IValue(std::int64_t(1)));
    ar.write("snip_train.model", c10::IValue(detector_identity(net->options())));
    ar.write("snip_train.setup", c10::IValue(setup));
    ar.write("snip_train.epoch", c10::IValue(std::int64_t(pos.epoch)));
    ar.write("snip_train.batch", c10::IValue(pos.batch));
    ar.write("snip_train.step", c10::IValue(pos.step));
    ar.write("snip_train.categories",
             c10::IValue(std::vector<std::int64_t>(category_ids.begin(), category_ids.end())));
    ar.write("snip_train.history", detail::history_tensor(history), /*is_buffer=*/true);
    ar.write("snip_train.rng", at::detail::getDefaultCPUGenerator().get_state(), true);
    ar.write("snip_train.loss_scale", c10::IValue(scaler.scale));
    ar.write("snip_train.loss_scale_good", c10::IValue(scaler.good));
    ar.write("snip_train.loss_scale_skipped", c10::IValue(scaler.skipped));
    for (const auto& p : net->named_parameters()) ar.write("model." + p.key(), p.value().detach().cpu());
    for (const auto& b : net->named_buffers()) ar.write("model." + b.key(), b.value().cpu(), true);
    if (sgd) {
        torch::serialize::OutputArchive opt;
        sgd->save(opt);
        ar.write("optimizer", opt);
    }
    std::ostringstream bytes;
    ar.save_to(bytes);
    detail::write_durably(path, bytes.str());
}

/// @brief What load_checkpoint found.
struct checkpoint_info {
    train_position position;
    std::string setup;
    std::vector<log_row> history;
    std::vector<int> category_ids; ///< the dataset's category id of class 1..K
    bool has_optimizer = false;
    loss_scaler scaler;            ///< its state (mixed precision)
};

/// @brief Loads the model (and, when given, the optimizer state and the CPU generator)
/// from a checkpoint written by save_checkpoint. Checks first, assigns after: on any
/// error (not a checkpoint, another model, a missing or misshapen tensor, a field of the
/// wrong type, no optimizer state when `sgd` is given) the model is untouched and the
/// message names the file and the difference. `expect_setup` (train_setup()), when given,
/// must equal the checkpoint's setup. (An optimizer state that does not fit
/// `sgd` may leave `sgd` partly loaded, never the model.)
inline checkpoint_info load_checkpoint(const std::string& path, FasterRCNN& net,
                                       torch::optim::SGD* sgd = nullptr,
                                       bool restore_rng = false,
                                       const std::string* expect_setup = nullptr) {
    torch::serialize::InputArchive ar;
    detail::open_checkpoint(ar, path);
    const std::string model = detail::read_string(ar, "snip_train.model", path);
    const std::string mine = detector_identity(net->options());
    snip::require(model == mine, path, ": checkpoint of another model: it holds '", model,
                  "', this run builds '", mine, "'");
    checkpoint_info info;
    info.setup = detail::read_string(ar, "snip_train.setup", path);
    if (expect_setup)
        snip::require(info.setup == *expect_setup, path,
                      ": checkpoint of another training setup: it has '", info.setup,
                      "', this run '", *expect_setup, "'");
    info.position.epoch =
        int(detail::read_int(ar, "snip_train.epoch", path, 0, std::numeric_limits<int>::max()));
    info.position.batch = detail::read_int(ar, "snip_train.batch", path);
    info.position.step = detail::read_int(ar, "snip_train.step", path);
    const c10::IValue cats = detail::read_typed(
        ar, "snip_train.categories", path, [](const c10::IValue& v) { return v.isIntList(); },
        "a list of integers");
    for (std::int64_t c : cats.toIntVector()) info.category_ids.push_back(int(c));
    info.scaler.scale = detail::read_typed(ar, "snip_train.loss_scale", path,
                                           [](const c10::IValue& v) { return v.isDouble(); },
                                           "a float")
                            .toDouble();
    info.scaler.good = detail::read_int(ar, "snip_train.loss_scale_good", path);
    info.scaler.skipped = detail::read_int(ar, "snip_train.loss_scale_skipped", path);
    torch::Tensor hist, rng;
    snip::require(ar.try_read("snip_train.history", hist, true), path, ": no loss history");
    info.history = detail::history_rows(hist, path);

    // Read every tensor and check it before assigning any.
    std::vector<std::pair<torch::Tensor, torch::Tensor>> assign;
    auto collect = [&](const std::string& name, const torch::Tensor& dst, bool buffer) {
        torch::Tensor t;
        snip::require(ar.try_read("model." + name, t, buffer), path, ": no tensor '", name, "'");
        snip::require(t.sizes() == dst.sizes(), path, ": tensor '", name, "' has shape ",
                      t.sizes(), ", the model's is ", dst.sizes());
        snip::require(t.scalar_type() == dst.scalar_type(), path, ": tensor '", name, "' is ",
                      c10::toString(t.scalar_type()), ", the model's is ",
                      c10::toString(dst.scalar_type()));
        assign.emplace_back(dst, t);
    };
    for (const auto& p : net->named_parameters()) collect(p.key(), p.value(), false);
    for (const auto& b : net->named_buffers()) collect(b.key(), b.value(), true);
    torch::serialize::InputArchive opt;
    info.has_optimizer = ar.try_read("optimizer", opt);
    // Everything that can still fail comes before the model is touched.
    if (sgd) snip::require(info.has_optimizer, path, ": no optimizer state to resume from");
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    if (restore_rng) {
        snip::require(ar.try_read("snip_train.rng", rng, true), path, ": no RNG state");
        const torch::Tensor mine_rng = gen.get_state();
        snip::require(rng.scalar_type() == mine_rng.scalar_type() &&
                          rng.sizes() == mine_rng.sizes(),
                      path, ": snip_train.rng is ", c10::toString(rng.scalar_type()), " ",
                      rng.sizes(), ", not a CPU generator state (",
                      c10::toString(mine_rng.scalar_type()), " ", mine_rng.sizes(), ")");
    }
    if (sgd) {
        try {
            sgd->load(opt);
        } catch (const std::exception& e) {
            snip::fail(path, ": the optimizer state does not fit this model's optimizer: ",
                       detail::first_line(e.what()));
        }
    }
    {
        torch::NoGradGuard ng;
        for (auto& [dst, src] : assign) dst.copy_(src);
    }
    if (restore_rng) gen.set_state(rng);
    return info;
}

/// @brief The model identity stored in a checkpoint (without loading its tensors).
inline std::string checkpoint_identity(const std::string& path) {
    torch::serialize::InputArchive ar;
    detail::open_checkpoint(ar, path);
    return detail::read_string(ar, "snip_train.model", path);
}

/// @brief The detector_options a checkpoint identity (detector_identity()) describes, with
/// the default anchors (SNIPER's 21) and everything not in the identity at its default.
/// @throws snip::error naming `where` when the text is not an identity.
inline detector_options options_from_identity(const std::string& id, const std::string& where) {
    std::istringstream in(id);
    std::string first;
    in >> first;
    detector_options o;
    auto bad = [&](const std::string& why) {
        snip::fail(where, ": unreadable model identity '", id, "' (", why, ")");
    };
    if (first.rfind("resnet", 0) != 0) bad("no resnet depth");
    try {
        o.backbone.depth = std::stoi(first.substr(6));
    } catch (const std::exception&) {
        bad("no resnet depth");
    }
    std::string key;
    double value = 0;
    std::size_t anchors = 0;
    while (in >> key >> value) {
        const auto i = std::int64_t(value);
        if (key == "width") o.backbone.width = i;
        else if (key == "dilate_res5") o.backbone.dilate_res5 = i != 0;
        else if (key == "dilate_first") o.backbone.dilate_first_res5_block = i != 0;
        else if (key == "frozen") o.backbone.frozen_stages = int(i);
        else if (key == "train_bn") o.backbone.train_bn = i != 0;
        else if (key == "classes") o.num_classes = i;
        else if (key == "anchors") anchors = std::size_t(i);
        else if (key == "stride") o.anchors.stride = value;
        else if (key == "rpn") o.rpn_channels = i;
        else if (key == "head") o.head_channels = i;
        else if (key == "fc") o.fc_channels = i;
        else if (key == "pool") o.pool_size = i;
        else bad("unknown field " + key);
    }
    if (anchors != o.anchors.templates().size())
        bad("it has " + std::to_string(anchors) + " anchors; this program builds " +
            std::to_string(o.anchors.templates().size()));
    if (detector_identity(o) != id) bad("it does not read back the same");
    return o;
}

// ---------------------------------------------------------------------------------------
// Logs and pictures

inline void write_log_csv(const std::string& path, const std::vector<log_row>& h) {
    std::string s = "step,epoch,lr,rpn_cls,rpn_box,rcnn_cls,rcnn_box,total,chips_per_s\n";
    char line[320];
    for (const log_row& r : h) {
        std::snprintf(line, sizeof line, "%lld,%.5f,%.6g,%.6f,%.6f,%.6f,%.6f,%.6f,%.2f\n",
                      static_cast<long long>(r.step), r.epoch, r.lr, r.rpn_cls, r.rpn_box,
                      r.rcnn_cls, r.rcnn_box, r.total, r.chips_per_s);
        s += line;
    }
    snip::io::detail::write_atomically(path, s);
}

/// @brief A progress line on stderr: \r-updated on a terminal, one line every ~10 s
/// otherwise.
class train_progress {
public:
    explicit train_progress(bool quiet) : quiet_(quiet), tty_(::isatty(2) != 0) {}
    void operator()(int epoch, int epochs, std::size_t batch, std::size_t batches,
                    std::int64_t step, const log_row& smoothed, double chips_per_s,
                    double eta_s, bool last) {
        if (quiet_) return;
        const auto now = clock::now();
        const double since = std::chrono::duration<double>(now - last_).count();
        if (!last && since < (tty_ ? 0.25 : 10.0)) return;
        last_ = now;
        const int width = 24;
        const int filled = batches ? int(double(width) * double(batch) / double(batches)) : width;
        std::string bar(std::size_t(filled), '#');
        bar.resize(std::size_t(width), '.');
        std::fprintf(stderr,
                     "%sepoch %d/%d [%s] %zu/%zu step %lld loss %.4f (rpn %.3f+%.3f rcnn "
                     "%.3f+%.3f) lr %.3g %.1f chips/s ETA %s%s",
                     tty_ ? "\r" : "", epoch + 1, epochs, bar.c_str(), batch, batches,
                     static_cast<long long>(step), smoothed.total, smoothed.rpn_cls,
                     smoothed.rpn_box, smoothed.rcnn_cls, smoothed.rcnn_box, smoothed.lr,
                     chips_per_s, format_time(eta_s).c_str(), tty_ && !last ? "\x1b[K" : "\n");
        std::fflush(stderr);
    }
    static std::string format_time(double s) {
        if (!std::isfinite(s) || s < 0) return "?";
        char b[32];
        const long long t = static_cast<long long>(s + 0.5);
        if (t >= 3600)
            std::snprintf(b, sizeof b, "%lldh%02lldm", t / 3600, (t / 60) % 60);
        else
            std::snprintf(b, sizeof b, "%lldm%02llds", t / 60, t % 60);
        return b;
    }

private:
    using clock = std::chrono::steady_clock;
    bool quiet_, tty_;
    clock::time_point last_ = clock::now() - std::chrono::hours(1);
};

// ---------------------------------------------------------------------------------------
// The loop

/// @brief The training setup a resume must match: everything that decides the chips and
/// the seeds of each step besides the model.
inline std::string train_setup(const train_options& o, const snip::plan_config& cfg,
                               const snip::dataset& ds, bool with_proposals) {
    std::ostringstream s;
    s << "seed " << o.seed << " batch " << o.batch_size << " epochs " << o.epochs << " rpn_only "
      << o.rpn_only << " amp " << o.amp << " flip " << int(o.flip) << " negatives " << (o.negatives && with_proposals)
      << " images " << ds.images.size() << " boxes " << ds.num_boxes() << " chip "
      << cfg.chip_size << " scales " << cfg.scales.size();
    return s.str();
}

namespace detail {

/// Makes every rank's training state rank 0's: parameters, buffers, SGD momentum buffers,
/// position, loss scaler and the CPU generator (a collective).
inline void broadcast_train_state(dist_group& g, FasterRCNN& net, torch::optim::SGD& sgd,
                                  train_position& pos, loss_scaler& scaler) {
    std::vector<torch::Tensor> state;
    for (const auto& p : net->parameters()) state.push_back(p);
    for (const auto& b : net->buffers()) state.push_back(b);
    g.broadcast(state);
    // Momentum buffers: rank 0 says which parameters have one; the others make them.
    std::vector<torch::Tensor> params;
    for (auto& group : sgd.param_groups())
        for (auto& p : group.params()) params.push_back(p);
    auto& st = sgd.state();
    auto key = [](const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); };
    torch::Tensor has = torch::zeros({std::int64_t(params.size())}, torch::kLong);
    for (std::size_t i = 0; i < params.size(); ++i)
        if (st.count(key(params[i]))) {
            auto& ps = static_cast<torch::optim::SGDParamState&>(*st.at(key(params[i])));
            if (ps.momentum_buffer().defined()) has[std::int64_t(i)] = 1;
        }
    g.broadcast({has});
    std::vector<torch::Tensor> momentum;
    for (std::size_t i = 0; i < params.size(); ++i) {
        const std::string k = key(params[i]);
        if (has[std::int64_t(i)].item<std::int64_t>() == 0) {
            st.erase(k); // rank 0 has none: neither may any other rank
            continue;
        }
        if (!st.count(k)) st[k] = std::make_unique<torch::optim::SGDParamState>();
        auto& ps = static_cast<torch::optim::SGDParamState&>(*st.at(k));
        if (!ps.momentum_buffer().defined())
            ps.momentum_buffer(torch::zeros_like(params[i], torch::MemoryFormat::Preserve));
        momentum.push_back(ps.momentum_buffer());
    }
    g.broadcast(momentum);
    torch::Tensor where = torch::tensor({std::int64_t(pos.epoch), pos.batch, pos.step,
                                         scaler.good, scaler.skipped}, torch::kLong);
    torch::Tensor scale = torch::tensor({scaler.scale}, torch::kDouble);
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    torch::Tensor rng = gen.get_state();
    g.broadcast({where, scale, rng});
    pos.epoch = int(where[0].item<std::int64_t>());
    pos.batch = where[1].item<std::int64_t>();
    pos.step = where[2].item<std::int64_t>();
    scaler.good = where[3].item<std::int64_t>();
    scaler.skipped = where[4].item<std::int64_t>();
    scaler.scale = scale[0].item<double>();
    gen.set_state(rng);
}

} // namespace detail

/// @brief Trains `net` on the chips of `ds` planned with `cfg` (see the file comment).
/// `proposals` (one list per image, or null) enables negative chips. The model must
/// already be on its device; images go there batch by batch. With `dist` (a process group
/// of W ranks, distributed.hpp) every rank calls train() with the same arguments and trains
/// its share of each global batch of o.batch_size chips.
inline train_result train(FasterRCNN& net, const snip::dataset& ds, const snip::plan_config& cfg,
                          const image_source& source,
                          const std::vector<snip::image_proposals>* proposals,
                          const train_options& o, dist_group* dist = nullptr) {
    o.validate();
    const int world = dist ? dist->size() : 1;
    const int rank = dist ? dist->rank() : 0;
    const bool writer = rank == 0; // rank 0 alone reads checkpoints and writes outputs
    snip::require(o.batch_size % world == 0, "train: a batch of ", o.batch_size,
                  " chips does not split over ", world,
                  " processes: use a batch that the world size divides");
    cfg.validate("train: plan config");
    snip::require(!ds.images.empty(), "train: the dataset ", ds.source, " has no images");
    const class_map classes(ds);
    snip::require(classes.num_classes() == net->options().num_classes, "train: the dataset ",
                  ds.source, " has ", classes.num_classes(), " categories, the model ",
                  net->options().num_classes, " classes");
    std::vector<int> category_ids;
    for (int k = 1; k <= classes.num_classes(); ++k) category_ids.push_back(classes.category(k));

    const auto params = net->trainable_parameters();
    snip::require(!params.empty(), "train: the model has no trainable parameter");
    torch::optim::SGD sgd(params, torch::optim::SGDOptions(o.lr_at(0, 0.0))
                                      .momentum(o.momentum)
                                      .weight_decay(o.weight_decay));
    const std::string setup = train_setup(o, cfg, ds, proposals != nullptr);
    const std::string ckpt =
        o.out_dir.empty() ? std::string() : (std::filesystem::path(o.out_dir) / "checkpoint.pt").string();
    if (!o.out_dir.empty() && writer) std::filesystem::create_directories(o.out_dir);
    if (dist) {
        dist->require_same("the model", detector_identity(net->options()));
        dist->require_same("the training setup", setup);
    }

    train_result res;
    train_position pos;
    loss_scaler scaler_state;
    if (o.resume) {
        auto resume = [&] {
            if (!writer) return;
            const checkpoint_info info =
                load_checkpoint(ckpt, net, &sgd, /*restore_rng=*/true, &setup);
            pos = info.position;
            res.history = info.history;
            scaler_state = info.scaler;
            if (!o.quiet)
                std::fprintf(stderr, "resuming %s at epoch %d, batch %lld (step %lld)\n",
                             ckpt.c_str(), pos.epoch + 1, static_cast<long long>(pos.batch),
                             static_cast<long long>(pos.step));
        };
        if (dist)
            dist->agree("resume from " + ckpt, resume);
        else
            resume();
    }
    if (dist) detail::broadcast_train_state(*dist, net, sgd, pos, scaler_state);
    std::unique_ptr<grad_sync> sync;
    if (dist) sync = std::make_unique<grad_sync>(*dist, params, dist->options().bucket_mb);
    batch_share share;
    share.world = world;
    share.first_chip = std::size_t(rank) * std::size_t(o.batch_size / world);
    if (dist)
        share.sum_counts = [dist](std::array<double, 2>& c) {
            const torch::Tensor s = dist->all_sum(torch::tensor({c[0], c[1]}, torch::kDouble));
            c[0] = s[0].item<double>();
            c[1] = s[1].item<double>();
        };

    const torch::Device device = params.front().device();
    snip::require(!o.amp || device.is_cuda(), "train: mixed precision (--amp) runs on CUDA only; ",
                  "the model is on ", device.str());
    loss_scaler scaler = scaler_state;
    const resnet_options& bo = net->options().backbone;
    const std::string title = std::string(o.rpn_only ? "RPN stage" : "training") + ": ResNet-" +
                              std::to_string(bo.depth) +
                              (bo.width != 64 ? " width " + std::to_string(bo.width) : "") +
                              ", batch " + std::to_string(o.batch_size);
    auto write_outputs = [&](bool with_checkpoint) {
        if (o.out_dir.empty() || !writer) return;
        if (with_checkpoint)
            save_checkpoint(ckpt, net, &sgd, pos, setup, res.history, category_ids, scaler);
        write_log_csv((std::filesystem::path(o.out_dir) / "log.csv").string(), res.history);
        if (o.on_log) o.on_log(res.history, title);
    };

    net->train();
    train_progress progress(o.quiet || !writer);
    const auto t_run = std::chrono::steady_clock::now();
    log_row ema;
    bool ema_set = false;
    bool stopped = false;
    while (pos.epoch < o.epochs && !stopped) {
        snip::dataset_plan_options po;
        po.seed = o.seed;
        po.epoch = pos.epoch;
        po.threads = o.plan_threads;
        const auto plans = snip::plan_dataset(cfg, ds, proposals, po);
        job_options jo;
        jo.seed = o.seed;
        jo.epoch = pos.epoch;
        jo.flip = o.flip;
        jo.negatives = o.negatives;
        const std::vector<chip_job> all_jobs = make_chip_jobs(plans, jo);
        const std::size_t B = std::size_t(o.batch_size);
        const auto batches = std::int64_t((all_jobs.size() + B - 1) / B);
        snip::require(batches > 0, "train: epoch ", pos.epoch + 1,
                      " has no chip (is any box valid at any scale?)");
        snip::require(pos.batch < batches, "train: resuming at batch ", pos.batch, " of epoch ",
                      pos.epoch + 1, ", which has ", batches, " batches");
        // This rank's chips of every global batch from the next one (a resumed epoch starts
        // at its next batch); the last batch is filled up with the epoch's first chips.
        std::vector<chip_job> jobs;
        for (std::size_t p : shard_positions(all_jobs.size(), B, world, rank, pos.batch))
            jobs.push_back(all_jobs[p % all_jobs.size()]);
        loader_options lo;
        lo.batch_size = o.batch_size / world;
        lo.workers = o.workers;
        lo.max_batches = o.prefetch;
        lo.norm = o.norm;
        lo.assign = o.assign;
        chip_loader loader(ds, cfg, std::move(jobs), source, lo);
        const auto t_epoch = std::chrono::steady_clock::now();
        std::size_t chips_epoch = 0;
        while (auto b = loader.next()) {
            const double epoch_pos = pos.epoch + double(pos.batch) / double(batches);
            const double lr = o.lr_at(pos.step, epoch_pos);
            for (auto& g : sgd.param_groups())
                static_cast<torch::optim::SGDOptions&>(g.options()).lr(lr);
            sgd.zero_grad();
            detector_losses l;
            if (sync) sync->before_forward();
            {
                detail::autocast_scope amp(o.amp);
                l = net->forward_train(b->images.to(device), b->targets,
                                       snip::mix(o.seed, std::uint64_t(pos.step)),
                                       o.rpn_only, share);
            }
            const torch::Tensor total = l.total();
            // The losses of the global batch: each rank holds its share times W.
            std::array<double, 4> parts{l.rpn_cls.item<double>(), l.rpn_box.item<double>(),
                                        l.rcnn_cls.item<double>(), l.rcnn_box.item<double>()};
            if (dist) {
                const torch::Tensor s = dist->all_sum(
                    torch::tensor({parts[0], parts[1], parts[2], parts[3]}, torch::kDouble));
                for (std::size_t k = 0; k < 4; ++k) parts[k] = s[std::int64_t(k)].item<double>() / world;
            }
            const double tv = dist ? parts[0] + parts[1] + parts[2] + parts[3] : total.item<double>();
            snip::require(std::isfinite(tv), "train: the loss is ", tv, " at step ", pos.step,
                          " (epoch ", pos.epoch + 1, ", batch ", pos.batch,
                          "): lower the learning rate or enable gradient clipping");
            bool finite = true;
            const torch::Tensor to_backward = o.amp ? total * scaler.scale : total;
            if (sync)
                sync->backward(to_backward); // gradients averaged over the ranks
            else
                to_backward.backward();
            if (o.amp) {
                finite = scaler.unscale(params);
                scaler.update(finite);
            }
            if (finite) { // a mixed-precision step with an overflowed gradient is skipped
                if (o.clip_grad_norm > 0)
                    torch::nn::utils::clip_grad_norm_(params, o.clip_grad_norm);
                sgd.step();
            }

            chips_epoch += b->targets.size() * std::size_t(world);
            const double secs =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
            log_row r;
            r.step = pos.step;
            r.epoch = epoch_pos;
            r.lr = lr;
            r.rpn_cls = parts[0];
            r.rpn_box = parts[1];
            r.rcnn_cls = parts[2];
            r.rcnn_box = parts[3];
            r.total = tv;
            r.chips_per_s = secs > 0 ? double(chips_epoch) / secs : 0.0;
            res.history.push_back(r);
            if (!ema_set) ema = r, ema_set = true;
            auto upd = [](double& acc, double v) { acc = 0.9 * acc + 0.1 * v; };
            upd(ema.total, r.total), upd(ema.rpn_cls, r.rpn_cls), upd(ema.rpn_box, r.rpn_box);
            upd(ema.rcnn_cls, r.rcnn_cls), upd(ema.rcnn_box, r.rcnn_box);
            ema.lr = lr;

            ++pos.step;
            ++pos.batch;
            ++res.steps_this_run;
            const bool epoch_end = pos.batch >= batches;
            const double chips_left =
                double(batches - pos.batch) * double(B) +
                double(o.epochs - pos.epoch - 1) * double(batches) * double(B);
            progress(pos.epoch, o.epochs, std::size_t(pos.batch), std::size_t(batches), pos.step,
                     ema, r.chips_per_s, r.chips_per_s > 0 ? chips_left / r.chips_per_s : -1.0,
                     epoch_end);
            stopped = o.max_steps > 0 && res.steps_this_run >= o.max_steps;
            if (epoch_end) {
                ++pos.epoch; // the checkpoint points at the start of the next epoch
                pos.batch = 0;
                write_outputs(true);
                break;
            }
            if ((o.checkpoint_every > 0 && pos.step % o.checkpoint_every == 0) || stopped)
                write_outputs(true);
            else if (pos.step % o.log_every == 0)
                write_outputs(false);
            if (stopped) break;
        }
    }
    if (dist) dist->barrier(); // the outputs of rank 0 are written when any rank returns
    res.steps = pos.step;
    res.finished = pos.epoch >= o.epochs;
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_run).count();
    return res;
}

} // namespace snip::train
