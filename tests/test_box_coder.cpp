// Tests of include/snip/det/box_coder.hpp: delta encode/decode, guarded exp, clipping.
#include "test_util.hpp"

#include <snip/det/box_coder.hpp>
#include <snip/core/random.hpp>

#include <cmath>
#include <limits>
#include <vector>

using snip::box;
using snip::box_coder;
using snip::box_delta;
using snip::pixel_convention;

namespace snip::reference {

/// Straight textbook encode in double (py-faster-rcnn's bbox_transform written out, with
/// its inclusive +1 widths and x1 + w/2 centres; continuous: no +1).
inline box_delta<double> encode(const box<double>& r, const box<double>& t, const double m[4],
                                const double s[4], bool inclusive) {
    const double e = inclusive ? 1.0 : 0.0;
    const double rw = r.x2 - r.x1 + e, rh = r.y2 - r.y1 + e;
    const double tw = t.x2 - t.x1 + e, th = t.y2 - t.y1 + e;
    const double rcx = r.x1 + 0.5 * rw, rcy = r.y1 + 0.5 * rh;
    const double tcx = t.x1 + 0.5 * tw, tcy = t.y1 + 0.5 * th;
    return {((tcx - rcx) / rw - m[0]) / s[0], ((tcy - rcy) / rh - m[1]) / s[1],
            (std::log(tw / rw) - m[2]) / s[2], (std::log(th / rh) - m[3]) / s[3]};
}

/// Straight decode in double (the original SNIPER proposal op's inclusive form, with the
/// width clamp before exp).
inline box<double> decode(const box<double>& r, const box_delta<double>& d, const double m[4],
                          const double s[4], bool inclusive, double clamp) {
    const double e = inclusive ? 1.0 : 0.0;
    const double rw = r.x2 - r.x1 + e, rh = r.y2 - r.y1 + e;
    const double rcx = r.x1 + 0.5 * (rw - e), rcy = r.y1 + 0.5 * (rh - e);
    const double cx = (d.dx * s[0] + m[0]) * rw + rcx, cy = (d.dy * s[1] + m[1]) * rh + rcy;
    const double w = std::exp(std::min(d.dw * s[2] + m[2], clamp)) * rw;
    const double h = std::exp(std::min(d.dh * s[3] + m[3], clamp)) * rh;
    return {cx - 0.5 * (w - e), cy - 0.5 * (h - e), cx + 0.5 * (w - e), cy + 0.5 * (h - e)};
}

} // namespace snip::reference

namespace {

template <class T>
std::vector<box<T>> random_boxes(std::uint64_t seed, int n, double min_side = 8.0) {  // sides 8..308: ratios < 62.5
    snip::splitmix64 g{seed};
    std::vector<box<T>> out;
    for (int i = 0; i < n; ++i) {
        const double x = g.uniform() * 500 - 50, y = g.uniform() * 500 - 50;
        const double w = min_side + g.uniform() * 300, h = min_side + g.uniform() * 300;
        out.push_back(box<double>{x, y, x + w, y + h}.cast<T>());
    }
    return out;
}

} // namespace

TEST_CASE("encode: hand values, continuous and inclusive") {
    const box_coder<double> c;
    const auto d = c.encode({0, 0, 10, 10}, {5, 5, 15, 25});
    CHECK(d.dx == doctest::Approx(0.5));
    CHECK(d.dy == doctest::Approx(1.0));
    CHECK(d.dw == doctest::Approx(0.0));
    CHECK(d.dh == doctest::Approx(std::log(2.0)));

    const auto r = box_coder<double>::rcnn().encode({0, 0, 10, 10}, {5, 5, 15, 25});
    CHECK(r.dx == doctest::Approx(5.0));
    CHECK(r.dy == doctest::Approx(10.0));
    CHECK(r.dw == doctest::Approx(0.0));
    CHECK(r.dh == doctest::Approx(std::log(2.0) / 0.2));

    // Inclusive: [0, 9] is 10 pixels wide.
    const auto i = box_coder<double>::rcnn(pixel_convention::inclusive).encode({0, 0, 9, 9}, {5, 5, 14, 24});
    CHECK(i.dx == doctest::Approx(5.0));
    CHECK(i.dy == doctest::Approx(10.0));
    CHECK(i.dw == doctest::Approx(0.0));
    CHECK(i.dh == doctest::Approx(std::log(2.0) / 0.2));
}

