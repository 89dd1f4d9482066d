// bench_nms: how fast snip's NMS family runs on realistic clustered detections, next to
// naive textbook loops written here.
//
//   nms/<impl>/boxes:10000/iou:<0.7|0.5>   hard NMS; impl = snip (automatic = grid), greedy,
//                                          bitmask_t1, bitmask_t2 (CPU bitmask, T threads),
//                                          naive (stable sort + O(N^2) suppression loop)
//   batched_nms/<snip|naive>/boxes:10000    80 classes, IoU 0.5
//   soft_nms/<snip|naive>/<gaussian|linear>/boxes:2000
//   merge/<snip|naive>/sniper_coco/dets:3000  3 scales x 1000 detections, 80 classes
//
// Every snip row reports speedup_vs_naive: the naive and the snip call timed in this run
// (best of 3 repetitions of >= 50 ms each). Before any timing, main() checks that snip and
// the naive loops give identical results on every input.
//
// Usage: bench_nms [--benchmark_min_time=0.5] [--benchmark_filter=REGEX]

#include <snip/ops/batched_nms.hpp>
#include <snip/ops/merge.hpp>
#include <snip/ops/nms.hpp>
#include <snip/ops/soft_nms.hpp>
#include <snip/core/version.hpp>

#include <benchmark/benchmark.h>

#include "common.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------
// Data

/// A portable random source (mt19937's sequence is fixed by the standard; the mapping to
/// [0, 1) is ours).
class rng {
public:
    explicit rng(std::uint32_t seed) : eng_(seed) {}
    double uniform() { return double(eng_() >> 8) * (1.0 / 16777216.0); }
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
    std::uint32_t below(std::uint32_t n) { return std::uint32_t(uniform() * n) % n; }

private:
    std::mt19937 eng_;
};

constexpr int image_w = 1333, image_h = 800;

struct detections {
    std::vector<float> xyxy, scores;
    std::vector<std::int32_t> cls;
    std::vector<int> scale;
    std::size_t size() const { return scores.size(); }
};

/// `n` detections of a detector's raw output in a 1333 x 800 image: 85% jittered copies of
/// `objects` objects (sides 16..400 px log-uniform, aspect 0.5..2; every edge moved by up
/// to +-20% of the side, score = object confidence x 0.5..1), 15% background boxes with
/// low scores; clipped to the image; class ids from `classes` (per object).
detections clustered(int n, int objects, int classes, std::uint32_t seed) {
    rng r(seed);
    struct object {
        double x1, y1, w, h, conf;
        std::int32_t cls;
    };
    std::vector<object> obj;
    for (int k = 0; k < objects; ++k) {
        const double side = 16.0 * std::pow(25.0, r.uniform());
        const double aspect = std::pow(2.0, r.uniform(-1.0, 1.0));
        const double w = side * std::sqrt(aspect), h = side / std::sqrt(aspect);
        obj.push_back({r.uniform(0, image_w - w), r.uniform(0, image_h - h), w, h,
                       r.uniform(0.3, 1.0), std::int32_t(r.below(std::uint32_t(classes)))});
    }
    detections d;
    auto clipx = [](double v) { return std::clamp(v, 0.0, double(image_w)); };
    auto clipy = [](double v) { return std::clamp(v, 0.0, double(image_h)); };
    for (int i = 0; i < n; ++i) {
        double x1, y1, x2, y2, s;
        std::int32_t c;
        if (r.uniform() < 0.15) {
            const double w = 16.0 * std::pow(25.0, r.uniform()), h = 16.0 * std::pow(25.0, r.uniform());
            x1 = r.uniform(0, image_w - std::min(w, double(image_w)));
            y1 = r.uniform(0, image_h - std::min(h, double(image_h)));
            x2 = x1 + w;
            y2 = y1 + h;
            s = r.uniform(0.0, 0.3);
            c = std::int32_t(r.below(std::uint32_t(classes)));
        } else {
            const object& o = obj[r.below(std::uint32_t(objects))];
            const double jx = 0.2 * o.w, jy = 0.2 * o.h;
            x1 = o.x1 + r.uniform(-jx, jx);
            y1 = o.y1 + r.uniform(-jy, jy);
            x2 = o.x1 + o.w + r.uniform(-jx, jx);
            y2 = o.y1 + o.h + r.uniform(-jy, jy);
            s = o.conf * r.uniform(0.5, 1.0);
            c = o.cls;
        }
        x1 = clipx(x1);
        x2 = std::max(x1, clipx(x2));
        y1 = clipy(y1);
        y2 = std::max(y1, clipy(y2));
        d.xyxy.insert(d.xyxy.end(), {float(x1), float(y1), float(x2), float(y2)});
        d.scores.push_back(float(s));
        d.cls.push_back(c);
        d.scale.push_back(0);
    }
    return d;
}

