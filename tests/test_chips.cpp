// Tests of include/snip/sniper/cover.hpp: candidate sets, the chip grid, greedy cover.
#include "test_util.hpp"

#include <snip/sniper/cover.hpp>
#include <snip/core/random.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

using snip::box;
using snip::chip_layout;
using snip::pixel_convention;

namespace {

/// Random boxes inside a W x H image. A quarter have whole-pixel corners, and a quarter
/// sit on the edges of the stride-32 grid's chips (start at a multiple of 32, and half
/// of those end exactly 511 px later), so containment is tested at the boundary too.
std::vector<box<float>> random_boxes(snip::splitmix64& g, int W, int H, int n, int max_side) {
    std::vector<box<float>> b;
    for (int i = 0; i < n; ++i) {
        float w = 1.0f + float(g.below(static_cast<std::uint64_t>(max_side)));
        float h = 1.0f + float(g.below(static_cast<std::uint64_t>(max_side)));
        float x = float(g.uniform() * std::max(1.0, W - 1.0 - w));
        float y = float(g.uniform() * std::max(1.0, H - 1.0 - h));
        switch (g.below(4)) {
        case 0:  // whole pixels
            x = std::floor(x);
            y = std::floor(y);
            break;
        case 1:  // on chip edges
            x = 32.0f * std::floor(x / 32.0f);
            y = 32.0f * std::floor(y / 32.0f);
            if (g.below(2)) w = h = 511.0f;
            break;
        default:
            break;
        }
        b.push_back({x, y, std::min(x + w, float(W - 1)), std::min(y + h, float(H - 1))});
    }
    return b;
}

bool has(const std::vector<box<int>>& v, box<int> b) { return std::find(v.begin(), v.end(), b) != v.end(); }

} // namespace

TEST_CASE("sniper candidates follow the original generator rule by rule") {
    // 600 x 600 image, 512 chips, stride 32: grid starts 0, 32, 64 (< 600 - 512 = 88).
    const auto c = snip::candidate_chips(chip_layout::sniper, 600, 600, 512, 32, pixel_convention::inclusive);
    CHECK(c.size() == 3 + 9 + 3 + 3);
    for (int x : {0, 32, 64})
        for (int y : {0, 32, 64}) CHECK(has(c, {x, y, x + 511, y + 511}));
    for (int y : {0, 32, 64}) CHECK(has(c, {87, y, 599, y + 511}));  // right-edge column starts at W - c - 1
    for (int x : {0, 32, 64}) CHECK(has(c, {x, 87, x + 511, 599}));  // bottom row starts at H - c - 1
    CHECK(has(c, {88, 0, 599, 512}));   // top-right corner, one pixel taller than the chip
    CHECK(has(c, {0, 88, 512, 599}));   // bottom-left corner, one pixel wider
    CHECK(has(c, {88, 88, 599, 599}));  // bottom-right corner
}

TEST_CASE("an image smaller than the chip gives one chip, the whole image") {
    for (auto layout : {chip_layout::sniper, chip_layout::aligned}) {
        const auto conv = layout == chip_layout::sniper ? pixel_convention::inclusive : pixel_convention::continuous;
        auto c = snip::candidate_chips(layout, 300, 200, 512, 32, conv);
        std::sort(c.begin(), c.end(), snip::chip_before);
        c.erase(std::unique(c.begin(), c.end()), c.end());
        REQUIRE(c.size() == 1);
        const int e = conv == pixel_convention::inclusive ? 1 : 0;
        CHECK(c[0] == box<int>{0, 0, 300 - e, 200 - e});
    }
}

TEST_CASE("aligned candidates are exact chips flush with the right and bottom edges") {
    const auto c = snip::candidate_chips(chip_layout::aligned, 600, 530, 512, 32, pixel_convention::continuous);
    CHECK(c.size() == 4 * 2);  // x: 0 32 64 88; y: 0 18
    for (const auto& b : c) {
        CHECK(b.width() == 512);
        CHECK(b.height() == 512);
        CHECK(b.x2 <= 600);
        CHECK(b.y2 <= 530);
    }
    CHECK(has(c, {88, 18, 600, 530}));
}

TEST_CASE("candidate_chips rejects impossible sizes with the value in the message") {
    CHECK_THROWS_WITH_AS(snip::candidate_chips(chip_layout::aligned, 0, 10, 512, 32, pixel_convention::continuous),
                         doctest::Contains("0x10"), snip::error);
    CHECK_THROWS_WITH_AS(snip::candidate_chips(chip_layout::aligned, 10, 10, 512, 0, pixel_convention::continuous),
                         doctest::Contains("stride must be > 0, got 0"), snip::error);
}

TEST_CASE("chip_grid::assign gives the candidate set of candidate_chips") {
    snip::splitmix64 g{7};
    for (int it = 0; it < 300; ++it) {
        const int W = 50 + int(g.below(2000)), H = 50 + int(g.below(2000)), s = 8 + int(g.below(80));
        for (auto layout : {chip_layout::sniper, chip_layout::aligned}) {
            const auto conv = layout == chip_layout::sniper ? pixel_convention::inclusive : pixel_convention::continuous;
            auto cands = snip::candidate_chips(layout, W, H, 512, s, conv);
            std::sort(cands.begin(), cands.end(), snip::chip_before);
            cands.erase(std::unique(cands.begin(), cands.end()), cands.end());
            snip::chip_grid grid;
            grid.assign(layout, W, H, 512, s, conv);
            CHECK(grid.monotone);
            std::vector<box<int>> from_grid;
            for (std::size_t r = 0; r < grid.rows.size(); ++r)
                for (std::size_t c = 0; c < grid.cols.size(); ++c)
                    if (grid.mask[r * grid.cols.size() + c]) from_grid.push_back(grid.chip(r, c));
            std::sort(from_grid.begin(), from_grid.end(), snip::chip_before);
            CHECK(from_grid == cands);
        }
    }
}

