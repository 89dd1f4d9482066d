// The walker of the bad-input catalogue (tests/bad_inputs/<case>/case.json), shared by
// tests/test_bad_inputs.cpp (JSON readers, configs, the planner) and
// tests/test_torch_trainer_bad_inputs.cpp (images, weights, checkpoints, the trainer).
//
// A case folder holds its input file(s) and case.json:
//   {"reader": "coco",                  which reader to call (see the programs' tables)
//    "input": "annotations.json",       the file it reads (the message must name it)
//    "dataset": "...", "config": "...", "proposals": "...",   further files of some readers
//    "generate": "many_boxes",          the input is made at test time instead (no file)
//    "expect": ["substring", ...],      the reader must throw snip::error containing each
//    "expect_ok": true, "checks": {...} ... or succeed, and pass the reader's checks
//    "max_seconds": 10,                 time limit (default 5 s)
//    "note": "what the case is"}
// Every key is checked: a misspelt key, an unknown reader or a case without an expectation
// fails the program, so the catalogue cannot rot silently. This header includes no doctest:
// the programs report one CHECK per case from run_case()'s verdict. SNIP_BAD_INPUTS_VERBOSE=1
// prints every case's outcome and message.
#pragma once

#include <snip/core/error.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <typeinfo>
#include <vector>

namespace bad_inputs {

namespace fs = std::filesystem;

/// The catalogue folder.
inline fs::path root() {
    return fs::path(SNIP_TEST_DIR) / "bad_inputs";
}

/// Every reader of the catalogue and the program that runs it; a case naming another
/// reader fails in both programs.
inline const std::map<std::string, std::string>& all_readers() {
    static const std::map<std::string, std::string> r{
        {"coco", "test_bad_inputs"},
        {"proposals", "test_bad_inputs"},
        {"detections", "test_bad_inputs"},
        {"chips_json", "test_bad_inputs"},
        {"config", "test_bad_inputs"},
        {"plan", "test_bad_inputs"},
        {"image", "test_torch_trainer_bad_inputs"},
        {"weights", "test_torch_trainer_bad_inputs"},
        {"checkpoint", "test_torch_trainer_bad_inputs"},
        {"train", "test_torch_trainer_bad_inputs"}};
    return r;
}

/// One case of the catalogue. `problem` is set when case.json itself is broken.
struct test_case {
    std::string name;
    fs::path dir;
    nlohmann::json spec;
    std::string problem;

    std::string reader() const { return spec.value("reader", std::string()); }
    bool has(const char* key) const { return spec.contains(key); }
    std::string str(const char* key, const std::string& fallback = {}) const {
        return has(key) && spec[key].is_string() ? spec[key].get<std::string>() : fallback;
    }
    /// The path of the file named by `key` ("input", "dataset", ...), inside the case folder.
    std::string file(const char* key) const { return (dir / str(key)).string(); }
    std::string generate() const { return str("generate"); }
    const nlohmann::json& checks() const {
        static const nlohmann::json none = nlohmann::json::object();
        return has("checks") ? spec["checks"] : none;
    }
};

/// What a reader leaves for the verdict besides its outcome.
struct report {
    std::string primary;               ///< path the error must name ("" = none required)
    std::vector<std::string> problems; ///< failed checks and "loses nothing" violations
    void check(bool ok, const std::string& what) {
        if (!ok) problems.push_back(what);
    }
};

/// A reader: runs the case (throwing on a refused input); records checks in `report`.
using reader_fn = std::function<void(const test_case&, report&)>;

/// case.json's well-formedness: "" or what is wrong.
inline std::string check_spec(const nlohmann::json& s) {
    static const std::set<std::string> keys{
        "reader",    "input",  "dataset",     "config", "proposals", "generate",      "expect",
        "expect_ok", "checks", "max_seconds", "note",   "boxes",     "with_optimizer"};
    if (!s.is_object()) return "case.json is not an object";
    for (auto it = s.begin(); it != s.end(); ++it)
        if (!keys.count(it.key())) return "case.json has an unknown key '" + it.key() + "'";
    if (!s.contains("reader") || !s["reader"].is_string())
        return "case.json has no \"reader\" string";
    if (!s.contains("note") || !s["note"].is_string() || s["note"].get<std::string>().empty())
        return "case.json has no \"note\" saying what the case is";
    const bool ok = s.value("expect_ok", false);
    const bool exp = s.contains("expect");
    if (ok == exp)
        return "case.json needs exactly one of \"expect\" (substrings) and \"expect_ok\": true";
    if (exp) {
        const auto& e = s["expect"];
        if (!e.is_array() || e.empty()) return "\"expect\" must be a non-empty array of strings";
        for (const auto& x : e)
            if (!x.is_string() || x.get<std::string>().empty())
                return "\"expect\" must be a non-empty array of strings";
    }
    if (s.contains("checks") && !ok) return "\"checks\" only go with \"expect_ok\"";
    if (s.contains("max_seconds") && !s["max_seconds"].is_number())
        return "\"max_seconds\" must be a number";
    for (const char* k : {"input", "dataset", "config", "proposals", "generate"})
        if (s.contains(k) && !s[k].is_string())
            return std::string("\"") + k + "\" must be a string";
    return {};
}

/// Every subfolder of the catalogue, sorted by name.
inline std::vector<test_case> load_all() {
    std::vector<test_case> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root(), ec)) {
        if (!e.is_directory()) continue;
        test_case c;
        c.name = e.path().filename().string();
        c.dir = e.path();
        const fs::path spec = c.dir / "case.json";
        std::ifstream in(spec);
        if (!in) {
            c.problem = "no case.json";
        } else {
            try {
                c.spec = nlohmann::json::parse(in);
                c.problem = check_spec(c.spec);
            } catch (const std::exception& ex) {
                c.problem = std::string("case.json does not parse: ") + ex.what();
            }
        }
        if (c.problem.empty() && c.has("input") && !c.has("generate") &&
            !fs::exists(c.file("input")) && c.spec.value("expect_ok", false))
            c.problem = "input " + c.str("input") + " is missing but the case expects success";
        out.push_back(std::move(c));
    }
    std::sort(out.begin(), out.end(),
              [](const test_case& a, const test_case& b) { return a.name < b.name; });
    return out;
}

