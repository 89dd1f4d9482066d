// snip-chips: plan SNIPER chips for a COCO-format dataset, report their cost, draw them.
// With no argument it runs the embedded demo (see `snip-chips demo --help`).
#include <snip_apps/cli.hpp>

#include <snip/core/version.hpp>

#include <string>

int main(int argc, char** argv) {
    const std::string title = "snip-chips: SNIPER chip planning (snip " SNIP_VERSION_STRING ")";
    return snip::apps::cli::run_main(argc, argv, title, "demo", "");
}
