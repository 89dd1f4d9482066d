// Tests for instance masks in io/coco.hpp and eval/coco_eval.hpp: the three COCO
// segmentation forms read, written and read back, their bad inputs with exact messages,
// segm evaluation on hand-made masks (every expected number derived in the comment above
// its check), a cross-check against bbox evaluation on rectangular masks, and coco128.
//
// pycocotools' precision is tp / (tp + fp + 2^-52): comparisons allow 1e-12.
#include <snip/core/random.hpp>
#include <snip/eval/coco_eval.hpp>
#include <snip/io/coco.hpp>
#include <snip/mask/rle.hpp>

#include "test_util.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

using nlohmann::json;
using snip::io::coco_eval_options;
using snip::io::coco_eval_result;
using snip::io::detection;
using snip::io::evaluate_coco;
using snip::io::iou_type;
namespace mask = snip::mask;

namespace {

constexpr double tol = 1e-12;
constexpr double U = -1.0; // undefined (no ground truth for the setting)

using snip_test::error_of;

/// A row-major 0/1 picture of one height x width mask, painted by hand.
struct canvas {
    int h, w;
    std::vector<std::uint8_t> px;
    canvas(int height, int width)
        : h(height), w(width), px(std::size_t(height) * std::size_t(width), 0) {}
    /// Sets the pixels [x0, x1) x [y0, y1).
    canvas& rect(int x0, int y0, int x1, int y1) {
        for (int y = y0; y < y1; ++y)
            for (int x = x0; x < x1; ++x)
                px[std::size_t(y) * std::size_t(w) + std::size_t(x)] = 1;
        return *this;
    }
    canvas& clear_rect(int x0, int y0, int x1, int y1) {
        for (int y = y0; y < y1; ++y)
            for (int x = x0; x < x1; ++x)
                px[std::size_t(y) * std::size_t(w) + std::size_t(x)] = 0;
        return *this;
    }
    mask::rle rle() const { return mask::encode(px.data(), h, w); }
};

mask::segmentation as_rle(const mask::rle& r) {
    mask::segmentation s;
    s.mask = r;
    return s;
}
mask::segmentation as_polygons(std::vector<mask::polygon> p) {
    mask::segmentation s;
    s.polygons = std::move(p);
    return s;
}

/// A ground truth object: its segmentation, category and crowd flag.
struct gtm {
    mask::segmentation seg;
    int cat = 1;
    bool crowd = false;
};

/// A dataset of height x width images with ids 1, 2, ...; each object's box is the tight
/// box of its mask; no "area" (segm uses the mask's area for the ranges).
snip::dataset make_gt(int height, int width, const std::vector<std::vector<gtm>>& per_image,
                      std::vector<int> cats = {1}) {
    snip::dataset ds;
    ds.source = "gt.json";
    std::int64_t ann = 1;
    for (std::size_t i = 0; i < per_image.size(); ++i) {
        snip::image_record im;
        im.id = std::int64_t(i) + 1;
        im.width = width;
        im.height = height;
        for (const gtm& g : per_image[i]) {
            im.boxes.push_back(mask::bbox(mask::from_segmentation(g.seg, height, width)));
            im.ann_ids.push_back(ann++);
            im.categories.push_back(g.cat);
            im.crowd.push_back(g.crowd ? 1 : 0);
            im.segments.push_back(g.seg);
        }
        ds.images.push_back(std::move(im));
    }
    for (int c : cats)
        ds.categories.push_back({c, "cat" + std::to_string(c)});
    return ds;
}

/// A detection of mask `m` with the mask's tight box.
detection det(std::int64_t image, const mask::rle& m, double score, int cat = 1) {
    const snip::box<double> b = mask::bbox(m);
    return {image, cat, b.x1, b.y1, b.width(), b.height(), score, m};
}

coco_eval_result eval_segm(const snip::dataset& gt, const std::vector<detection>& dets) {
    coco_eval_options o;
    o.type = iou_type::segm;
    return evaluate_coco(gt, dets, o);
}

void check_stats(const coco_eval_result& r, const std::array<double, 12>& want) {
    for (std::size_t i = 0; i < 12; ++i) {
        CAPTURE(coco_eval_result::stat_names[i]);
        CAPTURE(r.stats[i]);
        CAPTURE(want[i]);
        CHECK(std::fabs(r.stats[i] - want[i]) <= tol);
    }
}

/// Three objects on a 200 x 200 image, one per category: a small disc (radius 9, RLE), a
/// medium triangle (polygon, 3160 px rasterized) and a large ring (100 x 100 with a 20 x 20 hole,
/// 9600 px, RLE).
snip::dataset three_objects() {
    canvas disc(200, 200);
    for (int y = 0; y < 200; ++y)
        for (int x = 0; x < 200; ++x)
            if ((x - 150) * (x - 150) + (y - 40) * (y - 40) <= 81)
                disc.px[std::size_t(y * 200 + x)] = 1;
    canvas ring(200, 200);
    ring.rect(100, 100, 200, 200).clear_rect(140, 140, 160, 160);
    return make_gt(200, 200,
                   {{{as_rle(disc.rle()), 1},
                     {as_polygons({{10, 10, 90, 10, 10, 90}}), 2},
                     {as_rle(ring.rle()), 3}}},
                   {1, 2, 3});
}

/// A COCO document of one 10 x 10 image (id 1) with the given annotations.
std::string doc10(const std::string& anns) {
    return R"({"images": [{"id": 1, "width": 10, "height": 10}], "annotations": )" + anns +
           R"(, "categories": [{"id": 1, "name": "thing"}]})";
}
/// One annotation on image 1 with bbox [0, 0, 10, 10] and the given "segmentation" text.
std::string seg_doc(const std::string& seg) {
    return doc10(
        R"([{"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "segmentation": )" +
        seg + "}]");
}

