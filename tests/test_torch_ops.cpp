// backend/torch.hpp and torch/ops.hpp: zero-copy views over at::Tensor (any strides), the
// backend test of test_backends.cpp run over LibTorch tensors, RoIAlign/RoIPool through
// autograd against snip's CPU backward, float64 finite differences through the autograd
// path, double backward, and the tensor helpers against snip's own functions.
// (Agreement with torchvision's compiled ops: test_torch_torchvision.cpp.)
#include <snip/adapt/torch.hpp>
#include <snip/sniper/cover.hpp>
#include <snip/sniper/plan.hpp>
#include <snip/torch/ops.hpp>
#include <snip/core/views.hpp>

// LibTorch first: its glog headers define a one-argument CHECK, which doctest's (included
// by the test headers below) must replace, not the other way round.
#include "backend_test_body.hpp"
#include "torch_test_util.hpp"
#include "test_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

namespace ops = snip::torch_ops;

// ---------------------------------------------------------------------------------------
// Data

using torch_test::make_rois;


double max_abs(const at::Tensor& a, const at::Tensor& b) {
    REQUIRE(a.sizes() == b.sizes());
    if (a.numel() == 0) return 0.0;
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// ---------------------------------------------------------------------------------------
// The backend test of test_backends.cpp, over at::Tensor

using backend_test::kH;
using backend_test::kW;
using backend_test::random_boxes;

at::Tensor boxes_tensor(const std::vector<snip::box<float>>& b) {
    std::vector<float> flat;
    for (const auto& x : b)
        flat.insert(flat.end(), {x.x1, x.y1, x.x2, x.y2});
    return at::tensor(flat, at::kFloat).reshape({std::int64_t(b.size()), 4});
}

/// Storage, read-back and base pointer shared by the tensor backends; `make` differs.
struct torch_common {
    using container = at::Tensor;
    static float at(const container& c, std::size_t i, std::size_t k) {
        return c.accessor<float, 2>()[std::int64_t(i)][std::int64_t(k)];
    }
    static const float* storage(const container& c) {
        return static_cast<const float*>(c.storage().data_ptr().get());
    }
    static std::size_t storage_size(const container& c) {
        return c.storage().nbytes() / sizeof(float);
    }
    /// The first element (a sliced tensor starts inside its storage).
    static const float* first(const container& c) { return c.data_ptr<float>(); }
};
/// A contiguous N x 4 float32 tensor.
struct torch_contiguous : torch_common {
    static container make(const std::vector<snip::box<float>>& b) { return boxes_tensor(b); }
};
/// The transpose of a contiguous 4 x N tensor: strides (1, N).
struct torch_transposed : torch_common {
    static container make(const std::vector<snip::box<float>>& b) {
        return boxes_tensor(b).t().contiguous().t();
    }
};
/// Columns 2..5 of an N x 7 tensor, every other row of a 2N x 7 one: strides (14, 1), offset 2.
struct torch_sliced : torch_common {
    static container make(const std::vector<snip::box<float>>& b) {
        const auto n = std::int64_t(b.size());
        at::Tensor wide = at::full({2 * n, 7}, -1.0f);
        wide.slice(0, 0, 2 * n, 2).slice(1, 2, 6).copy_(boxes_tensor(b));
        return wide.slice(0, 0, 2 * n, 2).slice(1, 2, 6);
    }
};

} // namespace

// =======================================================================================
// (a) views

