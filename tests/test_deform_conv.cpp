// deform_conv.hpp: deformable convolution v1 forward/backward against a slow reference written
// here from the definition (torchvision's bilinear_interpolate and get_coordinate_weight, one
// output element at a time), on random shapes (groups, offset groups, stride, dilation,
// padding, offsets pushing samples outside the map), strided inputs and outputs, with float64
// central finite differences of all four gradients, the GPU kernels' per-element functions,
// and the error messages.
#include "roi_test_util.hpp"
#include "test_util.hpp"

#include <snip/core/random.hpp>
#include <snip/ops/deform_conv.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace {

using namespace roi_test;

struct config {
    idx n, c, h, w, o, kh, kw;
    snip::deform_conv_options opt;
};

snip::deform_conv_options options(int stride_h, int stride_w, int pad_h, int pad_w, int dil_h,
                                  int dil_w, int groups, int offset_groups) {
    snip::deform_conv_options o;
    o.stride_h = stride_h;
    o.stride_w = stride_w;
    o.pad_h = pad_h;
    o.pad_w = pad_w;
    o.dilation_h = dil_h;
    o.dilation_w = dil_w;
    o.groups = groups;
    o.offset_groups = offset_groups;
    return o;
}

idx out_size(idx in, int pad, idx k, int dil, int stride) {
    return (in + 2 * pad - (dil * (k - 1) + 1)) / stride + 1;
}

// ---------------------------------------------------------------------------------
// The reference, straight from the definition

template <class T>
T ref_value(const tensor4<T>& f, idx n, idx c, idx y, idx x) {
    if (y < 0 || y >= f.ext[2] || x < 0 || x >= f.ext[3]) return T(0);
    return f(n, c, y, x);
}

/// torchvision's bilinear_interpolate.
template <class T>
T ref_bilinear(const tensor4<T>& f, idx n, idx c, T y, T x) {
    const T H = T(f.ext[2]), W = T(f.ext[3]);
    if (y <= T(-1) || y >= H || x <= T(-1) || x >= W) return T(0);
    const idx y0 = idx(std::floor(y)), x0 = idx(std::floor(x));
    const T ly = y - T(y0), lx = x - T(x0), hy = 1 - ly, hx = 1 - lx;
    return hy * hx * ref_value(f, n, c, y0, x0) + hy * lx * ref_value(f, n, c, y0, x0 + 1) +
           ly * hx * ref_value(f, n, c, y0 + 1, x0) + ly * lx * ref_value(f, n, c, y0 + 1, x0 + 1);
}

/// The sampling point of tap (i, j) of input channel c at output (oy, ox).
template <class T>
void ref_point(const tensor4<T>& off, const config& k, idx n, idx c, idx i, idx j, idx oy, idx ox,
               T& y, T& x, idx& ch) {
    const idx og = c / (k.c / k.opt.offset_groups);
    ch = 2 * ((og * k.kh + i) * k.kw + j);
    y = T(oy * k.opt.stride_h - k.opt.pad_h + i * k.opt.dilation_h) + off(n, ch, oy, ox);
    x = T(ox * k.opt.stride_w - k.opt.pad_w + j * k.opt.dilation_w) + off(n, ch + 1, oy, ox);
}

template <class T>
tensor4<T> ref_forward(const config& k, const tensor4<T>& in, const tensor4<T>& wt,
                       const tensor4<T>& off, const std::vector<T>& bias) {
    const idx oh = off.ext[2], ow = off.ext[3], cg = k.c / k.opt.groups, og_out = k.o / k.opt.groups;
    tensor4<T> out({k.n, k.o, oh, ow});
    for (idx n = 0; n < k.n; ++n)
        for (idx o = 0; o < k.o; ++o)
            for (idx oy = 0; oy < oh; ++oy)
                for (idx ox = 0; ox < ow; ++ox) {
                    T s = bias.empty() ? T(0) : bias[std::size_t(o)];
                    for (idx ci = 0; ci < cg; ++ci)
                        for (idx i = 0; i < k.kh; ++i)
                            for (idx j = 0; j < k.kw; ++j) {
                                const idx c = (o / og_out) * cg + ci;
                                T y, x;
                                idx ch;
                                ref_point(off, k, n, c, i, j, oy, ox, y, x, ch);
                                s += wt(o, ci, i, j) * ref_bilinear(in, n, c, y, x);
                            }
                    out(n, o, oy, ox) = s;
                }
    return out;
}

