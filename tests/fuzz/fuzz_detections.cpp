// Fuzzer of the detections reader and of the evaluation behind it: bytes ->
// parse_json_text (as read_detections does) -> parse_detections -> evaluate_coco.
// The input is either a results array, evaluated against a fixed ground truth, or
// {"gt": <COCO annotations>, "dets": <results array>}, which fuzzes the ground truth
// too. Every summary number and per-category result must be -1 or in [0, 1].
#include "fuzz_util.hpp"

#include <snip/eval/coco_eval.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

namespace {

const std::string k_source = "fuzz_dets.json";

/// Three images, categories 1 and 3, a crowd box and boxes of every area range.
const char* const k_gt = R"({
  "images": [{"id": 1, "width": 640, "height": 480}, {"id": 2, "width": 100, "height": 50},
             {"id": 5, "width": 3000, "height": 2000}],
  "categories": [{"id": 1, "name": "a"}, {"id": 3, "name": "b"}],
  "annotations": [
    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 200, 200]},
    {"id": 2, "image_id": 1, "category_id": 1, "bbox": [300, 10, 50, 50]},
    {"id": 3, "image_id": 1, "category_id": 3, "bbox": [400, 10, 20, 20]},
    {"id": 4, "image_id": 2, "category_id": 1, "bbox": [0, 0, 100, 50], "iscrowd": 1},
    {"id": 5, "image_id": 5, "category_id": 3, "bbox": [0, 0, 0, 10]},
    {"id": 6, "image_id": 5, "category_id": 3, "bbox": [1000, 500, 1999, 1499]}]})";

bool in_unit(double v) {
    return v == -1.0 || (v >= 0.0 && v <= 1.0);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const snip::dataset fixed_gt =
        snip::io::parse_coco(nlohmann::json::parse(k_gt), "fuzz_gt.json");
    nlohmann::json j;
    if (!fuzz::accepts(
            [&] { j = snip::io::parse_json_text(fuzz::text(data, size), k_source); },
            k_source))
        return 0;
    snip::dataset own_gt;
    const snip::dataset* gt = &fixed_gt;
    const nlohmann::json* dets_json = &j;
    if (j.is_object() && j.contains("gt") && j.contains("dets")) {
        if (!fuzz::accepts([&] { own_gt = snip::io::parse_coco(j["gt"], k_source); }, k_source))
            return 0;
        gt = &own_gt;
        dets_json = &j["dets"];
    }
    std::vector<snip::io::detection> dets;
    if (!fuzz::accepts([&] { dets = snip::io::parse_detections(*dets_json, k_source, *gt); },
                       k_source))
        return 0;
    snip::io::coco_eval_result r;
    // The reader checked everything evaluate_coco checks: evaluation must not fail.
    snip::io::coco_eval_options opt;
    opt.keep_curves = dets.size() % 2 == 1;
    fuzz::expect(fuzz::accepts([&] { r = snip::io::evaluate_coco(*gt, dets, opt); }),
                 "evaluate_coco rejected detections parse_detections accepted");
    for (std::size_t i = 0; i < r.stats.size(); ++i)
        fuzz::expect(in_unit(r.stats[i]), r.stat_names[i], " is ", r.stats[i]);
    for (const auto& c : r.categories)
        fuzz::expect(in_unit(c.ap) && in_unit(c.ap50) && in_unit(c.ap75) && in_unit(c.ar100),
                     "category ", c.id, ": AP ", c.ap, ", AP50 ", c.ap50, ", AP75 ", c.ap75,
                     ", AR100 ", c.ar100);
    for (double v : r.precision)
        fuzz::expect(in_unit(v), "precision ", v);
    for (double v : r.recall)
        fuzz::expect(in_unit(v), "recall ", v);
    fuzz::expect(r.detections == dets.size(), r.detections, " detections counted of ", dets.size());
    (void)snip::io::format_coco_summary(r);
    (void)snip::io::coco_eval_json(r).dump();
    return 0;
}
