// cmd_synth.cpp: `snip-chips synth`, writes the synthetic COCO val2017-like dataset
// (see synth.hpp for the model and its fit).
#include <snip_apps/cli.hpp>
#include "synth.hpp"

#include <snip/io/coco.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using namespace snip::apps;

const char* const synth_usage =
    R"(usage: snip-chips synth [--images N] [--seed S] [--out FILE]

Writes a synthetic COCO-format annotation file whose image sizes, boxes per image,
box sizes and shapes, categories and crowd share follow COCO val2017 (the
embedded default dataset of snip-chips; no images, annotations only). The same
seed gives the same file on every platform.

options:
  --images N   number of images, >= 1 (default 500)
  --seed S     seed of the generator, an unsigned integer (default 1)
  --out FILE   output COCO json (default snip-demo/synthetic_coco.json); the
               parent folder is created)";

int run_synth(const std::vector<std::string>& argv) {
    cli::args a("synth", argv, {"--images", "--seed", "--out"});
    const long long images = a.integer("--images", 500);
    snip::require(images >= 1 && images <= 10'000'000, "--images ", images,
                  ": the number of images must be in [1, 10000000]");
    std::uint64_t seed = 1;
    if (auto s = a.get("--seed")) {
        bool ok = !s->empty() && s->find_first_not_of("0123456789") == std::string::npos;
        if (ok) {
            try {
                std::size_t pos = 0;
                seed = std::stoull(*s, &pos);
                ok = pos == s->size();
            } catch (const std::exception&) {
                ok = false;
            }
        }
        snip::require(ok, "--seed ", *s, ": expected an unsigned 64-bit integer");
    }
    const std::string out = a.get_or("--out", "snip-demo/synthetic_coco.json");
    snip::require(!out.empty(), "--out: the output path is empty");

    const snip::dataset ds = make_synthetic_coco(static_cast<std::size_t>(images), seed);

    const std::filesystem::path parent = std::filesystem::path(out).parent_path();
    if (!parent.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        snip::require(!ec, "--out ", out, ": cannot create folder ", parent.string(), ": ",
                      ec.message());
    }
    snip::io::write_coco(ds, out);

    std::size_t small = 0, medium = 0, large = 0, crowd = 0;
    for (const auto& im : ds.images)
        for (std::size_t b = 0; b < im.boxes.size(); ++b) {
            const double s = std::sqrt(im.boxes[b].area());
            (s < 32 ? small : s > 96 ? large : medium) += 1;
            crowd += im.crowd[b];
        }
    const std::size_t n = ds.num_boxes();
    const double dn = n > 0 ? double(n) : 1.0;
    using ref = synth::coco_val2017;
    std::printf("%s: %zu images, %zu boxes (%zu crowd), %.2f boxes/image, small/medium/large "
                "%.1f/%.1f/%.1f%% (COCO val2017: %.2f boxes/image, %.1f/%.1f/%.1f%%)\n",
                out.c_str(), ds.images.size(), n, crowd, double(n) / double(ds.images.size()),
                100.0 * double(small) / dn, 100.0 * double(medium) / dn,
                100.0 * double(large) / dn, ref::boxes_per_image, 100.0 * ref::small_share,
                100.0 * ref::medium_share, 100.0 * ref::large_share);
    return 0;
}

} // namespace

SNIP_COMMAND("synth", "write the synthetic COCO val2017-like dataset (the default demo data)",
             synth_usage, run_synth);
