// Tests of include/snip/io/chips_json.hpp: round trips and bad chips files.
#include "test_util.hpp"

#include <snip/io/chips_json.hpp>

#include <array>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace {

snip::dataset small_dataset() {
    snip::dataset ds;
    ds.source = "mem";
    snip::image_record a;
    a.id = 7;
    a.file_name = "a.jpg";
    a.width = 640;
    a.height = 480;
    a.boxes = {{10, 10, 40, 40}, {300, 200, 460, 400}, {100, 100, 110, 112}};
    a.ann_ids = {70, 71, 72};
    a.categories = {1, 2, 1};
    a.crowd = {0, 0, 0};
    ds.images.push_back(a);
    snip::image_record b = a;
    b.id = 8;
    b.file_name = "b.jpg";
    b.width = 300;
    b.height = 500;
    b.boxes = {{5, 5, 295, 480}};
    b.ann_ids = {80};
    b.categories = {3};
    b.crowd = {0};
    ds.images.push_back(b);
    return ds;
}

snip::io::chips_file planned(const snip::plan_config& cfg) {
    const auto ds = small_dataset();
    std::vector<snip::image_proposals> props(ds.images.size());
    for (int i = 0; i < 40; ++i) props[0].boxes.push_back({500.0 + i % 5, 400.0 + i % 7, 520.0 + i % 5, 420.0 + i % 7});
    snip::dataset_plan_options o;
    o.seed = 3;
    const auto plans = snip::plan_dataset(cfg, ds, &props, o);
    return snip::io::make_chips_file(ds, plans, cfg, o.seed, o.epoch, "ann.json", "props.json");
}

} // namespace

TEST_CASE("chips JSON round-trips through text and files") {
    for (auto cfg : {snip::plan_config::sniper_coco(), snip::plan_config::defaults()}) {
        const auto f = planned(cfg);
        REQUIRE(f.images.size() == 2);
        const auto j = snip::io::to_json(f);
        const auto g = snip::io::chips_from_json(nlohmann::json::parse(j.dump()), "mem");
        CHECK(snip::io::to_json(g) == j);
        CHECK(g.config.convention == cfg.convention);
        CHECK(g.config.layout == cfg.layout);
        CHECK(g.images[0].scales.size() == 3);
        bool has_neg = false;
        for (const auto& c : g.images[0].chips) has_neg |= c.negative;
        CHECK(has_neg);
        const auto path = (std::filesystem::temp_directory_path() / "snip_test_chips.json").string();
        snip::io::write_chips(f, path, 1);
        CHECK(snip::io::to_json(snip::io::read_chips(path)) == j);
        CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
        std::filesystem::remove(path);
    }
}

TEST_CASE("positive chips list the annotation ids they cover, scales their valid ids") {
    const auto f = planned(snip::plan_config::sniper_coco());
    const auto& im = f.images[0];
    std::size_t listed = 0, valid = 0;
    for (const auto& c : im.chips)
        if (!c.negative) listed += c.ann_ids.size();
    for (const auto& s : im.scales) valid += s.valid_ids.size();
    CHECK(listed == valid);
    for (const auto& c : im.chips) {
        CHECK(c.box.x1 == doctest::Approx(c.rect.x1 / im.scales[std::size_t(c.scale)].factor));
        for (auto id : c.ann_ids) CHECK((id >= 70 && id <= 72));
    }
}