TEST_CASE("torch views: contiguous, transposed and sliced tensors are viewed in place") {
    at::manual_seed(1);
    const at::Tensor b = at::rand({6, 4});
    const auto v = snip::as_box_view<float>(b);
    CHECK(v.data_handle() == b.data_ptr<float>());
    CHECK(v.size() == 6);
    CHECK(v.stride(0) == 4);
    CHECK(v.stride(1) == 1);
    CHECK(v.is_contiguous());
    CHECK(v(5, 3) == b[5][3].item<float>());

    // The transpose of a 4 x N tensor: column-major boxes.
    const at::Tensor t4 = at::rand({4, 9});
    const at::Tensor tt = t4.t();
    const auto vt = snip::as_box_view<const float>(tt);
    CHECK(vt.data_handle() == t4.data_ptr<float>());
    CHECK(vt.data_handle() == tt.data_ptr<float>());
    CHECK(vt.stride(0) == 1);
    CHECK(vt.stride(1) == 9);
    CHECK_FALSE(vt.is_contiguous());
    for (int i = 0; i < 9; ++i)
        for (int k = 0; k < 4; ++k)
            CHECK(vt(i, k) == t4[k][i].item<float>());

    // Columns 1..4 of rows 1, 3, 5 of a 7 x 6 tensor: offset 7, strides (12, 1).
    const at::Tensor wide = at::arange(42, at::kFloat).reshape({7, 6});
    const at::Tensor sl = wide.slice(0, 1, 7, 2).slice(1, 1, 5);
    const auto vs = snip::as_box_view<float>(sl);
    CHECK(vs.data_handle() == wide.data_ptr<float>() + 7);
    CHECK(vs.data_handle() == sl.data_ptr<float>());
    CHECK(vs.size() == 3);
    CHECK(vs.stride(0) == 12);
    CHECK((vs[2] == snip::box<float>{31, 32, 33, 34}));
    vs.set(0, {-1, -2, -3, -4}); // writes land in the tensor
    CHECK(wide[1][1].item<float>() == -1.0f);
    CHECK(wide[1][4].item<float>() == -4.0f);
    CHECK(wide[1][5].item<float>() == 11.0f);

    // An expanded tensor (stride 0): one box repeated, read in place.
    const at::Tensor one = at::tensor({1.0f, 2.0f, 3.0f, 4.0f}).reshape({1, 4});
    const at::Tensor ex = one.expand({5, 4});
    const auto ve = snip::as_box_view<const float>(ex);
    CHECK(ve.stride(0) == 0);
    CHECK((ve[4] == snip::box<float>{1, 2, 3, 4}));
    CHECK(ve.data_handle() == one.data_ptr<float>());

    // float64, and an empty tensor.
    const at::Tensor d = at::rand({3, 4}, at::kDouble);
    const auto vd = snip::as_box_view<const double>(d);
    static_assert(std::is_same_v<decltype(vd), const snip::box_view<const double>>);
    CHECK(vd.data_handle() == d.data_ptr<double>());
    CHECK(snip::as_box_view<float>(at::empty({0, 4})).empty());
}

TEST_CASE("torch views: features (channels-last, channel slices) and RoIs") {
    at::manual_seed(2);
    const at::Tensor f = at::rand({2, 3, 4, 5});
    const auto vf = snip::as_feature_view<const float>(f);
    CHECK(vf.data_handle() == f.data_ptr<float>());
    CHECK(vf.is_contiguous());
    CHECK(vf.stride(0) == 60);
    CHECK(vf(1, 2, 3, 4) == f[1][2][3][4].item<float>());

    const at::Tensor cl = f.contiguous(at::MemoryFormat::ChannelsLast);
    const auto vc = snip::as_feature_view<float>(cl);
    CHECK(vc.data_handle() == cl.data_ptr<float>());
    CHECK(vc.stride(1) == 1);
    CHECK(vc.stride(2) == 15);
    CHECK(vc.stride(3) == 3);
    CHECK_FALSE(vc.is_contiguous());
    for (int n = 0; n < 2; ++n)
        for (int c = 0; c < 3; ++c)
            for (int y = 0; y < 4; ++y)
                for (int x = 0; x < 5; ++x)
                    REQUIRE(vc(n, c, y, x) == vf(n, c, y, x));

    const at::Tensor ch = f.slice(1, 1, 3);
    const auto vch = snip::as_feature_view<const float>(ch);
    CHECK(vch.data_handle() == f.data_ptr<float>() + 20);
    CHECK(vch.extent(1) == 2);
    CHECK(&vch(1, 1, 2, 0) == &vf(1, 2, 2, 0));

    const at::Tensor r = at::rand({5, 8}).slice(1, 2, 7); // K x 5 inside wider rows
    const auto vr = snip::as_roi_view<const float>(r);
    CHECK(vr.data_handle() == r.data_ptr<float>());
    CHECK(vr.stride(0) == 8);
    CHECK(vr.size() == 5);
    CHECK(vr(4, 2) == r[4][2].item<float>());
    CHECK(vr.boxes()[4].x1 == r[4][1].item<float>());

    const at::Tensor argmax = at::zeros({2, 3, 4, 5}, at::kInt);
    CHECK(snip::as_feature_view<std::int32_t>(argmax).data_handle() ==
          argmax.data_ptr<std::int32_t>());
}

