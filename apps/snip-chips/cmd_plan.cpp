// snip-chips plan: COCO annotations (+ proposals) -> chips JSON.
#include <snip_apps/common.hpp>

namespace {

using namespace snip::apps;

int run_plan(const std::vector<std::string>& argv) {
    auto flags = cli::plan_flags;
    flags.push_back("--out");
    flags.push_back("--indent");
    cli::args a("plan", argv, flags);
    const auto cfg = cli::config_from_args(a);
    const std::string out = a.get_or("--out", "chips.json");
    auto p = cli::plan_from_args(a, cfg);
    std::size_t pos = 0, neg = 0, sampled = 0;
    for (const auto& im : p.file.images)
        for (const auto& c : im.chips) {
            if (!c.negative) ++pos;
            else ++neg, sampled += c.sampled;
        }
    snip::io::write_chips(p.file, out, static_cast<int>(a.integer("--indent", -1)));
    std::printf("planned %zu images with preset %s: %zu positive chips, %zu negative chips (%zu sampled "
                "this epoch) -> %s\n",
                p.file.images.size(), cfg.name.c_str(), pos, neg, sampled, out.c_str());
    return 0;
}

const std::string usage = std::string(
    "snip-chips plan: plan SNIPER chips for a COCO-format dataset\n\n"
    "usage: snip-chips plan --annotations FILE [--proposals FILE] [--preset NAME] [--out chips.json]\n\n") +
    cli::plan_flags_help +
    "  --out FILE          where to write the chips JSON (chips.json)\n"
    "  --indent N          pretty-print the JSON with N spaces (compact by default)\n\n"
    "The chips JSON lists, per image, the size and valid annotation ids of every scale and\n"
    "every chip: its scale, its box in original pixels, its rect in scaled pixels, and the\n"
    "annotation ids assigned to it (positive) or the proposals it holds (negative).\n"
    "See README.md, section 'The chips JSON', for the schema.";

} // namespace

SNIP_COMMAND("plan", "plan chips for a COCO dataset -> chips JSON", usage, run_plan);
