// Box geometry of box.hpp, including empty, degenerate and inverted boxes.
#include "test_util.hpp"

#include <snip/core/box.hpp>

#include <cmath>
#include <limits>
#include <type_traits>

using snip::box;
using snip::pixel_convention;

namespace {
constexpr box<double> A{0, 0, 10, 10};
constexpr box<double> B{5, 5, 15, 15};
constexpr box<double> inverted{10, 10, 0, 0};
constexpr box<double> line{2, 2, 2, 8};  // zero width
} // namespace

// Everything is usable in constant expressions.
static_assert(A.width() == 10 && A.height() == 10 && A.area() == 100);
static_assert(inverted.width() == -10 && inverted.area() == 0 && inverted.empty());
static_assert(line.area() == 0 && line.empty() && !A.empty());
static_assert(snip::intersection(A, B) == box<double>{5, 5, 10, 10});
static_assert(snip::intersection_area(A, B) == 25);
static_assert(snip::iou(A, B) == 25.0 / 175.0);
static_assert(snip::intersection_over_box(A, B) == 0.25);
static_assert(snip::contains(A, box<double>{0, 0, 10, 10}));
static_assert(!snip::contains(A, B));
static_assert(snip::clip(box<int>{-5, 2, 20, 30}, 10, 12) == box<int>{0, 2, 10, 12});
static_assert(snip::scale(box<int>{1, 2, 3, 4}, 2) == box<int>{2, 4, 6, 8});
static_assert(snip::shift(box<int>{10, 20, 30, 40}, 10, 5) == box<int>{0, 15, 20, 35});
static_assert(snip::from_xywh(1, 2, 3, 4) == box<int>{1, 2, 4, 6});
static_assert(snip::from_xywh(1, 2, 3, 4, pixel_convention::inclusive) == box<int>{1, 2, 3, 5});
static_assert(box<float>{1.7f, -1.7f, 2.2f, 3.9f}.cast<int>() == box<int>{1, -1, 2, 3});
static_assert(std::is_trivially_copyable_v<box<float>> && sizeof(box<float>) == 4 * sizeof(float));
static_assert(std::is_aggregate_v<box<double>>);

TEST_CASE("box: width, height, area, empty") {
    CHECK(box<float>{1, 2, 4, 8}.width() == 3);
    CHECK(box<float>{1, 2, 4, 8}.height() == 6);
    CHECK(box<float>{1, 2, 4, 8}.area() == 18);
    CHECK(box<float>{}.empty());
    CHECK(box<float>{}.area() == 0);
    // Inverted along one axis only: no area, even though w * h would be positive.
    const box<double> both{10, 10, 0, 0};
    CHECK(both.width() * both.height() > 0);
    CHECK(both.area() == 0);
    CHECK(box<double>{0, 10, 10, 0}.area() == 0);
    CHECK(box<double>{0, 0, 1e-9, 1}.area() > 0);
    CHECK_FALSE(box<double>{0, 0, 1e-9, 1}.empty());
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK(box<double>{0, 0, nan, 1}.empty());
    CHECK(box<double>{0, 0, nan, 1}.area() == 0);
}

TEST_CASE("box: intersection") {
    CHECK(snip::intersection(A, B) == box<double>{5, 5, 10, 10});
    CHECK(snip::intersection(B, A) == snip::intersection(A, B));
    CHECK(snip::intersection(A, A) == A);
    // Disjoint: an inverted box, area 0.
    const auto d = snip::intersection(A, box<double>{20, 0, 30, 10});
    CHECK(d.empty());
    CHECK(d.x1 == 20);
    CHECK(d.x2 == 10);
    CHECK(snip::intersection_area(A, box<double>{20, 0, 30, 10}) == 0);
    // Touching edges: an empty (zero-width) intersection.
    const auto t = snip::intersection(A, box<double>{10, 0, 20, 10});
    CHECK(t == box<double>{10, 0, 10, 10});
    CHECK(t.empty());
    CHECK(snip::intersection_area(A, box<double>{10, 0, 20, 10}) == 0);
    // With an inverted box the intersection is inverted too.
    CHECK(snip::intersection(A, inverted).empty());
    CHECK(snip::intersection_area(A, inverted) == 0);
    CHECK(snip::intersection_area(box<int>{0, 0, 4, 4}, box<int>{1, 1, 3, 9}) == 6);
}

