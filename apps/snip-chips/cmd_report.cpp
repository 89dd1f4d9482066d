// snip-chips report: coverage, chips and pixels of a plan, per scale and overall.
#include <snip_apps/common.hpp>

#include <snip/io/chips_report.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>

namespace {

using namespace snip::apps;
using snip::io::chips_report;

int run_report(const std::vector<std::string>& argv) {
    auto flags = cli::plan_flags;
    flags.push_back("--chips");
    cli::args a("report", argv, flags, {"--json"});
    std::vector<chips_report> all;
    if (auto c = a.get("--chips")) {
        // The file is checked against its annotations (given, or the file it names) and
        // its config first: a foreign id or a duplicated chip must not pass for coverage.
        const snip::io::chips_file f = snip::io::read_chips(*c);
        std::string ann;
        if (auto given = a.get("--annotations")) {
            ann = *given;
        } else {
            try {
                ann = snip::io::chips_annotations_path(f, *c);
            } catch (const snip::error& e) {
                snip::fail(e.what(), "; give the COCO file the chips were planned from with "
                                     "--annotations");
            }
        }
        snip::io::validate_chips(f, snip::io::read_coco(ann), *c);
        all.push_back(snip::io::make_chips_report(f));
    } else {
        const auto presets = cli::split(a.get_or("--preset", "default"), ',');
        for (const auto& p : presets) {
            std::vector<std::string> sub = argv;
            for (std::size_t i = 0; i < sub.size(); ++i)
                if (sub[i].rfind("--preset", 0) == 0) {
                    sub.erase(sub.begin() + static_cast<std::ptrdiff_t>(i),
                              sub.begin() + static_cast<std::ptrdiff_t>(
                                                i + (sub[i].find('=') == std::string::npos ? 2 : 1)));
                    break;
                }
            sub.push_back("--preset=" + p);
            cli::args pa("report", sub, flags, {"--json"});
            all.push_back(snip::io::make_chips_report(
                cli::plan_from_args(pa, cli::config_from_args(pa), a.has("--json")).file));
        }
    }
    if (a.has("--json")) {
        nlohmann::json j = nlohmann::json::array();
        for (const auto& s : all) j.push_back(snip::io::to_json(s));
        std::printf("%s\n", (all.size() == 1 ? j[0] : j).dump(2).c_str());
        return 0;
    }
    for (const auto& s : all) std::fputs(snip::io::to_text(s).c_str(), stdout);
    if (all.size() > 1) std::fputs(snip::io::side_by_side_text(all).c_str(), stdout);
    return 0;
}

const std::string usage = std::string(
    "snip-chips report: coverage, chips per image and pixels of a chip plan\n\n"
    "usage: snip-chips report --chips chips.json [--annotations FILE] [--json]\n"
    "       snip-chips report --annotations FILE [--preset default,sniper_coco] [plan options] [--json]\n\n"
    "  --chips FILE        a chips JSON written by `snip-chips plan`; it is checked against\n"
    "                      its annotation file (--annotations, else the one it names) and\n"
    "                      its config before anything is counted\n"
    "  --json              print JSON instead of tables\n"
    "Without --chips the dataset is planned in memory with the plan options below; several\n"
    "comma-separated presets are planned and shown side by side.\n\n") +
    cli::plan_flags_help +
    "\nPixels: 'chips, as cut' is the area of every chip in its scaled image; 'padded' counts\n"
    "each chip as a full chip-size square (the network input); single scale resizes the\n"
    "image to short side 800, long side at most 1333; full pyramid is every scale, whole.";

} // namespace

SNIP_COMMAND("report", "coverage, chips and pixels of a plan (table or --json)", usage, run_report);
