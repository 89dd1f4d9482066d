// Tests of include/snip/sniper/plan.hpp: presets, the original SNIPER box rules, and the
// per-image plan on hand-made and real data.
#include "test_util.hpp"

#include <snip/io/coco.hpp>
#include <snip/sniper/plan.hpp>
#include <snip/core/random.hpp>

#include <array>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

using snip::box;
using snip::plan_config;

namespace {

/// Plans one image with boxes given as COCO [x, y, w, h].
snip::image_plan plan_xywh(const plan_config& cfg, int W, int H, const std::vector<std::array<double, 4>>& xywh,
                           bool naive = false, int stride = 0) {
    std::vector<box<double>> b;
    for (const auto& a : xywh) b.push_back(snip::from_xywh(a[0], a[1], a[2], a[3]));
    snip::plan_workspace ws;
    return snip::plan_image(cfg, W, H, snip::box_view<const double>(snip::as_box_view(b)), {}, ws, stride, naive);
}

bool valid_at(const snip::image_plan& p, std::size_t scale, int box) {
    const auto& v = p.scales[scale].valid;
    return std::find(v.begin(), v.end(), box) != v.end();
}

/// A ground-truth box in a scale's pixels, written out from the conventions' definitions
/// (not with the helpers plan_image uses): inclusive keeps x1, y1 (clipped at 0) and
/// ends at x1 + w - 1, clipped to the last pixel; continuous clips to [0, W]. Then the
/// factor, then the scaled image's bounds; stored as float, as the planner stores it.
box<float> expected_scaled(const plan_config& cfg, const box<double>& b, int W, int H, double f,
                           const snip::scaled_image& sz) {
    const bool inc = cfg.convention == snip::pixel_convention::inclusive;
    double x1, y1, x2, y2;
    if (inc) {
        x1 = b.x1 < 0 ? 0 : b.x1;
        y1 = b.y1 < 0 ? 0 : b.y1;
        x2 = std::min(W - 1.0, x1 + std::max(0.0, b.x2 - b.x1 - 1.0));
        y2 = std::min(H - 1.0, y1 + std::max(0.0, b.y2 - b.y1 - 1.0));
    } else {
        x1 = std::clamp(b.x1, 0.0, double(W));
        y1 = std::clamp(b.y1, 0.0, double(H));
        x2 = std::clamp(b.x2, 0.0, double(W));
        y2 = std::clamp(b.y2, 0.0, double(H));
    }
    const double mx = sz.width - (inc ? 1.0 : 0.0), my = sz.height - (inc ? 1.0 : 0.0);
    return {float(std::clamp(x1 * f, 0.0, mx)), float(std::clamp(y1 * f, 0.0, my)),
            float(std::clamp(x2 * f, 0.0, mx)), float(std::clamp(y2 * f, 0.0, my))};
}

/// Every valid box lies fully inside the chip it is assigned to, in scaled pixels, and
/// every chip lies inside its scaled image.
void check_plan_properties(const plan_config& cfg, const snip::image_record& im, const snip::image_plan& p) {
    const double e = cfg.convention == snip::pixel_convention::inclusive ? 1.0 : 0.0;
    std::vector<int> assigned(im.boxes.size() * cfg.scales.size(), 0);
    for (const auto& c : p.positives) {
        const auto& sz = p.scales[std::size_t(c.scale)].size;
        CHECK(c.rect.x1 >= 0);
        CHECK(c.rect.y1 >= 0);
        CHECK(c.rect.x2 <= sz.width - e);
        CHECK(c.rect.y2 <= sz.height - e);
        for (int b : c.boxes) {
            const auto s = expected_scaled(cfg, im.boxes[std::size_t(b)], im.width, im.height, c.factor, sz);
            const auto r = c.rect.cast<float>();
            CHECK((r.x1 <= s.x1 && r.y1 <= s.y1 && s.x2 <= r.x2 && s.y2 <= r.y2));
            ++assigned[std::size_t(b) * cfg.scales.size() + std::size_t(c.scale)];
        }
    }
    for (std::size_t s = 0; s < cfg.scales.size(); ++s) {
        for (int b : p.scales[s].valid) {
            const bool unc = std::find(p.scales[s].uncoverable.begin(), p.scales[s].uncoverable.end(), b) !=
                             p.scales[s].uncoverable.end();
            CHECK(assigned[std::size_t(b) * cfg.scales.size() + s] == (unc ? 0 : 1));
        }
    }
}

} // namespace

