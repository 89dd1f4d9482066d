// torch/library.hpp: the ops of torch/ops.hpp registered with the dispatcher by the shared
// library snip::torch_ops (TORCH_LIBRARY(snip, m)), called through
// c10::Dispatcher::singleton().findSchemaOrThrow("snip::...", "").typed<...>() against the
// direct C++ calls: equal outputs for every op, equal gradients (first and second order)
// for roi_align and roi_pool called through the dispatcher, no gradient for the others, and
// the same snip::error messages.
#include <snip/torch/library.hpp>
#include <snip/torch/ops.hpp>

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>

// LibTorch first: its glog headers define a one-argument CHECK, which doctest's (included
// by the test headers below) must replace, not the other way round.
#include "test_util.hpp"
#include "torch_test_util.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace {

namespace ops = snip::torch_ops;
using torch_test::make_rois;

c10::OperatorHandle snip_op(const char* name) {
    return c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
}

at::Tensor d_roi_align(const at::Tensor& x, const at::Tensor& rois, double scale, std::int64_t ph,
                       std::int64_t pw, std::int64_t sampling, bool aligned) {
    static const auto op = snip_op("snip::roi_align")
                               .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double,
                                                 std::int64_t, std::int64_t, std::int64_t, bool)>();
    return op.call(x, rois, scale, ph, pw, sampling, aligned);
}

at::Tensor d_roi_pool(const at::Tensor& x, const at::Tensor& rois, double scale, std::int64_t ph,
                      std::int64_t pw) {
    static const auto op = snip_op("snip::roi_pool")
                               .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double,
                                                 std::int64_t, std::int64_t)>();
    return op.call(x, rois, scale, ph, pw);
}

at::Tensor d_nms(const at::Tensor& boxes, const at::Tensor& scores, double thr) {
    static const auto op =
        snip_op("snip::nms").typed<at::Tensor(const at::Tensor&, const at::Tensor&, double)>();
    return op.call(boxes, scores, thr);
}

at::Tensor d_batched_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs,
                         double thr) {
    static const auto op =
        snip_op("snip::batched_nms")
            .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, double)>();
    return op.call(boxes, scores, idxs, thr);
}

at::Tensor d_box_iou(const at::Tensor& a, const at::Tensor& b) {
    static const auto op =
        snip_op("snip::box_iou").typed<at::Tensor(const at::Tensor&, const at::Tensor&)>();
    return op.call(a, b);
}

using coder_fn = at::Tensor(const at::Tensor&, const at::Tensor&, c10::ArrayRef<double>,
                            c10::ArrayRef<double>, c10::string_view);

at::Tensor d_encode(const at::Tensor& r, const at::Tensor& t, c10::ArrayRef<double> means,
                    c10::ArrayRef<double> stds, c10::string_view conv) {
    static const auto op = snip_op("snip::encode_boxes").typed<coder_fn>();
    return op.call(r, t, means, stds, conv);
}

at::Tensor d_decode(const at::Tensor& r, const at::Tensor& d, c10::ArrayRef<double> means,
                    c10::ArrayRef<double> stds, c10::string_view conv) {
    static const auto op = snip_op("snip::decode_boxes").typed<coder_fn>();
    return op.call(r, d, means, stds, conv);
}

at::Tensor random_boxes(std::int64_t n, at::ScalarType dtype) {
    const at::Tensor xy = at::rand({n, 2}, dtype) * 200;
    return at::cat({xy, xy + at::rand({n, 2}, dtype) * 60 + 1}, 1);
}

} // namespace

TEST_CASE("registry: the library registers every op of torch/ops.hpp under snip::") {
    const std::vector<std::string> names = ops::library_ops();
    CHECK(names == std::vector<std::string>{"snip::roi_align", "snip::roi_pool", "snip::nms",
                                            "snip::batched_nms", "snip::box_iou",
                                            "snip::encode_boxes", "snip::decode_boxes",
                                            "snip::deform_conv2d", "snip::deform_roi_pool"});
    for (const std::string& name : names) {
        CAPTURE(name);
        const auto op = c10::Dispatcher::singleton().findSchema({name, ""});
        REQUIRE(op.has_value());
        CHECK(op->schema().name() == name);
    }
    const auto& align = snip_op("snip::roi_align").schema();
    REQUIRE(align.arguments().size() == 7);
    CHECK(align.arguments()[2].name() == "spatial_scale");
    CHECK(align.arguments()[6].name() == "aligned");
    CHECK(snip_op("snip::encode_boxes").schema().arguments()[4].default_value().has_value());
}

