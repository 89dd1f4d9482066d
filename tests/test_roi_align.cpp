// roi_align.hpp: RoIAlign forward/backward against a slow reference written here from the
// torchvision definition (one output element at a time, nothing precomputed), on strided
// and empty inputs, with float64 finite-difference checks of the backward.
#include "roi_test_util.hpp"
#include "test_util.hpp"

#include <snip/core/random.hpp>
#include <snip/ops/roi_align.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace {

using namespace roi_test;


/// Bilinear interpolation of plane (n, c) at (y, x) with torchvision's boundary rule, and
/// the four (pixel, weight) pairs it used (for the reference backward).
template <class T>
T ref_bilinear(const tensor4<T>& f, idx n, idx c, T y, T x, std::array<idx, 4>* ys = nullptr,
               std::array<idx, 4>* xs = nullptr, std::array<T, 4>* ws = nullptr) {
    const idx H = f.ext[2], W = f.ext[3];
    if (y < T(-1) || y > T(H) || x < T(-1) || x > T(W)) {
        if (ws) *ws = {T(0), T(0), T(0), T(0)};
        return T(0);
    }
    y = std::max(y, T(0));
    x = std::max(x, T(0));
    idx y0 = static_cast<idx>(std::floor(y)), x0 = static_cast<idx>(std::floor(x));
    idx y1 = y0 + 1, x1 = x0 + 1;
    if (y0 >= H - 1) {
        y0 = y1 = H - 1;
        y = T(y0);
    }
    if (x0 >= W - 1) {
        x0 = x1 = W - 1;
        x = T(x0);
    }
    const T ly = y - T(y0), lx = x - T(x0);
    const T w[4] = {(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx};
    if (ys) *ys = {y0, y0, y1, y1};
    if (xs) *xs = {x0, x1, x0, x1};
    if (ws) *ws = {w[0], w[1], w[2], w[3]};
    return w[0] * f(n, c, y0, x0) + w[1] * f(n, c, y0, x1) + w[2] * f(n, c, y1, x0) +
           w[3] * f(n, c, y1, x1);
}

/// The geometry of one RoI, straight from the definition.
template <class T>
struct ref_geometry {
    T sy, sx, bh, bw;
    long gh, gw;
    T count;
};
template <class T>
ref_geometry<T> ref_geom(const roi& r, const snip::roi_align_options& o) {
    const T s = T(o.spatial_scale), off = o.aligned ? T(0.5) : T(0);
    ref_geometry<T> g;
    g.sx = T(r.x1) * s - off;
    g.sy = T(r.y1) * s - off;
    T w = (T(r.x2) * s - off) - g.sx, h = (T(r.y2) * s - off) - g.sy;
    if (!o.aligned) {
        w = std::max(w, T(1));
        h = std::max(h, T(1));
    }
    g.bh = h / T(o.pooled_h);
    g.bw = w / T(o.pooled_w);
    g.gh = o.sampling_ratio > 0 ? o.sampling_ratio : long(std::ceil(h / T(o.pooled_h)));
    g.gw = o.sampling_ratio > 0 ? o.sampling_ratio : long(std::ceil(w / T(o.pooled_w)));
    g.count = T(std::max(g.gh * g.gw, 1L));
    return g;
}

template <class T>
tensor4<T> ref_forward(const tensor4<T>& f, const std::vector<roi>& rois,
                       const snip::roi_align_options& o) {
    const idx K = idx(rois.size()), C = f.ext[1];
    tensor4<T> out({K, C, o.pooled_h, o.pooled_w});
    for (idx k = 0; k < K; ++k)
        for (idx c = 0; c < C; ++c)
            for (int ph = 0; ph < o.pooled_h; ++ph)
                for (int pw = 0; pw < o.pooled_w; ++pw) {
                    const auto g = ref_geom<T>(rois[std::size_t(k)], o);
                    T sum = 0;
                    for (long iy = 0; iy < g.gh; ++iy)
                        for (long ix = 0; ix < g.gw; ++ix) {
                            const T y = g.sy + T(ph) * g.bh + (T(iy) + T(0.5)) * g.bh / T(g.gh);
                            const T x = g.sx + T(pw) * g.bw + (T(ix) + T(0.5)) * g.bw / T(g.gw);
                            sum += ref_bilinear(f, idx(rois[std::size_t(k)].b), c, y, x);
                        }
                    out(k, c, ph, pw) = sum / g.count;
                }
    return out;
}

template <class T>
tensor4<T> ref_backward(const tensor4<T>& grad, const std::vector<roi>& rois,
                        std::array<idx, 4> fext, const snip::roi_align_options& o) {
    tensor4<T> gf(fext);
    for (idx k = 0; k < grad.ext[0]; ++k)
        for (idx c = 0; c < grad.ext[1]; ++c)
            for (int ph = 0; ph < o.pooled_h; ++ph)
                for (int pw = 0; pw < o.pooled_w; ++pw) {
                    const auto g = ref_geom<T>(rois[std::size_t(k)], o);
                    const idx n = idx(rois[std::size_t(k)].b);
                    for (long iy = 0; iy < g.gh; ++iy)
                        for (long ix = 0; ix < g.gw; ++ix) {
                            const T y = g.sy + T(ph) * g.bh + (T(iy) + T(0.5)) * g.bh / T(g.gh);
                            const T x = g.sx + T(pw) * g.bw + (T(ix) + T(0.5)) * g.bw / T(g.gw);
                            std::array<idx, 4> ys{}, xs{};
                            std::array<T, 4> ws{};
                            ref_bilinear(gf, n, c, y, x, &ys, &xs, &ws);
                            for (int j = 0; j < 4; ++j)
                                if (ws[j] != T(0))
                                    gf(n, c, ys[j], xs[j]) += grad(k, c, ph, pw) * ws[j] / g.count;
                        }
                }
    return gf;
}

template <class T>
constexpr double tolerance() {
    return sizeof(T) == 4 ? 2e-5 : 1e-12;
}

snip::roi_align_options options(int ph, int pw, double scale, int sr, bool aligned) {
    snip::roi_align_options o;
    o.pooled_h = ph;
    o.pooled_w = pw;
    o.spatial_scale = scale;
    o.sampling_ratio = sr;
    o.aligned = aligned;
    return o;
}

/// 4 x 5 map with f(y, x) = 10 y + x: bilinear interpolation of it is exact.
tensor4<double> ramp() {
    tensor4<double> f({1, 1, 4, 5});
    for (idx y = 0; y < 4; ++y)
        for (idx x = 0; x < 5; ++x)
            f(0, 0, y, x) = 10.0 * double(y) + double(x);
    return f;
}

std::vector<double> align_one(const tensor4<double>& f, const roi& q,
                              const snip::roi_align_options& o) {
    const double r[5] = {q.b, q.x1, q.y1, q.x2, q.y2};
    return snip::roi_align(f.view(), snip::roi_view<const double>(r, 1), o);
}

} // namespace