TEST_CASE("sniper_coco is the original COCO configuration") {
    const auto c = plan_config::sniper_coco();
    REQUIRE(c.scales.size() == 3);
    CHECK(c.scales[0].factor_for(640, 480) == 3.0);
    CHECK(c.scales[1].factor_for(640, 480) == 1.667);
    CHECK(c.scales[2].factor_for(640, 480) == doctest::Approx(512.0 / 640.0));
    CHECK(c.ranges[0].hi == 80);
    CHECK(c.ranges[1].lo == 32);
    CHECK(c.ranges[1].hi == 150);
    CHECK(c.ranges[2].lo == 120);
    CHECK(c.chip_size == 512);
    CHECK(c.stride == 32);       // kept for callers that clear the draw
    CHECK(c.stride_min == 56);   // np.random.randint(56, 60) per epoch (data_workers.py:380)
    CHECK(c.stride_max == 59);
    CHECK(c.negatives_per_image == 2);
    CHECK(c.min_proposals_finest == 25);
    CHECK(c.min_proposals_other == 10);
    CHECK(c.convention == snip::pixel_convention::inclusive);
    CHECK(c.layout == snip::chip_layout::sniper);
    CHECK_NOTHROW(c.validate());
    CHECK_NOTHROW(plan_config::defaults().validate());
    CHECK_THROWS_WITH_AS(plan_config::preset("coco"), doctest::Contains("unknown preset 'coco'"), snip::error);
}

TEST_CASE("sniper_coco range ends: lower bound inclusive, upper exclusive, sizes truncated") {
    const auto cfg = plan_config::sniper_coco();
    // COCO w = 81 -> inclusive x2 - x1 = 80 -> size 80: not below 80 (finest), within [32, 150).
    auto p = plan_xywh(cfg, 640, 480, {{10, 10, 81, 81}, {200, 10, 80.5, 80.5}, {10, 200, 121, 121},
                                       {300, 200, 120.5, 120.5}, {400, 10, 33, 33}, {500, 10, 32.9, 32.9}});
    CHECK_FALSE(valid_at(p, 0, 0));
    CHECK(valid_at(p, 1, 0));
    CHECK(valid_at(p, 0, 1));   // int(79.5) = 79 < 80
    CHECK(valid_at(p, 2, 2));   // 120 >= 120
    CHECK(valid_at(p, 1, 2));  // 120 < 150: also at the middle scale
    CHECK_FALSE(valid_at(p, 2, 3));  // int(119.5) = 119 < 120
    CHECK(valid_at(p, 1, 4));   // 32 >= 32
    CHECK_FALSE(valid_at(p, 1, 5));  // int(31.9) = 31 < 32
    CHECK(valid_at(p, 0, 5));
}

