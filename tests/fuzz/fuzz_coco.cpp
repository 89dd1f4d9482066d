// Fuzzer of the COCO annotations reader: bytes -> parse_json_text (as read_json_file
// does) -> parse_coco. A dataset it accepts must be consistent (parallel per-box arrays,
// boxes inside their image) and must survive to_coco_json -> parse_coco unchanged in shape.
#include "fuzz_util.hpp"

#include <snip/io/coco.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

namespace {

const std::string k_source = "fuzz_coco.json";

void check_dataset(const snip::dataset& ds, const snip::io::load_report& rep) {
    fuzz::expect(rep.images == ds.images.size(), "report says ", rep.images,
                 " images, dataset has ", ds.images.size());
    fuzz::expect(rep.boxes == ds.num_boxes(), "report says ", rep.boxes, " boxes, dataset has ",
                 ds.num_boxes());
    fuzz::expect(rep.warnings.size() <= snip::io::detail::max_warnings, rep.warnings.size(),
                 " warning lines");
    for (const auto& im : ds.images) {
        const std::size_t n = im.boxes.size();
        fuzz::expect(im.width > 0 && im.height > 0, "image ", im.id, " is ", im.width, "x",
                     im.height);
        fuzz::expect(im.ann_ids.size() == n && im.categories.size() == n && im.crowd.size() == n,
                     "image ", im.id, ": per-box arrays differ in length");
        for (const auto& b : im.boxes) {
            fuzz::expect(std::isfinite(b.x1) && std::isfinite(b.y1) && std::isfinite(b.x2) &&
                             std::isfinite(b.y2),
                         "image ", im.id, ": non-finite box");
            fuzz::expect(0 <= b.x1 && b.x1 <= b.x2 && b.x2 <= im.width && 0 <= b.y1 &&
                             b.y1 <= b.y2 && b.y2 <= im.height,
                         "image ", im.id, " (", im.width, "x", im.height, "): box [", b.x1, ", ",
                         b.y1, ", ", b.x2, ", ", b.y2, "] is not inside the image");
        }
        for (std::uint8_t c : im.crowd)
            fuzz::expect(c <= 1, "crowd flag ", int(c));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    nlohmann::json j;
    if (!fuzz::parse_json(data, size, k_source, j))
        return 0;
    snip::dataset ds;
    snip::io::load_report rep;
    if (!fuzz::accepts([&] { ds = snip::io::parse_coco(j, k_source, &rep); }, k_source)) return 0;
    check_dataset(ds, rep);

    // What snip writes, snip reads back: same images, boxes and categories.
    const std::string again = snip::io::to_coco_json(ds).dump();
    snip::dataset back;
    const bool ok = fuzz::accepts([&] {
        back =
            snip::io::parse_coco(snip::io::parse_json_text(again, "again"), "again", &rep);
    });
    fuzz::expect(ok, "to_coco_json output is rejected by parse_coco");
    check_dataset(back, rep);
    fuzz::expect(back.images.size() == ds.images.size() &&
                     back.categories.size() == ds.categories.size() &&
                     back.num_boxes() == ds.num_boxes(),
                 "round trip changed the dataset's shape");
    for (std::size_t i = 0; i < ds.images.size(); ++i) {
        const auto& a = ds.images[i];
        const auto& b = back.images[i];
        fuzz::expect(a.id == b.id && a.width == b.width && a.height == b.height &&
                         a.file_name == b.file_name && a.ann_ids == b.ann_ids &&
                         a.categories == b.categories && a.crowd == b.crowd,
                     "round trip changed images[", i, "]");
        // x + w may round: a box comes back within a few ulps
        auto near = [](double u, double v) {
            return std::fabs(u - v) <= 1e-9 * (1.0 + std::fabs(u));
        };
        for (std::size_t k = 0; k < a.boxes.size(); ++k) {
            const auto &p = a.boxes[k], &q = b.boxes[k];
            fuzz::expect(near(p.x1, q.x1) && near(p.y1, q.y1) && near(p.x2, q.x2) &&
                             near(p.y2, q.y2),
                         "round trip moved images[", i, "] box ", k, " [", p.x1, ", ", p.y1, ", ",
                         p.x2, ", ", p.y2, "] to [", q.x1, ", ", q.y1, ", ", q.x2, ", ", q.y2, "]");
        }
    }
    return 0;
}
