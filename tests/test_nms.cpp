// Hard NMS, batched NMS, Soft-NMS and the multi-scale merge of nms.hpp, against slow,
// obviously-correct references written here (the textbook loops, torchvision's arithmetic).
#include "test_util.hpp"

#include <snip/core/random.hpp>
#include <snip/ops/batched_nms.hpp>
#include <snip/ops/merge.hpp>
#include <snip/ops/nms.hpp>
#include <snip/ops/soft_nms.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

using snip::box;
using snip::nms_algorithm;
using snip::nms_options;
using snip::pixel_convention;
using snip::soft_nms_method;
using snip::soft_nms_options;

namespace {

// ------------------------------------------------------------------------------------
// References

/// torchvision's IoU, literally: areas and intersection with + e pixels, no guard (0/0 is
/// NaN). Boxes are valid (x1 <= x2, y1 <= y2).
template <class T>
T ref_iou(const box<T>& a, const box<T>& b, T e) {
    const T area_a = (a.x2 - a.x1 + e) * (a.y2 - a.y1 + e);
    const T area_b = (b.x2 - b.x1 + e) * (b.y2 - b.y1 + e);
    const T w = std::max(T(0), std::min(a.x2, b.x2) - std::max(a.x1, b.x1) + e);
    const T h = std::max(T(0), std::min(a.y2, b.y2) - std::max(a.y1, b.y1) + e);
    const T inter = w * h;
    return inter / (area_a + area_b - inter);
}

template <class T>
box<T> get(const std::vector<T>& xyxy, std::size_t i) {
    return {xyxy[4 * i], xyxy[4 * i + 1], xyxy[4 * i + 2], xyxy[4 * i + 3]};
}

/// Indices by decreasing score, equal scores by increasing index.
template <class T>
std::vector<std::int64_t> ref_order(const std::vector<T>& scores) {
    std::vector<std::int64_t> o(scores.size());
    std::iota(o.begin(), o.end(), 0);
    std::stable_sort(o.begin(), o.end(),
                     [&](std::int64_t a, std::int64_t b) { return scores[a] > scores[b]; });
    return o;
}

/// The textbook greedy NMS of torchvision (suppress IoU > thr, compared as double).
template <class T>
std::vector<std::int64_t> ref_nms(const std::vector<T>& xyxy, const std::vector<T>& scores,
                                  double thr, T e = T(0)) {
    const auto order = ref_order(scores);
    std::vector<char> suppressed(scores.size(), 0);
    std::vector<std::int64_t> keep;
    for (std::size_t a = 0; a < order.size(); ++a) {
        const auto i = std::size_t(order[a]);
        if (suppressed[i]) continue;
        keep.push_back(order[a]);
        for (std::size_t b = a + 1; b < order.size(); ++b) {
            const auto j = std::size_t(order[b]);
            if (!suppressed[j] && double(ref_iou(get(xyxy, i), get(xyxy, j), e)) > thr)
                suppressed[j] = 1;
        }
    }
    return keep;
}

/// Per class: ref_nms on the class's boxes; all kept merged by score (ties: index).
template <class T>
std::vector<std::int64_t> ref_batched(const std::vector<T>& xyxy, const std::vector<T>& scores,
                                      const std::vector<std::int64_t>& cls, double thr) {
    std::vector<std::int64_t> ids = cls;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::vector<std::int64_t> all;
    for (auto c : ids) {
        std::vector<T> sb, ss;
        std::vector<std::int64_t> back;
        for (std::size_t i = 0; i < cls.size(); ++i)
            if (cls[i] == c) {
                for (int k = 0; k < 4; ++k) sb.push_back(xyxy[4 * i + std::size_t(k)]);
                ss.push_back(scores[i]);
                back.push_back(std::int64_t(i));
            }
        for (auto k : ref_nms(sb, ss, thr)) all.push_back(back[std::size_t(k)]);
    }
    std::stable_sort(all.begin(), all.end());
    std::stable_sort(all.begin(), all.end(),
                     [&](std::int64_t a, std::int64_t b) { return scores[a] > scores[b]; });
    return all;
}

/// Soft-NMS, the plain O(N^2) loop over a list of remaining boxes.
template <class T>
snip::soft_nms_result<T> ref_soft_nms(const std::vector<T>& xyxy, std::vector<T> s,
                                      const soft_nms_options& o) {
    const T e = o.convention == pixel_convention::inclusive ? T(1) : T(0);
    std::vector<std::size_t> rest;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (!(double(s[i]) < o.score_threshold)) rest.push_back(i);
    snip::soft_nms_result<T> r;
    while (!rest.empty() && r.keep.size() < o.max_out) {
        std::size_t best = 0;
        for (std::size_t k = 1; k < rest.size(); ++k)
            if (s[rest[k]] > s[rest[best]] || (s[rest[k]] == s[rest[best]] && rest[k] < rest[best]))
                best = k;
        const std::size_t i = rest[best];
        rest.erase(rest.begin() + std::ptrdiff_t(best));
        r.keep.push_back(std::int64_t(i));
        r.scores.push_back(s[i]);
        std::vector<std::size_t> next;
        for (std::size_t j : rest) {
            T ov = ref_iou(get(xyxy, i), get(xyxy, j), e);
            if (std::isnan(ov)) ov = T(0);
            T w = T(1);
            if (o.method == soft_nms_method::linear) {
                if (double(ov) > o.iou_threshold) w = T(1) - ov;
            } else {
                w = T(std::exp(double(-(ov * ov) / T(o.sigma))));
            }
            s[j] = w * s[j];
            if (!(double(s[j]) < o.score_threshold)) next.push_back(j);
        }
        rest = next;
    }
    return r;
}

// ------------------------------------------------------------------------------------
// Random detections

struct dets {
    std::vector<double> xyxy, scores;
    std::vector<std::int64_t> cls;
};

/// Clustered detections around n/8 objects with: whole-pixel coordinates (flavor 0, so
/// exact IoU ties happen), scores from 9 values (flavor 0) or continuous, ~5% exact
/// duplicates of an earlier box, ~5% zero-area boxes, ~3% huge boxes, ~2% far boxes.
dets make_dets(std::uint64_t seed, int n, int flavor, int classes = 3) {
    snip::splitmix64 g{seed * 7919 + std::uint64_t(n) * 31 + std::uint64_t(flavor)};
    const int objects = std::max(1, n / 8);
    std::vector<std::array<double, 4>> obj(static_cast<std::size_t>(objects));
    for (auto& o : obj) {
        const double w = 8 + 150 * g.uniform(), h = 8 + 150 * g.uniform();
        o = {600 * g.uniform(), 400 * g.uniform(), w, h};
    }
    auto q = [&](double v) { return flavor == 0 ? std::round(v) : v; };
    dets d;
    for (int i = 0; i < n; ++i) {
        const double r = g.uniform();
        double x1, y1, x2, y2;
        if (r < 0.05 && i > 0) {
            const auto j = std::size_t(g.below(std::uint64_t(i)));
            x1 = d.xyxy[4 * j];
            y1 = d.xyxy[4 * j + 1];
            x2 = d.xyxy[4 * j + 2];
            y2 = d.xyxy[4 * j + 3];
        } else if (r < 0.08) {
            x1 = q(-50 + 100 * g.uniform());
            y1 = q(-50 + 100 * g.uniform());
            // 200 .. 4000 px: some span more cells than the grid lists (its `big` list)
            x2 = x1 + q(200 * std::pow(20.0, g.uniform()));
            y2 = y1 + q(200 * std::pow(20.0, g.uniform()));
        } else {
            const auto& o = obj[std::size_t(g.below(std::uint64_t(objects)))];
            const double jx = 0.15 * o[2], jy = 0.15 * o[3];
            x1 = q(o[0] + jx * (2 * g.uniform() - 1));
            y1 = q(o[1] + jy * (2 * g.uniform() - 1));
            x2 = std::max(x1, q(o[0] + o[2] + jx * (2 * g.uniform() - 1)));
            y2 = std::max(y1, q(o[1] + o[3] + jy * (2 * g.uniform() - 1)));
            if (r >= 0.13 && r < 0.15) {
                x1 += 5000;
                x2 += 5000;
            }
        }
        // zero-area: x2 = x1 or y2 = y1
        if (r >= 0.08 && r < 0.13) {
            if (g.uniform() < 0.5)
                x2 = x1;
            else
                y2 = y1;
        }
        d.xyxy.insert(d.xyxy.end(), {x1, y1, x2, y2});
        d.scores.push_back(flavor == 0 ? double(1 + g.below(9)) / 10.0 : g.uniform());
        d.cls.push_back(std::int64_t(g.below(std::uint64_t(classes))));
    }
    return d;
}

template <class T>
std::vector<T> as(const std::vector<double>& v) {
    return std::vector<T>(v.begin(), v.end());
}

template <class V>
std::string str(const V& v) {
    std::ostringstream os;
    os << "{";
    for (std::size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
    os << "}";
    return os.str();
}

using snip_test::error_of;

const nms_algorithm all_algorithms[] = {nms_algorithm::automatic, nms_algorithm::greedy,
                                        nms_algorithm::grid, nms_algorithm::bitmask};

} // namespace

// ======================================================================================

TEST_CASE("nms: hand-made cases, strict threshold") {
    // IoU of box 0 and box 1 is exactly 0.5 (50 / 100).
    std::vector<float> b = {0, 0, 10, 10, 0, 0, 10, 5, 100, 100, 110, 110};
    std::vector<float> s = {0.9f, 0.8f, 0.7f};
    const auto v = snip::as_box_view(b);
    CHECK(snip::nms(v, s, 0.5) == std::vector<std::int64_t>{0, 1, 2});
    CHECK(snip::nms(v, s, 0.4999) == std::vector<std::int64_t>{0, 2});
    // order by score, not by index
    std::vector<float> s2 = {0.1f, 0.8f, 0.9f};
    CHECK(snip::nms(v, s2, 0.4) == std::vector<std::int64_t>{2, 1});
    // equal scores: lower index first
    std::vector<float> s3 = {0.5f, 0.5f, 0.5f};
    CHECK(snip::nms(v, s3, 0.4) == std::vector<std::int64_t>{0, 2});
    // -0.0 and +0.0 are equal scores
    std::vector<float> s4 = {-0.0f, 0.0f, -1.0f};
    CHECK(snip::nms(v, s4, 0.4) == std::vector<std::int64_t>{0, 2});
    // threshold 1: nothing suppressed even for identical boxes
    std::vector<float> same = {1, 1, 5, 5, 1, 1, 5, 5};
    std::vector<float> ss = {0.2f, 0.3f};
    CHECK(snip::nms(snip::as_box_view(same), ss, 1.0) == std::vector<std::int64_t>{1, 0});
    CHECK(snip::nms(snip::as_box_view(same), ss, 0.99) == std::vector<std::int64_t>{1});
    // zero-area boxes never suppress and are never suppressed (threshold >= 0)...
    std::vector<double> z = {0, 0, 0, 10, 0, 0, 0, 10, 0, 0, 10, 10};
    std::vector<double> zs = {0.9, 0.8, 0.7};
    CHECK(snip::nms(snip::as_box_view(z), zs, 0.0) == std::vector<std::int64_t>{0, 1, 2});
    // ... but a negative threshold suppresses everything with a positive union
    CHECK(snip::nms(snip::as_box_view(z), zs, -0.1) == std::vector<std::int64_t>{0, 1});
    CHECK(ref_nms(z, zs, -0.1) == std::vector<std::int64_t>{0, 1});
}

// Golden outputs of torchvision 0.14.1 (torch 1.13, Debian 12 python3-torchvision),
// produced once with a throwaway script calling torchvision.ops.nms / batched_nms on
// these float32 tensors; the expected lists are its output verbatim.
TEST_CASE("nms, batched_nms: torchvision golden outputs") {
    // A: 30 boxes on whole pixels, 9 score values (ties), duplicates (7, 19, 25) and
    // zero-area boxes (4, 13, 28).
    const std::vector<float> a_boxes = {
        69, 119, 114, 194, 186, 97, 234, 182, 123, 51, 173, 83,
        116, 46, 172, 81, 59, 127, 59, 193, 71, 123, 121, 187,
        178, 114, 224, 193, 59, 127, 59, 193, 120, 49, 170, 85,
        129, 52, 182, 128, 137, 46, 181, 132, 130, 50, 187, 140,
        63, 131, 113, 184, 59, 135, 59, 183, 178, 95, 228, 191,
        183, 98, 222, 175, 60, 131, 116, 195, 139, 48, 177, 130,
        61, 121, 126, 188, 60, 131, 116, 195, 127, 44, 166, 82,
        186, 98, 226, 180, 124, 51, 162, 77, 178, 107, 223, 195,
        192, 111, 230, 171, 124, 51, 162, 77, 181, 106, 230, 194,
        180, 93, 223, 188, 112, 50, 112, 84, 186, 113, 226, 169};
    const std::vector<float> a_scores = {
        0.2f, 0.5f, 0.1f, 0.3f, 0.1f, 0.2f, 0.4f, 0.4f, 0.4f, 0.8f, 0.3f, 0.8f, 0.6f, 0.5f, 0.8f,
        0.8f, 0.4f, 0.7f, 0.8f, 0.7f, 0.3f, 0.4f, 0.3f, 0.5f, 0.7f, 0.4f, 0.3f, 0.6f, 0.8f, 0.1f};
    const auto av = snip::as_box_view(a_boxes);
    for (auto alg : all_algorithms) {
        nms_options o;
        o.algorithm = alg;
        CHECK(snip::nms(av, a_scores, 0.3, o) == std::vector<std::int64_t>{9, 14, 18, 28, 13, 7, 25, 4});
        CHECK(snip::nms(av, a_scores, 0.5, o) ==
              std::vector<std::int64_t>{9, 14, 18, 28, 24, 13, 7, 8, 4});
        CHECK(snip::nms(av, a_scores, 0.7, o) ==
              std::vector<std::int64_t>{9, 14, 15, 18, 28, 17, 19, 24, 1, 13, 7, 8, 25, 20, 0, 4});
    }

    // B: 40 boxes on a quarter-pixel grid, 3 classes.
    const std::vector<float> b_boxes = {
        120.5, 36.0, 165.5, 77.0, 125.0, 51.75, 183.25, 135.5, 141.5, 46.5, 194.25, 126.0,
        126.25, 46.75, 181.75, 79.75, 182.0, 113.25, 218.25, 195.0, 114.25, 41.5, 153.0, 77.25,
        60.0, 132.75, 110.0, 197.25, 137.75, 60.5, 196.25, 139.75, 176.0, 97.75, 212.75, 177.25,
        129.75, 61.0, 171.75, 131.5, 124.75, 53.5, 171.0, 126.25, 69.25, 135.0, 118.5, 194.75,
        123.75, 39.25, 180.75, 72.75, 141.75, 50.0, 188.0, 119.0, 116.25, 48.0, 171.25, 91.25,
        138.25, 63.25, 182.75, 140.0, 60.75, 135.75, 117.0, 203.0, 122.75, 48.5, 169.75, 83.5,
        182.5, 105.25, 222.75, 186.5, 142.25, 54.75, 190.25, 129.75, 141.25, 46.5, 188.25, 127.5,
        183.25, 107.0, 232.75, 179.25, 61.0, 134.0, 110.25, 189.75, 189.75, 113.25, 231.5, 190.5,
        191.5, 106.25, 233.5, 180.0, 135.5, 45.75, 193.5, 126.75, 114.25, 39.0, 165.75, 83.5,
        58.0, 119.25, 121.5, 180.25, 118.25, 52.5, 162.25, 91.25, 181.0, 109.0, 222.5, 179.0,
        127.75, 48.0, 185.5, 125.5, 187.25, 112.75, 223.25, 187.75, 180.25, 103.25, 217.5, 183.5,
        114.0, 46.75, 165.0, 82.25, 69.5, 124.5, 115.0, 196.75, 64.0, 121.25, 127.0, 182.75,
        191.0, 102.0, 230.75, 187.5, 188.5, 111.25, 227.5, 183.25, 182.25, 102.0, 216.0, 189.5,
        123.5, 52.75, 174.75, 78.75};
    const std::vector<float> b_scores = {
        0.4753f, 0.2769f, 0.3595f, 0.3475f, 0.4822f, 0.6772f, 0.4479f, 0.5525f, 0.0314f, 0.9123f,
        0.1872f, 0.651f, 0.4956f, 0.3612f, 0.4862f, 0.9395f, 0.0646f, 0.7369f, 0.9758f, 0.2681f,
        0.1822f, 0.4666f, 0.6212f, 0.1411f, 0.1151f, 0.0493f, 0.7564f, 0.7475f, 0.7087f, 0.0821f,
        0.4797f, 0.9443f, 0.5267f, 0.6747f, 0.8451f, 0.6701f, 0.6625f, 0.6558f, 0.6343f, 0.4882f};
    const std::vector<std::int64_t> b_classes = {2, 0, 2, 0, 2, 2, 2, 1, 2, 0, 1, 2, 1, 1,
                                                 1, 0, 0, 2, 2, 2, 1, 1, 1, 0, 0, 1, 0, 2,
                                                 1, 1, 0, 0, 1, 1, 2, 0, 0, 0, 1, 2};
    const auto bv = snip::as_box_view(b_boxes);
    CHECK(snip::nms(bv, b_scores, 0.5) == std::vector<std::int64_t>{18, 15, 34, 26, 39, 10});
    CHECK(snip::batched_nms(bv, b_scores, b_classes, 0.5) ==
          std::vector<std::int64_t>{18, 31, 15, 34, 26, 17, 28, 5, 35, 38, 22, 7, 12, 2, 3, 10, 16});
    CHECK(snip::batched_nms(bv, b_scores, b_classes, 0.3) ==
          std::vector<std::int64_t>{18, 31, 15, 34, 26, 17, 28, 35, 38, 22, 7, 12, 2});

    // C: IoU exactly 3/10. In float32 that is 0.3f = 0.30000001 > 0.3 (the double
    // threshold): suppressed; in float64 it equals 0.3: kept.
    const std::vector<float> cf = {0, 0, 10, 1, 0, 0, 3, 1};
    const std::vector<double> cd = {0, 0, 10, 1, 0, 0, 3, 1};
    CHECK(snip::nms(snip::as_box_view(cf), std::vector<float>{0.9f, 0.8f}, 0.3) ==
          std::vector<std::int64_t>{0});
    CHECK(snip::nms(snip::as_box_view(cd), std::vector<double>{0.9, 0.8}, 0.3) ==
          std::vector<std::int64_t>{0, 1});
}

TEST_CASE("nms: threshold is compared as a double") {
    // x > nms_threshold<float>(t) must equal double(x) > t for floats around float(t).
    snip::splitmix64 g{42};
    for (int k = 0; k < 2000; ++k) {
        double t = g.uniform() * 2.0 - 0.5;
        if (k % 7 == 0) t = double(float(t)); // exactly representable
        const float f = snip::nms_threshold<float>(t);
        float x = float(t);
        for (int u = 0; u < 3; ++u) x = std::nextafter(x, -10.0f);
        for (int u = 0; u < 7; ++u, x = std::nextafter(x, 10.0f))
            REQUIRE((x > f) == (double(x) > t));
    }
    CHECK(snip::nms_threshold<float>(0.3) < 0.3f); // float(0.3) > 0.3: 0.3f itself is above
    CHECK(snip::nms_threshold<double>(0.3) == 0.3);
    CHECK(snip::nms_threshold<float>(1e300) == std::numeric_limits<float>::max());
    CHECK(snip::nms_threshold<float>(-1e300) == -std::numeric_limits<float>::infinity());
}

TEST_CASE("nms: equals the reference on random clustered detections") {
    const double thresholds[] = {0.0, 0.3, 0.5, 0.7, 0.95, 1.0};
    const int sizes[] = {0, 1, 2, 7, 40, 150};
    int runs = 0;
    for (std::uint64_t seed = 1; seed <= 6; ++seed)
        for (int n : sizes)
            for (int flavor = 0; flavor < 2; ++flavor) {
                const dets d = make_dets(seed, n, flavor);
                const auto bf = as<float>(d.xyxy);
                const auto sf = as<float>(d.scores);
                for (double thr : thresholds) {
                    const auto want_d = ref_nms(d.xyxy, d.scores, thr);
                    const auto want_f = ref_nms(bf, sf, thr);
                    const auto want_i = ref_nms(d.xyxy, d.scores, thr, 1.0);
                    for (auto alg : all_algorithms) {
                        INFO("seed ", seed, " n ", n, " flavor ", flavor, " thr ", thr, " alg ",
                             int(alg));
                        nms_options o;
                        o.algorithm = alg;
                        const auto got_d = snip::nms(snip::as_box_view(d.xyxy), d.scores, thr, o);
                        REQUIRE(str(got_d) == str(want_d));
                        const auto got_f = snip::nms(snip::as_box_view(bf), sf, thr, o);
                        REQUIRE(str(got_f) == str(want_f));
                        o.convention = pixel_convention::inclusive;
                        const auto got_i = snip::nms(snip::as_box_view(d.xyxy), d.scores, thr, o);
                        REQUIRE(str(got_i) == str(want_i));
                        ++runs;
                    }
                }
            }
    CHECK(runs == 6 * 6 * 2 * 6 * 4);
}

TEST_CASE("nms: boxes below one square pixel (areas with negative binary exponents)") {
    // Areas in [0.25, 0.5) have binary exponent -1, which the grid once took for its "not
    // listed" mark and crashed on; decoded RPN boxes clipped to an image edge are often this
    // thin. Areas from 1e-6 to 1e4 mixed, on every algorithm, against the reference.
    std::vector<double> xyxy, scores;
    const double sides[][2] = {{0.6, 0.6}, {0.5, 0.9}, {0.01, 30}, {1e-3, 1e-3}, {0.7, 0.5},
                               {2, 3},     {40, 60},   {0.3, 1.2}, {100, 100},  {0.55, 0.8}};
    for (int k = 0; k < 60; ++k) {
        const auto& sd = sides[k % 10];
        const double x = 3.0 * (k % 7), y = 2.0 * (k % 5);
        xyxy.insert(xyxy.end(), {x, y, x + sd[0], y + sd[1]});
        scores.push_back(1.0 - 0.01 * k);
    }
    for (double thr : {0.0, 0.3, 0.7})
        for (auto alg : all_algorithms) {
            INFO("thr ", thr, " alg ", int(alg));
            nms_options o;
            o.algorithm = alg;
            const auto want = ref_nms(xyxy, scores, thr);
            CHECK(str(snip::nms(snip::as_box_view(xyxy), scores, thr, o)) == str(want));
        }
}

TEST_CASE("nms: larger inputs (grid with big boxes, radix sort) and a negative threshold") {
    for (std::uint64_t seed = 100; seed < 103; ++seed) {
        const dets d = make_dets(seed, 700, int(seed % 2));
        const auto bf = as<float>(d.xyxy);
        const auto sf = as<float>(d.scores);
        for (double thr : {0.0, 0.5, 0.7}) {
            const auto want = ref_nms(bf, sf, thr);
            for (auto alg : all_algorithms) {
                INFO("seed ", seed, " thr ", thr, " alg ", int(alg));
                nms_options o;
                o.algorithm = alg;
                CHECK(str(snip::nms(snip::as_box_view(bf), sf, thr, o)) == str(want));
            }
        }
    }
    const dets d = make_dets(7, 120, 0);
    for (auto alg : all_algorithms) {
        nms_options o;
        o.algorithm = alg; // grid falls back to greedy for thr < 0
        CHECK(str(snip::nms(snip::as_box_view(d.xyxy), d.scores, -0.25, o)) ==
              str(ref_nms(d.xyxy, d.scores, -0.25)));
    }
}

TEST_CASE("nms, soft_nms: thin lines among boxes of the same area (the grid's big lists)") {
    // 10x10 boxes and 2000 x 0.05 lines have the same area (one grid level); a line spans
    // far more cells than the level lists per box.
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
        snip::splitmix64 g{seed};
        std::vector<double> b, s;
        for (int i = 0; i < 400; ++i) {
            const bool line = i % 10 == 0;
            const double x = std::round(2000 * g.uniform()), y = std::round(200 * g.uniform());
            const double w = line ? 1500 + std::round(500 * g.uniform()) : 10;
            const double h = line ? 100.0 / w : 10;
            b.insert(b.end(), {x, y, x + w, y + h});
            s.push_back(double(1 + g.below(20)) / 20.0);
        }
        for (double thr : {0.0, 0.0005, 0.3, 0.5}) {
            const auto want = ref_nms(b, s, thr);
            for (auto alg : all_algorithms) {
                INFO("seed ", seed, " thr ", thr, " alg ", int(alg));
                nms_options o;
                o.algorithm = alg;
                CHECK(str(snip::nms(snip::as_box_view(b), s, thr, o)) == str(want));
            }
        }
        for (auto m : {soft_nms_method::gaussian, soft_nms_method::linear}) {
            soft_nms_options o;
            o.method = m;
            o.iou_threshold = 0.0;
            const auto want = ref_soft_nms(b, s, o);
            const auto got = snip::soft_nms(snip::as_box_view(b), s, o);
            CHECK(got.keep == want.keep);
            CHECK(got.scores == want.scores);
        }
    }
}