template <class T>
struct grads {
    tensor4<T> input, weight, offset;
    std::vector<T> bias;
};

/// The backward from the definition: the adjoint scatter (torchvision's col2im rule), the
/// coordinate weights of get_coordinate_weight, and the weight and bias sums.
template <class T>
grads<T> ref_backward(const config& k, const tensor4<T>& in, const tensor4<T>& wt,
                      const tensor4<T>& off, const tensor4<T>& gout) {
    const idx oh = off.ext[2], ow = off.ext[3], cg = k.c / k.opt.groups, og_out = k.o / k.opt.groups;
    const idx H = in.ext[2], W = in.ext[3];
    grads<T> g{tensor4<T>(in.ext), tensor4<T>(wt.ext), tensor4<T>(off.ext),
               std::vector<T>(std::size_t(k.o), T(0))};
    for (idx n = 0; n < k.n; ++n)
        for (idx o = 0; o < k.o; ++o)
            for (idx oy = 0; oy < oh; ++oy)
                for (idx ox = 0; ox < ow; ++ox) {
                    const T go = gout(n, o, oy, ox);
                    g.bias[std::size_t(o)] += go;
                    for (idx ci = 0; ci < cg; ++ci)
                        for (idx i = 0; i < k.kh; ++i)
                            for (idx j = 0; j < k.kw; ++j) {
                                const idx c = (o / og_out) * cg + ci;
                                T y, x;
                                idx ch;
                                ref_point(off, k, n, c, i, j, oy, ox, y, x, ch);
                                g.weight(o, ci, i, j) += go * ref_bilinear(in, n, c, y, x);
                                const T gc = go * wt(o, ci, i, j);
                                // input: the 3 x 3 pixels around (int(y), int(x)) closer than 1
                                if (y > T(-1) && y < T(H) && x > T(-1) && x < T(W))
                                    for (idx yp = idx(y) - 1; yp <= idx(y) + 1; ++yp)
                                        for (idx xp = idx(x) - 1; xp <= idx(x) + 1; ++xp)
                                            if (yp >= 0 && yp < H && xp >= 0 && xp < W &&
                                                std::fabs(y - T(yp)) < 1 && std::fabs(x - T(xp)) < 1)
                                                g.input(n, c, yp, xp) += gc * (1 - std::fabs(y - T(yp))) *
                                                                         (1 - std::fabs(x - T(xp)));
                                // offsets: torchvision's coordinate weights
                                if (y < T(-1) || y >= T(H) || x < T(-1) || x >= T(W)) continue;
                                const idx yl = idx(std::floor(y)), xl = idx(std::floor(x));
                                const T dy = y - T(yl), dx = x - T(xl);
                                const T v_yx = ref_value(in, n, c, yl, xl),
                                        v_yX = ref_value(in, n, c, yl, xl + 1),
                                        v_Yx = ref_value(in, n, c, yl + 1, xl),
                                        v_YX = ref_value(in, n, c, yl + 1, xl + 1);
                                g.offset(n, ch, oy, ox) +=
                                    gc * (dx * (v_YX - v_yX) + (1 - dx) * (v_Yx - v_yx));
                                g.offset(n, ch + 1, oy, ox) +=
                                    gc * (dy * (v_YX - v_Yx) + (1 - dy) * (v_yX - v_yx));
                            }
                }
    return g;
}

// ---------------------------------------------------------------------------------
// Inputs

template <class T>
struct problem {
    config k;
    tensor4<T> in, wt, off;
    std::vector<T> bias;
};