TEST_CASE("roi_view: fields, boxes() and conversions") {
    double buf[2 * 7] = {0, 0, 1, 2, 3, 4, 0, 0, 1, 5, 6, 7, 8, 0};
    const snip::roi_view<double> v(buf + 1, 2, 7);
    CHECK(v.size() == 2);
    CHECK(v.extent(1) == 5);
    CHECK(!v.is_contiguous());
    CHECK(v.batch_index(1) == 1);
    CHECK(v[1] == snip::box<double>{5, 6, 7, 8});
    const snip::box_view<double> b = v.boxes();
    CHECK(b.size() == 2);
    CHECK(b[0] == snip::box<double>{1, 2, 3, 4});
    const snip::roi_view<const double> c = v;
    CHECK(c.subview(1, 1)[0].x2 == 7);
    CHECK(snip::roi_view<float>().boxes().empty());
}

TEST_CASE("roi_align: hand-computed values") {
    const auto f = ramp(); // 10 y + x on 4 x 5

    SUBCASE("aligned: the -0.5 offset puts the samples at pixel centres") {
        // RoI [0.5, 2.5]^2 -> feature [0, 2]^2; 2 x 2 bins, one sample each at 0.5, 1.5.
        const auto out = align_one(f, {0, 0.5, 0.5, 2.5, 2.5}, options(2, 2, 1.0, 1, true));
        CHECK(out == std::vector<double>{5.5, 6.5, 15.5, 16.5});
        // One bin, 2 x 2 samples: their mean, the value at the bin centre (1, 1).
        CHECK(align_one(f, {0, 0.5, 0.5, 2.5, 2.5}, options(1, 1, 1.0, 2, true))[0] ==
              doctest::Approx(11.0));
    }
    SUBCASE("not aligned: no offset; malformed RoIs become 1 x 1") {
        CHECK(align_one(f, {0, 0.5, 0.5, 2.5, 2.5}, options(1, 1, 1.0, 1, false))[0] ==
              doctest::Approx(16.5));
        // x2 < x1 and y2 == y1: a 1 x 1 RoI at (x1, y1): one sample at y 1.5, x 2.5.
        CHECK(align_one(f, {0, 2.0, 1.0, 0.0, 1.0}, options(1, 1, 1.0, 1, false))[0] ==
              doctest::Approx(17.5));
    }
    SUBCASE("spatial scale") {
        // Image RoI [2, 10] x [2, 6] at scale 1/2 -> feature [1, 5] x [1, 3], centre (2, 3).
        CHECK(align_one(f, {0, 2, 2, 10, 6}, options(1, 1, 0.5, 2, false))[0] ==
              doctest::Approx(23.0));
    }
    SUBCASE("samples below -1 count as 0, samples in [-1, 0] are clamped to 0") {
        // y samples at -1.5 (outside) and -0.5 (clamped to row 0); x at 0.25 and 0.75.
        // (0 + 0 + 0.25 + 0.75) / 4.
        CHECK(align_one(f, {0, 0, -2, 1, 0}, options(1, 1, 1.0, 2, false))[0] ==
              doctest::Approx(0.25));
        // Fully outside: 0.
        CHECK(align_one(f, {0, 20, 20, 30, 30}, options(2, 2, 1.0, 0, true)) ==
              std::vector<double>(4, 0.0));
    }
    SUBCASE("samples in [H - 1, H] read the last row") {
        // y sample at 3.5 on a 4-row map reads row 3; x at 1.5.
        CHECK(align_one(f, {0, 1, 3, 2, 4}, options(1, 1, 1.0, 1, false))[0] ==
              doctest::Approx(31.5));
        // y at 4.5 > H: outside.
        CHECK(align_one(f, {0, 1, 4, 2, 5}, options(1, 1, 1.0, 1, false))[0] == 0.0);
    }
    SUBCASE("adaptive sampling: ceil(roi size / pooled size) samples per bin") {
        // aligned RoI of height 3 and width 1, 2 x 1 bins -> grid 2 x 1 (ceil(1.5), ceil(1)).
        // Rows [0, 1.5] and [1.5, 3]: samples 0.375, 1.125 and 1.875, 2.625; x = 0.5.
        const auto out = align_one(f, {0, 0.5, 0.5, 1.5, 3.5}, options(2, 1, 1.0, 0, true));
        CHECK(out[0] == doctest::Approx(10 * 0.75 + 0.5));
        CHECK(out[1] == doctest::Approx(10 * 2.25 + 0.5));
    }
    SUBCASE("adaptive sampling with a whole number of pixels per bin") {
        // aligned RoI 2 x 4 pixels, 1 x 2 bins: grid ceil(2) x ceil(2) = 2 x 2 per bin.
        tensor4<double> sq({1, 1, 4, 5});
        for (idx y = 0; y < 4; ++y)
            for (idx x = 0; x < 5; ++x)
                sq(0, 0, y, x) = double(x * x);
        // x samples 0.5, 1.5 (bin 0) and 2.5, 3.5 (bin 1); x^2 is linear between pixels.
        const auto out = align_one(sq, {0, 0.5, 0.5, 4.5, 2.5}, options(1, 2, 1.0, 0, true));
        CHECK(out[0] == doctest::Approx((0.5 + 2.5) / 2));
        CHECK(out[1] == doctest::Approx((6.5 + 12.5) / 2));
    }
    SUBCASE("an empty adaptive grid (aligned, inverted RoI) gives 0") {
        // Inverted by more than one bin along x: grid_w = ceil(negative) < 0.
        CHECK(align_one(f, {0, 4, 0, 0, 3}, options(1, 1, 1.0, 0, true))[0] == 0.0);
        // With a fixed sampling ratio the inverted RoI is sampled backwards, as torchvision.
        const auto g = align_one(f, {0, 3.5, 0.5, 1.5, 2.5}, options(1, 1, 1.0, 1, true));
        CHECK(g[0] == doctest::Approx(10 * 1.0 + 2.0));
    }
}

