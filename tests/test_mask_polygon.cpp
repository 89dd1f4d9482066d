// Tests for mask/polygon.hpp and mask/paste.hpp: polygon geometry, clipping against
// point-in-polygon sampling, RoI mask targets, chip crops and pasting against per-pixel
// references, and COCO128's real polygons.
#include <snip/mask/paste.hpp>
#include <snip/mask/polygon.hpp>
#include <snip/mask/rle.hpp>

#include "mask_test_util.hpp"
#include "test_util.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <numbers>
#include <random>
#include <string>
#include <vector>

using snip::box;
using snip::mask::polygon;
using snip::mask::rle;
using mask_test::edge_distance;
using mask_test::inside;
using mask_test::star;
using snip_test::error_of;
namespace mask = snip::mask;

namespace {

/// A row-major mask of ellipses.
std::vector<std::uint8_t> blobs(int h, int w, int n, std::mt19937& g) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<std::uint8_t> m(static_cast<std::size_t>(h) * w, 0);
    for (int k = 0; k < n; ++k) {
        double cx = u(g) * w, cy = u(g) * h, rx = 1 + u(g) * w / 3, ry = 1 + u(g) * h / 3;
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) {
                double dx = (x + 0.5 - cx) / rx, dy = (y + 0.5 - cy) / ry;
                if (dx * dx + dy * dy <= 1) m[static_cast<std::size_t>(y) * w + x] = 1;
            }
    }
    return m;
}

} // namespace

TEST_CASE("area, bounds, to_chip and flip_x") {
    polygon sq{1, 1, 4, 1, 4, 3, 1, 3};
    CHECK(mask::area(sq) == 6.0);
    polygon rev{1, 3, 4, 3, 4, 1, 1, 1}; // clockwise the other way
    CHECK(mask::area(rev) == 6.0);
    CHECK(mask::area(polygon{0, 0, 5, 5}) == 0.0);
    CHECK(mask::bounds({sq, {-2, 7, 0, 0, 1, 9}}) == box<double>{-2, 0, 4, 9});
    CHECK(mask::bounds({}) == box<double>{});
    CHECK(mask::to_chip(sq, 2.0, 1.5, -3.0) == polygon{0.5, 5, 6.5, 5, 6.5, 9, 0.5, 9});
    CHECK(mask::flip_x(sq, 10) == polygon{9, 1, 6, 1, 6, 3, 9, 3});
    CHECK(mask::flip_x(mask::flip_x(sq, 10), 10) == sq);
    CHECK(mask::area(mask::flip_x(sq, 10)) == 6.0);
}

TEST_CASE("clip: known cases") {
    polygon sq{0, 0, 10, 0, 10, 10, 0, 10};
    polygon c = mask::clip(sq, {5, -1, 20, 4});
    CHECK(mask::area(c) == doctest::Approx(20.0));
    CHECK(mask::bounds({c}) == box<double>{5, 0, 10, 4});
    CHECK(mask::clip(sq, {20, 20, 30, 30}).empty()); // disjoint
    CHECK(mask::clip(sq, {10, 0, 30, 30}).empty());  // touches along an edge: area 0
    CHECK(mask::clip(sq, {-5, -5, 15, 15}) == sq);   // wholly inside: unchanged
    CHECK(mask::clip(std::vector<polygon>{sq, {20, 20, 21, 20, 21, 21}}, {0, 0, 5, 5}).size() == 1);
    CHECK(error_of([] {
              mask::clip(polygon{1, 2, 3}, {0, 0, 1, 1});
          }) == "mask::clip: a polygon has an odd number of values (3)");
}