TEST_CASE_TEMPLATE("registry: roi_align through the dispatcher equals the direct call, forward, "
                   "backward and double backward",
                   T, float, double) {
    const auto dtype = std::is_same_v<T, float> ? at::kFloat : at::kDouble;
    at::manual_seed(31);
    const at::Tensor base = at::randn({2, 6, 11, 13}, dtype);
    const at::Tensor rois = make_rois(20, 2, 26, 22, 5, dtype);
    for (const bool aligned : {false, true}) {
        CAPTURE(aligned);
        const at::Tensor xd = base.detach().requires_grad_(true);
        const at::Tensor xc = base.detach().requires_grad_(true);
        const at::Tensor yd = d_roi_align(xd, rois, 0.5, 3, 4, 2, aligned);
        const at::Tensor yc = ops::roi_align(xc, rois, {3, 4}, 0.5, 2, aligned);
        REQUIRE(yd.requires_grad());
        CHECK(at::equal(yd.detach(), yc.detach()));
        const at::Tensor w = at::randn(yc.sizes(), dtype).requires_grad_(true);
        const at::Tensor gd = torch::autograd::grad({yd}, {xd}, {w}, true, true)[0];
        const at::Tensor gc = torch::autograd::grad({yc}, {xc}, {w}, true, true)[0];
        CHECK(at::equal(gd, gc));
        // Second order: the gradient of <grad_x, v> w.r.t. the output gradient.
        const at::Tensor v = at::randn(base.sizes(), dtype);
        const at::Tensor ggd = torch::autograd::grad({(gd * v).sum()}, {w})[0];
        const at::Tensor ggc = torch::autograd::grad({(gc * v).sum()}, {w})[0];
        CHECK(at::equal(ggd, ggc));
        // .backward() accumulates the same feature gradient.
        d_roi_align(xd, rois, 0.5, 3, 4, 2, aligned).sum().backward();
        ops::roi_align(xc, rois, {3, 4}, 0.5, 2, aligned).sum().backward();
        CHECK(at::equal(xd.grad(), xc.grad()));
    }
}

TEST_CASE_TEMPLATE("registry: roi_pool through the dispatcher equals the direct call, forward, "
                   "backward and double backward",
                   T, float, double) {
    const auto dtype = std::is_same_v<T, float> ? at::kFloat : at::kDouble;
    at::manual_seed(32);
    const at::Tensor base = at::randn({2, 5, 9, 12}, dtype);
    const at::Tensor rois = make_rois(15, 2, 24, 18, 6, dtype);
    const at::Tensor xd = base.detach().requires_grad_(true);
    const at::Tensor xc = base.detach().requires_grad_(true);
    const at::Tensor yd = d_roi_pool(xd, rois, 0.5, 3, 2);
    const at::Tensor yc = ops::roi_pool(xc, rois, {3, 2}, 0.5);
    REQUIRE(yd.requires_grad());
    CHECK(at::equal(yd.detach(), yc.detach()));
    const at::Tensor w = at::randn(yc.sizes(), dtype).requires_grad_(true);
    const at::Tensor gd = torch::autograd::grad({yd}, {xd}, {w}, true, true)[0];
    const at::Tensor gc = torch::autograd::grad({yc}, {xc}, {w}, true, true)[0];
    CHECK(at::equal(gd, gc));
    const at::Tensor v = at::randn(base.sizes(), dtype);
    CHECK(at::equal(torch::autograd::grad({(gd * v).sum()}, {w})[0],
                    torch::autograd::grad({(gc * v).sum()}, {w})[0]));
    d_roi_pool(xd, rois, 0.5, 3, 2).sum().backward();
    ops::roi_pool(xc, rois, {3, 2}, 0.5).sum().backward();
    CHECK(at::equal(xd.grad(), xc.grad()));
}

TEST_CASE("registry: nms, batched_nms, box_iou, encode_boxes, decode_boxes through the "
          "dispatcher equal the direct calls and never require grad") {
    at::manual_seed(33);
    for (const auto dtype : {at::kFloat, at::kDouble}) {
        CAPTURE(dtype);
        const std::int64_t n = 250;
        const at::Tensor boxes = random_boxes(n, dtype).requires_grad_(true);
        const at::Tensor scores = at::rand({n}, dtype).requires_grad_(true);
        const at::Tensor cls = at::randint(0, 4, {n}, at::kLong);
        const at::Tensor bd = boxes.detach(), sd = scores.detach();
        const at::Tensor keep = d_nms(boxes, scores, 0.5);
        CHECK_FALSE(keep.requires_grad());
        CHECK(at::equal(keep, ops::nms(bd, sd, 0.5)));
        CHECK(
            at::equal(d_batched_nms(boxes, scores, cls, 0.6), ops::batched_nms(bd, sd, cls, 0.6)));
        CHECK(at::equal(d_batched_nms(bd, sd, cls.to(at::kInt), 0.6),
                        ops::batched_nms(bd, sd, cls, 0.6)));

        const at::Tensor other = random_boxes(40, dtype);
        const at::Tensor iou = d_box_iou(boxes, other);
        CHECK_FALSE(iou.requires_grad());
        CHECK(at::equal(iou, ops::box_iou(bd, other)));

        const std::array<double, 4> means{0.1, -0.1, 0.0, 0.05}, stds{0.1, 0.1, 0.2, 0.2};
        const at::Tensor targets = random_boxes(n, dtype);
        for (const char* conv : {"continuous", "inclusive"}) {
            CAPTURE(conv);
            const auto pc = std::string(conv) == "inclusive" ? snip::pixel_convention::inclusive
                                                             : snip::pixel_convention::continuous;
            const at::Tensor deltas = d_encode(boxes, targets, means, stds, conv);
            CHECK_FALSE(deltas.requires_grad());
            CHECK(at::equal(deltas, ops::encode_boxes(bd, targets, means, stds, pc)));
            CHECK(at::equal(d_decode(bd, deltas, means, stds, conv),
                            ops::decode_boxes(bd, deltas, means, stds, pc)));
        }
    }
}