TEST_CASE("sniper_coco max-side rule and minimum side at the finest scale") {
    auto cfg = plan_config::sniper_coco();
    cfg.stride_min = cfg.stride_max = 0;  // a fixed stride of 32 (the preset draws 56..59)
    // Finest factor 3: longer side must be < (512 - 32 - 1) / 3 = 159.67 original px.
    auto p = plan_xywh(cfg, 640, 480, {{10, 10, 11, 160}, {100, 10, 11, 161}, {200, 10, 2, 40}, {300, 10, 3, 40}});
    CHECK(valid_at(p, 0, 0));        // 10 x 159: sqrt 39.9, side 159 < 159.67
    CHECK_FALSE(valid_at(p, 0, 1));  // side 160
    CHECK(valid_at(p, 1, 1));        // middle: 160 < 479 / 1.667
    CHECK_FALSE(valid_at(p, 0, 2));  // w = 1 < 2
    CHECK(valid_at(p, 0, 3));        // w = 2
    // Middle scale: no minimum side; coarsest: no max-side rule.
    auto q = plan_xywh(cfg, 640, 480, {{10, 10, 600, 460}});
    CHECK(valid_at(q, 2, 0));
    CHECK(q.scales[1].valid.empty());
}

TEST_CASE("sniper_coco: the drawn stride sets the max-side rule, chip - stride - 1 (data_workers.py:434)") {
    const auto cfg = plan_config::sniper_coco();
    // stride 56: (512 - 56 - 1) / 3 = 151.67; stride 59: 150.67 (inclusive sides: w - 1)
    const std::vector<std::array<double, 4>> b = {{10, 10, 11, 152}, {100, 10, 11, 153}, {200, 10, 11, 151},
                                                  {300, 10, 11, 152}};
    auto p56 = plan_xywh(cfg, 640, 480, b, false, 56);
    CHECK(valid_at(p56, 0, 0));        // side 151 < 151.67
    CHECK_FALSE(valid_at(p56, 0, 1));  // side 152
    auto p59 = plan_xywh(cfg, 640, 480, b, false, 59);
    CHECK(valid_at(p59, 0, 2));        // side 150 < 150.67
    CHECK_FALSE(valid_at(p59, 0, 3));  // side 151
    CHECK_FALSE(valid_at(p59, 0, 0));
    // Sizes are whole pixels (truncated), and at the finest factor 3 no whole side lies
    // between (chip - stride - 1) / 3 and (chip - stride) / 3. At the middle factor 1.667
    // with stride 56 one does: 273 >= 455 / 1.667 = 272.95 but < 456 / 1.667 = 273.55.
    auto pf = plan_xywh(cfg, 640, 480, {{10, 10, 41, 273}, {100, 10, 41, 274}}, false, 56);
    CHECK(valid_at(pf, 1, 0));        // side 272 < 272.95
    CHECK_FALSE(valid_at(pf, 1, 1));  // side 273
    // The filter itself: the rule on every scale but the coarsest.
    for (int stride : {32, 56, 59}) {
        CAPTURE(stride);
        CHECK(cfg.filter(0, 3.0, stride).max_side_scaled == double(512 - stride - 1));
        CHECK(cfg.filter(1, 1.667, stride).max_side_scaled == double(512 - stride - 1));
        CHECK(std::isinf(cfg.filter(2, 0.8, stride).max_side_scaled));
    }
    // Without a stride, plan_image uses the draw of seed 0, epoch 0.
    const int s0 = snip::epoch_stride(cfg, 0, 0);
    CHECK(s0 >= 56);
    CHECK(s0 <= 59);
    auto pd = plan_xywh(cfg, 640, 480, b);
    auto ps = plan_xywh(cfg, 640, 480, b, false, s0);
    CHECK(pd.scales[0].valid == ps.scales[0].valid);
    CHECK(pd.positives.size() == ps.positives.size());
    // The stride also places the candidate grid: stride 56 puts a chip at x = 56 * 3.
    auto g = snip::candidate_chips(cfg.layout, 1920, 1440, 512, 56, cfg.convention);
    CHECK(std::find(g.begin(), g.end(), box<int>{168, 0, 679, 511}) != g.end());
}