TEST_CASE("clip agrees with point-in-polygon sampling on random polygons") {
    // Exact at sampled points farther than 1e-6 from every edge of the polygon, of the
    // rectangle and of the clipped polygon: inside(clip(p, r)) == inside(p) && inside(r).
    std::mt19937 g(21);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    int sampled = 0;
    for (int it = 0; it < 200; ++it) {
        bool convex = it % 3 == 0;
        double r = 5 + u(g) * 30;
        polygon p = star(50 + (u(g) - 0.5) * 40, 50 + (u(g) - 0.5) * 40, convex ? r : r * 0.2, r,
                         3 + static_cast<int>(g() % 25), g);
        double x1 = u(g) * 80, y1 = u(g) * 80;
        box<double> rect{x1, y1, x1 + u(g) * 40, y1 + u(g) * 40};
        polygon c = mask::clip(p, rect);
        CAPTURE(it);
        CHECK(mask::area(c) <= mask::area(p) + 1e-9);
        CHECK(mask::area(c) <= rect.area() + 1e-9);
        if (!c.empty()) {
            box<double> cb = mask::bounds({c});
            CHECK(cb.x1 >= rect.x1);
            CHECK(cb.y1 >= rect.y1);
            CHECK(cb.x2 <= rect.x2);
            CHECK(cb.y2 <= rect.y2);
        }
        polygon rp{rect.x1, rect.y1, rect.x2, rect.y1, rect.x2, rect.y2, rect.x1, rect.y2};
        for (int s = 0; s < 300; ++s) {
            double px = u(g) * 100, py = u(g) * 100;
            if (edge_distance(p, px, py) < 1e-6 || edge_distance(rp, px, py) < 1e-6) continue;
            if (!c.empty() && edge_distance(c, px, py) < 1e-6) continue;
            bool want = inside(p, px, py) && inside(rp, px, py);
            bool got = !c.empty() && inside(c, px, py);
            CHECK(got == want);
            ++sampled;
        }
    }
    CHECK(sampled > 50000);
}

TEST_CASE("roi_mask from polygons equals COCO's rasterisation of the mapped polygons, x and y "
          "exchanged") {
    std::mt19937 g(4);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::size_t total_differ = 0, total_set = 0;
    for (int it = 0; it < 100; ++it) {
        int M = it % 4 == 0 ? 14 : 28;
        std::vector<polygon> ps;
        int parts = 1 + static_cast<int>(g() % 3);
        for (int k = 0; k < parts; ++k)
            ps.push_back(star(100 + u(g) * 60, 80 + u(g) * 60, 5, 10 + u(g) * 30,
                              3 + static_cast<int>(g() % 10), g));
        box<double> b = mask::bounds(ps);
        // RoIs around, inside and across the object; some narrower than 1 px
        box<double> roi{b.x1 + (u(g) - 0.5) * 20, b.y1 + (u(g) - 0.5) * 20,
                        b.x2 + (u(g) - 0.5) * 20, b.y2 + (u(g) - 0.5) * 20};
        if (it % 10 == 1) roi.x2 = roi.x1 + 0.5;
        CAPTURE(it);
        std::vector<std::uint8_t> got(static_cast<std::size_t>(M) * M);
        mask::roi_mask(ps, roi, M, got.data());
        // reference: each part mapped with x and y exchanged, rasterised at M x M, decoded
        // (row-major), transposed, ORed
        double w = std::max(1.0, roi.x2 - roi.x1), h = std::max(1.0, roi.y2 - roi.y1);
        std::vector<std::uint8_t> want(got.size(), 0), plain(got.size(), 0);
        for (const polygon& p : ps) {
            polygon q = p, t = p;
            for (std::size_t i = 0; i < q.size(); i += 2) {
                q[i] = (p[i] - roi.x1) * M / w;
                q[i + 1] = (p[i + 1] - roi.y1) * M / h;
                t[i] = q[i + 1];
                t[i + 1] = q[i];
            }
            auto d = mask::decode(mask::from_polygon(t, M, M));
            auto e = mask::decode(mask::from_polygon(q, M, M));
            for (int r = 0; r < M; ++r)
                for (int c = 0; c < M; ++c) {
                    want[std::size_t(r) * M + c] |= d[std::size_t(c) * M + r];
                    plain[std::size_t(r) * M + c] |= e[std::size_t(r) * M + c];
                }
        }
        CHECK(got == want);
        // the exchange matters only on the boundary: at most a few bins differ from the
        // plain rasterisation of the mapped polygons
        std::size_t differ = 0, set = 0;
        for (std::size_t i = 0; i < got.size(); ++i)
            differ += got[i] != plain[i], set += got[i];
        CHECK(differ <= std::size_t(2 * M));
        total_differ += differ;
        total_set += set;
    }
    // the RoI equal to the image at M = image size (a power of 2: the mapping is exact):
    // the target is the transpose of the rasterisation of the transposed polygons
    std::vector<polygon> ps{star(30, 30, 10, 25, 9, g), star(10, 50, 3, 8, 5, g)};
    std::vector<polygon> ts = ps;
    for (auto& t : ts)
        for (std::size_t i = 0; i < t.size(); i += 2)
            std::swap(t[i], t[i + 1]);
    std::vector<std::uint8_t> got(64 * 64);
    mask::roi_mask(ps, {0, 0, 64, 64}, 64, got.data());
    auto tr = mask::decode(mask::from_polygons(ts, 64, 64));
    std::vector<std::uint8_t> tt(tr.size());
    for (int r = 0; r < 64; ++r)
        for (int c = 0; c < 64; ++c)
            tt[std::size_t(r) * 64 + c] = tr[std::size_t(c) * 64 + r];
    CHECK(got == tt);
    std::printf("roi_mask: %zu of %zu set bins differ from the unexchanged rasterisation\n",
                total_differ, total_set);
    CHECK(total_differ * 50 < total_set);
    CHECK(error_of([&] {
              mask::roi_mask(ps, {0, 0, 1, 1}, 0, got.data());
          }) == "mask::roi_mask: mask size M is 0, must be > 0");
}