TEST_CASE("bad chips files: the message names the file, the field and the value") {
    const auto good = snip::io::to_json(planned(snip::plan_config::defaults()));
    struct bad_case {
        std::function<void(nlohmann::json&)> edit;
        std::vector<std::string> expect;
    };
    const std::vector<bad_case> cases = {
        {[](auto& j) { j["format"] = "chips/0"; }, {"f.json", "format", "chips/0", "expected \"snip-chips/2\""}},
        {[](auto& j) { j.erase("images"); }, {"f.json", "images is missing"}},
        {[](auto& j) { j["images"][0]["width"] = -4; }, {"f.json", "images[0]", "-4"}},
        {[](auto& j) { j["images"][0]["chips"][0]["box"] = {1, 2, 3}; }, {"images[0].chips[0].box", "[1,2,3]"}},
        {[](auto& j) { j["images"][0]["chips"][0]["box"] = {5, 5, 1, 1}; }, {"images[0].chips[0].box", "x1 <= x2"}},
        {[](auto& j) { j["images"][0]["chips"][0]["scale"] = 9; }, {"images[0].chips[0].scale", "9"}},
        {[](auto& j) { j["images"][0]["chips"][0]["kind"] = "maybe"; }, {"images[0].chips[0].kind", "maybe"}},
        {[](auto& j) { j["images"][0]["chips"][0]["ann_ids"] = {1, "x"}; }, {"ann_ids[1]", "\"x\""}},
        {[](auto& j) { j["images"][0]["scales"].erase(0); }, {"images[0].scales", "one entry per config scale"}},
        {[](auto& j) { j["config"]["stride"] = 0; }, {"f.json", "stride must be in [1, chip size 512), got 0"}},
        {[](auto& j) { j["config"]["valid_ranges"][1] = {100, 150}; }, {"f.json", "gap"}},
        {[](auto& j) { j["config"]["scales"][0] = "fast"; }, {"f.json", "config.scales[0]", "fast"}},
        {[](auto& j) { j["config"]["convention"] = "pixels"; }, {"config.convention", "pixels"}},
        {[](auto& j) { j["config"]["preset"] = "nope"; }, {"unknown preset 'nope'"}},
    };
    for (const auto& c : cases) {
        nlohmann::json j = good;
        c.edit(j);
        std::string msg;
        try {
            snip::io::chips_from_json(j, "f.json");
        } catch (const snip::error& e) {
            msg = e.what();
        }
        INFO("message: ", msg);
        REQUIRE_FALSE(msg.empty());
        for (const auto& s : c.expect) CHECK(msg.find(s) != std::string::npos);
    }
    CHECK_THROWS_WITH_AS(snip::io::read_chips("/nonexistent/chips.json"), doctest::Contains("/nonexistent/chips.json"),
                         snip::error);
}

TEST_CASE("config files: presets with overrides") {
    const auto j = nlohmann::json::parse(R"J({"preset": "sniper_coco", "stride": 48, "scales": ["(1400,2000)", "(800,1280)", "(-1,512)"]})J");
    const auto c = snip::io::config_from_json(j, "cfg.json");
    CHECK(c.stride == 48);
    CHECK(c.convention == snip::pixel_convention::inclusive);
    CHECK(c.scales[0].mode == snip::scale_mode::resolution);
    CHECK(c.scales[2].factor_for(1000, 500) == doctest::Approx(0.512));
    CHECK(snip::io::config_from_json(snip::io::config_to_json(c), "x").stride == 48);
}

TEST_CASE("config files: an unknown preset names the file and the field") {
    // Found by fuzz_chips_json (tests/fuzz/regressions/chips_json/unknown_preset_no_source):
    // the message named neither.
    const auto j = nlohmann::json::parse(R"({"preset": "yolo"})");
    CHECK_THROWS_WITH_AS(snip::io::config_from_json(j, "cfg.json"),
                         doctest::Contains("cfg.json: config.preset: unknown preset 'yolo' (known: default, sniper_coco)"),
                         snip::error);
}

namespace {

snip::io::chip_entry* first_negative(snip::io::chips_file& f) {
    for (auto& im : f.images)
        for (auto& c : im.chips)
            if (c.negative) return &c;
    return nullptr;
}

} // namespace

TEST_CASE("negative chips carry their proposal indices and the ground truth the miner assigned") {
    for (auto cfg : {snip::plan_config::sniper_coco(), snip::plan_config::defaults()}) {
        // image 0: 40 proposals around (510, 410) and a 10 px box among them (ann 73):
        // too small for the middle scale's range, a mining candidate there.
        auto ds = small_dataset();
        ds.images[0].boxes.push_back({505, 405, 515, 415});
        ds.images[0].ann_ids.push_back(73);
        ds.images[0].categories.push_back(1);
        ds.images[0].crowd.push_back(0);
        std::vector<snip::image_proposals> props(ds.images.size());
        for (int i = 0; i < 40; ++i)
            props[0].boxes.push_back({500.0 + i % 5, 400.0 + i % 7, 520.0 + i % 5, 420.0 + i % 7});
        const auto plans = snip::plan_dataset(cfg, ds, &props, {});
        const auto f = snip::io::make_chips_file(ds, plans, cfg, 0, 0, "ann.json", "props.json");
        std::size_t with_gt = 0;
        for (std::size_t k = 0; k < plans[0].negatives.size(); ++k) {
            const auto& c = plans[0].negatives[k];
            std::vector<std::int64_t> ann;
            for (int b : c.boxes) ann.push_back(ds.images[0].ann_ids[std::size_t(b)]);
            with_gt += !ann.empty();
            // the entry of this chip: positives come first in the file
            const auto& e = f.images[0].chips[plans[0].plan.positives.size() + k];
            REQUIRE(e.negative);
            CHECK(e.ann_ids == ann);
            CHECK(e.proposals == int(c.proposals.size()));
            CHECK(e.proposal_ids == std::vector<std::int64_t>(c.proposals.begin(), c.proposals.end()));
            for (auto q : e.proposal_ids) CHECK((q >= 0 && q < 40));
        }
        CHECK(with_gt == 1);  // the 10 px box, at the middle scale
        const auto j = snip::io::to_json(f);
        CHECK(j["format"] == "snip-chips/2");
        const auto g = snip::io::chips_from_json(nlohmann::json::parse(j.dump()), "mem");
        CHECK(snip::io::to_json(g) == j);
    }
}

