// End to end on a handful of images: train() a tiny detector from scratch on four synthetic
// images (synthetic.hpp), detect them again with the multi-scale inference (inference.hpp),
// and score the results with the project's COCO evaluator: AP50 must reach 0.5. This is the
// whole chain the trainer ships (plan -> chips -> targets -> losses -> SGD -> proposals ->
// head -> merge -> COCO JSON -> AP) working together, not each part alone.
// LibTorch first: its headers bring glog, whose CHECK would otherwise replace doctest's.
#include <snip/train/inference.hpp>
#include <snip/train/synthetic.hpp>
#include <snip/train/train.hpp>

#include "test_util.hpp"

#include <snip/eval/coco_eval.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

TEST_CASE("overfit: a tiny detector learns four synthetic images to AP50 >= 0.5") {
    torch::manual_seed(7);
    snip::train::synthetic_options so;
    so.images = 4;
    so.min_side = 224;
    so.max_side = 256;
    so.classes = 2;
    so.min_objects = 2;
    so.max_objects = 4;
    so.min_object = 24.0;
    so.max_object_fraction = 0.5;
    so.seed = 11;
    const snip::train::synthetic_set set = snip::train::make_synthetic(so);

    snip::plan_config cfg; // one scale, every box valid, one chip per image
    cfg.name = "overfit";
    cfg.scales = {snip::scale_spec::by_factor(1.0)};
    cfg.ranges = {snip::valid_range{-1.0, -1.0}};
    cfg.chip_size = 256;

    snip::train::detector_options mo;
    mo.backbone.depth = 18;
    mo.backbone.width = 8;
    mo.backbone.frozen_stages = -1;
    mo.num_classes = 2;
    mo.rpn_channels = 64;
    mo.head_channels = 32;
    mo.fc_channels = 128;
    // Frozen (identity) BatchNorm: this width-8 network from scratch on 4 chips per step did
    // not learn with batch-statistics BN within this budget (loss 0.48 -> 0.21 in 160 steps
    // against 0.04 frozen, with BN momentum 0.1; the same at 0.3 in 100 steps); trained BN is
    // checked in the backbone tests. With these settings AP50 was 0.77 under 1 and 2 BLAS
    // threads on a 2-core x86-64 machine (0.39 before, 100 steps at a 4x smaller step).
    mo.backbone.train_bn = false;
    snip::train::FasterRCNN net(mo);

    snip::train::train_options o;
    o.epochs = 160;
    o.batch_size = 4;
    o.base_lr = 0.16; // 0.04 on the 4 chips' mean loss (train.hpp: lr x B / 16)
    o.warmup_chips = 40;
    o.warmup_start = 0.1;
    o.lr_steps = {80.0};
    o.clip_grad_norm = 10.0;
    o.flip = snip::train::flip_policy::none;
    o.workers = 1;
    o.seed = 3;
    o.quiet = true;
    const snip::train::train_result r =
        snip::train::train(net, set.ds, cfg, snip::train::synthetic_source(set), nullptr, o);
    REQUIRE(r.finished);

    const snip::train::inference_options io = snip::train::inference_options::for_plan(cfg);
    std::vector<snip::train::image_detections> dets;
    for (const auto& img : set.pixels) dets.push_back(snip::train::detect_image(net, img, io));
    const std::string path =
        (std::filesystem::temp_directory_path() / "snip_overfit_results.json").string();
    snip::train::write_results(path, set.ds, dets, snip::train::class_map(set.ds));
    const snip::io::coco_eval_result ev = snip::io::evaluate_coco_file(set.ds, path);
    std::printf("[overfit] %lld steps in %.1f s, loss %.3f -> %.3f; %zu boxes, AP %.3f AP50 %.3f\n",
                static_cast<long long>(r.steps), r.seconds, r.history.front().total,
                r.history.back().total, set.ds.num_boxes(), ev.stats[0], ev.stats[1]);
    CHECK(ev.stats[1] >= 0.5);
    CHECK(r.history.back().total < 0.5 * r.history.front().total);
}
