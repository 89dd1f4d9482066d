// amp.cpp: loss scaling and the autocast scope (declared in snip/train/amp.hpp).
#include <snip/train/amp.hpp>

#include <ATen/autocast_mode.h>
#include <torch/types.h>

namespace snip::train {

bool loss_scaler::unscale(const std::vector<torch::Tensor>& params) const {
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

void loss_scaler::update(bool finite) {
    if (!finite) {
        scale *= backoff;
        good = 0;
        ++skipped;
    } else if (++good >= interval) {
        scale *= growth;
        good = 0;
    }
}

namespace detail {

autocast_scope::autocast_scope(bool on) : on_(on) {
    if (on_) at::autocast::set_enabled(true);
}

autocast_scope::~autocast_scope() {
    if (on_) {
        at::autocast::clear_cache();
        at::autocast::set_enabled(false);
    }
}

} // namespace detail
} // namespace snip::train
