// snip-chips: plan SNIPER chips for a COCO-format dataset, report their cost, draw them.
// With no argument it runs the embedded demo (see `snip-chips demo --help`).
#include "cli.hpp"

#include <string>

int main(int argc, char** argv) {
    const std::string title = "snip-chips: SNIPER chip planning (snip " +
                              std::to_string(SNIP_VERSION_MAJOR) + "." +
                              std::to_string(SNIP_VERSION_MINOR) + "." +
                              std::to_string(SNIP_VERSION_PATCH) + ")";
    return cli::run_main(argc, argv, title, "demo", "");
}