TEST_CASE("box: iou") {
    CHECK(snip::iou(A, A) == 1.0);
    CHECK(snip::iou(A, B) == doctest::Approx(25.0 / 175.0));
    CHECK(snip::iou(A, B) == snip::iou(B, A));
    CHECK(snip::iou(A, box<double>{20, 20, 30, 30}) == 0);
    CHECK(snip::iou(A, box<double>{10, 0, 20, 10}) == 0);  // touching
    CHECK(snip::iou(box<double>{0, 0, 10, 10}, box<double>{0, 0, 5, 10}) == 0.5);
    // Inner box: iou = small / big.
    CHECK(snip::iou(A, box<double>{2, 2, 4, 4}) == doctest::Approx(0.04));
    // Empty boxes: 0, never NaN.
    CHECK(snip::iou(line, line) == 0);
    CHECK(snip::iou(inverted, inverted) == 0);
    CHECK(snip::iou(A, inverted) == 0);
    CHECK(snip::iou(A, line) == 0);
    CHECK(snip::iou(box<float>{}, box<float>{}) == 0);
    CHECK(snip::iou(box<float>{0, 0, 3, 3}, box<float>{1, 1, 4, 4}) == doctest::Approx(4.0 / 14.0));
}

TEST_CASE("box: intersection_over_box") {
    // The share of the second box inside the first.
    CHECK(snip::intersection_over_box(A, B) == 0.25);
    CHECK(snip::intersection_over_box(B, A) == 0.25);
    CHECK(snip::intersection_over_box(A, box<double>{2, 2, 4, 4}) == 1.0);
    CHECK(snip::intersection_over_box(box<double>{2, 2, 4, 4}, A) == doctest::Approx(0.04));
    CHECK(snip::intersection_over_box(A, box<double>{5, 0, 15, 10}) == 0.5);
    CHECK(snip::intersection_over_box(A, box<double>{20, 20, 30, 30}) == 0);
    // Empty second box: 0, never NaN; an empty first box covers nothing.
    CHECK(snip::intersection_over_box(A, line) == 0);
    CHECK(snip::intersection_over_box(A, inverted) == 0);
    CHECK(snip::intersection_over_box(inverted, A) == 0);
    CHECK(snip::intersection_over_box(line, A) == 0);
}

TEST_CASE("box: contains, closed intervals") {
    CHECK(snip::contains(A, A));                                // identical
    CHECK(snip::contains(A, box<double>{0, 0, 10, 5}));         // touching three edges
    CHECK(snip::contains(A, box<double>{3, 3, 10, 10}));        // touching right and bottom
    CHECK(snip::contains(A, box<double>{10, 10, 10, 10}));      // a point on the corner
    CHECK_FALSE(snip::contains(A, box<double>{0, 0, 10.000001, 5}));
    CHECK_FALSE(snip::contains(A, box<double>{-1e-9, 0, 5, 5}));
    CHECK_FALSE(snip::contains(A, B));
    CHECK_FALSE(snip::contains(box<double>{2, 2, 4, 4}, A));    // reversed roles
    CHECK(snip::contains(box<int>{0, 0, 511, 511}, box<int>{0, 0, 511, 511}));
    CHECK_FALSE(snip::contains(box<int>{0, 0, 511, 511}, box<int>{0, 0, 512, 511}));
    CHECK(snip::contains(A, line));
    // Coordinates only: an inverted box whose corners lie inside is "contained", and an
    // inverted outer box contains nothing.
    CHECK(snip::contains(A, box<double>{6, 6, 4, 4}));
    CHECK_FALSE(snip::contains(inverted, box<double>{4, 4, 6, 6}));
}