TEST_CASE("the chips that contain a box form a rectangle of grid indices") {
    snip::chip_grid grid;
    grid.assign(chip_layout::sniper, 1500, 900, 512, 32, pixel_convention::inclusive);
    snip::splitmix64 g{3};
    int on_edge = 0;  // (box, chip) pairs with the box inside and touching the chip's edge
    for (const auto& b : random_boxes(g, 1500, 900, 200, 400)) {
        auto [c0, c1] = snip::chip_grid::containing(grid.cols, b.x1, b.x2);
        auto [r0, r1] = snip::chip_grid::containing(grid.rows, b.y1, b.y2);
        for (int r = 0; r < int(grid.rows.size()); ++r)
            for (int c = 0; c < int(grid.cols.size()); ++c) {
                const auto k = grid.chip(std::size_t(r), std::size_t(c)).cast<float>();
                const bool inside = snip::contains(k, b);
                CHECK(inside == (c >= c0 && c <= c1 && r >= r0 && r <= r1));
                on_edge += inside && (b.x1 == k.x1 || b.y1 == k.y1 || b.x2 == k.x2 || b.y2 == k.y2);
            }
    }
    CHECK(on_edge > 20);
}

TEST_CASE("fast greedy cover equals the dense reference") {
    snip::splitmix64 g{11};
    for (int it = 0; it < 400; ++it) {
        const int W = 100 + int(g.below(1900)), H = 100 + int(g.below(1900));
        const int n = int(g.below(60)), s = 16 + int(g.below(64));
        const auto boxes = random_boxes(g, W, H, n, 1 + int(g.below(300)));
        const auto v = snip::as_box_view(boxes);
        for (auto layout : {chip_layout::sniper, chip_layout::aligned}) {
            const auto conv = layout == chip_layout::sniper ? pixel_convention::inclusive : pixel_convention::continuous;
            const auto cands = snip::candidate_chips(layout, W, H, 512, s, conv);
            const auto ref = snip::greedy_cover_naive(cands, snip::box_view<const float>(v));
            const auto fast = snip::greedy_cover(cands, snip::box_view<const float>(v));
            REQUIRE(ref.chips == fast.chips);
            REQUIRE(ref.owner == fast.owner);
            REQUIRE(ref.counts == fast.counts);
        }
    }
}

TEST_CASE("greedy cover properties: owners contain their boxes, nothing coverable is left, counts fall") {
    snip::splitmix64 g{5};
    for (int it = 0; it < 200; ++it) {
        const int W = 200 + int(g.below(1800)), H = 200 + int(g.below(1800));
        const auto boxes = random_boxes(g, W, H, int(g.below(80)), 200);
        const auto cands = snip::candidate_chips(chip_layout::aligned, W, H, 512, 32, pixel_convention::continuous);
        const auto r = snip::greedy_cover(cands, snip::box_view<const float>(snip::as_box_view(boxes)));
        for (std::size_t b = 0; b < boxes.size(); ++b) {
            bool coverable = false;
            for (const auto& c : cands) coverable |= snip::contains(c.cast<float>(), boxes[b]);
            CHECK(coverable == (r.owner[b] >= 0));
            if (r.owner[b] >= 0) CHECK(snip::contains(r.chips[std::size_t(r.owner[b])].cast<float>(), boxes[b]));
        }
        for (std::size_t k = 1; k < r.counts.size(); ++k) CHECK(r.counts[k] <= r.counts[k - 1]);
        for (const auto& c : r.chips) {
            CHECK(c.x1 >= 0);
            CHECK(c.y1 >= 0);
            CHECK(c.x2 <= W);
            CHECK(c.y2 <= H);
        }
    }
}

TEST_CASE("ties go to the smallest (y1, y2, x1, x2)") {
    // One box that every chip of a 700 x 600 aligned grid contains.
    std::vector<box<float>> b = {{300, 200, 310, 210}};
    const auto cands = snip::candidate_chips(chip_layout::aligned, 700, 600, 512, 32, pixel_convention::continuous);
    const auto r = snip::greedy_cover(cands, snip::box_view<const float>(snip::as_box_view(b)));
    REQUIRE(r.chips.size() == 1);
    CHECK(r.chips[0] == box<int>{0, 0, 512, 512});
}

TEST_CASE("empty inputs give empty covers") {
    std::vector<box<float>> none;
    const auto cands = snip::candidate_chips(chip_layout::aligned, 700, 600, 512, 32, pixel_convention::continuous);
    const auto r = snip::greedy_cover(cands, snip::box_view<const float>(snip::as_box_view(none)));
    CHECK(r.chips.empty());
    CHECK(r.owner.empty());
    // A box larger than any chip is reported as not coverable.
    std::vector<box<float>> big = {{0, 0, 600, 590}};
    const auto r2 = snip::greedy_cover(cands, snip::box_view<const float>(snip::as_box_view(big)));
    CHECK(r2.chips.empty());
    CHECK(r2.owner == std::vector<int>{-1});
}
