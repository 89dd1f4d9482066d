// deform_roi_pool.hpp: deformable PS RoI pooling forward/backward against a slow reference
// written here from the original operator's definition (MXNet's
// contrib/deformable_psroi_pooling.cu: one output element at a time, one sample at a time,
// nothing precomputed), on strided inputs, with float64 finite-difference checks of both
// gradients, the places where the original's offset gradient is not the derivative, and the
// error messages.
#include "roi_test_util.hpp"
#include "test_util.hpp"

#include <snip/core/random.hpp>
#include <snip/ops/deform_roi_pool.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace {

using namespace roi_test;
using snip_test::error_of;

snip::deform_roi_pool_options options(double scale, int output_dim, int group, int pooled, int part,
                                      int samples, double trans_std, bool no_trans) {
    snip::deform_roi_pool_options o;
    o.spatial_scale = scale;
    o.output_dim = output_dim;
    o.group_size = group;
    o.pooled_size = pooled;
    o.part_size = part;
    o.sample_per_part = samples;
    o.trans_std = trans_std;
    o.no_trans = no_trans;
    return o;
}

// ---------------------------------------------------------------------------------
// The reference: the original kernel's arithmetic, transcribed as plain loops.

/// Where the samples of output element (k, c, ph, pw) lie, and which channel and offsets.
template <class T>
struct ref_bin {
    T x0, y0, sub_w, sub_h, roi_w, roi_h;
    idx channel;          ///< input channel
    idx ox = -1, oy = -1; ///< offset channels (-1 without offsets)
    idx qy = 0, qx = 0;   ///< offset part
};

template <class T>
ref_bin<T> ref_locate(const roi& r, const tensor4<T>* off, const snip::deform_roi_pool_options& o,
                      idx k, idx c, int ph, int pw) {
    const T s = T(o.spatial_scale);
    const int P = o.pooled_size, Q = o.part_size > 0 ? o.part_size : P, G = o.group_size;
    const T start_x = T(std::round(T(r.x1))) * s - T(0.5);
    const T start_y = T(std::round(T(r.y1))) * s - T(0.5);
    const T end_x = T(std::round(T(r.x2)) + 1) * s - T(0.5);
    const T end_y = T(std::round(T(r.y2)) + 1) * s - T(0.5);
    ref_bin<T> b;
    b.roi_w = std::max(end_x - start_x, T(0.1));
    b.roi_h = std::max(end_y - start_y, T(0.1));
    const T bin_w = b.roi_w / T(P), bin_h = b.roi_h / T(P);
    b.sub_w = bin_w / T(o.sample_per_part);
    b.sub_h = bin_h / T(o.sample_per_part);
    b.qy = idx(std::floor(T(ph) / T(P) * T(Q)));
    b.qx = idx(std::floor(T(pw) / T(P) * T(Q)));
    T tx = 0, ty = 0;
    if (!o.no_trans) {
        const idx classes = off->ext[1] / 2, m = c / (o.output_dim / classes);
        b.ox = 2 * m;
        b.oy = 2 * m + 1;
        tx = (*off)(k, b.ox, b.qy, b.qx) * T(o.trans_std);
        ty = (*off)(k, b.oy, b.qy, b.qx) * T(o.trans_std);
    }
    b.x0 = T(pw) * bin_w + start_x;
    b.x0 += tx * b.roi_w;
    b.y0 = T(ph) * bin_h + start_y;
    b.y0 += ty * b.roi_h;
    idx gx = idx(std::floor(T(pw) * T(G) / T(P))), gy = idx(std::floor(T(ph) * T(G) / T(P)));
    gx = std::clamp<idx>(gx, 0, G - 1);
    gy = std::clamp<idx>(gy, 0, G - 1);
    b.channel = (c * G + gy) * G + gx;
    return b;
}

/// One sample of the reference: kept?, its clamped position and neighbours.
template <class T>
struct ref_sample {
    bool kept = false;
    idx x0 = 0, x1 = 0, y0 = 0, y1 = 0;
    T dx = 0, dy = 0;
};
template <class T>
ref_sample<T> ref_sample_at(T w, T h, idx W, idx H) {
    ref_sample<T> s;
    if (w < T(-0.5) || w > T(W) - T(0.5) || h < T(-0.5) || h > T(H) - T(0.5)) return s;
    s.kept = true;
    w = std::min(std::max(w, T(0)), T(W - 1));
    h = std::min(std::max(h, T(0)), T(H - 1));
    s.x0 = idx(std::floor(w));
    s.x1 = idx(std::ceil(w));
    s.y0 = idx(std::floor(h));
    s.y1 = idx(std::ceil(h));
    s.dx = w - T(s.x0);
    s.dy = h - T(s.y0);
    return s;
}

template <class T>
tensor4<T> ref_forward(const tensor4<T>& f, const std::vector<roi>& rois, const tensor4<T>* off,
                       const snip::deform_roi_pool_options& o) {
    const idx K = idx(rois.size()), D = o.output_dim, P = o.pooled_size;
    const idx H = f.ext[2], W = f.ext[3];
    tensor4<T> out({K, D, P, P});
    for (idx k = 0; k < K; ++k)
        for (idx c = 0; c < D; ++c)
            for (int ph = 0; ph < P; ++ph)
                for (int pw = 0; pw < P; ++pw) {
                    const roi& r = rois[std::size_t(k)];
                    const auto b = ref_locate(r, off, o, k, c, ph, pw);
                    const idx n = idx(r.b);
                    T sum = 0;
                    int count = 0;
                    for (int ih = 0; ih < o.sample_per_part; ++ih)
                        for (int iw = 0; iw < o.sample_per_part; ++iw) {
                            const auto s =
                                ref_sample_at(b.x0 + T(iw) * b.sub_w, b.y0 + T(ih) * b.sub_h, W, H);
                            if (!s.kept) continue;
                            const auto U = [&](idx y, idx x) { return f(n, b.channel, y, x); };
                            sum += (1 - s.dx) * (1 - s.dy) * U(s.y0, s.x0) +
                                   (1 - s.dx) * s.dy * U(s.y1, s.x0) +
                                   s.dx * (1 - s.dy) * U(s.y0, s.x1) + s.dx * s.dy * U(s.y1, s.x1);
                            ++count;
                        }
                    out(k, c, ph, pw) = count == 0 ? T(0) : sum / T(count);
                }
    return out;
}

