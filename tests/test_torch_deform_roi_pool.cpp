// torch/deform_roi_pool.hpp: the LibTorch op deform_roi_pool against snip's CPU op
// (ops/deform_roi_pool.hpp, tested against a reference in test_deform_roi_pool.cpp), its
// autograd (gradients for the input and the offsets, none for the RoIs, only those needed),
// SNIPER's two-pass head with offsets predicted by a linear layer, and the same op through
// the dispatcher (snip::deform_roi_pool of the library snip::torch_ops): equal outputs,
// equal gradients, the same errors.
#include <snip/torch/library.hpp>
#include <snip/torch/ops.hpp>

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>

// LibTorch first: its glog headers define a one-argument CHECK, which doctest's (included
// by the test headers below) must replace, not the other way round.
#include "test_util.hpp"
#include "torch_test_util.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace {

namespace ops = snip::torch_ops;
using snip_test::error_of;
using torch_test::make_rois;

at::Tensor d_deform_roi_pool(const at::Tensor& x, const at::Tensor& rois,
                             const c10::optional<at::Tensor>& offset, double scale,
                             std::int64_t output_dim, std::int64_t group, std::int64_t pooled,
                             std::int64_t part, std::int64_t samples, double trans_std) {
    using fn =
        at::Tensor(const at::Tensor&, const at::Tensor&, const c10::optional<at::Tensor>&, double,
                   std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, double);
    static const auto op =
        c10::Dispatcher::singleton().findSchemaOrThrow("snip::deform_roi_pool", "").typed<fn>();
    return op.call(x, rois, offset, scale, output_dim, group, pooled, part, samples, trans_std);
}

template <class T>
std::vector<T> to_vector(const at::Tensor& t) {
    const at::Tensor c = t.contiguous();
    return std::vector<T>(c.data_ptr<T>(), c.data_ptr<T>() + c.numel());
}

} // namespace

TEST_CASE_TEMPLATE("torch deform_roi_pool: equals snip's CPU op, forward and gradients", T, float,
                   double) {
    const auto dtype = std::is_same_v<T, float> ? at::kFloat : at::kDouble;
    at::manual_seed(41);
    // D 3, G 2: 12 channels; 2 offset classes are not allowed for D 3, so 1 and 3.
    const at::Tensor x = at::randn({2, 12, 9, 11}, dtype);
    const at::Tensor rois = make_rois(14, 2, 22, 18, 7, dtype);
    for (const std::int64_t classes : {0, 1, 3}) {
        CAPTURE(classes);
        const at::Tensor off = classes ? at::randn({14, 2 * classes, 3, 3}, dtype) : at::Tensor();
        const at::Tensor xg = x.detach().requires_grad_(true);
        const at::Tensor og = classes ? off.detach().requires_grad_(true) : at::Tensor();
        const at::Tensor y = ops::deform_roi_pool(xg, rois, og, 0.5, 3, 2, 3, 0, 2, 0.2);
        CHECK(y.sizes() == at::IntArrayRef({14, 3, 3, 3}));
        REQUIRE(y.requires_grad());

        snip::deform_roi_pool_options o;
        o.spatial_scale = 0.5;
        o.output_dim = 3;
        o.group_size = 2;
        o.pooled_size = 3;
        o.sample_per_part = 2;
        o.trans_std = 0.2;
        o.no_trans = classes == 0;
        const auto fv = snip::as_feature_view<const T>(x);
        const auto rv = snip::as_roi_view<const T>(rois);
        const auto ov =
            classes ? snip::as_feature_view<const T>(off) : snip::feature_view<const T>();
        CHECK(to_vector<T>(y.detach()) == snip::deform_roi_pool(fv, rv, ov, o, 1));

        const at::Tensor w = at::randn(y.sizes(), dtype);
        (y * w).sum().backward();
        const auto want =
            snip::deform_roi_pool_backward(snip::as_feature_view<const T>(w), fv, rv, ov, o, 1);
        CHECK(to_vector<T>(xg.grad()) == want.features);
        if (classes) CHECK(to_vector<T>(og.grad()) == want.offsets);
    }
}

