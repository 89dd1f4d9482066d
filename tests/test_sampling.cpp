// Tests of include/snip/det/sampling.hpp: seeded label sampling.
#include "test_util.hpp"

#include <snip/det/sampling.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <vector>

namespace {
using L = std::vector<std::int8_t>;
} // namespace

TEST_CASE("sampling: at most fg_fraction * batch positives, batch in total, reproducible") {
    std::vector<std::int8_t> base(5000, -1);
    for (std::size_t i = 0; i < 300; ++i) base[i * 14] = 1;       // 300 positives (even)
    for (std::size_t i = 0; i < 2000; ++i) base[i * 2 + 1] = 0;   // 2000 negatives (odd)
    auto s1 = base, s2 = base, s3 = base;
    const auto c1 = snip::sample_labels(s1, 256, 0.5, 42);
    snip::sample_labels(s2, 256, 0.5, 42);
    snip::sample_labels(s3, 256, 0.5, 43);
    CHECK(c1 == snip::label_counts{128, 128, 5000 - 256});
    CHECK(s1 == s2);
    CHECK(s1 != s3);
    for (std::size_t i = 0; i < base.size(); ++i) {
        if (s1[i] != -1) CHECK(s1[i] == base[i]);  // only disables, never relabels
    }

    SUBCASE("few positives: negatives fill the batch") {
        std::vector<std::int8_t> l(1000, 0);
        l[3] = l[10] = l[500] = 1;
        const auto c = snip::sample_labels(l, 256, 0.5, 1);
        CHECK(c == snip::label_counts{3, 253, 744});
        CHECK(l[3] == 1);
        CHECK(l[500] == 1);
    }
    SUBCASE("under the caps nothing changes") {
        std::vector<std::int8_t> l = {1, 0, -1, 0, 1};
        CHECK(snip::sample_labels(l, 256, 0.5, 9) == snip::label_counts{2, 2, 1});
        CHECK(l == L{1, 0, -1, 0, 1});
    }
    SUBCASE("every positive survives for some seed (uniform choice)") {
        std::vector<int> kept(base.size(), 0);
        for (std::uint64_t seed = 0; seed < 100; ++seed) {
            auto l = base;
            snip::sample_labels(l, 256, 0.5, seed);
            for (std::size_t i = 0; i < l.size(); ++i) kept[i] += l[i] == 1;
        }
        int lo = 1000, hi = 0;
        for (std::size_t i = 0; i < base.size(); ++i)
            if (base[i] == 1) lo = std::min(lo, kept[i]), hi = std::max(hi, kept[i]);
        CHECK(lo > 20);  // expected 100 * 128 / 300 = 42.7 each
        CHECK(hi < 70);
    }
    SUBCASE("fg_fraction 0 and 1, batch 0") {
        auto l = base;
        CHECK(snip::sample_labels(l, 256, 0.0, 5) == snip::label_counts{0, 256, 5000 - 256});
        l = base;
        CHECK(snip::sample_labels(l, 256, 1.0, 5) == snip::label_counts{256, 0, 5000 - 256});
        l = base;
        CHECK(snip::sample_labels(l, 0, 0.5, 5) == snip::label_counts{0, 0, 5000});
    }
    // the reported counts are those of the labels left
    std::size_t p1 = 0, n1 = 0, i1 = 0;
    for (auto l : s1) p1 += l == 1, n1 += l == 0, i1 += l == -1;
    CHECK(snip::label_counts{p1, n1, i1} == c1);
}