/// The original's backward: per kept sample, grad / count spread with the bilinear weights,
/// and (with offsets) the slope between the floor and ceil neighbours of the clamped
/// position, times trans_std * roi size.
template <class T>
void ref_backward(const tensor4<T>& grad, const tensor4<T>& f, const std::vector<roi>& rois,
                  const tensor4<T>* off, const snip::deform_roi_pool_options& o, tensor4<T>& gf,
                  tensor4<T>* goff) {
    const idx K = idx(rois.size()), D = o.output_dim, P = o.pooled_size;
    const idx H = f.ext[2], W = f.ext[3];
    for (idx k = 0; k < K; ++k)
        for (idx c = 0; c < D; ++c)
            for (int ph = 0; ph < P; ++ph)
                for (int pw = 0; pw < P; ++pw) {
                    const roi& r = rois[std::size_t(k)];
                    const auto b = ref_locate(r, off, o, k, c, ph, pw);
                    const idx n = idx(r.b);
                    int count = 0;
                    for (int ih = 0; ih < o.sample_per_part; ++ih)
                        for (int iw = 0; iw < o.sample_per_part; ++iw)
                            count +=
                                ref_sample_at(b.x0 + T(iw) * b.sub_w, b.y0 + T(ih) * b.sub_h, W, H)
                                    .kept;
                    if (count == 0) continue;
                    const T diff = grad(k, c, ph, pw) / T(count);
                    for (int ih = 0; ih < o.sample_per_part; ++ih)
                        for (int iw = 0; iw < o.sample_per_part; ++iw) {
                            const auto s =
                                ref_sample_at(b.x0 + T(iw) * b.sub_w, b.y0 + T(ih) * b.sub_h, W, H);
                            if (!s.kept) continue;
                            gf(n, b.channel, s.y0, s.x0) += (1 - s.dx) * (1 - s.dy) * diff;
                            gf(n, b.channel, s.y1, s.x0) += (1 - s.dx) * s.dy * diff;
                            gf(n, b.channel, s.y0, s.x1) += s.dx * (1 - s.dy) * diff;
                            gf(n, b.channel, s.y1, s.x1) += s.dx * s.dy * diff;
                            if (goff == nullptr) continue;
                            const T u00 = f(n, b.channel, s.y0, s.x0);
                            const T u01 = f(n, b.channel, s.y1, s.x0);
                            const T u10 = f(n, b.channel, s.y0, s.x1);
                            const T u11 = f(n, b.channel, s.y1, s.x1);
                            (*goff)(k, b.ox, b.qy, b.qx) +=
                                (u11 * s.dy + u10 * (1 - s.dy) - u01 * s.dy - u00 * (1 - s.dy)) *
                                T(o.trans_std) * diff * b.roi_w;
                            (*goff)(k, b.oy, b.qy, b.qx) +=
                                (u11 * s.dx + u01 * (1 - s.dx) - u10 * s.dx - u00 * (1 - s.dx)) *
                                T(o.trans_std) * diff * b.roi_h;
                        }
                }
}

// ---------------------------------------------------------------------------------
// Helpers

template <class T>
tensor4<T> random_offsets(idx K, idx classes, idx parts, std::uint64_t seed, double scale) {
    snip::splitmix64 g{seed};
    tensor4<T> off({K, 2 * classes, parts, parts});
    for (auto& v : off.v)
        v = T((g.uniform() * 2 - 1) * scale);
    return off;
}

template <class T>
snip::roi_view<const T> rois_view(const roi_storage<T>& s) {
    return s.view;
}

/// The op on contiguous inputs (offsets ignored with no_trans).
template <class T>
std::vector<T> run(const tensor4<T>& f, const roi_storage<T>& rs, const tensor4<T>& off,
                   const snip::deform_roi_pool_options& o, unsigned threads = 0) {
    return snip::deform_roi_pool(f.view(), rs.view, off.view(), o, threads);
}

template <class T>
double max_rel(const std::vector<T>& a, const std::vector<T>& b) {
    REQUIRE(a.size() == b.size());
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        m = std::max(m, std::fabs(double(a[i]) - double(b[i])) / (1.0 + std::fabs(double(b[i]))));
    return m;
}

template <class T>
constexpr double tolerance() {
    return sizeof(T) == 4 ? 2e-5 : 1e-12;
}

/// A 1 x 1 x 4 x 5 map f(y, x) = 10 y + x: bilinear interpolation of it is exact.
tensor4<double> ramp() {
    tensor4<double> f({1, 1, 4, 5});
    for (idx y = 0; y < 4; ++y)
        for (idx x = 0; x < 5; ++x)
            f(0, 0, y, x) = 10.0 * double(y) + double(x);
    return f;
}

/// One RoI, one channel, optional offsets (K = 1, 2 x Q x Q).
std::vector<double> pool_one(const tensor4<double>& f, const roi& q,
                             const snip::deform_roi_pool_options& o,
                             const std::vector<double>& offsets = {}) {
    const double r[5] = {q.b, q.x1, q.y1, q.x2, q.y2};
    const idx Q = o.parts();
    const snip::feature_view<const double> ov =
        offsets.empty() ? snip::feature_view<const double>()
                        : snip::feature_view<const double>(offsets.data(), 1, 2, Q, Q);
    return snip::deform_roi_pool(f.view(), snip::roi_view<const double>(r, 1), ov, o);
}

} // namespace

