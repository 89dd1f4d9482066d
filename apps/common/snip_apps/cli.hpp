// cli.hpp: the small command framework of snip-chips (and snip-train). Each cmd_*.cpp registers one
// subcommand with SNIP_COMMAND; main.cpp dispatches.
#pragma once

#include <snip/core/error.hpp>

#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cli {

struct command {
    std::string name;
    std::string summary;
    std::string usage;  ///< full --help text
    std::function<int(const std::vector<std::string>&)> run;
};

/// The program's name in messages ("see <program> <command> --help"); snip-train sets
/// its own.
inline std::string& program() {
    static std::string p = "snip-chips";
    return p;
}

inline std::map<std::string, command>& registry() {
    static std::map<std::string, command> r;
    return r;
}

struct registrar {
    explicit registrar(command c) { registry()[c.name] = std::move(c); }
};

/// @brief Parsed flags of one subcommand: --name value, --name=value and bare --switch.
/// Unknown flags are an error naming the flag.
class args {
public:
    /// @param known flags that take a value; @param switches flags without value.
    args(const std::string& cmd, const std::vector<std::string>& argv,
         const std::vector<std::string>& known, const std::vector<std::string>& switches = {})
        : cmd_(cmd) {
        for (std::size_t i = 0; i < argv.size(); ++i) {
            std::string a = argv[i], v;
            bool has_v = false;
            if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos)
                v = a.substr(eq + 1), a = a.substr(0, eq), has_v = true;
            if (a == "--help" || a == "-h") {
                help_ = true;
                continue;
            }
            if (contains(switches, a)) {
                switches_.push_back(a);
                continue;
            }
            if (!contains(known, a))
                snip::fail(cmd_, ": unknown option '", a, "' (see ", program(), " ", cmd_, " --help)");
            if (!has_v) {
                if (i + 1 >= argv.size()) snip::fail(cmd_, ": option ", a, " needs a value");
                v = argv[++i];
            }
            values_[a] = v;
        }
    }
    bool help() const { return help_; }
    bool has(const std::string& k) const { return values_.count(k) || contains(switches_, k); }
    std::optional<std::string> get(const std::string& k) const {
        auto it = values_.find(k);
        if (it == values_.end()) return std::nullopt;
        return it->second;
    }
    std::string get_or(const std::string& k, const std::string& d) const {
        return get(k).value_or(d);
    }
    std::string required(const std::string& k) const {
        auto v = get(k);
        if (!v) snip::fail(cmd_, ": option ", k, " is required (see ", program(), " ", cmd_, " --help)");
        return *v;
    }
    long long integer(const std::string& k, long long d) const {
        auto v = get(k);
        if (!v) return d;
        try {
            std::size_t p = 0;
            long long x = std::stoll(*v, &p);
            if (p == v->size()) return x;
        } catch (const std::exception&) {
        }
        snip::fail(cmd_, ": option ", k, " expects an integer, got '", *v, "'");
    }
    double number(const std::string& k, double d) const {
        auto v = get(k);
        if (!v) return d;
        try {
            std::size_t p = 0;
            double x = std::stod(*v, &p);
            if (p == v->size()) return x;
        } catch (const std::exception&) {
        }
        snip::fail(cmd_, ": option ", k, " expects a number, got '", *v, "'");
    }

private:
    static bool contains(const std::vector<std::string>& v, const std::string& s) {
        for (const auto& x : v)
            if (x == s) return true;
        return false;
    }
    std::string cmd_;
    bool help_ = false;
    std::map<std::string, std::string> values_;
    std::vector<std::string> switches_;
};

/// @brief The main() of a program made of registered subcommands: with no argument it
/// runs `default_command`; `--help` lists the commands after `title`, then `epilogue`;
/// `<command> --help` prints that command's usage; errors print "<program> <command>:
/// error: ..." and return 1; an unknown command returns 2.
inline int run_main(int argc, char** argv, const std::string& title,
                    const std::string& default_command, const std::string& epilogue) {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto& reg = registry();
    const std::string prog = program();
    auto usage = [&] {
        std::printf("%s\n\nusage: %s <command> [options]   (no command: %s)\n\ncommands:\n",
                    title.c_str(), prog.c_str(), default_command.c_str());
        for (const auto& [name, c] : reg) std::printf("  %-10s %s\n", name.c_str(), c.summary.c_str());
        std::printf("\n%s`%s <command> --help` describes each command.\n", epilogue.c_str(),
                    prog.c_str());
    };
    std::string name = default_command;
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
        std::fprintf(stderr, "%s: unknown command '%s'\n\n", prog.c_str(), name.c_str());
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
        std::fprintf(stderr, "\n%s %s: error: %s\n", prog.c_str(), name.c_str(), e.what());
        return 1;
    }
}

} // namespace cli

#define SNIP_CLI_CAT2(a, b) a##b
#define SNIP_CLI_CAT(a, b) SNIP_CLI_CAT2(a, b)
/// Registers a subcommand: SNIP_COMMAND("plan", "summary", usage_text, function)
#define SNIP_COMMAND(name, summary, usage, fn)                                                     \
    static ::cli::registrar SNIP_CLI_CAT(snip_cmd_, __LINE__){::cli::command{name, summary, usage, fn}}
