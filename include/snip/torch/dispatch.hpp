// torch/dispatch.hpp: what every LibTorch op of snip shares. The device dispatch is written
// once here (detail::on_device): layout checks of the tensor arguments, the dtype dispatch
// (float32 / float64), and either the CPU body (snip's strided views, nothing copied) or,
// for CUDA tensors under SNIP_TORCH_CUDA, the CUDA body (one device, made current;
// contiguous inputs; the compiled launchers of cuda/launchers.hpp on the current stream).
// The op headers (torch/roi_align.hpp, torch/roi_pool.hpp, torch/nms.hpp, torch/box_iou.hpp,
// torch/box_coder.hpp) supply the two bodies; <snip/torch/ops.hpp> includes them all and
// documents the ops' conventions.
#pragma once

#include <snip/adapt/torch.hpp>
#include <snip/core/error.hpp>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#ifdef SNIP_TORCH_CUDA
#include <snip/cuda/launchers.hpp>

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

namespace snip::torch_ops {

/// @brief The output size of RoIAlign / RoIPool in bins: `7` or `{7, 7}` (height, width),
/// as torchvision's `output_size`.
struct output_size {
    std::int64_t h = 7, w = 7;
    output_size(std::int64_t side) : h(side), w(side) {} // NOLINT: implicit, like an int in Python
    output_size(std::int64_t height, std::int64_t width) : h(height), w(width) {}
};

/// @brief Threads the CPU ops use: at::get_num_threads().
inline unsigned op_threads() {
    const int n = at::get_num_threads();
    return n > 0 ? static_cast<unsigned>(n) : 1u;
}

namespace detail {

using snip::detail::check_torch_layout;
using snip::detail::check_torch_shape;
using snip::detail::torch_describe;

/// A tensor argument of an op and its role in error messages ("input", "rois"): the
/// messages name it "op: role".
struct arg {
    const at::Tensor& tensor;
    std::string_view name;
};

/// Calls fn(T{}) with T = float or double, the dtype of `t` (the argument `name` of `op`,
/// whose expected shape is `shape`).
template <class Fn>
decltype(auto) dispatch_floating(const at::Tensor& t, std::string_view op, std::string_view name,
                                 std::string_view shape, Fn&& fn) {
    switch (t.scalar_type()) {
    case c10::ScalarType::Float:
        return fn(float{});
    case c10::ScalarType::Double:
        return fn(double{});
    default:
        fail(op, ": ", name, " must be a ", shape, " float32 or float64 tensor, got ",
             detail::torch_describe(t));
    }
}

/// check_torch_layout(a, "op: name"), the name built only for the error.
inline void check_layout(std::string_view op, const arg& a) {
    const at::Tensor& t = a.tensor;
    if (!t.defined() || t.layout() != c10::kStrided || t.is_neg())
        detail::check_torch_layout(t, snip::concat(op, ": ", a.name));
}

[[noreturn]] inline void no_cuda(std::string_view op, const at::Tensor& t) {
    fail(op, ": got a ", t.device().str(),
         " tensor, but snip's LibTorch ops were compiled without CUDA (define SNIP_TORCH_CUDA "
         "and link snip::cuda_launchers and a CUDA LibTorch: SNIP_ENABLE_CUDA=ON does it)");
}

#ifdef SNIP_TORCH_CUDA

inline void same_cuda_device(std::string_view op, const arg& a, const arg& b) {
    require(a.tensor.is_cuda() && b.tensor.is_cuda() && a.tensor.device() == b.tensor.device(), op,
            ": ", a.name, " and ", b.name, " must be on the same CUDA device, got ",
            a.tensor.device().str(), " and ", b.tensor.device().str());
}

/// A launcher's result (a cudaError_t value) turned into snip::error.
inline void check_cuda(std::string_view op, int e) {
    if (e != snip::cuda::launchers::success)
        fail(op, ": CUDA error: ", snip::cuda::launchers::error_string(e));
}

/// The current CUDA stream of the current device, as the launchers take it.
inline snip::cuda::launchers::stream_t cuda_stream() {
    return at::cuda::getCurrentCUDAStream().stream();
}

#else

/// The CUDA body of an op in a build without SNIP_TORCH_CUDA: never called (on_device
/// throws the error of a CPU-only build first).
struct cpu_only {};

#endif // SNIP_TORCH_CUDA

/// cuda(tag, args[0].tensor.contiguous(), ..., args[N - 1].tensor.contiguous()).
template <class Cuda, class Tag, std::size_t N, std::size_t... I>
decltype(auto) call_contiguous(Cuda& cuda, Tag tag, const arg (&args)[N],
                               std::index_sequence<I...>) {
    return cuda(tag, args[I].tensor.contiguous()...);
}

/// @brief The device dispatch of every op. `args` are the op's tensor arguments; the first
/// one's dtype (float32 or float64, else an error naming `lead_shape`) is T.
///  1. Every argument must be defined, strided and not lazily negated.
///  2. When any argument is a CUDA tensor: with SNIP_TORCH_CUDA, all must be on the first
///     one's CUDA device, which becomes the current device, and `cuda(T{}, tensors...)` runs
///     on the arguments made contiguous (copied only when they are not), in order; the body
///     checks dtypes and shapes and calls the launchers on detail::cuda_stream(). Without
///     SNIP_TORCH_CUDA: a snip::error saying that the ops were compiled without CUDA.
///  3. Otherwise `cpu(T{})`, which reads the arguments in place through snip's views (they
///     check the device, dtype and shape of each).
template <class Cpu, class Cuda, std::size_t N>
decltype(auto) on_device(std::string_view op, std::string_view lead_shape, Cpu&& cpu,
                         [[maybe_unused]] Cuda&& cuda, const arg (&args)[N]) {
    static_assert(N > 0);
    const at::Tensor* gpu = nullptr;
    for (const arg& a : args) {
        check_layout(op, a);
        if (gpu == nullptr && a.tensor.is_cuda()) gpu = &a.tensor;
    }
    const arg& lead = args[0];
    if (gpu != nullptr) {
#ifdef SNIP_TORCH_CUDA
        return detail::dispatch_floating(lead.tensor, op, lead.name, lead_shape, [&](auto tag) {
            for (std::size_t i = 1; i < N; ++i)
                same_cuda_device(op, lead, args[i]);
            const c10::cuda::CUDAGuard guard(lead.tensor.device());
            return call_contiguous(cuda, tag, args, std::make_index_sequence<N>{});
        });
#else
        detail::no_cuda(op, *gpu);
#endif
    }
    return detail::dispatch_floating(lead.tensor, op, lead.name, lead_shape,
                                     std::forward<Cpu>(cpu));
}

inline int to_int(std::string_view op, const char* what, std::int64_t v, std::int64_t lo) {
    require(v >= lo && v <= INT_MAX, op, ": ", what, " must be in [", lo, ", 2^31 - 1], got ", v);
    return static_cast<int>(v);
}

/// N, C, H, W as the launchers take them (ints).
struct nchw {
    int n, c, h, w;
};

inline nchw to_nchw(std::string_view op, at::IntArrayRef sizes) {
    return {to_int(op, "N", sizes[0], 0), to_int(op, "C", sizes[1], 0),
            to_int(op, "H", sizes[2], 0), to_int(op, "W", sizes[3], 0)};
}

inline void check_input_sizes(std::string_view op, at::IntArrayRef sizes) {
    require(sizes.size() == 4 && sizes[0] >= 0 && sizes[1] >= 0 && sizes[2] >= 0 && sizes[3] >= 0,
            op, ": input_sizes must be 4 extents N, C, H, W >= 0, got ", sizes.size(), " values");
}

/// A new zero tensor, zeroed by the calling thread. (at::zeros fills large tensors on ATen's
/// OpenMP pool, whose idle workers then spin for milliseconds and compete for the cores with
/// the std::threads of the snip op that follows.)
template <class T>
at::Tensor zeros_here(at::IntArrayRef sizes, const at::TensorOptions& options) {
    at::Tensor t = at::empty(sizes, options);
    std::fill_n(t.data_ptr<T>(), t.numel(), T(0));
    return t;
}

/// A 1-D tensor of n elements of type T on the CPU, contiguous (copied only when strided).
template <class T>
at::Tensor contiguous_vector(const at::Tensor& t, std::string_view name, std::int64_t n) {
    snip::detail::check_torch_view<T>(t, name, 1, {n, -1, -1, -1}, snip::concat("[", n, "]"));
    return t.is_contiguous() ? t : t.contiguous();
}

template <class T>
std::span<const T> as_span(const at::Tensor& t) {
    return {static_cast<const T*>(t.data_ptr()), static_cast<std::size_t>(t.numel())};
}

} // namespace detail

} // namespace snip::torch_ops
