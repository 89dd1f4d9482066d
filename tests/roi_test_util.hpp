// roi_test_util.hpp: what the RoIAlign and RoIPool tests share: a dense NCHW tensor,
// RoIs, random inputs of every kind, memory layouts (strided views of the same logical
// tensor) and comparison helpers.
#pragma once

#include <doctest/doctest.h>

#include <snip/core/random.hpp>
#include <snip/core/views.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace roi_test {

using idx = std::ptrdiff_t;

template <class T>
struct tensor4 {
    std::array<idx, 4> ext{};
    std::vector<T> v;
    tensor4() = default;
    explicit tensor4(std::array<idx, 4> e, T fill = T(0))
        : ext(e), v(static_cast<std::size_t>(e[0] * e[1] * e[2] * e[3]), fill) {}
    T& operator()(idx n, idx c, idx y, idx x) {
        return v[static_cast<std::size_t>(((n * ext[1] + c) * ext[2] + y) * ext[3] + x)];
    }
    const T& operator()(idx n, idx c, idx y, idx x) const {
        return v[static_cast<std::size_t>(((n * ext[1] + c) * ext[2] + y) * ext[3] + x)];
    }
    snip::feature_view<const T> view() const {
        return snip::feature_view<const T>(v.data(), ext[0], ext[1], ext[2], ext[3]);
    }
    snip::feature_view<T> view() {
        return snip::feature_view<T>(v.data(), ext[0], ext[1], ext[2], ext[3]);
    }
};

struct roi {
    double b, x1, y1, x2, y2;
};

// ---------------------------------------------------------------------------------
// Random inputs and memory layouts

template <class T>
tensor4<T> random_features(std::array<idx, 4> e, std::uint64_t seed) {
    snip::splitmix64 g{seed};
    tensor4<T> f(e);
    for (auto& v : f.v)
        v = T(g.uniform() * 2 - 1);
    return f;
}

/// RoIs of every kind, in input-image pixels of an img_w x img_h image: inside, partly
/// and fully outside, zero size, inverted, sub-pixel, larger than the image, whole-pixel.
std::vector<roi> random_rois(int k, int batch, double img_w, double img_h, std::uint64_t seed) {
    snip::splitmix64 g{seed};
    std::vector<roi> r;
    for (int i = 0; i < k; ++i) {
        roi q{double(g.below(std::uint64_t(batch))), 0, 0, 0, 0};
        q.x1 = g.uniform() * img_w;
        q.y1 = g.uniform() * img_h;
        q.x2 = q.x1 + g.uniform() * img_w * 0.6;
        q.y2 = q.y1 + g.uniform() * img_h * 0.6;
        switch (i % 8) {
        case 1: // partly outside, top-left
            q.x1 -= img_w * 0.3;
            q.y1 -= img_h * 0.3;
            break;
        case 2: // fully outside, bottom-right
            q.x1 += img_w * 1.2;
            q.x2 += img_w * 1.2;
            break;
        case 3: // zero size
            q.x2 = q.x1;
            q.y2 = q.y1;
            break;
        case 4: // inverted
            std::swap(q.x1, q.x2);
            break;
        case 5: // sub-pixel
            q.x2 = q.x1 + 0.3;
            q.y2 = q.y1 + 0.7;
            break;
        case 6: // larger than the image
            q.x1 = -0.25 * img_w;
            q.x2 = 1.25 * img_w;
            q.y1 = -0.1 * img_h;
            q.y2 = 1.1 * img_h;
            break;
        case 7: // whole-pixel corners, sizes 24 x 12: integral bin sizes for many pooled sizes
            q.x1 = std::floor(q.x1);
            q.y1 = std::floor(q.y1);
            q.x2 = q.x1 + 24;
            q.y2 = q.y1 + 12;
            break;
        default:
            break;
        }
        r.push_back(q);
    }
    return r;
}

enum class layout { nchw, nhwc, padded, flipped_x };
const char* name(layout l) {
    switch (l) {
    case layout::nchw:
        return "nchw";
    case layout::nhwc:
        return "nhwc";
    case layout::padded:
        return "padded";
    default:
        return "flipped_x";
    }
}

