// snip-train demo: the whole SNIPER recipe on an embedded synthetic dataset, on the CPU, in
// a few minutes: data -> stage 1 (RPN) -> proposals -> negative chips -> stage 2 -> multi-scale
// detection -> COCO AP, with pictures.
#include "train_cli.hpp"

#include <snip_apps/draw_detections.hpp>

#include <snip/train/inference.hpp>
#include <snip/train/synthetic.hpp>

#include <snip/io/chips_json.hpp>
#include <snip/eval/coco_eval.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using namespace snip::apps;

namespace fs = std::filesystem;

/// The demo's chip plan for images of 320..640 px and objects of 12 px up to 60% of the
/// shorter side: chips of 256 px at 2x (objects below 40 px), 1x (24..160 px) and 0.4x
/// (above 120 px: the whole image in about one chip).
snip::plan_config demo_plan() {
    snip::plan_config c;
    c.name = "demo";
    c.scales = {snip::scale_spec::by_factor(2.0), snip::scale_spec::by_factor(1.0),
                snip::scale_spec::by_factor(0.4)};
    c.ranges = {snip::valid_range{-1.0, 40.0}, snip::valid_range{24.0, 160.0},
                snip::valid_range{120.0, -1.0}};
    c.chip_size = 256;
    c.stride = 32;
    c.negatives_per_image = 1;
    c.min_proposals_finest = 10;
    c.min_proposals_other = 5;
    return c;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int cmd_demo(const std::vector<std::string>& argv) {
    const cli::args a("demo", argv,
                      {"--out", "--train-images", "--val-images", "--epochs", "--rpn-epochs",
                       "--depth", "--width", "--batch", "--lr", "--seed", "--threads", "--classes",
                       "--bn", "--model", "--head"},
                      {"--quiet", "--masks"});
    train_cli::set_threads(a);
    const auto t0 = std::chrono::steady_clock::now();
    const fs::path out = a.get_or("--out", "snip-train-demo");
    const bool quiet = a.has("--quiet");
    fs::create_directories(out);

    // 1. Data: textured images with shapes from 12 px to most of the image.
    snip::train::synthetic_options so;
    so.images = int(a.integer("--train-images", 64));
    so.classes = int(a.integer("--classes", 3));
    so.min_object = 12.0;
    so.seed = std::uint64_t(a.integer("--seed", 1));
    const snip::train::synthetic_set train = snip::train::make_synthetic(so);
    so.images = int(a.integer("--val-images", 16));
    so.seed += 1000;
    const snip::train::synthetic_set val = snip::train::make_synthetic(so);
    snip::train::write_synthetic(train, (out / "train").string());
    snip::train::write_synthetic(val, (out / "val").string());

    const snip::plan_config cfg = demo_plan();
    // The plan as a config file, for `snip-chips plan --config` and the snip-train commands.
    snip::io::write_atomically((out / "plan.json").string(),
                                       snip::io::config_to_json(cfg).dump(2));
    std::printf("[1/6] data: %zu training images (%zu objects) in %s/train, %zu validation images "
                "(%zu objects) in %s/val; chip plan %s/plan.json\n",
                train.ds.images.size(), train.ds.num_boxes(), out.c_str(), val.ds.images.size(),
                val.ds.num_boxes(), out.c_str(), out.c_str());
    const snip::train::class_map classes(train.ds);
    snip::train::detector_options mo = train_cli::network_from(a);
    mo.backbone.depth = int(a.integer("--depth", 18));
    mo.backbone.width = a.integer("--width", 16);
    mo.backbone.frozen_stages = -1; // from scratch: nothing pretrained to keep
    mo.backbone.train_bn = train_cli::bn_trained(a);
    mo.num_classes = classes.num_classes();
    // The demo's own, cheaper RCNN settings (a CPU budget of a few minutes): 6000 best anchors
    // before the training NMS and 128 sampled RoIs per chip (25% foreground) instead of the
    // original's all-anchor NMS and all 300 RoIs (detector.hpp).
    mo.train_proposals.pre_nms = 6000;
    mo.rcnn.batch = 128;
    mo.rcnn.fg_fraction = 0.25;
    mo.rpn_channels = 128;
    mo.head_channels = 64;
    mo.fc_channels = 256;
    mo.mask_channels = 64;  // --masks: the mask branch at the head's width,
    mo.mask_init_std = 0.0; // He's init (from scratch; detector_options::mask_init_std)
    torch::manual_seed(so.seed);

    snip::train::train_options to;
    to.batch_size = int(a.integer("--batch", 8));
    // The original's lr semantics (train.hpp): 0.04 on the sum over 16-chip groups is 0.02 on
    // a batch of 8 chips' mean loss.
    to.base_lr = a.number("--lr", 0.04);
    to.flip = snip::train::flip_policy::random; // half the chips of `both`: the demo's time budget
    to.warmup_chips = 20.0 * to.batch_size;
    to.warmup_start = 0.1;
    to.seed = so.seed;
    to.checkpoint_every = 0;
    to.log_every = 5;
    to.quiet = quiet;
    to.clip_grad_norm = 10.0;
    to.overwrite = true; // the demo is one fresh run: it replaces its own earlier outputs

    // 2. Stage 1: the RPN alone on positive chips.
    snip::train::FasterRCNN net(mo);
    {
        snip::train::train_options o = to;
        o.rpn_only = true;
        o.epochs = int(a.integer("--rpn-epochs", 2));
        o.lr_steps = {};
        o.out_dir = (out / "stage1").string();
        o.on_log = snip::apps::loss_png_writer(o.out_dir);
        const snip::train::train_result r =
            snip::train::train(net, train.ds, cfg, snip::train::synthetic_source(train), nullptr, o);
        std::printf("[2/6] stage 1 (RPN only): %lld steps in %.1f s, loss %.3f -> %.3f; %s/stage1/loss.png\n",
                    static_cast<long long>(r.steps), r.seconds, r.history.front().total,
                    r.history.back().total, out.c_str());
    }

    // 3. Proposals of the stage-1 RPN on every whole training image at the plan's scales.
    std::vector<snip::image_proposals> props(train.ds.images.size());
    {
        const auto t = std::chrono::steady_clock::now();
        snip::train::proposal_options po = mo.test_proposals;
        po.post_nms = 300;
        std::size_t n = 0;
        for (std::size_t i = 0; i < train.pixels.size(); ++i) {
            // The plan's scales (the demo's images are small), then NMS 0.7 over the scales as
            // the original (lib/dataset/imdb.py:102).
            props[i] = snip::train::propose_image(net, train.pixels[i], cfg.scales, po, 16, {}, 0.7);
            n += props[i].boxes.size();
        }
        snip::train::write_proposals((out / "proposals.json").string(), train.ds, props);
        std::printf("[3/6] proposals: %zu on %zu images in %.1f s -> %s/proposals.json\n", n,
                    props.size(), seconds_since(t), out.c_str());
    }

    // 4. Negative chips mined from them (epoch 0's plan, as stage 2 will draw it).
    {
        snip::dataset_plan_options po;
        po.seed = to.seed;
        const auto plans = snip::plan_dataset(cfg, train.ds, &props, po);
        std::size_t pos = 0, neg = 0, sampled = 0;
        for (const auto& p : plans) {
            pos += p.plan.positives.size();
            neg += p.negatives.size();
            sampled += p.sampled.size();
        }
        std::printf("[4/6] chips: %zu positive, %zu negative mined, %zu negative sampled per epoch "
                    "(%d per image)\n",
                    pos, neg, sampled, cfg.negatives_per_image);
    }

    // 5. Stage 2: the detector on positive and negative chips, re-planned every epoch. To save
    // CPU time it continues from stage 1's weights (SNIPER restarts from ImageNet weights).
    snip::train::train_result r2;
    {
        snip::train::train_options o = to;
        o.epochs = int(a.integer("--epochs", 20));
        o.lr_steps = {0.75 * o.epochs};
        o.out_dir = (out / "stage2").string();
        o.on_log = snip::apps::loss_png_writer(o.out_dir);
        r2 = snip::train::train(net, train.ds, cfg, snip::train::synthetic_source(train), &props, o);
        std::printf("[5/6] stage 2: %lld steps in %.1f s, loss %.3f -> %.3f; %s/loss.png\n",
                    static_cast<long long>(r2.steps), r2.seconds, r2.history.front().total,
                    r2.history.back().total, o.out_dir.c_str());
    }

    // 6. Multi-scale detection on the validation images, COCO AP, pictures.
    {
        const auto t = std::chrono::steady_clock::now();
        snip::train::inference_options io = snip::train::inference_options::for_plan(cfg);
        io.score_threshold = 0.05; // the demo's own, smaller than the original's 1e-3 / 200
        io.merge.max_per_image = 100;
        io.per_scale_nms = 0.5;
        std::vector<snip::train::image_detections> dets;
        const std::vector<std::string> names = train_cli::class_names(val.ds, classes);
        for (std::size_t i = 0; i < val.pixels.size(); ++i) {
            dets.push_back(snip::train::detect_image(net, val.pixels[i], io));
            if (i < 4)
                snip::apps::draw_detections(val.pixels[i], dets.back(), names, 0.3,
                                        (out / ("detections_" + std::to_string(i + 1) + ".png")).string(),
                                        &val.ds.images[i]);
        }
        const std::string res = (out / "val_results.json").string();
        snip::train::write_results(res, val.ds, dets, classes);
        const snip::io::coco_eval_result ev = snip::io::evaluate_coco_file(val.ds, res);
        std::printf("[6/6] detection on %zu validation images in %.1f s -> %s\n%s", val.pixels.size(),
                    seconds_since(t), res.c_str(), snip::io::format_coco_summary(ev).c_str());
        if (mo.masks) {
            snip::io::coco_eval_options eo;
            eo.type = snip::io::iou_type::segm;
            const snip::io::coco_eval_result em = snip::io::evaluate_coco_file(val.ds, res, eo);
            std::printf("\nmasks (iou type segm):\n%s", snip::io::format_coco_summary(em).c_str());
            std::printf("\ndemo done in %.0f s: box AP %.3f, AP50 %.3f; mask AP %.3f, AP50 %.3f. "
                        "Look at %s/detections_*.png and %s/stage2/loss.png.\n",
                        seconds_since(t0), ev.stats[0], ev.stats[1], em.stats[0], em.stats[1],
                        out.c_str(), out.c_str());
            return 0;
        }
        std::printf("\ndemo done in %.0f s: AP %.3f, AP50 %.3f. Look at %s/detections_*.png and "
                    "%s/stage2/loss.png.\n",
                    seconds_since(t0), ev.stats[0], ev.stats[1], out.c_str(), out.c_str());
    }
    return 0;
}

} // namespace

