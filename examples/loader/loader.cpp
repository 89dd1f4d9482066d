// A detector's SNIPER data loader on snip: per epoch, plan the dataset's chips (positive
// chips covering every valid box; with proposals, negative chips mined from them), then
// for every chip cut its pixels from the original image, map the ground truth into it, lay
// the anchors and label them for the RPN. A detector would feed `pixels`, `gt` and
// `labels` to its network; here the loop counts what it produced.
//
//   loader ANNOTATIONS.json IMAGES_DIR [PROPOSALS.json] [--epochs N] [--limit N]
//
// PROPOSALS.json is a trained RPN's output in COCO results format (snip-train proposals);
// without it the epoch has positive chips only, as SNIPER's first stage.
#include <snip/chips.hpp>   // plan, negatives, chip ground truth, crop, anchors, RPN labels
#include <snip/io/coco.hpp> // read_coco, read_proposals (target snip::io)

#include <stb_image.h> // any decoder will do: cut_chip reads an image_view

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

int main(int argc, char** argv) try {
    std::vector<std::string> pos;
    int epochs = 2;
    std::size_t limit = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if ((a == "--epochs" || a == "--limit") && i + 1 < argc) {
            const long v = std::strtol(argv[++i], nullptr, 10);
            snip::require(v > 0, a, " must be a positive count, got '", argv[i], "'");
            (a == "--epochs" ? void(epochs = int(v)) : void(limit = std::size_t(v)));
        } else {
            pos.push_back(a);
        }
    }
    snip::require(pos.size() == 2 || pos.size() == 3,
                  "usage: loader ANNOTATIONS.json IMAGES_DIR [PROPOSALS.json] [--epochs N] [--limit N]");
    snip::dataset ds = snip::io::read_coco(pos[0]);
    if (limit > 0 && ds.images.size() > limit) ds.images.resize(limit);
    std::vector<snip::image_proposals> props;
    if (pos.size() == 3) props = snip::io::read_proposals(pos[2], ds);

    const snip::plan_config cfg = snip::plan_config::sniper_coco();
    const auto norm = snip::pixel_transform::normalise({0.485f, 0.456f, 0.406f},
                                                       {0.229f, 0.224f, 0.225f});
    // SNIPER's 21 anchors (stride 16, ratios 0.5 / 1 / 2, scales 2, 4, 7, 10, 13, 16, 24),
    // laid on the chip's 32 x 32 feature map.
    const snip::anchor_config ac = snip::anchor_config::sniper();
    const int cells = cfg.chip_size / int(ac.stride);
    const std::vector<snip::box<float>> anchors =
        snip::grid_anchors<float>(ac.templates(), cells, cells, ac.stride);
    const snip::rpn_options rpn = snip::rpn_options::sniper();

    std::vector<float> pixels(std::size_t(3) * cfg.chip_size * cfg.chip_size);
    const auto chip_view = snip::image_view<float>::planar(pixels.data(), cfg.chip_size,
                                                           cfg.chip_size, 3);
    for (int epoch = 0; epoch < epochs; ++epoch) {
        snip::dataset_plan_options po;
        po.seed = 1;
        po.epoch = epoch; // re-plans: the stride draw and the negative sample change
        const auto plans = snip::plan_dataset(cfg, ds, props.empty() ? nullptr : &props, po);
        std::size_t chips = 0, negatives = 0, valid = 0, positive_anchors = 0;
        for (std::size_t i = 0; i < ds.images.size(); ++i) {
            const snip::image_record& im = ds.images[i];
            int w = 0, h = 0, n = 0;
            const std::string path = pos[1] + "/" + im.file_name;
            unsigned char* px = stbi_load(path.c_str(), &w, &h, &n, 3);
            snip::require(px != nullptr, path, ": cannot decode (", stbi_failure_reason(), ")");
            snip::require(w == im.width && h == im.height, path, ": the image is ", w, " x ", h,
                          ", the annotations say ", im.width, " x ", im.height);
            const auto src = snip::image_view<const unsigned char>::interleaved(px, w, h, 3);
            std::vector<snip::chip> todo = plans[i].plan.positives;
            for (int k : plans[i].sampled) todo.push_back(plans[i].negatives[std::size_t(k)]);
            negatives += plans[i].sampled.size();
            for (const snip::chip& c : todo) {
                const bool flip = (chips + i) % 2 == 1;
                const snip::chip_geometry g = snip::cut_chip(src, cfg, c, flip, chip_view, norm);
                std::vector<snip::chip_gt> gt = snip::assign_chip(
                    cfg, c, im.width, im.height, snip::as_box_view(im.boxes), im.crowd);
                std::vector<snip::box<float>> boxes;
                std::vector<snip::gt_state> states;
                for (const snip::chip_gt& b : gt) {
                    // mirror the boxes with the pixels (inclusive pixels: x -> width - 1 - x)
                    boxes.push_back(flip ? snip::box<float>{float(g.width - 1) - b.b.x2, b.b.y1,
                                                            float(g.width - 1) - b.b.x1, b.b.y2}
                                         : b.b);
                    states.push_back(b.state);
                    valid += b.state == snip::gt_state::valid;
                }
                const snip::rpn_assignment labels =
                    snip::assign_rpn(anchors, boxes, states, rpn, snip::mix(epoch, chips));
                positive_anchors += labels.counts.positive;
                ++chips;
            }
            stbi_image_free(px);
        }
        std::printf("epoch %d: %zu images, %zu chips (%zu negative), %zu valid boxes, "
                    "%zu positive anchors sampled\n",
                    epoch, ds.images.size(), chips, negatives, valid, positive_anchors);
        snip::require(chips > 0, "no chip was planned");
    }
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "loader: %s\n", e.what());
    return 1;
}
