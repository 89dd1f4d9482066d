// Tests of include/snip/sniper/tune.hpp on small hand-made datasets whose best choice is known.
#include "test_util.hpp"

#include <snip/io/coco.hpp>
#include <snip/sniper/tune.hpp>

#include <vector>

namespace {

/// `n` square images of side `side`, each with one box per entry of `sizes` (px).
snip::dataset squares(int n, int side, const std::vector<double>& sizes) {
    snip::dataset ds;
    for (int i = 0; i < n; ++i) {
        snip::image_record im;
        im.id = i + 1;
        im.width = im.height = side;
        double x = 5;
        for (double s : sizes) {
            const double y = 5.0 + i % 7;
            im.boxes.push_back({x, y, x + s, y + s});
            im.ann_ids.push_back(std::int64_t(im.boxes.size()));
            im.categories.push_back(1);
            im.crowd.push_back(0);
            x += s + 3;
        }
        ds.images.push_back(im);
    }
    return ds;
}

} // namespace

TEST_CASE("one object size in small images: one scale, every box good") {
    const auto ds = squares(40, 500, {90});
    snip::tune_options o;
    const auto r = snip::tune(ds, o);
    CHECK(r.chosen.cfg.scales.size() == 1);
    CHECK(r.chosen.metrics.good_share() == 1.0);
    CHECK(r.chosen.metrics.valid_share() == 1.0);
    CHECK(r.chosen.metrics.chips_per_image() == 1.0);  // the whole (scaled) image is one chip
    const double f = r.chosen.cfg.scales[0].factor_for(500, 500);
    CHECK(90 * f >= 32);
    CHECK(90 * f <= 150);
}

TEST_CASE("small and large objects need two scales") {
    // 20 px objects are good only at factors 1.6..3; 300 px ones only at <= 0.5.
    const auto ds = squares(30, 1000, {20, 300});
    snip::tune_options o;
    const auto r = snip::tune(ds, o);
    REQUIRE(r.chosen.cfg.scales.size() == 2);
    const double fine = r.chosen.cfg.scales[0].factor_for(1000, 1000);
    const double coarse = r.chosen.cfg.scales[1].factor_for(1000, 1000);
    CHECK(fine >= 1.6);
    CHECK(fine <= 3.0);
    CHECK(coarse <= 0.5);
    CHECK(r.chosen.metrics.good_share() == 1.0);
    CHECK(r.chosen.metrics.valid_share() == 1.0);
    // No single scale makes both good.
    for (const auto& e : r.evaluated)
        if (e.cfg.scales.size() == 1) CHECK(e.metrics.good_share() <= 0.5);
    // The proposal plans cleanly.
    CHECK_NOTHROW(r.chosen.cfg.validate());
    CHECK(snip::dataset_warnings(r.chosen.cfg, ds).empty());
}

TEST_CASE("a pixel budget trades good share for pixels") {
    const auto ds = squares(30, 1000, {20, 300});
    snip::tune_options o;
    o.pixel_budget = 1.5 * 512 * 512;  // fewer than two chips
    const auto r = snip::tune(ds, o);
    CHECK(r.chosen.metrics.padded_per_image() <= *o.pixel_budget + 1e-6);
    CHECK(r.chosen.metrics.good_share() == doctest::Approx(0.5));
}

TEST_CASE("ranges are widened until every box is valid somewhere") {
    // A long thin box: too long for the finest scale's chips.
    snip::plan_config c = snip::plan_config::defaults();
    c.ranges = {{-1, 80}, {32, 150}, {120, -1}};
    snip::dataset ds = squares(1, 640, {});
    ds.images[0].boxes = {{10, 10, 300, 50}};  // sqrt(290 * 40) = 108, long side 290
    ds.images[0].ann_ids = {1};
    ds.images[0].categories = {1};
    ds.images[0].crowd = {0};
    const auto before = snip::evaluate_config(c, ds, snip::size_band{});
    CHECK(before.valid == 0);  // middle scale: 290 * 1.667 > 479; coarsest: 108 < 120
    CHECK(snip::widen_ranges_for(c, ds) == 1);
    const auto after = snip::evaluate_config(c, ds, snip::size_band{});
    CHECK(after.valid == 1);
    CHECK(c.ranges[2].lo <= 108);  // the coarsest took it
    CHECK_NOTHROW(c.validate());
}

TEST_CASE("dataset warnings name the scale and the values") {
    // 200 px images: at factor 1.667 they are 333 px, 42% of a 512 chip; 50 px boxes are
    // below the coarsest range (120, -1).
    const auto ds = squares(10, 200, {50});
    const auto w = snip::dataset_warnings(snip::plan_config::defaults(), ds);
    REQUIRE(w.size() == 2);
    CHECK(w[0].find("scale 1 (1.667): the median image fills 42.3% of a 512 px chip") != std::string::npos);
    CHECK(w[1].find("scale 2 (512px, valid range (120,-1)): no box of the dataset is valid there") != std::string::npos);
}

TEST_CASE("bad tune options are rejected with the value") {
    const auto ds = squares(3, 400, {50});
    snip::tune_options o;
    o.band = {150, 32};
    CHECK_THROWS_WITH_AS(snip::tune(ds, o), doctest::Contains("150..32"), snip::error);
    o = {};
    o.max_scales = 9;
    CHECK_THROWS_WITH_AS(snip::tune(ds, o), doctest::Contains("1..9"), snip::error);
    o = {};
    o.min_chip_fill = 2;
    CHECK_THROWS_WITH_AS(snip::tune(ds, o), doctest::Contains("got 2"), snip::error);
    snip::dataset empty;
    CHECK_THROWS_WITH_AS(snip::tune(empty, snip::tune_options{}), doctest::Contains("no images"), snip::error);
}

TEST_CASE("COCO val2017: every box valid, fewer pixels than SNIPER's hand-set preset") {
    const auto path = snip_test::data_file("coco_val2017_boxes/instances_val2017_boxes.json");
    if (path.empty()) return;
    const auto ds = snip::io::read_coco(path);
    const auto ref = snip::plan_config::sniper_coco();
    const auto r = snip::tune(ds, snip::tune_options{}, &ref);
    REQUIRE(r.reference);
    CHECK(r.chosen.metrics.valid_share() == 1.0);
    CHECK(r.chosen.metrics.padded_per_image() <= r.reference->metrics.padded_per_image());
    CHECK(r.chosen.metrics.pixels_per_image() <= r.reference->metrics.pixels_per_image());
    CHECK(r.chosen.metrics.good_share() >= r.reference->metrics.good_share());
}