TEST_CASE("torch views: the float32 trait behind snip::as_box_view(tensor)") {
    at::Tensor t = at::rand({4, 4});
    auto v = snip::as_box_view(t);
    static_assert(std::is_same_v<decltype(v), snip::box_view<float>>);
    const at::Tensor& ct = t;
    auto cv = snip::as_box_view(ct);
    static_assert(std::is_same_v<decltype(cv), snip::box_view<const float>>);
    static_assert(snip::box_storage<at::Tensor>);
    CHECK(v.data_handle() == t.data_ptr<float>());
    at::Tensor f = at::rand({1, 2, 3, 4});
    CHECK(snip::view_traits<at::Tensor>::features(f).data_handle() == f.data_ptr<float>());
    CHECK_THROWS_WITH_AS(snip::as_box_view(f),
                         "tensor must be a N x 4 float32 tensor, got float32 [1, 2, 3, 4]",
                         snip::error);
}

TEST_CASE("torch views: wrong dtype, rank, extent, device, layout are errors naming the tensor") {
    const at::Tensor d = at::rand({3, 4}, at::kDouble);
    CHECK_THROWS_WITH_AS(snip::as_box_view<float>(d, "nms: boxes"),
                         "nms: boxes must be a N x 4 float32 tensor, got float64 [3, 4]",
                         snip::error);
    CHECK_THROWS_WITH_AS(snip::as_box_view<float>(at::rand({3, 5})),
                         "boxes must be a N x 4 float32 tensor, got float32 [3, 5]", snip::error);
    CHECK_THROWS_WITH_AS(snip::as_box_view<float>(at::rand({12})),
                         "boxes must be a N x 4 float32 tensor, got float32 [12]", snip::error);
    CHECK_THROWS_WITH_AS(snip::as_feature_view<float>(at::rand({2, 3, 4})),
                         "features must be a N x C x H x W float32 tensor, got float32 [2, 3, 4]",
                         snip::error);
    CHECK_THROWS_WITH_AS(
        snip::as_roi_view<const float>(at::rand({12, 5}, at::kDouble), "roi_align: rois"),
        "roi_align: rois must be a K x 5 float32 tensor, got float64 [12, 5]", snip::error);
    CHECK_THROWS_WITH_AS(snip::as_box_view<std::int64_t>(at::rand({2, 4})),
                         "boxes must be a N x 4 int64 tensor, got float32 [2, 4]", snip::error);
    CHECK_THROWS_WITH_AS(snip::as_box_view<float>(at::Tensor()), "boxes is an undefined tensor",
                         snip::error);
    // A device other than the CPU (the meta device stands in for CUDA in a CPU-only build).
    CHECK_THROWS_WITH_AS(snip::as_box_view<float>(at::empty({3, 4}, at::device(at::kMeta))),
                         "boxes must be a CPU tensor, got a meta tensor", snip::error);
    CHECK_THROWS_WITH_AS(snip::as_box_view<float>(at::rand({3, 4}).to_sparse()),
                         doctest::Contains("boxes must be a strided (dense) tensor"), snip::error);
    CHECK_THROWS_WITH_AS(snip::as_box_view<float>(at::_neg_view(at::rand({3, 4}))),
                         doctest::Contains("lazily negated"), snip::error);

    // The same checks through the ops, with the op's name.
    const at::Tensor x = at::rand({1, 4, 8, 8});
    CHECK_THROWS_WITH_AS(ops::roi_align(x, make_rois(12, 1, 8, 8, 3, at::kDouble), 2),
                         "roi_align: rois must be a K x 5 float32 tensor, got float64 [12, 5]",
                         snip::error);
    CHECK_THROWS_WITH_AS(ops::roi_align(x.to(at::kLong), make_rois(2, 1, 8, 8, 3, at::kFloat), 2),
                         "roi_align: input must be a N x C x H x W float32 or float64 tensor, got "
                         "int64 [1, 4, 8, 8]",
                         snip::error);
    CHECK_THROWS_WITH_AS(
        ops::roi_pool(x[0], make_rois(2, 1, 8, 8, 3, at::kFloat), 2),
        "roi_pool: input must be a N x C x H x W float32 tensor, got float32 [4, 8, 8]",
        snip::error);
    CHECK_THROWS_WITH_AS(ops::roi_align(at::empty({1, 4, 8, 8}, at::device(at::kMeta)),
                                        make_rois(2, 1, 8, 8, 3, at::kFloat), 2),
                         "roi_align: input must be a CPU tensor, got a meta tensor", snip::error);
    CHECK_THROWS_WITH_AS(ops::roi_align(x, make_rois(2, 1, 8, 8, 3, at::kFloat), 0),
                         doctest::Contains("roi_align: pooled_height must be in [1, "),
                         snip::error);
    // snip's own RoI checks come through: a batch index outside [0, N).
    CHECK_THROWS_WITH_AS(ops::roi_align(x, make_rois(4, 2, 8, 8, 3, at::kFloat), 2),
                         doctest::Contains("expected an integer in [0, 1)"), snip::error);
    CHECK_THROWS_WITH_AS(ops::nms(at::rand({5, 4}), at::rand({4}), 0.5),
                         "nms: scores must be a [5] float32 tensor, got float32 [4]", snip::error);
    CHECK_THROWS_WITH_AS(ops::batched_nms(at::rand({5, 4}), at::rand({5}), at::rand({5}), 0.5),
                         doctest::Contains("batched_nms: idxs must be a [5] integer tensor"),
                         snip::error);
    CHECK_THROWS_WITH_AS(ops::box_iou(at::rand({5, 4}), at::rand({5, 4}, at::kDouble)),
                         "box_iou: boxes2 must be a N x 4 float32 tensor, got float64 [5, 4]",
                         snip::error);
}