/// Random input and weight; offsets of up to `spread` pixels (a large spread pushes many
/// samples outside the map), every 7th offset an integer (samples exactly on pixels).
template <class T>
problem<T> make_problem(const config& k, double spread, std::uint64_t seed, bool bias = true) {
    problem<T> p{k, random_features<T>({k.n, k.c, k.h, k.w}, seed),
                 random_features<T>({k.o, k.c / k.opt.groups, k.kh, k.kw}, seed + 1),
                 tensor4<T>({k.n, 2 * k.opt.offset_groups * k.kh * k.kw,
                             out_size(k.h, k.opt.pad_h, k.kh, k.opt.dilation_h, k.opt.stride_h),
                             out_size(k.w, k.opt.pad_w, k.kw, k.opt.dilation_w, k.opt.stride_w)}),
                 {}};
    snip::splitmix64 g{seed + 2};
    for (std::size_t i = 0; i < p.off.v.size(); ++i)
        p.off.v[i] = i % 7 == 3 ? T(std::round((g.uniform() * 2 - 1) * spread))
                                : T((g.uniform() * 2 - 1) * spread);
    if (bias)
        for (idx o = 0; o < k.o; ++o)
            p.bias.push_back(T(g.uniform() - 0.5));
    return p;
}

template <class T>
tensor4<T> run_forward(const problem<T>& p, unsigned threads = 0) {
    tensor4<T> out({p.k.n, p.k.o, p.off.ext[2], p.off.ext[3]});
    snip::deform_conv2d(p.in.view(), p.wt.view(), p.off.view(), std::span<const T>(p.bias),
                        out.view(), p.k.opt, threads);
    return out;
}

template <class T>
grads<T> run_backward(const problem<T>& p, const tensor4<T>& gout, unsigned threads = 0) {
    grads<T> g{tensor4<T>(p.in.ext), tensor4<T>(p.wt.ext), tensor4<T>(p.off.ext),
               std::vector<T>(p.bias.size(), T(0))};
    snip::deform_conv2d_backward(gout.view(), p.in.view(), p.wt.view(), p.off.view(),
                                 g.input.view(), g.weight.view(), g.offset.view(),
                                 std::span<T>(g.bias), p.k.opt, threads);
    return g;
}

double max_rel(const std::vector<double>& a, const std::vector<double>& b) {
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        m = std::max(m, std::fabs(a[i] - b[i]) / (1.0 + std::fabs(b[i])));
    return m;
}

template <class T>
std::vector<double> as_double(const std::vector<T>& v) {
    return std::vector<double>(v.begin(), v.end());
}

template <class T>
constexpr double tolerance() {
    return sizeof(T) == 4 ? 5e-5 : 1e-12;
}

/// The configurations of the comparisons: plain, strided, dilated, padded, grouped,
/// offset-grouped, rectangular kernels, a 1 x 1 kernel.
std::vector<config> configs() {
    return {
        {2, 4, 7, 8, 3, 3, 3, options(1, 1, 1, 1, 1, 1, 1, 1)},
        {1, 6, 9, 7, 4, 3, 3, options(2, 2, 1, 1, 1, 1, 2, 3)},
        {2, 4, 8, 9, 6, 3, 3, options(1, 1, 2, 2, 2, 2, 2, 2)},
        {1, 8, 10, 6, 8, 2, 3, options(2, 1, 0, 2, 1, 2, 4, 4)},
        {2, 3, 5, 6, 2, 1, 1, options(1, 2, 0, 0, 1, 1, 1, 3)},
        {1, 4, 6, 6, 4, 3, 2, options(1, 1, 3, 0, 2, 1, 4, 1)},
    };
}

} // namespace

