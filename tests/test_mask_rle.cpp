// Tests for mask/rle.hpp: encoding round trips, area / box / merge / IoU against per-pixel
// counts, COCO's compressed strings (hand-derived known strings, round trips, malformed
// strings with their exact messages), and polygon rasterisation against a per-pixel
// reference of COCO's rule plus geometric sanity checks.
#include <snip/mask/rle.hpp>

#include "mask_test_util.hpp"
#include "test_util.hpp"

#include <cmath>
#include <cstdint>
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

/// A row-major random mask: density `p`, made of short horizontal and vertical streaks so
/// that runs have various lengths (p = 0 and p = 1 give all-zero and all-one masks).
std::vector<std::uint8_t> random_mask(int h, int w, double p, std::mt19937& g) {
    std::vector<std::uint8_t> m(static_cast<std::size_t>(h) * w, 0);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            m[static_cast<std::size_t>(y) * w + x] = u(g) < p ? 1 : 0;
    if (p > 0.0 && p < 1.0) { // smear a little to get longer runs
        for (int y = 1; y < h; ++y)
            for (int x = 0; x < w; ++x)
                if (u(g) < 0.5)
                    m[static_cast<std::size_t>(y) * w + x] =
                        m[static_cast<std::size_t>(y - 1) * w + x];
    }
    return m;
}

/// Row-major mask with every nonzero byte made 1 (what decode returns).
std::vector<std::uint8_t> binary(std::vector<std::uint8_t> m) {
    for (auto& v : m)
        v = v ? 1 : 0;
    return m;
}

/// True when the counts are canonical: only the first may be 0.
bool canonical(const rle& r) {
    for (std::size_t i = 1; i < r.counts.size(); ++i)
        if (r.counts[i] == 0) return false;
    return !r.counts.empty();
}

struct pixel_stats {
    std::uint64_t area = 0;
    box<double> bb{};
};

pixel_stats brute_stats(const std::vector<std::uint8_t>& m, int h, int w) {
    pixel_stats s;
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            if (m[static_cast<std::size_t>(y) * w + x]) {
                ++s.area;
                x0 = std::min(x0, x), y0 = std::min(y0, y);
                x1 = std::max(x1, x), y1 = std::max(y1, y);
            }
    if (s.area > 0) s.bb = {double(x0), double(y0), double(x1 + 1), double(y1 + 1)};
    return s;
}

/// The COCO rasterisation of one polygon, computed pixel by pixel in the most direct way:
/// the vertices are put on a 5x grid ((int)(5 v + 0.5)); each edge becomes the list of grid
/// points one unit apart along its longer axis, the other coordinate interpolated from the
/// edge's lower end and rounded the same way; pixel (x, y) is set when an odd number of
/// consecutive grid points straddle the upsampled column centre (u = 5x + 2 and 5x + 3)
/// at a height min(v) <= 5y + 2.
std::vector<std::uint8_t> reference_raster(const polygon& p, int h, int w) {
    const std::size_t k = p.size() / 2;
    std::vector<long> X(k), Y(k);
    for (std::size_t j = 0; j < k; ++j) {
        X[j] = static_cast<int>(5.0 * p[2 * j] + 0.5);
        Y[j] = static_cast<int>(5.0 * p[2 * j + 1] + 0.5);
    }
    std::vector<long> U, V;
    for (std::size_t j = 0; j < k; ++j) {
        long ax = X[j], ay = Y[j], bx = X[(j + 1) % k], by = Y[(j + 1) % k];
        long dx = std::labs(bx - ax), dy = std::labs(by - ay);
        std::vector<long> eu, ev;
        if (dx >= dy) {
            bool forward = ax <= bx;
            long lx = forward ? ax : bx, ly = forward ? ay : by, hy = forward ? by : ay;
            double s = dx == 0 ? 0.0 : double(hy - ly) / double(dx);
            for (long t = 0; t <= dx; ++t) {
                eu.push_back(lx + t);
                ev.push_back(static_cast<int>(double(ly) + s * double(t) + 0.5));
            }
            if (!forward) std::reverse(eu.begin(), eu.end()), std::reverse(ev.begin(), ev.end());
        } else {
            bool forward = ay <= by;
            long ly = forward ? ay : by, lx = forward ? ax : bx, hx = forward ? bx : ax;
            double s = double(hx - lx) / double(dy);
            for (long t = 0; t <= dy; ++t) {
                ev.push_back(ly + t);
                eu.push_back(static_cast<int>(double(lx) + s * double(t) + 0.5));
            }
            if (!forward) std::reverse(eu.begin(), eu.end()), std::reverse(ev.begin(), ev.end());
        }
        U.insert(U.end(), eu.begin(), eu.end());
        V.insert(V.end(), ev.begin(), ev.end());
    }
    std::vector<std::uint8_t> m(static_cast<std::size_t>(h) * w, 0);
    for (int x = 0; x < w; ++x)
        for (int y = 0; y < h; ++y) {
            int n = 0;
            for (std::size_t i = 1; i < U.size(); ++i) {
                long lo = std::min(U[i], U[i - 1]), hi = std::max(U[i], U[i - 1]);
                if (lo == 5 * x + 2 && hi == 5 * x + 3 && std::min(V[i], V[i - 1]) <= 5 * y + 2)
                    ++n;
            }
            m[static_cast<std::size_t>(y) * w + x] = n % 2;
        }
    return m;
}