// =======================================================================================
// (b) the backend test of test_backends.cpp over LibTorch tensors

TEST_CASE_TEMPLATE_DEFINE("torch backend: zero copy, same boxes, same cover, same plan", B,
                          torch_backend_test) {
    backend_test::run<B>();
}

TEST_CASE_TEMPLATE_INVOKE(torch_backend_test, torch_contiguous, torch_transposed, torch_sliced);

TEST_CASE("torch backend: the strided test tensors really are strided") {
    const auto ref = random_boxes(1u, 5);
    CHECK(torch_contiguous::make(ref).is_contiguous());
    const at::Tensor t = torch_transposed::make(ref);
    CHECK(t.stride(0) == 1);
    CHECK(t.stride(1) == 5);
    const at::Tensor s = torch_sliced::make(ref);
    CHECK(s.stride(0) == 14);
    CHECK(s.storage_offset() == 2);
}

// =======================================================================================
// (c) autograd

namespace {

struct align_case {
    double scale;
    int pooled_h, pooled_w, sampling;
    bool aligned;
};

snip::roi_align_options to_options(const align_case& c) {
    snip::roi_align_options o;
    o.pooled_h = c.pooled_h;
    o.pooled_w = c.pooled_w;
    o.spatial_scale = c.scale;
    o.sampling_ratio = c.sampling;
    o.aligned = c.aligned;
    return o;
}

/// snip's CPU backward called directly on views, into a new zero tensor.
template <class T>
at::Tensor direct_align_backward(const at::Tensor& grad, const at::Tensor& rois,
                                 at::IntArrayRef sizes, const snip::roi_align_options& o) {
    at::Tensor gi = at::zeros(sizes, grad.options());
    snip::roi_align_backward(snip::as_feature_view<const T>(grad), snip::as_roi_view<const T>(rois),
                             snip::as_feature_view<T>(gi), o, 1);
    return gi;
}

} // namespace

