// bench_segm_eval: COCO segm evaluation (mask IoU on RLEs) against bbox evaluation of the
// same detections, on coco128-sized data: the real coco128 ground truth (128 images, 939
// objects, 10 crowd regions) and, per non-crowd object, a detection whose polygon vertices
// are jittered by up to 2 px (rasterized at the image's size) plus a copy shifted by
// 24 px at a lower score (mostly a false positive). The segm/bbox time ratio is measured
// in one run (interleaved best-of rounds, see common.hpp).
//
//   build/<dir>/bench/bench_segm_eval --benchmark_min_time=0.2
// The data folder is SNIP_DATA_DIR (environment) or ../shared/data beside the source tree.
#include "common.hpp"

#include <snip/core/random.hpp>
#include <snip/eval/coco_eval.hpp>
#include <snip/io/coco.hpp>
#include <snip/mask/rle.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace {

namespace mask = snip::mask;
using snip::io::detection;

/// coco128's annotations: under SNIP_DATA_DIR when set, else in ../shared/data beside the
/// source tree, found from this file's path (__FILE__: absolute, or relative to the build
/// folder, the parent of this program's folder).
std::string data_path() {
    namespace fs = std::filesystem;
    const fs::path rel = "coco128/instances_coco128.json";
    if (const char* env = std::getenv("SNIP_DATA_DIR"); env && *env)
        return (fs::path(env) / rel).string();
    fs::path src = __FILE__;
    if (src.is_relative()) {
        std::error_code ec;
        const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
        src = (ec ? fs::current_path() : exe.parent_path().parent_path()) / src;
    }
    return (src.parent_path() / "../../shared/data" / rel).lexically_normal().string();
}

struct bench_data {
    snip::dataset gt;
    std::vector<detection> dets;
    std::size_t vertices = 0;
};

/// The detections: per non-crowd object its polygons with every vertex moved by a whole
/// number of px in [-2, 2] (seeded), rasterized; box = the mask's tight box; score random;
/// plus the same mask shifted right by 24 px (clamped to the image) at half the score.
bench_data make_data(const std::string& path) {
    bench_data d;
    d.gt = snip::io::read_coco(path);
    snip::splitmix64 g{128};
    for (const auto& im : d.gt.images)
        for (std::size_t b = 0; b < im.boxes.size(); ++b) {
            if (im.crowd[b] || !im.segments[b].is_polygons()) continue;
            for (int copy = 0; copy < 2; ++copy) {
                std::vector<mask::polygon> polys = im.segments[b].polygons;
                for (auto& p : polys)
                    for (std::size_t k = 0; k < p.size(); ++k) {
                        const double side = k % 2 ? im.height : im.width;
                        double v =
                            p[k] + double(g.below(5)) - 2.0 + (copy && k % 2 == 0 ? 24.0 : 0.0);
                        p[k] = std::min(std::max(v, 0.0), side);
                        ++d.vertices;
                    }
                mask::rle m = mask::from_polygons(polys, im.height, im.width);
                const snip::box<double> bb = mask::bbox(m);
                const double score = double(g.below(1000) + 1) / 1000.0;
                d.dets.push_back({im.id, im.categories[b], bb.x1, bb.y1, bb.width(), bb.height(),
                                  copy ? score / 2 : score, std::move(m)});
            }
        }
    return d;
}

const bench_data& data() {
    static const bench_data d = make_data(data_path());
    return d;
}

snip::io::coco_eval_result run(snip::io::iou_type t) {
    snip::io::coco_eval_options o;
    o.type = t;
    return snip::io::evaluate_coco(data().gt, data().dets, o);
}

void BM_segm_eval(benchmark::State& state) {
    double ap = 0;
    snip_bench::warm_loop(state, [&] { ap = run(snip::io::iou_type::segm).stats[0]; });
    state.counters["AP"] = ap;
    state.counters["detections"] = double(data().dets.size());
}

void BM_bbox_eval(benchmark::State& state) {
    double ap = 0;
    snip_bench::warm_loop(state, [&] { ap = run(snip::io::iou_type::bbox).stats[0]; });
    state.counters["AP"] = ap;
    state.counters["detections"] = double(data().dets.size());
}

/// Both evaluations interleaved in one run: their best times and the ratio segm / bbox.
void BM_segm_over_bbox(benchmark::State& state) {
    const std::function<void()> segm = [] {
        benchmark::DoNotOptimize(run(snip::io::iou_type::segm));
    };
    const std::function<void()> bbox = [] {
        benchmark::DoNotOptimize(run(snip::io::iou_type::bbox));
    };
    std::vector<double> t;
    for (auto _ : state)
        t = snip_bench::interleaved_best_times({&segm, &bbox}, 3, 0.2);
    state.counters["segm_ms"] = t[0] * 1e3;
    state.counters["bbox_ms"] = t[1] * 1e3;
    state.counters["segm_over_bbox"] = t[0] / t[1];
}

BENCHMARK(BM_segm_eval)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_bbox_eval)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_segm_over_bbox)->Unit(benchmark::kMillisecond)->Iterations(1);

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    const std::string path = data_path();
    if (!std::filesystem::exists(path)) {
        std::fprintf(stderr,
                     "[skip] coco128 not found at %s (set SNIP_DATA_DIR): nothing measured\n",
                     path.c_str());
        return 0;
    }
    const bench_data& d = data();
    // The two evaluations see the same detections: a sanity check before any timing.
    const auto segm = run(snip::io::iou_type::segm), bbox = run(snip::io::iou_type::bbox);
    if (!(segm.stats[0] > 0 && segm.stats[0] < 1 && bbox.stats[0] > 0 && bbox.stats[0] < 1)) {
        std::fprintf(stderr, "[check] unexpected AP: segm %g, bbox %g (want both in (0, 1))\n",
                     segm.stats[0], bbox.stats[0]);
        return 1;
    }
    std::printf("[check] segm AP %.4f, bbox AP %.4f on %zu detections\n", segm.stats[0],
                bbox.stats[0], d.dets.size());
    snip_bench::add_build_context();
    benchmark::AddCustomContext(
        "segm_config",
        snip::concat(d.gt.images.size(), " images, ", d.gt.num_boxes(),
                     " ground truth objects (coco128); ", d.dets.size(),
                     " detections: each non-crowd object's polygons jittered by <= 2 px (",
                     d.vertices, " vertices rasterized) and a copy shifted 24 px; seed 128"));
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
