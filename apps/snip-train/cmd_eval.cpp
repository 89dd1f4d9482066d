// snip-train eval: COCO bbox AP of a results file (the same evaluator as snip-chips eval).
#include "train_cli.hpp"

#include <snip/eval/coco_eval.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace snip::apps;

int cmd_eval(const std::vector<std::string>& argv) {
    const cli::args a("eval", argv, {"--annotations", "--results"}, {"--per-class"});
    const std::string ann = a.required("--annotations"), res = a.required("--results");
    const snip::dataset gt = cli::load_annotations(ann);
    const snip::io::coco_eval_result r = snip::io::evaluate_coco_file(gt, res);
    std::printf("%s", snip::io::format_coco_summary(r).c_str());
    if (a.has("--per-class"))
        for (const auto& c : r.categories)
            std::printf("  %-16s gt %5zu  detections %6zu  AP %.3f  AP50 %.3f\n", c.name.c_str(), c.gt,
                        c.detections, c.ap, c.ap50);
    return 0;
}

} // namespace

SNIP_COMMAND("eval", "COCO bbox AP / AR of a results file",
             "snip-train eval: COCO bbox evaluation (101-point AP, area ranges, maxDets 1/10/100,\n"
             "crowd regions) of a COCO results file against the annotations.\n\n"
             "usage: snip-train eval --annotations FILE --results FILE [--per-class]\n",
             cmd_eval);