TEST_CASE("deform_roi_pool: hand-computed values") {
    const auto f = ramp(); // 10 y + x on 4 x 5

    SUBCASE("corners are rounded, the end is inclusive and everything shifts by -0.5") {
        // RoI [1, 2]^2 at scale 1 -> [0.5, 2.5]^2 on the map; one bin, 2 x 2 samples at the
        // top-left corners of the sub-bins: 0.5 and 1.5 -> mean at (1, 1).
        CHECK(pool_one(f, {0, 1, 1, 2, 2}, options(1, 1, 1, 1, 0, 2, 0, true))[0] ==
              doctest::Approx(11.0));
        // Corners 0.6 and 1.4 round to 1: the same RoI [1, 1] -> [0.5, 1.5], one sample at 0.5.
        CHECK(pool_one(f, {0, 0.6, 0.6, 1.4, 1.4}, options(1, 1, 1, 1, 0, 1, 0, true))[0] ==
              doctest::Approx(5.5));
        // 2.5 rounds half away from zero to 3: start 2.5 on both axes.
        CHECK(pool_one(f, {0, 2.5, 2.5, 2.5, 2.5}, options(1, 1, 1, 1, 0, 1, 0, true))[0] ==
              doctest::Approx(27.5));
    }
    SUBCASE("samples sit on the top-left corners of the sub-bins, not their centres") {
        // RoI [0, 3] -> [-0.5, 3.5], width 4; one bin, 4 samples per axis at -0.5, 0.5, 1.5,
        // 2.5 (RoIAlign would use 0, 1, 2, 3). -0.5 is kept and clamped to 0.
        const double v = pool_one(f, {0, 0, 0, 3, 3}, options(1, 1, 1, 1, 0, 4, 0, true))[0];
        const double m = (0.0 + 0.5 + 1.5 + 2.5) / 4; // mean of the clamped coordinates
        CHECK(v == doctest::Approx(10 * m + m));
    }
    SUBCASE("spatial scale and 2 x 2 bins") {
        // RoI [2, 5] x [0, 3] at scale 1/2 -> x: 2 * 0.5 - 0.5 = 0.5 .. 6 * 0.5 - 0.5 = 2.5;
        // y: -0.5 .. 1.5. Bins of 1 x 1, one sample each at their top-left corners.
        const auto out = pool_one(f, {0, 2, 0, 5, 3}, options(0.5, 1, 1, 2, 0, 1, 0, true));
        CHECK(out[0] == doctest::Approx(0.5)); // y -0.5 -> 0, x 0.5
        CHECK(out[1] == doctest::Approx(1.5));
        CHECK(out[2] == doctest::Approx(10 * 0.5 + 0.5));
        CHECK(out[3] == doctest::Approx(10 * 0.5 + 1.5));
    }
    SUBCASE("offsets move a bin by offset * trans_std * RoI size") {
        // RoI [1, 2]^2 -> [0.5, 2.5]^2 (size 2); offset (x 1, y -0.5) with trans_std 0.5:
        // x moves by 1, y by -0.5. Samples x 1.5, 2.5 and y 0, 1.
        const auto v =
            pool_one(f, {0, 1, 1, 2, 2}, options(1, 1, 1, 1, 0, 2, 0.5, false), {1.0, -0.5});
        CHECK(v[0] == doctest::Approx(10 * 0.5 + 2.0));
        // Zero offsets: the pass without offsets, exactly.
        CHECK(pool_one(f, {0, 1, 1, 2, 2}, options(1, 1, 1, 1, 0, 2, 0.5, false), {0.0, 0.0}) ==
              pool_one(f, {0, 1, 1, 2, 2}, options(1, 1, 1, 1, 0, 2, 0.5, true)));
    }
    SUBCASE("samples beyond [-0.5, W - 0.5] are skipped: the mean is over the others") {
        // RoI x [-2, 0] -> [-2.5, 0.5], 1 bin of 3 samples per axis at -2.5, -1.5, -0.5: only
        // -0.5 is kept (clamped to 0); y [1, 1] -> 0.5 .. 1.5, samples 0.5, 0.833, 1.167.
        const double v = pool_one(f, {0, -2, 1, 0, 1}, options(1, 1, 1, 1, 0, 3, 0, true))[0];
        CHECK(v == doctest::Approx(10 * (0.5 + 0.5 + 1.0 / 3 + 0.5 + 2.0 / 3) / 3));
        // Entirely outside: 0.
        CHECK(pool_one(f, {0, 10, 10, 12, 12}, options(1, 1, 1, 2, 0, 2, 0, true)) ==
              std::vector<double>(4, 0.0));
        // A sample in (W - 1, W - 0.5] reads the last column: x [5, 5] -> one sample at 4.5
        // on a 5-wide map, not > 4.5, clamped to 4 (y -0.5 clamped to 0); x [6, 6] -> 5.5:
        // skipped.
        CHECK(pool_one(f, {0, 5, 0, 5, 0}, options(1, 1, 1, 1, 0, 1, 0, true))[0] ==
              doctest::Approx(4.0));
        CHECK(pool_one(f, {0, 6, 0, 6, 0}, options(1, 1, 1, 1, 0, 1, 0, true))[0] == 0.0);
    }
    SUBCASE("tiny and inverted RoIs are at least 0.1 feature pixel") {
        // x1 = 3, x2 = 1 (inverted): start 2.5, size max(1.5 - 2.5, 0.1) = 0.1; 2 samples
        // 0.05 apart along x (2.5, 2.55); y [1, 1] -> 0.5 .. 1.5: samples 0.5, 1.
        const double v = pool_one(f, {0, 3, 1, 1, 1}, options(1, 1, 1, 1, 0, 2, 0, true))[0];
        CHECK(v == doctest::Approx(10 * 0.75 + 2.525));
        // At scale 1/16 a 1-pixel RoI is 1/16 wide on the map: the 0.1 floor applies.
        const double t =
            pool_one(f, {0, 16, 16, 16, 16}, options(1.0 / 16, 1, 1, 1, 0, 2, 0, true))[0];
        CHECK(t == doctest::Approx(10 * (0.5 + 0.025) + 0.5 + 0.025));
    }
}

