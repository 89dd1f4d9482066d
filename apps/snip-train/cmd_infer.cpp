// snip-train proposals / detect: whole-image multi-scale inference with a trained model.
#include "train_cli.hpp"

#include <snip_apps/draw_detections.hpp>

#include <snip/train/inference.hpp>

#include <snip/eval/coco_eval.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <future>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace snip::apps;

namespace fs = std::filesystem;

const std::vector<std::string> infer_flags = {"--checkpoint", "--images",     "--out",
                                              "--device",     "--pre-nms",    "--post-nms",
                                              "--nms",        "--test-scales", "--test-ranges",
                                              "--score",      "--max-dets",   "--draw",
                                              "--draw-count", "--draw-score", "--limit",
                                              "--scale-nms"};

/// The test pyramid of --test-scales / --test-ranges: the original SNIPER's test setting
/// (inference_options::sniper_coco(): (1400,2000), (800,1280), (480,512) with the ranges
/// (-1,90), (32,180), (75,-1); sniper_res101_e2e.yml TEST.SCALES, TEST.VALID_RANGES) unless
/// given; `--test-scales plan` takes the training plan's scales (and, without --test-ranges,
/// its ranges).
std::pair<std::vector<snip::scale_spec>, std::vector<snip::valid_range>>
test_pyramid(const cli::args& a, const snip::plan_config& cfg) {
    std::vector<snip::scale_spec> scales;
    std::vector<snip::valid_range> ranges;
    const snip::train::inference_options def = snip::train::inference_options::sniper_coco();
    const std::string s = a.get_or("--test-scales", "");
    if (s == "plan") {
        scales = cfg.scales;
        ranges = cfg.ranges;
    } else if (!s.empty()) {
        for (const auto& t : cli::split(s, ';'))
            scales.push_back(snip::scale_spec::parse(t, "--test-scales"));
    } else {
        scales = def.scales;
        ranges = def.merge.ranges;
    }
    if (auto r = a.get("--test-ranges")) {
        ranges.clear();
        for (const auto& t : cli::split(*r, ';'))
            ranges.push_back(snip::valid_range::parse(t, "--test-ranges"));
    } else if (!s.empty() && s != "plan") {
        ranges = scales.size() == cfg.ranges.size() ? cfg.ranges : std::vector<snip::valid_range>{};
    }
    snip::require(ranges.size() == scales.size(), "--test-ranges: ", scales.size(),
                  " test scales but ", ranges.size(), " valid ranges; give one per scale");
    return {scales, ranges};
}

std::vector<std::string> flags() {
    std::vector<std::string> f = cli::plan_flags;
    f.insert(f.end(), infer_flags.begin(), infer_flags.end());
    f.insert(f.end(), train_cli::dist_flags.begin(), train_cli::dist_flags.end());
    return f;
}

/// Runs `fn(i, image)` over the dataset's images (the first `limit`; in a distributed run
/// only image i with i mod W = rank), decoding the next image on another thread meanwhile,
/// with a progress line (rank 0's).
template <class Fn>
void for_each_image(const snip::dataset& ds, const std::string& dir, std::size_t limit,
                    const std::string& what, const snip::train::dist_group* dist, Fn&& fn) {
    const std::size_t n = std::min(limit, ds.images.size());
    const std::size_t step = dist ? std::size_t(dist->size()) : 1;
    const std::size_t first = dist ? std::size_t(dist->rank()) : 0;
    std::vector<std::size_t> mine;
    for (std::size_t i = first; i < n; i += step) mine.push_back(i);
    const snip::train::image_source src = snip::train::files_in(ds, dir);
    cli::progress_line bar(what + (dist ? " (rank 0's share)" : ""));
    const bool show = !dist || dist->main();
    std::future<snip::train::image> next;
    if (!mine.empty()) next = std::async(std::launch::async, src, mine[0]);
    for (std::size_t k = 0; k < mine.size(); ++k) {
        snip::train::image img = next.get();
        if (k + 1 < mine.size()) next = std::async(std::launch::async, src, mine[k + 1]);
        const auto& rec = ds.images[mine[k]];
        snip::train::out_of_memory_guard(
            snip::concat(what, ": image id ", rec.id, " (", rec.file_name, ", ", img.w, " x ", img.h,
                         " px)"),
            "its largest test scale does not fit: use smaller --test-scales, or --device cuda "
            "with more memory",
            [&] { fn(mine[k], img); });
        if (show) bar(k + 1, mine.size());
    }
}

