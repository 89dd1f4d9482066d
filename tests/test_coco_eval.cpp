// Tests for io/coco_eval.hpp: hand-computed COCOeval cases (every expected number is
// derived in the comment above its check), bad input, and the real val2017 boxes.
//
// pycocotools' precision is tp / (tp + fp + 2^-52), so a lone true positive scores
// 1 / (1 + 2^-52) = 1 - 2^-52, not 1: every comparison allows 1e-12.
#include <snip/eval/coco_eval.hpp>

#include "test_util.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using nlohmann::json;
using snip::io::coco_eval_result;
using snip::io::detection;
using snip::io::evaluate_coco;

namespace {

constexpr double tol = 1e-12;
constexpr double U = -1.0; // undefined (no ground truth for the setting)

/// A ground truth box: COCO [x, y, w, h], category, crowd flag, annotation area (< 0: none).
struct gtb {
    double x, y, w, h;
    int cat = 1;
    bool crowd = false;
    double area = -1;
};

/// A dataset of 640 x 480 images with ids `ids` (default 1, 2, ...), the given boxes per
/// image, and categories `cats` (none listed when empty). Records get `areas` only when
/// some box has an area.
snip::dataset make_gt(const std::vector<std::vector<gtb>>& per_image, std::vector<int> cats = {1},
                      std::vector<std::int64_t> ids = {}) {
    snip::dataset ds;
    ds.source = "gt.json";
    std::int64_t ann = 1;
    bool any_area = false;
    for (const auto& boxes : per_image)
        for (const gtb& b : boxes) any_area = any_area || b.area >= 0;
    for (std::size_t i = 0; i < per_image.size(); ++i) {
        snip::image_record im;
        im.id = ids.empty() ? static_cast<std::int64_t>(i + 1) : ids[i];
        im.width = 640;
        im.height = 480;
        for (const gtb& b : per_image[i]) {
            im.boxes.push_back(snip::from_xywh(b.x, b.y, b.w, b.h));
            im.ann_ids.push_back(ann++);
            im.categories.push_back(b.cat);
            im.crowd.push_back(b.crowd ? 1 : 0);
            if (any_area) im.areas.push_back(b.area);
        }
        ds.images.push_back(std::move(im));
    }
    for (int c : cats) ds.categories.push_back({c, "cat" + std::to_string(c)});
    return ds;
}

detection det(std::int64_t image, double x, double y, double w, double h, double score, int cat = 1) {
    return {image, cat, x, y, w, h, score};
}
detection det(std::int64_t image, const gtb& b, double score, int cat = 1) {
    return det(image, b.x, b.y, b.w, b.h, score, cat);
}

void check_stats(const coco_eval_result& r, const std::array<double, 12>& want) {
    for (std::size_t i = 0; i < 12; ++i) {
        const double got = r.stats[i], expected = want[i];
        CAPTURE(coco_eval_result::stat_names[i]);
        CAPTURE(got);
        CAPTURE(expected);
        CHECK(std::fabs(got - expected) <= tol);
    }
}

/// The message of the snip::error `f` throws, or "" (and a failed check) when none.
using snip_test::error_of;

void check_contains(const std::string& msg, const std::vector<std::string>& parts) {
    for (const auto& part : parts)
        CHECK_MESSAGE(msg.find(part) != std::string::npos, "expected \"" << part << "\" in: " << msg);
}

// Boxes used below. Areas: large > 96^2 = 9216, medium in [1024, 9216], small <= 1024.
const gtb L1{10, 10, 200, 200};   // 40000, large
const gtb Mb{300, 10, 50, 50};    // 2500, medium
const gtb Sb{400, 10, 20, 20};    // 400, small
const gtb A{0, 0, 100, 100};      // 10000, large
const gtb B{200, 0, 100, 100};
const gtb C{0, 200, 100, 100};
const gtb D{200, 200, 100, 100};
const gtb nowhere{450, 300, 150, 150}; // overlaps none of the above

} // namespace

TEST_CASE("grid: numpy.linspace thresholds") {
    using G = snip::io::coco_eval_grid;
    const auto t = G::iou_thresholds();
    CHECK(t[0] == 0.5);
    CHECK(t[5] == 0.75);
    CHECK(t[9] == 0.95);
    CHECK(std::fabs(t[3] - 0.65) < 1e-15);
    const auto r = G::recall_thresholds();
    CHECK(r[0] == 0.0);
    CHECK(r[25] == 0.25);
    CHECK(r[50] == 0.5);
    CHECK(r[75] == 0.75);
    CHECK(r[100] == 1.0);
}