TEST_CASE_TEMPLATE("roi_align: forward and backward match the reference", T, float, double) {
    const std::array<idx, 4> fext{2, 11, 9, 11}; // 11 channels: a group of 8 and 3 single
    const double scale = 0.5;                    // the image is 22 x 18
    std::size_t nonzero = 0, total = 0;  // of the reference outputs
    for (std::uint64_t seed = 1; seed <= 5; ++seed)
        for (bool aligned : {false, true})
            for (int sr : {0, 1, 2, 3}) {
                const int ph = seed % 2 ? 3 : 2, pw = seed % 2 ? 4 : 7;
                const auto o = options(ph, pw, scale, sr, aligned);
                CAPTURE(seed);
                CAPTURE(aligned);
                CAPTURE(sr);
                const auto f = random_features<T>(fext, seed);
                const auto rois = random_rois(24, 2, 22, 18, seed * 7919);
                const auto rs = store_rois<T>(rois, 0);
                const auto stored = as_stored<T>(rois);

                const auto want = ref_forward(f, stored, o);
                for (const T v : want.v) {
                    nonzero += v != T(0);
                    ++total;
                }
                tensor4<T> out({24, 11, ph, pw}, T(-5));
                snip::roi_align(f.view(), rs.view, out.view(), o);
                CHECK(max_rel_diff(out, want) < tolerance<T>());

                const auto grad = random_features<T>({24, 11, ph, pw}, seed + 100);
                const auto want_g = ref_backward(grad, stored, fext, o);
                tensor4<T> gf(fext);
                snip::roi_align_backward(grad.view(), rs.view, gf.view(), o);
                CHECK(max_rel_diff(gf, want_g) < tolerance<T>());

                // The backward is the adjoint: <A f, g> == <f, A^T g>.
                double lhs = 0, rhs = 0;
                for (std::size_t i = 0; i < out.v.size(); ++i)
                    lhs += double(out.v[i]) * double(grad.v[i]);
                for (std::size_t i = 0; i < f.v.size(); ++i)
                    rhs += double(f.v[i]) * double(gf.v[i]);
                CHECK(lhs == doctest::Approx(rhs).epsilon(sizeof(T) == 4 ? 1e-4 : 1e-12));
            }
    // the comparisons are not over empty bins: most RoIs overlap the features (64%)
    CHECK(nonzero > total / 2);
}