struct loaded {
    snip::dataset ds;
    snip::train::FasterRCNN net{nullptr};
    snip::train::class_map classes;
    torch::Device device = torch::kCPU;
    std::shared_ptr<snip::train::dist_group> dist;
    bool main() const { return !dist || dist->main(); }
};

loaded load(const cli::args& a) {
    train_cli::set_threads(a);
    loaded l;
    l.device = train_cli::device_from(a);
    l.dist = train_cli::dist_connect(a, l.device);
    // An output that cannot be written fails now, not after all the inference.
    auto check_out = [&] {
        if (!l.main()) return;
        train_cli::check_writable(a.required("--out"), "--out");
        if (auto d = a.get("--draw")) {
            std::error_code ec;
            fs::create_directories(*d, ec);
            snip::require(!ec, "--draw ", *d, ": cannot create the folder (", ec.message(), ")");
            train_cli::check_writable((fs::path(*d) / "detections_0.png").string(), "--draw");
        }
    };
    if (l.dist)
        l.dist->agree("check the outputs", check_out);
    else
        check_out();
    const std::string ann = a.required("--annotations"), ck = a.required("--checkpoint");
    l.ds = cli::load_annotations(ann);
    l.classes = snip::train::class_map(l.ds);
    snip::train::checkpoint_info info;
    l.net = train_cli::model_from_checkpoint(ck, &info);
    train_cli::check_categories(info, l.classes, ck, ann);
    l.net->to(l.device);
    if (l.main())
        std::fprintf(stderr, "loaded %s: %s, trained %lld steps\n", ck.c_str(),
                     snip::train::detector_identity(l.net->options()).c_str(),
                     static_cast<long long>(info.position.step));
    if (l.dist) l.dist->require_same("the model", snip::train::detector_identity(l.net->options()));
    return l;
}

/// Rank 0 gets every rank's proposals (each image was done by one rank); rows are
/// (image, x1, y1, x2, y2, score) in float64, which holds the values exactly.
void gather(snip::train::dist_group& g, std::vector<snip::image_proposals>& props) {
    std::vector<double> rows;
    for (std::size_t i = 0; i < props.size(); ++i)
        for (std::size_t k = 0; k < props[i].boxes.size(); ++k) {
            const auto& b = props[i].boxes[k];
            rows.insert(rows.end(), {double(i), b.x1, b.y1, b.x2, b.y2, double(props[i].scores[k])});
        }
    const torch::Tensor all = g.gather_rows(
        torch::from_blob(rows.data(), {std::int64_t(rows.size() / 6), 6}, torch::kDouble));
    const std::size_t step = std::size_t(g.size());
    for (std::size_t i = 0; i < props.size(); ++i)
        if (i % step != std::size_t(g.rank())) props[i] = {};
    const double* p = all.data_ptr<double>();
    for (std::int64_t r = 0; r < all.size(0); ++r, p += 6) {
        const auto i = std::size_t(p[0]);
        if (i % step == std::size_t(g.rank())) continue; // this rank's own
        props[i].boxes.push_back({p[1], p[2], p[3], p[4]});
        props[i].scores.push_back(float(p[5]));
    }
}

