// Tests for io/coco.hpp: round trips, one clear error per kind of bad input, real data.
#include <snip/io/coco.hpp>

#include "test_util.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// Two images (1: 640 x 480, 2: 100 x 50), two categories (1, 3).
const std::string k_images =
    R"([{"id": 1, "width": 640, "height": 480, "file_name": "a.jpg"},
        {"id": 2, "width": 100, "height": 50, "file_name": "b.jpg"}])";
const std::string k_categories = R"([{"id": 1, "name": "person"}, {"id": 3, "name": "car"}])";

/// A COCO document with the given annotations (and images / categories).
std::string doc(const std::string& anns, const std::string& images = k_images,
                const std::string& cats = k_categories) {
    std::string s = R"({"images": )" + images + R"(, "annotations": )" + anns;
    if (!cats.empty()) s += R"(, "categories": )" + cats;
    return s + "}";
}

/// A document with one annotation on image 1 with the given bbox text (and extra members).
std::string ann(const std::string& bbox, const std::string& extra = "") {
    return doc(R"([{"id": 7, "image_id": 1, "category_id": 1, "bbox": )" + bbox + extra + "}]");
}

/// The message of the snip::error `f` throws, or "" (and a failed check) when none.
using snip_test::error_of;

void check_contains(const std::string& msg, const std::vector<std::string>& parts) {
    for (const auto& part : parts)
        CHECK_MESSAGE(msg.find(part) != std::string::npos, "expected \"" << part << "\" in: " << msg);
}

/// A unique path in the temp folder (removed by the caller).
fs::path temp_path(const std::string& name) {
    static int counter = 0;
    auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    return fs::temp_directory_path() /
           ("snip_test_io_coco_" + std::to_string(stamp) + "_" + std::to_string(counter++) + "_" + name);
}

void write_text(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
}

void check_same(const snip::dataset& a, const snip::dataset& b) {
    REQUIRE(a.images.size() == b.images.size());
    for (std::size_t i = 0; i < a.images.size(); ++i) {
        CAPTURE(i);
        const auto& x = a.images[i];
        const auto& y = b.images[i];
        CHECK(x.id == y.id);
        CHECK(x.file_name == y.file_name);
        CHECK(x.width == y.width);
        CHECK(x.height == y.height);
        CHECK(x.boxes == y.boxes);
        CHECK(x.ann_ids == y.ann_ids);
        CHECK(x.categories == y.categories);
        CHECK(x.crowd == y.crowd);
        CHECK(x.segments == y.segments);
        for (std::size_t k = 0; k < x.boxes.size() && k < y.boxes.size(); ++k) CHECK(x.area(k) == y.area(k));
    }
    REQUIRE(a.categories.size() == b.categories.size());
    for (std::size_t i = 0; i < a.categories.size(); ++i) {
        CHECK(a.categories[i].id == b.categories[i].id);
        CHECK(a.categories[i].name == b.categories[i].name);
    }
}

snip::dataset small_dataset() {
    snip::dataset ds;
    ds.source = "hand-made";
    ds.categories = {{1, "person"}, {3, "car"}, {90, "toothbrush"}};
    snip::image_record a;
    a.id = 42;
    a.file_name = "000042.jpg";
    a.width = 640;
    a.height = 480;
    a.boxes = {{10, 20, 110.5, 70.25}, {0, 0, 640, 480}, {5, 5, 5, 9}};
    a.ann_ids = {100, 7, 123456789012LL};
    a.categories = {1, 3, 90};
    a.crowd = {0, 1, 0};
    snip::image_record b; // no boxes
    b.id = 3;
    b.file_name = "dir/3.png";
    b.width = 17;
    b.height = 1;
    snip::image_record c;
    c.id = 9000000000LL;
    c.width = 100;
    c.height = 200;
    c.boxes = {{1.5, 2.5, 99.5, 199.75}};
    c.ann_ids = {1};
    c.categories = {3};
    c.crowd = {0};
    ds.images = {a, b, c};
    return ds;
}

} // namespace

