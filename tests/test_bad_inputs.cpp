// The bad-input catalogue (tests/bad_inputs, see its README.md), part 1: the JSON readers
// (COCO annotations, proposals, detections, chips files, configs) and the planner. Every
// case folder whose reader belongs to this program is run and gives one CHECK naming the
// case; part 2 (images, weights, checkpoints, the trainer) is
// test_torch_trainer_bad_inputs.cpp. Also here: failed writes leave the old file, and the
// README's table lists exactly the catalogue's cases.
#include "test_util.hpp"

#include "bad_inputs/harness.hpp"

#include <snip/sniper/dataset_plan.hpp>
#include <snip/core/random.hpp>
#include <snip/io/chips_json.hpp>
#include <snip/io/coco.hpp>
#include <snip/eval/coco_eval.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using bad_inputs::report;
using bad_inputs::test_case;

/// A dataset file the case only uses as a fixture (proposals, detections): it must load.
snip::dataset fixture_dataset(const test_case& c) {
    try {
        return snip::io::read_coco(c.file("dataset"));
    } catch (const snip::error& e) {
        throw std::logic_error(std::string("the case's dataset fixture does not load: ") +
                               e.what());
    }
}

/// 10^5 (or "boxes") boxes of 4..300 px in one 4000 x 3000 image, one category.
snip::dataset many_boxes(std::size_t n) {
    snip::dataset ds;
    ds.source = "generated many_boxes";
    ds.categories = {{1, "thing"}};
    snip::image_record im;
    im.id = 1;
    im.width = 4000;
    im.height = 3000;
    snip::splitmix64 g{2024};
    for (std::size_t k = 0; k < n; ++k) {
        const double w = 4 + double(g.below(297)), h = 4 + double(g.below(297));
        const double x = double(g.below(std::uint64_t(im.width - w))),
                     y = double(g.below(std::uint64_t(im.height - h)));
        im.boxes.push_back({x, y, x + w, y + h});
        im.ann_ids.push_back(std::int64_t(k) + 1);
        im.categories.push_back(1);
        im.crowd.push_back(0);
    }
    ds.images.push_back(std::move(im));
    return ds;
}

/// The plan's invariants: every valid box of every scale is in exactly one positive chip
/// or listed uncoverable; chips lie inside their scaled image; the chips file round-trips.
void check_plan(const snip::dataset& ds, const snip::plan_config& cfg,
                const std::vector<snip::image_chips_plan>& plans, const nlohmann::json& checks,
                report& rep) {
    std::size_t total = 0;
    for (std::size_t i = 0; i < plans.size(); ++i) {
        const auto& p = plans[i].plan;
        total += p.positives.size();
        if (checks.contains("chips_per_image"))
            rep.check(p.positives.size() == checks["chips_per_image"].get<std::size_t>(),
                      "image " + std::to_string(ds.images[i].id) + " has " +
                          std::to_string(p.positives.size()) + " positive chips");
        for (std::size_t s = 0; s < p.scales.size(); ++s) {
            std::vector<int> seen(ds.images[i].boxes.size(), 0);
            for (const auto& ch : p.positives) {
                if (ch.scale != int(s)) continue;
                const auto& sz = p.scales[s].size;
                rep.check(ch.rect.x1 >= 0 && ch.rect.y1 >= 0 && ch.rect.x2 <= sz.width &&
                              ch.rect.y2 <= sz.height,
                          "a chip lies outside its scaled image");
                for (int b : ch.boxes)
                    ++seen[std::size_t(b)];
            }
            for (int b : p.scales[s].uncoverable)
                ++seen[std::size_t(b)];
            for (int b : p.scales[s].valid)
                rep.check(seen[std::size_t(b)] == 1, "a valid box is in no chip or in two");
        }
        // every box not ignored is valid at a scale, outside the image or valid nowhere
        const auto& im = ds.images[i];
        std::vector<int> where(im.boxes.size(), 0);
        for (const auto& sp : p.scales)
            for (int b : sp.valid) where[std::size_t(b)] |= 1;
        for (int b : p.outside) where[std::size_t(b)] += 2;
        for (int b : p.valid_nowhere) where[std::size_t(b)] += 4;
        for (std::size_t b = 0; b < im.boxes.size(); ++b) {
            const bool ignored = !im.crowd.empty() && im.crowd[b];
            const int w = where[b];
            rep.check(ignored ? w == 0 : (w == 1 || w == 2 || w == 4),
                      "box " + std::to_string(b) + " of image " + std::to_string(im.id) +
                          " is not in exactly one of valid / outside / valid_nowhere");
        }
    }
    if (checks.contains("chips_total"))
        rep.check(total == checks["chips_total"].get<std::size_t>(),
                  "the plan has " + std::to_string(total) + " positive chips");
    const auto f = snip::io::make_chips_file(ds, plans, cfg, 0, 0, ds.source, "");
    const auto j = snip::io::to_json(f);
    rep.check(
        snip::io::to_json(snip::io::chips_from_json(nlohmann::json::parse(j.dump()), "mem")) == j,
        "the chips file does not round-trip");
}