std::string read_error(const std::string& text) {
    return error_of([&] { snip::io::parse_coco(json::parse(text), "seg.json"); });
}

} // namespace

TEST_CASE("reader: the three segmentation forms, and [] as no mask") {
    // The compressed string, derived by hand with COCO's rule (rleToString) for the runs
    // 5, 20, 30, 10, 35 (sum 100): 5 -> '5'; 20 = 0b10100 has bit 0x10 set, so a second
    // group follows: 'd' (48 + 20 + 32), '0'; 30 likewise: 'n', '0'; the fourth run is
    // written as 10 - 20 = -10: low 5 bits 0b10110 = 22, the rest -1 with the sign bit set,
    // so it ends: 'F' (48 + 22); the fifth as 35 - 30 = 5: '5'.
    const std::string anns = R"([
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 7, 7],
         "segmentation": [[1, 1, 8, 1, 8, 8], [2.5, 3, 4, 3, 4, 6.25]]},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10],
         "segmentation": {"size": [10, 10], "counts": [5, 20, 30, 10, 35]}},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10],
         "segmentation": {"size": [10, 10], "counts": "5d0n0F5"}},
        {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "segmentation": []},
        {"id": 6, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]}])";
    const snip::dataset ds = snip::io::parse_coco(json::parse(doc10(anns)), "seg.json");
    const auto& s = ds.images.at(0).segments;
    REQUIRE(s.size() == 5);
    CHECK(s[0].is_polygons());
    CHECK(s[0].polygons == std::vector<mask::polygon>{{1, 1, 8, 1, 8, 8}, {2.5, 3, 4, 3, 4, 6.25}});
    REQUIRE(s[1].is_rle());
    CHECK(s[1].mask == mask::rle{10, 10, {5, 20, 30, 10, 35}});
    CHECK(s[2] == s[1]);
    CHECK(mask::to_string(s[2].mask) == "5d0n0F5");
    CHECK(s[3].empty());
    CHECK(s[4].empty());

    // No annotation with "segmentation": segments stay empty, as areas do.
    const snip::dataset none = snip::io::parse_coco(
        json::parse(doc10(R"([{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}])")),
        "seg.json");
    CHECK(none.images[0].segments.empty());
    CHECK(none.images[0].boxes.size() == 1);
    // Every "segmentation" [] (as in converted VOC files): no mask anywhere, also empty.
    const snip::dataset all_empty = snip::io::parse_coco(json::parse(seg_doc("[]")), "seg.json");
    CHECK(all_empty.images[0].segments.empty());

    // A vertex outside the image by up to the border tolerance (1 px) is kept as it is.
    const snip::dataset near =
        snip::io::parse_coco(json::parse(seg_doc("[[-1, 0, 11, 0, 11, 10.5]]")), "seg.json");
    CHECK(near.images[0].segments[0].polygons[0] == mask::polygon{-1, 0, 11, 0, 11, 10.5});
}