TEST_CASE("to_coco_json / parse_coco round trip") {
    const snip::dataset ds = small_dataset();
    const json j = snip::io::to_coco_json(ds);
    CHECK(j["annotations"][0]["bbox"] == json({10.0, 20.0, 100.5, 50.25}));
    CHECK(j["annotations"][0]["area"].get<double>() == doctest::Approx(100.5 * 50.25));
    CHECK(j["annotations"][1]["iscrowd"] == 1);
    snip::io::load_report rep;
    const snip::dataset back = snip::io::parse_coco(j, "mem.json", &rep);
    check_same(ds, back);
    CHECK(back.source == "mem.json");
    CHECK(rep.images == 3);
    CHECK(rep.boxes == 4);
    CHECK(rep.crowd == 1);
    CHECK(rep.degenerate == 1); // {5, 5, 5, 9}: zero width
    CHECK(rep.clipped == 0);
    REQUIRE(rep.warnings.size() == 1);
    check_contains(rep.warnings[0], {"mem.json", "annotations[2].bbox", "[5.0,5.0,0.0,4.0]", "degenerate"});

    // Text round trip too (dump uses round-trip precision).
    check_same(ds, snip::io::parse_coco(json::parse(j.dump()), "mem.json"));

    // Without categories the output has none and parse does not check category ids.
    snip::dataset nocat = ds;
    nocat.categories.clear();
    const json j2 = snip::io::to_coco_json(nocat);
    CHECK_FALSE(j2.contains("categories"));
    check_same(nocat, snip::io::parse_coco(j2, "mem.json"));
}

TEST_CASE("to_coco_json rejects inconsistent records") {
    snip::dataset ds = small_dataset();
    ds.images[0].crowd.pop_back();
    check_contains(error_of([&] { (void)snip::io::to_coco_json(ds); }),
                   {"hand-made", "images[0]", "id 42", "3 boxes", "2 crowd"});
    ds = small_dataset();
    ds.images[2].boxes[0].x2 = std::numeric_limits<double>::quiet_NaN();
    check_contains(error_of([&] { (void)snip::io::to_coco_json(ds); }), {"images[2]", "box 0"});
    ds = small_dataset();
    ds.images[0].areas = {1, 2}; // 3 boxes
    check_contains(error_of([&] { (void)snip::io::to_coco_json(ds); }),
                   {"hand-made", "images[0]", "3 boxes", "2 areas", "parallel"});
    ds.images[0].areas = {1, std::numeric_limits<double>::infinity(), 3};
    check_contains(error_of([&] { (void)snip::io::to_coco_json(ds); }), {"images[0]", "box 1", "area inf", "finite"});
}

TEST_CASE("parse_coco: annotations grouped onto images in file order, fields filled") {
    const std::string anns = R"([
        {"id": 5, "image_id": 2, "category_id": 3, "bbox": [1, 2, 3, 4], "iscrowd": 1},
        {"id": 6, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40], "area": 1200},
        {"id": 8, "image_id": 2, "category_id": 1, "bbox": [0.5, 0.25, 99.5, 49.75], "iscrowd": false}
    ])";
    snip::io::load_report rep;
    const auto ds = snip::io::parse_coco(json::parse(doc(anns)), "instances.json", &rep);
    REQUIRE(ds.images.size() == 2);
    CHECK(ds.images[0].id == 1);
    CHECK(ds.images[0].file_name == "a.jpg");
    REQUIRE(ds.images[0].boxes.size() == 1);
    CHECK(ds.images[0].boxes[0] == snip::box<double>{10, 20, 40, 60});
    CHECK(ds.images[0].ann_ids == std::vector<std::int64_t>{6});
    REQUIRE(ds.images[1].boxes.size() == 2);
    CHECK(ds.images[1].boxes[0] == snip::box<double>{1, 2, 4, 6});
    CHECK(ds.images[1].boxes[1] == snip::box<double>{0.5, 0.25, 100, 50});
    CHECK(ds.images[1].ann_ids == std::vector<std::int64_t>{5, 8});
    CHECK(ds.images[1].categories == std::vector<int>{3, 1});
    CHECK(ds.images[1].crowd == std::vector<std::uint8_t>{1, 0});
    // One annotation has "area": every image gets areas, -1 where the annotation has none.
    CHECK(ds.images[0].areas == std::vector<double>{1200});
    CHECK(ds.images[1].areas == std::vector<double>{-1, -1});
    CHECK(ds.images[1].area(0) == 12); // w * h
    REQUIRE(ds.categories.size() == 2);
    CHECK(ds.categories[1].id == 3);
    CHECK(ds.categories[1].name == "car");
    CHECK(rep.images == 2);
    CHECK(rep.boxes == 3);
    CHECK(rep.crowd == 1);
    CHECK(rep.warnings.empty());

    // No "categories": category ids are not checked. Empty annotations are fine.
    const auto nocat = snip::io::parse_coco(
        json::parse(doc(R"([{"id": 1, "image_id": 1, "category_id": 77, "bbox": [0, 0, 1, 1]}])", k_images, "")),
        "x.json");
    CHECK(nocat.categories.empty());
    CHECK(nocat.images[0].categories == std::vector<int>{77});
    CHECK(snip::io::parse_coco(json::parse(doc("[]")), "x.json").num_boxes() == 0);
    // Integral floats are accepted for sizes and ids.
    CHECK(snip::io::parse_coco(json::parse(doc("[]", R"([{"id": 4.0, "width": 640.0, "height": 480}])")),
                               "x.json")
              .images[0]
              .width == 640);
}