SNIP_COMMAND("demo", "the whole recipe on embedded synthetic data, on the CPU (the default)",
             "snip-train demo: SNIPER end to end on a synthetic dataset the program draws itself\n"
             "(textured backgrounds, shapes from 12 px to 60% of the image): stage 1 trains the RPN\n"
             "alone, its proposals mine negative chips, stage 2 trains the detector on positive and\n"
             "negative chips re-planned every epoch, then multi-scale detection with valid ranges and\n"
             "Soft-NMS on held-out images and COCO AP. A small ResNet-18 (width 16) from scratch, a\n"
             "few minutes on 2 cores. Everything is written under --out.\n\n"
             "usage: snip-train [demo] [--out DIR] [options]\n\n"
             "  --out DIR           output folder (snip-train-demo)\n"
             "  --train-images N    training images (64)\n"
             "  --val-images N      validation images (16)\n"
             "  --classes K         shape classes, 1..6 (3)\n"
             "  --rpn-epochs N      stage-1 epochs (2)\n"
             "  --epochs N          stage-2 epochs (20)\n"
             "  --model NET         sniper (the original's deformable network) | plain (sniper)\n"
             "  --head POOL         deformable | roialign RoI pooling (the network's own)\n"
             "  --masks             train the mask branch too and report mask AP beside box AP\n"
             "  --depth D, --width W  backbone (18, 16)\n"
             "  --bn MODE           trained | frozen BatchNorm (trained)\n"
             "  --batch B           chips per step (8)\n"
             "  --lr LR             learning rate, the original's meaning (train.hpp) (0.04)\n"
             "  --seed S            data and training seed (1)\n"
             "  --threads T         LibTorch threads\n"
             "  --quiet             no progress lines\n",
             cmd_demo);