TEST_CASE("perfect detections: 1 everywhere") {
    // One object per image (large, medium, small): every detection is a TP at every IoU.
    // In each area range the other two detections match ignored (out of range) ground
    // truth and are ignored, so every number is 1 (AR1 too: one object per image).
    const auto gt = make_gt({{L1}, {Mb}, {Sb}});
    const auto r = evaluate_coco(gt, {det(1, L1, 0.9), det(2, Mb, 0.8), det(3, Sb, 0.7)});
    check_stats(r, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
    REQUIRE(r.categories.size() == 1);
    CHECK(r.categories[0].ap == doctest::Approx(1.0));
    CHECK(r.categories[0].gt == 3);
    CHECK(r.categories[0].detections == 3);
    CHECK(r.images == 3);
    CHECK(r.gt_boxes == 3);

    // The same three objects in one image: with one detection per image only the top one
    // counts: AR1 = 1/3; AR10 = AR100 = 1.
    const auto r1 = evaluate_coco(make_gt({{L1, Mb, Sb}}), {det(1, L1, 0.9), det(1, Mb, 0.8), det(1, Sb, 0.7)});
    check_stats(r1, {1, 1, 1, 1, 1, 1, 1.0 / 3, 1, 1, 1, 1, 1});
}

TEST_CASE("no detections: 0 where there is ground truth") {
    const auto gt = make_gt({{L1}, {Mb}, {Sb}});
    check_stats(evaluate_coco(gt, {}), {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    // only large ground truth: the small and medium numbers are undefined (-1)
    check_stats(evaluate_coco(make_gt({{L1}}), {}), {0, 0, 0, U, U, 0, 0, 0, 0, U, U, 0});
    // nothing at all
    check_stats(evaluate_coco(make_gt({{}}), {}), {U, U, U, U, U, U, U, U, U, U, U, U});
}

TEST_CASE("a duplicate detection is a false positive: AP = 253/303") {
    // Ground truth A, B (large). Detections: A 0.9, A again 0.8, B 0.7, at every IoU:
    //   TP FP TP -> tp 1 1 2, fp 0 1 1, recall .5 .5 1, precision 1 .5 2/3
    //   envelope (max from the right): 1 2/3 2/3
    //   recall thresholds 0.00 .. 0.50 (51 points) read index 0 -> 1,
    //                     0.51 .. 1.00 (50 points) read index 2 -> 2/3
    //   AP = (51 + 50 * 2/3) / 101 = 253/303 = 0.83498...
    // AR1: one detection per image -> A only -> 1/2.
    const auto gt = make_gt({{A, B}});
    snip::io::coco_eval_options o;
    o.keep_curves = true;
    const auto r = evaluate_coco(gt, {det(1, A, 0.9), det(1, A, 0.8), det(1, B, 0.7)}, o);
    const double ap = 253.0 / 303.0;
    check_stats(r, {ap, ap, ap, U, U, ap, 0.5, 1, 1, U, U, 1});
    // the 101-point curve itself (t = 0, category 0, area all, maxDets 100)
    for (std::size_t ri = 0; ri < 101; ++ri) {
        CAPTURE(ri);
        CHECK(std::fabs(r.precision_at(0, ri, 0, 0, 2) - (ri <= 50 ? 1.0 : 2.0 / 3.0)) <= tol);
    }
    CHECK(r.recall_at(9, 0, 0, 2) == 1.0);
    CHECK(r.recall_at(0, 0, 0, 0) == 0.5);
    CHECK(r.precision_at(0, 0, 0, 1, 2) == -1.0); // no small ground truth

    // The duplicate ranked below B costs nothing: TP TP FP -> envelope 1 1 2/3 and every
    // recall threshold is reached by index <= 1: AP = 1.
    check_stats(evaluate_coco(gt, {det(1, A, 0.9), det(1, A, 0.6), det(1, B, 0.7)}),
                {1, 1, 1, U, U, 1, 0.5, 1, 1, U, U, 1});
}

TEST_CASE("confidence order: a high-score false positive before true positives") {
    // Ground truth A, B, C, D (large); detections A 0.95, FP 0.9, B 0.8, C 0.7 (D missed):
    //   TP FP TP TP -> recall .25 .25 .5 .75, precision 1 1/2 2/3 3/4 -> envelope 1 3/4 3/4 3/4
    //   thresholds 0 .. .25 (26 points) -> 1; .26 .. .75 (50) -> 3/4; .76 .. 1 (25) -> 0
    //   AP = (26 + 50 * 3/4) / 101 = 63.5/101 = 127/202
    // With the FP scored last (0.6): TP TP TP FP -> 76 points at 1, AP = 76/101; the early FP
    // costs exactly 12.5/101. Recall is 3/4 in both.
    const auto gt = make_gt({{A, B, C, D}});
    const auto early = evaluate_coco(gt, {det(1, A, 0.95), det(1, nowhere, 0.9), det(1, B, 0.8), det(1, C, 0.7)});
    const auto late = evaluate_coco(gt, {det(1, A, 0.95), det(1, nowhere, 0.6), det(1, B, 0.8), det(1, C, 0.7)});
    const double ap_early = 127.0 / 202.0, ap_late = 76.0 / 101.0;
    check_stats(early, {ap_early, ap_early, ap_early, U, U, ap_early, 0.25, 0.75, 0.75, U, U, 0.75});
    check_stats(late, {ap_late, ap_late, ap_late, U, U, ap_late, 0.25, 0.75, 0.75, U, U, 0.75});
    CHECK(std::fabs((late.stats[0] - early.stats[0]) - 12.5 / 101.0) <= tol);

    // One object, FP 0.9 then TP 0.8: precision 0 1/2 -> envelope 1/2 1/2 -> AP 1/2.
    // Reversed (TP first): AP 1.
    check_stats(evaluate_coco(make_gt({{A}}), {det(1, nowhere, 0.9), det(1, A, 0.8)}),
                {0.5, 0.5, 0.5, U, U, 0.5, 0, 1, 1, U, U, 1});
    check_stats(evaluate_coco(make_gt({{A}}), {det(1, nowhere, 0.8), det(1, A, 0.9)}),
                {1, 1, 1, U, U, 1, 1, 1, 1, U, U, 1});
}

TEST_CASE("score ties: file order within an image, image id order across images") {
    // Within one image, equal scores keep file order: FP first -> AP 1/2; TP first -> AP 1.
    check_stats(evaluate_coco(make_gt({{A}}), {det(1, nowhere, 0.5), det(1, A, 0.5)}),
                {0.5, 0.5, 0.5, U, U, 0.5, 0, 1, 1, U, U, 1});
    check_stats(evaluate_coco(make_gt({{A}}), {det(1, A, 0.5), det(1, nowhere, 0.5)}),
                {1, 1, 1, U, U, 1, 1, 1, 1, U, U, 1});
    // Across images, ties follow ascending image id, not file order. Images in file order
    // 2, 1, each with A. Image 1 gets an FP, image 2 a TP, both 0.5 -> FP first:
    //   recall 0 .5, precision 0 1/2 -> envelope 1/2 1/2; thresholds 0 .. .5 (51) -> 1/2
    //   AP = 25.5/101 = 51/202 (file order would give TP first: 51/101).
    const auto gt = make_gt({{A}, {A}}, {1}, {2, 1});
    const double ap = 51.0 / 202.0;
    check_stats(evaluate_coco(gt, {det(2, A, 0.5), det(1, nowhere, 0.5)}),
                {ap, ap, ap, U, U, ap, 0.5, 0.5, 0.5, U, U, 0.5});
}

TEST_CASE("IoU thresholds: a detection with IoU 0.77 is a TP at 0.50 .. 0.75 only") {
    // [0, 0, 100, 77] vs [0, 0, 100, 100]: IoU 7700 / 10000 = 0.77 -> TP at 6 of 10
    // thresholds, AP = AR = 0.6, AP50 = AP75 = 1.
    check_stats(evaluate_coco(make_gt({{A}}), {det(1, 0, 0, 100, 77, 0.9)}),
                {0.6, 1, 1, U, U, 0.6, 0.6, 0.6, 0.6, U, U, 0.6});
}

TEST_CASE("crowd regions: matched detections are ignored; IoU is intersection / detection area") {
    const gtb crowd{300, 0, 200, 200, 1, true};
    // Two detections inside the crowd region (IoU = 1 against it) outscore the TP on A:
    // both ignored (neither TP nor FP) -> AP = AR = 1. The crowd box is no ground truth
    // to find (gt = 1, crowd = 1). AR1 = 0: the one detection kept per image is ignored.
    const auto gt = make_gt({{A, crowd}});
    const std::vector<detection> dets{det(1, 320, 20, 50, 50, 0.95), det(1, 350, 50, 60, 60, 0.93),
                                      det(1, A, 0.9)};
    const auto r = evaluate_coco(gt, dets);
    check_stats(r, {1, 1, 1, U, U, 1, 0, 1, 1, U, U, 1});
    CHECK(r.categories[0].gt == 1);
    CHECK(r.categories[0].crowd == 1);
    CHECK(r.crowd_boxes == 1);
    // Without the crowd region both are false positives ahead of the TP:
    //   precision 0 0 1/3 -> envelope 1/3 everywhere -> AP = 1/3. (APl stays 1: the two
    //   unmatched detections are medium, outside the large range, and ignored there.)
    const double third = 1.0 / 3.0;
    check_stats(evaluate_coco(make_gt({{A}}), dets), {third, third, third, U, U, 1, 0, 1, 1, U, U, 1});

    // Crowd IoU: crowd [0, 0, 100, 100], detection [50, 0, 100, 100] (0.95), TP on B (0.9).
    // intersection 5000 / detection area 10000 = 0.5: ignored at IoU 0.50 (AP 1 there);
    // an FP ahead of the TP at 0.55 .. 0.95 (AP 1/2 each): AP = (1 + 9 * 0.5) / 10 = 0.55.
    // (Ordinary IoU would be 5000 / 15000 = 1/3: an FP at every threshold, AP 1/2.)
    // AR1 = 0: the one detection kept is the one on the crowd region.
    const gtb crowd2{0, 0, 100, 100, 1, true};
    check_stats(evaluate_coco(make_gt({{crowd2, B}}), {det(1, 50, 0, 100, 100, 0.95), det(1, B, 0.9)}),
                {0.55, 1, 0.5, U, U, 0.55, 0, 1, 1, U, U, 1});

    // A match to a regular box is never traded for a better one to a crowd box: ground
    // truth A and crowd [0, 0, 100, 62]; detection [0, 0, 100, 62]: IoU 0.62 with A, 1 with
    // the crowd. At 0.50 .. 0.60 it takes A (TP); above, only the crowd box -> ignored, A
    // missed (AP 0 there): AP = AR = 0.3, AP50 = 1, AP75 = 0.
    const gtb crowd3{0, 0, 100, 62, 1, true};
    check_stats(evaluate_coco(make_gt({{crowd3, A}}), {det(1, 0, 0, 100, 62, 0.9)}),
                {0.3, 1, 0, U, U, 0.3, 0.3, 0.3, 0.3, U, U, 0.3});
}

TEST_CASE("equal IoU: the later ground truth box wins (pycocotools' >= rule)") {
    // A = [0, 0, 100, 100], B2 = [10, 0, 100, 100]. d1 = [5, 0, 100, 100] (0.9) has IoU
    // 9500 / 10500 = 0.905 with both and takes B2 (the later one); d2 = A exactly (0.8) then
    // takes A. Both TP at 0.50 .. 0.90 (AP 1). At 0.95 d1 is an FP ahead of d2, which
    // finds one of the two boxes: recall 0 .5, precision 0 1/2 -> envelope 1/2 1/2;
    // thresholds 0 .. .5 (51 points) -> 1/2: AP = 51/202. AP = (9 + 51/202) / 10 = 1869/2020.
    // (Were A taken by d1, d2 would reach B2 only up to IoU 0.818: AP 51/101 at 0.85, 0.90.)
    // AR1 = 9 * 0.5 / 10 (d1 alone finds one box up to 0.90); AR100 = (9 + 0.5) / 10.
    const gtb B2{10, 0, 100, 100};
    const double ap = 1869.0 / 2020.0;
    check_stats(evaluate_coco(make_gt({{A, B2}}), {det(1, 5, 0, 100, 100, 0.9), det(1, A, 0.8)}),
                {ap, 1, 1, U, U, ap, 0.45, 0.95, 0.95, U, U, 0.95});
}

TEST_CASE("area ranges") {
    // Small S missed, large L found: AP (all) has recall 1/2 -> 51 of 101 thresholds at 1
    // -> 51/101; APs = ARs = 0 (the detection of L matches an ignored box there and is
    // ignored); APl = ARl = 1; medium undefined.
    const double half = 51.0 / 101.0;
    check_stats(evaluate_coco(make_gt({{Sb, L1}}), {det(1, L1, 0.9)}),
                {half, half, half, 0, U, 1, 0.5, 0.5, 0.5, 0, U, 1});

    // An unmatched detection outside the area range is ignored: S found (0.8) behind a large
    // FP (0.9): AP (all) 1/2, but APs = 1 (the large FP does not count among small objects).
    check_stats(evaluate_coco(make_gt({{Sb}}), {det(1, nowhere, 0.9), det(1, Sb, 0.8)}),
                {0.5, 0.5, 0.5, 1, U, U, 0, 1, 1, 1, U, U});

    // The ranges are closed: a 32 x 32 box counts as small and as medium, 96 x 96 as medium
    // and as large.
    const gtb s32{0, 0, 32, 32}, s96{0, 0, 96, 96};
    check_stats(evaluate_coco(make_gt({{s32}}), {det(1, s32, 0.9)}), {1, 1, 1, 1, 1, U, 1, 1, 1, 1, 1, U});
    check_stats(evaluate_coco(make_gt({{s96}}), {det(1, s96, 0.9)}), {1, 1, 1, U, 1, 1, 1, 1, 1, U, 1, 1});
}

TEST_CASE("annotation areas: the ranges use the annotation's area, not w * h") {
    // G1 is 40 x 40 (w * h 1600: medium) with annotation area 900 (small, as a mask area
    // smaller than its box); G2 is 50 x 50 (2500) with area 2000, medium either way. The
    // crowd region K has a small area: crowd is ignored in every range whatever its area,
    // so the detection inside it (IoU = intersection / detection area = 1) is ignored.
    const gtb G1{100, 100, 40, 40, 1, false, 900};
    const gtb G2{300, 10, 50, 50, 1, false, 2000};
    const gtb K{400, 200, 100, 100, 1, true, 500};
    const std::vector<detection> found_g1 = {det(1, G1, 0.9), det(1, 410, 210, 20, 20, 0.8)};
    const double half = 51.0 / 101.0;

    // With the areas: small has G1 only, found -> APs = ARs = 1; medium has G2 only, not
    // found (the detection of G1 matches an ignored box there and is ignored) -> APm = ARm
    // = 0. All: 1 of 2 found at precision 1 -> AP = 51/101, AR = 1/2 (AR1 too: the top
    // detection of the image is the TP). No box is large.
    const auto with_area = make_gt({{G1, G2, K}});
    REQUIRE(with_area.images[0].areas == std::vector<double>{900, 2000, 500});
    CHECK(with_area.images[0].area(0) == 900);
    check_stats(evaluate_coco(with_area, found_g1), {half, half, half, 1, 0, U, 0.5, 0.5, 0.5, 1, 0, U});

    // Without areas (w * h): G1 is medium too -> no small box (APs = ARs = -1), medium has
    // both, 1 found -> APm = 51/101, ARm = 1/2.
    const gtb G1w{G1.x, G1.y, G1.w, G1.h}, G2w{G2.x, G2.y, G2.w, G2.h};
    const gtb Kw{K.x, K.y, K.w, K.h, 1, true};
    const auto box_area = make_gt({{G1w, G2w, Kw}});
    REQUIRE(box_area.images[0].areas.empty());
    CHECK(box_area.images[0].area(0) == 1600);
    check_stats(evaluate_coco(box_area, found_g1), {half, half, half, U, half, U, 0.5, 0.5, 0.5, U, 0.5, U});

    // Per box: an entry < 0 means none (w * h); G2's 2500 is medium like its 2000.
    const auto mixed = make_gt({{G1, G2w, Kw}});
    REQUIRE(mixed.images[0].areas == std::vector<double>{900, -1, -1});
    CHECK(mixed.images[0].area(1) == 2500);
    check_stats(evaluate_coco(mixed, found_g1), {half, half, half, 1, 0, U, 0.5, 0.5, 0.5, 1, 0, U});

    // An unmatched detection's area is w * h of its box: a 40 x 40 false positive (1600,
    // medium) scored above the TP. With the areas it is ignored among the small boxes
    // (APs = ARs = 1) and counts among the medium ones (APm = ARm = 0); in "all" the
    // precision at recall 1/2 is 1/2 -> AP = 0.5 * 51/101; AR1 = 0 (the image's top
    // detection is the FP), AR10 = AR100 = 1/2.
    const double q = 0.5 * 51.0 / 101.0;
    std::vector<detection> with_fp = found_g1;
    with_fp.push_back(det(1, 500, 300, 40, 40, 0.95));
    check_stats(evaluate_coco(with_area, with_fp), {q, q, q, 1, 0, U, 0, 0.5, 0.5, 1, 0, U});
    // Without areas both boxes are medium: APm = AP, ARm = 1/2, small undefined.
    check_stats(evaluate_coco(box_area, with_fp), {q, q, q, U, q, U, 0, 0.5, 0.5, U, 0.5, U});

    // From a COCO file: read_coco keeps the "area" members, evaluation uses them; a file
    // without any "area" evaluates with w * h.
    const std::string images = R"("images": [{"id": 1, "width": 640, "height": 480}], )";
    const std::string cats = R"(, "categories": [{"id": 1, "name": "cat1"}]})";
    const auto from_file = snip::io::parse_coco(json::parse("{" + images + R"("annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [100, 100, 40, 40], "area": 900},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [300, 10, 50, 50], "area": 2000},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [400, 200, 100, 100], "area": 500, "iscrowd": 1}])" + cats),
                                                "gt.json");
    REQUIRE(from_file.images[0].areas == std::vector<double>{900, 2000, 500});
    check_stats(evaluate_coco(from_file, with_fp), {q, q, q, 1, 0, U, 0, 0.5, 0.5, 1, 0, U});
    const auto no_area_file = snip::io::parse_coco(json::parse("{" + images + R"("annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [100, 100, 40, 40]},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [300, 10, 50, 50]},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [400, 200, 100, 100], "iscrowd": 1}])" + cats),
                                                   "gt.json");
    CHECK(no_area_file.images[0].areas.empty());
    check_stats(evaluate_coco(no_area_file, with_fp), {q, q, q, U, q, U, 0, 0.5, 0.5, U, 0.5, U});
}

