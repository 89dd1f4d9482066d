// Fuzzer of the proposals reader: bytes -> parse_json_text (as read_json_file does) ->
// parse_proposals against a fixed dataset. Accepted proposals must be one list per
// image, boxes inside their image, scores finite.
#include "fuzz_util.hpp"

#include <snip/io/coco.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

const std::string k_source = "fuzz_proposals.json";

/// Images 1 (640 x 480), 2 (1 x 1) and 7 (100000 x 3).
snip::dataset make_dataset() {
    snip::dataset ds;
    ds.source = "fuzz_gt.json";
    for (auto [id, w, h] : {std::array<int, 3>{1, 640, 480}, {2, 1, 1}, {7, 100000, 3}}) {
        snip::image_record im;
        im.id = id;
        im.width = w;
        im.height = h;
        ds.images.push_back(im);
    }
    return ds;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const snip::dataset ds = make_dataset();
    nlohmann::json j;
    if (!fuzz::parse_json(data, size, k_source, j))
        return 0;
    std::vector<snip::image_proposals> props;
    if (!fuzz::accepts([&] { props = snip::io::parse_proposals(j, k_source, ds); }, k_source))
        return 0;
    fuzz::expect(props.size() == ds.images.size(), props.size(), " proposal lists for ",
                 ds.images.size(), " images");
    for (std::size_t i = 0; i < props.size(); ++i) {
        const auto& im = ds.images[i];
        const auto& p = props[i];
        fuzz::expect(p.boxes.size() == p.scores.size(), "image ", im.id, ": ", p.boxes.size(),
                     " boxes, ", p.scores.size(), " scores");
        for (std::size_t k = 0; k < p.boxes.size(); ++k) {
            const auto& b = p.boxes[k];
            fuzz::expect(0 <= b.x1 && b.x1 <= b.x2 && b.x2 <= im.width && 0 <= b.y1 &&
                             b.y1 <= b.y2 && b.y2 <= im.height,
                         "image ", im.id, " (", im.width, "x", im.height, "): proposal [", b.x1,
                         ", ", b.y1, ", ", b.x2, ", ", b.y2, "] is not inside the image");
            fuzz::expect(std::isfinite(p.scores[k]), "image ", im.id, ": proposal ", k,
                         " has score ", p.scores[k], " after reading a finite number");
        }
    }
    return 0;
}