TEST_CASE("nms: max_out keeps the reference's prefix") {
    const dets d = make_dets(11, 300, 0);
    const auto want = ref_nms(d.xyxy, d.scores, 0.5);
    REQUIRE(want.size() > 20);
    for (std::size_t m : {std::size_t(0), std::size_t(1), std::size_t(5), std::size_t(20),
                          want.size(), want.size() + 3}) {
        for (auto alg : all_algorithms) {
            nms_options o;
            o.max_out = m;
            o.algorithm = alg;
            const auto got = snip::nms(snip::as_box_view(d.xyxy), d.scores, 0.5, o);
            const std::vector<std::int64_t> prefix(want.begin(),
                                                   want.begin() + std::ptrdiff_t(std::min(m, want.size())));
            CHECK(got == prefix);
        }
    }
}

TEST_CASE("nms: strided views and empty input") {
    const dets d = make_dets(5, 90, 1);
    const std::size_t n = d.scores.size();
    // rows of 6 numbers: [junk, x1, y1, x2, y2, junk]
    std::vector<double> rows(6 * n, -7.0);
    // transposed: 4 rows of n (x1 row, y1 row, ...)
    std::vector<double> cols(4 * n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t k = 0; k < 4; ++k) {
            rows[6 * i + 1 + k] = d.xyxy[4 * i + k];
            cols[k * n + i] = d.xyxy[4 * i + k];
        }
    const auto want = ref_nms(d.xyxy, d.scores, 0.45);
    const snip::box_view<const double> vr(rows.data() + 1, std::ptrdiff_t(n), 6, 1);
    const snip::box_view<const double> vc(cols.data(), std::ptrdiff_t(n), 1, std::ptrdiff_t(n));
    CHECK(snip::nms(vr, d.scores, 0.45) == want);
    CHECK(snip::nms(vc, d.scores, 0.45) == want);
    // a mutable view works too
    snip::box_view<double> vm(cols.data(), std::ptrdiff_t(n), 1, std::ptrdiff_t(n));
    CHECK(snip::nms(vm, d.scores, 0.45) == want);

    std::vector<float> none;
    CHECK(snip::nms(snip::as_box_view(none), none, 0.5).empty());
    std::vector<std::int32_t> no_cls;
    CHECK(snip::batched_nms(snip::as_box_view(none), none, no_cls, 0.5).empty());
    CHECK(snip::soft_nms(snip::as_box_view(none), none).size() == 0);
    std::vector<int> no_scale;
    CHECK(snip::merge_multiscale(snip::as_box_view(none), none, no_cls, no_scale).size() == 0);
}

