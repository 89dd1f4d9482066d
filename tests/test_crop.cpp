// Tests of include/snip/sniper/crop.hpp: a chip's pixels cut from the original image.
//  - crop_resize equals a slow per-pixel reference of the documented convention (centre
//    sampling, clamped bilinear, zero outside) for random crops inside, across and outside
//    the image, for uint8 and float sources, 1 and 3 channels;
//  - layouts agree: interleaved and planar sources and destinations, a strided sub-view;
//  - flip mirrors columns; the transform equals normalising afterwards;
//  - cut_chip: chip_crop's geometry, content at the top-left, zeros elsewhere;
//  - bad input: empty images, channel mismatch, empty / NaN crops, short transforms.
#include <snip/sniper/crop.hpp>

#include "test_util.hpp"

#include <snip/core/random.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

using snip_test::contains;
using snip_test::error_of;

namespace {

/// The documented convention, one output pixel at a time.
template <class S>
float reference(const snip::image_view<const S>& src, const snip::box<double>& crop, int out_w,
                int out_h, int x, int y, int c, bool flip) {
    const double sx = crop.width() / out_w, sy = crop.height() / out_h;
    const int j = flip ? out_w - 1 - x : x;
    const double u = crop.x1 + (j + 0.5) * sx, v = crop.y1 + (y + 0.5) * sy;
    if (!(u >= 0 && u < src.width && v >= 0 && v < src.height)) return 0.f;
    auto tap = [](double t, int n, int& i0, int& i1, float& w) {
        const double s = t - 0.5, f = std::floor(s);
        i0 = int(f), i1 = i0 + 1, w = float(s - f);
        if (i0 < 0) i0 = i1 = 0, w = 0.f;
        else if (i1 > n - 1) i0 = i1 = n - 1, w = 0.f;
    };
    int x0, x1, y0, y1;
    float wx, wy;
    tap(u, src.width, x0, x1, wx);
    tap(v, src.height, y0, y1, wy);
    auto row = [&](int yy) {
        const float a = float(src.at(x0, yy, c));
        return a + wx * (float(src.at(x1, yy, c)) - a);
    };
    const float r0 = row(y0), r1 = row(y1);
    return r0 + wy * (r1 - r0);
}

template <class S>
std::vector<S> random_pixels(int w, int h, int ch, std::uint64_t seed) {
    snip::splitmix64 g{seed};
    std::vector<S> px(std::size_t(w) * h * ch);
    for (auto& p : px) p = S(g.below(256));
    return px;
}

} // namespace

TEST_CASE("crop_resize equals the per-pixel reference of the convention") {
    snip::splitmix64 g{7};
    for (int ch : {1, 3}) {
        const int w = 37, h = 23;
        const auto px = random_pixels<std::uint8_t>(w, h, ch, 11 + ch);
        const auto src = snip::image_view<const std::uint8_t>::interleaved(px.data(), w, h, ch);
        for (int trial = 0; trial < 60; ++trial) {
            const double x1 = g.uniform() * 60 - 15, y1 = g.uniform() * 40 - 10;
            const snip::box<double> crop{x1, y1, x1 + 0.5 + g.uniform() * 50,
                                         y1 + 0.5 + g.uniform() * 30};
            const int ow = 1 + int(g.below(40)), oh = 1 + int(g.below(30));
            const bool flip = trial % 2 == 1;
            std::vector<float> out(std::size_t(ow) * oh * ch, -1.f);
            snip::crop_resize(src, crop, snip::image_view<float>::planar(out.data(), ow, oh, ch), flip);
            std::vector<std::uint8_t> out8(std::size_t(ow) * oh * ch, 7);
            snip::crop_resize(src, crop,
                              snip::image_view<std::uint8_t>::interleaved(out8.data(), ow, oh, ch), flip);
            int bad = 0, bad8 = 0;
            for (int y = 0; y < oh; ++y)
                for (int x = 0; x < ow; ++x)
                    for (int c = 0; c < ch; ++c) {
                        const float r = reference(src, crop, ow, oh, x, y, c, flip);
                        bad += std::abs(out[std::size_t(c) * ow * oh + std::size_t(y) * ow + x] - r) > 1e-4f;
                        const int r8 = int(std::min(255.f, std::max(0.f, r + 0.5f)));
                        bad8 += out8[(std::size_t(y) * ow + x) * ch + c] != r8;
                    }
            CHECK(bad == 0);
            CHECK(bad8 == 0);
        }
    }
}

