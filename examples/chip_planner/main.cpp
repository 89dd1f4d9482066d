// snip-chips: plan SNIPER chips for a COCO-format dataset, report their cost, draw them.
// With no argument it runs the embedded demo (see `snip-chips demo --help`).
#include "cli.hpp"

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto& reg = cli::registry();
    auto usage = [&] {
        std::printf("snip-chips: SNIPER chip planning (snip %d.%d.%d)\n\n"
                    "usage: snip-chips <command> [options]   (no command: demo)\n\ncommands:\n",
                    SNIP_VERSION_MAJOR, SNIP_VERSION_MINOR, SNIP_VERSION_PATCH);
        for (const auto& [name, c] : reg) std::printf("  %-8s %s\n", name.c_str(), c.summary.c_str());
        std::printf("\n`snip-chips <command> --help` describes each command.\n");
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
        std::fprintf(stderr, "snip-chips: unknown command '%s'\n\n", name.c_str());
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
        std::fprintf(stderr, "snip-chips %s: error: %s\n", name.c_str(), e.what());
        return 1;
    }
}