/// Rank 0 gets every rank's detections; rows (image, x1, y1, x2, y2, score, label, scale).
void gather(snip::train::dist_group& g, std::vector<snip::train::image_detections>& dets) {
    std::vector<double> rows;
    for (std::size_t i = 0; i < dets.size(); ++i)
        for (std::size_t k = 0; k < dets[i].size(); ++k) {
            const auto& b = dets[i].boxes[k];
            rows.insert(rows.end(), {double(i), b.x1, b.y1, b.x2, b.y2, double(dets[i].scores[k]),
                                     double(dets[i].labels[k]), double(dets[i].scales[k])});
        }
    const torch::Tensor all = g.gather_rows(
        torch::from_blob(rows.data(), {std::int64_t(rows.size() / 8), 8}, torch::kDouble));
    const std::size_t step = std::size_t(g.size());
    const double* p = all.data_ptr<double>();
    for (std::int64_t r = 0; r < all.size(0); ++r, p += 8) {
        const auto i = std::size_t(p[0]);
        if (i % step == std::size_t(g.rank())) continue;
        dets[i].boxes.push_back({float(p[1]), float(p[2]), float(p[3]), float(p[4])});
        dets[i].scores.push_back(float(p[5]));
        dets[i].labels.push_back(std::int64_t(p[6]));
        dets[i].scales.push_back(int(p[7]));
    }
    // Masks as one line per detection, "image height width counts" (COCO's compressed
    // counts use the characters '0'..'o' alone), gathered in the rows' order: rank by rank.
    std::string mine;
    for (std::size_t i = 0; i < dets.size(); ++i)
        if (i % step == std::size_t(g.rank()))
            for (const snip::mask::rle& m : dets[i].masks)
                mine += snip::concat(i, ' ', m.height, ' ', m.width, ' ', snip::mask::to_string(m), '\n');
    const std::vector<std::string> masks = g.all_gather(mine);
    for (std::size_t r = 0; r < masks.size(); ++r) {
        if (r == std::size_t(g.rank())) continue;
        std::istringstream in(masks[r]);
        std::size_t i = 0;
        int h = 0, w = 0;
        std::string counts;
        while (in >> i >> h >> w >> counts) {
            snip::require(i < dets.size(), "detect: rank ", r, " sent a mask of image ", i);
            dets[i].masks.push_back(snip::mask::from_string(counts, h, w));
        }
    }
}

std::size_t limit_of(const cli::args& a) {
    const long long n = a.integer("--limit", 0);
    snip::require(n >= 0, "--limit: expected a count >= 0, got ", n);
    return n == 0 ? static_cast<std::size_t>(-1) : std::size_t(n);
}

int cmd_proposals(const std::vector<std::string>& argv) {
    const cli::args a("proposals", argv, flags());
    loaded l = load(a);
    // An error on one rank reaches the others through the store (they name it).
    return train_cli::reporting_failure(l.dist.get(), [&]() -> int {
        const snip::plan_config cfg = cli::config_from_args(a);
        snip::train::proposal_options po = l.net->options().test_proposals;
        po.pre_nms = a.integer("--pre-nms", po.pre_nms);
        po.post_nms = a.integer("--post-nms", 300);
        po.nms_iou = a.number("--nms", po.nms_iou);
        // The original extracts 300 proposals per TEST scale and applies NMS 0.7 over all scales
        // of an image before mining (SNIPER lib/inference.py extract_proposals;
        // lib/dataset/imdb.py:102).
        const std::vector<snip::scale_spec> scales = test_pyramid(a, cfg).first;
        const double scale_nms = a.number("--scale-nms", 0.7);
        const std::string out = a.required("--out");
        std::vector<snip::image_proposals> props(l.ds.images.size());
        for_each_image(l.ds, train_cli::images_dir(a), limit_of(a), "proposals", l.dist.get(),
                       [&](std::size_t i, const snip::train::image& img) {
                           props[i] = snip::train::propose_image(l.net, img, scales, po, 16, {}, scale_nms);
                       });
        if (l.dist) gather(*l.dist, props);
        if (!l.main()) return 0;
        std::size_t total = 0;
        for (const auto& p : props) total += p.boxes.size();
        snip::train::write_proposals(out, l.ds, props);
        std::printf("proposals: %zu boxes for %zu images (%zu scales, top %lld per scale after NMS "
                    "%.2f, then NMS %.2f over the scales) -> %s\n",
                    total, l.ds.images.size(), scales.size(), static_cast<long long>(po.post_nms),
                    po.nms_iou, scale_nms, out.c_str());
        return 0;
    });
}

