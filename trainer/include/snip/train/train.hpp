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
// Outputs in out_dir: checkpoint.pt, log.csv (step, epoch, lr, the four losses, the mask
// loss, total, chips/s; rewritten atomically from the history at every log point); the
// programs draw loss.png from it through train_options::on_log.
//
// Steps: the epoch's chip list is padded to whole batches by wrapping round to its first
// chips, so every step trains on exactly batch_size chips. Data-parallel (a dist_group, see
// distributed.hpp): batch_size is the GLOBAL batch; each of W processes trains on its
// batch_size / W chips of every global batch, gradients are averaged, and the run equals a
// single process's up to float summation order. Rank 0 alone reads the checkpoint to resume
// (and broadcasts it) and alone writes the outputs; a resume may use another world size
// with the same global batch.
//
// The parts: options.hpp (train_options, log_row, train_result; the lr schedule), amp.hpp
// (loss scaling, autocast), checkpoint.hpp (the checkpoint format and its durable writing),
// progress.hpp (log.csv, the progress line), loop.hpp (train()).
#pragma once

#include <snip/train/amp.hpp>
#include <snip/train/checkpoint.hpp>
#include <snip/train/data.hpp>
#include <snip/train/detector.hpp>
#include <snip/train/distributed.hpp>
#include <snip/train/loop.hpp>
#include <snip/train/options.hpp>
#include <snip/train/progress.hpp>
#include <snip/train/run.hpp>

#include <snip/core/random.hpp>
#include <snip/io/coco.hpp>
#include <snip/sniper/dataset_plan.hpp>