constexpr int nms_boxes = 10000, nms_objects = 300, soft_boxes = 2000, soft_objects = 100;
constexpr int merge_per_scale = 1000, merge_classes = 80;
constexpr std::uint32_t nms_seed = 7, soft_seed = 8, merge_seed = 9;

const detections& nms_data() {
    static const detections d = clustered(nms_boxes, nms_objects, merge_classes, nms_seed);
    return d;
}
const detections& soft_data() {
    static const detections d = clustered(soft_boxes, soft_objects, 1, soft_seed);
    return d;
}
/// Three scales of one image's detections in original pixels: each scale sees the same
/// objects (seed) with its own jitter; boxes of all scales concatenated.
const detections& merge_data() {
    static const detections d = [] {
        detections all;
        for (int s = 0; s < 3; ++s) {
            detections one = clustered(merge_per_scale, 60, merge_classes, merge_seed + 100u * std::uint32_t(s));
            all.xyxy.insert(all.xyxy.end(), one.xyxy.begin(), one.xyxy.end());
            all.scores.insert(all.scores.end(), one.scores.begin(), one.scores.end());
            all.cls.insert(all.cls.end(), one.cls.begin(), one.cls.end());
            all.scale.insert(all.scale.end(), one.size(), s);
        }
        return all;
    }();
    return d;
}

// ---------------------------------------------------------------------------------
// Naive baselines (the textbook loops; same float arithmetic as torchvision)

float naive_iou(const float* a, const float* b, float e) {
    const float area_a = (a[2] - a[0] + e) * (a[3] - a[1] + e);
    const float area_b = (b[2] - b[0] + e) * (b[3] - b[1] + e);
    const float w = std::max(0.0f, std::min(a[2], b[2]) - std::max(a[0], b[0]) + e);
    const float h = std::max(0.0f, std::min(a[3], b[3]) - std::max(a[1], b[1]) + e);
    const float inter = w * h;
    return inter / (area_a + area_b - inter);
}

std::vector<std::int64_t> naive_nms(const float* xyxy, const float* scores, std::size_t n,
                                    double thr) {
    std::vector<std::int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int64_t a, std::int64_t b) { return scores[a] > scores[b]; });
    std::vector<char> suppressed(n, 0);
    std::vector<std::int64_t> keep;
    for (std::size_t a = 0; a < n; ++a) {
        const auto i = order[a];
        if (suppressed[std::size_t(i)]) continue;
        keep.push_back(i);
        for (std::size_t b = a + 1; b < n; ++b) {
            const auto j = order[b];
            if (!suppressed[std::size_t(j)] &&
                double(naive_iou(xyxy + 4 * i, xyxy + 4 * j, 0.0f)) > thr)
                suppressed[std::size_t(j)] = 1;
        }
    }
    return keep;
}

std::vector<std::int64_t> naive_batched(const detections& d, double thr) {
    std::map<std::int32_t, std::vector<std::int64_t>> by_class;
    for (std::size_t i = 0; i < d.size(); ++i) by_class[d.cls[i]].push_back(std::int64_t(i));
    std::vector<std::int64_t> all;
    std::vector<float> b, s;
    for (const auto& [c, ids] : by_class) {
        b.clear();
        s.clear();
        for (auto i : ids) {
            b.insert(b.end(), d.xyxy.begin() + 4 * i, d.xyxy.begin() + 4 * i + 4);
            s.push_back(d.scores[std::size_t(i)]);
        }
        for (auto k : naive_nms(b.data(), s.data(), ids.size(), thr)) all.push_back(ids[std::size_t(k)]);
    }
    std::sort(all.begin(), all.end());
    std::stable_sort(all.begin(), all.end(), [&](std::int64_t a, std::int64_t b) {
        return d.scores[std::size_t(a)] > d.scores[std::size_t(b)];
    });
    return all;
}

