// Tests of include/snip/sniper/dataset_plan.hpp: threads, determinism, progress, errors.
#include "test_util.hpp"

#include <snip/sniper/dataset_plan.hpp>
#include <snip/core/random.hpp>
#include <snip/io/coco.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace {

snip::dataset random_dataset(std::size_t n, std::uint64_t seed) {
    snip::splitmix64 g{seed};
    snip::dataset ds;
    for (std::size_t i = 0; i < n; ++i) {
        snip::image_record im;
        im.id = static_cast<std::int64_t>(i + 1);
        im.width = 200 + int(g.below(800));
        im.height = 200 + int(g.below(800));
        const int nb = int(g.below(15));
        for (int k = 0; k < nb; ++k) {
            const double w = 2 + g.uniform() * 180, h = 2 + g.uniform() * 180;
            const double x = g.uniform() * (im.width - w), y = g.uniform() * (im.height - h);
            im.boxes.push_back({x, y, x + w, y + h});
            im.ann_ids.push_back(static_cast<std::int64_t>(i * 100 + std::size_t(k)));
            im.categories.push_back(1);
            im.crowd.push_back(g.below(20) == 0);
        }
        ds.images.push_back(im);
    }
    return ds;
}

std::vector<snip::image_proposals> random_proposals(const snip::dataset& ds, std::uint64_t seed) {
    snip::splitmix64 g{seed};
    std::vector<snip::image_proposals> out(ds.images.size());
    for (std::size_t i = 0; i < ds.images.size(); ++i) {
        const auto& im = ds.images[i];
        for (int k = 0; k < 120; ++k) {
            // four clusters of 30 proposals: usually more negative chips than are sampled
            const double cx = (0.2 + 0.6 * ((k / 30) % 2)) * im.width;
            const double cy = (0.2 + 0.6 * ((k / 60) % 2)) * im.height;
            const double s = 8 + g.uniform() * 40;
            const double x = std::clamp(cx + (g.uniform() - 0.5) * 60, 0.0, im.width - s);
            const double y = std::clamp(cy + (g.uniform() - 0.5) * 60, 0.0, im.height - s);
            out[i].boxes.push_back({x, y, x + s, y + s});
            out[i].scores.push_back(1.0f);
        }
    }
    return out;
}

bool same(const std::vector<snip::image_chips_plan>& a, const std::vector<snip::image_chips_plan>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].plan.positives.size() != b[i].plan.positives.size()) return false;
        for (std::size_t k = 0; k < a[i].plan.positives.size(); ++k)
            if (!(a[i].plan.positives[k].rect == b[i].plan.positives[k].rect) ||
                a[i].plan.positives[k].boxes != b[i].plan.positives[k].boxes)
                return false;
        if (a[i].negatives.size() != b[i].negatives.size() || a[i].sampled != b[i].sampled) return false;
        for (std::size_t k = 0; k < a[i].negatives.size(); ++k)
            if (!(a[i].negatives[k].rect == b[i].negatives[k].rect) ||
                a[i].negatives[k].boxes != b[i].negatives[k].boxes ||
                a[i].negatives[k].proposals != b[i].negatives[k].proposals)
                return false;
    }
    return true;
}

} // namespace

TEST_CASE("the plan does not depend on the number of threads, and a seed fixes it") {
    const auto ds = random_dataset(700, 1);
    const auto props = random_proposals(ds, 2);
    for (auto cfg : {snip::plan_config::sniper_coco(), snip::plan_config::defaults()}) {
        snip::dataset_plan_options o;
        o.seed = 9;
        o.threads = 1;
        const auto one = snip::plan_dataset(cfg, ds, &props, o);
        o.threads = 3;
        const auto three = snip::plan_dataset(cfg, ds, &props, o);
        CHECK(same(one, three));
        CHECK(same(one, snip::plan_dataset(cfg, ds, &props, o)));
        std::size_t mined = 0, sampled = 0;
        for (const auto& p : one) {
            mined += p.negatives.size();
            sampled += p.sampled.size();
            CHECK(p.sampled.size() <= std::size_t(cfg.negatives_per_image));
            CHECK(p.sampled.size() == std::min(p.negatives.size(), std::size_t(cfg.negatives_per_image)));
        }
        CHECK(mined > 100);  // the proposal clusters do produce negative chips
        o.epoch = 1;
        const auto next = snip::plan_dataset(cfg, ds, &props, o);
        std::size_t differ = 0, choice = 0;
        for (std::size_t i = 0; i < one.size(); ++i)
            if (one[i].negatives.size() > std::size_t(cfg.negatives_per_image))
                ++choice, differ += one[i].sampled != next[i].sampled;
        REQUIRE(choice > 50);
        CHECK(differ > choice / 2);  // another epoch samples other negatives
    }
}

