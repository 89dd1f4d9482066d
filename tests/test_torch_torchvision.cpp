// snip's LibTorch ops (torch/ops.hpp) against torchvision 0.14's compiled ops, called through
// the dispatcher after loading torchvision's library (SNIP_TORCHVISION_OPS): RoIAlign (aligned
// and not, sampling ratios 0, 1, 2, RoIs partly outside the map and degenerate), RoIPool,
// forward and backward (torchvision::_roi_align_backward, _roi_pool_backward); NMS on random,
// clustered and tied boxes (identical indices); batched NMS against torchvision::nms per class
// and against the coordinate-offset trick of torchvision's Python batched_nms; the IoU
// matrix against torchvision's box_iou formula written here in LibTorch operations.
// Tolerances: 1e-5 forward, 1e-4 backward. Each case prints its largest differences.
// Skips (printing "[skip] torchvision ops not found") when the library is absent.
#include <snip/core/random.hpp>
#include <snip/torch/ops.hpp>

#include <ATen/core/dispatch/Dispatcher.h>

// LibTorch first: its glog headers define a one-argument CHECK, which doctest's (included
// by the test headers below) must replace, not the other way round.
#include "torch_test_util.hpp"
#include "test_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace ops = snip::torch_ops;

// ---------------------------------------------------------------------------------------
// torchvision through the dispatcher

using torch_test::have_torchvision;
using torch_test::tv_op;

at::Tensor tv_nms(const at::Tensor& boxes, const at::Tensor& scores, double thr) {
    static const auto op =
        tv_op("torchvision::nms").typed<at::Tensor(const at::Tensor&, const at::Tensor&, double)>();
    return op.call(boxes, scores, thr);
}

at::Tensor tv_roi_align(const at::Tensor& x, const at::Tensor& rois, double scale, std::int64_t ph,
                        std::int64_t pw, std::int64_t sampling, bool aligned) {
    static const auto op = tv_op("torchvision::roi_align")
                               .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double,
                                                 std::int64_t, std::int64_t, std::int64_t, bool)>();
    return op.call(x, rois, scale, ph, pw, sampling, aligned);
}

at::Tensor tv_roi_align_backward(const at::Tensor& grad, const at::Tensor& rois, double scale,
                                 std::int64_t ph, std::int64_t pw, at::IntArrayRef sizes,
                                 std::int64_t sampling, bool aligned) {
    static const auto op =
        tv_op("torchvision::_roi_align_backward")
            .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double, std::int64_t,
                              std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                              std::int64_t, bool)>();
    return op.call(grad, rois, scale, ph, pw, sizes[0], sizes[1], sizes[2], sizes[3], sampling,
                   aligned);
}

std::tuple<at::Tensor, at::Tensor> tv_roi_pool(const at::Tensor& x, const at::Tensor& rois,
                                               double scale, std::int64_t ph, std::int64_t pw) {
    static const auto op =
        tv_op("torchvision::roi_pool")
            .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, double,
                                                      std::int64_t, std::int64_t)>();
    return op.call(x, rois, scale, ph, pw);
}

at::Tensor tv_roi_pool_backward(const at::Tensor& grad, const at::Tensor& rois,
                                const at::Tensor& argmax, double scale, std::int64_t ph,
                                std::int64_t pw, at::IntArrayRef sizes) {
    static const auto op =
        tv_op("torchvision::_roi_pool_backward")
            .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                              std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                              std::int64_t)>();
    return op.call(grad, rois, argmax, scale, ph, pw, sizes[0], sizes[1], sizes[2], sizes[3]);
}

/// torchvision.ops.box_iou (Python-only in torchvision), written in LibTorch operations.
at::Tensor tv_box_iou(const at::Tensor& b1, const at::Tensor& b2) {
    const at::Tensor area1 =
        (b1.select(1, 2) - b1.select(1, 0)) * (b1.select(1, 3) - b1.select(1, 1));
    const at::Tensor area2 =
        (b2.select(1, 2) - b2.select(1, 0)) * (b2.select(1, 3) - b2.select(1, 1));
    const at::Tensor lt = at::max(b1.unsqueeze(1).slice(2, 0, 2), b2.slice(1, 0, 2));
    const at::Tensor rb = at::min(b1.unsqueeze(1).slice(2, 2, 4), b2.slice(1, 2, 4));
    const at::Tensor wh = (rb - lt).clamp_min(0);
    const at::Tensor inter = wh.select(2, 0) * wh.select(2, 1);
    return inter / (area1.unsqueeze(1) + area2 - inter);
}