double shoelace(const polygon& p) {
    double a = 0;
    const std::size_t k = p.size() / 2;
    for (std::size_t i = 0, j = k - 1; i < k; j = i++)
        a += p[2 * j] * p[2 * i + 1] - p[2 * i] * p[2 * j + 1];
    return std::abs(a) / 2;
}

double perimeter(const polygon& p) {
    double s = 0;
    const std::size_t k = p.size() / 2;
    for (std::size_t i = 0, j = k - 1; i < k; j = i++)
        s += std::hypot(p[2 * i] - p[2 * j], p[2 * i + 1] - p[2 * j + 1]);
    return s;
}


} // namespace

TEST_CASE("encode / decode round trip on random masks of many sizes") {
    std::mt19937 g(7);
    const int sizes[][2] = {{0, 5}, {5, 0}, {0, 0},   {1, 1},  {1, 9},
                            {9, 1}, {3, 7}, {17, 13}, {64, 48}};
    for (auto [h, w] : sizes) {
        for (double p : {0.0, 1.0, 0.1, 0.5, 0.9}) {
            CAPTURE(h);
            CAPTURE(w);
            CAPTURE(p);
            auto m = random_mask(h, w, p, g);
            for (auto& v : m)
                if (v) v = 1 + static_cast<std::uint8_t>(g() % 200); // any nonzero
            rle r = mask::encode(m.data(), h, w);
            CHECK(r.height == h);
            CHECK(r.width == w);
            CHECK(canonical(r));
            CHECK_NOTHROW(mask::check(r, "r"));
            CHECK(mask::decode(r) == binary(m));
            // the same mask given column-major
            std::vector<std::uint8_t> cm(m.size());
            for (int y = 0; y < h; ++y)
                for (int x = 0; x < w; ++x)
                    cm[static_cast<std::size_t>(x) * h + y] =
                        m[static_cast<std::size_t>(y) * w + x];
            CHECK(mask::encode_col_major(cm.data(), h, w) == r);
            auto st = brute_stats(binary(m), h, w);
            CHECK(mask::area(r) == st.area);
            CHECK(mask::bbox(r) == st.bb);
            // compressed string round trip
            CHECK(mask::from_string(mask::to_string(r), h, w) == r);
        }
    }
}

TEST_CASE("encode: known counts") {
    // 2 x 3, row-major:  0 1 1 / 1 1 0  -> column-major 0 1 | 1 1 | 1 0
    const std::uint8_t m[] = {0, 1, 1, 1, 1, 0};
    rle r = mask::encode(m, 2, 3);
    CHECK(r.counts == std::vector<std::uint32_t>{1, 4, 1});
    const std::uint8_t ones[] = {1, 1, 1, 1};
    CHECK(mask::encode(ones, 2, 2).counts == std::vector<std::uint32_t>{0, 4});
    CHECK(mask::encode(ones, 0, 3).counts == std::vector<std::uint32_t>{0});
    // a run that wraps from one column into the next spans all rows of the box
    rle wrap{4, 3, {3, 2, 7}}; // pixels (0, 3) and (1, 0)
    CHECK(mask::bbox(wrap) == box<double>{0, 0, 2, 4});
    CHECK(mask::area(wrap) == 2);
    // non-canonical counts (empty inner runs) decode like their canonical form
    rle loose{2, 2, {1, 0, 0, 2, 1}};
    CHECK(mask::decode(loose) == std::vector<std::uint8_t>{0, 1, 1, 0});
    CHECK(mask::merge(std::vector<rle>{loose}) == rle{2, 2, {1, 2, 1}});
}