TEST_CASE("roi_mask from an RLE samples the pixel under each bin centre") {
    std::mt19937 g(8);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int it = 0; it < 60; ++it) {
        int h = 20 + static_cast<int>(g() % 60), w = 20 + static_cast<int>(g() % 60);
        auto m = blobs(h, w, 3, g);
        rle r = mask::encode(m.data(), h, w);
        int M = 7 + static_cast<int>(g() % 25);
        box<double> roi{u(g) * w - 10, u(g) * h - 10, 0, 0};
        roi.x2 = roi.x1 + u(g) * w;
        roi.y2 = roi.y1 + u(g) * h;
        CAPTURE(it);
        std::vector<std::uint8_t> got(static_cast<std::size_t>(M) * M);
        mask::roi_mask(r, roi, M, got.data());
        double bw = std::max(1.0, roi.x2 - roi.x1), bh = std::max(1.0, roi.y2 - roi.y1);
        for (int i = 0; i < M; ++i)
            for (int j = 0; j < M; ++j) {
                double cx = std::floor(roi.x1 + (j + 0.5) * bw / M);
                double cy = std::floor(roi.y1 + (i + 0.5) * bh / M);
                std::uint8_t want = 0;
                if (cx >= 0 && cx < w && cy >= 0 && cy < h)
                    want = m[static_cast<std::size_t>(cy) * w + static_cast<std::size_t>(cx)];
                CHECK(got[static_cast<std::size_t>(i) * M + j] == want);
            }
    }
}