TEST_CASE("box: clip") {
    CHECK(snip::clip(box<double>{-5, -5, 20, 20}, 10.0, 8.0) == box<double>{0, 0, 10, 8});
    CHECK(snip::clip(A, 100.0, 100.0) == A);  // inside: unchanged
    // Entirely outside: collapses onto the border, empty.
    const auto out = snip::clip(box<double>{15, 15, 20, 20}, 10.0, 10.0);
    CHECK(out == box<double>{10, 10, 10, 10});
    CHECK(out.empty());
    CHECK(snip::clip(box<double>{-9, -9, -1, -1}, 10.0, 10.0) == box<double>{0, 0, 0, 0});
    // Clipping does not repair an inverted box.
    CHECK(snip::clip(inverted, 5.0, 5.0) == box<double>{5, 5, 0, 0});
    // Inclusive pixels clip to W - 1 (the caller chooses the bound).
    CHECK(snip::clip(box<int>{-1, 0, 700, 480}, 639, 479) == box<int>{0, 0, 639, 479});
}

TEST_CASE("box: scale and shift") {
    CHECK(snip::scale(box<double>{1, 2, 3, 4}, 1.5) == box<double>{1.5, 3, 4.5, 6});
    CHECK(snip::scale(box<double>{1, 2, 3, 4}, 0.0) == box<double>{0, 0, 0, 0});
    CHECK(snip::scale(A, 3.0).area() == 900);
    CHECK(snip::shift(box<double>{10, 20, 30, 40}, 10.0, 20.0) == box<double>{0, 0, 20, 20});
    CHECK(snip::shift(box<double>{10, 20, 30, 40}, -5.0, 0.0) == box<double>{15, 20, 35, 40});
    // Round trip into a chip's frame and back.
    const box<double> b{123.5, 77.25, 300, 310};
    CHECK(snip::shift(snip::shift(b, 100.0, 50.0), -100.0, -50.0) == b);
    CHECK(snip::shift(b, 3.0, 4.0).width() == b.width());
}

TEST_CASE("box: from_xywh in both pixel conventions") {
    // continuous: [x, x + w]
    CHECK(snip::from_xywh(10.0, 20.0, 30.0, 40.0) == box<double>{10, 20, 40, 60});
    CHECK(snip::from_xywh(10.0, 20.0, 30.0, 40.0, pixel_convention::continuous) ==
          box<double>{10, 20, 40, 60});
    CHECK(snip::from_xywh(10.0, 20.0, 30.0, 40.0).width() == 30);
    CHECK(snip::from_xywh(10.5, 20.25, 0.5, 0.25) == box<double>{10.5, 20.25, 11, 20.5});
    // inclusive: [x, x + max(0, w - 1)], x2 is the last pixel
    CHECK(snip::from_xywh(10.0, 20.0, 30.0, 40.0, pixel_convention::inclusive) ==
          box<double>{10, 20, 39, 59});
    CHECK(snip::from_xywh(10.0, 20.0, 1.0, 1.0, pixel_convention::inclusive) ==
          box<double>{10, 20, 10, 20});  // one pixel
    // widths below one pixel (and zero) clamp to a single pixel, never invert
    CHECK(snip::from_xywh(10.0, 20.0, 0.5, 0.0, pixel_convention::inclusive) ==
          box<double>{10, 20, 10, 20});
    CHECK(snip::from_xywh(10.0, 20.0, 2.5, 1.5, pixel_convention::inclusive) ==
          box<double>{10, 20, 11.5, 20.5});
    // degenerate and negative sizes: continuous keeps them as given
    CHECK(snip::from_xywh(5.0, 5.0, 0.0, 0.0).empty());
    CHECK(snip::from_xywh(5.0, 5.0, -2.0, 3.0) == box<double>{5, 5, 3, 8});
    CHECK(snip::from_xywh(5.0, 5.0, -2.0, 3.0, pixel_convention::inclusive) ==
          box<double>{5, 5, 5, 7});
    CHECK(snip::from_xywh(3, 4, 5, 6, pixel_convention::inclusive) == box<int>{3, 4, 7, 9});
}