TEST_CASE("writer: read(write(ds)) == ds with polygons, RLEs (written compressed) and no mask") {
    snip::dataset ds =
        make_gt(10, 10,
                {{{as_polygons({{1, 1, 8, 1, 8, 8}, {0.1, 0.2, 3.3, 0.2, 3.3, 4.7}})},
                  {as_rle({10, 10, {5, 20, 30, 10, 35}}), 1, true},
                  {as_rle({10, 10, {0, 100}})}},
                 {}});
    ds.images[0].segments.push_back({}); // a box without a mask
    ds.images[0].boxes.push_back({2, 2, 3, 3});
    ds.images[0].ann_ids.push_back(99);
    ds.images[0].categories.push_back(1);
    ds.images[0].crowd.push_back(0);
    const json j = snip::io::to_coco_json(ds);
    const json& a = j["annotations"];
    REQUIRE(a.size() == 4);
    CHECK(a[0]["segmentation"] ==
          json::parse("[[1.0, 1.0, 8.0, 1.0, 8.0, 8.0], [0.1, 0.2, 3.3, 0.2, 3.3, 4.7]]"));
    CHECK(a[1]["segmentation"] == json::parse(R"({"size": [10, 10], "counts": "5d0n0F5"})"));
    CHECK(a[3]["segmentation"] == json::array());
    const snip::dataset back = snip::io::parse_coco(json::parse(j.dump()), "back.json");
    REQUIRE(back.images.size() == 2);
    CHECK(back.images[0].segments == ds.images[0].segments);
    CHECK(back.images[1].segments.empty());
    CHECK(back.images[0].boxes == ds.images[0].boxes);

    // Inconsistent records are refused.
    snip::dataset bad = ds;
    bad.images[0].segments.pop_back();
    CHECK(error_of([&] { snip::io::to_coco_json(bad); }) ==
          "gt.json: images[0] (id 1) has 4 boxes but 3 segments; they must be parallel (or "
          "segments empty)");
    bad = ds;
    bad.images[0].segments[1].mask.width = 5;
    CHECK(
        error_of([&] { snip::io::to_coco_json(bad); }) ==
        "gt.json: images[0] (id 1) box 1 has an RLE of size [10, 5], must be [10, 10] (the image's "
        "[height, width])");
    bad = ds;
    bad.images[0].segments[0].polygons[1].pop_back();
    CHECK(error_of([&] { snip::io::to_coco_json(bad); }) ==
          "gt.json: images[0] (id 1) box 0 polygon 1 has 5 numbers, must be an even count >= 6 (>= "
          "3 x, y "
          "pairs)");
}