/// Soft-NMS: select the maximum among the remaining boxes, decay all the others.
snip::soft_nms_result<float> naive_soft(const float* xyxy, std::vector<float> s,
                                        const snip::soft_nms_options& o) {
    const float e = o.convention == snip::pixel_convention::inclusive ? 1.0f : 0.0f;
    std::vector<std::size_t> rest;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (!(double(s[i]) < o.score_threshold)) rest.push_back(i);
    snip::soft_nms_result<float> r;
    while (!rest.empty()) {
        std::size_t best = 0;
        for (std::size_t k = 1; k < rest.size(); ++k)
            if (s[rest[k]] > s[rest[best]] || (s[rest[k]] == s[rest[best]] && rest[k] < rest[best]))
                best = k;
        const std::size_t i = rest[best];
        rest.erase(rest.begin() + std::ptrdiff_t(best));
        r.keep.push_back(std::int64_t(i));
        r.scores.push_back(s[i]);
        std::size_t out = 0;
        for (std::size_t j : rest) {
            float ov = naive_iou(xyxy + 4 * i, xyxy + 4 * j, e);
            if (std::isnan(ov)) ov = 0.0f;
            float w = 1.0f;
            if (o.method == snip::soft_nms_method::linear) {
                if (double(ov) > o.iou_threshold) w = 1.0f - ov;
            } else {
                w = float(std::exp(double(-(ov * ov) / float(o.sigma))));
            }
            s[j] = w * s[j];
            if (!(double(s[j]) < o.score_threshold)) rest[out++] = j;
        }
        rest.resize(out);
    }
    return r;
}

/// The merge of sniper_coco done the plain way: filter, pool per class, naive Soft-NMS,
/// sort, cut (ties at the cut kept). Returns (index, score) pairs in output order.
std::vector<std::pair<std::int64_t, float>> naive_merge(const detections& d,
                                                        const snip::multiscale_merge_options& o) {
    std::map<std::int32_t, std::vector<std::size_t>> pool;
    std::map<std::pair<std::int32_t, int>, std::vector<std::size_t>> groups;
    for (std::size_t i = 0; i < d.size(); ++i) groups[{d.cls[i], d.scale[i]}].push_back(i);
    for (const auto& [key, ids] : groups) {
        const auto& r = o.ranges[std::size_t(key.second)];
        std::vector<std::size_t> ok;
        for (auto i : ids) {
            const float* b = d.xyxy.data() + 4 * i;
            const float area = (b[2] - b[0]) * (b[3] - b[1]);
            if ((!(r.lo > 0) || area > float(r.lo * r.lo)) && (!(r.hi > 0) || area <= float(r.hi * r.hi)))
                ok.push_back(i);
        }
        if (ok.empty()) ok = ids;
        auto& p = pool[key.first];
        p.insert(p.end(), ok.begin(), ok.end());
    }
    struct row {
        float score;
        std::int32_t cls;
        std::size_t rank;
        std::int64_t index;
    };
    std::vector<row> rows;
    snip::soft_nms_options so;
    so.sigma = o.sigma;
    so.score_threshold = o.score_threshold;
    so.convention = o.convention;
    for (const auto& [c, ids] : pool) {
        std::vector<float> b, s;
        for (auto i : ids) {
            b.insert(b.end(), d.xyxy.begin() + std::ptrdiff_t(4 * i), d.xyxy.begin() + std::ptrdiff_t(4 * i + 4));
            s.push_back(d.scores[i]);
        }
        const auto r = naive_soft(b.data(), s, so);
        for (std::size_t k = 0; k < r.keep.size(); ++k)
            rows.push_back({r.scores[k], c, k, std::int64_t(ids[std::size_t(r.keep[k])])});
    }
    std::sort(rows.begin(), rows.end(), [](const row& x, const row& y) {
        if (x.score != y.score) return x.score > y.score;
        if (x.cls != y.cls) return x.cls < y.cls;
        return x.rank < y.rank;
    });
    std::size_t out = rows.size();
    if (o.max_per_image < out) {
        out = o.max_per_image;
        while (out < rows.size() && rows[out].score >= rows[o.max_per_image - 1].score) ++out;
    }
    std::vector<std::pair<std::int64_t, float>> res;
    for (std::size_t k = 0; k < out; ++k) res.emplace_back(rows[k].index, rows[k].score);
    return res;
}

