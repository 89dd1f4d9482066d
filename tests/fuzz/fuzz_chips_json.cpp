// Fuzzer of the chips JSON reader and of config_from_json: bytes -> parse_json_text (as
// read_json_file does) -> config_from_json (the document, and its "config" member) and
// chips_from_json. What they accept must be valid and must read back to the same JSON
// after writing (config_to_json / to_json).
#include "fuzz_util.hpp"

#include <snip/io/chips_json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

const std::string k_source = "fuzz_chips.json";

void check_config(const snip::plan_config& c) {
    fuzz::expect(fuzz::accepts([&] { c.validate("config"); }),
                 "config_from_json returned an invalid config");
    const nlohmann::json once = snip::io::config_to_json(c);
    snip::plan_config back;
    fuzz::expect(fuzz::accepts([&] {
                     back = snip::io::config_from_json(nlohmann::json::parse(once.dump()), "again");
                 }),
                 "config_to_json output is rejected: ", once.dump());
    const nlohmann::json twice = snip::io::config_to_json(back);
    fuzz::expect(twice == once, "config round trip changed ", once.dump(), " into ", twice.dump());
}

void check_chips(const snip::io::chips_file& f) {
    const std::size_t ns = f.config.scales.size();
    for (const auto& im : f.images) {
        fuzz::expect(im.width > 0 && im.height > 0, "image ", im.id, " is ", im.width, "x",
                     im.height);
        fuzz::expect(im.scales.size() == ns, "image ", im.id, " has ", im.scales.size(),
                     " scales, config ", ns);
        for (const auto& c : im.chips) {
            fuzz::expect(c.scale >= 0 && static_cast<std::size_t>(c.scale) < ns, "chip scale ",
                         c.scale);
            fuzz::expect(c.box.x1 <= c.box.x2 && c.box.y1 <= c.box.y2, "inverted chip box");
            fuzz::expect(c.rect.x1 <= c.rect.x2 && c.rect.y1 <= c.rect.y2, "inverted chip rect");
        }
    }
    check_config(f.config);
    const nlohmann::json once = snip::io::to_json(f);
    snip::io::chips_file back;
    fuzz::expect(fuzz::accepts([&] {
                     back = snip::io::chips_from_json(nlohmann::json::parse(once.dump()), "again");
                 }),
                 "to_json output is rejected by chips_from_json");
    fuzz::expect(snip::io::to_json(back) == once, "chips round trip changed the file");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    nlohmann::json j;
    if (!fuzz::parse_json(data, size, k_source, j))
        return 0;
    snip::plan_config c;
    if (fuzz::accepts([&] { c = snip::io::config_from_json(j, k_source); }, k_source))
        check_config(c);
    if (j.is_object() && j.contains("config") &&
        fuzz::accepts([&] { c = snip::io::config_from_json(j["config"], k_source); }, k_source))
        check_config(c);
    snip::io::chips_file f;
    if (fuzz::accepts([&] { f = snip::io::chips_from_json(j, k_source); }, k_source))
        check_chips(f);
    return 0;
}