TEST_CASE("parse_coco: \"area\" is kept per box; without any, areas are empty") {
    const std::string anns = R"([
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40], "area": 900.5},
        {"id": 2, "image_id": 2, "category_id": 3, "bbox": [0, 0, 10, 10], "area": 0, "iscrowd": 1},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [630, 470, 10.5, 10], "area": 77},
        {"id": 4, "image_id": 2, "category_id": 1, "bbox": [1, 1, 4, 5]}
    ])";
    snip::io::load_report rep;
    const auto ds = snip::io::parse_coco(json::parse(doc(anns)), "instances.json", &rep);
    REQUIRE(ds.images[0].areas.size() == 2);
    CHECK(ds.images[0].areas == std::vector<double>{900.5, 77}); // 900.5 != w * h = 1200
    CHECK(ds.images[0].area(0) == 900.5);
    CHECK(ds.images[0].boxes[1] == snip::box<double>{630, 470, 640, 480}); // clipped ...
    CHECK(ds.images[0].area(1) == 77);                                     // ... area as in the file
    CHECK(rep.clipped == 1);
    CHECK(ds.images[1].areas == std::vector<double>{0, -1});
    CHECK(ds.images[1].area(0) == 0); // 0 is an area (crowd: kept as it is)
    CHECK(ds.images[1].area(1) == 20); // none: w * h

    // Written back as given (w * h where there is none), and read back the same.
    const json j = snip::io::to_coco_json(ds);
    CHECK(j["annotations"][0]["area"].get<double>() == 900.5);
    CHECK(j["annotations"][1]["area"].get<double>() == 77);
    CHECK(j["annotations"][2]["area"].get<double>() == 0);
    CHECK(j["annotations"][3]["area"].get<double>() == 20);
    const auto back = snip::io::parse_coco(json::parse(j.dump()), "back.json");
    CHECK(back.images[0].areas == std::vector<double>{900.5, 77});
    CHECK(back.images[1].areas == std::vector<double>{0, 20});

    // No "area" anywhere: areas stay empty and area(k) is w * h.
    const auto none = snip::io::parse_coco(json::parse(doc(R"([
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40]},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [0.5, 0, 3, 2.5]}])")),
                                           "x.json");
    CHECK(none.images[0].areas.empty());
    CHECK(none.images[1].areas.empty());
    CHECK(none.images[0].area(0) == 1200);
    CHECK(none.images[1].area(0) == 7.5);
    CHECK(snip::io::to_coco_json(none)["annotations"][0]["area"].get<double>() == 1200);

    // Integer and float areas both read; an integral area keeps its exact value.
    const auto big = snip::io::parse_coco(json::parse(ann("[0, 0, 1, 1]", R"(, "area": 9007199254740992)")), "x.json");
    CHECK(big.images[0].areas == std::vector<double>{9007199254740992.0});
}

TEST_CASE("parse_coco: border tolerance clips and reports, degenerate boxes are kept") {
    const std::string anns = R"([
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [-0.5, 0, 10, 10]},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [630, 470, 10.75, 11]},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [10, 10, 0, 5]},
        {"id": 4, "image_id": 2, "category_id": 1, "bbox": [0, 0, 100, 50]}
    ])";
    snip::io::load_report rep;
    const auto ds = snip::io::parse_coco(json::parse(doc(anns)), "instances.json", &rep);
    CHECK(ds.images[0].boxes[0] == snip::box<double>{0, 0, 9.5, 10});
    CHECK(ds.images[0].boxes[1] == snip::box<double>{630, 470, 640, 480});
    CHECK(ds.images[1].boxes[0] == snip::box<double>{10, 10, 10, 15});
    CHECK(ds.images[1].boxes[1] == snip::box<double>{0, 0, 100, 50}); // touching the border is inside
    CHECK(rep.clipped == 2);
    CHECK(rep.degenerate == 1);
    REQUIRE(rep.warnings.size() == 3);
    check_contains(rep.warnings[0], {"instances.json", "annotations[0].bbox", "[-0.5,0,10,10]", "clipped"});
    check_contains(rep.warnings[1], {"annotations[1].bbox", "image 1 (640 x 480)", "by 1 px", "clipped"});
    check_contains(rep.warnings[2], {"annotations[2].bbox", "[10,10,0,5]", "degenerate"});

    // With tolerance 0 the same crossings are errors.
    check_contains(error_of([&] { snip::io::parse_coco(json::parse(doc(anns)), "instances.json", nullptr, 0.0); }),
                   {"instances.json", "annotations[0].bbox[0] (x) is -0.5", "must be >= 0"});
    check_contains(error_of([&] { snip::io::parse_coco(json::parse(doc("[]")), "i.json", nullptr, -1.0); }),
                   {"i.json", "tolerance", "-1"});

    // Warnings are capped; the rest are counted in one last line.
    std::string many = "[";
    for (int i = 0; i < 50; ++i) {
        if (i > 0) many += ",";
        many += R"({"id": )";
        many += std::to_string(i);
        many += R"(, "image_id": 1, "category_id": 1, "bbox": [1, 1, 0, 0]})";
    }
    many += "]";
    snip::io::load_report rep2;
    snip::io::parse_coco(json::parse(doc(many)), "many.json", &rep2);
    CHECK(rep2.degenerate == 50);
    CHECK(rep2.warnings.size() <= 20);
    CHECK(rep2.warnings.size() >= 10);
    check_contains(rep2.warnings.back(), {"more warning"});
}