TEST_CASE_TEMPLATE("roi_align: strided features, RoIs and outputs give identical results", T, float,
                   double) {
    const std::array<idx, 4> fext{2, 10, 7, 8};
    const auto o = options(3, 3, 0.25, 0, true);
    const auto f = random_features<T>(fext, 42);
    const auto rois = random_rois(16, 2, 32, 28, 43);
    const auto base_rois = store_rois<T>(rois, 0);
    const auto want = snip::roi_align(f.view(), base_rois.view, o);
    const auto grad = random_features<T>({16, 10, 3, 3}, 44);
    const auto want_g = snip::roi_align_backward(grad.view(), base_rois.view, fext, o);
    for (layout l : {layout::nchw, layout::nhwc, layout::padded, layout::flipped_x})
        for (int rk : {0, 1, 2}) {
            const std::string lname = name(l);
            CAPTURE(lname);
            CAPTURE(rk);
            const auto fl = lay_out(f, l);
            const auto rs = store_rois<T>(rois, rk);
            // The output in the same exotic layout.
            auto out = lay_out(tensor4<T>({16, 10, 3, 3}, T(-9)), l);
            snip::roi_align(snip::feature_view<const T>(fl.view), rs.view, out.view, o);
            const auto got = read_back(out.view);
            CHECK(got.v == want); // same arithmetic in the same order: bit-identical
            auto gl = lay_out(tensor4<T>(fext), l);
            auto gin = lay_out(grad, l);
            snip::roi_align_backward(gin.view, rs.view, gl.view, o);
            CHECK(read_back(gl.view).v == want_g);
            // The gaps of the padded layout were not touched.
            if (l == layout::padded) CHECK(out.buf[0] == T(-77));
        }
}