TEST_CASE("nms: span API with a reused workspace") {
    snip::nms_workspace<float> ws;
    for (int round = 0; round < 3; ++round)
        for (int n : {200, 3, 0, 57, 400}) {
            const dets d = make_dets(std::uint64_t(round * 10 + n), n, round % 2);
            const auto b = as<float>(d.xyxy);
            const auto s = as<float>(d.scores);
            std::vector<std::int64_t> keep(static_cast<std::size_t>(n));
            const auto cnt = snip::nms(snip::as_box_view(b), s, 0.6, std::span<std::int64_t>(keep), ws);
            keep.resize(cnt);
            CHECK(keep == ref_nms(b, s, 0.6));
            std::vector<std::int64_t> bk(static_cast<std::size_t>(n));
            const auto bc = snip::batched_nms(snip::as_box_view(b), s,
                                              std::span<const std::int64_t>(d.cls), 0.6,
                                              std::span<std::int64_t>(bk), ws);
            bk.resize(bc);
            CHECK(bk == ref_batched(b, s, d.cls, 0.6));
        }
}

TEST_CASE("batched_nms: equals per-class reference NMS") {
    for (std::uint64_t seed = 1; seed <= 8; ++seed)
        for (int n : {0, 1, 5, 60, 250})
            for (int classes : {1, 3, 40}) {
                dets d = make_dets(seed, n, int(seed % 2), classes);
                INFO("seed ", seed, " n ", n, " classes ", classes);
                const auto want = ref_batched(d.xyxy, d.scores, d.cls, 0.5);
                CHECK(snip::batched_nms(snip::as_box_view(d.xyxy), d.scores, d.cls, 0.5) == want);
                std::vector<std::int32_t> c32(d.cls.begin(), d.cls.end());
                nms_options o;
                o.algorithm = nms_algorithm::bitmask;
                CHECK(snip::batched_nms(snip::as_box_view(d.xyxy), d.scores, c32, 0.5, o) == want);
                // sparse and negative ids (not counting-sortable) give the same grouping
                std::vector<std::int64_t> sparse = d.cls;
                for (auto& c : sparse) c = c * 1000000000007LL - 5;
                CHECK(snip::batched_nms(snip::as_box_view(d.xyxy), d.scores, sparse, 0.5) == want);
                // max_out: prefix
                o = {};
                o.max_out = 7;
                const auto got = snip::batched_nms(snip::as_box_view(d.xyxy), d.scores, d.cls, 0.5, o);
                CHECK(got == std::vector<std::int64_t>(
                                 want.begin(), want.begin() + std::ptrdiff_t(std::min<std::size_t>(7, want.size()))));
            }
    // extreme ids: the range test must not overflow
    std::vector<double> b = {0, 0, 10, 10, 0, 0, 10, 10, 0, 0, 10, 10};
    std::vector<double> s = {0.5, 0.6, 0.7};
    std::vector<std::int64_t> c = {std::numeric_limits<std::int64_t>::min(),
                                   std::numeric_limits<std::int64_t>::max(),
                                   std::numeric_limits<std::int64_t>::min()};
    CHECK(snip::batched_nms(snip::as_box_view(b), s, c, 0.5) == std::vector<std::int64_t>{2, 1});
}

