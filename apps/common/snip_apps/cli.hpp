// cli.hpp: the command framework of snip-chips and snip-train on CLI11. Each cmd_*.cpp
// registers one subcommand with SNIP_COMMAND; main() calls run_main, which dispatches.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace snip::apps::cli {

/// A subcommand: its name, one-line summary, --help text and body.
struct command {
    std::string name;
    std::string summary;
    std::string usage;  ///< full --help text
    std::function<int(const std::vector<std::string>&)> run;
};

/// The program's name in messages ("see <program> <command> --help"); snip-train sets
/// its own.
std::string& program();

/// The registered subcommands by name.
std::map<std::string, command>& registry();

struct registrar {
    explicit registrar(command c);
};

/// @brief The parsed flags of one subcommand (CLI11): `--name value`, `--name=value` and
/// bare `--switch`; a flag given twice keeps its last value.
///
/// Values are checked as they are parsed where the flag's name says what it holds (the
/// same meaning in every command): counts such as --epochs, --batch or --chip-size must be
/// positive integers, --seed, --epoch, --workers, --threads or --max-steps non-negative
/// integers, rates such as --lr positive numbers, --momentum in [0, 1), files such as
/// --annotations, --config, --chips, --weights or --init must exist, and --depth, --bn
/// and --flip must be one of their choices. A flag without its value ("--max-steps needs a
/// value"), an unknown flag and a stray argument are errors naming them.
class args {
public:
    /// @param known flags that take a value; @param switches flags without value.
    /// @throws snip::error naming the command and the flag.
    args(const std::string& cmd, const std::vector<std::string>& argv,
         const std::vector<std::string>& known, const std::vector<std::string>& switches = {});

    bool has(const std::string& k) const;
    std::optional<std::string> get(const std::string& k) const;
    std::string get_or(const std::string& k, const std::string& d) const;
    /// The value of `k`; throws snip::error saying that it is required when absent.
    std::string required(const std::string& k) const;
    /// The value of `k` as an integer (`d` when absent); throws snip::error otherwise.
    long long integer(const std::string& k, long long d) const;
    /// The value of `k` as a number (`d` when absent); throws snip::error otherwise.
    double number(const std::string& k, double d) const;

private:
    std::string cmd_;
    std::map<std::string, std::string> values_;
    std::vector<std::string> switches_;
};

/// `s` cut at every `sep` (empty pieces kept).
std::vector<std::string> split(const std::string& s, char sep);

/// @brief The main() of a program made of registered subcommands: with no argument it
/// runs `default_command`; `--help` lists the commands after `title`, then `epilogue`;
/// `<command> --help` prints that command's usage; errors print "<program> <command>:
/// error: ..." and return 1; an unknown command returns 2.
int run_main(int argc, char** argv, const std::string& title, const std::string& default_command,
             const std::string& epilogue);

} // namespace snip::apps::cli

#define SNIP_CLI_CAT2(a, b) a##b
#define SNIP_CLI_CAT(a, b) SNIP_CLI_CAT2(a, b)
/// Registers a subcommand: SNIP_COMMAND("plan", "summary", usage_text, function)
#define SNIP_COMMAND(name, summary, usage, fn)                                                     \
    static ::snip::apps::cli::registrar SNIP_CLI_CAT(snip_cmd_, __LINE__){                         \
        ::snip::apps::cli::command{name, summary, usage, fn}}