TEST_CASE("roi_align: results do not depend on the thread count") {
    const std::array<idx, 4> fext{2, 40, 12, 12};
    const auto f = random_features<float>(fext, 5);
    for (int K : {1, 3, 37}) { // few RoIs: the channels are split too
        CAPTURE(K);
        const auto rois = random_rois(K, 2, 48, 48, 6);
        const auto rs = store_rois<float>(rois, 0);
        const auto o = options(7, 7, 0.25, 0, true);
        const auto grad = random_features<float>({K, 40, 7, 7}, 7);
        const auto one = snip::roi_align(f.view(), rs.view, o, 1);
        const auto one_g = snip::roi_align_backward(grad.view(), rs.view, fext, o, 1);
        for (unsigned t : {2u, 3u, 8u}) {
            CHECK(snip::roi_align(f.view(), rs.view, o, t) == one);
            CHECK(snip::roi_align_backward(grad.view(), rs.view, fext, o, t) == one_g);
        }
    }
}

TEST_CASE("roi_align: the backward accumulates into grad_features") {
    const std::array<idx, 4> fext{1, 2, 5, 5};
    const auto rois = random_rois(4, 1, 5, 5, 3);
    const auto rs = store_rois<double>(rois, 0);
    const auto o = options(2, 2, 1.0, 2, false);
    const auto grad = random_features<double>({4, 2, 2, 2}, 4);
    const auto g = snip::roi_align_backward(grad.view(), rs.view, fext, o);
    tensor4<double> acc(fext, 1.0);
    snip::roi_align_backward(grad.view(), rs.view, acc.view(), o);
    for (std::size_t i = 0; i < g.size(); ++i)
        CHECK(acc.v[i] == doctest::Approx(g[i] + 1.0));
}

TEST_CASE("roi_align: float64 central finite differences of the backward") {
    // The forward is linear in the features, so the central difference is exact up to
    // rounding at every point; RoIs of every kind, both modes, every sampling ratio.
    const std::array<idx, 4> fext{2, 9, 5, 6};
    for (bool aligned : {false, true})
        for (int sr : {0, 1, 2, 3}) {
            CAPTURE(aligned);
            CAPTURE(sr);
            const auto o = options(2, 3, 0.5, sr, aligned);
            auto f = random_features<double>(fext, 11 + std::uint64_t(sr));
            const auto rois = random_rois(9, 2, 12, 10, 12 + std::uint64_t(sr));
            const auto rs = store_rois<double>(rois, 0);
            const auto w = random_features<double>({9, 9, 2, 3}, 13);
            auto loss = [&] {
                const auto out = snip::roi_align(f.view(), rs.view, o);
                double s = 0;
                for (std::size_t i = 0; i < out.size(); ++i)
                    s += out[i] * w.v[i];
                return s;
            };
            const auto g = snip::roi_align_backward(w.view(), rs.view, fext, o);
            const double h = 1e-3;
            double worst = 0;
            for (std::size_t i = 0; i < f.v.size(); ++i) {
                const double v = f.v[i];
                f.v[i] = v + h;
                const double up = loss();
                f.v[i] = v - h;
                const double down = loss();
                f.v[i] = v;
                worst = std::max(worst, std::fabs((up - down) / (2 * h) - g[i]));
            }
            CHECK(worst < 1e-9);
        }
}