TEST_CASE("snip-chips/1 files are still read: their negatives have no ids") {
    auto f = planned(snip::plan_config::defaults());
    auto j = snip::io::to_json(f);
    j["format"] = "snip-chips/1";
    bool found = false;
    for (auto& im : j["images"])
        for (auto& c : im["chips"])
            if (c["kind"] == "negative") {  // as the old writer wrote them
                c.erase("proposal_ids");
                c.erase("ann_ids");
                c["proposals"] = 33;
                found = true;
            }
    REQUIRE(found);
    auto g = snip::io::chips_from_json(j, "old.json");
    CHECK(g.version == 1);
    const auto* n = first_negative(g);
    REQUIRE(n);
    CHECK(n->proposals == 33);
    CHECK(n->ann_ids.empty());
    CHECK(n->proposal_ids.empty());
    CHECK(snip::io::to_json(g) == j);  // written back as it was read, in the old format
    // ... but a snip-chips/2 file must have both lists
    j["format"] = "snip-chips/2";
    CHECK_THROWS_WITH_AS(snip::io::chips_from_json(j, "new.json"), doctest::Contains("proposal_ids is missing"),
                         snip::error);
}

TEST_CASE("bad negative chip entries name the field and the value") {
    const auto good = snip::io::to_json(planned(snip::plan_config::defaults()));
    auto neg_index = [&] {
        const auto& ch = good["images"][0]["chips"];
        for (std::size_t k = 0; k < ch.size(); ++k)
            if (ch[k]["kind"] == "negative") return k;
        return std::size_t(0);
    };
    const std::size_t k = neg_index();
    REQUIRE(good["images"][0]["chips"][k]["kind"] == "negative");
    const std::string p = "images[0].chips[" + std::to_string(k) + "]";
    auto j = good;
    j["images"][0]["chips"][k]["proposals"] = -1;
    CHECK_THROWS_WITH_AS(snip::io::chips_from_json(j, "f.json"), doctest::Contains((p + ".proposals is -1").c_str()), snip::error);
    j = good;
    j["images"][0]["chips"][k]["proposal_ids"].push_back(3);
    CHECK_THROWS_WITH_AS(snip::io::chips_from_json(j, "f.json"), doctest::Contains((p + ".proposal_ids").c_str()), snip::error);
    j = good;
    j["images"][0]["chips"][k]["proposal_ids"][0] = -5;
    CHECK_THROWS_WITH_AS(snip::io::chips_from_json(j, "f.json"),
                         doctest::Contains((p + ".proposal_ids[0] is -5, expected an index >= 0").c_str()), snip::error);
    j = good;
    j["images"][0]["chips"][k]["ann_ids"] = "none";
    CHECK_THROWS_WITH_AS(snip::io::chips_from_json(j, "f.json"), doctest::Contains((p + ".ann_ids is \"none\"").c_str()),
                         snip::error);
}

TEST_CASE("config files: sniper_coco draws its stride; a fixed stride replaces the draw") {
    auto c = snip::io::config_from_json(nlohmann::json{{"preset", "sniper_coco"}}, "c.json");
    CHECK(c.stride_min == 56);
    CHECK(c.stride_max == 59);
    c = snip::io::config_from_json(nlohmann::json{{"preset", "sniper_coco"}, {"stride", 24}}, "c.json");
    CHECK(c.stride == 24);
    CHECK(c.stride_min == 0);
    CHECK(c.stride_max == 0);
    c = snip::io::config_from_json(nlohmann::json{{"preset", "sniper_coco"}, {"stride", 24}, {"stride_min", 40},
                                                  {"stride_max", 44}},
                                   "c.json");
    CHECK(c.stride_min == 40);
    CHECK(c.stride_max == 44);
    c = snip::io::config_from_json(nlohmann::json{{"preset", "default"}}, "c.json");
    CHECK(c.stride == 32);
    CHECK(c.stride_min == 0);
}