int cmd_detect(const std::vector<std::string>& argv) {
    const cli::args a("detect", argv, flags(), {"--eval"});
    loaded l = load(a);
    // An error on one rank reaches the others through the store (they name it).
    return train_cli::reporting_failure(l.dist.get(), [&]() -> int {
        const snip::plan_config cfg = cli::config_from_args(a);
        const auto [scales, ranges] = test_pyramid(a, cfg);
        snip::train::inference_options io = snip::train::inference_options::for_plan(cfg, scales, ranges);
        // The original's test setting (sniper_res101_e2e.yml TEST; lib/inference.py): scores
        // > 1e-3, no NMS per scale, Gaussian Soft-NMS sigma 0.55 over the scales, 200 per image.
        io.score_threshold = a.number("--score", 1e-3);
        io.per_scale_nms = a.number("--scale-nms", 0.0);
        io.merge.max_per_image = std::size_t(std::max(1LL, a.integer("--max-dets", 200)));
        io.validate();
        const std::string out = a.required("--out");
        const std::string draw_dir = a.get_or("--draw", "");
        const long long draw_count = a.integer("--draw-count", 8);
        const double draw_score = a.number("--draw-score", 0.5);
        if (!draw_dir.empty()) fs::create_directories(draw_dir);
        const std::vector<std::string> names = train_cli::class_names(l.ds, l.classes);

        const std::size_t limit = limit_of(a);
        snip::dataset ds = l.ds; // the images detected (all, or the first --limit)
        if (limit < ds.images.size()) ds.images.resize(limit);
        std::vector<snip::train::image_detections> dets(ds.images.size());
        const snip::train::image_source src = snip::train::files_in(l.ds, train_cli::images_dir(a));
        auto draw = [&](std::size_t i, const snip::train::image& img) {
            snip::apps::draw_detections(
                img, dets[i], names, draw_score,
                (fs::path(draw_dir) / ("detections_" + std::to_string(ds.images[i].id) + ".png")).string(),
                &ds.images[i]);
        };
        for_each_image(l.ds, train_cli::images_dir(a), limit, "detect", l.dist.get(),
                       [&](std::size_t i, const snip::train::image& img) {
                           dets[i] = snip::train::detect_image(l.net, img, io);
                           if (!l.dist && !draw_dir.empty() && (long long)i < draw_count) draw(i, img);
                       });
        if (l.dist) {
            gather(*l.dist, dets);
            if (!l.main()) return 0;
            // Rank 0 alone writes: it draws the first images once every rank's results are here.
            if (!draw_dir.empty())
                for (std::size_t i = 0; i < ds.images.size() && (long long)i < draw_count; ++i)
                    draw(i, src(i));
        }
        std::size_t total = 0;
        for (const auto& d : dets) total += d.size();
        snip::train::write_results(out, ds, dets, l.classes);
        std::printf("detect: %zu detections on %zu images (%zu test scales) -> %s\n", total,
                    ds.images.size(), io.scales.size(), out.c_str());
        if (!draw_dir.empty())
            std::printf("drew the first %lld images (score >= %.2f) into %s\n",
                        std::min<long long>(draw_count, (long long)ds.images.size()), draw_score,
                        draw_dir.c_str());
        if (a.has("--eval")) {
            std::printf("scoring the %zu images detected, of the %zu of %s%s\n", ds.images.size(),
                        l.ds.images.size(), a.required("--annotations").c_str(),
                        ds.images.size() < l.ds.images.size()
                            ? snip::concat(" (the first ones; `snip-train eval --limit ", ds.images.size(),
                                           "` scores the same)")
                                  .c_str()
                            : "");
            const snip::io::coco_eval_result r = snip::io::evaluate_coco_file(ds, out);
            std::printf("%s", snip::io::format_coco_summary(r).c_str());
            if (total > 0 && !dets.empty() && std::any_of(dets.begin(), dets.end(), [](const auto& d) {
                    return !d.masks.empty();
                })) {
                snip::io::coco_eval_options eo;
                eo.type = snip::io::iou_type::segm;
                std::printf("masks (iou type segm):\n%s",
                            snip::io::format_coco_summary(snip::io::evaluate_coco_file(ds, out, eo))
                                .c_str());
            }
        }
        return 0;
    });
}