TEST_CASE("deform_roi_pool: position-sensitive groups and offset parts") {
    // 2 x 2 groups, 4 x 4 bins, 2 x 2 parts: bin (ph, pw) reads channel
    // (c * 2 + ph / 2) * 2 + pw / 2 and offset part (ph / 2, pw / 2).
    const idx D = 2, G = 2, P = 4;
    tensor4<double> f({1, D * G * G, 6, 6});
    for (idx c = 0; c < D * G * G; ++c)
        for (idx y = 0; y < 6; ++y)
            for (idx x = 0; x < 6; ++x)
                f(0, c, y, x) = 100.0 * double(c) + 10.0 * double(y) + double(x);
    const double r[5] = {0, 1, 1, 4, 4}; // -> [0.5, 4.5]^2, bins of 1 pixel
    const auto o = options(1, int(D), int(G), int(P), 2, 1, 0.25, false);
    std::vector<double> off(2 * 2 * 2 * 2, 0.0);
    off[1 * 4 + 3] = 1.0; // class 0, y offsets, part (1, 1): +1 * 0.25 * 4 = +1 pixel
    const auto out =
        snip::deform_roi_pool(f.view(), snip::roi_view<const double>(r, 1),
                              snip::feature_view<const double>(off.data(), 1, 2, 2, 2), o);
    for (idx c = 0; c < D; ++c)
        for (int ph = 0; ph < P; ++ph)
            for (int pw = 0; pw < P; ++pw) {
                CAPTURE(c);
                CAPTURE(ph);
                CAPTURE(pw);
                const idx ch = (c * G + ph / 2) * G + pw / 2;
                const double dy = (ph >= 2 && pw >= 2) ? 1.0 : 0.0;
                const double want = 100.0 * double(ch) + 10.0 * (0.5 + ph + dy) + (0.5 + pw);
                CHECK(out[std::size_t((c * P + ph) * P + pw)] == doctest::Approx(want));
            }
}

TEST_CASE_TEMPLATE("deform_roi_pool: forward and backward match the reference", T, float, double) {
    struct config {
        int group, pooled, part, samples, classes; // classes 0: no offsets
        double scale, trans_std;
    };
    const config configs[] = {
        {1, 7, 0, 4, 1, 0.25, 0.1}, // SNIPER's head
        {1, 3, 0, 1, 0, 0.5, 0.0},  // no offsets, one sample
        {2, 4, 2, 2, 2, 0.5, 0.3},  // position-sensitive, two classes, coarse parts
        {3, 3, 3, 3, 1, 0.25, 0.5}, // group = pooled (R-FCN), large offsets
        {1, 2, 3, 4, 3, 0.5, 0.2},  // more parts than bins, three classes
        {2, 5, 0, 1, 0, 1.0, 0.1},  // no offsets, groups not dividing the bins
    };
    std::size_t nonzero = 0, total = 0;
    std::uint64_t seed = 1;
    for (const config& cf : configs) {
        ++seed;
        const int D = 6;
        const bool no_trans = cf.classes == 0;
        const auto o =
            options(cf.scale, D, cf.group, cf.pooled, cf.part, cf.samples, cf.trans_std, no_trans);
        CAPTURE(cf.group);
        CAPTURE(cf.pooled);
        CAPTURE(cf.samples);
        CAPTURE(cf.classes);
        const std::array<idx, 4> fext{2, D * cf.group * cf.group, 9, 11};
        const auto f = random_features<T>(fext, seed);
        const double img_w = 11 / cf.scale, img_h = 9 / cf.scale;
        const auto rois = random_rois(16, 2, img_w, img_h, seed * 7919);
        const auto rs = store_rois<T>(rois, 0);
        const auto stored = as_stored<T>(rois);
        const idx Q = o.parts();
        const auto off = random_offsets<T>(16, no_trans ? 1 : cf.classes, Q, seed + 3, 1.5);

        const auto want = ref_forward(f, stored, no_trans ? nullptr : &off, o);
        for (const T v : want.v) {
            nonzero += v != T(0);
            ++total;
        }
        tensor4<T> out({16, D, cf.pooled, cf.pooled}, T(-5));
        snip::deform_roi_pool(f.view(), rs.view, off.view(), out.view(), o);
        CHECK(max_rel_diff(out, want) < tolerance<T>());

        const auto grad = random_features<T>({16, D, cf.pooled, cf.pooled}, seed + 100);
        tensor4<T> want_gf(fext), want_go(off.ext);
        ref_backward(grad, f, stored, no_trans ? nullptr : &off, o, want_gf,
                     no_trans ? nullptr : &want_go);
        tensor4<T> gf(fext), go(off.ext);
        snip::deform_roi_pool_backward(grad.view(), f.view(), rs.view, off.view(), gf.view(),
                                       go.view(), o);
        CHECK(max_rel_diff(gf, want_gf) < tolerance<T>() * 4);
        if (no_trans)
            CHECK(go.v == std::vector<T>(go.v.size(), T(0))); // ignored with no_trans
        else
            CHECK(max_rel_diff(go, want_go) < tolerance<T>() * 40);

        // The feature gradient is the adjoint of the forward: <A f, g> == <f, A^T g>.
        double lhs = 0, rhs = 0;
        for (std::size_t i = 0; i < out.v.size(); ++i)
            lhs += double(out.v[i]) * double(grad.v[i]);
        for (std::size_t i = 0; i < f.v.size(); ++i)
            rhs += double(f.v[i]) * double(gf.v[i]);
        CHECK(lhs == doctest::Approx(rhs).epsilon(sizeof(T) == 4 ? 1e-4 : 1e-12));
    }
    // the comparisons are not over empty bins only
    CHECK(nonzero > total / 2);
}

TEST_CASE_TEMPLATE("deform_roi_pool: strided features, RoIs, offsets and outputs give identical "
                   "results",
                   T, float, double) {
    const std::array<idx, 4> fext{2, 8, 7, 9}; // D 2, G 2
    const auto o = options(0.25, 2, 2, 3, 0, 3, 0.2, false);
    const auto f = random_features<T>(fext, 42);
    const auto rois = random_rois(12, 2, 36, 28, 43);
    const auto base_rois = store_rois<T>(rois, 0);
    const auto off = random_offsets<T>(12, 1, 3, 44, 1.0);
    const auto want = snip::deform_roi_pool(f.view(), base_rois.view, off.view(), o);
    const auto grad = random_features<T>({12, 2, 3, 3}, 45);
    const auto want_g =
        snip::deform_roi_pool_backward(grad.view(), f.view(), base_rois.view, off.view(), o);
    for (layout l : {layout::nchw, layout::nhwc, layout::padded, layout::flipped_x})
        for (int rk : {0, 1, 2}) {
            const std::string lname = name(l);
            CAPTURE(lname);
            CAPTURE(rk);
            const auto fl = lay_out(f, l);
            const auto ol = lay_out(off, l);
            const auto rs = store_rois<T>(rois, rk);
            auto out = lay_out(tensor4<T>({12, 2, 3, 3}, T(-9)), l);
            snip::deform_roi_pool(snip::feature_view<const T>(fl.view), rs.view,
                                  snip::feature_view<const T>(ol.view), out.view, o);
            CHECK(read_back(out.view).v == want); // same arithmetic in the same order
            auto gl = lay_out(tensor4<T>(fext), l);
            auto gol = lay_out(tensor4<T>(off.ext), l);
            const auto gin = lay_out(grad, l);
            snip::deform_roi_pool_backward(
                snip::feature_view<const T>(gin.view), snip::feature_view<const T>(fl.view),
                rs.view, snip::feature_view<const T>(ol.view), gl.view, gol.view, o);
            CHECK(read_back(gl.view).v == want_g.features);
            CHECK(read_back(gol.view).v == want_g.offsets);
            if (l == layout::padded) CHECK(out.buf[0] == T(-77)); // the gaps were not touched
        }
}

