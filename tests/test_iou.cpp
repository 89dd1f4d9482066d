// Tests of include/snip/det/iou.hpp: pairwise IoU under both conventions, IoU matrices.
#include "det_test_util.hpp"
#include "test_util.hpp"

#include <snip/det/iou.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <vector>

using snip::box;
using snip::gt_state;
using snip::pixel_convention;

// ---------------------------------------------------------------------------------------
// IoU

TEST_CASE("pairwise IoU: hand values under both conventions") {
    const box<float> a{0, 0, 10, 10}, b{5, 5, 15, 15};
    CHECK(snip::iou(a, b, pixel_convention::continuous) == doctest::Approx(25.0 / 175.0));
    CHECK(snip::iou(a, b, pixel_convention::continuous) == snip::iou(a, b));
    // py-faster-rcnn's bbox_overlaps: [0, 9] x [0, 9] vs [5, 14] x [5, 14] -> 25 / 175.
    CHECK(snip::iou(box<float>{0, 0, 9, 9}, box<float>{5, 5, 14, 14}, pixel_convention::inclusive) ==
          doctest::Approx(25.0 / 175.0));
    // Touching boxes share a pixel column only under the inclusive convention.
    const box<double> l{0, 0, 9, 9}, r{9, 0, 18, 9};
    CHECK(snip::iou(l, r, pixel_convention::continuous) == 0.0);
    CHECK(snip::iou(l, r, pixel_convention::inclusive) == doctest::Approx(10.0 / 190.0));
    // Degenerate boxes: zero-area boxes have IoU 0 (continuous); a point is one pixel (inclusive).
    const box<double> p{3, 3, 3, 3};
    CHECK(snip::iou(p, p, pixel_convention::continuous) == 0.0);
    CHECK(snip::iou(p, p, pixel_convention::inclusive) == 1.0);
    CHECK(snip::iou(l, l, pixel_convention::continuous) == 1.0);
    CHECK(snip::iou(box<double>{5, 5, 1, 1}, l, pixel_convention::continuous) == 0.0);
    // Anchor fraction inside a region.
    CHECK(snip::overlap_fraction(box<double>{0, 0, 10, 10}, box<double>{5, 0, 100, 100},
                                 pixel_convention::continuous) == 0.5);
    CHECK(snip::overlap_fraction(p, l, pixel_convention::continuous) == 0.0);
}

TEST_CASE("iou_matrix equals the double-loop reference on random boxes") {
    for (std::uint64_t seed : {1ull, 2ull, 3ull, 99ull}) {
        for (auto conv : {pixel_convention::continuous, pixel_convention::inclusive}) {
            INFO("seed ", seed);
            const auto a = random_boxes<float>(seed, 301, seed % 2 == 0);
            auto b = random_boxes<float>(seed + 1000, 57, false);
            b.push_back({10, 10, 10, 30});   // zero width
            b.push_back({-50, -50, -20, -20});  // outside the image
            const auto ref = snip::reference::iou_matrix(a, b, conv);
            const auto m = snip::iou_matrix(a, b, conv);
            REQUIRE(m.size() == a.size() * b.size());
            double worst = 0;
            std::size_t exact = 0;
            for (std::size_t i = 0; i < a.size(); ++i)
                for (std::size_t j = 0; j < b.size(); ++j) {
                    const float v = m[i * b.size() + j];
                    worst = std::max(worst, std::fabs(double(v) - ref[i][j]));
                    exact += v == snip::iou(a[i], b[j], conv);
                }
            CHECK(worst < 1e-6);
            CHECK(exact == m.size());  // the matrix is the pairwise function, bit for bit
            // Threads do not change a single value.
            CHECK(snip::iou_matrix(a, b, conv, /*threads=*/1) == m);
            CHECK(snip::iou_matrix(a, b, conv, /*threads=*/3) == m);
        }
    }
}

TEST_CASE("iou_matrix: large inputs are split over threads with identical results") {
    const auto a = random_boxes<double>(5, 2000, false);
    const auto b = random_boxes<double>(6, 300, true);
    const auto one = snip::iou_matrix(a, b, pixel_convention::continuous, 1);
    const auto two = snip::iou_matrix(a, b, pixel_convention::continuous, 2);
    CHECK(one == two);
    CHECK(one[123 * 300 + 45] == snip::iou(a[123], b[45]));
}

TEST_CASE("iou_matrix: strided views, mixed containers, empty inputs, errors") {
    const auto a = random_boxes<float>(11, 23, false);
    const auto b = random_boxes<float>(12, 9, false);
    const std::ptrdiff_t n = 23;
    std::vector<float> cm(4 * n);  // column-major 4 x N
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        cm[std::size_t(i)] = a[std::size_t(i)].x1;
        cm[std::size_t(n + i)] = a[std::size_t(i)].y1;
        cm[std::size_t(2 * n + i)] = a[std::size_t(i)].x2;
        cm[std::size_t(3 * n + i)] = a[std::size_t(i)].y2;
    }
    snip::box_view<float> va(cm.data(), n, 1, n);
    std::vector<float> flat_b;
    for (const auto& x : b) flat_b.insert(flat_b.end(), {x.x1, x.y1, x.x2, x.y2});
    const auto expect = snip::iou_matrix(a, b);
    CHECK(snip::iou_matrix(va, b) == expect);
    CHECK(snip::iou_matrix(snip::box_view<const float>(va), flat_b) == expect);
    std::vector<float> out(expect.size());
    snip::iou_matrix(va, snip::as_box_view(flat_b), out);
    CHECK(out == expect);

    std::vector<box<float>> none;
    CHECK(snip::iou_matrix(none, b).empty());
    CHECK(snip::iou_matrix(a, none).empty());
    std::vector<float> small(3);
    CHECK_THROWS_WITH_AS(snip::iou_matrix(a, b, small), doctest::Contains("output holds 3 values for 23 x 9 boxes"),
                         snip::error);
}