TEST_CASE("encode and decode agree with the slow reference on random boxes") {
    for (std::uint64_t seed : {1ull, 7ull, 42ull, 1234ull}) {
        for (auto conv : {pixel_convention::continuous, pixel_convention::inclusive}) {
            INFO("seed ", seed, " inclusive ", conv == pixel_convention::inclusive);
            const auto refs = random_boxes<double>(seed, 200);
            const auto tgts = random_boxes<double>(seed + 100, 200);
            auto coder = box_coder<double>::rcnn(conv);
            coder.means[0] = 0.01;
            coder.means[3] = -0.02;
            const auto d = snip::encode_boxes(coder, refs, tgts);
            REQUIRE(d.size() == 800);
            for (std::size_t k = 0; k < refs.size(); ++k) {
                const auto e = snip::reference::encode(refs[k], tgts[k], coder.means, coder.stds,
                                                       conv == pixel_convention::inclusive);
                CHECK(d[4 * k] == doctest::Approx(e.dx).epsilon(1e-12));
                CHECK(d[4 * k + 1] == doctest::Approx(e.dy).epsilon(1e-12));
                CHECK(d[4 * k + 2] == doctest::Approx(e.dw).epsilon(1e-12));
                CHECK(d[4 * k + 3] == doctest::Approx(e.dh).epsilon(1e-12));
            }
            const auto back = snip::decode_boxes(coder, refs, d);
            for (std::size_t k = 0; k < refs.size(); ++k) {
                const auto e = snip::reference::decode(
                    refs[k], {d[4 * k], d[4 * k + 1], d[4 * k + 2], d[4 * k + 3]}, coder.means,
                    coder.stds, conv == pixel_convention::inclusive, coder.max_log_scale);
                CHECK(back[k].x1 == doctest::Approx(e.x1).epsilon(1e-12));
                CHECK(back[k].y2 == doctest::Approx(e.y2).epsilon(1e-12));
                // Round trip.
                CHECK(back[k].x1 == doctest::Approx(tgts[k].x1).epsilon(1e-9));
                CHECK(back[k].y1 == doctest::Approx(tgts[k].y1).epsilon(1e-9));
                CHECK(back[k].x2 == doctest::Approx(tgts[k].x2).epsilon(1e-9));
                CHECK(back[k].y2 == doctest::Approx(tgts[k].y2).epsilon(1e-9));
            }
        }
    }
}

TEST_CASE("round trip in float within a few ulps of the box size") {
    const auto refs = random_boxes<float>(99, 500);
    const auto tgts = random_boxes<float>(98, 500);
    const auto coder = box_coder<float>::rcnn(pixel_convention::inclusive);
    const auto back = snip::decode_boxes(coder, refs, snip::encode_boxes(coder, refs, tgts));
    for (std::size_t k = 0; k < refs.size(); ++k) {
        CHECK(std::fabs(back[k].x1 - tgts[k].x1) < 1e-3f);
        CHECK(std::fabs(back[k].y1 - tgts[k].y1) < 1e-3f);
        CHECK(std::fabs(back[k].x2 - tgts[k].x2) < 1e-3f);
        CHECK(std::fabs(back[k].y2 - tgts[k].y2) < 1e-3f);
    }
}