TEST_CASE("crop_rle against a per-pixel reference") {
    std::mt19937 g(12);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int it = 0; it < 60; ++it) {
        int h = 10 + static_cast<int>(g() % 70), w = 10 + static_cast<int>(g() % 70);
        auto m = blobs(h, w, 4, g);
        rle r = mask::encode(m.data(), h, w);
        double f = 0.3 + u(g) * 3;
        box<double> rect{std::floor(u(g) * w * f * 0.8) - 5, std::floor(u(g) * h * f * 0.8) - 5, 0,
                         0};
        rect.x2 = rect.x1 + 5 + std::floor(u(g) * 60);
        rect.y2 = rect.y1 + 5 + std::floor(u(g) * 60);
        int oh = static_cast<int>(rect.height()) + static_cast<int>(g() % 5); // a little beyond
        int ow = static_cast<int>(rect.width()) + static_cast<int>(g() % 5);
        CAPTURE(it);
        rle c = mask::crop_rle(r, f, rect, oh, ow);
        CHECK_NOTHROW(mask::check(c, "crop"));
        auto got = mask::decode(c);
        for (int y = 0; y < oh; ++y)
            for (int x = 0; x < ow; ++x) {
                double cx = rect.x1 + x + 0.5, cy = rect.y1 + y + 0.5;
                double sx = std::floor(cx / f), sy = std::floor(cy / f);
                std::uint8_t want = 0;
                if (cx <= rect.x2 && cy <= rect.y2 && sx >= 0 && sx < w && sy >= 0 && sy < h)
                    want = m[static_cast<std::size_t>(sy) * w + static_cast<std::size_t>(sx)];
                CHECK(got[static_cast<std::size_t>(y) * ow + x] == want);
            }
    }
    rle one{2, 2, {0, 4}};
    CHECK(mask::crop_rle(one, 1.0, {0, 0, 2, 2}, 2, 2) == one);
    CHECK(error_of([&] {
              mask::crop_rle(one, 0.0, {0, 0, 2, 2}, 2, 2);
          }) == "mask::crop_rle: factor is 0, must be finite and > 0");
}

TEST_CASE("paste against a per-pixel bilinear reference") {
    std::mt19937 g(31);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int it = 0; it < 80; ++it) {
        int M = 1 + static_cast<int>(g() % 28);
        std::vector<float> prob(static_cast<std::size_t>(M) * M);
        for (auto& p : prob)
            p = static_cast<float>(u(g));
        int h = 20 + static_cast<int>(g() % 60), w = 20 + static_cast<int>(g() % 60);
        box<double> det{u(g) * w - 10, u(g) * h - 10, 0, 0};
        det.x2 = det.x1 + u(g) * w;
        det.y2 = det.y1 + u(g) * h;
        float thr = static_cast<float>(0.2 + 0.6 * u(g));
        CAPTURE(it);
        rle r = mask::paste(prob.data(), M, det, h, w, thr);
        CHECK_NOTHROW(mask::check(r, "paste"));
        auto got = mask::decode(r);
        auto cell = [&](double c, double lo, double size, int& i0, int& i1, double& f) {
            double v = std::clamp((c - lo) * M / size - 0.5, 0.0, double(M - 1));
            i0 = static_cast<int>(std::floor(v));
            i1 = std::min(i0 + 1, M - 1);
            f = v - i0;
        };
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) {
                double cx = x + 0.5, cy = y + 0.5;
                std::uint8_t want = 0;
                if (det.x1 <= cx && cx < det.x2 && det.y1 <= cy && cy < det.y2) {
                    int j0, j1, i0, i1;
                    double fx, fy;
                    cell(cx, det.x1, det.width(), j0, j1, fx);
                    cell(cy, det.y1, det.height(), i0, i1, fy);
                    auto p = [&](int i, int j) { return double(prob[std::size_t(i) * M + j]); };
                    double v = (1 - fy) * ((1 - fx) * p(i0, j0) + fx * p(i0, j1)) +
                               fy * ((1 - fx) * p(i1, j0) + fx * p(i1, j1));
                    want = v >= thr ? 1 : 0;
                }
                CHECK(got[static_cast<std::size_t>(y) * w + x] == want);
            }
    }
    // a constant mask pastes as exactly the pixels whose centres lie in the box
    std::vector<float> ones(28 * 28, 1.0f);
    rle r = mask::paste(ones.data(), 28, {2.5, 1.0, 6.4, 3.6}, 5, 8);
    CHECK(mask::bbox(r) == box<double>{2, 1, 6, 4});
    CHECK(mask::area(r) == 12);
    CHECK(mask::area(mask::paste(ones.data(), 28, {3, 3, 3, 9}, 10, 10)) == 0);
}