TEST_CASE("reader: each bad segmentation names the file, the field and the value") {
    struct bad_case {
        const char* seg;
        const char* message;
    };
    const bad_case cases[] = {
        {"[[1, 1, 8, 1, 8]]", "seg.json: annotations[0].segmentation[0] is [1,1,8,1,8]: 5 numbers, "
                              "must be an even count (x, y "
                              "pairs)"},
        {"[[1, 1, 8, 1]]",
         "seg.json: annotations[0].segmentation[0] is [1,1,8,1]: 2 vertices, must be >= 3"},
        {"[[]]", "seg.json: annotations[0].segmentation[0] is []: 0 vertices, must be >= 3"},
        {"[[1, 1, 8, 1, 8, 8], 4]", "seg.json: annotations[0].segmentation[1] is 4, must be a "
                                    "polygon [x0, y0, x1, y1, ...] of >= 3 "
                                    "vertices"},
        {R"([[1, 1, 8, "2", 8, 8]])",
         "seg.json: annotations[0].segmentation[0][3] (y) is \"2\", must be a finite number"},
        {"[[1, 1, 8, 1, 8, 1e999]]", "beyond the range of a double"},
        {"[[1, 1, 8, 1, 8, 8, 1, 22.5]]", "seg.json: annotations[0].segmentation[0][7] (y) is "
                                          "22.5, outside image 1 (10 x 10) by 12.5 px "
                                          "(border tolerance 1 px)"},
        {"[[-3, 1, 8, 1, 8, 8]]", "seg.json: annotations[0].segmentation[0][0] (x) is -3, outside "
                                  "image 1 (10 x 10) by 3 px (border "
                                  "tolerance 1 px)"},
        {R"("polygon")", "seg.json: annotations[0].segmentation is \"polygon\", must be [] (no "
                         "mask), a list of polygons [[x0, "
                         "y0, x1, y1, ...], ...] or an RLE {\"size\": [height, width], \"counts\": "
                         "[...] or \"...\"}"},
        {R"({"size": [10, 12], "counts": [120]})",
         "seg.json: annotations[0].segmentation.size is [10,12], must be [height, width] = [10, "
         "10], the size "
         "of image 1"},
        {R"({"counts": [100]})", "seg.json: annotations[0].segmentation.size is missing, must be "
                                 "[height, width] = [10, 10], the size "
                                 "of image 1"},
        {R"({"size": [10, 10]})", "seg.json: annotations[0].segmentation.counts is missing, must "
                                  "be an array of run lengths or a "
                                  "compressed RLE string (COCO's counts)"},
        {R"({"size": [10, 10], "counts": [50, 49]})",
         "seg.json: annotations[0].segmentation.counts is [50,49]: the runs sum to 99, must sum to "
         "height * "
         "width = 100 (image 1 is 10 x 10)"},
        {R"({"size": [10, 10], "counts": [50, -1, 51]})",
         "seg.json: annotations[0].segmentation.counts[1] is -1, must be an integer in [0, "
         "4294967295] (a run "
         "length)"},
        {R"({"size": [10, 10], "counts": [50, 2.5, 47.5]})",
         "seg.json: annotations[0].segmentation.counts[1] is 2.5, must be an integer in [0, "
         "4294967295] (a "
         "run length)"},
        {R"({"size": [10, 10], "counts": 100})",
         "seg.json: annotations[0].segmentation.counts is 100, must be an array of run lengths or "
         "a compressed "
         "RLE string (COCO's counts)"},
        {R"({"size": [10, 10], "counts": "5d0n0F4"})",
         "seg.json: annotations[0].segmentation.counts is \"5d0n0F4\", not a valid compressed RLE: "
         "mask::from_string: counts sum to 99"},
        {R"({"size": [10, 10], "counts": "5d0 "})",
         "seg.json: annotations[0].segmentation.counts is \"5d0 \", not a valid compressed RLE: "
         "mask::from_string: character 3 is ' '"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.seg);
        std::string msg;
        if (std::string(c.message) == "beyond the range of a double") {
            msg = error_of([&] { snip::io::parse_json_text(seg_doc(c.seg), "seg.json"); });
            CHECK(snip_test::contains(msg, "annotations[0].segmentation[0][5] is 1e999"));
        } else {
            msg = read_error(seg_doc(c.seg));
        }
        CHECK_MESSAGE(snip_test::contains(msg, c.message), "got: " << msg);
    }
    // NaN: the literal is not JSON, so it is a document built in memory.
    json j = json::parse(seg_doc("[[1, 1, 8, 1, 8, 8]]"));
    j["annotations"][0]["segmentation"][0][2] = std::nan("");
    CHECK(error_of([&] { snip::io::parse_coco(j, "seg.json"); }) ==
          "seg.json: annotations[0].segmentation[0][2] (x) is nan, must be a finite number");
    j["annotations"][0]["segmentation"][0][2] = -INFINITY;
    CHECK(error_of([&] { snip::io::parse_coco(j, "seg.json"); }) ==
          "seg.json: annotations[0].segmentation[0][2] (x) is -inf, must be a finite number");
}