// ---- validate_chips: a chips file against its annotations and its config ----------------

namespace {

/// small_dataset with a 10 px box among image 7's proposals (a negative chip's ground
/// truth at the middle scale), and that plan's chips file.
struct planned_set {
    snip::dataset ds;
    snip::io::chips_file file;
};

/// With `edges`, a box at image 7's bottom edge (74: the sniper layout covers it with a
/// bottom-row chip one pixel taller than the chip size) and a third image (id 9, 100x60,
/// smaller than a chip at every scale, with a crowd box 91 beside box 90).
planned_set planned_with_truth(const snip::plan_config& cfg, std::uint64_t seed = 3, int epoch = 0,
                               bool edges = false) {
    planned_set p;
    p.ds = small_dataset();
    p.ds.images[0].boxes.push_back({505, 405, 515, 415});
    p.ds.images[0].ann_ids.push_back(73);
    p.ds.images[0].categories.push_back(1);
    p.ds.images[0].crowd.push_back(0);
    if (edges) {
        p.ds.images[0].boxes.push_back({5, 440, 30, 478});
        p.ds.images[0].ann_ids.push_back(74);
        p.ds.images[0].categories.push_back(1);
        p.ds.images[0].crowd.push_back(0);
        snip::image_record t;
        t.id = 9;
        t.file_name = "t.jpg";
        t.width = 100;
        t.height = 60;
        t.boxes = {{10, 10, 50, 40}, {0, 0, 100, 60}};
        t.ann_ids = {90, 91};
        t.categories = {1, 1};
        t.crowd = {0, 1};
        p.ds.images.push_back(t);
    }
    std::vector<snip::image_proposals> props(p.ds.images.size());
    for (int i = 0; i < 40; ++i)
        props[0].boxes.push_back({500.0 + i % 5, 400.0 + i % 7, 520.0 + i % 5, 420.0 + i % 7});
    snip::dataset_plan_options o;
    o.seed = seed;
    o.epoch = epoch;
    o.threads = 1;
    const auto plans = snip::plan_dataset(cfg, p.ds, &props, o);
    p.file = snip::io::make_chips_file(p.ds, plans, cfg, seed, epoch, "ann.json", "props.json");
    return p;
}

/// The message validate_chips gives for `f` read back from `j` (or the reader's own).
std::string validation_error(const nlohmann::json& j, const snip::dataset& ds) {
    return snip_test::error_of([&] {
        snip::io::validate_chips(snip::io::chips_from_json(j, "c.json"), ds, "c.json");
    });
}

/// Index of the first chip of image `i` of kind `negative` (the file's JSON); -1 if none.
int chip_of_kind(const nlohmann::json& j, std::size_t i, bool negative) {
    const auto& ch = j["images"][i]["chips"];
    for (std::size_t k = 0; k < ch.size(); ++k)
        if ((ch[k]["kind"] == "negative") == negative) return int(k);
    return -1;
}

/// Sets a chip's rect and the matching box (rect / its scale's factor).
void set_rect(nlohmann::json& j, std::size_t i, std::size_t k, int x1, int y1, int x2, int y2) {
    auto& c = j["images"][i]["chips"][k];
    const double f = j["images"][i]["scales"][c["scale"].get<std::size_t>()]["factor"].get<double>();
    c["rect"] = {x1, y1, x2, y2};
    c["box"] = {x1 / f, y1 / f, x2 / f, y2 / f};
}

} // namespace