TEST_CASE("coarsest 512px scale of a small image is one chip, the whole image") {
    const auto cfg = plan_config::sniper_coco();
    auto p = plan_xywh(cfg, 200, 100, {{5, 2, 190, 95}});  // size sqrt(189 * 94) = 133
    CHECK(p.scales[2].size.width == 512);
    CHECK(p.scales[2].size.height == 256);
    REQUIRE(p.positives.size() == 2);
    CHECK(p.positives[0].scale == 1);  // 333 x 166 at factor 1.667: also one whole-image chip
    CHECK(p.positives[0].rect == box<int>{0, 0, 332, 165});
    CHECK(p.positives[1].scale == 2);
    CHECK(p.positives[1].rect == box<int>{0, 0, 511, 255});
    CHECK(p.positives[1].boxes == std::vector<int>{0});
}

TEST_CASE("crowd boxes never drive a chip") {
    const auto cfg = plan_config::defaults();
    std::vector<box<double>> b = {{10, 10, 40, 40}, {300, 300, 330, 330}};
    std::vector<std::uint8_t> crowd = {0, 1};
    snip::plan_workspace ws;
    auto p = snip::plan_image(cfg, 640, 480, snip::box_view<const double>(snip::as_box_view(b)), crowd, ws);
    for (const auto& s : p.scales) CHECK(std::find(s.valid.begin(), s.valid.end(), 1) == s.valid.end());
}

TEST_CASE("config validation names the values that do not fit") {
    auto c = plan_config::defaults();
    c.ranges = {{-1, 80}, {100, 150}, {120, -1}};
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("leave a gap: boxes of size 80..100"), snip::error);
    c = plan_config::defaults();
    c.ranges.pop_back();
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("3 scales but 2 valid ranges"), snip::error);
    c = plan_config::defaults();
    c.ranges = {{32, 150}, {-1, 80}, {120, -1}};
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("must grow from the finest"), snip::error);
    c = plan_config::defaults();
    c.stride = 512;
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("stride must be in [1, chip size 512), got 512"), snip::error);
    c = plan_config::defaults();
    c.scales[1] = snip::scale_spec::by_factor(-1.0);
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("scale 1: scale factor must be a finite number > 0, got -1"),
                         snip::error);
    c = plan_config::defaults();
    c.ranges[0] = {50, 40};
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("lower bound 50 must be below upper bound 40"), snip::error);
    c = plan_config::defaults();
    c.stride_min = 60;
    c.stride_max = 56;
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("60..56"), snip::error);
    c = plan_config::defaults();
    c.scales.clear();
    c.ranges.clear();
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("at least one scale"), snip::error);
}

TEST_CASE("plan_image rejects bad images and mismatched flags") {
    const auto cfg = plan_config::defaults();
    std::vector<box<double>> b = {{1, 1, 5, 5}};
    snip::plan_workspace ws;
    const auto v = snip::box_view<const double>(snip::as_box_view(b));
    CHECK_THROWS_WITH_AS(snip::plan_image(cfg, 0, 10, v, {}, ws), doctest::Contains("0x10"), snip::error);
    CHECK_THROWS_WITH_AS(snip::plan_image(cfg, 10, 10, v, {0, 1}, ws), doctest::Contains("2 ignore flags for 1 boxes"),
                         snip::error);
}