TEST_CASE_TEMPLATE("roi_align autograd: forward and .backward() equal snip's CPU functions", T,
                   float, double) {
    const auto dtype = std::is_same_v<T, float> ? at::kFloat : at::kDouble;
    at::manual_seed(11);
    const align_case cases[] = {{0.25, 7, 7, 2, true},
                                {0.5, 3, 5, 0, false},
                                {1.0, 2, 2, 1, true},
                                {0.125, 4, 3, -1, false}};
    for (const auto& c : cases) {
        CAPTURE(c.scale);
        CAPTURE(c.sampling);
        CAPTURE(c.aligned);
        const snip::roi_align_options o = to_options(c);
        // Channels-last features: read in place through the strided view.
        const at::Tensor base = at::randn({2, 10, 13, 17}, dtype);
        for (const at::Tensor& feats : {base, base.contiguous(at::MemoryFormat::ChannelsLast)}) {
            const at::Tensor x = feats.detach().requires_grad_(true);
            const at::Tensor rois = make_rois(30, 2, 17 / c.scale, 13 / c.scale, 7, dtype);
            const at::Tensor y =
                ops::roi_align(x, rois, {c.pooled_h, c.pooled_w}, c.scale, c.sampling, c.aligned);
            REQUIRE(y.sizes() == at::IntArrayRef({30, 10, c.pooled_h, c.pooled_w}));
            CHECK(y.requires_grad());
            // The forward equals snip::roi_align on views (the same code, bit for bit).
            at::Tensor want = at::empty(y.sizes(), y.options());
            snip::roi_align(snip::as_feature_view<const T>(base), snip::as_roi_view<const T>(rois),
                            snip::as_feature_view<T>(want), o, 1);
            CHECK(at::equal(y.detach(), want));

            const at::Tensor w = at::randn(y.sizes(), dtype);
            (y * w).sum().backward();
            CHECK(at::equal(x.grad(), direct_align_backward<T>(w, rois, x.sizes(), o)));

            // y.sum(): the output gradient arrives as an expanded tensor (all strides 0).
            x.mutable_grad().reset();
            ops::roi_align(x, rois, {c.pooled_h, c.pooled_w}, c.scale, c.sampling, c.aligned)
                .sum()
                .backward();
            CHECK(at::equal(x.grad(), direct_align_backward<T>(at::ones(y.sizes(), dtype), rois,
                                                               x.sizes(), o)));
        }
    }
}

TEST_CASE_TEMPLATE("roi_pool autograd: forward and .backward() equal snip's CPU functions", T,
                   float, double) {
    const auto dtype = std::is_same_v<T, float> ? at::kFloat : at::kDouble;
    at::manual_seed(12);
    for (const double scale : {1.0, 0.5, 0.0625}) {
        CAPTURE(scale);
        snip::roi_pool_options o;
        o.pooled_h = 3;
        o.pooled_w = 4;
        o.spatial_scale = scale;
        const at::Tensor x = at::randn({2, 9, 11, 14}, dtype).requires_grad_(true);
        const at::Tensor rois = make_rois(25, 2, 14 / scale, 11 / scale, 8, dtype);
        const at::Tensor y = ops::roi_pool(x, rois, {3, 4}, scale);
        auto [want, argmax] = ops::roi_pool_forward(x.detach(), rois, o);
        CHECK(at::equal(y.detach(), want));
        at::Tensor direct = at::empty(y.sizes(), y.options());
        at::Tensor direct_arg = at::empty(y.sizes(), y.options().dtype(at::kInt));
        snip::roi_pool(snip::as_feature_view<const T>(x.detach()), snip::as_roi_view<const T>(rois),
                       snip::as_feature_view<T>(direct),
                       snip::as_feature_view<std::int32_t>(direct_arg), o, 1);
        CHECK(at::equal(want, direct));
        CHECK(at::equal(argmax, direct_arg));

        const at::Tensor w = at::randn(y.sizes(), dtype);
        (y * w).sum().backward();
        at::Tensor gi = at::zeros(x.sizes(), w.options());
        snip::roi_pool_backward(snip::as_feature_view<const T>(w), snip::as_roi_view<const T>(rois),
                                snip::as_feature_view<const std::int32_t>(argmax),
                                snip::as_feature_view<T>(gi), o, 1);
        CHECK(at::equal(x.grad(), gi));
    }
}

