// checkpoint.hpp: crash-safe checkpoints (`out_dir/checkpoint.pt`, a LibTorch archive): the
// model's tensors by name, the SGD state, the position in the run, the seed, the CPU
// generator's state, the loss history and the model's identity (detector_identity()). Written
// to a temporary file, flushed to disk (fsync), renamed over the old one and the folder synced
// (detail::write_durably), so a crash leaves the old or the new checkpoint, never a torn one.
// load_checkpoint() checks everything before it assigns anything; errors name the file and
// the field.
#pragma once

#include <snip/train/amp.hpp>
#include <snip/train/detector.hpp>
#include <snip/train/options.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace snip::train {

// ---------------------------------------------------------------------------------------
// Identity and checkpoints

/// @brief The identity of a detector: what a checkpoint must match to load into it.
std::string detector_identity(const detector_options& o);

namespace detail {

/// Writes `bytes` to `path` durably and atomically: path.tmp, fsync, rename, fsync(dir).
void write_durably(const std::string& path, const std::string& bytes);

torch::Tensor history_tensor(const std::vector<log_row>& h);

std::vector<log_row> history_rows(const torch::Tensor& t,
                                  const std::string& path = "checkpoint");

/// The first line of a LibTorch error (without its backtrace), at most 200 characters.
std::string first_line(const char* what);

c10::IValue read_value(torch::serialize::InputArchive& ar, const std::string& key,
                       const std::string& path);

/// Opens the checkpoint archive `path` into `ar`; errors name the file.
void open_checkpoint(torch::serialize::InputArchive& ar, const std::string& path);

/// The checkpoint value `key`, which must be of the kind `is` tests (`want` names it).
template <class Is>
c10::IValue read_typed(torch::serialize::InputArchive& ar, const std::string& key,
                       const std::string& path, Is is, const char* want) {
    c10::IValue v = read_value(ar, key, path);
    if (!is(v)) snip::fail(path, ": ", key, " is of type ", v.tagKind(), ", must be ", want);
    return v;
}
std::string read_string(torch::serialize::InputArchive& ar, const std::string& key,
                               const std::string& path);
std::int64_t read_int(torch::serialize::InputArchive& ar, const std::string& key,
                             const std::string& path, std::int64_t lo = 0,
                             std::int64_t hi = std::numeric_limits<std::int64_t>::max());

} // namespace detail

/// @brief Where a training run stands (what a checkpoint holds besides the tensors).
struct train_position {
    int epoch = 0;            ///< current epoch
    std::int64_t batch = 0;   ///< next batch of that epoch
    std::int64_t step = 0;    ///< global steps done
};

/// @brief Writes a checkpoint durably (see the file comment). `setup` names the training
/// setup a resume must match (seed, batch, dataset size, ...).
void save_checkpoint(const std::string& path, FasterRCNN& net, torch::optim::SGD* sgd,
                     const train_position& pos, const std::string& setup,
                     const std::vector<log_row>& history,
                     const std::vector<int>& category_ids,
                     const loss_scaler& scaler = {});

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
checkpoint_info load_checkpoint(const std::string& path, FasterRCNN& net,
                                torch::optim::SGD* sgd = nullptr,
                                bool restore_rng = false,
                                const std::string* expect_setup = nullptr);

/// @brief The model a checkpoint holds, built from its identity (options_from_identity())
/// and loaded, reading the file once. `info`, when given, receives what load_checkpoint
/// returns.
FasterRCNN load_model(const std::string& path, checkpoint_info* info = nullptr);

/// @brief The model identity stored in a checkpoint (without loading its tensors).
std::string checkpoint_identity(const std::string& path);

/// @brief The detector_options a checkpoint identity (detector_identity()) describes, with
/// the default anchors (SNIPER's 21) and everything not in the identity at its default.
/// @throws snip::error naming `where` when the text is not an identity.
detector_options options_from_identity(const std::string& id, const std::string& where);

} // namespace snip::train
