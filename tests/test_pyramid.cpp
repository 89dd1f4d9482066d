// Scale specifications and image sizes of pyramid.hpp.
#include "test_util.hpp"

#include <snip/sniper/pyramid.hpp>

#include <cmath>
#include <limits>
#include <string>

using snip::scale_mode;
using snip::scale_spec;

namespace {
std::string parse_error(const std::string& text, const std::string& what = "scale") {
    try {
        (void)scale_spec::parse(text, what);
    } catch (const snip::error& e) {
        return e.what();
    }
    return "(no error)";
}
} // namespace

TEST_CASE("scale_spec: factor") {
    const auto s = scale_spec::by_factor(3.0);
    CHECK(s.mode == scale_mode::factor);
    CHECK(s.factor_for(640, 480) == 3.0);
    CHECK(s.factor_for(1, 10000) == 3.0);  // independent of the image
    const auto im = snip::scale_image(s, 640, 480);
    CHECK(im.factor == 3.0);
    CHECK(im.width == 1920);
    CHECK(im.height == 1440);
    CHECK(im.pixels() == 1920.0 * 1440.0);
    // int(w * f): 640 * 1.667 = 1066.88 -> 1066, 480 * 1.667 = 800.16 -> 800
    const auto f = snip::scale_image(scale_spec::by_factor(1.667), 640, 480);
    CHECK(f.width == 1066);
    CHECK(f.height == 800);
    // truncation, not rounding: 333 * 1.5 = 499.5 -> 499
    CHECK(snip::scale_image(scale_spec::by_factor(1.5), 333, 101).width == 499);
    CHECK(snip::scale_image(scale_spec::by_factor(1.5), 333, 101).height == 151);
    // downscaling may reach 0 pixels
    CHECK(snip::scale_image(scale_spec::by_factor(0.01), 50, 640).width == 0);
}

TEST_CASE("scale_spec: long side") {
    const auto s = scale_spec::by_long_side(512);
    CHECK(s.mode == scale_mode::long_side);
    CHECK(s.factor_for(640, 480) == doctest::Approx(0.8));
    CHECK(s.factor_for(480, 640) == s.factor_for(640, 480));  // portrait: the height is long
    auto im = snip::scale_image(s, 640, 480);
    CHECK(im.width == 512);
    CHECK(im.height == 384);
    im = snip::scale_image(s, 480, 640);
    CHECK(im.width == 384);
    CHECK(im.height == 512);
    im = snip::scale_image(s, 1000, 1000);
    CHECK(im.width == 512);
    CHECK(im.height == 512);
    im = snip::scale_image(s, 256, 100);  // enlarges small images too
    CHECK(im.factor == 2.0);
    CHECK(im.width == 512);
    CHECK(im.height == 200);
    // Truncation of w * (512 / w) in floating point can land one pixel short: for w = 49,
    // 512.0 / 49 * 49 = 511.99999999999994 -> 511 (as int(width * factor) does).
    CHECK(snip::scale_image(s, 49, 20).width == 511);
    CHECK(snip::scale_image(s, 49, 20).factor * 49 == doctest::Approx(512.0));
}