TEST_CASE("a drawn stride changes with the epoch and is used by every image") {
    auto cfg = snip::plan_config::sniper_coco();
    cfg.stride_min = 56;
    cfg.stride_max = 59;
    const auto ds = random_dataset(50, 4);
    for (int e = 0; e < 4; ++e) {
        snip::dataset_plan_options o;
        o.seed = 1;
        o.epoch = e;
        const auto p = snip::plan_dataset(cfg, ds, nullptr, o);
        const int s = snip::epoch_stride(cfg, 1, e);
        snip::plan_workspace ws;
        for (std::size_t i = 0; i < ds.images.size(); ++i) {
            const auto& im = ds.images[i];
            const auto ref = snip::plan_image(cfg, im.width, im.height,
                                              snip::box_view<const double>(snip::as_box_view(im.boxes)), im.crowd, ws, s);
            REQUIRE(ref.positives.size() == p[i].plan.positives.size());
            for (std::size_t k = 0; k < ref.positives.size(); ++k) CHECK(ref.positives[k].rect == p[i].plan.positives[k].rect);
        }
    }
}

TEST_CASE("progress is reported and errors in any image are rethrown") {
    const auto ds = random_dataset(300, 5);
    snip::dataset_plan_options o;
    std::size_t last = 0, calls = 0;
    o.progress = [&](std::size_t done, std::size_t total) {
        CHECK(total == 300);
        CHECK(done >= last);
        last = done;
        ++calls;
    };
    snip::plan_dataset(snip::plan_config::defaults(), ds, nullptr, o);
    CHECK(calls >= 1);
    CHECK(last == 300);
    auto bad = ds;
    bad.images[170].width = 0;
    CHECK_THROWS_WITH_AS(snip::plan_dataset(snip::plan_config::defaults(), bad, nullptr, o), doctest::Contains("0x"),
                         snip::error);
    std::vector<snip::image_proposals> short_props(3);
    CHECK_THROWS_WITH_AS(snip::plan_dataset(snip::plan_config::defaults(), ds, &short_props, o),
                         doctest::Contains("3 proposal lists for 300 images"), snip::error);
}

TEST_CASE("a planning thread that cannot start gives a snip::error naming it, not a hang") {
    const auto ds = random_dataset(400, 6);
    const auto props = random_proposals(ds, 7);
    snip::dataset_plan_options o;
    o.threads = 4;
    o.progress = [](std::size_t, std::size_t) {};
    o.progress_period = std::chrono::milliseconds(1);
    for (long budget : {0L, 1L, 3L}) {
        CAPTURE(budget);
        snip::detail::thread_start_budget() = budget;  // the next start after `budget` fails
        const auto msg = snip_test::error_of(
            [&] { snip::plan_dataset(snip::plan_config::sniper_coco(), ds, &props, o); });
        snip::detail::thread_start_budget() = -1;
        CHECK(snip_test::contains(msg, "plan_dataset: could not start thread " +
                                           std::to_string(budget + 1) + " of 4"));
        CHECK(snip_test::contains(msg, "Resource temporarily unavailable"));
    }
    // nothing is left behind: the same call plans as one thread does
    const auto p4 = snip::plan_dataset(snip::plan_config::sniper_coco(), ds, &props, o);
    o.threads = 1;
    const auto p1 = snip::plan_dataset(snip::plan_config::sniper_coco(), ds, &props, o);
    REQUIRE(p4.size() == p1.size());
    for (std::size_t i = 0; i < p1.size(); ++i) {
        CHECK(p4[i].plan.positives.size() == p1[i].plan.positives.size());
        CHECK(p4[i].sampled == p1[i].sampled);
    }
}
