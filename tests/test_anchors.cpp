// Tests of include/snip/det/anchors.hpp: templates, grid shifts, anchors inside a chip.
#include "test_util.hpp"

#include <snip/det/anchors.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

using snip::box;

namespace {

// SNIPER's 21 anchors (stride 16, scales 2,4,7,10,13,16,24, ratios 0.5,1,2), derived
// independently with plain Python arithmetic (round() ties to even, like numpy):
//   b=16; c=(b-1)/2
//   for r in (0.5,1,2):
//     w=round(sqrt(b*b/r)); h=round(w*r)
//     for s in (2,4,7,10,13,16,24): W=w*s; H=h*s
//       print(c-(W-1)/2, c-(H-1)/2, c+(W-1)/2, c+(H-1)/2)
const std::vector<box<double>> sniper_anchors = {
    {-15, -4, 30, 19},        {-38, -16, 53, 31},      {-72.5, -34, 87.5, 49},
    {-107, -52, 122, 67},     {-141.5, -70, 156.5, 85}, {-176, -88, 191, 103},
    {-268, -136, 283, 151},   {-8, -8, 23, 23},         {-24, -24, 39, 39},
    {-48, -48, 63, 63},       {-72, -72, 87, 87},       {-96, -96, 111, 111},
    {-120, -120, 135, 135},   {-184, -184, 199, 199},   {-3, -14, 18, 29},
    {-14, -36, 29, 51},       {-30.5, -69, 45.5, 84},   {-47, -102, 62, 117},
    {-63.5, -135, 78.5, 150}, {-80, -168, 95, 183},     {-124, -256, 139, 271},
};

const std::vector<double> sniper_scales = {2, 4, 7, 10, 13, 16, 24};
const std::vector<double> sniper_ratios = {0.5, 1, 2};

} // namespace

TEST_CASE("round_half_even rounds ties to even like numpy") {
    CHECK(snip::round_half_even(0.5) == 0.0);
    CHECK(snip::round_half_even(1.5) == 2.0);
    CHECK(snip::round_half_even(2.5) == 2.0);
    CHECK(snip::round_half_even(11.5) == 12.0);
    CHECK(snip::round_half_even(-1.5) == -2.0);
    CHECK(snip::round_half_even(-2.5) == -2.0);
    CHECK(snip::round_half_even(22.627416997969522) == 23.0);
    CHECK(snip::round_half_even(11.313708498984761) == 11.0);
    CHECK(snip::round_half_even(7.0) == 7.0);
}

TEST_CASE("legacy templates reproduce SNIPER's 21 anchors exactly") {
    const auto t = snip::legacy_anchor_templates(16, sniper_ratios, sniper_scales);
    REQUIRE(t.size() == 21);
    for (std::size_t i = 0; i < t.size(); ++i) {
        INFO("anchor ", i);
        CHECK(t[i] == sniper_anchors[i]);
        // The inclusive width is the rounded base width times the scale.
        const double w = t[i].x2 - t[i].x1 + 1, h = t[i].y2 - t[i].y1 + 1;
        const double wr[3] = {23, 16, 11}, hr[3] = {12, 16, 22};
        CHECK(w == wr[i / 7] * sniper_scales[i % 7]);
        CHECK(h == hr[i / 7] * sniper_scales[i % 7]);
        // Every template is centred on pixel 7.5, the centre of cell (0, 0).
        CHECK(t[i].x1 + t[i].x2 == 15.0);
        CHECK(t[i].y1 + t[i].y2 == 15.0);
    }
    CHECK(snip::anchor_config::sniper().templates() == t);
    CHECK(snip::anchor_config::sniper().size() == 21);
}