TEST_CASE("compressed strings: hand-derived known values") {
    // 3, 2, 4 are written as themselves; the fourth count 1 as 1 - 2 = -1: one group 0x1f
    // (sign bit set, no continuation) -> 48 + 31 = 'O'.
    CHECK(mask::to_string(rle{2, 5, {3, 2, 4, 1}}) == "324O");
    // 100 = 3 * 32 + 4: groups 4 (continued: 4 | 0x20 = 36 -> 'T') then 3 -> '3'.
    CHECK(mask::to_string(rle{10, 10, {0, 100}}) == "0T3");
    // 16 has bit 0x10 set in its only group, which would read as a sign: it takes a
    // second, zero group: 16 | 0x20 = 48 -> '`', then '0'.
    CHECK(mask::to_string(rle{4, 4, {16}}) == "`0");
    // the fifth count 50 is written as 50 - 40 = 10 -> ':'; the fourth 30 - 20 = 10 -> ':'
    // 20 -> 'd' '0' (bit 0x10 again), 30 -> 'n' '0', 40 = 32 + 8 -> 'X' '1'; the fourth
    // count is written as 30 - 30 = 0 -> '0'; the fifth as 20 - 40 = -20: groups 12
    // (continued: 12 | 0x20 -> '\\') and -1 = 0x1f -> 'O'
    CHECK(mask::to_string(rle{20, 7, {20, 30, 40, 30, 20}}) == "d0n0X10\\O");
    CHECK(mask::from_string("d0n0X10\\O", 20, 7) == rle{20, 7, {20, 30, 40, 30, 20}});
    CHECK(mask::from_string("324O", 2, 5) == rle{2, 5, {3, 2, 4, 1}});
    CHECK(mask::from_string("0T3", 10, 10) == rle{10, 10, {0, 100}});
    CHECK(mask::from_string("`0", 4, 4) == rle{4, 4, {16}});
    CHECK(mask::from_string("", 0, 7) == rle{0, 7, {}});
}

TEST_CASE("compressed strings: large counts round trip") {
    std::mt19937 g(3);
    for (int it = 0; it < 200; ++it) {
        rle r{1, 0, {}};
        std::uint64_t sum = 0;
        int n = 1 + static_cast<int>(g() % 9);
        for (int i = 0; i < n; ++i) {
            std::uint32_t c = (g() % 3 == 0) ? g() % 5000000 : g() % 40;
            r.counts.push_back(c);
            sum += c;
        }
        r.width = static_cast<int>(sum);
        CHECK(mask::from_string(mask::to_string(r), 1, r.width) == r);
    }
}

TEST_CASE("compressed strings: malformed input gives exact messages") {
    CHECK(error_of([] { mask::from_string("3!", 1, 3); }) ==
          "mask::from_string: character 1 is '!' (code 33), outside '0'..'o'");
    CHECK(error_of([] { mask::from_string("0p", 1, 3); }) ==
          "mask::from_string: character 1 is 'p' (code 112), outside '0'..'o'");
    CHECK(error_of([] { mask::from_string("0T", 10, 10); }) ==
          "mask::from_string: counts string ends inside the value that starts at character 1 "
          "(length 2)");
    // the fourth count: 2 + (-3) ('M' = 48 + 29: -3 in one group)
    CHECK(error_of([] { mask::from_string("324M", 2, 5); }) ==
          "mask::from_string: run 3 (characters 3..3) is negative: -1");
    CHECK(error_of([] { mask::from_string("05", 2, 3); }) ==
          "mask::from_string: counts sum to 5 but the mask is 2x3 = 6 pixels");
    CHECK(error_of([] { mask::from_string("0", 2, -3); }) ==
          "mask::from_string: size 2x-3 (height x width) is negative");
    CHECK(error_of([] { mask::from_string("PPPPPPPPPPPPPP", 2, 3); }) ==
          "mask::from_string: the value that starts at character 0 is longer than 12 characters");
}