TEST_CASE("parse_coco: each bad input names the file, the field and the value") {
    struct bad_case {
        std::string what;
        std::string text;
        std::vector<std::string> expect;
    };
    const std::string one_image = R"([{"id": 1, "width": 640, "height": 480}])";
    const std::vector<bad_case> cases = {
        {"top level not an object", "[1, 2]", {"top level is array", "must be an object"}},
        {"top level a string", R"("hello")", {"top level is string"}},
        {"missing images", R"({"annotations": []})", {"missing \"images\""}},
        {"missing annotations", R"({"images": )" + one_image + "}", {"missing \"annotations\""}},
        {"images not an array", R"({"images": {"a": 1}, "annotations": []})",
         {"\"images\" is {\"a\":1}", "must be an array"}},
        {"annotations not an array", R"({"images": )" + one_image + R"(, "annotations": 3})",
         {"\"annotations\" is 3"}},
        {"no images", doc("[]", "[]"), {"no images"}},
        {"image not an object", doc("[]", "[7]"), {"images[0] is 7", "must be an object"}},
        {"image id missing", doc("[]", R"([{"width": 640, "height": 480}])"), {"images[0].id is missing"}},
        {"image id a string", doc("[]", R"([{"id": "x", "width": 640, "height": 480}])"),
         {"images[0].id is \"x\"", "integer"}},
        {"width missing", doc("[]", R"([{"id": 1, "height": 480}])"), {"images[0].width is missing"}},
        {"width a string", doc("[]", R"([{"id": 1, "width": "640", "height": 480}])"),
         {"images[0].width is \"640\"", "integer > 0"}},
        {"width not integral", doc("[]", R"([{"id": 1, "width": 640.5, "height": 480}])"),
         {"images[0].width is 640.5"}},
        {"height zero", doc("[]", R"([{"id": 1, "width": 640, "height": 0}])"), {"images[0].height is 0", "> 0"}},
        {"height negative", doc("[]", R"([{"id": 1, "width": 640, "height": -5}])"), {"images[0].height is -5"}},
        {"file_name not a string", doc("[]", R"([{"id": 1, "width": 640, "height": 480, "file_name": 3}])"),
         {"images[0].file_name is 3", "string"}},
        {"duplicate image id",
         doc("[]", R"([{"id": 1, "width": 640, "height": 480}, {"id": 1, "width": 10, "height": 10}])"),
         {"images[1].id is 1", "duplicate of images[0].id"}},
        {"annotation not an object", doc("[5]"), {"annotations[0] is 5", "object"}},
        {"annotation id missing", doc(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}])"),
         {"annotations[0].id is missing"}},
        {"annotation id a float", ann("[0, 0, 1, 1]", R"(, "id": 1.5)"), {"annotations[0].id is 1.5"}},
        {"duplicate annotation id",
         doc(R"([{"id": 7, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]},
                 {"id": 7, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1]}])"),
         {"annotations[1].id is 7", "duplicate of annotations[0].id"}},
        {"image_id missing", doc(R"([{"id": 7, "category_id": 1, "bbox": [0, 0, 1, 1]}])"),
         {"annotations[0].image_id is missing"}},
        {"unknown image_id", doc(R"([{"id": 7, "image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1]}])"),
         {"annotations[0].image_id is 99", "no image has this id"}},
        {"image_id a string", doc(R"([{"id": 7, "image_id": "1", "category_id": 1, "bbox": [0, 0, 1, 1]}])"),
         {"annotations[0].image_id is \"1\""}},
        {"category_id missing", doc(R"([{"id": 7, "image_id": 1, "bbox": [0, 0, 1, 1]}])"),
         {"annotations[0].category_id is missing"}},
        {"category_id unknown", doc(R"([{"id": 7, "image_id": 1, "category_id": 2, "bbox": [0, 0, 1, 1]}])"),
         {"annotations[0].category_id is 2", "not an id in \"categories\""}},
        {"category_id a string", doc(R"([{"id": 7, "image_id": 1, "category_id": "car", "bbox": [0, 0, 1, 1]}])"),
         {"annotations[0].category_id is \"car\""}},
        {"iscrowd 2", ann("[0, 0, 1, 1]", R"(, "iscrowd": 2)"), {"annotations[0].iscrowd is 2", "0 or 1"}},
        {"area negative", ann("[0, 0, 1, 1]", R"(, "area": -3.5)"),
         {"annotations[0].area is -3.5", "must be a finite number >= 0"}},
        {"area a string", ann("[0, 0, 1, 1]", R"(, "area": "12")"), {"annotations[0].area is \"12\"", "finite number"}},
        {"area null", ann("[0, 0, 1, 1]", R"(, "area": null)"), {"annotations[0].area is null", "finite number"}},
        {"area an array", ann("[0, 0, 1, 1]", R"(, "area": [1])"), {"annotations[0].area is [1]"}},
        {"area of the second annotation",
         doc(R"([{"id": 7, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "area": 1},
                 {"id": 8, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1], "area": -1}])"),
         {"annotations[1].area is -1", ">= 0"}},
        {"bbox missing", doc(R"([{"id": 7, "image_id": 1, "category_id": 1}])"), {"annotations[0].bbox is missing"}},
        {"bbox a string", ann(R"("1,2,3,4")"), {"annotations[0].bbox is \"1,2,3,4\"", "4 numbers"}},
        {"bbox of 3", ann("[1, 2, 3]"), {"annotations[0].bbox is [1,2,3]", "4 numbers"}},
        {"bbox of 5", ann("[1, 2, 3, 4, 5]"), {"annotations[0].bbox is [1,2,3,4,5]"}},
        {"bbox element a string", ann(R"([1, "2", 3, 4])"),
         {"annotations[0].bbox[1] (y) is \"2\"", "finite number"}},
        {"bbox element null", ann("[1, 2, 3, null]"), {"annotations[0].bbox[3] (h) is null"}},
        {"negative w", ann("[1, 2, -3, 4]"), {"annotations[0].bbox[2] (w) is -3, must be >= 0"}},
        {"negative h", ann("[1, 2, 3, -0.5]"), {"annotations[0].bbox[3] (h) is -0.5, must be >= 0"}},
        {"x negative beyond tolerance", ann("[-5, 2, 3, 4]"),
         {"annotations[0].bbox[0] (x) is -5", "must be >= -1", "image 1"}},
        {"y negative beyond tolerance", ann("[5, -1.5, 3, 4]"), {"annotations[0].bbox[1] (y) is -1.5"}},
        {"beyond the right border", ann("[600, 10, 50, 20]"),
         {"annotations[0].bbox is [600,10,50,20]", "right border of image 1 (640 x 480)", "by 10 px"}},
        {"beyond the bottom border", ann("[0, 470, 5, 12.5]"),
         {"annotations[0].bbox is [0,470,5,12.5]", "bottom border of image 1 (640 x 480)", "by 2.5 px"}},
        {"categories not an array", doc("[]", k_images, "{}"), {"\"categories\" is {}", "array"}},
        {"category id missing", doc("[]", k_images, R"([{"name": "x"}])"), {"categories[0].id is missing"}},
        {"duplicate category id", doc("[]", k_images, R"([{"id": 1, "name": "a"}, {"id": 1, "name": "b"}])"),
         {"categories[1].id is 1", "duplicate of categories[0].id"}},
        {"category name not a string", doc("[]", k_images, R"([{"id": 1, "name": 5}])"),
         {"categories[0].name is 5", "string"}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        const json j = json::parse(c.text);
        const std::string msg = error_of([&] { snip::io::parse_coco(j, "instances.json"); });
        check_contains(msg, c.expect);
        check_contains(msg, {"instances.json: "});
    }

    // Values JSON text cannot hold (built in memory): NaN and inf in a bbox.
    json j = json::parse((ann("[1, 2, 3, 4]")));
    j["annotations"][0]["bbox"][2] = std::nan("");
    check_contains(error_of([&] { snip::io::parse_coco(j, "instances.json"); }),
                   {"instances.json", "annotations[0].bbox[2] (w) is nan", "finite"});
    j["annotations"][0]["bbox"][2] = std::numeric_limits<double>::infinity();
    check_contains(error_of([&] { snip::io::parse_coco(j, "instances.json"); }),
                   {"annotations[0].bbox[2] (w) is inf"});
    j["annotations"][0]["bbox"][2] = 3;
    j["annotations"][0]["area"] = std::nan("");
    check_contains(error_of([&] { snip::io::parse_coco(j, "instances.json"); }),
                   {"instances.json: annotations[0].area is nan", "finite"});
    j["annotations"][0]["area"] = -std::numeric_limits<double>::infinity();
    check_contains(error_of([&] { snip::io::parse_coco(j, "instances.json"); }),
                   {"instances.json: annotations[0].area is -inf", "finite"});
}