/// torchvision's Python batched_nms for small inputs: one NMS over boxes shifted per class by
/// idx * (max coordinate + 1).
at::Tensor tv_batched_nms_offsets(const at::Tensor& boxes, const at::Tensor& scores,
                                  const at::Tensor& idxs, double thr) {
    if (boxes.numel() == 0) return at::empty({0}, at::kLong);
    const at::Tensor offsets = idxs.to(boxes.scalar_type()) * (boxes.max() + 1);
    return tv_nms(boxes + offsets.unsqueeze(1), scores, thr);
}

/// torchvision::nms class by class, the kept indices merged by decreasing score, equal
/// scores by index (torchvision's Python per-class path, with a stable final sort).
at::Tensor tv_batched_nms_per_class(const at::Tensor& boxes, const at::Tensor& scores,
                                    const at::Tensor& idxs, double thr) {
    std::vector<at::Tensor> kept;
    const at::Tensor classes = std::get<0>(at::_unique(idxs));
    for (std::int64_t i = 0; i < classes.numel(); ++i) {
        const at::Tensor members = (idxs == classes[i]).nonzero().squeeze(1);
        kept.push_back(members.index_select(
            0, tv_nms(boxes.index_select(0, members), scores.index_select(0, members), thr)));
    }
    if (kept.empty()) return at::empty({0}, at::kLong);
    const at::Tensor all = std::get<0>(at::sort(at::cat(kept), 0));
    const at::Tensor order =
        std::get<1>(at::sort(scores.index_select(0, all), /*stable=*/true, 0, /*descending=*/true));
    return all.index_select(0, order);
}

// ---------------------------------------------------------------------------------------
// Data

using torch_test::make_rois;


/// `n` detections in a 1333 x 800 image: jittered copies of `objects` objects (80%) and
/// background boxes; scores rounded to `levels` values when levels > 0 (ties), and every
/// tenth box an exact copy of an earlier one with the same score.
std::pair<at::Tensor, at::Tensor> detections(int n, int objects, std::uint64_t seed, int levels,
                                             at::ScalarType dtype) {
    snip::splitmix64 g{seed};
    struct obj {
        double x, y, w, h, conf;
    };
    std::vector<obj> o;
    for (int k = 0; k < objects; ++k) {
        const double w = 16 * std::pow(25.0, g.uniform()), h = 16 * std::pow(25.0, g.uniform());
        o.push_back({g.uniform() * (1333 - std::min(w, 1333.0)),
                     g.uniform() * (800 - std::min(h, 800.0)), w, h, 0.3 + 0.7 * g.uniform()});
    }
    std::vector<double> b, s;
    for (int i = 0; i < n; ++i) {
        double x1, y1, x2, y2, sc;
        if (i % 10 == 9 && i > 0) { // an exact duplicate of an earlier detection
            const auto j = std::size_t(g.below(std::uint64_t(i)));
            x1 = b[4 * j], y1 = b[4 * j + 1], x2 = b[4 * j + 2], y2 = b[4 * j + 3], sc = s[j];
        } else if (objects == 0 || g.uniform() < 0.2) {
            x1 = g.uniform() * 1200, y1 = g.uniform() * 700;
            x2 = x1 + 4 + g.uniform() * 300, y2 = y1 + 4 + g.uniform() * 300;
            sc = 0.3 * g.uniform();
        } else {
            const obj& q = o[std::size_t(g.below(std::uint64_t(objects)))];
            const double jx = 0.2 * q.w, jy = 0.2 * q.h;
            x1 = q.x + (2 * g.uniform() - 1) * jx, y1 = q.y + (2 * g.uniform() - 1) * jy;
            x2 = std::max(x1 + 1, q.x + q.w + (2 * g.uniform() - 1) * jx);
            y2 = std::max(y1 + 1, q.y + q.h + (2 * g.uniform() - 1) * jy);
            sc = q.conf * (0.5 + 0.5 * g.uniform());
        }
        if (levels > 0) sc = std::round(sc * levels) / levels;
        b.insert(b.end(), {x1, y1, x2, y2});
        s.push_back(sc);
    }
    return {at::tensor(b, at::kDouble).reshape({n, 4}).to(dtype),
            at::tensor(s, at::kDouble).to(dtype)};
}

