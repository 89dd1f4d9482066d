// options.hpp: what drives a training run (train_options: the SGD schedule, the data
// loader, the outputs; validate(), and the learning rate of each step, lr_at()), one row of
// the loss log (log_row) and what a run did (train_result). See train.hpp for the schedule.
#pragma once

#include <snip/train/data.hpp>

#include <snip/sniper/chip_gt.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace snip::train {

/// @brief One log row: the losses of one step.
struct log_row {
    std::int64_t step = 0;
    double epoch = 0;  ///< epoch position (epoch + fraction done)
    double lr = 0;
    double rpn_cls = 0, rpn_box = 0, rcnn_cls = 0, rcnn_box = 0, total = 0;
    double rcnn_mask = 0; ///< 0 for a network without a mask branch
    double chips_per_s = 0;
};


/// @brief Everything that drives a training run. Defaults are SNIPER's schedule for a
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
    /// Replace an existing out_dir/checkpoint.pt (without it and without `resume`, a run into
    /// a folder that holds a checkpoint is refused: a forgotten --resume loses nothing).
    bool overwrite = false;
    /// A chip whose image cannot be read or decoded (or whose size differs from the
    /// annotation's) is left out of its batch, and the image is named on stderr and in
    /// train_result::skipped_images, instead of stopping the run with that error.
    bool skip_bad_images = false;
    /// What a second run into out_dir is told holds the folder (usually the command line).
    std::string description;
    bool quiet = false;             ///< no progress line
    normalisation norm{};
    snip::assign_options assign{};

    /// @brief Throws snip::error naming the field when the options cannot train.
    void validate() const;

    /// Steps of linear warmup: warmup_chips / batch_size, rounded up.
    std::int64_t warmup_steps() const;

    /// @brief The learning rate of global step `step` taken at epoch position `epoch_pos`.
    double lr_at(std::int64_t step, double epoch_pos) const;
};

/// @brief What train() did.
struct train_result {
    std::int64_t steps = 0;        ///< global steps done so far (all runs)
    std::int64_t steps_this_run = 0;
    bool finished = false;         ///< all epochs done
    std::vector<log_row> history;  ///< every step's losses (all runs, from the checkpoint)
    double seconds = 0;
    /// The signal (run.hpp: SIGINT, SIGTERM) that stopped the run after a step, with a
    /// checkpoint written; 0 when it was not stopped by one.
    int stopped_by = 0;
    int position_epoch = 0;           ///< where the run stands: epoch (0-based) ...
    std::int64_t position_batch = 0;  ///< ... and its next batch (what a resume continues at)
    /// Images left out under train_options::skip_bad_images: "file: reason", once each.
    std::vector<std::string> skipped_images;
};

} // namespace snip::train