TEST_CASE("roi_align and roi_pool autograd: no gradient for the RoIs, empty RoIs, no graph without "
          "grad") {
    at::manual_seed(13);
    const at::Tensor x = at::randn({1, 3, 6, 6}).requires_grad_(true);
    const at::Tensor rois = make_rois(4, 1, 6, 6, 9, at::kFloat).requires_grad_(true);
    ops::roi_align(x, rois, 2, 1.0, 2, true).sum().backward();
    ops::roi_pool(x, rois, 2, 1.0).sum().backward();
    CHECK(x.grad().defined());
    CHECK_FALSE(rois.grad().defined());

    const at::Tensor none = at::empty({0, 5});
    const at::Tensor ya = ops::roi_align(x, none, {2, 3}, 1.0);
    CHECK(ya.sizes() == at::IntArrayRef({0, 3, 2, 3}));
    const at::Tensor yp = ops::roi_pool(x, none, {2, 3}, 1.0);
    CHECK(yp.sizes() == at::IntArrayRef({0, 3, 2, 3}));
    x.mutable_grad().reset();
    (ya.sum() + yp.sum()).backward();
    CHECK(x.grad().defined());
    CHECK(at::equal(x.grad(), at::zeros_like(x)));

    const at::Tensor plain = ops::roi_align(x.detach(), rois.detach(), 2, 1.0);
    CHECK_FALSE(plain.requires_grad());

    // A feature map with no pixels: zeros for RoIAlign, empty bins (0) for RoIPool.
    const at::Tensor flat = at::randn({1, 3, 0, 6});
    CHECK(at::equal(ops::roi_align(flat, rois.detach(), 2, 1.0), at::zeros({4, 3, 2, 2})));
    CHECK(at::equal(ops::roi_pool(flat, rois.detach(), 2, 1.0), at::zeros({4, 3, 2, 2})));
}

namespace {

/// Central finite differences of loss(x) = sum(f(x) * w) against the autograd gradient,
/// float64; returns the largest absolute difference.
template <class F>
double fd_check(const at::Tensor& x0, const at::Tensor& w, F&& f) {
    const at::Tensor x = x0.detach().clone().requires_grad_(true);
    (f(x) * w).sum().backward();
    const at::Tensor analytic = x.grad().clone();
    const double eps = 1e-6;
    at::Tensor xp = x0.detach().clone();
    double* p = xp.data_ptr<double>();
    double worst = 0.0;
    for (std::int64_t i = 0; i < xp.numel(); ++i) {
        const double keep = p[i];
        p[i] = keep + eps;
        const double up = (f(xp) * w).sum().template item<double>();
        p[i] = keep - eps;
        const double down = (f(xp) * w).sum().template item<double>();
        p[i] = keep;
        worst =
            std::max(worst, std::fabs((up - down) / (2 * eps) - analytic.data_ptr<double>()[i]));
    }
    return worst;
}

} // namespace

TEST_CASE("roi_align and roi_pool autograd: float64 finite differences through the autograd path") {
    at::manual_seed(14);
    const at::Tensor x = at::randn({2, 3, 7, 9}, at::kDouble);
    for (const align_case& c : {align_case{0.5, 3, 3, 2, true}, align_case{0.5, 2, 4, 0, false},
                                align_case{1.0, 3, 2, 1, false}}) {
        const at::Tensor rois = make_rois(9, 2, 9 / c.scale, 7 / c.scale, 21, at::kDouble);
        const at::Tensor w = at::randn({9, 3, c.pooled_h, c.pooled_w}, at::kDouble);
        const double err = fd_check(x, w, [&](const at::Tensor& in) {
            return ops::roi_align(in, rois, {c.pooled_h, c.pooled_w}, c.scale, c.sampling,
                                  c.aligned);
        });
        CAPTURE(c.sampling);
        CHECK(err < 1e-7);
    }
    const at::Tensor rois = make_rois(9, 2, 18, 14, 22, at::kDouble);
    const at::Tensor w = at::randn({9, 3, 3, 2}, at::kDouble);
    CHECK(fd_check(x, w, [&](const at::Tensor& in) {
              return ops::roi_pool(in, rois, {3, 2}, 0.5);
          }) < 1e-7);
}

