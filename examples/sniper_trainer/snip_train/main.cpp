// snip-train: the SNIPER reference trainer's command line. With no argument it runs the
// embedded demo (see `snip-train demo --help`).
#define SNIPER_IMAGE_IMPLEMENTATION
#include "train_cli.hpp"

#include <string>

int main(int argc, char** argv) {
    cli::program() = "snip-train";
    const std::string title = "snip-train: SNIPER training on LibTorch (snip " +
                              std::to_string(SNIP_VERSION_MAJOR) + "." +
                              std::to_string(SNIP_VERSION_MINOR) + "." +
                              std::to_string(SNIP_VERSION_PATCH) + ")";
    return cli::run_main(argc, argv, title, "demo",
                         "The two-stage recipe: rpn -> proposals -> train (with --proposals) -> "
                         "detect -> eval.\n");
}