TEST_CASE_TEMPLATE("deform_conv2d: forward and backward match the reference", T, float, double) {
    int cases = 0;
    for (const config& k : configs())
        for (const double spread : {0.0, 1.5, 6.0}) {
            CAPTURE(cases);
            CAPTURE(spread);
            const auto p = make_problem<T>(k, spread, 100 + std::uint64_t(cases), cases % 2 == 0);
            const auto want = ref_forward(k, p.in, p.wt, p.off, p.bias);
            const auto got = run_forward(p);
            CHECK(max_rel_diff(got, want) <= tolerance<T>());
            const auto gout = random_features<T>(want.ext, 200 + std::uint64_t(cases));
            const auto gw = ref_backward(k, p.in, p.wt, p.off, gout);
            const auto gg = run_backward(p, gout);
            CHECK(max_rel_diff(gg.input, gw.input) <= tolerance<T>());
            CHECK(max_rel_diff(gg.weight, gw.weight) <= tolerance<T>());
            CHECK(max_rel_diff(gg.offset, gw.offset) <= tolerance<T>());
            if (!p.bias.empty())
                CHECK(max_rel(as_double(gg.bias), as_double(gw.bias)) <= tolerance<T>());
            ++cases;
        }
}

TEST_CASE("deform_conv2d: samples outside the map, on its border and on pixels") {
    // 1 x 1 input of value 2, one 1 x 1 tap, the offset moves the single sample.
    const config k{1, 1, 1, 1, 1, 1, 1, options(1, 1, 0, 0, 1, 1, 1, 1)};
    auto value_at = [&](double dy, double dx) {
        problem<double> p{k, tensor4<double>({1, 1, 1, 1}, 2.0), tensor4<double>({1, 1, 1, 1}, 1.0),
                          tensor4<double>({1, 2, 1, 1}), {}};
        p.off.v = {dy, dx};
        return run_forward(p).v[0];
    };
    CHECK(value_at(0, 0) == 2.0);
    CHECK(value_at(-0.25, 0) == doctest::Approx(1.5)); // (y_low = -1 reads 0) * 0.25 + 2 * 0.75
    CHECK(value_at(0.5, 0) == doctest::Approx(1.0));   // the row below is outside: 0
    CHECK(value_at(-1, 0) == 0.0);                     // y <= -1: outside
    CHECK(value_at(1, 0) == 0.0);                      // y >= H: outside
    CHECK(value_at(0, -0.5) == doctest::Approx(1.0));
    CHECK(value_at(std::nan(""), 0) == 0.0);
    CHECK(value_at(0, 1e30) == 0.0);
}

TEST_CASE_TEMPLATE("deform_conv2d: strided inputs and outputs give identical results", T, float,
                   double) {
    const config k = configs()[1];
    const auto p = make_problem<T>(k, 2.5, 7);
    const auto want = run_forward(p);
    const auto gout = random_features<T>(want.ext, 8);
    const auto gwant = run_backward(p, gout);
    for (const layout l : {layout::nhwc, layout::padded, layout::flipped_x}) {
        CAPTURE(name(l));
        const auto in = lay_out(p.in, l), wt = lay_out(p.wt, l), off = lay_out(p.off, l);
        const auto go = lay_out(gout, l);
        auto out = lay_out(tensor4<T>(want.ext), l);
        snip::deform_conv2d(snip::feature_view<const T>(in.view), wt.view, off.view,
                            std::span<const T>(p.bias), out.view, k.opt, 2);
        CHECK(read_back(out.view).v == want.v);
        auto gi = lay_out(tensor4<T>(p.in.ext), l), gw = lay_out(tensor4<T>(p.wt.ext), l),
             goff = lay_out(tensor4<T>(p.off.ext), l);
        std::vector<T> gb(p.bias.size(), T(0));
        snip::deform_conv2d_backward(go.view, in.view, wt.view, off.view, gi.view, gw.view,
                                     goff.view, std::span<T>(gb), k.opt, 2);
        CHECK(read_back(gi.view).v == gwant.input.v);
        CHECK(read_back(gw.view).v == gwant.weight.v);
        CHECK(read_back(goff.view).v == gwant.offset.v);
        CHECK(gb == gwant.bias);
    }
}

TEST_CASE("deform_conv2d: results do not depend on the thread count") {
    const config k = configs()[3];
    const auto p = make_problem<double>(k, 3.0, 11);
    const auto one = run_forward(p, 1);
    const auto gout = random_features<double>(one.ext, 12);
    const auto g1 = run_backward(p, gout, 1);
    for (const unsigned t : {2u, 3u, 8u}) {
        CHECK(run_forward(p, t).v == one.v);
        const auto gt = run_backward(p, gout, t);
        CHECK(gt.input.v == g1.input.v);
        CHECK(gt.weight.v == g1.weight.v);
        CHECK(gt.offset.v == g1.offset.v);
        CHECK(gt.bias == g1.bias);
    }
}