TEST_CASE("soft_nms: equals the reference loop, linear and gaussian") {
    struct cfg {
        soft_nms_method m;
        double sigma, nt, st;
        pixel_convention conv;
    };
    const cfg cfgs[] = {
        {soft_nms_method::gaussian, 0.5, 0.3, 0.001, pixel_convention::continuous},
        {soft_nms_method::gaussian, 0.1, 0.3, 0.05, pixel_convention::continuous},
        {soft_nms_method::gaussian, 2.0, 0.3, 0.0, pixel_convention::inclusive},
        {soft_nms_method::linear, 0.5, 0.3, 0.001, pixel_convention::continuous},
        {soft_nms_method::linear, 0.5, 0.0, 0.2, pixel_convention::continuous},
        {soft_nms_method::linear, 0.5, 0.7, 0.001, pixel_convention::inclusive},
    };
    for (std::uint64_t seed = 1; seed <= 5; ++seed)
        for (int n : {0, 1, 2, 9, 80, 300})
            for (const auto& c : cfgs) {
                const dets d = make_dets(seed, n, int(seed % 2));
                soft_nms_options o;
                o.method = c.m;
                o.sigma = c.sigma;
                o.iou_threshold = c.nt;
                o.score_threshold = c.st;
                o.convention = c.conv;
                INFO("seed ", seed, " n ", n, " method ", int(c.m), " sigma ", c.sigma, " nt ", c.nt,
                     " st ", c.st);
                const auto want = ref_soft_nms(d.xyxy, d.scores, o);
                const auto got = snip::soft_nms(snip::as_box_view(d.xyxy), d.scores, o);
                REQUIRE(str(got.keep) == str(want.keep));
                REQUIRE(got.scores == want.scores);
                const auto bf = as<float>(d.xyxy);
                const auto sf = as<float>(d.scores);
                const auto wf = ref_soft_nms(bf, sf, o);
                const auto gf = snip::soft_nms(snip::as_box_view(bf), sf, o);
                REQUIRE(str(gf.keep) == str(wf.keep));
                REQUIRE(gf.scores == wf.scores);
                // selected scores never increase
                for (std::size_t k = 1; k < gf.scores.size(); ++k)
                    CHECK(gf.scores[k] <= gf.scores[k - 1]);
            }
}