TEST_CASE("segm: perfect masks give 1 everywhere, no detections give 0") {
    const snip::dataset gt = three_objects();
    std::vector<detection> dets;
    for (const auto& im : gt.images)
        for (std::size_t b = 0; b < im.boxes.size(); ++b)
            dets.push_back(det(im.id, mask::from_segmentation(im.segments[b], im.height, im.width),
                               1.0, im.categories[b]));
    // one object per category and area range: every number is 1
    const coco_eval_result r = eval_segm(gt, dets);
    CHECK(r.type == iou_type::segm);
    check_stats(r, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
    CHECK(snip::io::coco_eval_json(r)["iou_type"] == "segm");
    // the ranges use the masks' areas: disc 253 px (small), triangle 3160 (medium), ring 9600
    // (large) - each range has exactly one category with ground truth, so a miss of one
    // object shows in exactly its range
    std::vector<detection> no_triangle = dets;
    no_triangle.erase(no_triangle.begin() + 1);
    const coco_eval_result r2 = eval_segm(gt, no_triangle);
    // AP: mean over 3 categories of (1, 0, 1) = 2/3; APm = 0; AR likewise
    check_stats(r2, {2.0 / 3, 2.0 / 3, 2.0 / 3, 1, 0, 1, 2.0 / 3, 2.0 / 3, 2.0 / 3, 1, 0, 1});
    // no detections: 0 wherever there is ground truth
    check_stats(eval_segm(gt, {}), {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
}

TEST_CASE("segm: mask IoU just above / below 0.5 and 0.75 gives the derived AP") {
    // Ground truth: the 10 x 10 square [5, 15)^2 (100 px, small). A detection inside it with
    // k pixels has IoU k / 100 whatever its shape; its pixels are spread over the whole
    // square (a checkerboard, 50 px, plus k - 50 of the other colour, or less 50 - k of its
    // inner pixels) so that its box is the square's and its box IoU is 1. One ground truth, one
    // detection: AP at threshold t is 1 when k / 100 >= t, else 0; AP is the fraction of the 10
    // thresholds 0.50:0.05:0.95 passed, AR100 the same.
    const mask::rle square = canvas(20, 20).rect(5, 5, 15, 15).rle();
    const snip::dataset gt = make_gt(20, 20, {{{as_rle(square)}}});
    auto partial = [](int k) {
        canvas c(20, 20);
        int extra = k - 50;
        for (int y = 5; y < 15; ++y)
            for (int x = 5; x < 15; ++x) {
                const bool even = (x + y) % 2 == 0;
                if (even || extra-- > 0) c.px[std::size_t(y * 20 + x)] = 1;
            }
        for (int y = 6, less = 50 - k; y < 14 && less > 0; ++y)
            for (int x = 6; x < 14 && less > 0; ++x)
                if ((x + y) % 2 == 0) c.px[std::size_t(y * 20 + x)] = 0, --less;
        return c.rle();
    };
    struct expected {
        int k;
        double ap, ap50, ap75;
    };
    // k = 51: passes 0.50 only -> 1/10; 49: none; 76: 0.50 .. 0.75, 6 thresholds -> 0.6;
    // 74: 0.50 .. 0.70, 5 -> 0.5
    const expected cases[] = {{51, 0.1, 1, 0}, {49, 0, 0, 0}, {76, 0.6, 1, 1}, {74, 0.5, 1, 0}};
    for (const auto& e : cases) {
        CAPTURE(e.k);
        const mask::rle m = partial(e.k);
        REQUIRE(mask::area(m) == std::uint64_t(e.k));
        REQUIRE(mask::iou(m, square, false) == e.k / 100.0);
        const detection d = det(1, m, 0.9);
        REQUIRE(d.w == 10);
        REQUIRE(d.h == 10);
        check_stats(eval_segm(gt, {d}),
                    {e.ap, e.ap50, e.ap75, e.ap, U, U, e.ap, e.ap, e.ap, e.ap, U, U});
        // the same detection in bbox mode: its box is the square, IoU 1
        check_stats(evaluate_coco(gt, {d}), {1, 1, 1, 1, U, U, 1, 1, 1, 1, U, U});
    }
}

TEST_CASE("segm: a crowd region absorbs detections; its IoU is intersection / detection area") {
    // 100 x 100 image. A: the square [0, 20)^2 (400 px, small). C: crowd region [40, 100) x
    // [0, 100) (6000 px). Detections: d3 (0.95) = [21, 71) x [50, 52), 100 px of which 62
    // lie in C: IoU with C 0.62 (with the union it would be 0.0101), 0 with A; d2 (0.9) =
    // [50, 70) x [10, 30), inside C: IoU 1 with it; d1 (0.5) = A's mask.
    // d2 is matched to the crowd region at every threshold: ignored. d3 at t = .50, .55, .60
    // too; at .65 .. .95 it is a false positive ranked before d1. So AP_t = 1 at three
    // thresholds and 1 / 2 at seven: AP = (3 + 3.5) / 10 = 0.65, AP50 = 1, AP75 = 0.5.
    // Recall is 1 at every threshold; with maxDets 1 only d3 counts: AR1 = 0. A is small.
    const mask::rle A = canvas(100, 100).rect(0, 0, 20, 20).rle();
    const mask::rle C = canvas(100, 100).rect(40, 0, 100, 100).rle();
    const snip::dataset gt = make_gt(100, 100, {{{as_rle(A)}, {as_rle(C), 1, true}}});
    const mask::rle d3 = canvas(100, 100).rect(21, 50, 71, 52).rle();
    const mask::rle d2 = canvas(100, 100).rect(50, 10, 70, 30).rle();
    REQUIRE(mask::iou(d3, C, true) == 0.62);
    const std::vector<detection> dets{det(1, d3, 0.95), det(1, d2, 0.9), det(1, A, 0.5)};
    const coco_eval_result r = eval_segm(gt, dets);
    check_stats(r, {0.65, 1, 0.5, 0.65, U, U, 0, 1, 1, 1, U, U});
    CHECK(r.crowd_boxes == 1);
    CHECK(r.gt_boxes == 1);
    // Without d3 the crowd region takes d2 and every number is 1 where defined, but AR1:
    // with maxDets 1 only d2 counts, ignored.
    check_stats(eval_segm(gt, {dets[1], dets[2]}), {1, 1, 1, 1, U, U, 0, 1, 1, 1, U, U});
}

TEST_CASE("segm equals bbox on rectangular masks (random boxes, crowds, categories)") {
    // A mask painted as exactly the pixels of an integer box has the box's area, and the
    // mask IoU of two such masks is the box IoU (crowd: intersection / detection area), so
    // every number of the two evaluations must agree.
    snip::splitmix64 g{77};
    constexpr int H = 48, W = 64;
    auto random_box = [&] {
        const int x = int(g.below(W - 2)), y = int(g.below(H - 2));
        const int w = 1 + int(g.below(std::uint64_t(W - x - 1))),
                  h = 1 + int(g.below(std::uint64_t(H - y - 1)));
        return std::array<int, 4>{x, y, x + w, y + h};
    };
    auto paint = [&](const std::array<int, 4>& b) {
        return canvas(H, W).rect(b[0], b[1], b[2], b[3]).rle();
    };
    std::vector<std::vector<gtm>> per_image(6);
    std::vector<detection> dets;
    for (std::size_t i = 0; i < per_image.size(); ++i) {
        const std::int64_t id = std::int64_t(i) + 1;
        for (int k = 0; k < 6; ++k) {
            const auto b = random_box();
            const int cat = 1 + int(g.below(2));
            per_image[i].push_back({as_rle(paint(b)), cat, g.below(8) == 0});
            // a detection near it (shifted by up to 3 px, inside the image) and a random one
            std::array<int, 4> n = b;
            const int dx = int(g.below(7)) - 3, dy = int(g.below(7)) - 3;
            if (n[0] + dx >= 0 && n[2] + dx <= W) n[0] += dx, n[2] += dx;
            if (n[1] + dy >= 0 && n[3] + dy <= H) n[1] += dy, n[3] += dy;
            dets.push_back(det(id, paint(n), double(g.below(1000)) / 1000.0, cat));
            dets.push_back(
                det(id, paint(random_box()), double(g.below(1000)) / 1000.0, 1 + int(g.below(2))));
        }
    }
    const snip::dataset gt = make_gt(H, W, per_image, {1, 2});
    const coco_eval_result rb = evaluate_coco(gt, dets);
    const coco_eval_result rs = eval_segm(gt, dets);
    CHECK(rb.type == iou_type::bbox);
    for (std::size_t i = 0; i < 12; ++i) {
        CAPTURE(coco_eval_result::stat_names[i]);
        CHECK(rb.stats[i] == rs.stats[i]);
    }
    REQUIRE(rb.categories.size() == rs.categories.size());
    for (std::size_t k = 0; k < rb.categories.size(); ++k) {
        CHECK(rb.categories[k].ap == rs.categories[k].ap);
        CHECK(rb.categories[k].ar100 == rs.categories[k].ar100);
    }
    CHECK(rs.stats[0] > 0.05); // a non-trivial case: some matches, some misses
    CHECK(rs.stats[0] < 0.95);
}

TEST_CASE("segm: a box without a segmentation or a detection without a mask is an error") {
    const mask::rle sq = canvas(20, 20).rect(5, 5, 15, 15).rle();
    snip::dataset gt = make_gt(20, 20, {{{as_rle(sq)}, {as_rle(sq)}}});
    const std::vector<detection> dets{det(1, sq, 0.9), {1, 1, 5, 5, 10, 10, 0.8}};
    CHECK(error_of([&] { eval_segm(gt, dets); }) ==
          "detections[1] (image id 1, category 1) has no segmentation mask; iou type segm needs "
          "one for "
          "every detection");
    // bbox evaluation does not need masks
    CHECK(std::fabs(evaluate_coco(gt, dets).stats[1] - 1) <= tol);

    std::vector<detection> wrong_size{det(1, canvas(10, 20).rect(0, 0, 3, 3).rle(), 0.9)};
    CHECK(error_of([&] { eval_segm(gt, wrong_size); }) ==
          "detections[0].segmentation is 10 x 20 (height x width), must be 20 x 20, the size of "
          "image 1");
    std::vector<detection> bad_runs{det(1, sq, 0.9)};
    bad_runs[0].segmentation.counts.back() += 1;
    CHECK(snip_test::contains(error_of([&] { eval_segm(gt, bad_runs); }),
                              "detections[0].segmentation: rle counts sum to 401"));

    gt.images[0].segments[1] = {};
    CHECK(error_of([&] { eval_segm(gt, {dets[0]}); }) ==
          "gt.json: image id 1 box 1 (annotation id 2) has no segmentation; iou type segm needs a "
          "mask for "
          "every ground truth box");
    gt.images[0].segments.clear();
    CHECK(error_of([&] { eval_segm(gt, {dets[0]}); }) ==
          "gt.json: image id 1 box 0 (annotation id 1) has no segmentation (the image has none); "
          "iou type segm "
          "needs a mask for every ground truth box");
    CHECK(evaluate_coco(gt, {dets[0]}).stats[8] == 0.5); // bbox still fine: one of two found
}

TEST_CASE("results: masks parsed in both RLE forms and as polygons; bbox derived when absent") {
    const mask::rle sq = canvas(20, 20).rect(5, 5, 15, 15).rle();
    const snip::dataset gt = make_gt(20, 20, {{{as_rle(sq)}}});
    const std::string s = mask::to_string(sq);
    json counts = json::array();
    for (auto c : sq.counts)
        counts.push_back(c);
    const json j = json::parse(R"([
        {"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": {"size": [20, 20], "counts": ")" +
                               s +
                               R"("}},
        {"image_id": 1, "category_id": 1, "score": 0.8, "bbox": [1, 2, 3, 4],
         "segmentation": {"size": [20, 20], "counts": )" +
                               counts.dump() + R"(}},
        {"image_id": 1, "category_id": 1, "score": 0.7, "bbox": [5, 5, 10, 10],
         "segmentation": [[3, 3, 12, 3, 12, 12, 3, 12]]},
        {"image_id": 1, "category_id": 1, "score": 0.6, "bbox": [5, 5, 10, 10], "segmentation": []}])");
    const auto dets = snip::io::parse_detections(j, "dets.json", gt);
    REQUIRE(dets.size() == 4);
    // no bbox: the mask's tight box [5, 5, 10, 10] and area 100 (pycocotools' loadRes)
    CHECK(dets[0].segmentation == sq);
    CHECK(dets[0].x == 5);
    CHECK(dets[0].y == 5);
    CHECK(dets[0].w == 10);
    CHECK(dets[0].h == 10);
    CHECK(dets[0].area == 100);
    // a bbox given: kept, the area is its w * h
    CHECK(dets[1].segmentation == sq);
    CHECK(dets[1].x == 1);
    CHECK(dets[1].h == 4);
    CHECK(dets[1].area < 0);
    CHECK(dets[2].segmentation == mask::from_polygons({{3, 3, 12, 3, 12, 12, 3, 12}}, 20, 20));
    CHECK(dets[3].segmentation.height == 0);

    // written back (masks compressed) and read again
    const std::vector<detection> first_two{dets[0], dets[1]};
    const json w = snip::io::detections_json(first_two);
    CHECK(w[0]["segmentation"] == json({{"size", {20, 20}}, {"counts", s}}));
    CHECK(w[0]["bbox"] == json::parse("[5.0, 5.0, 10.0, 10.0]"));
    const auto back = snip::io::parse_detections(json::parse(w.dump()), "back.json", gt);
    REQUIRE(back.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
        CHECK(back[i].segmentation == first_two[i].segmentation);
        CHECK(back[i].x == first_two[i].x);
        CHECK(back[i].w == first_two[i].w);
        CHECK(back[i].score == first_two[i].score);
    }

    // bad masks name the result, the field and the value
    auto err = [&](const std::string& text) {
        return error_of([&] { snip::io::parse_detections(json::parse(text), "dets.json", gt); });
    };
    CHECK(
        err(R"([{"image_id": 1, "category_id": 1, "score": 1, "segmentation": {"size": [10, 20], "counts": "0"}}])") ==
        "dets.json: [0].segmentation.size is [10,20], must be [height, width] = [20, 20], the size "
        "of image 1");
    CHECK(err(R"([{"image_id": 1, "category_id": 1, "score": 1, "segmentation": []}])") ==
          "dets.json: [0].bbox is missing, must be [x, y, w, h]");
    CHECK(
        err(R"([{"image_id": 1, "category_id": 1, "score": 1, "segmentation": {"size": [20, 20], "counts": [399]}}])") ==
        "dets.json: [0].segmentation.counts is [399]: the runs sum to 399, must sum to height * "
        "width = 400 (image 1 is 20 x 20)");
    // a result polygon may reach outside the image by up to its larger side (20 px), no more
    CHECK(snip::io::parse_detections(json::parse(R"([{"image_id": 1, "category_id": 1, "score": 1,
        "bbox": [0, 0, 20, 20], "segmentation": [[-20, -20, 40, -20, 40, 40]]}])"),
                                     "dets.json", gt)[0]
              .segmentation == mask::from_polygons({{-20, -20, 40, -20, 40, 40}}, 20, 20));
    CHECK(err(R"([{"image_id": 1, "category_id": 1, "score": 1, "bbox": [0, 0, 1, 1],
        "segmentation": [[0, 0, 1e6, 0, 0, 5]]}])") ==
          "dets.json: [0].segmentation[0][2] (x) is 1000000.0, outside image 1 (20 x 20) by 999980 "
          "px (border tolerance 20 px)");
}