TEST_CASE("deform_conv2d: the backward accumulates into the gradients") {
    const config k = configs()[0];
    const auto p = make_problem<double>(k, 1.0, 13);
    const auto gout = random_features<double>({k.n, k.o, p.off.ext[2], p.off.ext[3]}, 14);
    const auto once = run_backward(p, gout);
    grads<double> twice = once;
    snip::deform_conv2d_backward(gout.view(), p.in.view(), p.wt.view(), p.off.view(),
                                 twice.input.view(), twice.weight.view(), twice.offset.view(),
                                 std::span<double>(twice.bias), k.opt);
    for (std::size_t i = 0; i < once.input.v.size(); ++i)
        CHECK(twice.input.v[i] == doctest::Approx(2 * once.input.v[i]));
    for (std::size_t i = 0; i < once.offset.v.size(); ++i)
        CHECK(twice.offset.v[i] == doctest::Approx(2 * once.offset.v[i]));
    CHECK(twice.bias[0] == doctest::Approx(2 * once.bias[0]));
}

TEST_CASE("deform_conv2d: float64 central finite differences of the four gradients") {
    // L = sum(gout * out): dL/dtheta against (L(theta + h) - L(theta - h)) / 2h, every element.
    // Offsets keep samples away from pixel lines (the bilinear map has kinks there).
    for (const config& k : {configs()[1], configs()[2]}) {
        auto p = make_problem<double>(k, 2.0, 31);
        for (auto& v : p.off.v)
            v = std::round(v) + 0.2 + 0.6 * (v - std::floor(v)) * 0.99;
        const auto out = run_forward(p);
        const auto gout = random_features<double>(out.ext, 32);
        const auto g = run_backward(p, gout);
        auto loss = [&](const problem<double>& q) {
            const auto o = run_forward(q, 1);
            double s = 0;
            for (std::size_t i = 0; i < o.v.size(); ++i)
                s += o.v[i] * gout.v[i];
            return s;
        };
        const double h = 1e-6;
        auto check = [&](std::vector<double> problem<double>::*member, const std::vector<double>& grad,
                         const char* what) {
            double worst = 0;
            for (std::size_t i = 0; i < grad.size(); ++i) {
                problem<double> q = p;
                (q.*member)[i] += h;
                const double up = loss(q);
                (q.*member)[i] -= 2 * h;
                const double down = loss(q);
                worst = std::max(worst, std::fabs((up - down) / (2 * h) - grad[i]) /
                                            (1 + std::fabs(grad[i])));
            }
            CAPTURE(what);
            CHECK(worst <= 1e-6);
        };
        auto member = [&](tensor4<double> problem<double>::*t, const tensor4<double>& grad,
                          const char* what) {
            double worst = 0;
            for (std::size_t i = 0; i < grad.v.size(); ++i) {
                problem<double> q = p;
                (q.*t).v[i] += h;
                const double up = loss(q);
                (q.*t).v[i] -= 2 * h;
                const double down = loss(q);
                worst = std::max(worst, std::fabs((up - down) / (2 * h) - grad.v[i]) /
                                            (1 + std::fabs(grad.v[i])));
            }
            CAPTURE(what);
            CHECK(worst <= 1e-6);
        };
        member(&problem<double>::in, g.input, "input");
        member(&problem<double>::wt, g.weight, "weight");
        member(&problem<double>::off, g.offset, "offset");
        check(&problem<double>::bias, g.bias, "bias");
    }
}

