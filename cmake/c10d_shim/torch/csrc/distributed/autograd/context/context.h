// Debian's libtorch-dev ships c10d's reducer.hpp (the DDP gradient Reducer, compiled into
// libtorch_cpu) but not the distributed-autograd header it includes. reducer.hpp only names
// two of its types: the gradient callback and the context pointer (a shared_ptr member of
// Reducer). This header declares exactly those, as LibTorch 1.13 defines them, so the
// Reducer's layout is unchanged; snip never calls distributed autograd. Used only when
// LibTorch's own header is absent (examples/sniper_trainer/CMakeLists.txt).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

namespace torch::distributed::autograd {

class DistAutogradContext {
public:
    using GradCallback = std::function<bool(at::Tensor&)>;
};
using ContextPtr = std::shared_ptr<DistAutogradContext>;

} // namespace torch::distributed::autograd
