// train_options::validate(): every field that cannot train is named in the error.
#include <snip/train/options.hpp>

#include <snip/core/error.hpp>

#include <cmath>

namespace snip::train {

void train_options::validate() const {
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
                      "train: lr steps must be increasing epoch positions > 0, got ", lr_steps[i],
                      " at position ", i);
    snip::require(std::isfinite(clip_grad_norm) && clip_grad_norm >= 0,
                  "train: gradient clipping norm must be >= 0, got ", clip_grad_norm);
    snip::require(checkpoint_every >= 0, "train: checkpoint interval must be >= 0, got ",
                  checkpoint_every);
    snip::require(log_every >= 1, "train: log interval must be >= 1, got ", log_every);
    snip::require(max_steps >= 0, "train: max steps must be >= 0, got ", max_steps);
    snip::require(prefetch >= 1, "train: prefetch must be >= 1, got ", prefetch);
    snip::require(!resume || !out_dir.empty(), "train: --resume needs an output folder");
}

} // namespace snip::train