TEST_CASE("legacy templates reproduce py-faster-rcnn's published 9 anchors") {
    // The table printed in py-faster-rcnn's generate_anchors.py (scales 8, 16, 32).
    const std::vector<box<double>> expected = {
        {-84, -40, 99, 55},    {-176, -88, 191, 103},   {-360, -184, 375, 199},
        {-56, -56, 71, 71},    {-120, -120, 135, 135},  {-248, -248, 263, 263},
        {-36, -80, 51, 95},    {-80, -168, 95, 183},    {-168, -344, 183, 359}};
    const std::vector<double> scales = {8, 16, 32};
    CHECK(snip::legacy_anchor_templates(16, sniper_ratios, scales) == expected);
}

TEST_CASE("continuous templates: area (stride*scale)^2, aspect h/w = ratio, centred on the cell") {
    const auto t = snip::continuous_anchor_templates(16, sniper_ratios, sniper_scales);
    REQUIRE(t.size() == 21);
    for (std::size_t i = 0; i < t.size(); ++i) {
        INFO("anchor ", i);
        const double side = 16 * sniper_scales[i % 7], r = sniper_ratios[i / 7];
        const double w = t[i].x2 - t[i].x1, h = t[i].y2 - t[i].y1;
        CHECK(w * h == doctest::Approx(side * side).epsilon(1e-12));
        CHECK(h / w == doctest::Approx(r).epsilon(1e-12));
        CHECK(t[i].x1 + t[i].x2 == doctest::Approx(16.0));
        CHECK(t[i].y1 + t[i].y2 == doctest::Approx(16.0));
    }
    CHECK(t[7] == box<double>{-8, -8, 24, 24});  // ratio 1, scale 2: 32 x 32 around (8, 8)
    CHECK(snip::anchor_config::defaults().templates() == t);
}

TEST_CASE("grid_anchors: order (y, x, anchor), shifted by the stride") {
    const auto t = snip::legacy_anchor_templates(16, sniper_ratios, sniper_scales);
    const int H = 3, W = 5;
    const auto g = snip::grid_anchors<float>(t, H, W, 16);
    REQUIRE(g.size() == std::size_t(H * W * 21));
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
            for (int a = 0; a < 21; ++a) {
                const auto& b = g[std::size_t((y * W + x) * 21 + a)];
                const box<double> e{t[a].x1 + 16 * x, t[a].y1 + 16 * y, t[a].x2 + 16 * x,
                                    t[a].y2 + 16 * y};
                CHECK(b == e.cast<float>());
            }

    SUBCASE("into a column-major 4 x N buffer") {
        const std::ptrdiff_t n = H * W * 21;
        std::vector<double> cm(std::size_t(4 * n), -1.0);
        snip::box_view<double> v(cm.data(), n, /*row_stride=*/1, /*col_stride=*/n);
        snip::grid_anchors(t, H, W, 16, v);
        for (std::ptrdiff_t i = 0; i < n; ++i) CHECK(v[i].cast<float>() == g[std::size_t(i)]);
        CHECK(cm[std::size_t(n)] == g[0].y1);  // row 1 of the buffer holds every y1
    }
    SUBCASE("empty grids and empty templates") {
        CHECK(snip::grid_anchors<float>(t, 0, 7, 16).empty());
        CHECK(snip::grid_anchors<float>({}, 4, 4, 16).empty());
        CHECK(snip::legacy_anchor_templates(16, {}, sniper_scales).empty());
    }
}