TEST_CASE("validate_chips: every file the planner writes passes, read back or not") {
    auto resolution = snip::plan_config::sniper_coco();
    resolution.scales = {snip::scale_spec::by_resolution(1400, 2000), snip::scale_spec::by_resolution(800, 1280),
                         snip::scale_spec::by_resolution(-1, 512)};
    auto small_chips = snip::plan_config::defaults();
    small_chips.chip_size = 256;  // images wider than the chip at every scale
    small_chips.stride = 24;
    auto aligned_inclusive = snip::plan_config::defaults();
    aligned_inclusive.convention = snip::pixel_convention::inclusive;
    auto sniper_continuous = snip::plan_config::sniper_coco();
    sniper_continuous.convention = snip::pixel_convention::continuous;
    auto one_scale = snip::plan_config::defaults();
    one_scale.scales = {snip::scale_spec::by_long_side(800)};
    one_scale.ranges = {{-1, -1}};
    std::size_t negatives = 0, longer = 0, narrower = 0;
    for (const auto& cfg : {snip::plan_config::sniper_coco(), snip::plan_config::defaults(), resolution, small_chips,
                            aligned_inclusive, sniper_continuous, one_scale})
        for (int epoch : {0, 3}) {
            CAPTURE(cfg.name);
            CAPTURE(epoch);
            const auto p = planned_with_truth(cfg, 11, epoch, true);
            for (const auto& im : p.file.images)
                for (const auto& c : im.chips) {
                    negatives += c.negative;
                    // the planner's chips of other sizes: sniper corner / edge chips one
                    // pixel longer, chips of an image side shorter than the chip
                    const int w = c.rect.x2 - c.rect.x1 + 1, h = c.rect.y2 - c.rect.y1 + 1;
                    longer += cfg.layout == snip::chip_layout::sniper && (w == cfg.chip_size + 1 || h == cfg.chip_size + 1);
                    narrower += std::min(w, h) < cfg.chip_size - 1;
                }
            CHECK_NOTHROW(snip::io::validate_chips(p.file, p.ds, "mem"));
            const auto back = snip::io::chips_from_json(nlohmann::json::parse(snip::io::to_json(p.file).dump()), "mem");
            CHECK_NOTHROW(snip::io::validate_chips(back, p.ds, "mem"));
        }
    CHECK(negatives > 0);  // the negative chips' checks ran too
    CHECK(longer > 0);
    CHECK(narrower > 0);
}

TEST_CASE("validate_chips: a plan of coco128 passes (real data; skipped when absent)") {
    const std::string ann = snip_test::data_file("coco128/instances_coco128.json");
    if (ann.empty()) {
        MESSAGE("coco128 not found under the data folder: skipped");
        return;
    }
    const snip::dataset ds = snip::io::read_coco(ann);
    // Stand-in proposals: a cluster of 30 boxes per image, so that negative chips are mined.
    std::vector<snip::image_proposals> props(ds.images.size());
    for (std::size_t i = 0; i < ds.images.size(); ++i) {
        const auto& im = ds.images[i];
        const double cx = im.width * (0.2 + 0.6 * double(i % 7) / 6.0), cy = im.height * 0.5;
        for (int q = 0; q < 30; ++q) {
            const double s = 12.0 + q % 9;
            props[i].boxes.push_back({cx + q % 5, cy + q % 6, cx + q % 5 + s, cy + q % 6 + s});
        }
    }
    std::size_t chips = 0, negatives = 0;
    for (const auto& cfg : {snip::plan_config::sniper_coco(), snip::plan_config::defaults()}) {
        CAPTURE(cfg.name);
        snip::dataset_plan_options o;
        o.seed = 5;
        o.epoch = 1;
        const auto plans = snip::plan_dataset(cfg, ds, &props, o);
        const auto f = snip::io::make_chips_file(ds, plans, cfg, o.seed, o.epoch, ann, "");
        for (const auto& im : f.images)
            for (const auto& c : im.chips) ++chips, negatives += c.negative;
        CHECK_NOTHROW(snip::io::validate_chips(f, ds, ann));
        const auto path = (std::filesystem::temp_directory_path() / "snip_test_chips_coco128.json").string();
        snip::io::write_chips(f, path);
        CHECK_NOTHROW(snip::io::read_chips(path, ds));
        std::filesystem::remove(path);
    }
    CHECK(chips > 500);
    CHECK(negatives > 0);
}