TEST_CASE("maxDets: 1 / 10 / 100 detections per image and category") {
    // 12 medium objects found in score order: AR1 = 1/12, AR10 = 10/12, AR100 = 1.
    std::vector<gtb> boxes;
    std::vector<detection> dets;
    for (int i = 0; i < 12; ++i) {
        boxes.push_back({double(i % 6) * 100, double(i / 6) * 100, 50, 50});
        dets.push_back(det(1, boxes.back(), 1.0 - 0.01 * i));
    }
    check_stats(evaluate_coco(make_gt({boxes}), dets), {1, 1, 1, U, 1, U, 1.0 / 12, 10.0 / 12, 1, U, 1, U});

    // The 100 kept are the 100 best scores, not the first 100 in the file: an FP with the
    // lowest score comes first in the file and is dropped -> AP = AR100 = 1. With 101
    // objects and 101 TPs, the 101st is cut: recall 100/101 < 1.00 -> AP = AR = 100/101.
    std::vector<gtb> many;
    for (int i = 0; i < 101; ++i) many.push_back({double(i % 20) * 30, double(i / 20) * 30, 20, 20});
    std::vector<detection> d100{det(1, nowhere, 0.1)};
    for (int i = 0; i < 100; ++i) d100.push_back(det(1, many[std::size_t(i)], 0.5));
    std::vector<gtb> hundred(many.begin(), many.begin() + 100);
    check_stats(evaluate_coco(make_gt({hundred}), d100), {1, 1, 1, 1, U, U, 0.01, 0.1, 1, 1, U, U});
    std::vector<detection> d101;
    for (int i = 0; i < 101; ++i) d101.push_back(det(1, many[std::size_t(i)], 0.9 - 0.001 * i));
    const double q = 100.0 / 101.0;
    check_stats(evaluate_coco(make_gt({many}), d101), {q, q, q, q, U, U, 1.0 / 101, 10.0 / 101, q, q, U, U});
}

