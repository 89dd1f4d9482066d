// Tests of include/snip/sniper/pixel_budget.hpp: pixel accounting against hand-computed numbers.
#include "test_util.hpp"

#include <snip/sniper/pixel_budget.hpp>

#include <vector>

TEST_CASE("chip area follows the pixel convention") {
    CHECK(snip::chip_area({0, 0, 511, 511}, snip::pixel_convention::inclusive) == 512.0 * 512.0);
    CHECK(snip::chip_area({0, 0, 512, 512}, snip::pixel_convention::continuous) == 512.0 * 512.0);
    CHECK(snip::chip_area({88, 0, 599, 512}, snip::pixel_convention::inclusive) == 512.0 * 513.0);
}

TEST_CASE("pixel budget of a 640 x 480 image") {
    const auto cfg = snip::plan_config::sniper_coco();
    std::vector<snip::chip> chips(2);
    chips[0].rect = {0, 0, 511, 511};
    chips[1].rect = {0, 0, 511, 383};  // the coarsest scale's whole image
    const auto p = snip::count_pixels(cfg, 640, 480, chips);
    CHECK(p.chips == 512.0 * 512 + 512.0 * 384);
    CHECK(p.chips_padded == 2 * 512.0 * 512);
    // single scale: 800 / 480 = 1.667, round(1066.7) = 1067 <= 1333 -> 1066 x 800 (truncated)
    CHECK(p.single_scale == 1066.0 * 800.0);
    // pyramid: 1920 x 1440 + int(1066.88) x int(800.16) + 512 x 384
    CHECK(p.pyramid == 1920.0 * 1440 + 1066.0 * 800 + 512.0 * 384);
}

TEST_CASE("single scale caps the long side") {
    const auto s = snip::single_scale(1000, 300);  // 800 / 300 -> long side 2667 > 1333
    CHECK(s.width == 1333);
    CHECK(s.height == 399);
}