TEST_CASE("registry: errors come through the dispatcher as the direct calls' snip::error") {
    const at::Tensor x = at::rand({1, 4, 8, 8});
    CHECK_THROWS_WITH_AS(
        d_roi_align(x, make_rois(12, 1, 8, 8, 3, at::kDouble), 1.0, 2, 2, -1, false),
        "roi_align: rois must be a K x 5 float32 tensor, got float64 [12, 5]", snip::error);
    CHECK_THROWS_WITH_AS(d_roi_pool(x, make_rois(2, 1, 8, 8, 3, at::kFloat), 1.0, 0, 2),
                         doctest::Contains("roi_pool: pooled_height must be in [1, "), snip::error);
    CHECK_THROWS_WITH_AS(d_nms(at::rand({5, 4}), at::rand({4}), 0.5),
                         "nms: scores must be a [5] float32 tensor, got float32 [4]", snip::error);
    CHECK_THROWS_WITH_AS(d_box_iou(at::rand({5, 4}), at::rand({5, 4}, at::kDouble)),
                         "box_iou: boxes2 must be a N x 4 float32 tensor, got float64 [5, 4]",
                         snip::error);
    const at::Tensor r = random_boxes(3, at::kFloat);
    const std::array<double, 4> zeros{0, 0, 0, 0}, ones{1, 1, 1, 1};
    const std::array<double, 3> three{1, 1, 1};
    CHECK_THROWS_WITH_AS(d_encode(r, r, zeros, three, "continuous"),
                         "encode_boxes: stds must hold 4 values, got 3", snip::error);
    CHECK_THROWS_WITH_AS(d_decode(r, r, zeros, ones, "pixels"),
                         "decode_boxes: convention must be \"continuous\" or \"inclusive\", got "
                         "\"pixels\"",
                         snip::error);
}

TEST_CASE("registry: deform_conv2d through the dispatcher equals the direct call, forward and "
          "backward, with and without bias") {
    using fn = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                          const c10::optional<at::Tensor>&, std::int64_t, std::int64_t,
                          std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                          std::int64_t);
    static const auto op = snip_op("snip::deform_conv2d").typed<fn>();
    at::manual_seed(41);
    const at::Tensor x = at::randn({2, 4, 7, 8}, at::kDouble);
    const at::Tensor w = at::randn({6, 2, 3, 3}, at::kDouble);
    const at::Tensor off = at::randn({2, 2 * 2 * 9, 4, 4}, at::kDouble) * 2;
    const at::Tensor b = at::randn({6}, at::kDouble);
    for (const bool with_bias : {false, true}) {
        CAPTURE(with_bias);
        std::vector<at::Tensor> d, c;
        for (auto* v : {&d, &c})
            for (const at::Tensor& t : {x, w, off, b})
                v->push_back(t.detach().requires_grad_(true));
        const at::Tensor yd = op.call(d[0], d[1], d[2],
                                      with_bias ? c10::optional<at::Tensor>(d[3]) : c10::nullopt,
                                      2, 2, 1, 1, 1, 1, 2, 2);
        const at::Tensor yc = ops::deform_conv2d(c[0], c[1], c[2], with_bias ? c[3] : at::Tensor(),
                                                 2, 2, 1, 1, 1, 1, 2, 2);
        REQUIRE(yd.requires_grad());
        CHECK(at::equal(yd.detach(), yc.detach()));
        const at::Tensor g = at::randn(yc.sizes(), at::kDouble);
        yd.backward(g);
        yc.backward(g);
        for (std::size_t i = 0; i < 3; ++i)
            CHECK(at::equal(d[i].grad(), c[i].grad()));
        CHECK(d[3].grad().defined() == with_bias);
        if (with_bias) CHECK(at::equal(d[3].grad(), c[3].grad()));
    }
    CHECK(snip_test::error_of([&] {
              (void)op.call(x, w, off, c10::nullopt, 0, 2, 1, 1, 1, 1, 2, 2);
          }).find("deform_conv2d: stride_h must be >= 1, got 0") != std::string::npos);
}
