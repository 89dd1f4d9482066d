// roi_pool.hpp: RoIPool forward/backward against a slow reference written here from the
// torchvision definition (one output element at a time), on strided and empty inputs, with
// float64 finite-difference checks of the backward.
#include "roi_test_util.hpp"
#include "test_util.hpp"

#include <snip/core/random.hpp>
#include <snip/ops/roi_pool.hpp>

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

namespace {

using namespace roi_test;


template <class T>
constexpr double tolerance() {
    return sizeof(T) == 4 ? 1e-6 : 1e-14;
}

snip::roi_pool_options options(int ph, int pw, double scale) {
    snip::roi_pool_options o;
    o.pooled_h = ph;
    o.pooled_w = pw;
    o.spatial_scale = scale;
    return o;
}

// ---------------------------------------------------------------------------------
// The reference

template <class T>
struct ref_result {
    tensor4<T> out;
    tensor4<std::int32_t> argmax;
};

template <class T>
ref_result<T> ref_forward(const tensor4<T>& f, const std::vector<roi>& rois,
                          const snip::roi_pool_options& o) {
    const idx K = idx(rois.size()), C = f.ext[1], H = f.ext[2], W = f.ext[3];
    ref_result<T> r{tensor4<T>({K, C, o.pooled_h, o.pooled_w}),
                    tensor4<std::int32_t>({K, C, o.pooled_h, o.pooled_w})};
    for (idx k = 0; k < K; ++k)
        for (idx c = 0; c < C; ++c)
            for (int ph = 0; ph < o.pooled_h; ++ph)
                for (int pw = 0; pw < o.pooled_w; ++pw) {
                    const roi& q = rois[std::size_t(k)];
                    const T s = T(o.spatial_scale);
                    const long sx = std::lround(T(q.x1) * s), sy = std::lround(T(q.y1) * s);
                    const long ex = std::lround(T(q.x2) * s), ey = std::lround(T(q.y2) * s);
                    const T bw = T(std::max(ex - sx + 1, 1L)) / T(o.pooled_w);
                    const T bh = T(std::max(ey - sy + 1, 1L)) / T(o.pooled_h);
                    auto clip = [](long v, idx hi) {
                        return std::min<long>(std::max(v, 0L), long(hi));
                    };
                    const long y0 = clip(long(std::floor(T(ph) * bh)) + sy, H);
                    const long y1 = clip(long(std::ceil(T(ph + 1) * bh)) + sy, H);
                    const long x0 = clip(long(std::floor(T(pw) * bw)) + sx, W);
                    const long x1 = clip(long(std::ceil(T(pw + 1) * bw)) + sx, W);
                    T best = (y1 <= y0 || x1 <= x0) ? T(0) : T(-FLT_MAX);
                    std::int32_t arg = -1;
                    for (long y = y0; y < y1; ++y)
                        for (long x = x0; x < x1; ++x)
                            if (f(idx(q.b), c, y, x) > best) {
                                best = f(idx(q.b), c, y, x);
                                arg = std::int32_t(y * W + x);
                            }
                    r.out(k, c, ph, pw) = best;
                    r.argmax(k, c, ph, pw) = arg;
                }
    return r;
}

template <class T>
tensor4<T> ref_backward(const tensor4<T>& grad, const tensor4<std::int32_t>& argmax,
                        const std::vector<roi>& rois, std::array<idx, 4> fext) {
    tensor4<T> gf(fext);
    for (idx k = 0; k < grad.ext[0]; ++k)
        for (idx c = 0; c < grad.ext[1]; ++c)
            for (idx ph = 0; ph < grad.ext[2]; ++ph)
                for (idx pw = 0; pw < grad.ext[3]; ++pw) {
                    const std::int32_t a = argmax(k, c, ph, pw);
                    if (a >= 0)
                        gf(idx(rois[std::size_t(k)].b), c, a / fext[3], a % fext[3]) +=
                            grad(k, c, ph, pw);
                }
    return gf;
}

/// 4 x 5 map with f(y, x) = 10 y + x.
tensor4<double> ramp() {
    tensor4<double> f({1, 1, 4, 5});
    for (idx y = 0; y < 4; ++y)
        for (idx x = 0; x < 5; ++x)
            f(0, 0, y, x) = 10.0 * double(y) + double(x);
    return f;
}

snip::roi_pool_result<double> pool_one(const tensor4<double>& f, const roi& q,
                                       const snip::roi_pool_options& o) {
    const double r[5] = {q.b, q.x1, q.y1, q.x2, q.y2};
    return snip::roi_pool(f.view(), snip::roi_view<const double>(r, 1), o);
}

} // namespace