TEST_CASE("deform_roi_pool: results do not depend on the thread count") {
    const std::array<idx, 4> fext{2, 40, 12, 12};
    const auto f = random_features<float>(fext, 5);
    for (int K : {1, 3, 37}) { // few RoIs: the channels are split too
        CAPTURE(K);
        const auto rois = random_rois(K, 2, 48, 48, 6);
        const auto rs = store_rois<float>(rois, 0);
        const auto o = options(0.25, 40, 1, 7, 0, 4, 0.1, false);
        const auto off = random_offsets<float>(K, 1, 7, 8, 1.0);
        const auto grad = random_features<float>({K, 40, 7, 7}, 7);
        const auto one = run(f, rs, off, o, 1);
        const auto one_g =
            snip::deform_roi_pool_backward(grad.view(), f.view(), rs.view, off.view(), o, 1);
        for (unsigned t : {2u, 3u, 8u}) {
            CHECK(run(f, rs, off, o, t) == one);
            const auto g =
                snip::deform_roi_pool_backward(grad.view(), f.view(), rs.view, off.view(), o, t);
            CHECK(g.features == one_g.features);
            CHECK(g.offsets == one_g.offsets);
        }
    }
}

TEST_CASE_TEMPLATE("deform_roi_pool: zero offsets equal the pass without offsets", T, float,
                   double) {
    const std::array<idx, 4> fext{2, 12, 10, 10};
    const auto f = random_features<T>(fext, 9);
    const auto rois = random_rois(20, 2, 40, 40, 10);
    const auto rs = store_rois<T>(rois, 0);
    for (int classes : {1, 3}) {
        const auto o = options(0.25, 12, 1, 7, 0, 4, 0.1, false);
        auto none = o;
        none.no_trans = true;
        const tensor4<T> zero({20, 2 * classes, 7, 7});
        CHECK(run(f, rs, zero, o) == run(f, rs, tensor4<T>(), none));
        const auto grad = random_features<T>({20, 12, 7, 7}, 11);
        const auto a =
            snip::deform_roi_pool_backward(grad.view(), f.view(), rs.view, zero.view(), o);
        const auto b = snip::deform_roi_pool_backward(grad.view(), f.view(), rs.view,
                                                      snip::feature_view<const T>(), none);
        CHECK(a.features == b.features);
        CHECK(b.offsets.empty());
        CHECK(a.offsets.size() == zero.v.size());
    }
}

TEST_CASE("deform_roi_pool: the backward accumulates; null views skip a gradient") {
    const std::array<idx, 4> fext{1, 3, 6, 6};
    const auto f = random_features<double>(fext, 3);
    const auto rois = random_rois(4, 1, 6, 6, 3);
    const auto rs = store_rois<double>(rois, 0);
    const auto o = options(1.0, 3, 1, 2, 0, 2, 0.3, false);
    const auto off = random_offsets<double>(4, 1, 2, 4, 1.0);
    const auto grad = random_features<double>({4, 3, 2, 2}, 4);
    const auto g = snip::deform_roi_pool_backward(grad.view(), f.view(), rs.view, off.view(), o);
    tensor4<double> acc(fext, 1.0), acc_off(off.ext, 2.0);
    snip::deform_roi_pool_backward(grad.view(), f.view(), rs.view, off.view(), acc.view(),
                                   acc_off.view(), o);
    for (std::size_t i = 0; i < g.features.size(); ++i)
        CHECK(acc.v[i] == doctest::Approx(g.features[i] + 1.0));
    for (std::size_t i = 0; i < g.offsets.size(); ++i)
        CHECK(acc_off.v[i] == doctest::Approx(g.offsets[i] + 2.0));
    // Only the offsets' gradient, then only the features'.
    tensor4<double> only_off(off.ext), only_f(fext);
    snip::deform_roi_pool_backward(grad.view(), f.view(), rs.view, off.view(),
                                   snip::feature_view<double>(), only_off.view(), o);
    CHECK(only_off.v == g.offsets);
    snip::deform_roi_pool_backward(grad.view(), f.view(), rs.view, off.view(), only_f.view(),
                                   snip::feature_view<double>(), o);
    CHECK(only_f.v == g.features);
}

namespace {

/// Every sample coordinate (before clamping) of the bins of RoI k, class m, part (qy, qx),
/// through the reference geometry: x's and y's separately.
template <class T>
void part_samples(const roi& r, const tensor4<T>& off, const snip::deform_roi_pool_options& o,
                  idx k, idx m, idx qy, idx qx, std::vector<double>& xs, std::vector<double>& ys) {
    xs.clear();
    ys.clear();
    const idx per_class = o.output_dim / (off.ext[1] / 2);
    for (int ph = 0; ph < o.pooled_size; ++ph)
        for (int pw = 0; pw < o.pooled_size; ++pw) {
            const auto b = ref_locate(r, &off, o, k, m * per_class, ph, pw);
            if (b.qy != qy || b.qx != qx) continue;
            for (int i = 0; i < o.sample_per_part; ++i) {
                xs.push_back(double(b.x0 + T(i) * b.sub_w));
                ys.push_back(double(b.y0 + T(i) * b.sub_h));
            }
        }
}

/// Distance of v to the nearest point where the forward is not smooth along one axis of
/// `size` pixels: whole pixels (bilinear kinks, clamp edges) and the skip edges -0.5 and
/// size - 0.5.
double distance_to_kinks(double v, idx size) {
    double d = std::fabs(v - std::round(v));
    d = std::min(d, std::fabs(v + 0.5));
    d = std::min(d, std::fabs(v - (double(size) - 0.5)));
    return d;
}

} // namespace