TEST_CASE("categories: one without ground truth is -1 and left out; two are averaged") {
    // Category 2 has only a false positive: -1, not in the mean; category 1 is perfect.
    const auto r = evaluate_coco(make_gt({{A}}, {1, 2}), {det(1, A, 0.9, 1), det(1, B, 0.8, 2)});
    check_stats(r, {1, 1, 1, U, U, 1, 1, 1, 1, U, U, 1});
    REQUIRE(r.categories.size() == 2);
    CHECK(r.categories[1].id == 2);
    CHECK(r.categories[1].name == "cat2");
    CHECK(r.categories[1].ap == -1.0);
    CHECK(r.categories[1].ar100 == -1.0);
    CHECK(r.categories[1].gt == 0);
    CHECK(r.categories[1].detections == 1);

    // Category 1: perfect (AP 1). Category 2: FP 0.9 then TP 0.8 (AP 1/2). Mean 0.75.
    // AR1: category 1 recall 1, category 2 recall 0 (its first detection is the FP): 0.5.
    const gtb B_2{200, 0, 100, 100, 2};
    const auto r2 = evaluate_coco(make_gt({{A, B_2}}, {2, 1}),
                                  {det(1, A, 0.9, 1), det(1, nowhere, 0.9, 2), det(1, B_2, 0.8, 2)});
    check_stats(r2, {0.75, 0.75, 0.75, U, U, 0.75, 0.5, 1, 1, U, U, 1});
    REQUIRE(r2.categories.size() == 2); // ascending id whatever the listed order
    CHECK(r2.categories[0].id == 1);
    CHECK(std::fabs(r2.categories[0].ap - 1) <= tol);
    CHECK(std::fabs(r2.categories[1].ap - 0.5) <= tol);
    CHECK(std::fabs(r2.categories[1].ap50 - 0.5) <= tol);
    CHECK(std::fabs(r2.categories[1].ar100 - 1) <= tol);

    // No categories listed: the ids in use are evaluated (here 1 and 5; 5 has no gt).
    const auto r3 = evaluate_coco(make_gt({{A}}, {}), {det(1, A, 0.9, 1), det(1, B, 0.8, 5)});
    REQUIRE(r3.categories.size() == 2);
    CHECK(r3.categories[1].id == 5);
    CHECK(r3.categories[1].ap == -1.0);
    check_stats(r3, {1, 1, 1, U, U, 1, 1, 1, 1, U, U, 1});
}