TEST_CASE("deform_conv2d: zero offsets give the (dilated, strided, grouped) convolution") {
    for (const config& k : configs()) {
        const auto p = make_problem<double>(k, 0.0, 41);
        const auto got = run_forward(p);
        tensor4<double> want(got.ext);
        const idx cg = k.c / k.opt.groups, opg = k.o / k.opt.groups;
        for (idx n = 0; n < k.n; ++n)
            for (idx o = 0; o < k.o; ++o)
                for (idx oy = 0; oy < got.ext[2]; ++oy)
                    for (idx ox = 0; ox < got.ext[3]; ++ox) {
                        double s = p.bias.empty() ? 0.0 : p.bias[std::size_t(o)];
                        for (idx ci = 0; ci < cg; ++ci)
                            for (idx i = 0; i < k.kh; ++i)
                                for (idx j = 0; j < k.kw; ++j)
                                    s += p.wt(o, ci, i, j) *
                                         ref_value(p.in, n, (o / opg) * cg + ci,
                                                   oy * k.opt.stride_h - k.opt.pad_h + i * k.opt.dilation_h,
                                                   ox * k.opt.stride_w - k.opt.pad_w + j * k.opt.dilation_w);
                        want(n, o, oy, ox) = s;
                    }
        CHECK(max_rel_diff(got, want) <= 1e-13);
    }
}

TEST_CASE("deform_conv2d: empty batch, no channels, no bias") {
    SUBCASE("N = 0: nothing to do") {
        const config k{0, 2, 5, 5, 3, 3, 3, options(1, 1, 1, 1, 1, 1, 1, 1)};
        const auto p = make_problem<double>(k, 1.0, 1);
        CHECK(run_forward(p).v.empty());
        CHECK(run_backward(p, tensor4<double>({0, 3, 5, 5})).input.v.empty());
    }
    SUBCASE("C = 0: the output is the bias") {
        const config k{1, 0, 4, 4, 2, 3, 3, options(1, 1, 1, 1, 1, 1, 1, 1)};
        const auto p = make_problem<double>(k, 1.0, 2);
        const auto out = run_forward(p);
        for (idx y = 0; y < 4; ++y)
            CHECK(out(0, 1, y, 2) == p.bias[1]);
    }
    SUBCASE("an empty map with padding: every sample outside") {
        const config k{1, 2, 0, 3, 2, 1, 1, options(1, 1, 1, 0, 1, 1, 1, 1)};
        const auto p = make_problem<double>(k, 0.5, 3, false);
        const auto out = run_forward(p);
        REQUIRE(out.ext == std::array<idx, 4>{1, 2, 2, 3});
        for (double v : out.v)
            CHECK(v == 0.0);
    }
}