TEST_CASE("huge deltas stay finite: dw, dh clamped at log(1000/16)") {
    const float inf = std::numeric_limits<float>::infinity();
    const box_coder<float> c;
    const box<float> ref{100, 100, 116, 132};  // 16 x 32
    for (const box_delta<float> d : {box_delta<float>{0, 0, 1e30f, 1e30f}, box_delta<float>{0, 0, inf, inf},
                                     box_delta<float>{1e20f, -1e20f, 80.f, 1e5f},
                                     box_delta<float>{0, 0, -inf, -1e30f}}) {
        const box<float> b = c.decode(ref, d);
        CHECK(std::isfinite(b.x1));
        CHECK(std::isfinite(b.y1));
        CHECK(std::isfinite(b.x2));
        CHECK(std::isfinite(b.y2));
        CHECK(b.x2 - b.x1 <= 16 * 62.5f * 1.0001f);
        CHECK(b.y2 - b.y1 <= 32 * 62.5f * 1.0001f);
    }
    const box<float> big = c.decode(ref, {0, 0, 1e30f, 1e30f});
    CHECK(big.x2 - big.x1 == doctest::Approx(1000.0f));  // 16 px * 62.5
    CHECK(big.y2 - big.y1 == doctest::Approx(2000.0f));
    CHECK((big.x1 + big.x2) * 0.5f == doctest::Approx(108.0f));
    const box<float> none = c.decode(ref, {0, 0, -inf, -inf});
    CHECK(none.x2 - none.x1 == 0.0f);

    // With stds, the clamp applies after de-normalisation: dw * 0.2 capped at 4.135.
    const auto r = box_coder<double>::rcnn();
    const box<double> b = r.decode({0, 0, 10, 10}, {0, 0, 100, 1});
    CHECK(b.x2 - b.x1 == doctest::Approx(625.0));
    CHECK(b.y2 - b.y1 == doctest::Approx(10 * std::exp(0.2)));

    SUBCASE("the view loop with clipping keeps every box in the image") {
        std::vector<box<float>> refs = {ref, ref, {0, 0, 0, 0}};
        std::vector<float> deltas = {1e30f, 1e30f, 1e30f, 1e30f, -1e30f, 0, inf, 0, 0, 0, 0, 0};
        const auto out = snip::decode_boxes(c, refs, deltas, 640.f, 480.f);
        REQUIRE(out.size() == 3);
        for (const auto& o : out) {
            CHECK(o.x1 >= 0);
            CHECK(o.x2 <= 640);
            CHECK(o.y1 >= 0);
            CHECK(o.y2 <= 480);
        }
        CHECK(out[0] == box<float>{640, 480, 640, 480});
        CHECK(out[1].x1 == 0);
        CHECK(out[2] == box<float>{0, 0, 0, 0});  // a degenerate reference stays degenerate
    }
}

TEST_CASE("clip_to_image: continuous [0, W], inclusive [0, W-1]") {
    const box<float> b{-5, -5, 700, 500};
    CHECK(snip::clip_to_image(b, 640.f, 480.f, pixel_convention::continuous) ==
          box<float>{0, 0, 640, 480});
    CHECK(snip::clip_to_image(b, 640.f, 480.f, pixel_convention::inclusive) ==
          box<float>{0, 0, 639, 479});
    const auto c = box_coder<float>::rcnn(pixel_convention::inclusive);
    std::vector<box<float>> refs = {{600, 400, 639, 479}};
    std::vector<float> d = {10, 10, 0, 0};
    const auto out = snip::decode_boxes(c, refs, d, 640.f, 480.f);
    CHECK(out[0] == box<float>{639, 479, 639, 479});
}