TEST_CASE("results JSON: parsed detections evaluate like the built ones") {
    const auto gt = make_gt({{A, B}});
    const json j = json::parse(R"([
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "score": 0.9, "segmentation": []},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "score": 0.8},
        {"image_id": 1.0, "category_id": 1, "bbox": [200, 0, 100, 100], "score": 0.7}])");
    const auto dets = snip::io::parse_detections(j, "dets.json", gt);
    REQUIRE(dets.size() == 3);
    CHECK(dets[2].x == 200);
    CHECK(dets[2].w == 100);
    CHECK(dets[1].score == 0.8);
    const double ap = 253.0 / 303.0;
    check_stats(evaluate_coco(gt, dets), {ap, ap, ap, U, U, ap, 0.5, 1, 1, U, U, 1});
    CHECK(snip::io::parse_detections(json::array(), "dets.json", gt).empty());

    // Through a file, and the summary in pycocotools' layout.
    const fs::path p = fs::temp_directory_path() / "snip_test_coco_eval_dets.json";
    {
        std::ofstream(p) << j.dump();
    }
    const auto r = snip::io::evaluate_coco_file(gt, p.string());
    fs::remove(p);
    const std::string s = snip::io::format_coco_summary(r);
    CHECK(s.find(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.835\n") == 0);
    CHECK(s.find(" Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.835\n") !=
          std::string::npos);
    CHECK(s.find(" Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000\n") !=
          std::string::npos);
    CHECK(s.find(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.500\n") !=
          std::string::npos);
    CHECK(s.find(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = -1.000\n") !=
          std::string::npos);
    CHECK(std::count(s.begin(), s.end(), '\n') == 12);
    const json out = snip::io::coco_eval_json(r);
    CHECK(out["AP"].get<double>() == doctest::Approx(ap));
    CHECK(out["APs"].get<double>() == -1.0);
    CHECK(out["categories"][0]["id"] == 1);
    CHECK(out["detections"] == 3);
}

TEST_CASE("bad input: errors name file, field and value") {
    const auto gt = make_gt({{A}}, {1, 3});
    auto parse = [&](const std::string& text) { return snip::io::parse_detections(json::parse(text), "dets.json", gt); };
    auto one = [&](const std::string& members) { return parse("[" + members + "]"); };
    const std::string ok_box = R"("bbox": [1, 2, 3, 4])";
    check_contains(error_of([&] { one(R"({"image_id": 99, "category_id": 1, )" + ok_box + R"(, "score": 1})"); }),
                   {"dets.json", "[0].image_id", "99", "no image of gt.json"});
    check_contains(error_of([&] { one(R"({"image_id": 1, "category_id": 7, )" + ok_box + R"(, "score": 1})"); }),
                   {"dets.json", "[0].category_id", "7", "categories", "gt.json"});
    check_contains(
        error_of([&] { one(R"({"image_id": 1, "category_id": 1, "bbox": [1, 2, -3, 4], "score": 1})"); }),
        {"dets.json", "[0].bbox[2] (w)", "-3", ">= 0"});
    check_contains(
        error_of([&] { one(R"({"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, -0.5], "score": 1})"); }),
        {"[0].bbox[3] (h)", "-0.5"});
    check_contains(error_of([&] { one(R"({"image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "score": 1})"); }),
                   {"[0].bbox", "[1,2,3]", "4 numbers"});
    check_contains(error_of([&] { one(R"({"image_id": 1, "category_id": 1, )" + ok_box + "}"); }),
                   {"[0].score is missing"});
    check_contains(error_of([&] { one(R"({"image_id": 1, "category_id": 1, )" + ok_box + R"(, "score": "high"})"); }),
                   {"[0].score", "\"high\"", "finite number"});
    check_contains(error_of([&] { one(R"({"image_id": 1, )" + ok_box + R"(, "score": 1})"); }),
                   {"[0].category_id is missing"});
    check_contains(error_of([&] { parse(R"([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 1}, 5])"); }),
                   {"dets.json", "[1] is 5", "an object"});
    check_contains(error_of([&] { parse(R"({"annotations": []})"); }), {"dets.json", "top level is object", "array"});

    // Non-finite numbers (JSON text cannot hold them; a program can build them).
    json j = json::parse(R"([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 1}])");
    j[0]["bbox"][0] = std::numeric_limits<double>::quiet_NaN();
    check_contains(error_of([&] { snip::io::parse_detections(j, "dets.json", gt); }),
                   {"dets.json", "[0].bbox[0] (x)", "nan", "finite"});
    j[0]["bbox"][0] = 1;
    j[0]["score"] = std::numeric_limits<double>::infinity();
    check_contains(error_of([&] { snip::io::parse_detections(j, "dets.json", gt); }),
                   {"dets.json", "[0].score", "inf", "finite"});

    // The same checks on detections built in code.
    check_contains(error_of([&] { evaluate_coco(gt, {det(99, A, 0.5)}); }),
                   {"detections[0].image_id is 99", "gt.json"});
    check_contains(error_of([&] { evaluate_coco(gt, {det(1, A, 0.5), det(1, A, 0.5, 2)}); }),
                   {"detections[1].category_id is 2", "gt.json"});
    check_contains(error_of([&] { evaluate_coco(gt, {det(1, 0, 0, -1, 5, 0.5)}); }),
                   {"detections[0].bbox[2] (w) is -1", ">= 0"});
    check_contains(error_of([&] { evaluate_coco(gt, {det(1, 0, 0, 5, std::nan(""), 0.5)}); }),
                   {"detections[0].bbox[3] (h) is nan"});
    check_contains(error_of([&] { evaluate_coco(gt, {det(1, A, std::nan(""))}); }),
                   {"detections[0].score is nan", "finite"});
    // a malformed dataset
    auto bad = gt;
    bad.images[0].crowd.clear();
    check_contains(error_of([&] { evaluate_coco(bad, {}); }), {"gt.json", "images[0]", "parallel"});
    auto dup = make_gt({{A}, {B}}, {1}, {4, 4});
    check_contains(error_of([&] { evaluate_coco(dup, {}); }), {"gt.json", "image id 4 occurs twice"});
    auto badcat = make_gt({{gtb{0, 0, 10, 10, 9}}}, {1});
    check_contains(error_of([&] { evaluate_coco(badcat, {}); }), {"gt.json", "category 9", "categories"});
    auto badarea = make_gt({{A, B}});
    badarea.images[0].areas = {5.0}; // 2 boxes, 1 area
    check_contains(error_of([&] { evaluate_coco(badarea, {}); }), {"gt.json", "images[0]", "1 areas", "parallel"});
    badarea.images[0].areas = {5.0, std::numeric_limits<double>::infinity()};
    check_contains(error_of([&] { evaluate_coco(badarea, {}); }), {"gt.json", "images[0]", "box 1", "area inf", "finite"});

    // files: missing, malformed, and Python's NaN
    const fs::path missing = fs::temp_directory_path() / "snip_test_coco_eval_missing.json";
    check_contains(error_of([&] { snip::io::read_detections(missing.string(), gt); }), {missing.string(), "not found"});
    const fs::path nanfile = fs::temp_directory_path() / "snip_test_coco_eval_nan.json";
    {
        std::ofstream(nanfile) << R"([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": NaN}])";
    }
    check_contains(error_of([&] { snip::io::read_detections(nanfile.string(), gt); }),
                   {nanfile.string(), "malformed JSON", "NaN", "non-finite"});
    fs::remove(nanfile);
}

TEST_CASE("order independence and speed: 5,000 images x 100 detections") {
    // Synthetic: 5,000 images, 80 categories, 7 objects per image, 100 detections per image
    // (jittered copies and random boxes, distinct scores). Shuffling the file order of the
    // detections must not change any number (distinct scores leave no ties).
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<std::vector<gtb>> per_image(5000);
    std::vector<int> cats;
    for (int c = 1; c <= 80; ++c) cats.push_back(c);
    std::vector<detection> dets;
    dets.reserve(500000);
    std::size_t serial = 0;
    for (std::size_t i = 0; i < per_image.size(); ++i) {
        for (int k = 0; k < 7; ++k) {
            const double w = 4 + u(rng) * 300, h = 4 + u(rng) * 300;
            per_image[i].push_back({std::floor(u(rng) * (640 - w)), std::floor(u(rng) * (480 - h)), std::floor(w),
                                    std::floor(h), 1 + int(u(rng) * 80) % 80, u(rng) < 0.02});
        }
        for (int k = 0; k < 100; ++k) {
            const double score = double(++serial) / 1e6;
            if (k < 50) {
                const gtb& b = per_image[i][std::size_t(k % 7)];
                const double j = 0.15 * std::sqrt(b.w * b.h);
                dets.push_back(det(std::int64_t(i + 1), b.x + (u(rng) - 0.5) * j, b.y + (u(rng) - 0.5) * j,
                                   std::max(1.0, b.w + (u(rng) - 0.5) * j), std::max(1.0, b.h + (u(rng) - 0.5) * j),
                                   score, u(rng) < 0.9 ? b.cat : 1 + int(u(rng) * 80) % 80));
            } else {
                dets.push_back(det(std::int64_t(i + 1), u(rng) * 600, u(rng) * 440, 5 + u(rng) * 200,
                                   5 + u(rng) * 200, score, 1 + int(u(rng) * 80) % 80));
            }
        }
    }
    const auto gt = make_gt(per_image, cats);
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = evaluate_coco(gt, dets);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("5,000 images x 100 detections, 80 categories: evaluated in " << s << " s; AP " << r.stats[0]
                                                                          << ", AR100 " << r.stats[8]);
    CHECK(s < 30.0); // generous: a shared machine, a Debug build
    for (double v : r.stats) CHECK((v >= 0 && v <= 1));
    CHECK(r.stats[1] >= r.stats[0]);
    CHECK(r.stats[8] >= r.stats[7]);
    CHECK(r.stats[7] >= r.stats[6]);
    std::shuffle(dets.begin(), dets.end(), rng);
    const auto r2 = evaluate_coco(gt, dets);
    for (std::size_t i = 0; i < 12; ++i) CHECK(r2.stats[i] == r.stats[i]);
    for (std::size_t k = 0; k < r.categories.size(); ++k) CHECK(r2.categories[k].ap == r.categories[k].ap);
}

TEST_CASE("real data: COCO val2017 ground truth boxes as detections score 1 -> AP 1") {
    const std::string path = snip_test::data_file("coco_val2017_boxes/instances_val2017_boxes.json");
    if (path.empty()) return;
    snip::dataset gt = snip::io::read_coco(path);
    // The file has one zero-size box (w or h = 0, category 35): its IoU with anything, itself
    // included, is 0, so as a detection it is an FP and as ground truth it is missed.
    auto as_dets = [](const snip::dataset& ds) {
        std::vector<detection> d;
        for (const auto& im : ds.images)
            for (std::size_t b = 0; b < im.boxes.size(); ++b) {
                const auto& x = im.boxes[b];
                d.push_back({im.id, im.categories[b], x.x1, x.y1, x.x2 - x.x1, x.y2 - x.y1, 1.0});
            }
        return d;
    };
    {
        const auto t0 = std::chrono::steady_clock::now();
        const auto r = evaluate_coco(gt, as_dets(gt));
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        MESSAGE("val2017 boxes against themselves: " << s << " s");
        REQUIRE(r.categories.size() == 80);
        for (const auto& c : r.categories) {
            CAPTURE(c.id);
            if (c.id != 35) {
                CHECK(std::fabs(c.ap - 1) <= tol);
                CHECK(c.ar100 == 1.0);
            } else {
                CHECK(c.ar100 == double(c.gt - 1) / double(c.gt)); // the zero-size box is missed
                CHECK(c.ap < 1.0);
            }
        }
    }
    // Without the zero-size box: every AP and AR100 is 1. AR1 and AR10 are below 1 where an
    // image holds more than 1 (10) boxes of a category: recall = sum over images of
    // min(n, maxDets) / number of boxes, averaged over categories.
    std::size_t dropped = 0;
    for (auto& im : gt.images)
        for (std::size_t b = im.boxes.size(); b-- > 0;)
            if (im.boxes[b].empty()) {
                const auto at = static_cast<std::ptrdiff_t>(b);
                im.boxes.erase(im.boxes.begin() + at);
                im.ann_ids.erase(im.ann_ids.begin() + at);
                im.categories.erase(im.categories.begin() + at);
                im.crowd.erase(im.crowd.begin() + at);
                im.areas.erase(im.areas.begin() + at); // the file has "area": parallel
                ++dropped;
            }
    CHECK(dropped == 1);
    std::array<double, 2> want_ar{}; // maxDets 1, 10
    {
        std::map<int, std::size_t> total;
        std::map<int, std::array<std::size_t, 2>> kept;
        for (const auto& im : gt.images) {
            std::map<int, std::size_t> n;
            for (int c : im.categories) ++n[c];
            for (const auto& [c, cnt] : n) {
                total[c] += cnt;
                kept[c][0] += std::min<std::size_t>(cnt, 1);
                kept[c][1] += std::min<std::size_t>(cnt, 10);
            }
        }
        for (const auto& [c, cnt] : total)
            for (std::size_t m = 0; m < 2; ++m) want_ar[m] += double(kept[c][m]) / double(cnt) / double(total.size());
    }
    const auto r = evaluate_coco(gt, as_dets(gt));
    MESSAGE("val2017 self-evaluation: AR1 " << r.stats[6] << ", AR10 " << r.stats[7]);
    check_stats(r, {1, 1, 1, 1, 1, 1, want_ar[0], want_ar[1], 1, 1, 1, 1});
}