TEST_CASE("scale_spec: resolution (short side, max side)") {
    const auto s = scale_spec::by_resolution(800, 1333);
    CHECK(s.mode == scale_mode::resolution);
    // 1000 x 600: 800 / 600 * 1000 = 1333.3, rounds to 1333 <= 1333: not reduced.
    auto im = snip::scale_image(s, 1000, 600);
    CHECK(im.factor == doctest::Approx(800.0 / 600.0));
    CHECK(im.width == 1333);
    CHECK(im.height == 800);
    // 1001 x 600: round(1334.67) = 1335 > 1333: reduced to 1333 / 1001.
    im = snip::scale_image(s, 1001, 600);
    CHECK(im.factor == 1333.0 / 1001.0);
    CHECK(im.width == 1333);
    CHECK(im.height == 799);
    // 2000 x 1000: 1600 > 1333 -> factor 1333 / 2000.
    im = snip::scale_image(s, 2000, 1000);
    CHECK(im.factor == 1333.0 / 2000.0);
    CHECK(im.width == 1333);
    CHECK(im.height == 666);
    // Rounding ties to even, like numpy.round in the original: 0.5 * 2667 = 1333.5 -> 1334
    // (reduced), 0.5 * 2665 = 1332.5 -> 1332 (kept).
    CHECK(s.factor_for(2667, 1600) == 1333.0 / 2667.0);
    CHECK(s.factor_for(2665, 1600) == 0.5);
    CHECK(s.factor_for(1600, 2667) == 1333.0 / 2667.0);  // portrait: the same rule
    // Max side <= 0: unbounded.
    im = snip::scale_image(scale_spec::by_resolution(800, 0), 4000, 100);
    CHECK(im.factor == 8.0);
    CHECK(im.width == 32000);
    CHECK(im.height == 800);
    // Short side <= 0: the long side goes to the max side.
    im = snip::scale_image(scale_spec::by_resolution(0, 1000), 640, 480);
    CHECK(im.factor == 1000.0 / 640.0);
    CHECK(im.width == 1000);
    CHECK(im.height == 750);
    CHECK(scale_spec::by_resolution(-1, 1000).factor_for(480, 640) == 1000.0 / 640.0);
}

TEST_CASE("single_scale: 800 x 1333 on 640 x 480") {
    // factor 800 / 480 = 1.6667; round(640 * 1.6667) = 1067 <= 1333, so the factor stays;
    // the width is int(1066.67) = 1066 (truncated, where a rounding resize would give 1067)
    // and the height 480 * (800 / 480) comes out exactly 800.
    const auto im = snip::single_scale(640, 480);
    CHECK(im.factor == 800.0 / 480.0);
    CHECK(im.width == 1066);
    CHECK(im.height == 800);
    const auto p = snip::single_scale(480, 640);
    CHECK(p.width == 800);
    CHECK(p.height == 1066);
    const auto wide = snip::single_scale(1920, 480);  // 3200 > 1333: reduced
    CHECK(wide.factor == 1333.0 / 1920.0);
    CHECK(wide.width == 1333);
    CHECK(wide.height == 333);
    const auto small = snip::single_scale(640, 480, 600, 1000);
    CHECK(small.width == 800);
    CHECK(small.height == 600);
}

TEST_CASE("scale_pyramid: the SNIPER COCO scales") {
    const auto p = snip::scale_pyramid({scale_spec::by_factor(3.0), scale_spec::by_factor(1.667),
                                        scale_spec::by_long_side(512)},
                                       640, 480);
    REQUIRE(p.size() == 3);
    CHECK(p[0].width == 1920);
    CHECK(p[0].height == 1440);
    CHECK(p[1].width == 1066);
    CHECK(p[1].height == 800);
    CHECK(p[2].width == 512);
    CHECK(p[2].height == 384);
    CHECK(snip::scale_pyramid({}, 640, 480).empty());
}

TEST_CASE("scale_image: a scaled size an int cannot hold is an error, negative ones too") {
    // Found by fuzz_planner: the check let negative sizes through, and converting
    // 3 * INT_MIN = -6.4e9 to int is undefined behaviour. A non-positive image size is
    // now refused before any scaling.
    constexpr int lo = std::numeric_limits<int>::min();
    CHECK_THROWS_WITH_AS(snip::scale_image(scale_spec::by_factor(3.0), lo, 1),
                         doctest::Contains("image size must be positive, got -2147483648x1"), snip::error);
    CHECK_THROWS_WITH_AS(snip::scale_image(scale_spec::by_factor(0.0), 640, 480),
                         doctest::Contains("scale factor must be a finite number > 0, got 0"), snip::error);
    CHECK_THROWS_WITH_AS(snip::scale_image(scale_spec::by_long_side(-5), 640, 480),
                         doctest::Contains("long-side scale target must be > 0 px, got -5"), snip::error);
    CHECK_THROWS_WITH_AS(snip::scale_image(scale_spec::by_factor(3.0), 1000000000, 10),
                         doctest::Contains("would be 3000000000 x 30 px, beyond the 2147483647 px"), snip::error);
    CHECK(snip::scale_image(scale_spec::by_factor(2.0), 1000000000, 10).width == 2000000000);
}

