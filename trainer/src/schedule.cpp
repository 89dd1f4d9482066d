// The learning rate schedule: linear warmup over warmup_chips chips, then a step of gamma at
// each of lr_steps (epoch positions); see train.hpp.
#include <snip/train/options.hpp>

#include <cmath>
#include <cstdint>

namespace snip::train {

std::int64_t train_options::warmup_steps() const {
    return std::int64_t(std::ceil(warmup_chips / double(batch_size)));
}

double train_options::lr_at(std::int64_t step, double epoch_pos) const {
    double lr = base_lr;
    for (double s : lr_steps)
        if (epoch_pos >= s) lr *= gamma;
    const std::int64_t w = warmup_steps();
    if (step < w) lr *= warmup_start + (1.0 - warmup_start) * double(step) / double(w);
    return lr;
}

} // namespace snip::train