TEST_CASE("COCO128: real polygons through a chip frame, areas, crowd RLEs") {
    const std::string path = snip_test::data_file("coco128/instances_coco128.json");
    if (path.empty()) return;
    std::ifstream in(path);
    const nlohmann::json doc = nlohmann::json::parse(in);
    std::map<long, std::pair<int, int>> size; // id -> (height, width)
    for (const auto& im : doc.at("images"))
        size[im.at("id").get<long>()] = {im.at("height").get<int>(), im.at("width").get<int>()};
    int n_poly = 0, n_rle = 0;
    double worst_rel = 0.0, worst_per = 0.0, sum_diff = 0.0, sum_area = 0.0;
    for (const auto& a : doc.at("annotations")) {
        auto [h, w] = size.at(a.at("image_id").get<long>());
        const auto& s = a.at("segmentation");
        const double area = a.at("area").get<double>();
        if (s.is_array()) {
            std::vector<polygon> ps;
            for (const auto& p : s)
                ps.push_back(p.get<polygon>());
            // chip frame and back: x * f - x1 then (x' + x1) / f
            for (const polygon& p : ps) {
                polygon c = mask::to_chip(p, 1.7, 213.25, 37.5);
                for (std::size_t i = 0; i < p.size(); i += 2) {
                    CHECK(std::abs((c[i] + 213.25) / 1.7 - p[i]) <= 1e-9);
                    CHECK(std::abs((c[i + 1] + 37.5) / 1.7 - p[i + 1]) <= 1e-9);
                }
                polygon f = mask::flip_x(mask::flip_x(p, w), w);
                for (std::size_t i = 0; i < p.size(); ++i)
                    CHECK(std::abs(f[i] - p[i]) <= 1e-9);
            }
            // COCO's "area" of a polygon annotation is the sum of its parts' shoelace areas
            double sl = 0;
            for (const polygon& p : ps)
                sl += mask::area(p);
            CHECK(sl == doctest::Approx(area).epsilon(1e-9));
            // the rasterised mask's pixel count is close to it, not equal: what holds on
            // COCO128 is |pixels - area| <= 0.231 * perimeter (asserted with 0.25), and the
            // differences cancel over the set (total within 0.1 %)
            rle m = mask::from_polygons(ps, h, w);
            double per = 0;
            for (const polygon& p : ps)
                for (std::size_t i = 0, k = p.size() / 2, j = k - 1; i < k; j = i++)
                    per += std::hypot(p[2 * i] - p[2 * j], p[2 * i + 1] - p[2 * j + 1]);
            const double px = static_cast<double>(mask::area(m));
            CHECK(std::abs(px - area) <= 0.25 * per);
            if (area > 1000) worst_rel = std::max(worst_rel, std::abs(px - area) / area);
            worst_per = std::max(worst_per, std::abs(px - area) / per);
            sum_diff += px - area;
            sum_area += area;
            ++n_poly;
        } else {
            // crowd: uncompressed COCO RLE; its compressed string round-trips
            rle r{s.at("size")[0].get<int>(), s.at("size")[1].get<int>(),
                  s.at("counts").get<std::vector<std::uint32_t>>()};
            CHECK(r.height == h);
            CHECK(r.width == w);
            CHECK_NOTHROW(mask::check(r, "crowd"));
            CHECK(mask::from_string(mask::to_string(r), h, w) == mask::merge(std::vector<rle>{r}));
            CHECK(a.at("iscrowd").get<int>() == 1);
            std::printf("coco128 crowd annotation %ld: area field %.0f, RLE pixels %llu\n",
                        a.at("id").get<long>(), area,
                        static_cast<unsigned long long>(mask::area(r)));
            ++n_rle;
        }
    }
    std::printf("coco128: %d polygon annotations, %d RLE; worst |pixels - area| / area over "
                "areas > 1000: %.4f; worst |pixels - area| / perimeter: %.3f; total pixels - area: "
                "%.1f of %.1f\n",
                n_poly, n_rle, worst_rel, worst_per, sum_diff, sum_area);
    CHECK(n_poly == 929);
    CHECK(std::abs(sum_diff) <= 1e-3 * sum_area);
    CHECK(n_rle == 10);
}
