// Valid ranges, box sizes and the per-scale box filter of valid_range.hpp.
#include "test_util.hpp"

#include <snip/core/valid_range.hpp>

#include <cmath>
#include <limits>
#include <string>

using snip::box;
using snip::pixel_convention;
using snip::valid_range;

namespace {
std::string parse_error(const std::string& text, const std::string& what = "valid range") {
    try {
        (void)valid_range::parse(text, what);
    } catch (const snip::error& e) {
        return e.what();
    }
    return "(no error)";
}
} // namespace

TEST_CASE("valid_range: lower bound inclusive, upper bound exclusive") {
    const valid_range r{32, 150};
    CHECK(r.has_lo());
    CHECK(r.has_hi());
    CHECK_FALSE(r.contains(31.999));
    CHECK(r.contains(32));
    CHECK(r.contains(100));
    CHECK(r.contains(149.999));
    CHECK_FALSE(r.contains(150));
    CHECK_FALSE(r.contains(1e9));
    CHECK_FALSE(r.contains(std::nan("")));
}

TEST_CASE("valid_range: -1 (any negative bound) is unbounded") {
    const valid_range all;
    CHECK_FALSE(all.has_lo());
    CHECK_FALSE(all.has_hi());
    CHECK(all.contains(0));
    CHECK(all.contains(1e12));
    const valid_range fine{-1, 80};
    CHECK_FALSE(fine.has_lo());
    CHECK(fine.contains(0));
    CHECK(fine.contains(79.99));
    CHECK_FALSE(fine.contains(80));
    const valid_range coarse{120, -1};
    CHECK_FALSE(coarse.has_hi());
    CHECK_FALSE(coarse.contains(119.99));
    CHECK(coarse.contains(120));
    CHECK(coarse.contains(1e12));
    CHECK_FALSE(valid_range{-0.5, 10}.has_lo());
    // 0 is a bound, not "open"
    CHECK(valid_range{0, 10}.has_lo());
    CHECK(valid_range{0, 10}.contains(0));
}

TEST_CASE("valid_range: validate") {
    CHECK_NOTHROW(valid_range{32, 150}.validate());
    CHECK_NOTHROW(valid_range{-1, -1}.validate());
    CHECK_NOTHROW(valid_range{150, -1}.validate());  // open end: no order to check
    CHECK_NOTHROW(valid_range{-1, 32}.validate());
    CHECK_THROWS_WITH_AS((valid_range{150, 32}.validate()),
                         doctest::Contains("lower bound 150 must be below upper bound 32"),
                         snip::error);
    CHECK_THROWS_AS((valid_range{32, 32}.validate()), snip::error);  // lo >= hi
    CHECK_THROWS_WITH_AS((valid_range{32, 32}.validate("scale 1")), doctest::Contains("scale 1: "),
                         snip::error);
    CHECK_THROWS_WITH_AS((valid_range{std::nan(""), 5}.validate()),
                         doctest::Contains("must be numbers"), snip::error);
}

TEST_CASE("valid_range: to_string and parse") {
    CHECK(valid_range{32, 150}.to_string() == "(32,150)");
    CHECK(valid_range{-1, 80}.to_string() == "(-1,80)");
    auto r = valid_range::parse("32,150");
    CHECK(r.lo == 32);
    CHECK(r.hi == 150);
    r = valid_range::parse("(-1,80)");
    CHECK(r.lo == -1);
    CHECK(r.hi == 80);
    r = valid_range::parse(" ( 120 , -1 ) ");
    CHECK(r.lo == 120);
    CHECK_FALSE(r.has_hi());
    r = valid_range::parse("0.5,1e3");
    CHECK(r.lo == 0.5);
    CHECK(r.hi == 1000);
    for (const char* t : {"(32,150)", "(-1,80)", "(120,-1)"}) {
        CAPTURE(t);
        CHECK(valid_range::parse(t).to_string() == t);
    }
}

