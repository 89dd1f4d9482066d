// snip-train eval: COCO bbox or segm AP of a results file (the same evaluator as
// snip-chips eval).
#include "train_cli.hpp"

#include <snip/eval/coco_eval.hpp>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

namespace {

using namespace snip::apps;

int cmd_eval(const std::vector<std::string>& argv) {
    const cli::args a("eval", argv, {"--annotations", "--results", "--limit", "--iou-type"},
                      {"--per-class"});
    snip::io::coco_eval_options opt;
    opt.type = snip::io::parse_iou_type(a.get_or("--iou-type", "bbox"), "--iou-type");
    const std::string ann = a.required("--annotations"), res = a.required("--results");
    snip::dataset gt = cli::load_annotations(ann);
    std::vector<snip::io::detection> dets = snip::io::read_detections(res, gt);
    const std::size_t all = gt.images.size();
    const long long limit = a.integer("--limit", 0);
    if (limit > 0 && std::size_t(limit) < all) {
        gt.images.resize(std::size_t(limit));
        std::set<std::int64_t> kept;
        for (const auto& im : gt.images) kept.insert(im.id);
        std::erase_if(dets, [&](const snip::io::detection& d) { return !kept.count(d.image_id); });
    }
    // Say which images are scored: an image without detections counts as all misses.
    std::set<std::int64_t> with;
    for (const auto& d : dets) with.insert(d.image_id);
    std::printf("scoring %zu of the %zu images of %s%s\n", gt.images.size(), all, ann.c_str(),
                gt.images.size() < all ? " (the first ones, --limit)" : "");
    if (with.size() < gt.images.size())
        std::fprintf(stderr,
                     "note: %s has detections for %zu of the %zu images scored; the others count "
                     "as misses (results of `detect --limit N`? then pass --limit N here)\n",
                     res.c_str(), with.size(), gt.images.size());
    const snip::io::coco_eval_result r = snip::io::evaluate_coco(gt, dets, opt);
    std::printf("iou type: %s\n", std::string(snip::io::to_string(r.type)).c_str());
    std::printf("%s", snip::io::format_coco_summary(r).c_str());
    if (a.has("--per-class"))
        for (const auto& c : r.categories)
            std::printf("  %-16s gt %5zu  detections %6zu  AP %.3f  AP50 %.3f\n", c.name.c_str(), c.gt,
                        c.detections, c.ap, c.ap50);
    return 0;
}

} // namespace

SNIP_COMMAND("eval", "COCO bbox or segm AP / AR of a results file",
             "snip-train eval: COCO bbox or segm evaluation (101-point AP, area ranges, maxDets\n"
             "1/10/100, crowd regions) of a COCO results file against the annotations.\n\n"
             "usage: snip-train eval --annotations FILE --results FILE [--iou-type bbox|segm]\n"
             "                       [--limit N] [--per-class]\n\n"
             "  --iou-type T bbox (default): boxes are matched; segm: instance masks are\n"
             "               (every annotation needs a \"segmentation\", every result an RLE\n"
             "               \"segmentation\": {\"size\": [h, w], \"counts\": \"...\"})\n"
             "  --limit N    score only the first N images of the annotation file (what\n"
             "               `snip-train detect --limit N --eval` scores)\n",
             cmd_eval);