double max_abs(const at::Tensor& a, const at::Tensor& b) {
    REQUIRE(a.sizes() == b.sizes());
    if (a.numel() == 0) return 0.0;
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

bool same_indices(const at::Tensor& a, const at::Tensor& b) {
    return a.sizes() == b.sizes() && at::equal(a.to(at::kLong), b.to(at::kLong));
}

/// torchvision 0.14's CPU roi_align throws ("cannot create std::vector larger than
/// max_size()") for aligned = true, adaptive sampling and a RoI inverted along exactly one
/// axis (a negative sample count sizes its buffer); snip gives 0 for it. Such RoIs are
/// inverted along the other axis too before the comparison (both give 0 then).
at::Tensor invert_both_axes(const at::Tensor& rois) {
    const at::Tensor one =
        (rois.select(1, 3) < rois.select(1, 1)) ^ (rois.select(1, 4) < rois.select(1, 2));
    at::Tensor r = rois.clone();
    r.select(1, 2).copy_(at::where(one, rois.select(1, 4), rois.select(1, 2)));
    r.select(1, 4).copy_(at::where(one, rois.select(1, 2), rois.select(1, 4)));
    return r;
}

const char* name(at::ScalarType t) {
    return t == at::kFloat ? "float32" : "float64";
}

} // namespace

TEST_CASE("torchvision agreement: roi_align forward and backward") {
    if (!have_torchvision()) return;
    for (const at::ScalarType dtype : {at::kFloat, at::kDouble}) {
        double worst_fwd = 0, worst_bwd = 0;
        int configs = 0;
        for (const std::uint64_t seed : {1u, 2u, 3u})
            for (const bool aligned : {false, true})
                for (const int sampling : {0, 1, 2})
                    for (const double scale : {0.25, 0.5}) {
                        CAPTURE(seed);
                        CAPTURE(aligned);
                        CAPTURE(sampling);
                        CAPTURE(scale);
                        at::manual_seed(seed);
                        const at::Tensor feats = at::randn({2, 16, 24, 30}, dtype);
                        // Every other configuration reads channels-last features in place.
                        const at::Tensor x = (configs % 2)
                                                 ? feats.contiguous(at::MemoryFormat::ChannelsLast)
                                                 : feats;
                        const at::Tensor raw =
                            make_rois(72, 2, 30 / scale, 24 / scale, seed * 7 + 1, dtype);
                        const int ph = 7, pw = (sampling == 1) ? 5 : 7;
                        const bool tv_bug = aligned && sampling <= 0;
                        const at::Tensor rois = tv_bug ? invert_both_axes(raw) : raw;
                        if (tv_bug) { // snip: 0 where torchvision throws
                            const at::Tensor one = (raw.select(1, 3) < raw.select(1, 1)) ^
                                                   (raw.select(1, 4) < raw.select(1, 2));
                            REQUIRE(one.any().item<bool>());
                            const at::Tensor y =
                                ops::roi_align(feats, raw, {ph, pw}, scale, sampling, aligned);
                            CHECK(at::equal(y.index({one}), at::zeros_like(y.index({one}))));
                        }
                        const at::Tensor want =
                            tv_roi_align(feats, rois, scale, ph, pw, sampling, aligned);
                        const at::Tensor xg = x.detach().requires_grad_(true);
                        const at::Tensor got =
                            ops::roi_align(xg, rois, {ph, pw}, scale, sampling, aligned);
                        REQUIRE(want.abs().max().item<double>() > 0.1); // not a vacuous comparison
                        const double fwd = max_abs(got, want);
                        CHECK(fwd <= 1e-5);
                        const at::Tensor grad = at::randn(want.sizes(), dtype);
                        got.backward(grad);
                        const at::Tensor gwant = tv_roi_align_backward(
                            grad, rois, scale, ph, pw, feats.sizes(), sampling, aligned);
                        const double bwd = max_abs(xg.grad(), gwant);
                        CHECK(bwd <= 1e-4);
                        worst_fwd = std::max(worst_fwd, fwd);
                        worst_bwd = std::max(worst_bwd, bwd);
                        ++configs;
                    }
        std::printf("[torchvision] roi_align %s: %d configurations (72 RoIs each), max |forward "
                    "difference| %.3g, max |backward difference| %.3g\n",
                    name(dtype), configs, worst_fwd, worst_bwd);
    }
}