TEST_CASE("scale_spec: validate") {
    CHECK_NOTHROW(scale_spec::by_factor(0.5).validate());
    CHECK_THROWS_WITH_AS(scale_spec::by_factor(0.0).validate(), doctest::Contains("got 0"),
                         snip::error);
    CHECK_THROWS_AS(scale_spec::by_factor(-1.0).validate(), snip::error);
    CHECK_THROWS_AS(scale_spec::by_factor(std::numeric_limits<double>::infinity()).validate(),
                    snip::error);
    CHECK_THROWS_AS(scale_spec::by_factor(std::nan("")).validate(), snip::error);
    CHECK_THROWS_AS(scale_spec::by_long_side(0).validate(), snip::error);
    CHECK_NOTHROW(scale_spec::by_resolution(0, 1333).validate());
    CHECK_NOTHROW(scale_spec::by_resolution(800, 0).validate());
    CHECK_THROWS_WITH_AS(scale_spec::by_resolution(0, 0).validate(), doctest::Contains("(0,0)"),
                         snip::error);
    CHECK_THROWS_AS(scale_spec::by_resolution(-5, -1).validate(), snip::error);
}

TEST_CASE("scale_spec: to_string") {
    CHECK(scale_spec::by_factor(3.0).to_string() == "3");
    CHECK(scale_spec::by_factor(1.667).to_string() == "1.667");
    CHECK(scale_spec::by_long_side(512).to_string() == "512px");
    CHECK(scale_spec::by_resolution(1400, 2000).to_string() == "(1400,2000)");
}

TEST_CASE("scale_spec: parse good strings") {
    auto s = scale_spec::parse("3");
    CHECK(s.mode == scale_mode::factor);
    CHECK(s.factor == 3.0);
    s = scale_spec::parse("1.667");
    CHECK(s.mode == scale_mode::factor);
    CHECK(s.factor == 1.667);
    s = scale_spec::parse("512px");
    CHECK(s.mode == scale_mode::long_side);
    CHECK(s.long_side == 512);
    s = scale_spec::parse("(1400,2000)");
    CHECK(s.mode == scale_mode::resolution);
    CHECK(s.short_side == 1400);
    CHECK(s.max_side == 2000);
    s = scale_spec::parse("800,1333");
    CHECK(s.mode == scale_mode::resolution);
    CHECK(s.short_side == 800);
    CHECK(s.max_side == 1333);
    s = scale_spec::parse(" ( 800 , 1333 ) ");
    CHECK(s.short_side == 800);
    CHECK(s.max_side == 1333);
    s = scale_spec::parse("0,1333");  // long side -> 1333
    CHECK(s.short_side == 0);
    // to_string and parse round-trip
    for (const auto& t : {"3", "1.667", "512px", "(1400,2000)"}) {
        CAPTURE(t);
        CHECK(scale_spec::parse(t).to_string() == t);
    }
}

TEST_CASE("scale_spec: parse bad strings names the text") {
    for (const std::string t : {"abc", "12px3", "1400,", ",2000", "1.5px", "1400,2000,3", "", "px",
                                "3x", "1400;2000"}) {
        CAPTURE(t);
        const std::string msg = parse_error(t);
        CHECK(msg.find("cannot read scale '" + t + "'") != std::string::npos);
    }
    // Readable numbers that are not valid scales: the message names the value.
    CHECK(parse_error("0").find("got 0") != std::string::npos);
    CHECK(parse_error("-2").find("got -2") != std::string::npos);
    CHECK(parse_error("0px").find("got 0") != std::string::npos);
    CHECK(parse_error("(0,0)").find("(0,0)") != std::string::npos);
    CHECK(parse_error("nan").find("nan") != std::string::npos);
    CHECK(parse_error("-2").find("scale") == 0);
    // The caller's name of the source comes first.
    CHECK(parse_error("abc", "train.json: scales[1]").find("train.json: scales[1]: cannot read") == 0);
    CHECK(parse_error("-2", "--scale").find("--scale: ") == 0);
    // The source is named once, also for strings rejected after a number was read.
    for (const char* t : {"12px3", "1.5px", "1400,2000,3"}) {
        const std::string m = parse_error(t);
        CHECK(m.find("scale: scale:") == std::string::npos);
        CHECK(m.find(t) != std::string::npos);
    }
}