TEST_CASE("validate_chips: a corrupted chips file is refused, naming the file, image, field and value") {
    // defaults: scales 3, 1.667, 512px; 512 px chips on an aligned grid at stride 32,
    // continuous pixels. Image 0 is id 7 'a.jpg', 640x480 (1920x1440 at scale 0), with
    // annotations 70..73; image 1 is id 8 'b.jpg' with annotation 80.
    const auto p = planned_with_truth(snip::plan_config::defaults());
    const nlohmann::json good = snip::io::to_json(p.file);
    CHECK_NOTHROW(snip::io::validate_chips(snip::io::chips_from_json(good, "c.json"), p.ds, "c.json"));
    const int kp = chip_of_kind(good, 0, false), kn = chip_of_kind(good, 0, true);
    REQUIRE(kp >= 0);
    REQUIRE(kn >= 0);
    const auto& pos = good["images"][0]["chips"][std::size_t(kp)];
    REQUIRE(pos["scale"] == 0);
    REQUIRE_FALSE(pos["ann_ids"].empty());
    REQUIRE(good["images"][0]["chips"][std::size_t(kn)]["sampled"] == true);
    REQUIRE(good["images"][0]["chips"][std::size_t(kn)]["proposal_ids"].size() >= 2);
    const std::array<int, 4> r = pos["rect"].get<std::array<int, 4>>();
    const std::string at = "c.json: images[0] (id 7, 'a.jpg'): ";
    const std::string pc = at + "chips[" + std::to_string(kp) + "]";
    const std::string nc = at + "chips[" + std::to_string(kn) + "]";
    const std::string first_id = std::to_string(pos["ann_ids"][0].get<std::int64_t>());
    const std::size_t nchips = good["images"][0]["chips"].size();
    const std::size_t nids = pos["ann_ids"].size();
    const int dx = r[0] + 32 + 511 < 1920 ? 32 : -32;  // the next grid column, inside the image

    struct bad_case {
        std::string what;
        std::function<void(nlohmann::json&, snip::dataset&)> edit;
        std::vector<std::string> expect;
    };
    auto chip = [kp](nlohmann::json& j) -> nlohmann::json& { return j["images"][0]["chips"][std::size_t(kp)]; };
    auto neg = [kn](nlohmann::json& j) -> nlohmann::json& { return j["images"][0]["chips"][std::size_t(kn)]; };
    const std::vector<bad_case> cases = {
        {"another image's annotation id",
         [&](auto& j, auto&) { chip(j)["ann_ids"][0] = 80; },
         {pc + ".ann_ids[0] is 80: annotation 80 belongs to image 8 ('b.jpg') in mem, not to this image"}},
        {"a nonexistent annotation id",
         [&](auto& j, auto&) { chip(j)["ann_ids"][0] = 999; },
         {pc + ".ann_ids[0] is 999: mem has no annotation with this id"}},
        {"an annotation id twice in a chip",
         [&](auto& j, auto&) { chip(j)["ann_ids"].push_back(chip(j)["ann_ids"][0]); },
         {pc + ".ann_ids[" + std::to_string(nids) + "] is " + first_id + ", listed twice in the chip (also ann_ids[0])"}},
        {"a duplicated chip",
         [&](auto& j, auto&) { j["images"][0]["chips"].push_back(chip(j)); },
         {at + "chips[" + std::to_string(nchips) + "] (positive, scale 0, rect [", "is listed twice (also chips[" + std::to_string(kp) + "])"}},
        {"a chip at (5000, 5000)",
         [&](auto& j, auto&) { set_rect(j, 0, std::size_t(kp), 5000, 5000, 5512, 5512); },
         {pc + ".rect is [5000, 5000, 5512, 5512]: outside the 1920x1440 image of scale 0 (x in [0, 1920], y in [0, 1440])"}},
        {"a box that is not rect / factor",
         [&](auto& j, auto&) { chip(j)["box"] = {1, 2, 3, 4}; },
         {pc + ".box is [1, 2, 3, 4] but its rect [", "/ factor 3 of scale 0"}},
        {"a changed scale factor",
         [&](auto& j, auto&) { j["images"][0]["scales"][0]["factor"] = 2.5; },
         {at + "scales[0].factor is 2.5 but config scale 0 (3) gives 3 for this 640x480 image"}},
        {"a changed scale in the config",
         [&](auto& j, auto&) { j["config"]["scales"][0] = "2.5"; },
         {at + "scales[0].factor is 3 but config scale 0 (2.5) gives 2.5"}},
        {"a changed chip size in the config",
         [&](auto& j, auto&) { j["config"]["chip_size"] = 600; },
         {at + "chips[0].rect is [", "512 x 512 px, but the config's chip_size 600 gives chips of 600 x 600 px"}},
        {"a chip of another size",
         [&](auto& j, auto&) { set_rect(j, 0, std::size_t(kp), r[0], r[1], r[0] + 400, r[3]); },
         {pc + ".rect is [" + std::to_string(r[0]) + ", " + std::to_string(r[1]) + ", " + std::to_string(r[0] + 400),
          "400 x 512 px, but the config's chip_size 512 gives chips of 512 x 512 px on the 1920x1440 image of scale 0 "
          "(aligned layout, continuous pixels)"}},
        {"a chip off the candidate grid",
         [&](auto& j, auto&) { set_rect(j, 0, std::size_t(kp), r[0] + dx / 4, r[1], r[2] + dx / 4, r[3]); },
         {pc + ".rect is [" + std::to_string(r[0] + dx / 4) + ", ",
          "not a candidate chip of the aligned layout at stride 32 on the 1920x1440 image of scale 0"}},
        {"a scale index out of range", [&](auto& j, auto&) { chip(j)["scale"] = 3; },
         {"c.json: images[0].chips[" + std::to_string(kp) + "].scale is 3, expected a scale index below 3"}},
        {"an image missing from the annotations",
         [&](auto& j, auto&) { j["images"][0]["id"] = 999; },
         {"c.json: images[0] (id 999, 'a.jpg'): id is 999: mem has no image with this id"}},
        {"a wrong image size",
         [&](auto& j, auto&) { j["images"][0]["width"] = 641; },
         {at + "width x height is 641x480 but mem has 640x480 for image 7"}},
        {"another file name",
         [&](auto& j, auto&) { j["images"][0]["file_name"] = "z.jpg"; },
         {"images[0] (id 7, 'z.jpg'): file_name is 'z.jpg' but mem names image 7 'a.jpg'"}},
        {"an image listed twice",
         [&](auto& j, auto&) { j["images"].push_back(j["images"][0]); },
         {"c.json: images[2] (id 7, 'a.jpg'): id 7 is listed twice (also images[0])"}},
        {"another stride",
         [&](auto& j, auto&) { j["images"][0]["scales"][1]["stride"] = 31; },
         {at + "scales[1].stride is 31 but the config's stride for seed 3, epoch 0 is 32"}},
        {"another image's annotation valid at a scale",
         [&](auto& j, auto&) { j["images"][0]["scales"][0]["valid_ids"].push_back(80); },
         {at + "scales[0].valid_ids[", "] is 80: annotation 80 belongs to image 8"}},
        {"a crowd annotation valid at a scale",
         [&](auto&, auto& ds) { ds.images[0].crowd[0] = 1; },
         {at + "scales[0].valid_ids[", "] is 70: a crowd annotation in mem, never valid"}},
        {"an uncoverable id not valid at its scale",
         [&](auto& j, auto&) { j["images"][0]["scales"][0]["uncoverable_ids"].push_back(71); },
         {at + "scales[0].uncoverable_ids[0] is 71: not among the scale's valid_ids"}},
        {"an id both uncoverable and in a chip",
         [&](auto& j, auto&) { j["images"][0]["scales"][0]["uncoverable_ids"].push_back(chip(j)["ann_ids"][0]); },
         {pc + ".ann_ids[0] is " + first_id + ": listed as uncoverable at scale 0"}},
        {"a positive chip holding a box not valid at its scale",
         [&](auto& j, auto&) { chip(j)["ann_ids"].push_back(71); },
         {pc + ".ann_ids[" + std::to_string(nids) + "] is 71: not among the valid_ids of scale 0"}},
        {"a box in two positive chips of a scale",
         [&](auto& j, auto&) {
             j["images"][0]["chips"].push_back(chip(j));
             set_rect(j, 0, nchips, r[0] + dx, r[1], r[2] + dx, r[3]);
         },
         {at + "chips[" + std::to_string(nchips) + "].ann_ids[0] is " + first_id + ": already in positive chip chips[" +
          std::to_string(kp) + "] of scale 0"}},
        {"more negative chips sampled than the config's budget",
         [&](auto& j, auto&) { j["config"]["negatives_per_image"] = 0; },
         {at + "1 of its negative chips are marked sampled, more than the config's negatives_per_image 0"}},
        {"a proposal twice in a negative chip",
         [&](auto& j, auto&) { neg(j)["proposal_ids"][1] = neg(j)["proposal_ids"][0]; },
         {nc + ".proposal_ids[1] is ", ", listed twice in the chip (also proposal_ids[0])"}},
        {"another image's annotation in a negative chip",
         [&](auto& j, auto&) { neg(j)["ann_ids"] = {80}; },
         {nc + ".ann_ids[0] is 80: annotation 80 belongs to image 8"}},
        {"a negative epoch", [&](auto& j, auto&) { j["epoch"] = -1; }, {"c.json: epoch is -1, expected >= 0"}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        nlohmann::json j = good;
        snip::dataset ds = p.ds;
        c.edit(j, ds);
        const std::string msg = validation_error(j, ds);
        CAPTURE(msg);
        for (const auto& s : c.expect) CHECK(snip_test::contains(msg, s));
    }
}

TEST_CASE("validate_chips: the checks hold for a chips_file built in memory and for sniper chips") {
    auto p = planned_with_truth(snip::plan_config::defaults());
    auto f = p.file;
    f.images[0].chips[0].scale = 3;  // chips_from_json refuses this; validate_chips too
    CHECK_THROWS_WITH_AS(snip::io::validate_chips(f, p.ds, "mem.json"),
                         doctest::Contains("mem.json: images[0] (id 7, 'a.jpg'): chips[0].scale is 3, expected a "
                                           "scale index below 3"),
                         snip::error);
    f = p.file;
    f.images[1].scales.pop_back();
    CHECK_THROWS_WITH_AS(snip::io::validate_chips(f, p.ds, "mem.json"),
                         doctest::Contains("images[1] (id 8, 'b.jpg'): has 2 scales but the config has 3"), snip::error);
    f = p.file;
    f.images[0].chips[0].ann_ids.push_back(72);
    f.images[0].chips[0].ann_ids.push_back(72);
    CHECK_THROWS_WITH_AS(snip::io::validate_chips(f, p.ds, "mem.json"), doctest::Contains("listed twice"), snip::error);

    // sniper layout: corner and edge chips one pixel longer are the planner's; two longer are not.
    p = planned_with_truth(snip::plan_config::sniper_coco());
    CHECK_NOTHROW(snip::io::validate_chips(p.file, p.ds, "s.json"));
    f = p.file;
    const std::size_t k = std::size_t(chip_of_kind(snip::io::to_json(f), 0, false));
    auto& c = f.images[0].chips[k];
    c.rect.x2 = c.rect.x1 + 513;  // 514 px
    c.box.x2 = c.rect.x2 / f.images[0].scales[std::size_t(c.scale)].factor;
    CHECK_THROWS_WITH_AS(snip::io::validate_chips(f, p.ds, "s.json"),
                         doctest::Contains("514 x 512 px, but the config's chip_size 512 gives chips of 512 or 513 x "
                                           "512 or 513 px"),
                         snip::error);
}

TEST_CASE("read_chips(path, ds) and chips_annotations_path: the annotations a chips file names") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / "snip_test_chips_ann";
    fs::remove_all(dir);
    fs::create_directories(dir / "sub");
    auto p = planned_with_truth(snip::plan_config::defaults());
    p.file.annotations = "ann_for_chips_test.json";  // relative: not in the current folder
    const std::string chips = (dir / "sub" / "chips.json").string();
    snip::io::write_chips(p.file, chips);
    CHECK_NOTHROW(snip::io::read_chips(chips, p.ds));
    auto f = snip::io::read_chips(chips);
    // neither as written nor beside the chips file
    const std::string missing = chips + ": its annotation file 'ann_for_chips_test.json' does not exist (nor '" +
                                (dir / "sub" / "ann_for_chips_test.json").string() + "')";
    CHECK_THROWS_WITH_AS(snip::io::chips_annotations_path(f, chips), doctest::Contains(missing.c_str()), snip::error);
    snip::io::write_coco(p.ds, (dir / "sub" / "ann_for_chips_test.json").string());
    CHECK(snip::io::chips_annotations_path(f, chips) == (dir / "sub" / "ann_for_chips_test.json").string());
    f.annotations = (dir / "sub" / "ann_for_chips_test.json").string();  // absolute: as written
    CHECK(snip::io::chips_annotations_path(f, chips) == f.annotations);
    // planned from the parent folder ("sub/ann..."), read from elsewhere: the file of that
    // name beside the chips file
    f.annotations = "no_such_folder_here/ann_for_chips_test.json";
    CHECK(snip::io::chips_annotations_path(f, chips) == (dir / "sub" / "ann_for_chips_test.json").string());
    f.annotations = "no_such_folder_here/other.json";
    const std::string missing2 = chips + ": its annotation file 'no_such_folder_here/other.json' does not exist (nor '" +
                                 (dir / "sub" / "no_such_folder_here" / "other.json").string() + "', '" +
                                 (dir / "sub" / "other.json").string() + "')";
    CHECK_THROWS_WITH_AS(snip::io::chips_annotations_path(f, chips), doctest::Contains(missing2.c_str()), snip::error);
    f.annotations.clear();
    CHECK_THROWS_WITH_AS(snip::io::chips_annotations_path(f, chips),
                         doctest::Contains((chips + ": names no annotation file").c_str()), snip::error);
    // a corrupted file read with its annotations is refused by read_chips itself
    auto j = snip::io::to_json(p.file);
    j["images"][0]["chips"][0]["ann_ids"][0] = 80;
    snip::io::write_atomically(chips, j.dump());
    CHECK_THROWS_WITH_AS(snip::io::read_chips(chips, p.ds),
                         doctest::Contains((chips + ": images[0] (id 7, 'a.jpg'): chips[0].ann_ids[0] is 80").c_str()),
                         snip::error);
    fs::remove_all(dir);
}