std::string infer_help() {
    return std::string("chips / scales (as snip-chips plan; the plan's scales are the default pyramid):\n") +
           cli::plan_flags_help +
           "\ninference:\n"
           "  --checkpoint FILE   a snip-train checkpoint (required)\n"
           "  --images DIR        the images (default: the annotation file's folder)\n"
           "  --out FILE          output JSON (required)\n"
           "  --device DEV        cpu | cuda | cuda:N (cpu)\n"
           "  --limit N           only the first N images\n"
           "\ndistributed (image i goes to rank i mod N; rank 0 gathers and writes):\n" +
           train_cli::dist_flags_help + "\n";
}

} // namespace

SNIP_COMMAND("proposals", "whole-image multi-scale RPN proposals for negative chip mining",
             "snip-train proposals: the RPN of a checkpoint (usually from `snip-train rpn`) on every\n"
             "whole image at every scale of the plan; proposals in original pixels, all scales\n"
             "together, written as JSON that `snip-chips plan --proposals` and\n"
             "`snip-train train --proposals` read.\n\n"
             "usage: snip-train proposals --checkpoint FILE --annotations FILE --out FILE [options]\n\n" +
                 infer_help() +
                 "  --test-scales LIST  scales, e.g. (1400,2000);(800,1280);(480,512) (the default, the\n"
                 "                      original's test scales), or 'plan' for the plan's scales\n"
                 "  --pre-nms N         best anchors kept before NMS per scale (6000)\n"
                 "  --post-nms N        proposals kept per scale after NMS (300, SNIPER's)\n"
                 "  --nms IOU           NMS threshold per scale (0.7)\n"
                 "  --scale-nms IOU     NMS over all scales' proposals of an image (0.7, the\n"
                 "                      original's; 0: none)\n",
             cmd_proposals);
SNIP_COMMAND("detect", "multi-scale detection -> COCO results JSON (+ PNGs, AP)",
             "snip-train detect: SNIPER's inference: every whole image at every test scale, detections\n"
             "kept where their size is in the scale's valid range, scales merged per class with\n"
             "Gaussian Soft-NMS; COCO results JSON, optional pictures and evaluation.\n\n"
             "usage: snip-train detect --checkpoint FILE --annotations FILE --out FILE [options]\n\n" +
                 infer_help() +
                 "  --test-scales LIST  test pyramid (default: the original's (1400,2000);(800,1280);(480,512));\n"
                 "                      'plan' for the training plan's scales and ranges\n"
                 "  --test-ranges LIST  valid range per test scale (default: the original's -1,90;32,180;75,-1,\n"
                 "                      or the plan's ranges when the scale count matches)\n"
                 "  --score S           per-scale score threshold (0.001, the original's)\n"
                 "  --scale-nms IOU     per-class NMS per scale before the merge (0: none, the original's)\n"
                 "  --max-dets N        detections per image after the merge (200, the original's)\n"
                 "  --draw DIR          draw detections (and ground truth) of the first images as PNGs\n"
                 "  --draw-count N      how many images to draw (8)\n"
                 "  --draw-score S      draw detections scoring at least S (0.5)\n"
                 "  --eval              print COCO AP of the results against the annotations\n",
             cmd_detect);