TEST_CASE("plan_image validates its config and stride on every call") {
    std::vector<box<double>> b = {{10, 10, 40, 40}};
    const auto v = snip::box_view<const double>(snip::as_box_view(b));
    snip::plan_workspace ws;
    auto c = plan_config::defaults();
    c.ranges.pop_back();  // 2 valid ranges for 3 scales (read past the end before)
    CHECK_THROWS_WITH_AS(snip::plan_image(c, 640, 480, v, {}, ws),
                         doctest::Contains("plan_image: config: 3 scales but 2 valid ranges"), snip::error);
    c = plan_config::defaults();
    c.scales[0] = snip::scale_spec::by_factor(-1.0);  // gave a -640 x -480 scale silently
    CHECK_THROWS_WITH_AS(snip::plan_image(c, 640, 480, v, {}, ws),
                         doctest::Contains("scale 0: scale factor must be a finite number > 0, got -1"), snip::error);
    c.scales[0] = snip::scale_spec::by_factor(0.0);  // skipped the scale silently
    CHECK_THROWS_WITH_AS(snip::plan_image(c, 640, 480, v, {}, ws),
                         doctest::Contains("scale 0: scale factor must be a finite number > 0, got 0"), snip::error);
    c = plan_config::defaults();
    c.chip_size = 8;
    CHECK_THROWS_WITH_AS(snip::plan_image(c, 640, 480, v, {}, ws), doctest::Contains("chip size must be >= 16 px, got 8"),
                         snip::error);
    c = plan_config::defaults();
    CHECK_THROWS_WITH_AS(snip::plan_image(c, 640, 480, v, {}, ws, 512),
                         doctest::Contains("plan_image: stride must be in [1, chip size 512), got 512"), snip::error);
    CHECK_THROWS_WITH_AS(snip::plan_image(c, 640, 480, v, {}, ws, -4),
                         doctest::Contains("plan_image: stride must be in [1, chip size 512), got -4"), snip::error);
    CHECK_THROWS_WITH_AS(snip::plan_image(plan_config::sniper_coco(), 640, 480, v, {}, ws, 32),
                         doctest::Contains("stride 32 is outside the config's stride draw range 56..59"), snip::error);
    CHECK_NOTHROW(snip::plan_image(plan_config::sniper_coco(), 640, 480, v, {}, ws, 57));
    // plan_config::filter checks its scale index
    CHECK_THROWS_WITH_AS(c.filter(3, 1.0, 32), doctest::Contains("scale index 3 but the config has 3 scales"),
                         snip::error);
    // scale_image validates the spec and the image size
    CHECK_THROWS_WITH_AS(snip::scale_image(snip::scale_spec::by_factor(-1.0), 640, 480),
                         doctest::Contains("scale factor must be a finite number > 0, got -1"), snip::error);
    CHECK_THROWS_WITH_AS(snip::scale_image(snip::scale_spec::by_factor(2.0), 640, 0),
                         doctest::Contains("image size must be positive, got 640x0"), snip::error);
}

TEST_CASE("plan_image refuses inverted and non-finite boxes, naming the index and the values") {
    const auto cfg = plan_config::defaults();
    snip::plan_workspace ws;
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    auto run = [&](const std::vector<box<double>>& b) {
        return snip::plan_image(cfg, 640, 480, snip::box_view<const double>(snip::as_box_view(b)), {}, ws);
    };
    CHECK_THROWS_WITH_AS(run({{10, 10, 40, 40}, {50, 10, 40, 30}}),
                         doctest::Contains("plan_image: boxes[1] is [50, 10, 40, 30]: must have x1 <= x2 and y1 <= y2"),
                         snip::error);
    CHECK_THROWS_WITH_AS(run({{10, 40, 40, 30}}), doctest::Contains("boxes[0] is [10, 40, 40, 30]"), snip::error);
    CHECK_THROWS_WITH_AS(run({{10, 10, 40, 40}, {1, 2, 3, 4}, {nan, 10, 40, 40}}),
                         doctest::Contains("boxes[2] is [nan, 10, 40, 40]: coordinates must be finite numbers"),
                         snip::error);
    CHECK_THROWS_WITH_AS(run({{10, 10, inf, 40}}), doctest::Contains("boxes[0] is [10, 10, inf, 40]"), snip::error);
    CHECK_THROWS_WITH_AS(run({{-inf, 10, 20, 40}}), doctest::Contains("boxes[0] is [-inf, 10, 20, 40]"), snip::error);
    // a zero-width box is degenerate but not an error: it is valid nowhere
    const auto p = run({{10, 10, 10, 40}});
    CHECK(p.valid_nowhere == std::vector<int>{0});
}