TEST_CASE("anchors inside a 512 chip +-32 px, SNIPER's test") {
    const auto t = snip::anchor_config::sniper().templates();
    const auto g = snip::grid_anchors<float>(t, 32, 32, 16);
    REQUIRE(g.size() == 21504);
    const auto kept = snip::anchors_inside(g, 512, 512, 32, snip::pixel_convention::inclusive);
    // Count from the same rule in plain Python over the 32 x 32 x 21 anchors:
    // x1 >= -32 and y1 >= -32 and x2 < 544 and y2 < 544.
    CHECK(kept.size() == 13388);
    std::size_t expect = 0;
    std::vector<std::int64_t> manual;
    for (std::size_t i = 0; i < g.size(); ++i) {
        const auto& b = g[i];
        if (b.x1 >= -32 && b.y1 >= -32 && b.x2 < 544 && b.y2 < 544) {
            ++expect;
            manual.push_back(std::int64_t(i));
        }
    }
    CHECK(expect == 13388);
    CHECK(kept == manual);

    SUBCASE("the far edge: exclusive when inclusive, closed when continuous") {
        std::vector<box<float>> a = {{-32, 0, 544, 10}, {-32.5f, 0, 10, 10}, {0, 0, 543, 543}};
        CHECK(snip::anchors_inside(a, 512, 512, 32, snip::pixel_convention::inclusive) ==
              std::vector<std::int64_t>{2});
        CHECK(snip::anchors_inside(a, 512, 512, 32, snip::pixel_convention::continuous) ==
              std::vector<std::int64_t>{0, 2});
        CHECK(snip::anchor_inside(box<float>{0, 0, 512, 512}, 512.f, 512.f, 0.f,
                                  snip::pixel_convention::continuous));
        CHECK_FALSE(snip::anchor_inside(box<float>{0, 0, 512, 512}, 512.f, 512.f, 0.f,
                                        snip::pixel_convention::inclusive));
    }
    SUBCASE("span output and empty input") {
        std::vector<std::int64_t> out(g.size());
        CHECK(snip::anchors_inside(g, 512, 512, 32, snip::pixel_convention::inclusive,
                                   std::span<std::int64_t>(out)) == 13388);
        std::vector<box<float>> none;
        CHECK(snip::anchors_inside(none, 512, 512, 32).empty());
    }
}

TEST_CASE("bad anchor parameters are errors naming the value") {
    using doctest::Contains;
    const std::vector<double> bad_ratio = {1.0, std::nan("")};
    CHECK_THROWS_WITH_AS(snip::legacy_anchor_templates(16, bad_ratio, sniper_scales),
                         Contains("aspect ratio must be finite and > 0, got nan"), snip::error);
    const std::vector<double> bad_scale = {-2};
    CHECK_THROWS_WITH_AS(snip::continuous_anchor_templates(16, sniper_ratios, bad_scale),
                         Contains("scale must be finite and > 0, got -2"), snip::error);
    CHECK_THROWS_WITH_AS(snip::legacy_anchor_templates(0, sniper_ratios, sniper_scales),
                         Contains("stride must be finite and > 0, got 0"), snip::error);
    const std::vector<double> flat = {2000};  // sqrt(256 / 2000) = 0.36 rounds to 0 px
    CHECK_THROWS_WITH_AS(snip::legacy_anchor_templates(16, flat, sniper_scales),
                         Contains("aspect ratio 2000 rounds to a 0 x 0 px base box"), snip::error);
    const auto t = snip::legacy_anchor_templates(16, sniper_ratios, sniper_scales);
    std::vector<box<float>> out(5);
    CHECK_THROWS_WITH_AS(snip::grid_anchors(t, 2, 2, 16.0, snip::as_box_view(out)),
                         Contains("output holds 5 boxes, the 2 x 2 grid of 21 templates needs 84"),
                         snip::error);
    CHECK_THROWS_WITH_AS(snip::grid_anchors<float>(t, -1, 2, 16), Contains("got -1 x 2"), snip::error);
    CHECK_THROWS_WITH_AS(snip::grid_anchors<float>(t, 2, 2, std::nan("")),
                         Contains("stride must be finite and > 0, got nan"), snip::error);
    std::vector<std::int64_t> small(1);
    const auto g = snip::grid_anchors<float>(t, 1, 1, 16);
    CHECK_THROWS_WITH_AS(snip::anchors_inside(g, 512, 512, 32, snip::pixel_convention::inclusive,
                                              std::span<std::int64_t>(small)),
                         Contains("output holds 1 indices for 21 anchors"), snip::error);
}