TEST_CASE("crop_resize: layouts, strided views, float sources and the transform agree") {
    const int w = 31, h = 19, ch = 3;
    const auto px = random_pixels<std::uint8_t>(w, h, ch, 3);
    // The same pixels as a planar float image and inside a bigger interleaved buffer.
    std::vector<float> planar(px.size());
    std::vector<std::uint8_t> big(std::size_t(w + 9) * (h + 4) * 4, 0);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int c = 0; c < ch; ++c) {
                const std::uint8_t v = px[(std::size_t(y) * w + x) * ch + c];
                planar[std::size_t(c) * w * h + std::size_t(y) * w + x] = v;
                big[(std::size_t(y + 2) * (w + 9) + x + 5) * 4 + c] = v;
            }
    const auto a = snip::image_view<const std::uint8_t>::interleaved(px.data(), w, h, ch);
    const auto b = snip::image_view<const float>::planar(planar.data(), w, h, ch);
    snip::image_view<const std::uint8_t> sub{big.data() + (2 * (w + 9) + 5) * 4, w, h, ch,
                                             std::ptrdiff_t(w + 9) * 4, 4, 1};
    const snip::box<double> crop{-3.25, 2.5, 27.75, 30.0};
    const int ow = 45, oh = 33;
    std::vector<float> oa(std::size_t(ow) * oh * ch), ob(oa.size()), oc(oa.size()), od(oa.size());
    snip::crop_resize(a, crop, snip::image_view<float>::planar(oa.data(), ow, oh, ch), true);
    snip::crop_resize(b, crop, snip::image_view<float>::planar(ob.data(), ow, oh, ch), true);
    snip::crop_resize(sub, crop, snip::image_view<float>::planar(oc.data(), ow, oh, ch), true);
    CHECK(oa == ob);
    CHECK(oa == oc);
    // Flip mirrors the columns.
    snip::crop_resize(a, crop, snip::image_view<float>::planar(od.data(), ow, oh, ch), false);
    int mirrored = 0;
    for (int c = 0; c < ch; ++c)
        for (int y = 0; y < oh; ++y)
            for (int x = 0; x < ow; ++x) {
                const std::size_t p = std::size_t(c) * ow * oh + std::size_t(y) * ow;
                mirrored += oa[p + x] == od[p + (ow - 1 - x)];
            }
    CHECK(mirrored == ow * oh * ch);
    // The transform: inside the image (v / 255 - mean) / std, zero outside it.
    const auto t = snip::pixel_transform::normalise({0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f});
    std::vector<float> on(oa.size());
    snip::crop_resize(a, crop, snip::image_view<float>::planar(on.data(), ow, oh, ch), false, t);
    int agree = 0;
    for (int c = 0; c < ch; ++c)
        for (int y = 0; y < oh; ++y)
            for (int x = 0; x < ow; ++x) {
                const std::size_t i = std::size_t(c) * ow * oh + std::size_t(y) * ow + x;
                const float raw = reference(a, crop, ow, oh, x, y, c, false);
                const double u = crop.x1 + (x + 0.5) * crop.width() / ow;
                const double v = crop.y1 + (y + 0.5) * crop.height() / oh;
                const bool inside = u >= 0 && u < w && v >= 0 && v < h;
                const float want = inside ? raw * t.scale[std::size_t(c)] + t.offset[std::size_t(c)] : 0.f;
                agree += std::abs(on[i] - want) < 1e-5f;
            }
    CHECK(agree == ow * oh * ch);
}