TEST_CASE_TEMPLATE("deform_conv2d: the per-element functions of the GPU kernels agree with the CPU",
                   T, float, double) {
    // What each CUDA thread runs (column fill per (channel, position), scatter per column
    // entry, offset gradient per (group, tap, position)), run here serially: the columns are
    // bit-identical, the gradients equal up to the order of the additions.
    const config k = configs()[3];
    const auto p = make_problem<T>(k, 3.0, 51);
    const snip::deform_conv_geometry g = snip::make_deform_conv_geometry(
        "test", p.in.ext, p.wt.ext, p.off.ext, -1, k.opt);
    const idx P = g.positions(), rows = g.column_rows();
    for (idx n = 0; n < k.n; ++n) {
        std::vector<T> cols(std::size_t(rows * P)), cols_hd(cols.size());
        snip::deform_conv_columns(p.in.view(), p.off.view(), n, g, std::span<T>(cols));
        const snip::deform_offsets<T> off{&p.off(n, 0, 0, 0), p.off.ext[2] * p.off.ext[3],
                                          p.off.ext[3], 1};
        for (int c = 0; c < g.channels; ++c)
            for (int oy = 0; oy < g.out_h; ++oy)
                for (int ox = 0; ox < g.out_w; ++ox)
                    snip::deform_conv_fill_column(&p.in(n, c, 0, 0), p.in.ext[3], idx(1), off, g, c,
                                                  oy, ox,
                                                  cols_hd.data() + idx(c) * g.taps() * P +
                                                      idx(oy) * g.out_w + ox,
                                                  P);
        CHECK(cols == cols_hd);
        std::vector<T> gcol(cols.size());
        snip::splitmix64 r{52};
        for (auto& v : gcol)
            v = T(r.uniform() - 0.5);
        tensor4<T> gi(p.in.ext), goff(p.off.ext), gi_hd(p.in.ext), goff_hd(p.off.ext);
        snip::deform_conv_columns_backward(std::span<const T>(gcol), p.in.view(), p.off.view(), n,
                                           g, gi.view(), goff.view());
        for (int c = 0; c < g.channels; ++c)
            for (int t = 0; t < g.taps(); ++t)
                for (int oy = 0; oy < g.out_h; ++oy)
                    for (int ox = 0; ox < g.out_w; ++ox)
                        snip::deform_conv_scatter_column(
                            gcol[std::size_t((idx(c) * g.taps() + t) * P + idx(oy) * g.out_w + ox)],
                            off, g, c, t, oy, ox,
                            [&](int y, int x, T v) { gi_hd(n, c, y, x) += v; });
        for (int og = 0; og < k.opt.offset_groups; ++og)
            for (int t = 0; t < g.taps(); ++t)
                for (int oy = 0; oy < g.out_h; ++oy)
                    for (int ox = 0; ox < g.out_w; ++ox) {
                        T dy, dx;
                        snip::deform_conv_offset_grad(
                            &p.in(n, 0, 0, 0), p.in.ext[2] * p.in.ext[3], p.in.ext[3], idx(1), off,
                            gcol.data() + idx(oy) * g.out_w + ox, P, g, og, t, oy, ox, &dy, &dx);
                        goff_hd(n, 2 * (og * g.taps() + t), oy, ox) = dy;
                        goff_hd(n, 2 * (og * g.taps() + t) + 1, oy, ox) = dx;
                    }
        CHECK(max_rel_diff(gi, gi_hd) <= tolerance<T>());
        CHECK(goff.v == goff_hd.v);
    }
}