TEST_CASE("soft_nms: hand-made gaussian and linear updates, max_out, strides") {
    // Two boxes with IoU 1/3 (10x10 and 10x20 sharing the 10x10), one far away.
    std::vector<double> b = {0, 0, 10, 10, 0, 0, 10, 20, 50, 50, 60, 60};
    std::vector<double> s = {0.9, 0.8, 0.7};
    soft_nms_options g;
    g.sigma = 0.5;
    auto r = snip::soft_nms(snip::as_box_view(b), s, g);
    REQUIRE(r.size() == 3);
    CHECK(r.keep == std::vector<std::int64_t>{0, 2, 1});
    const double iou = 100.0 / 200.0;
    CHECK(r.scores[2] == doctest::Approx(0.8 * std::exp(-iou * iou / 0.5)).epsilon(1e-12));
    soft_nms_options l;
    l.method = soft_nms_method::linear;
    l.iou_threshold = 0.3;
    r = snip::soft_nms(snip::as_box_view(b), s, l);
    CHECK(r.keep == std::vector<std::int64_t>{0, 2, 1});
    CHECK(r.scores[2] == doctest::Approx(0.8 * (1 - iou)).epsilon(1e-12));
    l.iou_threshold = 0.5; // IoU 0.5 is not > 0.5: unchanged
    r = snip::soft_nms(snip::as_box_view(b), s, l);
    CHECK(r.keep == std::vector<std::int64_t>{0, 1, 2});
    CHECK(r.scores == s);
    // a drop below the score threshold removes the box
    l.iou_threshold = 0.3;
    l.score_threshold = 0.5;
    r = snip::soft_nms(snip::as_box_view(b), s, l);
    CHECK(r.keep == std::vector<std::int64_t>{0, 2});
    // initial scores below the threshold are dropped up front
    std::vector<double> low = {0.9, 0.0005, 0.7};
    r = snip::soft_nms(snip::as_box_view(b), low);
    CHECK(r.keep == std::vector<std::int64_t>{0, 2});
    // max_out
    g.max_out = 2;
    r = snip::soft_nms(snip::as_box_view(b), s, g);
    CHECK(r.keep == std::vector<std::int64_t>{0, 2});
    // strided (transposed) view
    const dets d = make_dets(3, 120, 1);
    const std::size_t n = d.scores.size();
    std::vector<float> cols(4 * n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t k = 0; k < 4; ++k) cols[k * n + i] = float(d.xyxy[4 * i + k]);
    const auto sf = as<float>(d.scores);
    const snip::box_view<const float> vc(cols.data(), std::ptrdiff_t(n), 1, std::ptrdiff_t(n));
    const auto got = snip::soft_nms(vc, sf);
    const auto want = ref_soft_nms(as<float>(d.xyxy), sf, soft_nms_options{});
    CHECK(got.keep == want.keep);
    CHECK(got.scores == want.scores);
    // span API with a workspace shared with hard NMS
    snip::nms_workspace<float> ws;
    std::vector<std::int64_t> keep(n);
    std::vector<float> ks(n);
    (void)snip::nms(vc, sf, 0.5, std::span<std::int64_t>(keep), ws);
    const auto cnt = snip::soft_nms(vc, sf, soft_nms_options{}, std::span<std::int64_t>(keep),
                                    std::span<float>(ks), ws);
    keep.resize(cnt);
    ks.resize(cnt);
    CHECK(keep == want.keep);
    CHECK(ks == want.scores);
}

