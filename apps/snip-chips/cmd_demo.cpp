// snip-chips demo: the embedded default job, run when snip-chips has no argument:
// synth -> proposals -> plan -> report -> draw, all in one folder.
#include <snip_apps/common.hpp>

#include <snip/core/random.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>

namespace {

using namespace snip::apps;

/// Stand-in proposals for the demo's negative chip mining: per image, jittered copies
/// of the ground truth (what an RPN fires on) and clusters of boxes around random
/// points (background that looks like objects, which is what negative chips are for).
nlohmann::json synthetic_proposals(const snip::dataset& ds, std::uint64_t seed) {
    snip::splitmix64 g{snip::mix(seed, 0x50524f50ull)};
    nlohmann::json out = nlohmann::json::array();
    auto add = [&](const snip::image_record& im, double cx, double cy, double s, double score) {
        const double w = std::clamp(s * (0.7 + 0.6 * g.uniform()), 2.0, double(im.width));
        const double h = std::clamp(s * (0.7 + 0.6 * g.uniform()), 2.0, double(im.height));
        const double x = std::clamp(cx - w / 2, 0.0, im.width - w);
        const double y = std::clamp(cy - h / 2, 0.0, im.height - h);
        out.push_back({{"image_id", im.id}, {"bbox", {x, y, w, h}}, {"score", score}});
    };
    for (const auto& im : ds.images) {
        for (const auto& b : im.boxes)
            for (int k = 0; k < 3; ++k)
                add(im, (b.x1 + b.x2) / 2 + (g.uniform() - 0.5) * b.width() * 0.3,
                    (b.y1 + b.y2) / 2 + (g.uniform() - 0.5) * b.height() * 0.3,
                    std::sqrt(std::max(1.0, b.width() * b.height())), 0.5 + 0.5 * g.uniform());
        const int clusters = 1 + int(g.below(3));
        for (int c = 0; c < clusters; ++c) {
            const double cx = g.uniform() * im.width, cy = g.uniform() * im.height;
            const double s = std::exp(std::log(8.0) + g.uniform() * std::log(200.0 / 8.0));
            const int n = 10 + int(g.below(40));
            for (int k = 0; k < n; ++k)
                add(im, cx + (g.uniform() - 0.5) * 3 * s, cy + (g.uniform() - 0.5) * 3 * s, s, 0.5 * g.uniform());
        }
    }
    return out;
}

int call(const std::string& cmd, const std::vector<std::string>& args) {
    std::printf("\n$ snip-chips %s", cmd.c_str());
    for (const auto& a : args) std::printf(" %s", a.c_str());
    std::printf("\n");
    std::fflush(stdout);
    const auto it = cli::registry().find(cmd);
    if (it == cli::registry().end()) snip::fail("demo: command '", cmd, "' is not built into this snip-chips");
    return it->second.run(args);
}

int run_demo(const std::vector<std::string>& argv) {
    cli::args a("demo", argv, {"--dir", "--images", "--seed", "--preset"});
    const std::string dir = a.get_or("--dir", "snip-demo");
    const std::string images = std::to_string(a.integer("--images", 500));
    const std::string seed = std::to_string(a.integer("--seed", 1));
    const std::string preset = a.get_or("--preset", "sniper_coco");
    std::filesystem::create_directories(dir);
    const std::string ann = dir + "/synthetic_coco.json", props = dir + "/synthetic_proposals.json",
                      chips = dir + "/chips.json";
    std::printf("snip-chips demo: SNIPER chips for a synthetic COCO-like dataset (no download)\n");
    if (int rc = call("synth", {"--images", images, "--seed", seed, "--out", ann})) return rc;
    const auto ds = cli::load_annotations(ann, true);
    snip::io::write_atomically(props, synthetic_proposals(ds, std::stoull(seed)).dump());
    std::printf("wrote stand-in proposals for negative chip mining -> %s\n", props.c_str());
    if (int rc = call("plan", {"--annotations", ann, "--proposals", props, "--preset", preset, "--seed", seed,
                               "--out", chips}))
        return rc;
    if (int rc = call("report", {"--chips", chips})) return rc;
    // Draw the image with the most chips: the most instructive picture.
    const auto f = snip::io::read_chips(chips, ds);
    std::size_t best = 0;
    for (std::size_t i = 0; i < f.images.size(); ++i)
        if (f.images[i].chips.size() > f.images[best].chips.size()) best = i;
    const std::string png = dir + "/chips.png";
    if (int rc = call("draw", {"--chips", chips, "--annotations", ann, "--index", std::to_string(best), "--out", png}))
        return rc;
    std::printf("\ndemo done: annotations %s, chips %s, picture %s\n", ann.c_str(), chips.c_str(), png.c_str());
    return 0;
}

const char* usage =
    "snip-chips demo: the embedded default job (also what `snip-chips` with no argument runs)\n\n"
    "usage: snip-chips demo [--dir snip-demo] [--images 500] [--seed 1] [--preset sniper_coco]\n\n"
    "Writes a synthetic COCO val2017-like dataset and stand-in proposals into DIR, plans one\n"
    "epoch of SNIPER chips (positives and mined negatives), prints the report, and draws the\n"
    "image with the most chips to DIR/chips.png. Nothing is downloaded.";

} // namespace

SNIP_COMMAND("demo", "synth -> plan -> report -> draw on the embedded default", usage, run_demo);