TEST_CASE("read_coco: file errors name the path") {
    const fs::path missing = temp_path("missing.json");
    check_contains(error_of([&] { snip::io::read_coco(missing.string()); }), {missing.string(), "not found"});

    const fs::path dir = temp_path("dir");
    fs::create_directory(dir);
    check_contains(error_of([&] { snip::io::read_coco(dir.string()); }), {dir.string(), "directory"});
    fs::remove(dir);

    const fs::path broken = temp_path("broken.json");
    write_text(broken, R"({"images": [{"id": 1,, "width": 3}]})");
    check_contains(error_of([&] { snip::io::read_coco(broken.string()); }),
                   {broken.string(), "malformed JSON at byte 22"});
    write_text(broken, "");
    check_contains(error_of([&] { snip::io::read_coco(broken.string()); }), {broken.string(), "malformed JSON"});
    write_text(broken, R"({"images": [{"id": 1, "width": 1e999}]})");
    check_contains(error_of([&] { snip::io::read_coco(broken.string()); }),
                   {broken.string(), "malformed JSON: images[0].width is 1e999 (byte 32, line 1, column 32)",
                    "beyond the range of a double"});
    // the same number elsewhere in the text (inside a string, as part of a longer number)
    // is not taken for it; lines are counted
    write_text(broken, "{\"info\": \"1e999\", \"v\": [4, 41e999],\n \"images\": [\n  {\"id\": 1,\n   \"height\": 1e999}]}");
    check_contains(error_of([&] { snip::io::read_coco(broken.string()); }),
                   {broken.string(), "malformed JSON", "1e999"});  // two overflows: the first named
    write_text(broken, "{\"info\": \"1e999\", \"v\": 41e9,\n \"images\": [\n  {\"id\": 1,\n   \"height\": 1e999}]}");
    check_contains(error_of([&] { snip::io::read_coco(broken.string()); }),
                   {"images[0].height is 1e999 (byte 68, line 4, column 14)"});
    // Python's json.dump writes NaN and Infinity: said so, with line and column
    write_text(broken, "{\"images\": [\n  {\"id\": 1, \"width\": -Infinity}]}");
    check_contains(error_of([&] { snip::io::read_coco(broken.string()); }),
                   {broken.string(), "line 2, column", "holds -Infinity, a non-finite number"});
    // Content errors from a file name the path too.
    write_text(broken, (ann("[1, 2, -3, 4]")));
    check_contains(error_of([&] { snip::io::read_coco(broken.string()); }),
                   {broken.string() + ": annotations[0].bbox[2] (w) is -3"});
    fs::remove(broken);
}