TEST_CASE("roi_pool: hand-computed values") {
    const auto f = ramp(); // 10 y + x on 4 x 5
    SUBCASE("2 x 2 bins of a 4 x 4 RoI") {
        const auto r = pool_one(f, {0, 0, 0, 3, 3}, options(2, 2, 1.0));
        CHECK(r.values == std::vector<double>{11, 13, 31, 33});
        CHECK(r.argmax == std::vector<std::int32_t>{6, 8, 16, 18});
    }
    SUBCASE("bins of 4/3 pixels overlap: floor at the start, ceil at the end") {
        const auto r = pool_one(f, {0, 0, 0, 3, 0}, options(1, 3, 1.0));
        CHECK(r.values == std::vector<double>{1, 2, 3}); // columns [0,2), [1,3), [2,4)
        CHECK(r.argmax == std::vector<std::int32_t>{1, 2, 3});
    }
    SUBCASE("coordinates are rounded half away from zero, after scaling") {
        CHECK(pool_one(f, {0, 0.5, 0, 0.5, 0}, options(1, 1, 1.0)).values[0] == 1);
        CHECK(pool_one(f, {0, 2.5, 0, 2.5, 0}, options(1, 1, 1.0)).values[0] == 3);
        CHECK(pool_one(f, {0, 3, 2, 3, 2}, options(1, 1, 0.5)).values[0] == 12); // 1.5 -> 2, 1 -> 1
        // -0.5 -> -1: columns -1..1 in bins of 1: [-1, 0) (empty), [0, 1), [1, 2).
        const auto r = pool_one(f, {0, -0.5, 0, 1.4, 0}, options(1, 3, 1.0));
        CHECK(r.values == std::vector<double>{0, 0, 1});
        CHECK(r.argmax == std::vector<std::int32_t>{-1, 0, 1});
        // x2 < x1: a 1 x 1 RoI at (x1, y1).
        CHECK(pool_one(f, {0, 3, 1, 0, 1}, options(1, 1, 1.0)).values[0] == 13);
    }
    SUBCASE("bins off the map are empty: 0 with argmax -1") {
        // Columns -10..1 in 4 bins of 3: [-10,-7), [-7,-4), [-4,-1) are empty, [-1,2) -> [0,2).
        const auto r = pool_one(f, {0, -10, 0, 1, 1}, options(1, 4, 1.0));
        CHECK(r.values == std::vector<double>{0, 0, 0, 11});
        CHECK(r.argmax == std::vector<std::int32_t>{-1, -1, -1, 6}); // (1, 1) on a 5-wide map
        const auto far = pool_one(f, {0, 40, 40, 50, 50}, options(2, 2, 1.0));
        CHECK(far.values == std::vector<double>(4, 0.0));
        CHECK(far.argmax == std::vector<std::int32_t>(4, -1));
    }
    SUBCASE("the first maximum in row-major order wins ties") {
        for (idx c : {1, 9}) { // one channel; a group of 8 and one more
            tensor4<double> flat({1, c, 3, 3}, 2.0);
            const auto r = pool_one(flat, {0, 0, 0, 2, 2}, options(1, 1, 1.0));
            CHECK(r.values == std::vector<double>(std::size_t(c), 2.0));
            CHECK(r.argmax == std::vector<std::int32_t>(std::size_t(c), 0));
        }
    }
    SUBCASE("values <= -FLT_MAX are never selected") {
        tensor4<float> neg({1, 9, 2, 2}, -std::numeric_limits<float>::infinity());
        neg(0, 8, 1, 1) = -FLT_MAX; // not > -FLT_MAX either
        const float q[5] = {0, 0, 0, 1, 1};
        const auto r =
            snip::roi_pool(neg.view(), snip::roi_view<const float>(q, 1), options(1, 1, 1.0));
        CHECK(r.values == std::vector<float>(9, -FLT_MAX));
        CHECK(r.argmax == std::vector<std::int32_t>(9, -1));
        const std::vector<float> g(9, 1.0f);
        const auto gf = snip::roi_pool_backward(
            snip::feature_view<const float>(g.data(), 1, 9, 1, 1),
            snip::roi_view<const float>(q, 1),
            snip::feature_view<const std::int32_t>(r.argmax.data(), 1, 9, 1, 1), {1, 9, 2, 2},
            options(1, 1, 1.0));
        CHECK(gf == std::vector<float>(36, 0.0f));
    }
}