TEST_CASE("SNIP_HD helpers: iou_above, mask words and the host mask reduction") {
    const box<float> a{0, 0, 10, 10}, b{0, 0, 10, 5}, z{3, 3, 3, 9};
    CHECK_FALSE(snip::iou_above(a, b, 0.5f));
    CHECK(snip::iou_above(a, b, 0.49f));
    CHECK_FALSE(snip::iou_above(z, z, -1.0f)); // union 0: false, as torchvision's NaN
    CHECK(snip::iou_above(a, z, -0.5f));       // IoU 0 > -0.5
    CHECK(snip::nms_area(a) == 100.0f);
    CHECK(snip::nms_area(a, 1.0f) == 121.0f);
    CHECK(snip::nms_area(box<float>{5, 5, 4, 9}) == 0.0f);
    CHECK(snip::nms_iou(a, 121.0f, box<float>{10, 0, 20, 10}, 121.0f, 1.0f) ==
          doctest::Approx(11.0 / 231.0));

    // The CUDA algorithm on the host: masks from nms_mask_word, reduced by reduce_nms_masks.
    for (std::uint64_t seed = 1; seed <= 4; ++seed)
        for (int n : {0, 1, 63, 64, 65, 200}) {
            const dets d = make_dets(seed, n, 0);
            const auto order = ref_order(d.scores);
            std::vector<double> sorted(4 * std::size_t(n)), area(static_cast<std::size_t>(n));
            for (std::size_t p = 0; p < std::size_t(n); ++p) {
                for (std::size_t k = 0; k < 4; ++k)
                    sorted[4 * p + k] = d.xyxy[4 * std::size_t(order[p]) + k];
                area[p] = snip::nms_area(get(sorted, p));
            }
            const double thr = snip::nms_threshold<double>(0.55);
            const std::int64_t blocks = (n + 63) / 64;
            std::vector<std::uint64_t> masks(snip::nms_mask_words(n), 0);
            for (std::int64_t i = 0; i < n; ++i)
                for (std::int64_t cb = i / 64; cb < blocks; ++cb) {
                    const int begin = cb == i / 64 ? int(i % 64) + 1 : 0;
                    const int end = int(std::min<std::int64_t>(64, n - cb * 64));
                    masks[std::size_t(i * blocks + cb)] = snip::nms_mask_word(
                        get(sorted, std::size_t(i)), area[std::size_t(i)], sorted.data() + 4 * 64 * cb,
                        area.data() + 64 * cb, begin, end, thr);
                }
            std::vector<std::int64_t> pos(static_cast<std::size_t>(n));
            pos.resize(snip::reduce_nms_masks(masks, n, pos));
            std::vector<std::int64_t> got;
            for (auto p : pos) got.push_back(order[std::size_t(p)]);
            CHECK(got == ref_nms(d.xyxy, d.scores, 0.55));
        }
    // a hand mask: box 0 suppresses 1 and 64, box 2 suppresses 3
    std::vector<std::uint64_t> m(snip::nms_mask_words(66), 0);
    m[0 * 2 + 0] = 1u << 1;
    m[0 * 2 + 1] = 1u << 0;
    m[2 * 2 + 0] = 1u << 3;
    m[1 * 2 + 0] = 1u << 2; // box 1 is suppressed: its row is ignored
    std::vector<std::int64_t> keep(66);
    keep.resize(snip::reduce_nms_masks(m, 66, keep));
    CHECK(keep.size() == 63);
    CHECK(keep[0] == 0);
    CHECK(keep[1] == 2);
    CHECK(keep[2] == 4);
    CHECK(std::find(keep.begin(), keep.end(), 64) == keep.end());
    keep.assign(66, 0);
    CHECK(snip::reduce_nms_masks(m, 66, keep, 2) == 2);
}

// ------------------------------------------------------------------------------------
// Multi-scale merge

namespace {
struct merge_input {
    std::vector<float> xyxy, scores;
    std::vector<std::int32_t> cls;
    std::vector<int> scale;
    /// A square of side `side` at (x, y).
    void add(float x, float y, float side, float score, int c, int s) {
        xyxy.insert(xyxy.end(), {x, y, x + side, y + side});
        scores.push_back(score);
        cls.push_back(c);
        scale.push_back(s);
    }
    snip::merged_detections<float> run(const snip::multiscale_merge_options& o = {}) const {
        return snip::merge_multiscale(snip::as_box_view(xyxy), scores, cls, scale, o);
    }
};
std::vector<std::int64_t> sorted(std::vector<std::int64_t> v) {
    std::sort(v.begin(), v.end());
    return v;
}
} // namespace

