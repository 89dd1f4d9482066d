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