TEST_CASE("deform_roi_pool: float64 central finite differences of both gradients") {
    // The forward is linear in the features, and between kinks (whole pixels, skip edges) it
    // is linear in each offset too (an offset moves its bins along one axis, and bilinear
    // interpolation is linear along one axis within a cell). With every sample kept at least
    // 1e-3 pixel from a kink, central differences with a step moving samples by < 1e-5 pixel
    // are exact up to rounding.
    const std::array<idx, 4> fext{2, 2 * 4, 9, 10}; // D 2, G 2
    for (int classes : {1, 2}) {
        CAPTURE(classes);
        const auto o = options(0.5, 2, 2, 3, 0, 3, 0.2, false);
        auto f = random_features<double>(fext, 20 + std::uint64_t(classes));
        // RoIs of every kind, partly outside included: samples beyond the skip edges are
        // simply not kept, the kept ones are moved off the kinks below.
        const auto rois = random_rois(10, 2, 20, 18, 21);
        const auto rs = store_rois<double>(rois, 0);
        const auto stored = as_stored<double>(rois);
        auto off = random_offsets<double>(10, classes, 3, 22, 1.0);
        // Nudge every offset until all samples of its bins are >= 1e-3 pixel from a kink.
        snip::splitmix64 g{23};
        std::vector<double> xs, ys;
        for (idx k = 0; k < 10; ++k)
            for (idx m = 0; m < classes; ++m)
                for (idx qy = 0; qy < 3; ++qy)
                    for (idx qx = 0; qx < 3; ++qx)
                        for (int tries = 0;; ++tries) {
                            REQUIRE(tries < 1000);
                            part_samples(stored[std::size_t(k)], off, o, k, m, qy, qx, xs, ys);
                            double dmin = 1.0;
                            for (double x : xs)
                                dmin = std::min(dmin, distance_to_kinks(x, fext[3]));
                            for (double y : ys)
                                dmin = std::min(dmin, distance_to_kinks(y, fext[2]));
                            if (dmin >= 1e-3) break;
                            off(k, 2 * m, qy, qx) = g.uniform() * 2 - 1;
                            off(k, 2 * m + 1, qy, qx) = g.uniform() * 2 - 1;
                        }
        const auto w = random_features<double>({10, 2, 3, 3}, 24);
        auto loss = [&] {
            const auto out = run(f, rs, off, o);
            double s = 0;
            for (std::size_t i = 0; i < out.size(); ++i)
                s += out[i] * w.v[i];
            return s;
        };
        const auto grads =
            snip::deform_roi_pool_backward(w.view(), f.view(), rs.view, off.view(), o);
        double worst_f = 0, worst_off = 0, largest_off = 0;
        for (std::size_t i = 0; i < f.v.size(); ++i) {
            const double v = f.v[i], h = 1e-3;
            f.v[i] = v + h;
            const double up = loss();
            f.v[i] = v - h;
            const double down = loss();
            f.v[i] = v;
            worst_f = std::max(worst_f, std::fabs((up - down) / (2 * h) - grads.features[i]));
        }
        for (std::size_t i = 0; i < off.v.size(); ++i) {
            const double v = off.v[i], h = 1e-5;
            off.v[i] = v + h;
            const double up = loss();
            off.v[i] = v - h;
            const double down = loss();
            off.v[i] = v;
            worst_off = std::max(worst_off, std::fabs((up - down) / (2 * h) - grads.offsets[i]));
            largest_off = std::max(largest_off, std::fabs(grads.offsets[i]));
        }
        CHECK(worst_f < 1e-9);
        CHECK(worst_off < 1e-7);
        CHECK(largest_off > 0.05); // the offsets do matter
    }
}

TEST_CASE("deform_roi_pool: the original's offset gradient where it is not the derivative") {
    // f(y, x) = x^2: bilinear interpolation of it has kinks at whole pixels (slopes 2x - 1 to
    // the left of pixel x, 2x + 1 to the right).
    tensor4<double> f({1, 1, 3, 6});
    for (idx y = 0; y < 3; ++y)
        for (idx x = 0; x < 6; ++x)
            f(0, 0, y, x) = double(x * x);
    const auto o = options(1, 1, 1, 1, 0, 1, 0.5, false); // one bin, one sample
    const double r[5] = {0, 1, 1, 1, 1};                  // [0.5, 1.5]^2, size 1
    const snip::roi_view<const double> rv(r, 1);
    auto value = [&](double ox, double oy) {
        const double off[2] = {ox, oy};
        return snip::deform_roi_pool(f.view(), rv,
                                     snip::feature_view<const double>(off, 1, 2, 1, 1), o)[0];
    };
    auto gradient = [&](double ox, double oy) {
        const double off[2] = {ox, oy}, one = 1.0;
        return snip::deform_roi_pool_backward(snip::feature_view<const double>(&one, 1, 1, 1, 1),
                                              f.view(), rv,
                                              snip::feature_view<const double>(off, 1, 2, 1, 1), o)
            .offsets;
    };
    const double h = 1e-6;
    SUBCASE("between pixels: the derivative (x moves by offset * 0.5 * 1)") {
        // x = 0.5 + 0.5 * 1.4 = 1.2: slope of x^2's interpolant on [1, 2] is 3; d x / d off = 0.5.
        CHECK(gradient(1.4, 0)[0] == doctest::Approx(1.5));
        CHECK((value(1.4 + h, 0) - value(1.4 - h, 0)) / (2 * h) == doctest::Approx(1.5));
    }
    SUBCASE("on a whole pixel: the original gives 0, the one-sided slopes differ") {
        // x = 0.5 + 0.5 * 3 = 2: floor == ceil.
        CHECK(gradient(3.0, 0)[0] == 0.0);
        CHECK((value(3.0 + h, 0) - value(3.0, 0)) / h == doctest::Approx(0.5 * 5)); // 2x + 1
        CHECK((value(3.0, 0) - value(3.0 - h, 0)) / h == doctest::Approx(0.5 * 3)); // 2x - 1
    }
    SUBCASE("clamped: 0, which is the derivative inside the clamp zone") {
        // x = 0.5 - 0.5 * 1.6 = -0.3: kept, clamped to 0; the value does not move.
        CHECK(gradient(-1.6, 0)[0] == 0.0);
        CHECK(value(-1.6 + h, 0) == value(-1.6 - h, 0));
        // Clamped to W - 1 = 5 from x = 5.3.
        CHECK(gradient(9.6, 0)[0] == 0.0);
        CHECK(value(9.6 + h, 0) == value(9.6 - h, 0));
        // Along y the sample still moves: f does not depend on y, so 0 there too, but the
        // y gradient of a kept clamped-x sample is the slope along y (here 0 exactly).
        CHECK(gradient(-1.6, 0.2)[1] == 0.0);
    }
    SUBCASE("the skip edge is a jump that no gradient describes") {
        // x = -0.5 exactly is kept (clamped to 0, value 0); just below it is skipped and the
        // bin, having no sample, gives 0 as well; at the right edge x = 5.5 is kept (25) and
        // 5.5 + 1e-6 is skipped (0): a jump of 25 with gradient 0 on both sides.
        CHECK(value(-2.0, 0) == 0.0);
        CHECK(value(10.0, 0) == doctest::Approx(25.0));
        CHECK(value(10.0 + 1e-6, 0) == 0.0);
        CHECK(gradient(10.0, 0)[0] == 0.0);
    }
}