TEST_CASE("torch deform_roi_pool: SNIPER's head, offsets from a linear layer, only the needed "
          "gradients") {
    at::manual_seed(5);
    // A 64 x 64 chip at stride 16: 256 x 4 x 4 features; a first pass without offsets, an FC
    // predicting K x 98 offsets reshaped to K x 2 x 7 x 7, a second pass with trans_std 0.1.
    const at::Tensor feats = at::randn({1, 256, 4, 4}).requires_grad_(true);
    const at::Tensor rois = make_rois(6, 1, 64, 64, 3, at::kFloat);
    const at::Tensor a = ops::deform_roi_pool(feats, rois, {}, 1.0 / 16, 256, 1, 7, 7, 4, 0.1);
    CHECK(a.sizes() == at::IntArrayRef({6, 256, 7, 7}));
    const at::Tensor fc_w = (at::randn({98, 256 * 49}) * 0.01).requires_grad_(true);
    const at::Tensor off = at::linear(a.flatten(1), fc_w).reshape({-1, 2, 7, 7});
    const at::Tensor y = ops::deform_roi_pool(feats, rois, off, 1.0 / 16, 256, 1, 7, 7, 4, 0.1);
    y.pow(2).sum().backward();
    REQUIRE(feats.grad().defined());
    REQUIRE(fc_w.grad().defined());
    CHECK(feats.grad().abs().sum().item<float>() > 0);
    CHECK(fc_w.grad().abs().sum().item<float>() > 0); // through the offsets' gradient

    // Offsets only: the input does not require grad, the offsets' gradient still flows.
    const at::Tensor fixed = feats.detach();
    const at::Tensor o2 = off.detach().requires_grad_(true);
    const at::Tensor g = torch::autograd::grad(
        {ops::deform_roi_pool(fixed, rois, o2, 1.0 / 16, 256, 1, 7, 7, 4, 0.1).sum()}, {o2})[0];
    CHECK(g.sizes() == o2.sizes());
    // The input only (offsets not requiring grad).
    const at::Tensor x2 = feats.detach().requires_grad_(true);
    const at::Tensor gx = torch::autograd::grad(
        {ops::deform_roi_pool(x2, rois, off.detach(), 1.0 / 16, 256, 1, 7, 7, 4, 0.1).sum()},
        {x2})[0];
    CHECK(gx.sizes() == x2.sizes());
    // The RoIs get no gradient.
    const at::Tensor r2 = rois.detach().requires_grad_(true);
    const at::Tensor x3 = feats.detach().requires_grad_(true);
    ops::deform_roi_pool(x3, r2, {}, 1.0 / 16, 256, 1, 7, 7, 4, 0.1).sum().backward();
    CHECK(!r2.grad().defined());
}

TEST_CASE("torch deform_roi_pool: strided tensors are read in place") {
    at::manual_seed(9);
    const at::Tensor base = at::randn({2, 9, 13, 8}, at::kDouble);
    const at::Tensor x = base.permute({0, 1, 3, 2}).slice(1, 0, 8); // N x 8 x 8 x 13, strided
    const at::Tensor rois = make_rois(10, 2, 26, 16, 2, at::kDouble);
    const at::Tensor off = at::randn({2, 2, 10, 2}, at::kDouble).permute({2, 3, 0, 1});
    REQUIRE(!x.is_contiguous());
    REQUIRE(!off.is_contiguous());
    const at::Tensor y = ops::deform_roi_pool(x, rois, off, 0.5, 2, 2, 4, 2, 3, 0.3);
    const at::Tensor yc =
        ops::deform_roi_pool(x.contiguous(), rois, off.contiguous(), 0.5, 2, 2, 4, 2, 3, 0.3);
    CHECK(at::equal(y, yc));
}