TEST_CASE("merge_multiscale: default options are SNIPER's inference settings") {
    const snip::multiscale_merge_options o;
    REQUIRE(o.ranges.size() == 3);
    CHECK(o.ranges[0].lo == -1);
    CHECK(o.ranges[0].hi == 90);
    CHECK(o.ranges[1].lo == 32);
    CHECK(o.ranges[1].hi == 180);
    CHECK(o.ranges[2].lo == 75);
    CHECK(o.ranges[2].hi == -1);
    CHECK(o.sigma == 0.55);
    CHECK(o.score_threshold == 0.001);
    CHECK(o.max_per_image == 200);
    CHECK_FALSE(o.sniper_compatible);
    const auto s = snip::multiscale_merge_options::sniper_coco();
    CHECK(s.sniper_compatible);
    CHECK(s.convention == pixel_convention::inclusive);
    CHECK(s.sigma == 0.55);
}

TEST_CASE("merge_multiscale: valid ranges per scale, [lo, hi) on sqrt(w*h)") {
    merge_input in;
    // far apart (no Soft-NMS interaction), one class each so nothing decays
    in.add(0, 0, 89.5f, 0.9f, 0, 0);     // 0 kept: < 90
    in.add(1000, 0, 90, 0.9f, 1, 0);     // 1 dropped: 90 is not < 90
    in.add(2000, 0, 31.5f, 0.9f, 2, 1);  // 2 dropped: < 32
    in.add(3000, 0, 32, 0.9f, 3, 1);     // 3 kept
    in.add(4000, 0, 179.5f, 0.9f, 4, 1); // 4 kept
    in.add(5000, 0, 180, 0.9f, 5, 1);    // 5 dropped
    in.add(6000, 0, 74.5f, 0.9f, 6, 2);  // 6 dropped
    in.add(7000, 0, 75, 0.9f, 7, 2);     // 7 kept
    in.add(8000, 0, 1500, 0.9f, 8, 2);   // 8 kept
    in.add(9000, 0, 0, 0.9f, 9, 0);      // 9 kept: zero size is < 90 at the finest scale
    const auto m = in.run();
    CHECK(sorted(m.index) == std::vector<std::int64_t>{0, 3, 4, 7, 8, 9});
    for (std::size_t k = 0; k < m.size(); ++k) {
        CHECK(m.scores[k] == 0.9f);
        CHECK(m.labels[k] == in.cls[std::size_t(m.index[k])]);
        CHECK(m.scales[k] == in.scale[std::size_t(m.index[k])]);
        CHECK(m.boxes[k] == get(in.xyxy, std::size_t(m.index[k])));
    }
    // ties: lower class id first
    CHECK(m.index == std::vector<std::int64_t>{0, 3, 4, 7, 8, 9});
}

TEST_CASE("merge_multiscale: scales pooled per class, Gaussian Soft-NMS sigma 0.55") {
    merge_input in;
    in.add(10, 10, 60, 0.9f, 1, 0);  // 0
    in.add(10, 10, 60, 0.8f, 1, 1);  // 1: same box and class at another scale -> decays
    in.add(10, 10, 60, 0.7f, 2, 1);  // 2: same box, other class -> untouched
    in.add(10, 10, 30, 0.6f, 1, 0);  // 3: IoU 0.25 with box 0
    const auto m = in.run();
    REQUIRE(m.size() == 4);
    const float w1 = float(std::exp(double(-(1.0f * 1.0f) / 0.55f)));
    const float iou3 = 900.0f / 3600.0f;
    const float w3 = float(std::exp(double(-(iou3 * iou3) / 0.55f)));
    // box 3 is decayed by box 0 first (0.6 * w3 ~ 0.536), box 1 becomes 0.8 * w1 ~ 0.131
    CHECK(m.index == std::vector<std::int64_t>{0, 2, 3, 1});
    CHECK(m.scores[0] == 0.9f);
    CHECK(m.scores[1] == 0.7f);
    CHECK(m.labels[1] == 2);
    CHECK(m.scores[2] == w3 * 0.6f);
    // box 1 is then decayed by box 3 as well: IoU(box 3, box 1) = 0.25
    CHECK(m.scores[3] == w3 * (w1 * 0.8f));
}

TEST_CASE("merge_multiscale: top-k over all classes") {
    merge_input in;
    for (int i = 0; i < 250; ++i) // disjoint boxes, scores 0.001 .. 0.250, classes 0..4
        in.add(float(100 * i), 0, 50, float(i + 1) / 1000.0f, i % 5, 0);
    auto m = in.run();
    REQUIRE(m.size() == 200);
    for (std::size_t k = 0; k < 200; ++k) CHECK(m.index[k] == 249 - std::int64_t(k));
    snip::multiscale_merge_options o;
    o.max_per_image = 7;
    m = in.run(o);
    CHECK(m.size() == 7);
    o.max_per_image = snip::nms_unlimited;
    m = in.run(o);
    CHECK(m.size() == 250);
    // score threshold: 0.001 is kept (not < 0.001 in double), raising it drops more
    o.score_threshold = 0.0105;
    m = in.run(o);
    CHECK(m.size() == 240);
    // exact cut on ties: 10 equal scores, k = 4 -> 4 (lowest class ids first)
    merge_input t;
    for (int i = 0; i < 10; ++i) t.add(float(100 * i), 0, 50, 0.5f, 9 - i, 0);
    o = {};
    o.max_per_image = 4;
    m = t.run(o);
    CHECK(m.labels == std::vector<std::int64_t>{0, 1, 2, 3});
}

TEST_CASE("merge_multiscale: sniper_coco reproduces the original rules") {
    auto o = snip::multiscale_merge_options::sniper_coco();
    merge_input in;
    in.add(0, 0, 90, 0.9f, 0, 0);       // 0: area 8100 <= 90^2: kept (snip drops it)
    in.add(1000, 0, 32, 0.9f, 1, 1);    // 1: area 1024 is not > 32^2: dropped ...
    in.add(2000, 0, 100, 0.8f, 1, 1);   // 2: ... while 2 is in range
    in.add(3000, 0, 20, 0.7f, 2, 2);    // 3: out of range, but the only one of (scale 2,
    in.add(4000, 0, 30, 0.6f, 2, 2);    // 4:  class 2): the whole group is kept
    auto m = in.run(o);
    CHECK(sorted(m.index) == std::vector<std::int64_t>{0, 2, 3, 4});
    m = in.run(); // snip rules: 0 (90 not < 90), 1 (32 in [32,180)), 2; 3 and 4 dropped
    CHECK(sorted(m.index) == std::vector<std::int64_t>{1, 2});

    // +1 pixel IoU: [0,0,10,10] and [10,0,20,10] overlap by one pixel column
    merge_input p;
    p.add(0, 0, 10, 0.9f, 0, 0);
    p.add(10, 0, 10, 0.8f, 0, 0);
    m = p.run(o);
    REQUIRE(m.size() == 2);
    const float iou = 11.0f / (121.0f + 121.0f - 11.0f);
    CHECK(m.scores[1] == float(std::exp(double(-(iou * iou) / 0.55f))) * 0.8f);
    m = p.run();
    CHECK(m.scores[1] == 0.8f); // continuous: they only touch

    // ties at the cut are all kept
    merge_input t;
    for (int i = 0; i < 10; ++i) t.add(float(100 * i), 0, 50, i < 3 ? 0.9f : 0.5f, i, 0);
    o.max_per_image = 4;
    m = t.run(o);
    CHECK(m.size() == 10);
    o.max_per_image = 3;
    m = t.run(o);
    CHECK(m.size() == 3);
}

