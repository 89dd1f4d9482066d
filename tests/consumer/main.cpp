// A downstream program: plans the chips of one image with the public headers only.
#include <snip/plan.hpp>

#include <cstdio>
#include <vector>

int main() {
    const auto cfg = snip::plan_config::sniper_coco();
    std::vector<snip::box<float>> gt = {{10, 10, 40, 40}, {300, 200, 420, 330}};
    snip::plan_workspace ws;
    auto plan = snip::plan_image(cfg, 640, 480, snip::as_box_view(std::as_const(gt)), {}, ws);
    std::printf("%zu positive chips\n", plan.positives.size());
    return plan.positives.empty() ? 1 : 0;
}
