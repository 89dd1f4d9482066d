// bench_masks: mask operations of snip::mask against naive per-pixel baselines.
//
//   iou/snip           IoU of two 1000 x 1000 masks (unions of 12 random ellipses each),
//                      mask::iou on the run-length encodings
//   iou/naive          the same masks decoded to bytes, then counted pixel by pixel
//                      (decoding included: the masks are stored as RLE)
//   raster/snip        mask::from_polygon of a 50-vertex star polygon spanning ~1000 x 1000
//                      px, image 1000 x 1000
//   raster/naive       the same polygon by an even-odd point-in-polygon test at every pixel
//                      centre, encoded to an RLE
//   roi_mask/snip      mask::roi_mask of that polygon for its box at M = 28
//   roi_mask/naive     point-in-polygon at each of the 28 x 28 bin centres
//
// Each snip row reports speedup_vs_naive, the ratio of the two sides' times measured in the
// same run (interleaved, best of 3 rounds of >= 50 ms each). Before timing, main() checks that
// both IoUs are equal and that the rasterisations agree on every pixel whose centre is more
// than 1 px from the polygon's edges (the two rules differ only near edges); the rows report
// how many pixels differ in all.
//
// Usage: bench_masks [--benchmark_min_time=0.2] [--benchmark_filter=REGEX]

#include <snip/core/random.hpp>
#include <snip/mask/polygon.hpp>
#include <snip/mask/rle.hpp>

#include <benchmark/benchmark.h>

#include "common.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <numbers>
#include <vector>