TEST_CASE("compressed strings: random garbage either parses to a valid rle or throws") {
    std::mt19937 g(17);
    int parsed = 0, thrown = 0;
    for (int it = 0; it < 3000; ++it) {
        std::string s;
        const int n = static_cast<int>(g() % 12);
        for (int i = 0; i < n; ++i)
            s.push_back(static_cast<char>(44 + g() % 72)); // ',' .. 's'
        // a size that fits the string's counts when they are valid and non-negative
        std::uint64_t sum = 0;
        bool ok = true;
        try {
            rle probe = mask::from_string(s, 1, 0);
            (void)probe;
        } catch (const snip::error& e) {
            const std::string m = e.what();
            if (m.rfind("mask::from_string: counts sum to ", 0) == 0)
                sum =
                    std::stoull(m.substr(std::string("mask::from_string: counts sum to ").size()));
            else
                ok = false;
        }
        if (ok && sum < 100000000) {
            rle r = mask::from_string(s, 1, static_cast<int>(sum));
            CHECK_NOTHROW(mask::check(r, "garbage"));
            CHECK(mask::from_string(mask::to_string(r), 1, r.width) == r);
            ++parsed;
        } else {
            CHECK_THROWS_AS(mask::from_string(s, 1, 1), snip::error);
            ++thrown;
        }
    }
    CHECK(parsed > 100);
    CHECK(thrown > 100);
}

TEST_CASE("check names the numbers") {
    CHECK(error_of([] {
              mask::check(rle{2, 3, {1, 2}}, "gt 5");
          }) == "gt 5: rle counts sum to 3 but the mask is 2x3 = 6 pixels");
    CHECK(error_of([] {
              mask::check(rle{-2, 3, {}}, "dt");
          }) == "dt: rle size -2x3 (height x width) is negative");
    CHECK_NOTHROW(mask::check(rle{2, 3, {6}}, "x"));
}

TEST_CASE("merge, iou and iou_matrix against per-pixel counts") {
    std::mt19937 g(11);
    const int sizes[][2] = {{1, 1}, {7, 5}, {23, 31}, {40, 40}};
    for (auto [h, w] : sizes) {
        std::vector<std::vector<std::uint8_t>> ms;
        std::vector<rle> rs;
        for (double p : {0.0, 1.0, 0.2, 0.5, 0.7, 0.3, 0.05}) {
            ms.push_back(random_mask(h, w, p, g));
            rs.push_back(mask::encode(ms.back().data(), h, w));
        }
        const std::size_t n = rs.size(), px = static_cast<std::size_t>(h) * w;
        // union and intersection of all, and of subsets
        for (std::size_t take = 1; take <= n; ++take) {
            std::vector<std::uint8_t> un(px, 0), in(px, 1);
            for (std::size_t i = 0; i < take; ++i)
                for (std::size_t q = 0; q < px; ++q)
                    un[q] |= ms[i][q], in[q] &= ms[i][q];
            std::span<const rle> sub(rs.data(), take);
            rle mu = mask::merge(sub), mi = mask::merge(sub, true);
            CHECK(canonical(mu));
            CHECK(canonical(mi));
            CHECK(mask::decode(mu) == un);
            CHECK(mask::decode(mi) == in);
        }
        // IoU
        std::vector<std::uint8_t> crowd;
        for (std::size_t j = 0; j < n; ++j)
            crowd.push_back(j % 2);
        auto mat = mask::iou_matrix(rs, rs, crowd);
        REQUIRE(mat.size() == n * n);
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < n; ++j) {
                std::uint64_t a = 0, b = 0, inter = 0;
                for (std::size_t q = 0; q < px; ++q) {
                    a += ms[i][q], b += ms[j][q], inter += ms[i][q] & ms[j][q];
                }
                double plain = inter == 0 ? 0.0 : double(inter) / double(a + b - inter);
                double crowded = inter == 0 ? 0.0 : double(inter) / double(a);
                CHECK(mask::iou(rs[i], rs[j], false) == plain);
                CHECK(mask::iou(rs[i], rs[j], true) == crowded);
                CHECK(mat[i * n + j] == (j % 2 ? crowded : plain));
            }
        // no crowd flags: none is a crowd
        auto plain = mask::iou_matrix(std::span<const rle>(rs.data(), 2), rs, {});
        for (std::size_t j = 0; j < n; ++j)
            CHECK(plain[n + j] == mask::iou(rs[1], rs[j], false));
    }
}