TEST_CASE("boxes outside the image and boxes valid at no scale are reported in the plan") {
    for (const auto& cfg : {plan_config::defaults(), plan_config::sniper_coco()}) {
        CAPTURE(cfg.name);
        std::vector<box<double>> b = {
            {10, 10, 40, 40},      // 0: fine
            {700, 10, 760, 60},    // 1: right of a 640 x 480 image
            {10, 500, 40, 540},    // 2: below it
            {-50, -50, 0, 0},      // 3: touches the corner from outside
            {100, 100, 101, 200},  // 4: 1 px wide: too thin for the finest, too small elsewhere
            {300, 300, 330, 330},  // 5: crowd, outside nothing: never reported
            {-100, 100, 20, 140},  // 6: partly inside: fine
            {800, 800, 900, 900},  // 7: crowd AND outside: not reported either
        };
        std::vector<std::uint8_t> crowd = {0, 0, 0, 0, 0, 1, 0, 1};
        snip::plan_workspace ws;
        const auto p = snip::plan_image(cfg, 640, 480, snip::box_view<const double>(snip::as_box_view(b)), crowd, ws);
        CHECK(p.outside == std::vector<int>{1, 2, 3});
        CHECK(p.valid_nowhere == std::vector<int>{4});
        for (const auto& s : p.scales)
            for (int v : s.valid) CHECK((v == 0 || v == 6));
        // outside boxes are never valid, even at a single scale that takes every size
        auto one = cfg;
        one.scales = {snip::scale_spec::by_factor(1.0)};
        one.ranges = {{-1, -1}};
        const auto q = snip::plan_image(one, 640, 480, snip::box_view<const double>(snip::as_box_view(b)), crowd, ws);
        CHECK(q.outside == std::vector<int>{1, 2, 3});
        CHECK(q.valid_nowhere.empty());
        CHECK(q.scales[0].valid == std::vector<int>{0, 4, 6});
    }
}

TEST_CASE("plan_image refuses a candidate grid beyond max_candidate_chips") {
    // Found by fuzz_planner (tests/fuzz/regressions/planner/grid_2e8_chips_timeout): one
    // scale at factor 1 and stride 1 over a 16000 x 16000 image is 2.4e8 candidates; the
    // limit was 2^28, so it was planned, for minutes and over a GB. Now the limit is 2^24.
    plan_config c = plan_config::defaults();
    c.scales = {snip::scale_spec::by_factor(1.0)};
    c.ranges = {{-1, -1}};
    c.stride = 1;
    c.validate();
    std::vector<box<double>> b = {{10, 10, 50, 50}, {3900, 3900, 3940, 3940}};
    const auto v = snip::box_view<const double>(snip::as_box_view(b));
    snip::plan_workspace ws;
    // 6300 px: (6300 - 512 + 3)^2 = 3.4e7 candidates, over 2^24 = 1.7e7
    CHECK_THROWS_WITH_AS(snip::plan_image(c, 6300, 6300, v, {}, ws),
                         doctest::Contains("is 6300 x 6300 px: more than 16777216 candidate chips of 512 px at stride 1"),
                         snip::error);
    // 4000 px: 1.2e7 candidates, under the limit: planned, one chip per box
    const auto p = snip::plan_image(c, 4000, 4000, v, {}, ws);
    CHECK(p.positives.size() == 2);
    CHECK(p.scales[0].uncoverable.empty());
}