TEST_CASE("roi_align and roi_pool autograd: double backward") {
    at::manual_seed(15);
    const at::Tensor x = at::randn({2, 4, 8, 9}, at::kDouble).requires_grad_(true);
    const at::Tensor rois = make_rois(10, 2, 18, 16, 23, at::kDouble);
    const at::Tensor v = at::randn({2, 4, 8, 9}, at::kDouble);
    {
        // d/d(go) <backward(go), v> = forward(v): RoIAlign is linear.
        const at::Tensor y = ops::roi_align(x, rois, 3, 0.5, 2, true);
        const at::Tensor go = at::randn(y.sizes(), at::kDouble).requires_grad_(true);
        const at::Tensor gx = torch::autograd::grad({y}, {x}, {go}, true, true)[0];
        REQUIRE(gx.requires_grad());
        const at::Tensor ggo = torch::autograd::grad({(gx * v).sum()}, {go})[0];
        CHECK(max_abs(ggo, ops::roi_align(v, rois, 3, 0.5, 2, true)) < 1e-12);
    }
    {
        // For RoIPool: the gather of v at the argmax.
        const at::Tensor y = ops::roi_pool(x, rois, 3, 0.5);
        const at::Tensor go = at::randn(y.sizes(), at::kDouble).requires_grad_(true);
        const at::Tensor gx = torch::autograd::grad({y}, {x}, {go}, true, true)[0];
        const at::Tensor ggo = torch::autograd::grad({(gx * v).sum()}, {go})[0];
        snip::roi_pool_options o;
        o.pooled_h = o.pooled_w = 3;
        o.spatial_scale = 0.5;
        const at::Tensor argmax = std::get<1>(ops::roi_pool_forward(x.detach(), rois, o));
        at::Tensor want = at::zeros(y.sizes(), at::kDouble);
        const auto a = argmax.accessor<std::int32_t, 4>();
        const auto r = rois.accessor<double, 2>();
        const auto vv = v.accessor<double, 4>();
        auto ww = want.accessor<double, 4>();
        for (std::int64_t k = 0; k < a.size(0); ++k)
            for (std::int64_t c = 0; c < a.size(1); ++c)
                for (int ph = 0; ph < 3; ++ph)
                    for (int pw = 0; pw < 3; ++pw) {
                        const std::int32_t m = a[k][c][ph][pw];
                        if (m >= 0) ww[k][c][ph][pw] = vv[std::int64_t(r[k][0])][c][m / 9][m % 9];
                    }
        CHECK(at::equal(ggo, want));
    }
}

// =======================================================================================
// The tensor helpers against snip's functions

TEST_CASE("nms, batched_nms on tensors: snip's indices, strided inputs, empty inputs") {
    at::manual_seed(16);
    const std::int64_t n = 300;
    at::Tensor xy = at::rand({n, 2}) * 200;
    const at::Tensor boxes = at::cat({xy, xy + at::rand({n, 2}) * 60 + 1}, 1);
    const at::Tensor scores = at::rand({n});
    const at::Tensor cls = at::randint(0, 5, {n}, at::kLong);
    std::vector<float> flat(boxes.data_ptr<float>(), boxes.data_ptr<float>() + 4 * n);
    std::vector<float> sc(scores.data_ptr<float>(), scores.data_ptr<float>() + n);
    std::vector<std::int64_t> cl(cls.data_ptr<std::int64_t>(), cls.data_ptr<std::int64_t>() + n);
    const auto keep =
        snip::nms(snip::as_box_view(std::as_const(flat)), std::span<const float>(sc), 0.5);
    const auto bkeep =
        snip::batched_nms(snip::as_box_view(std::as_const(flat)), std::span<const float>(sc),
                          std::span<const std::int64_t>(cl), 0.5);
    auto as_vec = [](const at::Tensor& t) {
        REQUIRE((t.scalar_type() == at::kLong));
        return std::vector<std::int64_t>(t.data_ptr<std::int64_t>(),
                                         t.data_ptr<std::int64_t>() + t.numel());
    };
    CHECK(as_vec(ops::nms(boxes, scores, 0.5)) == keep);
    // Transposed boxes and strided scores give the same result.
    const at::Tensor bt = boxes.t().contiguous().t();
    const at::Tensor st = at::stack({scores, scores}, 1).select(1, 1);
    REQUIRE_FALSE(st.is_contiguous());
    CHECK(as_vec(ops::nms(bt, st, 0.5)) == keep);
    CHECK(as_vec(ops::batched_nms(boxes, scores, cls, 0.5)) == bkeep);
    CHECK(as_vec(ops::batched_nms(bt, st, cls.to(at::kInt), 0.5)) == bkeep);
    CHECK(as_vec(ops::batched_nms(boxes, scores, cls.to(at::kShort), 0.5)) == bkeep);
    CHECK(ops::nms(at::empty({0, 4}), at::empty({0}), 0.5).numel() == 0);
    CHECK(ops::batched_nms(at::empty({0, 4}), at::empty({0}), at::empty({0}, at::kLong), 0.5)
              .numel() == 0);
}

