// Tests of include/snip/sniper/chip_gt.hpp: ground truth in a chip's frame.
#include "test_util.hpp"

#include <snip/sniper/chip_gt.hpp>

#include <vector>

using snip::box;

TEST_CASE("boxes are shifted, scaled and clipped into the chip; small remnants are dropped") {
    const auto cfg = snip::plan_config::sniper_coco();
    snip::chip c;
    c.scale = 0;
    c.factor = 2.0;
    c.rect = {100, 50, 611, 561};
    c.boxes = {0};
    std::vector<box<double>> gt = {
        {60, 40, 110, 90},   // inside: inclusive [60, 40, 109, 89] -> x2 -> [20, 30, 118, 128]
        {300, 0, 400, 30},   // clipped to 9 px tall -> dropped
        {300, 0, 400, 31},   // clipped to 10 px tall -> kept, invalid
        {200, 200, 220, 220},  // crowd
        {0, 0, 20, 20},      // outside the chip -> dropped
    };
    std::vector<std::uint8_t> crowd = {0, 0, 0, 1, 0};
    const auto out = snip::assign_chip(cfg, c, 640, 480, snip::box_view<const double>(snip::as_box_view(gt)), crowd);
    REQUIRE(out.size() == 3);
    CHECK(out[0].index == 0);
    CHECK(out[0].state == snip::gt_state::valid);
    CHECK(out[0].b == box<float>{20, 30, 118, 128});
    CHECK(out[1].index == 2);
    CHECK(out[1].state == snip::gt_state::invalid);
    CHECK(out[1].b == box<float>{500, 0, 511, 10});  // 11 px tall, inclusive
    CHECK(out[2].index == 3);
    CHECK(out[2].state == snip::gt_state::crowd);
}

TEST_CASE("continuous convention: no +1, chip side equals chip size") {
    const auto cfg = snip::plan_config::defaults();
    snip::chip c;
    c.factor = 1.0;
    c.rect = {0, 0, 512, 512};
    // Clipped widths: 12, 9 (dropped), 10 (kept: the bound is inclusive).
    std::vector<box<double>> gt = {{500, 500, 600, 600}, {503, 10, 600, 40}, {502, 10, 600, 40}};
    const auto out = snip::assign_chip(cfg, c, 1000, 1000, snip::box_view<const double>(snip::as_box_view(gt)), {});
    REQUIRE(out.size() == 2);
    CHECK(out[0].b == box<float>{500, 500, 512, 512});
    CHECK(out[0].state == snip::gt_state::invalid);
    CHECK(out[1].index == 2);
    CHECK(out[1].b == box<float>{502, 10, 512, 40});
}

TEST_CASE("min_size is a parameter and mismatched flags are an error") {
    const auto cfg = snip::plan_config::defaults();
    snip::chip c;
    c.rect = {0, 0, 512, 512};
    std::vector<box<double>> gt = {{0, 0, 5, 5}};
    const auto v = snip::box_view<const double>(snip::as_box_view(gt));
    CHECK(snip::assign_chip(cfg, c, 600, 600, v, {}).empty());
    CHECK(snip::assign_chip(cfg, c, 600, 600, v, {}, snip::assign_options{4.0}).size() == 1);
    CHECK_THROWS_WITH_AS(snip::assign_chip(cfg, c, 600, 600, v, {1, 1}), doctest::Contains("2 crowd flags for 1 boxes"),
                         snip::error);
}

TEST_CASE("a chip's proposals never make a ground-truth box valid") {
    const auto cfg = snip::plan_config::defaults();
    snip::chip c;  // a negative chip that counted proposals 0 and 1 and gt 1
    c.rect = {0, 0, 512, 512};
    c.boxes = {1};
    c.proposals = {0, 1};
    std::vector<box<double>> gt = {{10, 10, 60, 60}, {100, 100, 160, 160}};
    const auto out = snip::assign_chip(cfg, c, 600, 600, snip::box_view<const double>(snip::as_box_view(gt)), {});
    REQUIRE(out.size() == 2);
    CHECK(out[0].state == snip::gt_state::invalid);
    CHECK(out[1].state == snip::gt_state::valid);
}

TEST_CASE("assign_chip validates the chip, the boxes and the options") {
    const auto cfg = snip::plan_config::defaults();
    std::vector<box<double>> gt = {{0, 0, 50, 50}, {10, 10, 40, 40}};
    const auto v = snip::box_view<const double>(snip::as_box_view(gt));
    snip::chip c;
    c.rect = {0, 0, 512, 512};
    c.boxes = {2};  // an index past the image's boxes (a proposal index, say)
    CHECK_THROWS_WITH_AS(snip::assign_chip(cfg, c, 600, 600, v, {}),
                         doctest::Contains("chip box index 2 but the image has 2 boxes"), snip::error);
    c.boxes = {-1};
    CHECK_THROWS_WITH_AS(snip::assign_chip(cfg, c, 600, 600, v, {}), doctest::Contains("chip box index -1"),
                         snip::error);
    c.boxes = {0};
    c.scale = 3;
    CHECK_THROWS_WITH_AS(snip::assign_chip(cfg, c, 600, 600, v, {}),
                         doctest::Contains("chip scale 3 but the config has 3 scales"), snip::error);
    c.scale = 0;
    c.factor = 0.0;
    CHECK_THROWS_WITH_AS(snip::assign_chip(cfg, c, 600, 600, v, {}),
                         doctest::Contains("chip factor must be a finite number > 0, got 0"), snip::error);
    c.factor = 1.0;
    c.rect = {10, 0, 5, 512};
    CHECK_THROWS_WITH_AS(snip::assign_chip(cfg, c, 600, 600, v, {}), doctest::Contains("chip rect [10, 0, 5, 512]"),
                         snip::error);
    c.rect = {0, 0, 512, 512};
    CHECK_THROWS_WITH_AS(snip::assign_chip(cfg, c, 600, 600, v, {}, snip::assign_options{-1.0}),
                         doctest::Contains("min_size must be a finite number >= 0, got -1"), snip::error);
    CHECK_THROWS_WITH_AS(snip::assign_chip(cfg, c, 0, 600, v, {}), doctest::Contains("got 0x600"), snip::error);
    gt[1] = {40, 10, 30, 40};
    CHECK_THROWS_WITH_AS(snip::assign_chip(cfg, c, 600, 600, v, {}),
                         doctest::Contains("assign_chip: boxes[1] is [40, 10, 30, 40]"), snip::error);
}
