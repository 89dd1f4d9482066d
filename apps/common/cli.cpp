// cli.cpp: the command framework of cli.hpp on CLI11.
#include <snip_apps/cli.hpp>

#include <snip/core/error.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>

namespace snip::apps::cli {

namespace {

bool parse_integer(const std::string& v, long long& out) {
    try {
        std::size_t p = 0;
        out = std::stoll(v, &p);
        return p == v.size();
    } catch (const std::exception&) {
        return false;
    }
}

bool parse_number(const std::string& v, double& out) {
    try {
        std::size_t p = 0;
        out = std::stod(v, &p);
        return p == v.size() && std::isfinite(out);
    } catch (const std::exception&) {
        return false;
    }
}

/// An integer >= lo.
CLI::Validator integer_from(long long lo) {
    return CLI::Validator(
        [lo](std::string& v) -> std::string {
            long long x = 0;
            if (!parse_integer(v, x)) return "expected an integer, got '" + v + "'";
            if (x < lo) return snip::concat("expected an integer >= ", lo, ", got '", v, "'");
            return {};
        },
        lo == 1 ? "N > 0" : snip::concat("N >= ", lo));
}

/// An unsigned 64-bit integer (seeds).
CLI::Validator unsigned_integer() {
    return CLI::Validator(
        [](std::string& v) -> std::string {
            bool ok = !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
            if (ok) {
                try {
                    std::size_t p = 0;
                    (void)std::stoull(v, &p);
                    ok = p == v.size();
                } catch (const std::exception&) {
                    ok = false;
                }
            }
            return ok ? std::string() : "expected an unsigned 64-bit integer, got '" + v + "'";
        },
        "SEED");
}

/// A number in [lo, hi) (`open_lo`: in (lo, hi)).
CLI::Validator number_in(double lo, double hi, bool open_lo) {
    return CLI::Validator(
        [=](std::string& v) -> std::string {
            double x = 0;
            if (!parse_number(v, x)) return "expected a number, got '" + v + "'";
            if (open_lo ? !(x > lo) : !(x >= lo))
                return snip::concat("expected a number ", open_lo ? "> " : ">= ", lo, ", got '",
                                    v, "'");
            if (!(x < hi)) return snip::concat("expected a number < ", hi, ", got '", v, "'");
            return {};
        },
        "X");
}

CLI::Validator one_of(std::vector<std::string> choices) {
    return CLI::Validator(
        [choices](std::string& v) -> std::string {
            if (std::find(choices.begin(), choices.end(), v) != choices.end()) return {};
            std::string all;
            for (std::size_t i = 0; i < choices.size(); ++i)
                all += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + choices[i];
            return "expected " + all + ", got '" + v + "'";
        },
        "CHOICE");
}

CLI::Validator existing_file() {
    return CLI::Validator(
        [](std::string& v) -> std::string {
            std::error_code ec;
            if (std::filesystem::is_regular_file(v, ec)) return {};
            if (std::filesystem::exists(v, ec)) return "'" + v + "' is not a regular file";
            return "no such file '" + v + "'";
        },
        "FILE");
}

/// The checks of the flags whose name says what they hold, the same in every command.
const std::map<std::string, CLI::Validator>& checks() {
    static const double inf = std::numeric_limits<double>::infinity();
    static const std::map<std::string, CLI::Validator> c = {
        // counts
        {"--epochs", integer_from(1)},
        {"--batch", integer_from(1)},
        {"--chip-size", integer_from(1)},
        {"--stride", integer_from(1)},
        {"--width", integer_from(1)},
        {"--log-every", integer_from(1)},
        {"--world-size", integer_from(1)},
        {"--train-images", integer_from(1)},
        {"--val-images", integer_from(1)},
        {"--max-dets", integer_from(1)},
        // non-negative integers
        {"--seed", unsigned_integer()},
        {"--epoch", integer_from(0)},
        {"--negatives", integer_from(0)},
        {"--workers", integer_from(0)},
        {"--threads", integer_from(0)},
        {"--max-steps", integer_from(1)},
        {"--checkpoint-every", integer_from(0)},
        {"--rank", integer_from(0)},
        {"--index", integer_from(0)},
        {"--limit", integer_from(0)},
        {"--draw-count", integer_from(0)},
        {"--indent", integer_from(-1)},
        {"--image-id", integer_from(std::numeric_limits<long long>::min())},
        {"--max-side", integer_from(1)},
        // numbers
        {"--lr", number_in(0, inf, true)},
        {"--warmup-chips", number_in(0, inf, false)},
        {"--momentum", number_in(0, 1, false)},
        {"--weight-decay", number_in(0, inf, false)},
        {"--clip", number_in(0, inf, false)},
        {"--dist-timeout", number_in(0, inf, true)},
        // files read
        {"--annotations", existing_file()},
        {"--config", existing_file()},
        {"--chips", existing_file()},
        {"--weights", existing_file()},
        {"--init", existing_file()},
        // choices
        {"--depth", one_of({"18", "34", "50", "101"})},
        {"--bn", one_of({"trained", "frozen"})},
        {"--flip", one_of({"both", "random", "none"})},
    };
    return c;
}

bool is_number(const std::string& s) {
    double x = 0;
    return parse_number(s, x);
}

} // namespace

std::string& program() {
    static std::string p = "snip-chips";
    return p;
}

std::map<std::string, command>& registry() {
    static std::map<std::string, command> r;
    return r;
}

registrar::registrar(command c) { registry()[c.name] = std::move(c); }

args::args(const std::string& cmd, const std::vector<std::string>& argv,
           const std::vector<std::string>& known, const std::vector<std::string>& switches)
    : cmd_(cmd) {
    const std::string see = snip::concat(" (see ", program(), " ", cmd, " --help)");
    // A value flag directly followed by another flag, or last, lacks its value (CLI11 would
    // take the next flag as the value).
    for (std::size_t i = 0; i < argv.size(); ++i)
        if (std::find(known.begin(), known.end(), argv[i]) != known.end() &&
            (i + 1 == argv.size() ||
             (argv[i + 1].rfind("-", 0) == 0 && argv[i + 1].size() > 1 && !is_number(argv[i + 1]) &&
              argv[i + 1].find_first_of(",;:") == std::string::npos)))
            snip::fail(cmd, ": ", argv[i], " needs a value", see);

    CLI::App app(cmd, program() + " " + cmd);
    app.set_help_flag();
    app.allow_extras();
    std::map<std::string, std::string> parsed;
    std::map<std::string, CLI::Option*> options;
    for (const auto& k : known) {
        if (options.count(k)) continue; // a flag of two shared groups (--threads)
        CLI::Option* o = app.add_option(k, parsed[k]);
        o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
        if (auto it = checks().find(k); it != checks().end()) o->check(it->second);
        options[k] = o;
    }
    for (const auto& s : switches)
        if (!options.count(s)) options[s] = app.add_flag(s);
    std::vector<std::string> rev(argv.rbegin(), argv.rend());
    try {
        app.parse(rev);
    } catch (const CLI::ParseError& e) {
        snip::fail(cmd, ": ", e.what(), see);
    }
    for (const auto& r : app.remaining()) {
        if (r.rfind("-", 0) == 0) snip::fail(cmd, ": unknown option '", r, "'", see);
        snip::fail(cmd, ": unexpected argument '", r, "'", see);
    }
    for (const auto& k : known)
        if (options[k]->count() > 0) values_[k] = parsed[k];
    for (const auto& s : switches)
        if (options[s]->count() > 0) switches_.push_back(s);
}

bool args::has(const std::string& k) const {
    return values_.count(k) > 0 || std::find(switches_.begin(), switches_.end(), k) != switches_.end();
}

std::optional<std::string> args::get(const std::string& k) const {
    auto it = values_.find(k);
    if (it == values_.end()) return std::nullopt;
    return it->second;
}

std::string args::get_or(const std::string& k, const std::string& d) const {
    return get(k).value_or(d);
}

std::string args::required(const std::string& k) const {
    auto v = get(k);
    if (!v) snip::fail(cmd_, ": option ", k, " is required (see ", program(), " ", cmd_, " --help)");
    return *v;
}

long long args::integer(const std::string& k, long long d) const {
    auto v = get(k);
    if (!v) return d;
    long long x = 0;
    if (!parse_integer(*v, x)) snip::fail(cmd_, ": option ", k, " expects an integer, got '", *v, "'");
    return x;
}

double args::number(const std::string& k, double d) const {
    auto v = get(k);
    if (!v) return d;
    double x = 0;
    if (!parse_number(*v, x)) snip::fail(cmd_, ": option ", k, " expects a number, got '", *v, "'");
    return x;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

int run_main(int argc, char** argv, const std::string& title, const std::string& default_command,
             const std::string& epilogue) {
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

} // namespace snip::apps::cli