TEST_CASE("roi_align: empty inputs") {
    const auto f = random_features<float>({1, 3, 4, 4}, 1);
    const auto o = options(2, 2, 1.0, 2, true);
    SUBCASE("no RoIs: no-op") {
        const snip::roi_view<const float> none;
        CHECK(snip::roi_align(f.view(), none, o).empty());
        snip::roi_align(f.view(), none, snip::feature_view<float>(nullptr, 0, 3, 2, 2), o);
        CHECK(snip::roi_align_backward(snip::feature_view<const float>(nullptr, 0, 3, 2, 2), none,
                                       {1, 3, 4, 4}, o) == std::vector<float>(48, 0.0f));
    }
    SUBCASE("no channels") {
        const float r[5] = {0, 0, 0, 2, 2};
        const tensor4<float> empty({1, 0, 4, 4});
        CHECK(snip::roi_align(empty.view(), snip::roi_view<const float>(r, 1), o).empty());
    }
    SUBCASE("an empty feature map: every sample is outside") {
        const float r[5] = {0, 0, 0, 2, 2};
        const tensor4<float> empty({1, 2, 0, 4});
        CHECK(snip::roi_align(empty.view(), snip::roi_view<const float>(r, 1), o) ==
              std::vector<float>(8, 0.0f));
    }
}

TEST_CASE("roi_align: bad input throws snip::error naming the RoI and the value") {
    const auto f = random_features<double>({2, 1, 4, 4}, 1);
    const auto o = options(2, 2, 1.0, 2, true);
    auto run = [&](std::vector<double> r) {
        snip::roi_align(f.view(), snip::roi_view<const double>(r.data(), idx(r.size() / 5)), o);
    };
    const std::vector<double> ok = {0, 0, 0, 2, 2};
    CHECK_NOTHROW(run(ok));
    auto with = [&](int field, double v) {
        std::vector<double> r = ok;
        r.insert(r.end(), ok.begin(), ok.end());
        r[5 + std::size_t(field)] = v;
        return r;
    };
    CHECK_THROWS_WITH_AS(run(with(0, 1.5)), doctest::Contains("RoI 1 has batch index 1.5"),
                         snip::error);
    CHECK_THROWS_WITH_AS(
        run(with(0, 2)),
        doctest::Contains("RoI 1 has batch index 2, expected an integer in [0, 2)"), snip::error);
    CHECK_THROWS_WITH_AS(run(with(0, -1)), doctest::Contains("batch index -1"), snip::error);
    CHECK_THROWS_AS(run(with(0, std::nan(""))), snip::error);
    CHECK_THROWS_WITH_AS(run(with(3, std::nan(""))), doctest::Contains("RoI 1 has a non-finite x2"),
                         snip::error);
    CHECK_THROWS_WITH_AS(run(with(2, INFINITY)), doctest::Contains("non-finite y1 = inf"),
                         snip::error);
    CHECK_THROWS_WITH_AS(run(with(1, 1e30)), doctest::Contains("RoI 1 has x1 = 1e+30"),
                         snip::error);
    const double r[5] = {0, 0, 0, 2, 2};
    const snip::roi_view<const double> rv(r, 1);
    std::vector<double> buf(8);
    CHECK_THROWS_WITH_AS(
        snip::roi_align(f.view(), rv, snip::feature_view<double>(buf.data(), 1, 1, 2, 4), o),
        doctest::Contains("the output has extents (1, 1, 2, 4), expected (1, 1, 2, 2)"),
        snip::error);
    CHECK_THROWS_WITH_AS(snip::roi_align(f.view(), rv, options(0, 2, 1.0, 2, true)),
                         doctest::Contains("pooled_h = 0"), snip::error);
    CHECK_THROWS_WITH_AS(snip::roi_align(f.view(), rv, options(2, 2, 0.0, 2, true)),
                         doctest::Contains("spatial_scale must be finite and positive, got 0"),
                         snip::error);
    CHECK_THROWS_WITH_AS(
        snip::roi_align_backward(snip::feature_view<const double>(buf.data(), 1, 2, 2, 2), rv,
                                 {2, 1, 4, 4}, o),
        doctest::Contains("grad_output has extents (1, 2, 2, 2), expected (1, 1, 2, 2)"),
        snip::error);
    CHECK_THROWS_WITH_AS(
        snip::roi_align_backward(snip::feature_view<const double>(buf.data(), 1, 1, 2, 2), rv,
                                 {0, 1, 4, 4}, o),
        doctest::Contains("RoI 0 has batch index 0, expected an integer in [0, 0)"), snip::error);
}

