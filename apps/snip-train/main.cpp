// snip-train: the SNIPER reference trainer's command line. With no argument it runs the
// embedded demo (see `snip-train demo --help`).
#include "train_cli.hpp"

#include <snip/core/version.hpp>

#include <string>

int main(int argc, char** argv) {
    snip::apps::cli::program() = "snip-train";
    const std::string title = "snip-train: SNIPER training on LibTorch (snip " SNIP_VERSION_STRING ")";
    return snip::apps::cli::run_main(argc, argv, title, "demo",
                         "The two-stage recipe: rpn -> proposals -> train (with --proposals) -> "
                         "detect -> eval.\n");
}