TEST_CASE("deeply nested JSON: the message shows a prefix of the value, without a stack overflow") {
    // Found with fuzz_coco (tests/fuzz/regressions/coco/deep_nesting_stack_overflow): the
    // message of a bad value dumped all of it first, recursing once per level, so a few MB
    // of '[' crashed every reader with a stack overflow.
    constexpr std::size_t depth = 1000000;
    const std::string text = R"({"images": )" + std::string(depth, '[') + std::string(depth, ']') +
                             R"(, "annotations": []})";
    const json j = snip::io::parse_json_text(text, "deep.json");
    const std::string msg = error_of([&] { snip::io::parse_coco(j, "deep.json"); });
    check_contains(msg, {"deep.json: images[0] is [[[[[[", "...", "must be an object"});
    CHECK(msg.size() < 200);
    // Short values are still shown whole, as compact JSON.
    const json shallow = json::parse(R"({"images": [[{"a": [1, "x"]}]], "annotations": []})");
    check_contains(error_of([&] { snip::io::parse_coco(shallow, "s.json"); }),
                   {R"(s.json: images[0] is [{"a":[1,"x"]}], must be an object)"});
}

TEST_CASE("write_coco / read_coco round trip through a temp file") {
    const snip::dataset ds = small_dataset();
    const fs::path p = temp_path("out.json");
    snip::io::write_coco(ds, p.string());
    CHECK(fs::exists(p));
    CHECK_FALSE(fs::exists(p.string() + ".tmp"));
    snip::io::load_report rep;
    const snip::dataset back = snip::io::read_coco(p.string(), &rep);
    check_same(ds, back);
    CHECK(back.source == p.string());
    CHECK(rep.boxes == 4);
    // Overwriting an existing file works too.
    snip::dataset smaller = ds;
    smaller.images.pop_back();
    snip::io::write_coco(smaller, p.string());
    check_same(smaller, snip::io::read_coco(p.string()));
    fs::remove(p);

    const fs::path nowhere = temp_path("no_such_dir") / "out.json";
    check_contains(error_of([&] { snip::io::write_coco(ds, nowhere.string()); }), {nowhere.string(), "cannot open"});
}

