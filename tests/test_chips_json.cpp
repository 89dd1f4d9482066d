// Tests of include/snip/io/chips_json.hpp: round trips and bad chips files.
#include "test_util.hpp"

#include <snip/io/chips_json.hpp>

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
        {[](auto& j) { j["format"] = "chips/0"; }, {"f.json", "format", "chips/0"}},
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