TEST_CASE("deform_conv2d: bad input throws snip::error naming the field and the value") {
    const config k{1, 4, 6, 6, 2, 3, 3, options(1, 1, 1, 1, 1, 1, 1, 1)};
    const auto p = make_problem<double>(k, 1.0, 61);
    auto run = [&](const snip::deform_conv_options& o, std::array<idx, 4> wext = {2, 4, 3, 3},
                   std::array<idx, 4> oext = {1, 18, 6, 6}, std::size_t bias = 2) {
        const tensor4<double> w(wext), off(oext);
        const std::vector<double> b(bias, 0.0);
        const auto e = snip::make_deform_conv_geometry("deform_conv2d", p.in.ext, wext, oext,
                                                       bias ? idx(bias) : -1, o);
        tensor4<double> out({1, e.out_channels, e.out_h, e.out_w});
        snip::deform_conv2d(p.in.view(), w.view(), off.view(), std::span<const double>(b),
                            out.view(), o);
    };
    auto msg = [&](auto&&... a) { return snip_test::error_of([&] { run(a...); }); };
    CHECK_NOTHROW(run(k.opt));
    CHECK(msg(options(0, 1, 1, 1, 1, 1, 1, 1)) == "deform_conv2d: stride_h must be >= 1, got 0");
    CHECK(msg(options(1, -2, 1, 1, 1, 1, 1, 1)) == "deform_conv2d: stride_w must be >= 1, got -2");
    CHECK(msg(options(1, 1, -1, 1, 1, 1, 1, 1)) == "deform_conv2d: pad_h must be >= 0, got -1");
    CHECK(msg(options(1, 1, 1, 1, 1, 0, 1, 1)) == "deform_conv2d: dilation_w must be >= 1, got 0");
    CHECK(msg(options(1, 1, 1, 1, 1, 1, 0, 1)) == "deform_conv2d: groups must be >= 1, got 0");
    CHECK(msg(options(1, 1, 1, 1, 1, 1, 1, 0)) ==
          "deform_conv2d: offset_groups must be >= 1, got 0");
    CHECK(msg(options(1, 1, 1, 1, 1, 1, 3, 1), std::array<idx, 4>{3, 1, 3, 3}) ==
          "deform_conv2d: the input's 4 channels are not divisible by groups = 3");
    CHECK(msg(options(1, 1, 1, 1, 1, 1, 2, 1), std::array<idx, 4>{3, 2, 3, 3}) ==
          "deform_conv2d: the weight's 3 output channels are not divisible by groups = 2");
    CHECK(msg(options(1, 1, 1, 1, 1, 1, 2, 1), std::array<idx, 4>{2, 4, 3, 3}) ==
          "deform_conv2d: weight has 4 input channels per group, expected C / groups = 4 / 2 = 2");
    CHECK(msg(options(1, 1, 1, 1, 1, 1, 1, 3), std::array<idx, 4>{2, 4, 3, 3},
              std::array<idx, 4>{1, 54, 6, 6}) ==
          "deform_conv2d: the input's 4 channels are not divisible by offset_groups = 3");
    CHECK(msg(k.opt, std::array<idx, 4>{2, 4, 0, 3}) ==
          "deform_conv2d: the weight's kernel is 0 x 3; kernel_h and kernel_w must be >= 1");
    CHECK(msg(k.opt, std::array<idx, 4>{2, 4, 3, 3}, std::array<idx, 4>{1, 18, 5, 6}) ==
          "deform_conv2d: offset has extents (1, 18, 5, 6), expected (1, 18, 6, 6)");
    CHECK(msg(options(1, 1, 1, 1, 1, 1, 1, 2), std::array<idx, 4>{2, 4, 3, 3}) ==
          "deform_conv2d: offset has extents (1, 18, 6, 6), expected (1, 36, 6, 6)");
    CHECK(msg(k.opt, std::array<idx, 4>{2, 4, 3, 3}, std::array<idx, 4>{1, 18, 6, 6}, 3) ==
          "deform_conv2d: bias has 3 elements, expected O = 2");
    CHECK(msg(options(1, 1, 0, 0, 4, 1, 1, 1), std::array<idx, 4>{2, 4, 3, 3},
              std::array<idx, 4>{1, 18, 1, 4}) ==
          "deform_conv2d: the padded input (6 + 2 * 0 = 6 pixels along y) is smaller than the "
          "dilated kernel (4 * (3 - 1) + 1 = 9)");
    // The op's own checks of the output and of the gradients' extents.
    tensor4<double> out({1, 2, 5, 6});
    CHECK(snip_test::error_of([&] {
              snip::deform_conv2d(p.in.view(), p.wt.view(), p.off.view(),
                                  std::span<const double>(p.bias), out.view(), k.opt);
          }) == "deform_conv2d: the output has extents (1, 2, 5, 6), expected (1, 2, 6, 6)");
    tensor4<double> gout({1, 2, 6, 6}), gi({1, 4, 6, 6}), gw({2, 4, 3, 3}), goff({1, 18, 6, 5});
    std::vector<double> gb(2);
    CHECK(snip_test::error_of([&] {
              snip::deform_conv2d_backward(gout.view(), p.in.view(), p.wt.view(), p.off.view(),
                                           gi.view(), gw.view(), goff.view(),
                                           std::span<double>(gb), k.opt);
          }) == "deform_conv2d_backward: grad_offset has extents (1, 18, 6, 5), expected (1, 18, 6, "
                "6)");
    std::vector<double> cols(10);
    CHECK(snip_test::error_of([&] {
              const auto g = snip::make_deform_conv_geometry("t", p.in.ext, p.wt.ext, p.off.ext,
                                                             -1, k.opt);
              snip::deform_conv_columns(p.in.view(), p.off.view(), 0, g, std::span<double>(cols));
          }) == "deform_conv_columns: columns hold 10 values, expected (C * kh * kw) x (Ho * Wo) "
                "= 36 x 36 = 1296");
    CHECK(snip_test::error_of([&] {
              const auto g = snip::make_deform_conv_geometry("t", p.in.ext, p.wt.ext, p.off.ext,
                                                             -1, k.opt);
              snip::deform_conv_columns(p.in.view(), p.off.view(), 1, g, std::span<double>(cols));
          }) == "deform_conv_columns: image 1 is out of range [0, 1)");
}