const std::map<std::string, bad_inputs::reader_fn>& readers() {
    static const std::map<std::string, bad_inputs::reader_fn> r{
        {"coco", [](const test_case& c, report&) { snip::io::read_coco(c.file("input")); }},
        {"proposals",
         [](const test_case& c, report&) {
             snip::io::read_proposals(c.file("input"), fixture_dataset(c));
         }},
        {"detections",
         [](const test_case& c, report&) {
             snip::io::read_detections(c.file("input"), fixture_dataset(c));
         }},
        {"chips_json",
         [](const test_case& c, report& rep) {
             const auto f = snip::io::read_chips(c.file("input"));
             rep.check(snip::io::to_json(f) == snip::io::to_json(snip::io::chips_from_json(
                                                   snip::io::to_json(f), "mem")),
                       "the chips file does not round-trip");
         }},
        {"config",
         [](const test_case& c, report&) {
             const std::string p = c.file("input");
             snip::io::config_from_json(snip::io::read_json_file(p), p);
         }},
        {"plan",
         [](const test_case& c, report& rep) {
             snip::dataset ds;
             if (c.generate() == "many_boxes")
                 ds = many_boxes(c.spec.value("boxes", std::size_t(100000)));
             else if (!c.generate().empty())
                 throw std::logic_error("unknown generator '" + c.generate() + "'");
             else
                 ds = snip::io::read_coco(c.file("dataset"));
             snip::plan_config cfg = snip::plan_config::defaults();
             if (c.has("config"))
                 cfg = snip::io::config_from_json(
                     snip::io::read_json_file(c.file("config")), c.file("config"));
             std::vector<snip::image_proposals> props;
             if (c.has("proposals")) props = snip::io::read_proposals(c.file("proposals"), ds);
             snip::dataset_plan_options o;
             o.threads = 1;
             const auto plans =
                 snip::plan_dataset(cfg, ds, c.has("proposals") ? &props : nullptr, o);
             check_plan(ds, cfg, plans, c.checks(), rep);
         }},
    };
    return r;
}

} // namespace

TEST_CASE("bad-input catalogue: JSON readers, configs and the planner") {
    const auto verdicts = bad_inputs::run_all("test_bad_inputs", readers());
    CHECK(verdicts.size() >= 50);
    for (const auto& [name, why] : verdicts)
        CHECK_MESSAGE(why.empty(), name << ": " << why);
}

TEST_CASE("bad-input catalogue: the README's table lists exactly the cases") {
    const std::string readme = bad_inputs::slurp((bad_inputs::root() / "README.md").string());
    REQUIRE(!readme.empty());
    std::size_t n = 0;
    for (const auto& c : bad_inputs::load_all()) {
        ++n;
        CHECK_MESSAGE(readme.find("| `" + c.name + "` |") != std::string::npos,
                      c.name << " is not in tests/bad_inputs/README.md");
    }
    // Every row names a case folder.
    for (std::size_t p = readme.find("\n| `"); p != std::string::npos;
         p = readme.find("\n| `", p + 1)) {
        const std::size_t b = p + 4, e = readme.find('`', b);
        const std::string name = readme.substr(b, e - b);
        CHECK_MESSAGE(fs::is_directory(bad_inputs::root() / name),
                      "README row " << name << " has no case folder");
    }
    CHECK(n >= 100);
}

TEST_CASE("loses nothing: a failed COCO or chips write leaves the old file") {
    const fs::path d = bad_inputs::scratch("writes");
    const std::string ann = (d / "annotations.json").string();
    snip::dataset ds;
    ds.source = "mem";
    snip::image_record im;
    im.id = 1;
    im.width = 64;
    im.height = 48;
    im.boxes = {{1, 1, 10, 10}};
    im.ann_ids = {1};
    im.categories = {1};
    im.crowd = {0};
    ds.images.push_back(im);
    snip::io::write_coco(ds, ann);
    const std::string old = bad_inputs::slurp(ann);
    REQUIRE(!old.empty());

    // A box that is not finite: refused before anything is written.
    snip::dataset bad = ds;
    bad.images[0].boxes[0].x2 = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH_AS(snip::io::write_coco(bad, ann), doctest::Contains("not a finite xyxy box"),
                         snip::error);
    CHECK(bad_inputs::slurp(ann) == old);
    CHECK_FALSE(fs::exists(ann + ".tmp"));

    // The temporary file cannot be created (a folder sits at its name): the error names the
    // file, the old one is intact.
    fs::create_directories(ann + ".tmp");
    snip::dataset other = ds;
    other.images[0].width = 65;
    CHECK_THROWS_WITH_AS(snip::io::write_coco(other, ann), doctest::Contains(ann.c_str()),
                         snip::error);
    CHECK(bad_inputs::slurp(ann) == old);

    // The same for a chips file.
    const std::string chips = (d / "chips.json").string();
    const auto cfg = snip::plan_config::defaults();
    const auto plans = snip::plan_dataset(cfg, ds, nullptr);
    const auto f = snip::io::make_chips_file(ds, plans, cfg, 0, 0, ann, "");
    snip::io::write_chips(f, chips);
    const std::string old_chips = bad_inputs::slurp(chips);
    fs::create_directories(chips + ".tmp");
    auto g = f;
    g.epoch = 1;
    CHECK_THROWS_WITH_AS(snip::io::write_chips(g, chips), doctest::Contains(chips.c_str()),
                         snip::error);
    CHECK(bad_inputs::slurp(chips) == old_chips);
    fs::remove_all(d);
}

TEST_CASE("an empty dataset in memory: the planner plans nothing and says so in the chips file") {
    // (An empty dataset FILE never gets here: read_coco refuses it, see plan_empty_dataset.)
    snip::dataset ds;
    ds.source = "empty.json";
    const auto cfg = snip::plan_config::defaults();
    const auto plans = snip::plan_dataset(cfg, ds, nullptr);
    CHECK(plans.empty());
    const std::vector<snip::image_proposals> none;
    CHECK(snip::plan_dataset(cfg, ds, &none).empty());
    const auto f = snip::io::make_chips_file(ds, plans, cfg, 0, 0, ds.source, "");
    CHECK(snip::io::chips_from_json(snip::io::to_json(f), "mem").images.empty());
}