TEST_CASE("proposals: mapped onto images in order") {
    const auto ds = snip::io::parse_coco(json::parse(doc("[]", k_images + "")), "gt.json");
    const std::string text = R"([
        {"image_id": 2, "bbox": [1, 2, 3, 4], "score": 0.5, "category_id": 1},
        {"image_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
        {"image_id": 2, "bbox": [0, 0, 100.5, 50]}
    ])";
    const auto props = snip::io::parse_proposals(json::parse(text), "props.json", ds);
    REQUIRE(props.size() == 2);
    REQUIRE(props[0].boxes.size() == 1);
    CHECK(props[0].boxes[0] == snip::box<double>{10, 10, 30, 30});
    CHECK(props[0].scores[0] == doctest::Approx(0.9f));
    REQUIRE(props[1].boxes.size() == 2);
    CHECK(props[1].boxes[0] == snip::box<double>{1, 2, 4, 6});
    CHECK(props[1].boxes[1] == snip::box<double>{0, 0, 100, 50}); // clipped within tolerance
    CHECK(props[1].scores == std::vector<float>{0.5f, 1.0f});

    // Wrapped form, and through a file.
    const json wrapped = {{"proposals", json::parse(text)}};
    const fs::path p = temp_path("props.json");
    write_text(p, wrapped.dump());
    const auto props2 = snip::io::read_proposals(p.string(), ds);
    REQUIRE(props2.size() == 2);
    CHECK(props2[1].boxes == props[1].boxes);
    CHECK(props2[1].scores == props[1].scores);
    fs::remove(p);

    // Empty list: one empty entry per image.
    const auto none = snip::io::parse_proposals(json::array(), "p.json", ds);
    REQUIRE(none.size() == 2);
    CHECK(none[0].boxes.empty());
}

TEST_CASE("proposals: bad input gives clear errors") {
    const auto ds = snip::io::parse_coco(json::parse(doc("[]")), "gt.json");
    struct bad_case {
        std::string what;
        std::string text;
        std::vector<std::string> expect;
    };
    const std::vector<bad_case> cases = {
        {"top level a number", "3", {"top level is number"}},
        {"object without proposals", R"({"boxes": []})", {"without a \"proposals\" array"}},
        {"proposals not an array", R"({"proposals": 1})", {"\"proposals\" is 1"}},
        {"entry not an object", "[1]", {"[0] is 1", "object"}},
        {"unknown image_id", R"([{"image_id": 5, "bbox": [0, 0, 1, 1]}])", {"[0].image_id is 5", "gt.json"}},
        {"missing image_id", R"([{"bbox": [0, 0, 1, 1]}])", {"[0].image_id is missing"}},
        {"bbox of 2", R"([{"image_id": 1, "bbox": [0, 0]}])", {"[0].bbox is [0,0]"}},
        {"bbox string", R"([{"image_id": 1, "bbox": [0, "a", 1, 1]}])", {"[0].bbox[1] (y) is \"a\""}},
        {"negative h", R"([{"image_id": 1, "bbox": [0, 0, 1, -1]}])", {"[0].bbox[3] (h) is -1"}},
        {"beyond border", R"([{"image_id": 2, "bbox": [90, 0, 20, 10]}])",
         {"[0].bbox is [90,0,20,10]", "right border of image 2 (100 x 50)"}},
        {"score a string", R"([{"image_id": 1, "bbox": [0, 0, 1, 1], "score": "high"}])",
         {"[0].score is \"high\"", "finite number"}},
        {"wrapped, second entry", R"({"proposals": [{"image_id": 1, "bbox": [0, 0, 1, 1]}, {"image_id": 1}]})",
         {"proposals[1].bbox is missing"}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        const json j = json::parse(c.text);
        const std::string msg = error_of([&] { snip::io::parse_proposals(j, "props.json", ds); });
        check_contains(msg, c.expect);
        check_contains(msg, {"props.json: "});
    }
    json j = json::parse(R"([{"image_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}])");
    j[0]["score"] = std::nan("");
    check_contains(error_of([&] { snip::io::parse_proposals(j, "props.json", ds); }),
                   {"props.json", "[0].score is nan", "finite"});
    const fs::path missing = temp_path("nope.json");
    check_contains(error_of([&] { snip::io::read_proposals(missing.string(), ds); }),
                   {missing.string(), "not found"});
}