TEST_CASE_TEMPLATE("roi_pool: forward and backward match the reference", T, float, double) {
    const std::array<idx, 4> fext{2, 11, 9, 11}; // 11 channels: a group of 8 and 3 single
    int configs = 0;
    for (std::uint64_t seed = 1; seed <= 6; ++seed)
        for (double scale : {0.5, 0.25, 1.0 / 3.0}) {
            const int ph = seed % 2 ? 3 : 2, pw = seed % 3 ? 4 : 7;
            const auto o = options(ph, pw, scale);
            CAPTURE(seed);
            CAPTURE(scale);
            const auto f = random_features<T>(fext, seed);
            auto rois = random_rois(24, 2, 11 / scale, 9 / scale, seed * 7919);
            // Some coordinates exactly on rounding ties after scaling.
            rois[7] = {1, 2.5 / scale, 0.5 / scale, 6.5 / scale, 3.5 / scale};
            rois[15] = {0, -1.5 / scale, -0.5 / scale, 0.5 / scale, 2.5 / scale};
            const auto rs = store_rois<T>(rois, 0);
            const auto stored = as_stored<T>(rois);
            const auto want = ref_forward(f, stored, o);
            const auto got = snip::roi_pool(f.view(), rs.view, o);
            CHECK(got.values == want.out.v); // a max is exact
            CHECK(got.argmax == want.argmax.v);

            const auto grad = random_features<T>({24, 11, ph, pw}, seed + 100);
            const auto want_g = ref_backward(grad, want.argmax, stored, fext);
            const auto gf = snip::roi_pool_backward(
                grad.view(), rs.view,
                snip::feature_view<const std::int32_t>(got.argmax.data(), 24, 11, ph, pw), fext, o);
            double worst = 0;
            for (std::size_t i = 0; i < gf.size(); ++i)
                worst = std::max(worst, std::fabs(double(gf[i]) - double(want_g.v[i])));
            CHECK(worst < tolerance<T>());
            ++configs;
        }
    CHECK(configs == 18);
}

TEST_CASE_TEMPLATE("roi_pool: strided features, RoIs, outputs and argmax give identical results", T,
                   float, double) {
    const std::array<idx, 4> fext{2, 10, 7, 8};
    const auto o = options(3, 3, 0.25);
    const auto f = random_features<T>(fext, 42);
    const auto rois = random_rois(16, 2, 32, 28, 43);
    const auto base_rois = store_rois<T>(rois, 0);
    const auto want = snip::roi_pool(f.view(), base_rois.view, o);
    const snip::feature_view<const std::int32_t> want_arg(want.argmax.data(), 16, 10, 3, 3);
    const auto grad = random_features<T>({16, 10, 3, 3}, 44);
    const auto want_g = snip::roi_pool_backward(grad.view(), base_rois.view, want_arg, fext, o);
    for (layout l : {layout::nchw, layout::nhwc, layout::padded, layout::flipped_x})
        for (int rk : {0, 1, 2}) {
            const std::string lname = name(l);
            CAPTURE(lname);
            CAPTURE(rk);
            const auto fl = lay_out(f, l);
            const auto rs = store_rois<T>(rois, rk);
            auto out = lay_out(tensor4<T>({16, 10, 3, 3}, T(-9)), l);
            auto arg = lay_out(tensor4<std::int32_t>({16, 10, 3, 3}, 7), l);
            snip::roi_pool(snip::feature_view<const T>(fl.view), rs.view, out.view, arg.view, o);
            CHECK(read_back(out.view).v == want.values);
            CHECK(read_back(arg.view).v == want.argmax);
            auto gl = lay_out(tensor4<T>(fext), l);
            auto gin = lay_out(grad, l);
            snip::roi_pool_backward(gin.view, rs.view, arg.view, gl.view, o);
            CHECK(read_back(gl.view).v == want_g);
        }
}

