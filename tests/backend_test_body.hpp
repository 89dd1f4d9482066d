// backend_test_body.hpp: the one test every box storage backend passes (plain buffers,
// Eigen, xtensor, LibTorch): zero copy, boxes read back, writes land in the container,
// and the same greedy cover and chip plans as a plain vector of boxes. A backend B gives
// `container`, `make(boxes)`, `storage(c)`, `storage_size(c)` and `at(c, i, k)`.
#pragma once

#include <doctest/doctest.h>

#include <snip/sniper/cover.hpp>
#include <snip/sniper/plan.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

namespace backend_test {

constexpr int kW = 640, kH = 480;

/// Boxes in [0, kW] x [0, kH], sizes spread over 4..~450 px (every SNIPER range), a
/// few of them larger than a chip; always the same for one seed.
std::vector<snip::box<float>> random_boxes(std::uint32_t seed, int n) {
    std::mt19937 rng(seed);
    auto uniform = [&](float lo, float hi) {
        return lo + (hi - lo) * static_cast<float>(rng() % 100000u) / 100000.0f;
    };
    std::vector<snip::box<float>> out;
    for (int i = 0; i < n; ++i) {
        const float side = 4.0f * std::pow(2.0f, uniform(0.0f, 6.8f));
        const float w = side * uniform(0.6f, 1.4f), h = side * uniform(0.6f, 1.4f);
        const float x = uniform(0.0f, std::max(1.0f, kW - w)), y = uniform(0.0f, std::max(1.0f, kH - h));
        out.push_back({x, y, std::min(x + w, float(kW)), std::min(y + h, float(kH))});
    }
    return out;
}

void check_same_plan(const snip::image_plan& a, const snip::image_plan& b) {
    REQUIRE(a.positives.size() == b.positives.size());
    for (std::size_t i = 0; i < a.positives.size(); ++i) {
        CAPTURE(i);
        CHECK(a.positives[i].scale == b.positives[i].scale);
        CHECK(a.positives[i].factor == b.positives[i].factor);
        CHECK(a.positives[i].rect == b.positives[i].rect);
        CHECK(a.positives[i].boxes == b.positives[i].boxes);
    }
    REQUIRE(a.scales.size() == b.scales.size());
    for (std::size_t s = 0; s < a.scales.size(); ++s) {
        CHECK(a.scales[s].valid == b.scales[s].valid);
        CHECK(a.scales[s].uncoverable == b.scales[s].uncoverable);
    }
}

template <class B>
void run() {
    const std::vector<snip::box<float>> ref = random_boxes(20240611u, 80);
    const auto n = static_cast<std::ptrdiff_t>(ref.size());
    typename B::container store = B::make(ref);

    auto view = snip::as_box_view(store);
    static_assert(std::is_same_v<decltype(view), snip::box_view<float>>);
    const auto& cstore = store;
    auto cview = snip::as_box_view(cstore);
    static_assert(std::is_same_v<decltype(cview), snip::box_view<const float>>);
    static_assert(snip::box_storage<typename B::container>);

    // Zero copy: the view addresses the container's own storage.
    const float* lo = B::storage(store);
    const float* hi = lo + B::storage_size(store);
    REQUIRE(view.size() == n);
    // The view starts at the container's first element: its storage's start, or for a
    // backend whose containers may start inside their storage (a sliced tensor), B::first.
    const float* first = lo;
    if constexpr (requires { B::first(store); }) first = B::first(store);
    CHECK(view.data_handle() == first);
    CHECK(cview.data_handle() == first);
    for (std::ptrdiff_t i = 0; i < n; ++i)
        for (int k = 0; k < 4; ++k) {
            const float* p = &view(i, k);
            REQUIRE((p >= lo && p < hi));
            REQUIRE(*p == B::at(store, static_cast<std::size_t>(i), static_cast<std::size_t>(k)));
        }

    // (a) every box reads back unchanged.
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        CAPTURE(i);
        CHECK(view[i] == ref[static_cast<std::size_t>(i)]);
        CHECK(cview[i] == ref[static_cast<std::size_t>(i)]);
    }

    // Writes through the view land in the container.
    const snip::box<float> saved = view[3];
    view.set(3, {1.0f, 2.0f, 3.0f, 4.0f});
    CHECK(B::at(store, 3, 0) == 1.0f);
    CHECK(B::at(store, 3, 3) == 4.0f);
    view.set(3, saved);
    CHECK(cview[3] == ref[3]);

    const auto plain = snip::as_box_view(ref);
    static_assert(std::is_same_v<decltype(plain), const snip::box_view<const float>>);

    // (b) the same greedy cover as the plain vector of boxes.
    const auto cands = snip::candidate_chips(snip::chip_layout::sniper, kW, kH, 256, 32,
                                             snip::pixel_convention::inclusive);
    const auto want = snip::greedy_cover(cands, plain);
    REQUIRE_FALSE(want.chips.empty());
    const auto got = snip::greedy_cover(cands, cview);
    CHECK(got.chips == want.chips);
    CHECK(got.owner == want.owner);
    CHECK(got.counts == want.counts);
    // A mutable view converts explicitly (greedy_cover deduces T from box_view<const T>).
    const auto got_mut = snip::greedy_cover(cands, snip::box_view<const float>(view));
    CHECK(got_mut.owner == want.owner);

    // (c) the same plan with the original SNIPER rules.
    const auto cfg = snip::plan_config::sniper_coco();
    snip::plan_workspace ws;
    const auto plan_want = snip::plan_image(cfg, kW, kH, plain, {}, ws);
    REQUIRE(plan_want.positives.size() >= 3);
    const auto plan_got = snip::plan_image(cfg, kW, kH, cview, {}, ws);
    check_same_plan(plan_got, plan_want);
    // ... and with the defaults (continuous pixels, aligned grid).
    check_same_plan(snip::plan_image(snip::plan_config::defaults(), kW, kH, cview, {}, ws),
                    snip::plan_image(snip::plan_config::defaults(), kW, kH, plain, {}, ws));
}

} // namespace backend_test