TEST_CASE("iou type: parsed from bbox / segm, anything else names the flag and the value") {
    CHECK(snip::io::parse_iou_type("bbox") == iou_type::bbox);
    CHECK(snip::io::parse_iou_type("segm", "--iou-type") == iou_type::segm);
    CHECK(snip::io::to_string(iou_type::segm) == "segm");
    CHECK(error_of([] { snip::io::parse_iou_type("mask", "--iou-type"); }) ==
          "--iou-type is 'mask', must be bbox or segm");
    CHECK(error_of([] { snip::io::parse_iou_type("", "--iou-type"); }) ==
          "--iou-type is '', must be bbox or segm");
}

TEST_CASE("real data: coco128 read with masks; its ground truth as detections scores segm AP 1") {
    const std::string path = snip_test::data_file("coco128/instances_coco128.json");
    if (path.empty()) return;
    const snip::dataset gt = snip::io::read_coco(path);
    std::size_t polygons = 0, rles = 0, crowd_rles = 0;
    for (const auto& im : gt.images) {
        REQUIRE(im.segments.size() == im.boxes.size());
        for (std::size_t b = 0; b < im.boxes.size(); ++b) {
            const auto& s = im.segments[b];
            REQUIRE_FALSE(s.empty());
            polygons += s.is_polygons();
            rles += s.is_rle();
            crowd_rles += s.is_rle() && im.crowd[b];
        }
    }
    CHECK(polygons == 929);
    CHECK(rles == 10);
    CHECK(crowd_rles == 10);

    // The non-crowd objects as detections, score 1, their own masks (and boxes).
    std::vector<detection> dets;
    std::array<std::size_t, 4> in_range{}; // non-crowd objects per area range (by "area")
    for (const auto& im : gt.images)
        for (std::size_t b = 0; b < im.boxes.size(); ++b) {
            if (im.crowd[b]) continue;
            const auto& x = im.boxes[b];
            dets.push_back({im.id, im.categories[b], x.x1, x.y1, x.width(), x.height(), 1.0,
                            mask::from_segmentation(im.segments[b], im.height, im.width)});
            for (std::size_t a = 0; a < 4; ++a) {
                const auto& rg = snip::io::coco_eval_grid::area_ranges[a];
                in_range[a] += im.area(b) >= rg[0] && im.area(b) <= rg[1];
            }
        }
    REQUIRE(dets.size() == 929);
    const coco_eval_result r = eval_segm(gt, dets);
    MESSAGE("coco128 segm self-evaluation: AP " << r.stats[0] << ", APs " << r.stats[3] << ", APm "
                                                << r.stats[4] << ", APl " << r.stats[5]);
    CHECK(r.crowd_boxes == 10);
    CHECK(std::fabs(r.stats[0] - 1) <= tol);
    CHECK(std::fabs(r.stats[1] - 1) <= tol);
    CHECK(std::fabs(r.stats[2] - 1) <= tol);
    for (std::size_t a = 1; a < 4; ++a) {
        CAPTURE(a);
        REQUIRE(in_range[a] > 0); // every range has objects
        CHECK(std::fabs(r.stats[2 + a] - 1) <= tol);
        CHECK(std::fabs(r.stats[8 + a] - 1) <= tol);
    }
    CHECK(std::fabs(r.stats[8] - 1) <= tol);
    for (const auto& c : r.categories) {
        CAPTURE(c.id);
        if (c.gt > 0) CHECK(std::fabs(c.ap - 1) <= tol);
    }

    // Through the results file format: written with compressed masks and no bbox, read back.
    json res = snip::io::detections_json(dets);
    for (auto& o : res)
        o.erase("bbox");
    const auto parsed = snip::io::parse_detections(json::parse(res.dump()), "coco128 results", gt);
    REQUIRE(parsed.size() == dets.size());
    for (std::size_t i = 0; i < dets.size(); ++i) {
        REQUIRE(parsed[i].segmentation == dets[i].segmentation);
        REQUIRE(parsed[i].area == double(mask::area(dets[i].segmentation)));
    }
    const coco_eval_result r2 = eval_segm(gt, parsed);
    CHECK(std::fabs(r2.stats[0] - 1) <= tol);
    CHECK(std::fabs(r2.stats[8] - 1) <= tol);
}