TEST_CASE_TEMPLATE("deform_roi_pool: the per-element functions of the GPU kernels agree with the "
                   "CPU",
                   T, float, double) {
    // What each CUDA thread runs, run here serially on contiguous NCHW: sample by sample,
    // while the CPU path sums rows and columns, so equal up to rounding.
    const idx D = 4, G = 2, P = 3, K = 18;
    const std::array<idx, 4> fext{2, D * G * G, 9, 11};
    const auto o = options(0.5, int(D), int(G), int(P), 2, 3, 0.3, false);
    const auto f = random_features<T>(fext, 31);
    const auto rois = random_rois(int(K), 2, 22, 18, 32);
    const auto rs = store_rois<T>(rois, 0);
    const auto off = random_offsets<T>(K, 2, 2, 33, 1.5);
    const auto grad = random_features<T>({K, D, P, P}, 34);
    const auto cpu = snip::deform_roi_pool(f.view(), rs.view, off.view(), o);
    const auto cpu_g =
        snip::deform_roi_pool_backward(grad.view(), f.view(), rs.view, off.view(), o);
    std::vector<T> out(cpu.size());
    tensor4<T> gf(fext), go(off.ext);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const int pw = int(i % P), ph = int(i / P % P), c = int(i / (P * P) % D);
        const idx k = idx(i / std::size_t(P * P * D));
        const auto g = snip::make_deform_roi_geometry(rs.view[k], o);
        const snip::deform_roi_bin b = snip::deform_roi_pool_bin<T>(ph, pw, o);
        const int m = c / int(D / 2);
        const T dx = off(k, 2 * m, b.part_y, b.part_x), dy = off(k, 2 * m + 1, b.part_y, b.part_x);
        const T y0 = snip::deform_roi_bin_start(g.start_y, g.bin_h, ph, dy, g.trans_std, g.roi_h);
        const T x0 = snip::deform_roi_bin_start(g.start_x, g.bin_w, pw, dx, g.trans_std, g.roi_w);
        const idx n = idx(rs.view.batch_index(k));
        const idx cin = (c * G + b.group_y) * G + b.group_x;
        out[i] = snip::deform_roi_pool_value(&f(n, cin, 0, 0), 11, 1, 9, 11, g, y0, x0, 3);
        const auto d = snip::deform_roi_pool_value_backward(
            grad.v[i], &f(n, cin, 0, 0), 11, 1, 9, 11, g, y0, x0, 3,
            [&](int y, int x, T v) { gf(n, cin, y, x) += v; });
        go(k, 2 * m, b.part_y, b.part_x) += d.x;
        go(k, 2 * m + 1, b.part_y, b.part_x) += d.y;
    }
    CHECK(max_rel(out, cpu) < tolerance<T>());
    CHECK(max_rel(gf.v, cpu_g.features) < tolerance<T>() * 4);
    CHECK(max_rel(go.v, cpu_g.offsets) < tolerance<T>() * 40);
}

TEST_CASE("deform_roi_pool: empty inputs") {
    const auto f = random_features<float>({1, 4, 5, 5}, 1);
    const auto o = options(1.0, 4, 1, 2, 0, 2, 0.1, true);
    SUBCASE("no RoIs: no-op") {
        const snip::roi_view<const float> none;
        CHECK(snip::deform_roi_pool(f.view(), none, snip::feature_view<const float>(), o).empty());
        const auto g =
            snip::deform_roi_pool_backward(snip::feature_view<const float>(nullptr, 0, 4, 2, 2),
                                           f.view(), none, snip::feature_view<const float>(), o);
        CHECK(g.features == std::vector<float>(100, 0.0f));
    }
    SUBCASE("an empty feature map: every sample is skipped") {
        const float r[5] = {0, 0, 0, 2, 2};
        const tensor4<float> empty({1, 4, 0, 5});
        CHECK(snip::deform_roi_pool(empty.view(), snip::roi_view<const float>(r, 1),
                                    snip::feature_view<const float>(),
                                    o) == std::vector<float>(16, 0.0f));
    }
}