TEST_CASE("torchvision agreement: roi_pool forward (values and argmax) and backward") {
    if (!have_torchvision()) return;
    for (const at::ScalarType dtype : {at::kFloat, at::kDouble}) {
        double worst_fwd = 0, worst_bwd = 0;
        int configs = 0;
        for (const std::uint64_t seed : {4u, 5u, 6u})
            for (const double scale : {1.0, 0.5, 0.25}) {
                CAPTURE(seed);
                CAPTURE(scale);
                at::manual_seed(seed);
                const at::Tensor feats = at::randn({2, 16, 24, 30}, dtype);
                const at::Tensor rois =
                    make_rois(72, 2, 30 / scale, 24 / scale, seed * 7 + 2, dtype);
                const auto [want, want_arg] = tv_roi_pool(feats, rois, scale, 7, 6);
                snip::roi_pool_options o;
                o.pooled_h = 7;
                o.pooled_w = 6;
                o.spatial_scale = scale;
                const auto [got_k, got_arg] = ops::roi_pool_forward(feats, rois, o);
                CHECK(same_indices(got_arg, want_arg));
                const at::Tensor xg = feats.detach().requires_grad_(true);
                const at::Tensor got = ops::roi_pool(xg, rois, {7, 6}, scale);
                CHECK(at::equal(got.detach(), got_k));
                REQUIRE(want.abs().max().item<double>() > 0.1); // not a vacuous comparison
                const double fwd = max_abs(got, want);
                CHECK(fwd <= 1e-5);
                const at::Tensor grad = at::randn(want.sizes(), dtype);
                got.backward(grad);
                const at::Tensor gwant =
                    tv_roi_pool_backward(grad, rois, want_arg, scale, 7, 6, feats.sizes());
                const double bwd = max_abs(xg.grad(), gwant);
                CHECK(bwd <= 1e-4);
                worst_fwd = std::max(worst_fwd, fwd);
                worst_bwd = std::max(worst_bwd, bwd);
                ++configs;
            }
        std::printf("[torchvision] roi_pool %s: %d configurations (72 RoIs each), max |forward "
                    "difference| %.3g (argmax identical), max |backward difference| %.3g\n",
                    name(dtype), configs, worst_fwd, worst_bwd);
    }
}

TEST_CASE("torchvision agreement: nms gives identical indices (random, clustered, ties)") {
    if (!have_torchvision()) return;
    int cases = 0;
    std::int64_t kept = 0;
    for (const at::ScalarType dtype : {at::kFloat, at::kDouble})
        for (const std::uint64_t seed : {1u, 2u, 3u})
            for (const int objects : {0, 40, 300}) // 0: uniform random boxes
                for (const int levels : {0, 20}) { // 20: scores on a 0.05 grid, many ties
                    const auto [boxes, scores] = detections(
                        3000, objects, seed * 100 + std::uint64_t(objects), levels, dtype);
                    for (const double thr : {0.3, 0.5, 0.7}) {
                        CAPTURE(seed);
                        CAPTURE(objects);
                        CAPTURE(levels);
                        CAPTURE(thr);
                        const at::Tensor want = tv_nms(boxes, scores, thr);
                        const at::Tensor got = ops::nms(boxes, scores, thr);
                        CHECK(same_indices(got, want));
                        kept += want.numel();
                        ++cases;
                    }
                }
    std::printf("[torchvision] nms: %d cases of 3000 boxes (%lld kept in all): indices identical\n",
                cases, static_cast<long long>(kept));
}

TEST_CASE("torchvision agreement: batched_nms (per class, and the coordinate-offset trick)") {
    if (!have_torchvision()) return;
    int cases = 0;
    for (const std::uint64_t seed : {1u, 2u, 3u})
        for (const int levels : {0, 20})
            for (const double thr : {0.5, 0.7}) {
                CAPTURE(seed);
                CAPTURE(levels);
                CAPTURE(thr);
                auto [boxes, scores] = detections(2500, 200, seed + 50, levels, at::kFloat);
                at::manual_seed(seed);
                const at::Tensor idxs = at::randint(0, 20, {boxes.size(0)}, at::kLong);
                const at::Tensor got = ops::batched_nms(boxes, scores, idxs, thr);
                CHECK(same_indices(got, tv_batched_nms_per_class(boxes, scores, idxs, thr)));
                // The offset trick shifts coordinates by up to 20 * 1334: with coordinates on a
                // 1/8 grid every shifted value and difference is exact in float32, so the IoUs
                // (and the kept indices) are those of per-class NMS.
                const at::Tensor q = (boxes * 8).round() / 8;
                CHECK(same_indices(ops::batched_nms(q, scores, idxs, thr),
                                   tv_batched_nms_offsets(q, scores, idxs, thr)));
                cases += 2;
            }
    std::printf(
        "[torchvision] batched_nms: %d cases of 2500 boxes in 20 classes: indices identical\n",
        cases);
}

TEST_CASE("torchvision agreement: box_iou against torchvision's formula") {
    if (!have_torchvision()) return;
    for (const at::ScalarType dtype : {at::kFloat, at::kDouble}) {
        const auto [a, sa] = detections(700, 50, 11, 0, dtype);
        const auto [b, sb] = detections(500, 50, 12, 0, dtype);
        const double d = max_abs(ops::box_iou(a, b), tv_box_iou(a, b));
        CHECK(d <= 1e-5);
        // Strided inputs give the same matrix.
        CHECK(at::equal(ops::box_iou(a.t().contiguous().t(), b), ops::box_iou(a, b)));
        std::printf("[torchvision] box_iou %s: 700 x 500, max |difference| %.3g\n", name(dtype), d);
    }
}