// ---------------------------------------------------------------------------------
// snip calls

snip::box_view<const float> view(const detections& d) {
    return snip::box_view<const float>(d.xyxy.data(), std::ptrdiff_t(d.size()));
}

snip::nms_options nms_opts(snip::nms_algorithm alg, unsigned threads = 1) {
    snip::nms_options o;
    o.algorithm = alg;
    o.threads = threads;
    return o;
}

snip::soft_nms_options soft_opts(snip::soft_nms_method m) {
    snip::soft_nms_options o;
    o.method = m;
    return o;
}

// ---------------------------------------------------------------------------------
// Timing

/// Seconds per call of `f`: calls repeated for at least 50 ms, best of 3.
template <class F>
double seconds_per_call(F&& f) {
    double best = std::numeric_limits<double>::infinity();
    for (int rep = 0; rep < 3; ++rep) {
        std::size_t calls = 0;
        const auto t0 = steady::now();
        double el = 0.0;
        do {
            f();
            ++calls;
            el = std::chrono::duration<double>(steady::now() - t0).count();
        } while (el < 0.05);
        best = std::min(best, el / double(calls));
    }
    return best;
}

/// Naive seconds per call, measured once per key in this run.
template <class F>
double naive_seconds(const std::string& key, F&& f) {
    static std::map<std::string, double> cache;
    auto it = cache.find(key);
    if (it == cache.end()) it = cache.emplace(key, seconds_per_call(f)).first;
    return it->second;
}

std::string thr_key(double thr) { return thr == 0.7 ? "0.7" : "0.5"; }