TEST_CASE("merge and iou reject different sizes") {
    std::vector<rle> rs{rle{2, 3, {6}}, rle{3, 2, {6}}};
    CHECK(error_of([&] { mask::merge(rs); }) ==
          "mask::merge: masks of different sizes, 2x3 and 3x2 (height x width)");
    CHECK(error_of([&] { mask::iou(rs[0], rs[1], false); }) ==
          "mask::iou: masks of different sizes, 2x3 and 3x2 (height x width)");
    std::vector<rle> gts{rle{2, 3, {6}}};
    std::vector<rle> dts{rle{2, 3, {6}}, rle{4, 3, {12}}};
    CHECK(error_of([&] { mask::iou_matrix(dts, gts, {}); }) ==
          "mask::iou_matrix (detection vs ground truth): masks of different sizes, 4x3 and "
          "2x3 (height x width)");
    std::vector<rle> short_gt{rle{2, 3, {5}}};
    CHECK(error_of([&] { mask::iou_matrix(gts, short_gt, {}); }) ==
          "mask::iou_matrix: ground truth 0: rle counts sum to 5 but the mask is 2x3 = 6 pixels");
    std::vector<std::uint8_t> two{0, 1};
    CHECK(error_of([&] { mask::iou_matrix(dts, gts, two); }) ==
          "mask::iou_matrix: 2 crowd flags for 1 ground truths");
    CHECK(mask::merge(std::vector<rle>{}) == rle{});
}

TEST_CASE("from_polygon: known masks") {
    // the square [0, 10] x [0, 10] covers the 10 x 10 image: every pixel centre is inside
    rle full = mask::from_polygon({0, 0, 0, 10, 10, 10, 10, 0}, 10, 10);
    CHECK(full.counts == std::vector<std::uint32_t>{0, 100});
    // [2, 5] x [1, 3] in a 6 x 8 image: columns 2..4, rows 1..2 (centres inside)
    rle r = mask::from_box({2, 1, 5, 3}, 6, 8);
    CHECK(r.counts == std::vector<std::uint32_t>{13, 2, 4, 2, 4, 2, 21});
    CHECK(mask::to_string(r) == "=24000a0"); // 13 2 4, then 0 0 0 and 21 - 4 = 17
    // a box whose edges pass just beside pixel centres: [1.4, 2.6] contains centre 1.5 and
    // 2.5; [0.6, 1.4] contains none in y
    CHECK(mask::area(mask::from_box({1.4, 1.4, 2.6, 2.6}, 4, 4)) == 4);
    CHECK(mask::area(mask::from_box({1.6, 0.6, 2.4, 1.4}, 4, 4)) == 0);
    // vertices far outside the image: the whole image
    CHECK(mask::from_polygon({-50, -50, 60, -50, 60, 70, -50, 70}, 5, 4).counts ==
          std::vector<std::uint32_t>{0, 20});
    // a triangle: columns 0..3 of the 4 x 4 image, lower-left half including the diagonal
    // centres whose digitised boundary passes below them
    rle tri = mask::from_polygon({0, 0, 0, 4, 4, 4}, 4, 4);
    CHECK(mask::decode(tri) == reference_raster({0, 0, 0, 4, 4, 4}, 4, 4));
    CHECK(mask::area(tri) == 10);
    CHECK(error_of([] {
              mask::from_polygon({0, 0, 1}, 4, 4);
          }) == "mask::from_polygon: a polygon has an odd number of values (3)");
    CHECK(error_of([] {
              mask::from_polygon({0, 0, 1, NAN, 2, 2}, 4, 4);
          }) == "mask::from_polygon: polygon value 3 is not finite (nan)");
    CHECK(mask::from_polygon({}, 3, 3).counts == std::vector<std::uint32_t>{9});
    CHECK(mask::from_polygons({}, 3, 3).counts == std::vector<std::uint32_t>{9});
}

