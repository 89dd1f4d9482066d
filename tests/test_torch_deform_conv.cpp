// torch/deform_conv.hpp: snip::torch_ops::deform_conv2d (snip's columns, LibTorch's GEMM)
// against the BLAS-free snip::deform_conv2d of ops/deform_conv.hpp (itself checked against a
// direct reference in test_deform_conv.cpp) on grouped, offset-grouped, strided, dilated and
// padded problems with strided tensors; zero offsets against at::conv2d; autograd gradients
// against snip::deform_conv2d_backward and float64 central finite differences; thread-count
// independence; empty batches; the errors.
#include <snip/ops/deform_conv.hpp>
#include <snip/torch/ops.hpp>

#include <ATen/Parallel.h>
#include <torch/autograd.h>

// LibTorch first: its glog headers define a one-argument CHECK, which doctest's (included
// by the test headers below) must replace, not the other way round.
#include "test_util.hpp"
#include "torch_test_util.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace {

namespace ops = snip::torch_ops;

struct config {
    std::int64_t n, c, h, w, o, kh, kw;
    std::int64_t sh, sw, ph, pw, dh, dw, groups, offset_groups;
    std::int64_t out_h() const { return (h + 2 * ph - (dh * (kh - 1) + 1)) / sh + 1; }
    std::int64_t out_w() const { return (w + 2 * pw - (dw * (kw - 1) + 1)) / sw + 1; }
    snip::deform_conv_options options() const {
        snip::deform_conv_options o;
        o.stride_h = int(sh), o.stride_w = int(sw), o.pad_h = int(ph), o.pad_w = int(pw);
        o.dilation_h = int(dh), o.dilation_w = int(dw), o.groups = int(groups);
        o.offset_groups = int(offset_groups);
        return o;
    }
};

const std::vector<config>& configs() {
    static const std::vector<config> c = {
        {2, 4, 9, 8, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 8, 12, 11, 4, 3, 3, 2, 2, 2, 2, 2, 2, 2, 4},
        {2, 6, 10, 9, 6, 3, 2, 1, 2, 0, 1, 1, 2, 3, 3},
        {3, 4, 6, 7, 8, 1, 1, 1, 1, 0, 0, 1, 1, 4, 2},
    };
    return c;
}

struct inputs {
    at::Tensor x, w, off, b;
};

inputs make_inputs(const config& k, at::ScalarType dtype, double spread, std::uint64_t seed) {
    at::manual_seed(seed);
    return {at::randn({k.n, k.c, k.h, k.w}, dtype), at::randn({k.o, k.c / k.groups, k.kh, k.kw}, dtype),
            at::randn({k.n, 2 * k.offset_groups * k.kh * k.kw, k.out_h(), k.out_w()}, dtype) * spread,
            at::randn({k.o}, dtype)};
}

at::Tensor call(const config& k, const at::Tensor& x, const at::Tensor& w, const at::Tensor& off,
                const at::Tensor& b) {
    return ops::deform_conv2d(x, w, off, b, k.sh, k.sw, k.ph, k.pw, k.dh, k.dw, k.groups,
                              k.offset_groups);
}

/// snip's BLAS-free CPU op on the same tensors (contiguous copies).
template <class T>
at::Tensor core_forward(const config& k, const inputs& in, bool bias) {
    const at::Tensor x = in.x.contiguous(), w = in.w.contiguous(), off = in.off.contiguous();
    const at::Tensor b = in.b.contiguous();
    at::Tensor out = at::empty({k.n, k.o, k.out_h(), k.out_w()}, x.options());
    snip::deform_conv2d(snip::as_feature_view<const T>(x), snip::as_feature_view<const T>(w),
                        snip::as_feature_view<const T>(off),
                        bias ? std::span<const T>(b.data_ptr<T>(), std::size_t(k.o))
                             : std::span<const T>(),
                        snip::as_feature_view<T>(out), k.options());
    return out;
}