TEST_CASE("deform_roi_pool: bad input throws snip::error naming the field and the value") {
    const auto f = random_features<double>({2, 8, 4, 4}, 1); // D 2, G 2
    const auto o = options(1.0, 2, 2, 2, 0, 2, 0.1, false);
    const double r[5] = {0, 0, 0, 2, 2};
    const snip::roi_view<const double> rv(r, 1);
    const tensor4<double> off({1, 2, 2, 2});
    auto run_with = [&](const snip::deform_roi_pool_options& oo) {
        return [&f, &rv, &off, oo] { snip::deform_roi_pool(f.view(), rv, off.view(), oo); };
    };
    CHECK_NOTHROW(run_with(o)());
    auto with = [&](auto edit) {
        auto oo = o;
        edit(oo);
        return error_of(run_with(oo));
    };
    using opts = snip::deform_roi_pool_options;
    CHECK(with([](opts& x) { x.spatial_scale = 0; }) ==
          "deform_roi_pool: spatial_scale must be finite and positive, got 0");
    CHECK(with([](opts& x) { x.output_dim = 0; }) ==
          "deform_roi_pool: output_dim must be >= 1, got 0");
    CHECK(with([](opts& x) { x.group_size = -1; }) ==
          "deform_roi_pool: group_size must be >= 1, got -1");
    CHECK(with([](opts& x) { x.pooled_size = 0; }) ==
          "deform_roi_pool: pooled_size must be >= 1, got 0");
    CHECK(with([](opts& x) { x.part_size = -2; }) ==
          "deform_roi_pool: part_size must be >= 0 (0: pooled_size), got -2");
    CHECK(with([](opts& x) { x.sample_per_part = 0; }) ==
          "deform_roi_pool: sample_per_part must be in [1, 46340], got 0");
    CHECK(with([](opts& x) { x.trans_std = -0.1; }) ==
          "deform_roi_pool: trans_std must be finite and >= 0, got -0.1");
    CHECK(with([](opts& x) { x.trans_std = std::numeric_limits<double>::quiet_NaN(); }) ==
          "deform_roi_pool: trans_std must be finite and >= 0, got nan");
    CHECK(with([](opts& x) { x.output_dim = 3; }) ==
          "deform_roi_pool: the features have 8 channels, expected output_dim * group_size^2 "
          "= 3 * 2^2 = 12");
    CHECK(with([](opts& x) { x.group_size = 1; }) ==
          "deform_roi_pool: the features have 8 channels, expected output_dim * group_size^2 "
          "= 2 * 1^2 = 2");
    CHECK(with([](opts& x) { x.part_size = 3; }) ==
          "deform_roi_pool: the offsets have extents (1, 2, 2, 2), expected (K, 2 * classes, "
          "part_size, part_size) with K = 1, part_size = 3, classes >= 1");
    // Offsets of 3 channels (odd), of 3 classes for 2 output channels, of another K.
    const tensor4<double> odd({1, 3, 2, 2}), three({1, 6, 2, 2}), two_rois({2, 2, 2, 2});
    CHECK(error_of([&] { snip::deform_roi_pool(f.view(), rv, odd.view(), o); }) ==
          "deform_roi_pool: the offsets have extents (1, 3, 2, 2), expected (K, 2 * classes, "
          "part_size, part_size) with K = 1, part_size = 2, classes >= 1");
    CHECK(error_of([&] { snip::deform_roi_pool(f.view(), rv, three.view(), o); }) ==
          "deform_roi_pool: output_dim = 2 is not a multiple of the offsets' 3 classes (6 "
          "channels)");
    CHECK(error_of([&] {
              snip::deform_roi_pool(f.view(), rv, two_rois.view(), o);
          }).find("the offsets have extents (2, 2, 2, 2)") != std::string::npos);
    // With no_trans the offsets are ignored, whatever their shape.
    auto none = o;
    none.no_trans = true;
    CHECK_NOTHROW(snip::deform_roi_pool(f.view(), rv, odd.view(), none));
    // RoIs: checked like roi_align's.
    const double bad_batch[5] = {2, 0, 0, 2, 2}, bad_x2[5] = {0, 0, 0, NAN, 2};
    CHECK(error_of([&] {
              snip::deform_roi_pool(f.view(), snip::roi_view<const double>(bad_batch, 1),
                                    off.view(), o);
          }) == "deform_roi_pool: RoI 0 has batch index 2, expected an integer in [0, 2)");
    CHECK(error_of([&] {
              snip::deform_roi_pool(f.view(), snip::roi_view<const double>(bad_x2, 1), off.view(),
                                    o);
          }) == "deform_roi_pool: RoI 0 has a non-finite x2 = nan");
    // Output and gradient extents.
    std::vector<double> buf(64);
    CHECK(error_of([&] {
              snip::deform_roi_pool(f.view(), rv, off.view(),
                                    snip::feature_view<double>(buf.data(), 1, 2, 2, 3), o);
          }) == "deform_roi_pool: the output has extents (1, 2, 2, 3), expected (1, 2, 2, 2)");
    const tensor4<double> grad({1, 2, 2, 2});
    CHECK(error_of([&] {
              snip::deform_roi_pool_backward(
                  snip::feature_view<const double>(buf.data(), 1, 3, 2, 2), f.view(), rv,
                  off.view(), o);
          }) == "deform_roi_pool_backward: grad_output has extents (1, 3, 2, 2), expected (1, "
                "2, 2, 2)");
    tensor4<double> gf({2, 8, 4, 5}), go({1, 2, 2, 2});
    CHECK(error_of([&] {
              snip::deform_roi_pool_backward(grad.view(), f.view(), rv, off.view(), gf.view(),
                                             go.view(), o);
          }) == "deform_roi_pool_backward: grad_features has extents (2, 8, 4, 5), expected "
                "(2, 8, 4, 4)");
    // validate_deform_roi_pool: the same checks for callers of the CUDA launchers.
    CHECK(snip::validate_deform_roi_pool(o, {2, 8, 4, 4}, 1, {1, 2, 2, 2}) == 1);
    CHECK(snip::validate_deform_roi_pool(none, {2, 8, 4, 4}, 5) == 1);
    CHECK(snip::validate_deform_roi_pool(o, {2, 8, 4, 4}, 1, {1, 4, 2, 2}) == 2);
    CHECK(error_of([&] {
              snip::validate_deform_roi_pool(o, {2, 8, 4, 4}, 1, {1, 2, 3, 3});
          }) == "deform_roi_pool: the offsets have extents (1, 2, 3, 3), expected (K, 2 * classes, "
                "part_size, part_size) with K = 1, part_size = 2, classes >= 1");
    CHECK(!snip::deform_roi_pool_valid(o, 9, 2));
    CHECK(snip::deform_roi_pool_valid(o, 8, 2));
}