TEST_CASE("random images: properties hold and fast equals naive for both presets") {
    snip::splitmix64 g{21};
    for (auto cfg : {plan_config::sniper_coco(), plan_config::defaults()}) {
        for (int it = 0; it < 150; ++it) {
            snip::image_record im;
            im.width = 64 + int(g.below(1200));
            im.height = 64 + int(g.below(1200));
            const int n = int(g.below(40));
            for (int i = 0; i < n; ++i) {
                const double w = 1 + g.uniform() * std::min(400.0, im.width - 1.0);
                const double h = 1 + g.uniform() * std::min(400.0, im.height - 1.0);
                const double x = g.uniform() * (im.width - w), y = g.uniform() * (im.height - h);
                im.boxes.push_back({x, y, x + w, y + h});
            }
            const auto v = snip::box_view<const double>(snip::as_box_view(im.boxes));
            snip::plan_workspace ws;
            const auto fast = snip::plan_image(cfg, im.width, im.height, v, {}, ws);
            const auto slow = snip::plan_image(cfg, im.width, im.height, v, {}, ws, 0, true);
            check_plan_properties(cfg, im, fast);
            REQUIRE(fast.positives.size() == slow.positives.size());
            for (std::size_t k = 0; k < fast.positives.size(); ++k) {
                CHECK(fast.positives[k].rect == slow.positives[k].rect);
                CHECK(fast.positives[k].boxes == slow.positives[k].boxes);
            }
            // Boxes that fit a chip are never left out.
            if (cfg.name == "sniper_coco")
                for (const auto& s : fast.scales) CHECK(s.uncoverable.empty());
        }
    }
}

TEST_CASE("COCO val2017: identical fast and naive plans on all 5,000 images, 100% coverage") {
    const auto path = snip_test::data_file("coco_val2017_boxes/instances_val2017_boxes.json");
    if (path.empty()) return;
    const auto ds = snip::io::read_coco(path);
    REQUIRE(ds.images.size() == 5000);
    for (auto cfg : {plan_config::sniper_coco(), plan_config::defaults()}) {
        snip::plan_workspace ws;
        std::size_t mismatches = 0, valid = 0, uncoverable = 0, chips = 0;
        for (const auto& im : ds.images) {
            const auto v = snip::box_view<const double>(snip::as_box_view(im.boxes));
            const auto fast = snip::plan_image(cfg, im.width, im.height, v, im.crowd, ws);
            const auto slow = snip::plan_image(cfg, im.width, im.height, v, im.crowd, ws, 0, true);
            bool same = fast.positives.size() == slow.positives.size();
            for (std::size_t k = 0; same && k < fast.positives.size(); ++k)
                same = fast.positives[k].rect == slow.positives[k].rect &&
                       fast.positives[k].boxes == slow.positives[k].boxes;
            for (std::size_t s = 0; same && s < fast.scales.size(); ++s)
                same = fast.scales[s].valid == slow.scales[s].valid;
            mismatches += !same;
            for (const auto& s : fast.scales) valid += s.valid.size(), uncoverable += s.uncoverable.size();
            chips += fast.positives.size();
            if (&im - ds.images.data() < 300) check_plan_properties(cfg, im, fast);
        }
        INFO("preset ", cfg.name);
        CHECK(mismatches == 0);
        CHECK(uncoverable == 0);
        CHECK(valid > 48000);
        MESSAGE(cfg.name, ": ", chips, " positive chips, ", valid, " valid boxes, identical plans on 5000 images");
    }
}

TEST_CASE("coco128 with crowd boxes: properties hold") {
    const auto path = snip_test::data_file("coco128/instances_coco128.json");
    if (path.empty()) return;
    const auto ds = snip::io::read_coco(path);
    for (auto cfg : {plan_config::sniper_coco(), plan_config::defaults()}) {
        snip::plan_workspace ws;
        for (const auto& im : ds.images) {
            const auto p = snip::plan_image(cfg, im.width, im.height,
                                            snip::box_view<const double>(snip::as_box_view(im.boxes)), im.crowd, ws);
            check_plan_properties(cfg, im, p);
            for (std::size_t b = 0; b < im.boxes.size(); ++b)
                if (im.crowd[b])
                    for (const auto& s : p.scales) CHECK(std::find(s.valid.begin(), s.valid.end(), int(b)) == s.valid.end());
        }
    }
}