void bm_nms(benchmark::State& state, snip::nms_algorithm alg, unsigned threads, double thr) {
    const auto& d = nms_data();
    const auto v = view(d);
    const auto opt = nms_opts(alg, threads);
    snip::nms_workspace<float> ws;
    std::vector<std::int64_t> keep(d.size());
    std::size_t kept = 0;
    auto call = [&] {
        kept = snip::nms(v, d.scores, thr, std::span<std::int64_t>(keep), ws, opt);
        benchmark::DoNotOptimize(keep.data());
    };
    for (auto _ : state) call();
    const double fast = seconds_per_call(call);
    const double naive = naive_seconds("nms" + thr_key(thr), [&] {
        auto k = naive_nms(d.xyxy.data(), d.scores.data(), d.size(), thr);
        benchmark::DoNotOptimize(k.data());
    });
    state.counters["kept"] = double(kept);
    state.counters["boxes/s"] =
        benchmark::Counter(double(d.size()), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["speedup_vs_naive"] = naive / fast;
}

void bm_nms_naive(benchmark::State& state, double thr) {
    const auto& d = nms_data();
    std::size_t kept = 0;
    for (auto _ : state) {
        auto k = naive_nms(d.xyxy.data(), d.scores.data(), d.size(), thr);
        kept = k.size();
        benchmark::DoNotOptimize(k.data());
    }
    state.counters["kept"] = double(kept);
    state.counters["boxes/s"] =
        benchmark::Counter(double(d.size()), benchmark::Counter::kIsIterationInvariantRate);
}

void bm_batched(benchmark::State& state, bool naive) {
    const auto& d = nms_data();
    const auto v = view(d);
    snip::nms_workspace<float> ws;
    std::vector<std::int64_t> keep(d.size());
    std::size_t kept = 0;
    auto fast_call = [&] {
        kept = snip::batched_nms(v, d.scores, std::span<const std::int32_t>(d.cls), 0.5,
                                 std::span<std::int64_t>(keep), ws);
        benchmark::DoNotOptimize(keep.data());
    };
    auto naive_call = [&] {
        auto k = naive_batched(d, 0.5);
        kept = k.size();
        benchmark::DoNotOptimize(k.data());
    };
    if (naive) {
        for (auto _ : state) naive_call();
    } else {
        for (auto _ : state) fast_call();
        const double fast = seconds_per_call(fast_call);
        state.counters["speedup_vs_naive"] = naive_seconds("batched", naive_call) / fast;
    }
    state.counters["kept"] = double(kept);
}

void bm_soft(benchmark::State& state, snip::soft_nms_method m, bool naive) {
    const auto& d = soft_data();
    const auto v = view(d);
    const auto opt = soft_opts(m);
    snip::nms_workspace<float> ws;
    std::vector<std::int64_t> keep(d.size());
    std::vector<float> ks(d.size());
    std::size_t kept = 0;
    auto fast_call = [&] {
        kept = snip::soft_nms(v, d.scores, opt, std::span<std::int64_t>(keep), std::span<float>(ks), ws);
        benchmark::DoNotOptimize(keep.data());
    };
    auto naive_call = [&] {
        auto r = naive_soft(d.xyxy.data(), d.scores, opt);
        kept = r.keep.size();
        benchmark::DoNotOptimize(r.keep.data());
    };
    if (naive) {
        for (auto _ : state) naive_call();
    } else {
        for (auto _ : state) fast_call();
        const double fast = seconds_per_call(fast_call);
        state.counters["speedup_vs_naive"] =
            naive_seconds(m == snip::soft_nms_method::linear ? "soft_linear" : "soft_gauss",
                          naive_call) / fast;
    }
    state.counters["kept"] = double(kept);
}

void bm_merge(benchmark::State& state, bool naive) {
    const auto& d = merge_data();
    const auto v = view(d);
    const auto opt = snip::multiscale_merge_options::sniper_coco();
    std::size_t out = 0;
    auto fast_call = [&] {
        auto m = snip::merge_multiscale(v, d.scores, d.cls, d.scale, opt);
        out = m.size();
        benchmark::DoNotOptimize(m.index.data());
    };
    auto naive_call = [&] {
        auto m = naive_merge(d, opt);
        out = m.size();
        benchmark::DoNotOptimize(m.data());
    };
    if (naive) {
        for (auto _ : state) naive_call();
    } else {
        for (auto _ : state) fast_call();
        const double fast = seconds_per_call(fast_call);
        state.counters["speedup_vs_naive"] = naive_seconds("merge", naive_call) / fast;
    }
    state.counters["detections_out"] = double(out);
}

// ---------------------------------------------------------------------------------
// The guard: snip == naive on every benchmark input

bool check(const char* what, bool same) {
    if (!same) std::fprintf(stderr, "[check] %s: snip and naive DIFFER\n", what);
    return same;
}

bool check_all(std::string& summary) {
    const auto& d = nms_data();
    bool ok = true;
    for (double thr : {0.7, 0.5}) {
        const auto want = naive_nms(d.xyxy.data(), d.scores.data(), d.size(), thr);
        for (auto alg : {snip::nms_algorithm::automatic, snip::nms_algorithm::greedy,
                         snip::nms_algorithm::grid, snip::nms_algorithm::bitmask})
            ok = check("nms", snip::nms(view(d), d.scores, thr, nms_opts(alg, 2)) == want) && ok;
        summary += snip::concat("nms@", thr, " keeps ", want.size(), "; ");
    }
    const auto wb = naive_batched(d, 0.5);
    ok = check("batched_nms", snip::batched_nms(view(d), d.scores,
                                                std::span<const std::int32_t>(d.cls), 0.5) == wb) && ok;
    summary += snip::concat("batched@0.5 keeps ", wb.size(), "; ");
    const auto& s = soft_data();
    for (auto m : {snip::soft_nms_method::gaussian, snip::soft_nms_method::linear}) {
        const auto want = naive_soft(s.xyxy.data(), s.scores, soft_opts(m));
        const auto got = snip::soft_nms(view(s), s.scores, soft_opts(m));
        ok = check("soft_nms", got.keep == want.keep && got.scores == want.scores) && ok;
        summary += snip::concat(m == snip::soft_nms_method::linear ? "soft linear" : "soft gaussian",
                                        " keeps ", want.keep.size(), "; ");
    }
    const auto& md = merge_data();
    const auto mo = snip::multiscale_merge_options::sniper_coco();
    const auto wm = naive_merge(md, mo);
    const auto gm = snip::merge_multiscale(view(md), md.scores, md.cls, md.scale, mo);
    bool same = gm.size() == wm.size();
    for (std::size_t k = 0; same && k < wm.size(); ++k)
        same = gm.index[k] == wm[k].first && gm.scores[k] == wm[k].second;
    ok = check("merge_multiscale", same) && ok;
    summary += snip::concat("merge keeps ", wm.size());
    return ok;
}

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (argc > 1) {
        std::fprintf(stderr, "bench_nms: unknown argument '%s'\n", argv[1]);
        return 2;
    }
    std::string summary;
    if (!check_all(summary)) return 1;
    std::printf("[check] snip == naive on every input (%s)\n", summary.c_str());

    snip_bench::add_build_context();
    benchmark::AddCustomContext(
        "nms_data", snip::concat(nms_boxes, " float boxes in ", image_w, "x", image_h, ": 85% jittered copies of ",
                                         nms_objects, " objects (sides 16..400 px, edges +-20%), 15% background; ",
                                         merge_classes, " classes; seed ", nms_seed));
    benchmark::AddCustomContext(
        "soft_nms_data", snip::concat(soft_boxes, " boxes around ", soft_objects,
                                              " objects, seed ", soft_seed,
                                              "; gaussian sigma 0.5, linear Nt 0.3, threshold 0.001"));
    benchmark::AddCustomContext(
        "merge_data", snip::concat("3 scales x ", merge_per_scale, " detections, ", merge_classes,
                                           " classes, sniper_coco options (sigma 0.55, 200 per image)"));
    benchmark::AddCustomContext("check", "snip == naive: " + summary);

    for (double thr : {0.7, 0.5}) {
        const std::string t = "/boxes:10000/iou:" + thr_key(thr);
        struct row {
            const char* name;
            snip::nms_algorithm alg;
            unsigned threads;
        };
        for (const row& r : {row{"snip", snip::nms_algorithm::automatic, 1},
                             row{"greedy", snip::nms_algorithm::greedy, 1},
                             row{"bitmask_t1", snip::nms_algorithm::bitmask, 1},
                             row{"bitmask_t2", snip::nms_algorithm::bitmask, 2}})
            benchmark::RegisterBenchmark(("nms/" + std::string(r.name) + t).c_str(),
                                         [r, thr](benchmark::State& s) { bm_nms(s, r.alg, r.threads, thr); })
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
        benchmark::RegisterBenchmark(("nms/naive" + t).c_str(),
                                     [thr](benchmark::State& s) { bm_nms_naive(s, thr); })
            ->Unit(benchmark::kMicrosecond);
    }
    benchmark::RegisterBenchmark("batched_nms/snip/boxes:10000/classes:80",
                                 [](benchmark::State& s) { bm_batched(s, false); })
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("batched_nms/naive/boxes:10000/classes:80",
                                 [](benchmark::State& s) { bm_batched(s, true); })
        ->Unit(benchmark::kMicrosecond);
    for (auto m : {snip::soft_nms_method::gaussian, snip::soft_nms_method::linear}) {
        const std::string name = m == snip::soft_nms_method::linear ? "linear" : "gaussian";
        benchmark::RegisterBenchmark(("soft_nms/snip/" + name + "/boxes:2000").c_str(),
                                     [m](benchmark::State& s) { bm_soft(s, m, false); })
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("soft_nms/naive/" + name + "/boxes:2000").c_str(),
                                     [m](benchmark::State& s) { bm_soft(s, m, true); })
            ->Unit(benchmark::kMicrosecond);
    }
    benchmark::RegisterBenchmark("merge/snip/sniper_coco/dets:3000",
                                 [](benchmark::State& s) { bm_merge(s, false); })
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark("merge/naive/sniper_coco/dets:3000",
                                 [](benchmark::State& s) { bm_merge(s, true); })
        ->Unit(benchmark::kMicrosecond);

    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
