// snip::torch_ops::deform_conv2d against torchvision 0.14's compiled deform_conv2d (use_mask =
// false), called through the dispatcher after loading torchvision's library
// (SNIP_TORCHVISION_OPS): forward (torchvision::deform_conv2d) and the four gradients
// (torchvision::_deform_conv2d_backward: input, weight, offset, bias) on problems with groups,
// offset groups, stride 2, dilation 2, padding, offsets pushing samples outside the map and
// integral offsets (samples on pixels), float32 and float64. Tolerances: 1e-5 forward, 1e-4
// backward (absolute). Each case prints its largest differences. Skips (printing
// "[skip] torchvision ops not found") when the library is absent.
#include <snip/torch/ops.hpp>

#include <ATen/core/dispatch/Dispatcher.h>

// LibTorch first: its glog headers define a one-argument CHECK, which doctest's (included
// by the test headers below) must replace, not the other way round.
#include "torch_test_util.hpp"
#include "test_util.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <tuple>
#include <vector>

namespace {

namespace ops = snip::torch_ops;

using torch_test::have_torchvision;
using torch_test::tv_op;

struct config {
    std::int64_t n, c, h, w, o, kh, kw;
    std::int64_t sh, sw, ph, pw, dh, dw, groups, offset_groups;
    std::int64_t out_h() const { return (h + 2 * ph - (dh * (kh - 1) + 1)) / sh + 1; }
    std::int64_t out_w() const { return (w + 2 * pw - (dw * (kw - 1) + 1)) / sw + 1; }
};

/// torchvision::deform_conv2d without a mask (torchvision's Python passes an N x 1 zero mask
/// and a zero bias when none is given).
at::Tensor tv_deform_conv2d(const config& k, const at::Tensor& x, const at::Tensor& w,
                            const at::Tensor& off, const at::Tensor& b) {
    static const auto op =
        tv_op("torchvision::deform_conv2d")
            .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                              const at::Tensor&, const at::Tensor&, std::int64_t, std::int64_t,
                              std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                              std::int64_t, std::int64_t, bool)>();
    return op.call(x, w, off, at::zeros({x.size(0), 1}, x.options()), b, k.sh, k.sw, k.ph, k.pw,
                   k.dh, k.dw, k.groups, k.offset_groups, false);
}

/// torchvision::_deform_conv2d_backward: (grad_input, grad_weight, grad_offset, grad_mask,
/// grad_bias).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
tv_deform_conv2d_backward(const config& k, const at::Tensor& grad, const at::Tensor& x,
                          const at::Tensor& w, const at::Tensor& off, const at::Tensor& b) {
    static const auto op =
        tv_op("torchvision::_deform_conv2d_backward")
            .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
                const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                const at::Tensor&, const at::Tensor&, std::int64_t, std::int64_t, std::int64_t,
                std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, bool)>();
    return op.call(grad, x, w, off, at::zeros({x.size(0), 1}, x.options()), b, k.sh, k.sw, k.ph,
                   k.pw, k.dh, k.dw, k.groups, k.offset_groups, false);
}

double max_abs(const at::Tensor& a, const at::Tensor& b) {
    REQUIRE(a.sizes() == b.sizes());
    if (a.numel() == 0) return 0.0;
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

} // namespace

TEST_CASE("torchvision agreement: deform_conv2d forward and backward (input, weight, offset, "
          "bias)") {
    if (!have_torchvision()) return;
    const std::vector<config> configs = {
        {2, 8, 12, 11, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 8, 15, 13, 8, 3, 3, 2, 2, 2, 2, 2, 2, 2, 4},  // groups, offset groups, stride, dilation
        {3, 6, 9, 10, 9, 3, 2, 1, 2, 0, 1, 1, 2, 3, 3},   // rectangular kernel, mixed settings
        {2, 16, 16, 16, 16, 3, 3, 1, 1, 2, 2, 2, 2, 1, 4}, // a res5-like conv2 in miniature
    };
    for (const at::ScalarType dtype : {at::kFloat, at::kDouble}) {
        double worst[5] = {0, 0, 0, 0, 0};
        int cases = 0;
        for (std::size_t ci = 0; ci < configs.size(); ++ci)
            for (const double spread : {0.0, 1.0, 5.0}) { // 5: many samples outside the map
                const config& k = configs[ci];
                CAPTURE(ci);
                CAPTURE(spread);
                at::manual_seed(std::uint64_t(100 + cases));
                const at::Tensor x = at::randn({k.n, k.c, k.h, k.w}, dtype);
                const at::Tensor w = at::randn({k.o, k.c / k.groups, k.kh, k.kw}, dtype) * 0.3;
                at::Tensor off =
                    at::randn({k.n, 2 * k.offset_groups * k.kh * k.kw, k.out_h(), k.out_w()},
                              dtype) *
                    spread;
                // every third offset integral: samples exactly on pixels and on the border
                off = at::where(at::arange(off.numel()).reshape(off.sizes()) % 3 == 0,
                                off.round(), off);
                const at::Tensor b = at::randn({k.o}, dtype);
                const at::Tensor want = tv_deform_conv2d(k, x, w, off, b);
                REQUIRE(want.abs().max().item<double>() > 0.1); // not a vacuous comparison
                std::vector<at::Tensor> v;
                for (const at::Tensor& t : {x, w, off, b})
                    v.push_back(t.detach().requires_grad_(true));
                const at::Tensor got = ops::deform_conv2d(v[0], v[1], v[2], v[3], k.sh, k.sw,
                                                          k.ph, k.pw, k.dh, k.dw, k.groups,
                                                          k.offset_groups);
                const double fwd = max_abs(got, want);
                CHECK(fwd <= 1e-5);
                const at::Tensor grad = at::randn(want.sizes(), dtype);
                got.backward(grad);
                const auto [gi, gw, goff, gmask, gb] =
                    tv_deform_conv2d_backward(k, grad, x, w, off, b);
                const double d[4] = {max_abs(v[0].grad(), gi), max_abs(v[1].grad(), gw),
                                     max_abs(v[2].grad(), goff), max_abs(v[3].grad(), gb)};
                for (int j = 0; j < 4; ++j)
                    CHECK(d[j] <= 1e-4);
                worst[0] = std::max(worst[0], fwd);
                for (int j = 0; j < 4; ++j)
                    worst[j + 1] = std::max(worst[j + 1], d[j]);
                ++cases;
            }
        std::printf("[torchvision] deform_conv2d %s: %d cases, max |difference| forward %.3g, "
                    "grad input %.3g, weight %.3g, offset %.3g, bias %.3g\n",
                    dtype == at::kFloat ? "float32" : "float64", cases, worst[0], worst[1],
                    worst[2], worst[3], worst[4]);
    }
}
