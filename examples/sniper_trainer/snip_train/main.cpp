// snip-train: the SNIPER reference trainer's command line. With no argument it runs the
// embedded demo (see `snip-train demo --help`).
#define SNIPER_IMAGE_IMPLEMENTATION
#include "train_cli.hpp"

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    cli::program() = "snip-train";
    std::vector<std::string> args(argv + 1, argv + argc);
    auto& reg = cli::registry();
    auto usage = [&] {
        std::printf("snip-train: SNIPER training on LibTorch (snip %d.%d.%d)\n\n"
                    "usage: snip-train <command> [options]   (no command: demo)\n\ncommands:\n",
                    SNIP_VERSION_MAJOR, SNIP_VERSION_MINOR, SNIP_VERSION_PATCH);
        for (const auto& [name, c] : reg) std::printf("  %-10s %s\n", name.c_str(), c.summary.c_str());
        std::printf("\nThe two-stage recipe: rpn -> proposals -> train (with --proposals) -> "
                    "detect -> eval.\n`snip-train <command> --help` describes each command.\n");
    };
    std::string name = "demo";
    if (!args.empty()) {
        if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
            usage();
            return 0;
        }
        name = args[0];
        args.erase(args.begin());
    }
    auto it = reg.find(name);
    if (it == reg.end()) {
        std::fprintf(stderr, "snip-train: unknown command '%s'\n\n", name.c_str());
        usage();
        return 2;
    }
    for (const auto& a : args)
        if (a == "--help" || a == "-h") {
            std::printf("%s\n", it->second.usage.c_str());
            return 0;
        }
    try {
        return it->second.run(args);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "\nsnip-train %s: error: %s\n", name.c_str(), e.what());
        return 1;
    }
}
