// A downstream program: the README's smallest example, built against the installed/exported
// package (find_package) and as a subproject (add_subdirectory).
#include <snip/chips.hpp> // link snip::snip (CMake: find_package(snip) or add_subdirectory)
#include <cstdio>
#include <vector>

int main() {
    auto cfg = snip::plan_config::sniper_coco();
    std::vector<float> gt = {10, 10, 40, 40,  300, 200, 420, 330};   // xyxy, original px
    snip::plan_workspace ws;                                          // reuse across images
    auto plan = snip::plan_image(cfg, 640, 480, snip::as_box_view(gt), {}, ws);
    for (const auto& c : plan.positives)
        std::printf("scale %d: %zu boxes in chip at %.0f,%.0f\n", c.scale, c.boxes.size(),
                    c.original().x1, c.original().y1);
    return plan.positives.empty() ? 1 : 0;
}
