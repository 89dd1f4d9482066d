// loop.hpp: train(), the SNIPER training loop (see train.hpp for what it does and the
// schedule), the training setup a resume must match (train_setup()) and, for a data-parallel
// run, the broadcast of rank 0's training state (detail::broadcast_train_state).
#pragma once

#include <snip/train/amp.hpp>
#include <snip/train/checkpoint.hpp>
#include <snip/train/data.hpp>
#include <snip/train/detector.hpp>
#include <snip/train/distributed.hpp>
#include <snip/train/options.hpp>
#include <snip/train/progress.hpp>

#include <snip/sniper/dataset.hpp>
#include <snip/sniper/dataset_plan.hpp>
#include <snip/sniper/plan.hpp>

#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/sgd.h>

#include <string>
#include <vector>

namespace snip::train {

// ---------------------------------------------------------------------------------------
// The loop

/// @brief The training setup a resume must match: everything that decides the chips and
/// the seeds of each step besides the model.
std::string train_setup(const train_options& o, const snip::plan_config& cfg,
                        const snip::dataset& ds, bool with_proposals);

namespace detail {

/// Makes every rank's training state rank 0's: parameters, buffers, SGD momentum buffers,
/// position, loss scaler and the CPU generator (a collective).
void broadcast_train_state(dist_group& g, FasterRCNN& net, torch::optim::SGD& sgd,
                           train_position& pos, loss_scaler& scaler);

} // namespace detail

/// @brief Trains `net` on the chips of `ds` planned with `cfg` (see the file comment).
/// `proposals` (one list per image, or null) enables negative chips. The model must
/// already be on its device; images go there batch by batch. With `dist` (a process group
/// of W ranks, distributed.hpp) every rank calls train() with the same arguments and trains
/// its share of each global batch of o.batch_size chips.
train_result train(FasterRCNN& net, const snip::dataset& ds, const snip::plan_config& cfg,
                   const image_source& source,
                   const std::vector<snip::image_proposals>* proposals,
                   const train_options& o, dist_group* dist = nullptr);

} // namespace snip::train
