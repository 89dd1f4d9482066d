// amp.hpp: mixed precision: dynamic loss scaling (loss_scaler, the rule of
// torch.cuda.amp.GradScaler) and LibTorch's autocast for one scope (detail::autocast_scope).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace snip::train {

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
    bool unscale(const std::vector<torch::Tensor>& params) const;
    /// Records the outcome of a step (after unscale()).
    void update(bool finite);
};

namespace detail {

/// Autocast on for this scope (CUDA float16), off and its cast cache cleared after.
class autocast_scope {
public:
    explicit autocast_scope(bool on);
    ~autocast_scope();
    autocast_scope(const autocast_scope&) = delete;
    autocast_scope& operator=(const autocast_scope&) = delete;

private:
    bool on_;
};

} // namespace detail

} // namespace snip::train