TEST_CASE("strided views: a column-major 4 x N buffer in and out") {
    const auto refs = random_boxes<double>(5, 37);
    const auto tgts = random_boxes<double>(6, 37);
    const std::ptrdiff_t n = 37;
    std::vector<double> cm(4 * n);
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        cm[std::size_t(i)] = refs[std::size_t(i)].x1;
        cm[std::size_t(n + i)] = refs[std::size_t(i)].y1;
        cm[std::size_t(2 * n + i)] = refs[std::size_t(i)].x2;
        cm[std::size_t(3 * n + i)] = refs[std::size_t(i)].y2;
    }
    const snip::box_view<const double> cref(cm.data(), n, 1, n);
    const auto coder = box_coder<double>::rcnn();
    std::vector<double> dcm(4 * n);
    snip::box_view<double> dview(dcm.data(), n, 1, n);
    snip::encode_boxes(coder, cref, tgts, dview);
    const auto flat = snip::encode_boxes(coder, refs, tgts);
    for (std::ptrdiff_t i = 0; i < n; ++i)
        for (int k = 0; k < 4; ++k) CHECK(dview(i, k) == flat[std::size_t(4 * i + k)]);
    std::vector<double> ocm(4 * n);
    snip::box_view<double> oview(ocm.data(), n, 1, n);
    snip::decode_boxes(coder, cref, dview, oview);
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        CHECK(oview[i].x1 == doctest::Approx(tgts[std::size_t(i)].x1));
        CHECK(oview[i].y2 == doctest::Approx(tgts[std::size_t(i)].y2));
    }
}

TEST_CASE("empty inputs give empty outputs") {
    std::vector<box<float>> none;
    const box_coder<float> c;
    CHECK(snip::encode_boxes(c, none, none).empty());
    CHECK(snip::decode_boxes(c, none, std::vector<float>{}).empty());
    CHECK(snip::decode_boxes(c, none, std::vector<float>{}, 10.f, 10.f).empty());
}

TEST_CASE("degenerate boxes, size mismatches and bad coders are errors naming the value") {
    using doctest::Contains;
    const box_coder<float> c;
    std::vector<box<float>> refs = {{0, 0, 10, 10}, {5, 5, 5, 9}};
    std::vector<box<float>> tgts = {{0, 0, 10, 10}, {5, 5, 8, 9}};
    CHECK_THROWS_WITH_AS(snip::encode_boxes(c, refs, tgts),
                         Contains("reference box 1 [5, 5, 5, 9] has no positive width/height"),
                         snip::error);
    // A zero-width box is one pixel wide under the inclusive convention.
    const auto inc = box_coder<float>::rcnn(pixel_convention::inclusive);
    CHECK(snip::encode_boxes(inc, refs, tgts).size() == 8);
    std::vector<box<float>> bad_t = {{0, 0, 10, 10}, {9, 5, 8, 9}};
    CHECK_THROWS_WITH_AS(snip::encode_boxes(inc, tgts, bad_t),
                         Contains("target box 1 [9, 5, 8, 9] has no positive width/height"),
                         snip::error);
    std::vector<box<float>> one = {{0, 0, 1, 1}};
    CHECK_THROWS_WITH_AS(snip::encode_boxes(c, refs, one),
                         Contains("2 reference boxes but 1 target boxes"), snip::error);
    std::vector<float> d3 = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK_THROWS_WITH_AS(snip::decode_boxes(c, refs, d3), Contains("2 reference boxes but 3 delta rows"),
                         snip::error);
    std::vector<box<float>> out(1);
    CHECK_THROWS_WITH_AS(snip::decode_boxes(c, refs, tgts, snip::as_box_view(out)),
                         Contains("output holds 1 boxes for 2 reference boxes"), snip::error);
    CHECK_THROWS_WITH_AS(snip::decode_boxes(c, refs, tgts, -1.f, 5.f),
                         Contains("image size must be >= 0, got -1 x 5"), snip::error);
    auto z = box_coder<float>::rcnn();
    z.stds[2] = 0;
    CHECK_THROWS_WITH_AS(snip::encode_boxes(z, tgts, tgts), Contains("std of dw must be finite and > 0, got 0"),
                         snip::error);
    auto nm = box_coder<float>{};
    nm.means[1] = std::nanf("");
    CHECK_THROWS_WITH_AS(nm.validate(), Contains("mean of dy must be finite, got nan"), snip::error);
    std::vector<float> ragged = {1, 2, 3};
    CHECK_THROWS_WITH_AS(snip::decode_boxes(c, one, ragged), Contains("got 3 numbers"), snip::error);
}