double max_abs(const at::Tensor& a, const at::Tensor& b) {
    REQUIRE(a.sizes() == b.sizes());
    return a.numel() == 0 ? 0.0 : (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

template <class T>
constexpr double tolerance() {
    return sizeof(T) == 4 ? 1e-4 : 1e-11;
}

} // namespace

TEST_CASE_TEMPLATE("torch deform_conv2d: forward equals snip's BLAS-free op, strided tensors too",
                   T, float, double) {
    const auto dtype = std::is_same_v<T, float> ? at::kFloat : at::kDouble;
    int i = 0;
    for (const config& k : configs())
        for (const double spread : {0.5, 4.0}) {
            CAPTURE(i);
            const inputs in = make_inputs(k, dtype, spread, 10 + std::uint64_t(i));
            const bool bias = i % 2 == 0;
            const at::Tensor want = core_forward<T>(k, in, bias);
            const at::Tensor b = bias ? in.b : at::Tensor();
            CHECK(max_abs(call(k, in.x, in.w, in.off, b), want) <= tolerance<T>());
            // channels-last input, transposed-storage weight, offsets sliced out of a wider tensor
            const at::Tensor x = in.x.contiguous(at::MemoryFormat::ChannelsLast);
            const at::Tensor w = in.w.transpose(0, 1).contiguous().transpose(0, 1);
            const at::Tensor off =
                at::cat({in.off, at::zeros_like(in.off)}, 3).slice(3, 0, in.off.size(3));
            REQUIRE(!off.is_contiguous());
            CHECK(max_abs(call(k, x, w, off, b), want) <= tolerance<T>());
            ++i;
        }
}

TEST_CASE("torch deform_conv2d: zero offsets give at::conv2d (dilated, strided, grouped, padded)") {
    for (const config& k : configs()) {
        const inputs in = make_inputs(k, at::kDouble, 0.0, 3);
        const at::Tensor want = at::conv2d(in.x, in.w, in.b, {k.sh, k.sw}, {k.ph, k.pw},
                                           {k.dh, k.dw}, k.groups);
        CHECK(max_abs(call(k, in.x, in.w, in.off, in.b), want) <= 1e-12);
    }
}

TEST_CASE_TEMPLATE("torch deform_conv2d: autograd gradients equal snip's backward", T, float,
                   double) {
    const auto dtype = std::is_same_v<T, float> ? at::kFloat : at::kDouble;
    int i = 0;
    for (const config& k : configs()) {
        CAPTURE(i);
        const inputs in = make_inputs(k, dtype, 2.0, 20 + std::uint64_t(i));
        std::vector<at::Tensor> v;
        for (const at::Tensor& t : {in.x, in.w, in.off, in.b})
            v.push_back(t.detach().requires_grad_(true));
        const at::Tensor y = call(k, v[0], v[1], v[2], v[3]);
        const at::Tensor g = at::randn(y.sizes(), dtype);
        y.backward(g);
        at::Tensor gi = at::zeros_like(in.x), gw = at::zeros_like(in.w), goff = at::zeros_like(in.off);
        at::Tensor gb = at::zeros_like(in.b);
        snip::deform_conv2d_backward(snip::as_feature_view<const T>(g),
                                     snip::as_feature_view<const T>(in.x),
                                     snip::as_feature_view<const T>(in.w),
                                     snip::as_feature_view<const T>(in.off),
                                     snip::as_feature_view<T>(gi), snip::as_feature_view<T>(gw),
                                     snip::as_feature_view<T>(goff),
                                     std::span<T>(gb.data_ptr<T>(), std::size_t(k.o)), k.options());
        CHECK(max_abs(v[0].grad(), gi) <= tolerance<T>());
        CHECK(max_abs(v[1].grad(), gw) <= 10 * tolerance<T>());
        CHECK(max_abs(v[2].grad(), goff) <= tolerance<T>());
        CHECK(max_abs(v[3].grad(), gb) <= tolerance<T>());
        ++i;
    }
}

TEST_CASE("torch deform_conv2d: float64 central finite differences through autograd") {
    const config k{1, 4, 6, 5, 4, 3, 3, 1, 2, 1, 1, 2, 1, 2, 2};
    const inputs in = make_inputs(k, at::kDouble, 1.5, 5);
    std::vector<at::Tensor> v;
    for (const at::Tensor& t : {in.x, in.w, in.off, in.b})
        v.push_back(t.detach().requires_grad_(true));
    const at::Tensor gout = at::randn({k.n, k.o, k.out_h(), k.out_w()}, at::kDouble);
    (call(k, v[0], v[1], v[2], v[3]) * gout).sum().backward();
    const char* names[4] = {"input", "weight", "offset", "bias"};
    const double h = 1e-6;
    for (std::size_t t = 0; t < 4; ++t) {
        CAPTURE(names[t]);
        std::vector<at::Tensor> p = {in.x.clone(), in.w.clone(), in.off.clone(), in.b.clone()};
        const at::Tensor flat = p[t].view({-1});
        const at::Tensor grad = v[t].grad().reshape({-1});
        double worst = 0;
        for (std::int64_t e = 0; e < flat.numel(); ++e) {
            const double x0 = flat[e].item<double>();
            flat[e] = x0 + h;
            const double up = (call(k, p[0], p[1], p[2], p[3]) * gout).sum().item<double>();
            flat[e] = x0 - h;
            const double down = (call(k, p[0], p[1], p[2], p[3]) * gout).sum().item<double>();
            flat[e] = x0;
            const double g = grad[e].item<double>();
            worst = std::max(worst, std::fabs((up - down) / (2 * h) - g) / (1 + std::fabs(g)));
        }
        CHECK(worst <= 1e-6);
    }
}

TEST_CASE("torch deform_conv2d: results do not depend on the thread count") {
    const config k = configs()[1];
    const inputs in = make_inputs(k, at::kDouble, 3.0, 7);
    const int threads = at::get_num_threads();
    auto run = [&] {
        std::vector<at::Tensor> v;
        for (const at::Tensor& t : {in.x, in.w, in.off, in.b})
            v.push_back(t.detach().requires_grad_(true));
        const at::Tensor y = call(k, v[0], v[1], v[2], v[3]);
        y.backward(at::ones_like(y));
        return std::vector<at::Tensor>{y.detach(), v[0].grad(), v[2].grad()};
    };
    at::set_num_threads(1);
    const auto one = run();
    at::set_num_threads(3);
    const auto three = run();
    at::set_num_threads(threads);
    // The input and offset gradients are snip's alone: bit-identical. (The forward and the
    // weight gradient go through LibTorch's GEMM, whose blocking may follow the threads.)
    CHECK(at::equal(one[1], three[1]));
    CHECK(at::equal(one[2], three[2]));
    CHECK(max_abs(one[0], three[0]) <= 1e-12);
}

TEST_CASE("torch deform_conv2d: an empty batch, no bias, and no second-order gradient") {
    const config k = configs()[0];
    const at::Tensor x = at::randn({0, 4, 9, 8}).requires_grad_(true);
    const at::Tensor w = at::randn({6, 4, 3, 3}).requires_grad_(true);
    const at::Tensor off = at::zeros({0, 18, 9, 8}).requires_grad_(true);
    const at::Tensor y = call(k, x, w, off, at::Tensor());
    CHECK(y.sizes() == at::IntArrayRef({0, 6, 9, 8}));
    y.sum().backward();
    CHECK(w.grad().sizes() == w.sizes());
    CHECK(at::equal(w.grad(), at::zeros_like(w)));

    const inputs in = make_inputs(k, at::kDouble, 1.0, 9);
    const at::Tensor xg = in.x.detach().requires_grad_(true);
    const at::Tensor out = call(k, xg, in.w, in.off, at::Tensor());
    const at::Tensor gx = torch::autograd::grad({out.sum()}, {xg}, {}, true, true)[0];
    CHECK(snip_test::error_of([&] { gx.sum().backward(); }).find(
              "deform_conv2d: second-order gradients (the gradient of the backward) are not "
              "supported") != std::string::npos);
}

TEST_CASE("torch deform_conv2d: bad input throws snip::error naming the tensor and the value") {
    const config k = configs()[0];
    const inputs in = make_inputs(k, at::kFloat, 1.0, 11);
    auto msg = [&](const at::Tensor& x, const at::Tensor& w, const at::Tensor& off,
                   const at::Tensor& b, std::int64_t stride = 1, std::int64_t groups = 1) {
        return snip_test::error_of([&] {
            (void)ops::deform_conv2d(x, w, off, b, stride, 1, 1, 1, 1, 1, groups, 1);
        });
    };
    CHECK(msg(in.x, in.w, in.off, in.b, 0) == "deform_conv2d: stride_h must be >= 1, got 0");
    CHECK(msg(in.x, in.w, in.off, in.b, 1, 4) ==
          "deform_conv2d: the weight's 6 output channels are not divisible by groups = 4");
    CHECK(msg(in.x, in.w.to(at::kDouble), in.off, in.b) ==
          "deform_conv2d: weight must be a O x C/groups x kernel_h x kernel_w float32 tensor, got "
          "float64 [6, 4, 3, 3]");
    CHECK(msg(in.x, in.w, in.off.slice(2, 0, 8), in.b) ==
          "deform_conv2d: offset has extents (2, 18, 8, 8), expected (2, 18, 9, 8)");
    CHECK(msg(in.x, in.w, in.off, in.b.slice(0, 0, 5)) ==
          "deform_conv2d: bias has 5 elements, expected O = 6");
    CHECK(msg(in.x, in.w, in.off, in.b.view({2, 3})) ==
          "deform_conv2d: bias must be a [O] float32 tensor, got float32 [2, 3]");
    CHECK(msg(in.x.select(0, 0), in.w, in.off, in.b) ==
          "deform_conv2d: input must be a N x C x H x W float32 tensor, got float32 [4, 9, 8]");
    CHECK(msg(in.x.to(at::kInt), in.w, in.off, in.b) ==
          "deform_conv2d: input must be a N x C x H x W float32 or float64 tensor, got int32 "
          "[2, 4, 9, 8]");
    CHECK(snip_test::error_of([&] {
              (void)ops::deform_conv2d(in.x, in.w, in.off, in.b, 1, 1, 1, 1, 1, 1, 1,
                                       std::int64_t(1) << 40);
          }) == "deform_conv2d: offset_groups must be in [-2147483648, 2^31 - 1], got "
                "1099511627776");
}