/// A copy of `t` in another memory layout, viewed as the same logical N x C x H x W tensor.
template <class T>
struct laid_out {
    std::vector<T> buf;
    snip::feature_view<T> view;
};
template <class T>
laid_out<T> lay_out(const tensor4<T>& t, layout l) {
    const auto [N, C, H, W] = t.ext;
    laid_out<T> r;
    std::array<idx, 4> str{};
    idx first = 0;
    switch (l) {
    case layout::nchw:
        str = {C * H * W, H * W, W, 1};
        break;
    case layout::nhwc:
        str = {H * W * C, 1, W * C, C};
        break;
    case layout::padded:
        str = {C * (H + 1) * (W + 3), (H + 1) * (W + 3), W + 3, 1};
        first = 2;
        break;
    case layout::flipped_x:
        str = {C * H * W, H * W, W, -1};
        first = W - 1;
        break;
    }
    const idx size = l == layout::padded ? N * str[0] : N * C * H * W;
    r.buf.assign(static_cast<std::size_t>(size + 3), T(-77)); // sentinels in the gaps
    r.view = snip::feature_view<T>(r.buf.data() + first, t.ext, str);
    for (idx n = 0; n < N; ++n)
        for (idx c = 0; c < C; ++c)
            for (idx y = 0; y < H; ++y)
                for (idx x = 0; x < W; ++x)
                    r.view(n, c, y, x) = t(n, c, y, x);
    return r;
}
template <class T>
tensor4<std::remove_cv_t<T>> read_back(const snip::feature_view<T>& v) {
    tensor4<std::remove_cv_t<T>> t({v.extent(0), v.extent(1), v.extent(2), v.extent(3)});
    for (idx n = 0; n < v.extent(0); ++n)
        for (idx c = 0; c < v.extent(1); ++c)
            for (idx y = 0; y < v.extent(2); ++y)
                for (idx x = 0; x < v.extent(3); ++x)
                    t(n, c, y, x) = v(n, c, y, x);
    return t;
}

/// RoIs stored K x 5 contiguous, 5 x K (column-major) or K x 7 with padding.
template <class T>
struct roi_storage {
    std::vector<T> buf;
    snip::roi_view<const T> view;
};
template <class T>
roi_storage<T> store_rois(const std::vector<roi>& rois, int kind) {
    const idx K = idx(rois.size());
    roi_storage<T> s;
    s.buf.assign(static_cast<std::size_t>(K * 7 + 1), T(-1));
    idx first = 0, rs = 5, cs = 1;
    if (kind == 1) {
        rs = 1;
        cs = K;
    } else if (kind == 2) {
        first = 1;
        rs = 7;
    }
    for (idx k = 0; k < K; ++k) {
        const roi& q = rois[std::size_t(k)];
        const double f[5] = {q.b, q.x1, q.y1, q.x2, q.y2};
        for (int j = 0; j < 5; ++j)
            s.buf[std::size_t(first + k * rs + j * cs)] = T(f[j]);
    }
    s.view = snip::roi_view<const T>(s.buf.data() + first, K, rs, cs);
    return s;
}

/// The RoIs as the op sees them (coordinates rounded to T).
template <class T>
std::vector<roi> as_stored(const std::vector<roi>& rois) {
    std::vector<roi> r = rois;
    for (auto& q : r)
        q = {q.b, double(T(q.x1)), double(T(q.y1)), double(T(q.x2)), double(T(q.y2))};
    return r;
}

template <class T>
double max_rel_diff(const tensor4<T>& a, const tensor4<T>& b) {
    REQUIRE(a.ext == b.ext);
    double m = 0;
    for (std::size_t i = 0; i < a.v.size(); ++i)
        m = std::max(m, std::fabs(double(a.v[i]) - double(b.v[i])) /
                            (1.0 + std::fabs(double(b.v[i]))));
    return m;
}

} // namespace roi_test