TEST_CASE("roi_pool: results do not depend on the thread count") {
    const std::array<idx, 4> fext{2, 40, 12, 12};
    const auto f = random_features<float>(fext, 5);
    for (int K : {1, 3, 37}) {
        CAPTURE(K);
        const auto rois = random_rois(K, 2, 48, 48, 6);
        const auto rs = store_rois<float>(rois, 0);
        const auto o = options(7, 7, 0.25);
        const auto grad = random_features<float>({K, 40, 7, 7}, 7);
        const auto one = snip::roi_pool(f.view(), rs.view, o, 1);
        const snip::feature_view<const std::int32_t> av(one.argmax.data(), K, 40, 7, 7);
        const auto one_g = snip::roi_pool_backward(grad.view(), rs.view, av, fext, o, 1);
        for (unsigned t : {2u, 3u, 8u}) {
            const auto r = snip::roi_pool(f.view(), rs.view, o, t);
            CHECK(r.values == one.values);
            CHECK(r.argmax == one.argmax);
            CHECK(snip::roi_pool_backward(grad.view(), rs.view, av, fext, o, t) == one_g);
        }
    }
}

TEST_CASE("roi_pool: float64 central finite differences of the backward") {
    // Distinct feature values, at least 0.09 apart, and a step of 1e-3: no argmax changes
    // between f - h and f + h, so every difference is taken away from the max's kinks.
    const std::array<idx, 4> fext{2, 9, 6, 7};
    const std::size_t n = 2 * 9 * 6 * 7;
    tensor4<double> f(fext);
    std::vector<std::size_t> perm(n);
    std::iota(perm.begin(), perm.end(), std::size_t(0));
    snip::splitmix64 g{99};
    for (std::size_t i = n - 1; i > 0; --i)
        std::swap(perm[i], perm[g.below(i + 1)]);
    for (std::size_t i = 0; i < n; ++i)
        f.v[i] = 0.1 * double(perm[i]) - 8.0 + 0.01 * g.uniform();
    for (double scale : {0.5, 1.0 / 3.0}) {
        CAPTURE(scale);
        const auto o = options(2, 3, scale);
        const auto rois = random_rois(10, 2, 7 / scale, 6 / scale, 17);
        const auto rs = store_rois<double>(rois, 0);
        const auto w = random_features<double>({10, 9, 2, 3}, 18);
        const auto fwd = snip::roi_pool(f.view(), rs.view, o);
        auto loss = [&] {
            const auto out = snip::roi_pool(f.view(), rs.view, o).values;
            double s = 0;
            for (std::size_t i = 0; i < out.size(); ++i)
                s += out[i] * w.v[i];
            return s;
        };
        const auto gf = snip::roi_pool_backward(
            w.view(), rs.view,
            snip::feature_view<const std::int32_t>(fwd.argmax.data(), 10, 9, 2, 3), fext, o);
        const double h = 1e-3;
        double worst = 0, norm = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const double v = f.v[i];
            f.v[i] = v + h;
            const double up = loss();
            f.v[i] = v - h;
            const double down = loss();
            f.v[i] = v;
            worst = std::max(worst, std::fabs((up - down) / (2 * h) - gf[i]));
            norm += std::fabs(gf[i]);
        }
        CHECK(worst < 1e-9);
        CHECK(norm > 0.0); // some gradient flowed
    }
}

TEST_CASE("roi_pool: empty inputs") {
    const auto f = random_features<float>({1, 3, 4, 4}, 1);
    const auto o = options(2, 2, 1.0);
    const snip::roi_view<const float> none;
    const auto r = snip::roi_pool(f.view(), none, o);
    CHECK(r.values.empty());
    CHECK(r.argmax.empty());
    snip::roi_pool(f.view(), none, snip::feature_view<float>(nullptr, 0, 3, 2, 2),
                   snip::feature_view<std::int32_t>(nullptr, 0, 3, 2, 2), o);
    CHECK(snip::roi_pool_backward(snip::feature_view<const float>(nullptr, 0, 3, 2, 2), none,
                                  snip::feature_view<const std::int32_t>(nullptr, 0, 3, 2, 2),
                                  {1, 3, 4, 4}, o) == std::vector<float>(48, 0.0f));
    // An empty map: every bin is empty.
    const float q[5] = {0, 0, 0, 2, 2};
    const tensor4<float> empty({1, 2, 4, 0});
    const auto e = snip::roi_pool(empty.view(), snip::roi_view<const float>(q, 1), o);
    CHECK(e.values == std::vector<float>(8, 0.0f));
    CHECK(e.argmax == std::vector<std::int32_t>(8, -1));
}