TEST_CASE("merge_multiscale: equals per-class soft_nms on the filtered pool") {
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {
        const dets d = make_dets(seed, 300, 1, 4);
        std::vector<int> scale(d.scores.size());
        snip::splitmix64 g{seed};
        for (auto& s : scale) s = int(g.below(3));
        snip::multiscale_merge_options o;
        o.max_per_image = snip::nms_unlimited;
        const auto m = snip::merge_multiscale(snip::as_box_view(d.xyxy), d.scores, d.cls, scale, o);
        std::size_t total = 0;
        for (std::int64_t c = 0; c < 4; ++c) {
            // pool in (scale, index) order
            std::vector<double> pb, ps;
            std::vector<std::int64_t> back;
            for (int s = 0; s < 3; ++s)
                for (std::size_t i = 0; i < d.scores.size(); ++i) {
                    if (d.cls[i] != c || scale[i] != s) continue;
                    const auto b = get(d.xyxy, i);
                    if (!o.ranges[std::size_t(s)].contains(std::sqrt((b.x2 - b.x1) * (b.y2 - b.y1))))
                        continue;
                    for (int k = 0; k < 4; ++k) pb.push_back(d.xyxy[4 * i + std::size_t(k)]);
                    ps.push_back(d.scores[i]);
                    back.push_back(std::int64_t(i));
                }
            soft_nms_options so;
            so.sigma = 0.55;
            const auto want = ref_soft_nms(pb, ps, so);
            std::vector<std::int64_t> got_idx;
            std::vector<double> got_scores;
            for (std::size_t k = 0; k < m.size(); ++k)
                if (m.labels[k] == c) {
                    got_idx.push_back(m.index[k]);
                    got_scores.push_back(m.scores[k]);
                }
            std::vector<std::int64_t> want_idx;
            for (auto k : want.keep) want_idx.push_back(back[std::size_t(k)]);
            CHECK(got_idx == want_idx);
            CHECK(got_scores == want.scores);
            total += want.keep.size();
        }
        CHECK(m.size() == total);
        for (std::size_t k = 1; k < m.size(); ++k) CHECK(m.scores[k] <= m.scores[k - 1]);
    }
}

// ------------------------------------------------------------------------------------
// Errors

TEST_CASE("nms: bad input names the value") {
    std::vector<float> b = {0, 0, 1, 1, 0, 0, 2, 2, 0, 0, 3, 3, 0, 0, 4, 4};
    std::vector<float> s3 = {0.1f, 0.2f, 0.3f};
    std::vector<float> s = {0.1f, 0.2f, 0.3f, 0.4f};
    const auto v = snip::as_box_view(b);
    CHECK(error_of([&] { (void)snip::nms(v, s3, 0.5); }).find("3 scores for 4 boxes") !=
          std::string::npos);
    CHECK(error_of([&] { (void)snip::nms(v, s, std::nan("")); }).find("iou_threshold must be a number, got nan") !=
          std::string::npos);
    std::vector<float> sn = s;
    sn[2] = std::nanf("");
    CHECK(error_of([&] { (void)snip::nms(v, sn, 0.5); }).find("score 2 is NaN") != std::string::npos);
    std::vector<float> bi = b;
    bi[5] = std::numeric_limits<float>::infinity();
    CHECK(error_of([&] { (void)snip::nms(snip::as_box_view(bi), s, 0.5); }).find("box 1") !=
          std::string::npos);
    std::vector<std::int64_t> c3 = {0, 1, 2};
    CHECK(error_of([&] { (void)snip::batched_nms(v, s, c3, 0.5); }).find("3 class ids for 4 boxes") !=
          std::string::npos);
    std::vector<std::int64_t> small(2);
    snip::nms_workspace<float> ws;
    CHECK(error_of([&] { (void)snip::nms(v, s, 0.5, std::span<std::int64_t>(small), ws); })
              .find("holds 2 indices but up to 4") != std::string::npos);
    nms_options o;
    o.max_out = 2; // then 2 is enough
    CHECK(snip::nms(v, s, 0.5, std::span<std::int64_t>(small), ws, o) == 2);

    soft_nms_options so;
    so.sigma = -0.5;
    CHECK(error_of([&] { (void)snip::soft_nms(v, s, so); }).find("sigma must be a finite number > 0, got -0.5") !=
          std::string::npos);
    so.sigma = 0.5;
    so.score_threshold = std::nan("");
    CHECK(error_of([&] { (void)snip::soft_nms(v, s, so); }).find("score_threshold must be a number") !=
          std::string::npos);
    CHECK(error_of([&] { (void)snip::soft_nms(v, s3); }).find("3 scores for 4 boxes") !=
          std::string::npos);

    std::vector<std::int32_t> cls = {0, 0, 1, 1};
    std::vector<int> scale = {0, 1, 2, 3};
    CHECK(error_of([&] { (void)snip::merge_multiscale(v, s, cls, scale); })
              .find("detection 3 has scale index 3 but 3 valid ranges") != std::string::npos);
    scale = {0, 1, 2};
    CHECK(error_of([&] { (void)snip::merge_multiscale(v, s, cls, scale); })
              .find("3 scale indices for 4 detections") != std::string::npos);
    scale = {0, 0, 0, 0};
    snip::multiscale_merge_options mo;
    mo.sigma = -1;
    CHECK(error_of([&] { (void)snip::merge_multiscale(v, s, cls, scale, mo); }).find("got -1") !=
          std::string::npos);
    mo = {};
    mo.ranges = {{50, 10}};
    CHECK(error_of([&] { (void)snip::merge_multiscale(v, s, cls, scale, mo); })
              .find("valid range of scale 0: lower bound 50") != std::string::npos);
    std::vector<std::uint64_t> masks(3);
    std::vector<std::int64_t> keep(100);
    CHECK(error_of([&] { (void)snip::reduce_nms_masks(masks, 100, keep); }).find("100 boxes need 200 mask words, got 3") !=
          std::string::npos);
}