TEST_CASE("from_polygon equals a per-pixel reference of COCO's rule on random polygons") {
    // Exact: the rasterisation equals reference_raster bit for bit.
    std::mt19937 g(5);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    int n_checked = 0;
    for (int it = 0; it < 120; ++it) {
        int h = 8 + static_cast<int>(g() % 40), w = 8 + static_cast<int>(g() % 40);
        bool convex = it % 2 == 0;
        // some polygons stick out of the image, a few have coinciding vertices
        double cx = u(g) * w, cy = u(g) * h, r = 2 + u(g) * 0.6 * std::max(h, w);
        polygon p = star(cx, cy, convex ? r : r * 0.3, r, 3 + static_cast<int>(g() % 12), g);
        if (it % 7 == 0) p.insert(p.end(), {p[0], p[1]});
        if (it % 11 == 0)
            for (auto& v : p)
                v = std::round(v); // on the pixel grid
        CAPTURE(it);
        rle m = mask::from_polygon(p, h, w);
        CHECK(canonical(m));
        CHECK(mask::decode(m) == reference_raster(p, h, w));
        ++n_checked;
    }
    CHECK(n_checked == 120);
}

TEST_CASE("from_polygon: area and pixel centres agree with the polygon's geometry") {
    // Tolerances: the rasterised area is within 0.35 * perimeter + 2 pixels of the shoelace
    // area (edges are digitised to 0.2 px, so only boundary pixels can differ); pixels whose
    // centres are more than 1 px from every edge are set iff the centre is inside (exact).
    std::mt19937 g(9);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int it = 0; it < 60; ++it) {
        const int h = 60, w = 70;
        bool convex = it % 2 == 0;
        double r = 5 + u(g) * 20;
        polygon p = star(w / 2.0 + (u(g) - 0.5) * 10, h / 2.0 + (u(g) - 0.5) * 10,
                         convex ? r : r * 0.3, r, 3 + static_cast<int>(g() % 20), g);
        CAPTURE(it);
        rle m = mask::from_polygon(p, h, w);
        double a = static_cast<double>(mask::area(m));
        CHECK(std::abs(a - shoelace(p)) <= 0.35 * perimeter(p) + 2);
        auto d = mask::decode(m);
        int far = 0;
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) {
                double px = x + 0.5, py = y + 0.5;
                if (edge_distance(p, px, py) <= 1.0) continue;
                ++far;
                CHECK(d[static_cast<std::size_t>(y) * w + x] == (inside(p, px, py) ? 1 : 0));
            }
        CHECK(far > 0);
    }
}

TEST_CASE("from_polygons and from_segmentation") {
    polygon a{1, 1, 1, 6, 6, 6, 6, 1}, b{4, 4, 4, 9, 9, 9, 9, 4};
    rle ra = mask::from_polygon(a, 10, 12), rb = mask::from_polygon(b, 10, 12);
    rle u = mask::from_polygons({a, b}, 10, 12);
    CHECK(u == mask::merge(std::vector<rle>{ra, rb}));
    CHECK(mask::area(u) == 25 + 25 - 4);
    snip::mask::segmentation s;
    s.polygons = {a, b};
    CHECK(mask::from_segmentation(s, 10, 12) == u);
    snip::mask::segmentation sr;
    sr.mask = ra;
    CHECK(mask::from_segmentation(sr, 10, 12) == ra);
    CHECK(error_of([&] { mask::from_segmentation(sr, 12, 10); }) ==
          "mask::from_segmentation: the RLE is 10x12 but the image is 12x10 (height x width)");
    snip::mask::segmentation bad;
    bad.mask = rle{10, 12, {5}};
    CHECK(error_of([&] { mask::from_segmentation(bad, 10, 12); }) ==
          "mask::from_segmentation: rle counts sum to 5 but the mask is 10x12 = 120 pixels");
    CHECK(mask::area(mask::from_segmentation({}, 4, 5)) == 0);
}