/// Runs case `c` with `fn` and judges the outcome: "" when it matches case.json, otherwise
/// every difference (and the message the reader gave).
inline std::string run_case(const test_case& c, const reader_fn& fn) {
    if (!c.problem.empty()) return c.problem;
    report rep;
    if (c.has("input") && !c.has("generate")) rep.primary = c.file("input");
    enum { ok, snip_error, other_error } kind = ok;
    std::string msg;
    const auto t0 = std::chrono::steady_clock::now();
    try {
        fn(c, rep);
    } catch (const snip::error& e) {
        kind = snip_error;
        msg = e.what();
    } catch (const std::exception& e) {
        kind = other_error;
        msg = std::string(typeid(e).name()) + ": " + e.what();
    } catch (...) {
        kind = other_error;
        msg = "an exception that is not a std::exception";
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (const char* v = std::getenv("SNIP_BAD_INPUTS_VERBOSE"); v && *v)
        std::printf("%s (%.3f s): %s\n", c.name.c_str(), secs, kind == ok ? "ok" : msg.c_str());
    std::vector<std::string> why = rep.problems;
    const double limit = c.spec.value("max_seconds", 5.0);
    if (secs > limit)
        why.push_back("took " + std::to_string(secs) + " s, limit " + std::to_string(limit) + " s");
    if (c.spec.value("expect_ok", false)) {
        if (kind != ok) why.push_back("expected success, the reader threw");
    } else if (kind == ok) {
        why.push_back("expected a snip::error, the reader accepted the input");
    } else if (kind == other_error) {
        why.push_back("threw another exception type instead of snip::error");
    } else {
        for (const auto& e : c.spec["expect"]) {
            const std::string s = e.get<std::string>();
            if (msg.find(s) == std::string::npos) why.push_back("the message lacks '" + s + "'");
        }
        if (!rep.primary.empty() && msg.find(rep.primary) == std::string::npos)
            why.push_back("the message does not name the file " + rep.primary);
    }
    if (why.empty()) return {};
    std::string s;
    for (const auto& w : why)
        s += (s.empty() ? "" : "; ") + w;
    if (!msg.empty()) s += " [message: " + msg + "]";
    return s;
}

/// Verdicts of every case whose reader belongs to `program` (see all_readers()), by case
/// name, run with `mine`. Cases of the other program are left out; a case whose reader no
/// program knows, or one of this program's readers missing from `mine`, gets a failing
/// verdict.
inline std::vector<std::pair<std::string, std::string>>
run_all(const std::string& program, const std::map<std::string, reader_fn>& mine) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& c : load_all()) {
        if (!c.problem.empty()) {
            out.emplace_back(c.name, c.problem);
            continue;
        }
        const std::string r = c.reader();
        const auto owner = all_readers().find(r);
        if (owner == all_readers().end()) {
            std::string known;
            for (const auto& [k, v] : all_readers())
                known += (known.empty() ? "" : ", ") + k;
            out.emplace_back(c.name, "unknown reader '" + r + "' (known: " + known + ")");
        } else if (owner->second == program) {
            const auto fn = mine.find(r);
            out.emplace_back(c.name, fn == mine.end()
                                         ? "reader '" + r + "' is not implemented by " + program
                                         : run_case(c, fn->second));
        }
    }
    return out;
}

/// A whole file as a string ("" when absent).
inline std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// A fresh scratch folder under the system temp folder.
inline fs::path scratch(const std::string& name) {
    const fs::path d = fs::temp_directory_path() / ("snip_bad_inputs_" + name);
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

} // namespace bad_inputs