TEST_CASE("real data: COCO val2017 boxes, coco128, VOC2007 train") {
    struct expected {
        std::string rel;
        std::size_t images, boxes, crowd, degenerate;
        std::size_t polygons, rles; ///< annotations with a "segmentation" of each form
    };
    const expected sets[] = {
        {"coco_val2017_boxes/instances_val2017_boxes.json", 5000, 36781, 0, 1, 0, 0},
        {"coco128/instances_coco128.json", 128, 939, 10, 0, 929, 10},
        {"voc2007/pascal_train2007.json", 2501, 7844, 0, 0, 0, 0},
    };
    for (const auto& e : sets) {
        CAPTURE(e.rel);
        const std::string path = snip_test::data_file(e.rel);
        if (path.empty()) continue;
        snip::io::load_report rep;
        const auto t0 = std::chrono::steady_clock::now();
        const snip::dataset ds = snip::io::read_coco(path, &rep);
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        MESSAGE(e.rel << ": " << ds.images.size() << " images, " << ds.num_boxes() << " boxes in " << ms
                      << " ms");
        CHECK(ds.images.size() == e.images);
        CHECK(ds.num_boxes() == e.boxes);
        CHECK(rep.images == e.images);
        CHECK(rep.boxes == e.boxes);
        CHECK(rep.crowd == e.crowd);
        CHECK(rep.degenerate == e.degenerate);
        CHECK(rep.clipped == 0);
        CHECK(rep.warnings.size() == e.degenerate);
        CHECK_FALSE(ds.categories.empty());
        for (const auto& im : ds.images) {
            REQUIRE(im.ann_ids.size() == im.boxes.size());
            for (const auto& b : im.boxes) REQUIRE((b.x1 >= 0 && b.y1 >= 0 && b.x2 <= im.width && b.y2 <= im.height));
        }
        // The written form reads back identically.
        check_same(ds, snip::io::parse_coco(snip::io::to_coco_json(ds), path));
        // Every file has "area" on every annotation: all are kept.
        for (const auto& im : ds.images) REQUIRE(im.areas.size() == im.boxes.size());
        // Segmentations: parallel to the boxes when the file has any, else none at all.
        std::size_t polygons = 0, rles = 0;
        for (const auto& im : ds.images) {
            if (e.polygons + e.rles == 0)
                REQUIRE(im.segments.empty());
            else
                REQUIRE(im.segments.size() == im.boxes.size());
            for (const auto& s : im.segments)
                polygons += s.is_polygons(), rles += s.is_rle();
        }
        CHECK(polygons == e.polygons);
        CHECK(rles == e.rles);
    }

    // coco128's areas are COCO's mask areas, not w * h: check a few known values and how
    // many boxes change area class (small < 32^2 <= medium < 96^2 <= large) through them.
    const std::string path = snip_test::data_file("coco128/instances_coco128.json");
    if (path.empty()) return;
    const snip::dataset ds = snip::io::read_coco(path);
    std::size_t differ = 0, class_changes = 0, found = 0;
    auto size_class = [](double a) { return a < 32.0 * 32.0 ? 0 : a < 96.0 * 96.0 ? 1 : 2; };
    for (const auto& im : ds.images) {
        REQUIRE(im.areas.size() == im.boxes.size());
        for (std::size_t k = 0; k < im.boxes.size(); ++k) {
            const double wh = im.boxes[k].width() * im.boxes[k].height();
            CHECK(im.areas[k] >= 0);
            differ += im.areas[k] != wh;
            class_changes += size_class(im.areas[k]) != size_class(wh);
            if (im.ann_ids[k] == 1774) { // the first annotation: bbox [61.87, 276.25, 296.42, 103.18]
                CHECK(im.id == 74);
                CHECK(im.area(k) == 18234.62355);
                ++found;
            }
            if (im.ann_ids[k] == 900100000257) { // a crowd region: its RLE area
                CHECK(im.crowd[k] == 1);
                CHECK(im.area(k) == 11750);
                ++found;
            }
        }
    }
    CHECK(found == 2);
    CHECK(differ == 939);
    CHECK(class_changes == 168);
}