namespace {

namespace mask = snip::mask;
using mask::polygon;
using mask::rle;
using snip::box;

constexpr int side = 1000, roi_m = 28;

/// A row-major side x side mask: the union of `n` ellipses (fixed seed).
std::vector<std::uint8_t> ellipses(std::uint64_t seed, int n) {
    snip::splitmix64 g{seed};
    std::vector<std::uint8_t> m(std::size_t(side) * side, 0);
    for (int k = 0; k < n; ++k) {
        const double cx = g.uniform() * side, cy = g.uniform() * side;
        const double rx = 30 + g.uniform() * 200, ry = 30 + g.uniform() * 200;
        for (int y = 0; y < side; ++y)
            for (int x = 0; x < side; ++x) {
                const double dx = (x + 0.5 - cx) / rx, dy = (y + 0.5 - cy) / ry;
                if (dx * dx + dy * dy <= 1) m[std::size_t(y) * side + x] = 1;
            }
    }
    return m;
}

/// A star polygon of 50 vertices around the image centre, radii 200..495 px.
polygon star50() {
    snip::splitmix64 g{50};
    polygon p;
    for (int i = 0; i < 50; ++i) {
        const double a = 2 * std::numbers::pi * i / 50, r = 200 + g.uniform() * 295;
        p.push_back(500 + r * std::cos(a));
        p.push_back(500 + r * std::sin(a));
    }
    return p;
}

// ---------------------------------------------------------------------------------
// Naive baselines, written here on purpose (not the library's code paths).

double naive_iou(const rle& a, const rle& b) {
    const std::vector<std::uint8_t> da = mask::decode(a), db = mask::decode(b);
    std::uint64_t inter = 0, uni = 0;
    for (std::size_t i = 0; i < da.size(); ++i) {
        inter += da[i] & db[i];
        uni += da[i] | db[i];
    }
    return inter == 0 ? 0.0 : double(inter) / double(uni);
}

bool inside(const polygon& p, double px, double py) {
    bool in = false;
    const std::size_t k = p.size() / 2;
    for (std::size_t i = 0, j = k - 1; i < k; j = i++) {
        const double xi = p[2 * i], yi = p[2 * i + 1], xj = p[2 * j], yj = p[2 * j + 1];
        if ((yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi) in = !in;
    }
    return in;
}

rle naive_raster(const polygon& p, int h, int w) {
    std::vector<std::uint8_t> m(std::size_t(h) * w);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            m[std::size_t(y) * w + x] = inside(p, x + 0.5, y + 0.5);
    return mask::encode(m.data(), h, w);
}

void naive_roi_mask(const polygon& p, const box<double>& roi, int M, std::uint8_t* out) {
    const double w = std::max(1.0, roi.x2 - roi.x1), h = std::max(1.0, roi.y2 - roi.y1);
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < M; ++j)
            out[std::size_t(i) * M + j] =
                inside(p, roi.x1 + (j + 0.5) * w / M, roi.y1 + (i + 0.5) * h / M);
}

// ---------------------------------------------------------------------------------
// Inputs

struct inputs {
    rle a, b;
    polygon poly = star50();
    box<double> roi = mask::bounds({poly});
    inputs() {
        const auto ma = ellipses(1, 12), mb = ellipses(2, 12);
        a = mask::encode(ma.data(), side, side);
        b = mask::encode(mb.data(), side, side);
    }
};
const inputs& data() {
    static const inputs d;
    return d;
}

double ratio(const std::function<void()>& fast, const std::function<void()>& naive) {
    const auto t = snip_bench::interleaved_best_times({&fast, &naive}, 3, 0.05);
    return t[1] / t[0];
}

// ---------------------------------------------------------------------------------
// Benchmarks

void iou_snip(benchmark::State& state) {
    const inputs& d = data();
    double v = 0;
    const std::function<void()> fast = [&] { v = mask::iou(d.a, d.b, false); };
    const std::function<void()> slow = [&] { v = naive_iou(d.a, d.b); };
    snip_bench::warm_loop(state, fast);
    benchmark::DoNotOptimize(v);
    state.counters["speedup_vs_naive"] = ratio(fast, slow);
    state.counters["runs_a"] = double(d.a.counts.size());
    state.counters["runs_b"] = double(d.b.counts.size());
}
void iou_naive(benchmark::State& state) {
    const inputs& d = data();
    double v = 0;
    snip_bench::warm_loop(state, [&] { v = naive_iou(d.a, d.b); });
    benchmark::DoNotOptimize(v);
}

void raster_snip(benchmark::State& state) {
    const inputs& d = data();
    rle r;
    const std::function<void()> fast = [&] { r = mask::from_polygon(d.poly, side, side); };
    const std::function<void()> slow = [&] { r = naive_raster(d.poly, side, side); };
    snip_bench::warm_loop(state, fast);
    state.counters["speedup_vs_naive"] = ratio(fast, slow);
    const rle a = mask::from_polygon(d.poly, side, side), b = naive_raster(d.poly, side, side);
    state.counters["pixels_differing"] =
        double(mask::area(mask::merge(std::vector<rle>{a, b})) -
               mask::area(mask::merge(std::vector<rle>{a, b}, true)));
}
void raster_naive(benchmark::State& state) {
    const inputs& d = data();
    rle r;
    snip_bench::warm_loop(state, [&] { r = naive_raster(d.poly, side, side); });
}

void roi_snip(benchmark::State& state) {
    const inputs& d = data();
    std::vector<std::uint8_t> out(roi_m * roi_m), ref(roi_m * roi_m);
    const std::vector<polygon> ps{d.poly};
    const std::function<void()> fast = [&] { mask::roi_mask(ps, d.roi, roi_m, out.data()); };
    const std::function<void()> slow = [&] { naive_roi_mask(d.poly, d.roi, roi_m, ref.data()); };
    snip_bench::warm_loop(state, fast);
    state.counters["speedup_vs_naive"] = ratio(fast, slow);
    int diff = 0;
    for (std::size_t i = 0; i < out.size(); ++i)
        diff += out[i] != ref[i];
    state.counters["bins_differing"] = diff;
}
void roi_naive(benchmark::State& state) {
    const inputs& d = data();
    std::vector<std::uint8_t> out(roi_m * roi_m);
    snip_bench::warm_loop(state, [&] { naive_roi_mask(d.poly, d.roi, roi_m, out.data()); });
}

/// Distance from (px, py) to the polygon's nearest edge.
double edge_distance(const polygon& p, double px, double py) {
    double best = 1e300;
    const std::size_t k = p.size() / 2;
    for (std::size_t i = 0, j = k - 1; i < k; j = i++) {
        const double ax = p[2 * j], ay = p[2 * j + 1], vx = p[2 * i] - ax, vy = p[2 * i + 1] - ay;
        const double l2 = vx * vx + vy * vy;
        const double t =
            l2 > 0 ? std::clamp(((px - ax) * vx + (py - ay) * vy) / l2, 0.0, 1.0) : 0.0;
        best = std::min(best, std::hypot(ax + t * vx - px, ay + t * vy - py));
    }
    return best;
}

/// The checks of the header comment; false (and a message) when one fails.
bool check_results() {
    const inputs& d = data();
    const double s = mask::iou(d.a, d.b, false), n = naive_iou(d.a, d.b);
    if (s != n) {
        std::fprintf(stderr, "bench_masks: IoU differs: snip %.17g, naive %.17g\n", s, n);
        return false;
    }
    const auto a = mask::decode(mask::from_polygon(d.poly, side, side));
    const auto b = mask::decode(naive_raster(d.poly, side, side));
    for (int y = 0; y < side; ++y)
        for (int x = 0; x < side; ++x) {
            const std::size_t i = std::size_t(y) * side + x;
            if (a[i] != b[i] && edge_distance(d.poly, x + 0.5, y + 0.5) > 1.0) {
                std::fprintf(stderr,
                             "bench_masks: rasterisations differ at (%d, %d), far from edges\n", x,
                             y);
                return false;
            }
        }
    return true;
}

} // namespace

BENCHMARK(iou_snip)->Name("iou/snip")->Unit(benchmark::kMicrosecond);
BENCHMARK(iou_naive)->Name("iou/naive")->Unit(benchmark::kMicrosecond);
BENCHMARK(raster_snip)->Name("raster/snip")->Unit(benchmark::kMicrosecond);
BENCHMARK(raster_naive)->Name("raster/naive")->Unit(benchmark::kMicrosecond);
BENCHMARK(roi_snip)->Name("roi_mask/snip")->Unit(benchmark::kMicrosecond);
BENCHMARK(roi_naive)->Name("roi_mask/naive")->Unit(benchmark::kMicrosecond);

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    snip_bench::add_build_context();
    benchmark::AddCustomContext("masks", "iou: 2 x 1000 x 1000, 12 ellipses each; polygon: 50 "
                                         "vertices, ~1000 x 1000 px; roi_mask: M = 28");
    if (!check_results()) return 1;
    benchmark::AddCustomContext("check", "iou equal; rasterisations equal > 1 px from edges");
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