TEST_CASE("roi_pool: bad input throws snip::error naming the RoI and the value") {
    const auto f = random_features<double>({2, 1, 4, 4}, 1);
    const auto o = options(2, 2, 1.0);
    auto run = [&](std::vector<double> r) {
        snip::roi_pool(f.view(), snip::roi_view<const double>(r.data(), idx(r.size() / 5)), o);
    };
    const std::vector<double> ok = {0, 0, 0, 2, 2};
    CHECK_NOTHROW(run(ok));
    auto with = [&](int field, double v) {
        std::vector<double> r = ok;
        r.insert(r.end(), ok.begin(), ok.end());
        r[5 + std::size_t(field)] = v;
        return r;
    };
    CHECK_THROWS_WITH_AS(run(with(0, 0.25)),
                         doctest::Contains("roi_pool: RoI 1 has batch index 0.25"), snip::error);
    CHECK_THROWS_WITH_AS(run(with(0, 5)), doctest::Contains("expected an integer in [0, 2)"),
                         snip::error);
    CHECK_THROWS_WITH_AS(run(with(4, -INFINITY)),
                         doctest::Contains("RoI 1 has a non-finite y2 = -inf"), snip::error);
    CHECK_THROWS_WITH_AS(run(with(3, -4e9)), doctest::Contains("RoI 1 has x2 = -4000000000"),
                         snip::error);
    const double r[5] = {0, 0, 0, 2, 2};
    const snip::roi_view<const double> rv(r, 1);
    std::vector<double> buf(8);
    std::vector<std::int32_t> arg(8, 0);
    CHECK_THROWS_WITH_AS(
        snip::roi_pool(f.view(), rv, snip::feature_view<double>(buf.data(), 1, 1, 2, 2),
                       snip::feature_view<std::int32_t>(arg.data(), 1, 2, 2, 2), o),
        doctest::Contains("argmax has extents (1, 2, 2, 2), expected (1, 1, 2, 2)"), snip::error);
    CHECK_THROWS_WITH_AS(snip::roi_pool(f.view(), rv, options(2, -1, 1.0)),
                         doctest::Contains("pooled_w = -1"), snip::error);
    CHECK_THROWS_WITH_AS(snip::roi_pool(f.view(), rv, options(2, 2, std::nan(""))),
                         doctest::Contains("spatial_scale must be finite and positive, got nan"),
                         snip::error);
    arg = {0, 999, -1, 15};
    CHECK_THROWS_WITH_AS(
        snip::roi_pool_backward(snip::feature_view<const double>(buf.data(), 1, 1, 2, 2), rv,
                                snip::feature_view<const std::int32_t>(arg.data(), 1, 1, 2, 2),
                                {2, 1, 4, 4}, o),
        doctest::Contains("argmax[0, 0, 0, 1] = 999 is neither -1 nor a pixel of the 4 x 4 plane"),
        snip::error);
}

TEST_CASE_TEMPLATE("roi_pool: the per-element functions of the GPU kernels agree with the CPU", T,
                   float, double) {
    const std::array<idx, 4> fext{2, 11, 9, 11};
    const auto o = options(3, 4, 0.5);
    const auto f = random_features<T>(fext, 21);
    const auto rois = random_rois(24, 2, 22, 18, 22);
    const auto rs = store_rois<T>(rois, 0);
    const auto grad = random_features<T>({24, 11, 3, 4}, 23);
    const auto cpu = snip::roi_pool(f.view(), rs.view, o);
    const auto cpu_g = snip::roi_pool_backward(
        grad.view(), rs.view,
        snip::feature_view<const std::int32_t>(cpu.argmax.data(), 24, 11, 3, 4), fext, o);
    std::vector<T> out(cpu.values.size());
    std::vector<std::int32_t> arg(out.size());
    tensor4<T> gf(fext);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const int pw = int(i % 4), ph = int(i / 4 % 3), c = int(i / 12 % 11);
        const idx k = idx(i / (12 * 11));
        const auto w = snip::make_roi_pool_window(rs.view[k], o);
        const idx n = idx(rs.view.batch_index(k));
        out[i] = snip::roi_pool_value(&f(n, c, 0, 0), 11, 1, 11,
                                      snip::roi_pool_bin_at(w, ph, pw, 9, 11), arg[i]);
        snip::roi_pool_value_backward(grad.v[i], arg[i], 9, 11,
                                      [&](int y, int x, T v) { gf(n, c, y, x) += v; });
    }
    CHECK(out == cpu.values);
    CHECK(arg == cpu.argmax);
    CHECK(gf.v == cpu_g);
}