TEST_CASE("validate_rois: the CPU checks, for callers of the CUDA launchers") {
    std::vector<float> r = {0, 0, 0, 4, 4, 1, 2, 2, 8, 8};
    CHECK_NOTHROW(snip::validate_rois(snip::roi_view<float>(r.data(), 2), 2, 0.5));
    CHECK_THROWS_WITH_AS(snip::validate_rois(snip::roi_view<const float>(r.data(), 2), 1, 0.5),
                         doctest::Contains("validate_rois: RoI 1 has batch index 1"), snip::error);
    r[7] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(snip::validate_rois(snip::roi_view<const float>(r.data(), 2), 2, 0.5),
                         doctest::Contains("RoI 1 has a non-finite y1"), snip::error);
    CHECK_THROWS_AS(snip::validate_rois(snip::roi_view<const float>(r.data(), 1), 2, -1.0),
                    snip::error);
}

TEST_CASE_TEMPLATE("roi_align: the per-element functions of the GPU kernels agree with the CPU", T,
                   float, double) {
    // What each CUDA thread runs, run here serially on contiguous NCHW: the same arithmetic
    // in the same order as the CPU path, so the results are bit-identical.
    const std::array<idx, 4> fext{2, 11, 9, 11};
    for (bool aligned : {false, true})
        for (int sr : {0, 2}) {
            const auto o = options(3, 4, 0.5, sr, aligned);
            const auto f = random_features<T>(fext, 21);
            const auto rois = random_rois(24, 2, 22, 18, 22);
            const auto rs = store_rois<T>(rois, 0);
            const auto grad = random_features<T>({24, 11, 3, 4}, 23);
            const auto cpu = snip::roi_align(f.view(), rs.view, o);
            const auto cpu_g = snip::roi_align_backward(grad.view(), rs.view, fext, o);
            std::vector<T> out(cpu.size());
            tensor4<T> gf(fext);
            for (std::size_t i = 0; i < out.size(); ++i) {
                const int pw = int(i % 4), ph = int(i / 4 % 3), c = int(i / 12 % 11);
                const idx k = idx(i / (12 * 11));
                const auto g = snip::make_roi_align_grid(rs.view[k], o);
                const idx n = idx(rs.view.batch_index(k));
                out[i] = snip::roi_align_value(&f(n, c, 0, 0), 11, 1, 9, 11, g, ph, pw);
                snip::roi_align_value_backward(grad.v[i], g, ph, pw, 9, 11,
                                               [&](int y, int x, T v) { gf(n, c, y, x) += v; });
            }
            CHECK(out == cpu);
            CHECK(gf.v == cpu_g);
        }
}