TEST_CASE("valid_range: parse bad strings") {
    for (const std::string t : {"abc", "32", "32,", ",150", "32,150,7", "32;150", "32x,150", "",
                                "(,)"}) {
        CAPTURE(t);
        CHECK(parse_error(t).find("cannot read valid range '" + t + "'") != std::string::npos);
    }
    CHECK(parse_error("150,32").find("lower bound 150 must be below upper bound 32") !=
          std::string::npos);
    CHECK(parse_error("32,32").find("must be below") != std::string::npos);
    CHECK(parse_error("nan,5").find("must be numbers") != std::string::npos);
    CHECK(parse_error("abc", "train.json: ranges[2]").find("train.json: ranges[2]: ") == 0);
    CHECK(parse_error("150,32", "--range").find("--range: ") == 0);
}

TEST_CASE("size_of: both pixel conventions") {
    const box<double> b{0.5, 1.0, 10.7, 5.2};
    const auto c = snip::size_of(b, pixel_convention::continuous);
    CHECK(c.w == doctest::Approx(10.2));
    CHECK(c.h == doctest::Approx(4.2));
    // inclusive: int(x2 - x1), as the original code does
    const auto i = snip::size_of(b, pixel_convention::inclusive);
    CHECK(i.w == 10);
    CHECK(i.h == 4);
    CHECK(snip::size_of(box<float>{0, 0, 0.9f, 31.99f}, pixel_convention::inclusive).w == 0);
    CHECK(snip::size_of(box<float>{0, 0, 0.9f, 31.99f}, pixel_convention::inclusive).h == 31);
    CHECK(snip::size_of(box<int>{3, 4, 13, 24}, pixel_convention::inclusive).w == 10);
    // sqrt(w * h) and the longer side
    const snip::box_size s{16, 64};
    CHECK(s.sqrt_area() == 32);
    CHECK(s.max_side() == 64);
    CHECK(snip::box_size{64, 16}.max_side() == 64);
    // an inverted box has a negative size (continuous)
    CHECK(snip::size_of(box<double>{10, 0, 0, 5}, pixel_convention::continuous).w == -10);
}

TEST_CASE("scale_filter: valid range, min side, max side") {
    snip::scale_filter f;  // accepts any non-negative size
    CHECK(f.accepts({0, 0}));
    CHECK(f.accepts({1e6, 1e6}));
    CHECK_FALSE(f.accepts({-1, 5}));
    CHECK_FALSE(f.accepts({5, -1}));
    CHECK_FALSE(f.accepts({std::nan(""), 5}));

    f.range = {32, 150};
    CHECK_FALSE(f.accepts({31, 33}));   // sqrt = 31.98
    CHECK(f.accepts({16, 64}));         // sqrt = 32 exactly: inclusive lower bound
    CHECK(f.accepts({100, 200}));       // sqrt = 141.4
    CHECK_FALSE(f.accepts({150, 150})); // sqrt = 150: exclusive upper bound

    // min_side (finest scale): w >= min and h >= min
    snip::scale_filter m;
    m.min_side = 2.0;
    CHECK(m.accepts({2, 2}));
    CHECK_FALSE(m.accepts({1.999, 50}));
    CHECK_FALSE(m.accepts({50, 1}));

    // max-side rule: longer side * factor < max_side_scaled, strictly
    snip::scale_filter x;
    x.max_side_scaled = 479.0;  // 512 - 32 - 1
    x.factor = 2.0;             // limit 239.5 original px
    CHECK(x.accepts({239.49, 10}));
    CHECK_FALSE(x.accepts({239.5, 10}));
    CHECK_FALSE(x.accepts({10, 239.5}));  // either side
    CHECK_FALSE(x.accepts({300, 300}));
    x.factor = 0.5;  // a coarse scale: limit 958 original px
    CHECK(x.accepts({957, 957}));
    CHECK_FALSE(x.accepts({958, 1}));

    // all rules at once
    snip::scale_filter all;
    all.range = {-1, 80};
    all.min_side = 2.0;
    all.max_side_scaled = 479.0;
    all.factor = 3.0;  // limit 159.67
    CHECK(all.accepts({10, 10}));
    CHECK_FALSE(all.accepts({1, 100}));   // too thin
    CHECK_FALSE(all.accepts({80, 80}));   // out of range
    CHECK_FALSE(all.accepts({160, 30}));  // sqrt 69 in range, but too long at this scale
    CHECK(all.accepts({159, 30}));
}
