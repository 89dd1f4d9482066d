// cmd_eval.cpp: `snip-chips eval`, COCO bbox or segm (--iou-type) evaluation of detections
// (COCO results format) against COCO annotations with pycocotools' COCOeval rules: the
// familiar 12-line summary, per-category AP with --per-class, or everything as --json.
#include <snip_apps/common.hpp>

#include <snip/eval/coco_eval.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace snip::apps;

/// A number of the per-class table: 3 decimals, "-" for undefined (-1).
std::string cell(double v) {
    if (v < 0) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", v);
    return buf;
}

int run_eval(const std::vector<std::string>& argv) {
    cli::args a("eval", argv, {"--annotations", "--results", "--iou-type"},
                {"--json", "--per-class"});
    snip::io::coco_eval_options opt;
    opt.type = snip::io::parse_iou_type(a.get_or("--iou-type", "bbox"), "--iou-type");
    const bool json = a.has("--json");
    const std::string ann = a.required("--annotations");
    const std::string res_path = a.required("--results");
    const snip::dataset ds = cli::load_annotations(ann, json);
    const auto dets = snip::io::read_detections(res_path, ds);
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = snip::io::evaluate_coco(ds, dets, opt);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (json) {
        std::printf("%s\n", snip::io::coco_eval_json(r).dump(2).c_str());
        return 0;
    }
    std::fprintf(stderr, "loaded %s: %zu detections; evaluated %zu categories in %.2f s\n", res_path.c_str(),
                 dets.size(), r.categories.size(), s);
    std::printf("iou type: %s\n", std::string(snip::io::to_string(r.type)).c_str());
    std::printf("%s", snip::io::format_coco_summary(r).c_str());
    if (a.has("--per-class")) {
        std::printf("\nper category (IoU 0.50:0.95, area all, maxDets 100; '-' = no ground truth):\n");
        std::printf("| id | name | gt | crowd | detections | AP | AP50 | AP75 | AR100 |\n");
        std::printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (const auto& c : r.categories)
            std::printf("| %d | %s | %zu | %zu | %zu | %s | %s | %s | %s |\n", c.id, c.name.c_str(), c.gt, c.crowd,
                        c.detections, cell(c.ap).c_str(), cell(c.ap50).c_str(), cell(c.ap75).c_str(),
                        cell(c.ar100).c_str());
    }
    return 0;
}

const std::string usage =
    "snip-chips eval: COCO bbox or segm evaluation (pycocotools' COCOeval rules, iouType\n"
    "'bbox' or 'segm')\n\n"
    "usage: snip-chips eval --annotations GT.json --results DETS.json [--iou-type bbox|segm]\n"
    "                       [--per-class] [--json]\n\n"
    "  --annotations FILE  COCO instances JSON (the ground truth)\n"
    "  --results FILE      detections in COCO results format:\n"
    "                      [{\"image_id\", \"category_id\", \"bbox\": [x, y, w, h], \"score\"}, ...]\n"
    "                      for segm each with \"segmentation\": an RLE at the image's size,\n"
    "                      {\"size\": [h, w], \"counts\": \"...\"} (\"bbox\" may then be left out)\n"
    "  --iou-type TYPE     bbox (default): boxes are matched; segm: instance masks are (every\n"
    "                      annotation needs a \"segmentation\", every result a mask)\n"
    "  --per-class         also print AP, AP50, AP75 and AR100 of every category\n"
    "  --json              print the 12 numbers, counts, the iou type and per-category results\n"
    "                      as JSON\n\n"
    "Prints AP @[.50:.95], AP50, AP75, AP small/medium/large, AR @1/10/100 detections and AR\n"
    "small/medium/large, as pycocotools' summarize() does; -1 marks a number without ground\n"
    "truth. Areas (px^2, closed ranges as in pycocotools): small [0, 32^2], medium [32^2, 96^2],\n"
    "large [96^2, 1e10]. A ground truth box's area is the annotation's \"area\" (the mask area\n"
    "in COCO's own files), as pycocotools reads it, so the per-size numbers are comparable with\n"
    "published ones; w * h of the box when the file has no \"area\".";

} // namespace

SNIP_COMMAND("eval", "COCO bbox or segm AP/AR of detections (pycocotools' rules)", usage, run_eval);