TEST_CASE_TEMPLATE("torch deform_roi_pool: through the dispatcher equals the direct call, with "
                   "autograd",
                   T, float, double) {
    const auto dtype = std::is_same_v<T, float> ? at::kFloat : at::kDouble;
    at::manual_seed(13);
    const at::Tensor base = at::randn({2, 8, 10, 12}, dtype);
    const at::Tensor rois = make_rois(12, 2, 24, 20, 4, dtype);
    const at::Tensor off = at::randn({12, 4, 2, 2}, dtype);
    for (const bool with_offsets : {false, true}) {
        CAPTURE(with_offsets);
        const at::Tensor xd = base.detach().requires_grad_(true);
        const at::Tensor xc = base.detach().requires_grad_(true);
        const at::Tensor od = off.detach().requires_grad_(true);
        const at::Tensor oc = off.detach().requires_grad_(true);
        const c10::optional<at::Tensor> opt =
            with_offsets ? c10::optional<at::Tensor>(od) : c10::nullopt;
        const at::Tensor yd = d_deform_roi_pool(xd, rois, opt, 0.5, 2, 2, 4, 2, 2, 0.1);
        const at::Tensor yc = ops::deform_roi_pool(xc, rois, with_offsets ? oc : at::Tensor(), 0.5,
                                                   2, 2, 4, 2, 2, 0.1);
        REQUIRE(yd.requires_grad());
        CHECK(at::equal(yd.detach(), yc.detach()));
        const at::Tensor w = at::randn(yc.sizes(), dtype);
        (yd * w).sum().backward();
        (yc * w).sum().backward();
        CHECK(at::equal(xd.grad(), xc.grad()));
        if (with_offsets)
            CHECK(at::equal(od.grad(), oc.grad()));
        else
            CHECK(!od.grad().defined());
    }
    const auto names = ops::library_ops();
    CHECK(std::find(names.begin(), names.end(), "snip::deform_roi_pool") != names.end());
}

TEST_CASE("torch deform_roi_pool: errors name the op, the field and the value") {
    const at::Tensor x = at::randn({1, 8, 5, 5});
    const at::Tensor rois = make_rois(3, 1, 10, 10, 1, at::kFloat);
    const at::Tensor off = at::zeros({3, 2, 7, 7});
    CHECK(error_of([&] { ops::deform_roi_pool(x, rois, off, 0.5, 4, 1, 7, 7, 4, 0.1); }) ==
          "deform_roi_pool: the features have 8 channels, expected output_dim * group_size^2 = "
          "4 * 1^2 = 4");
    CHECK(error_of([&] { d_deform_roi_pool(x, rois, off, 0.5, 4, 1, 7, 7, 4, 0.1); }) ==
          "deform_roi_pool: the features have 8 channels, expected output_dim * group_size^2 = "
          "4 * 1^2 = 4");
    CHECK(error_of([&] { ops::deform_roi_pool(x, rois, off, 0.5, 8, 1, 7, 7, 0, 0.1); }) ==
          "deform_roi_pool: sample_per_part must be in [1, 46340], got 0");
    CHECK(error_of([&] {
              ops::deform_roi_pool(x, rois, off.reshape({3, 98}), 0.5, 8, 1, 7, 7, 4, 0.1);
          }) == "deform_roi_pool: offset must be a N x C x H x W float32 tensor, got float32 "
                "[3, 98]");
    CHECK(error_of([&] {
              ops::deform_roi_pool(x, rois, off.to(at::kDouble), 0.5, 8, 1, 7, 7, 4, 0.1);
          }) == "deform_roi_pool: offset must be a N x C x H x W float32 tensor, got float64 "
                "[3, 2, 7, 7]");
    CHECK(error_of([&] {
              ops::deform_roi_pool(x, rois, at::zeros({3, 2, 5, 5}), 0.5, 8, 1, 7, 7, 4, 0.1);
          }) == "deform_roi_pool: the offsets have extents (3, 2, 5, 5), expected (K, 2 * "
                "classes, part_size, part_size) with K = 3, part_size = 7, classes >= 1");
    CHECK(error_of([&] {
              ops::deform_roi_pool(x, rois, off, 0.5, 8, 1, 7, std::int64_t(1) << 40, 4, 0.1);
          }) == "deform_roi_pool: part_size = 1099511627776 does not fit an int");
}