TEST_CASE("box_iou, encode_boxes, decode_boxes on tensors equal snip's functions") {
    at::manual_seed(17);
    const at::Tensor a = at::cat({at::rand({40, 2}) * 100, at::rand({40, 2}) * 100 + 100}, 1);
    const at::Tensor b =
        at::cat({at::rand({30, 2}) * 100, at::rand({30, 2}) * 100 + 100}, 1).to(at::kDouble);
    const at::Tensor ad = a.to(at::kDouble);
    const at::Tensor iou = ops::box_iou(ad, b);
    REQUIRE(iou.sizes() == at::IntArrayRef({40, 30}));
    const auto want =
        snip::iou_matrix(snip::as_box_view<const double>(ad), snip::as_box_view<const double>(b));
    CHECK(std::equal(want.begin(), want.end(), iou.data_ptr<double>()));
    CHECK(ops::box_iou(a, at::empty({0, 4})).sizes() == at::IntArrayRef({40, 0}));

    const std::array<double, 4> means{0.1, -0.1, 0.0, 0.05}, stds{0.1, 0.1, 0.2, 0.2};
    const at::Tensor t = b.slice(0, 0, 30);
    const at::Tensor r = ad.slice(0, 0, 30);
    const at::Tensor d = ops::encode_boxes(r, t, means, stds);
    snip::box_coder<double> coder;
    for (int k = 0; k < 4; ++k) {
        coder.means[k] = means[std::size_t(k)];
        coder.stds[k] = stds[std::size_t(k)];
    }
    const auto dw = snip::encode_boxes(coder, snip::as_box_view<const double>(r),
                                       snip::as_box_view<const double>(t));
    CHECK(std::equal(dw.begin(), dw.end(), d.data_ptr<double>()));
    const at::Tensor back = ops::decode_boxes(r, d, means, stds);
    CHECK(max_abs(back, t) < 1e-9);
    // Inclusive (+1) widths round-trip too; a degenerate reference box is named.
    CHECK(max_abs(ops::decode_boxes(
                      r, ops::encode_boxes(r, t, means, stds, snip::pixel_convention::inclusive),
                      means, stds, snip::pixel_convention::inclusive),
                  t) < 1e-9);
    at::Tensor bad = r.clone();
    bad[2][2] = bad[2][0];
    CHECK_THROWS_WITH_AS(ops::encode_boxes(bad, t), doctest::Contains("reference box 2"),
                         snip::error);
}

TEST_CASE("boxes_to_rois: per-image boxes become K x 5 RoIs") {
    const at::Tensor b0 = at::tensor({1.0f, 2.0f, 3.0f, 4.0f}).reshape({1, 4});
    const at::Tensor b1 =
        at::tensor({5.0f, 6.0f, 7.0f, 8.0f, 9.0f, 10.0f, 11.0f, 12.0f}).reshape({2, 4});
    const at::Tensor r = ops::boxes_to_rois({b0, b1});
    CHECK(r.sizes() == at::IntArrayRef({3, 5}));
    CHECK(at::equal(r.select(1, 0), at::tensor({0.0f, 1.0f, 1.0f})));
    CHECK(at::equal(r.slice(1, 1, 5), at::cat({b0, b1}, 0)));
}