TEST_CASE("cut_chip: the chip's content at the top-left, zeros elsewhere") {
    const int w = 120, h = 80;
    const auto px = random_pixels<std::uint8_t>(w, h, 3, 5);
    const auto src = snip::image_view<const std::uint8_t>::interleaved(px.data(), w, h, 3);
    snip::plan_config cfg;
    cfg.chip_size = 64;
    cfg.convention = snip::pixel_convention::inclusive;
    snip::chip c;
    c.factor = 0.5;
    c.rect = {10, 4, 49, 33}; // 40 x 30 scaled px
    std::vector<std::uint8_t> out(std::size_t(64) * 64 * 3, 99);
    const auto dst = snip::image_view<std::uint8_t>::interleaved(out.data(), 64, 64, 3);
    const snip::chip_geometry gm = snip::cut_chip(src, cfg, c, false, dst);
    CHECK(gm.width == 40);
    CHECK(gm.height == 30);
    CHECK(gm.crop.x1 == doctest::Approx(20.0));
    CHECK(gm.crop.x2 == doctest::Approx(100.0));
    CHECK(gm.crop.y1 == doctest::Approx(8.0));
    CHECK(gm.crop.y2 == doctest::Approx(68.0));
    std::vector<std::uint8_t> content(std::size_t(40) * 30 * 3);
    snip::crop_resize(src, gm.crop, snip::image_view<std::uint8_t>::interleaved(content.data(), 40, 30, 3));
    int same = 0, zero = 0;
    for (int y = 0; y < 64; ++y)
        for (int x = 0; x < 64; ++x)
            for (int ch = 0; ch < 3; ++ch) {
                const std::uint8_t v = out[(std::size_t(y) * 64 + x) * 3 + ch];
                if (x < 40 && y < 30) same += v == content[(std::size_t(y) * 40 + x) * 3 + ch];
                else zero += v == 0;
            }
    CHECK(same == 40 * 30 * 3);
    CHECK(zero == (64 * 64 - 40 * 30) * 3);
    // A chip longer than chip_size (the original's corner chips) loses the extra pixel.
    c.rect = {0, 0, 64, 10};
    CHECK(snip::chip_crop(c, 64, cfg.convention).width == 64);
}

TEST_CASE("crop_resize / cut_chip: bad input is a named error") {
    std::vector<std::uint8_t> px(6 * 4 * 3, 1);
    const auto src = snip::image_view<const std::uint8_t>::interleaved(px.data(), 6, 4, 3);
    std::vector<float> out(5 * 5 * 3);
    const auto dst = snip::image_view<float>::planar(out.data(), 5, 5, 3);
    CHECK(contains(error_of([&] { snip::crop_resize(src, {0, 0, 0, 3}, dst); }), "crop box must be finite and non-empty"));
    CHECK(contains(error_of([&] { snip::crop_resize(src, {0, 0, std::nan(""), 3}, dst); }), "non-empty, got [0, 0, nan"));
    CHECK(contains(error_of([&] {
              snip::crop_resize(snip::image_view<const std::uint8_t>::interleaved(px.data(), 0, 4, 3), {0, 0, 3, 3}, dst);
          }), "source image is empty (0 x 4 x 3)"));
    CHECK(contains(error_of([&] {
              snip::crop_resize(src, {0, 0, 3, 3}, snip::image_view<float>::planar(out.data(), 5, 5, 1));
          }), "the source has 3 channels, the destination 1"));
    snip::pixel_transform t;
    t.scale = {1.f};
    t.offset = {0.f};
    CHECK(contains(error_of([&] { snip::crop_resize(src, {0, 0, 3, 3}, dst, false, t); }), "1 scales and 1 offsets for 3 channels"));
    CHECK(contains(error_of([&] { (void)snip::pixel_transform::normalise({0.5f}, {0.f}); }), "channel 0 needs a finite mean and a std > 0"));
    snip::plan_config cfg;
    cfg.chip_size = 8;
    snip::chip c;
    c.rect = {0, 0, 3, 3};
    CHECK(contains(error_of([&] { (void)snip::cut_chip(src, cfg, c, false, dst); }), "the destination is 5 x 5, a chip is 8 x 8"));
    c.factor = 0;
    CHECK(contains(error_of([&] { (void)snip::chip_crop(c, 8, cfg.convention); }), "at factor 0 is empty"));
}
