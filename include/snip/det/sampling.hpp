// sampling.hpp: seeded subsampling of anchor labels (positives capped at
// floor(fg_fraction * batch), then negatives to fill the batch), the counts it reports,
// and the reproducible random subset that RPN and RCNN sampling both draw from.
#pragma once

#include <snip/core/error.hpp>
#include <snip/core/random.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace snip {

/// @brief How many labels of each kind a labelling or sampling step left.
struct label_counts {
    std::size_t positive = 0, negative = 0, ignored = 0;
    friend constexpr bool operator==(const label_counts&, const label_counts&) = default;
};

namespace detail {

/// The sampling options (batch, fg_fraction) of RPN and RCNN targets.
inline void check_sampling(const char* who, int batch, double fg_fraction) {
    require(batch >= 0, who, ": batch must be >= 0, got ", batch);
    require(fg_fraction >= 0.0 && fg_fraction <= 1.0, who, ": fg_fraction must be in [0, 1], got ",
            fg_fraction);
}

/// Keeps a uniformly random `keep` of the `idx` (partial Fisher-Yates with `g`) and
/// returns the others, in place: idx[0, keep) kept, idx[keep, end) dropped.
inline void choose_subset(std::vector<std::int64_t>& idx, std::size_t keep, splitmix64& g) {
    const std::size_t n = idx.size();
    for (std::size_t k = 0; k < keep && k < n; ++k) {
        const std::size_t j = k + static_cast<std::size_t>(g.below(n - k));
        std::swap(idx[k], idx[j]);
    }
}

} // namespace detail

/// @brief Subsamples labels in place, reproducibly from `seed`: when more than
/// floor(fg_fraction * batch) are 1, a uniformly random excess of them becomes -1; then
/// when more than batch - (positives left) are 0, a random excess of those becomes -1.
/// @return the counts after sampling.
inline label_counts sample_labels(std::span<std::int8_t> labels, int batch, double fg_fraction,
                                  std::uint64_t seed) {
    detail::check_sampling("sample_labels", batch, fg_fraction);
    std::vector<std::int64_t> fg, bg;
    for (std::size_t i = 0; i < labels.size(); ++i) {
        if (labels[i] == 1) fg.push_back(static_cast<std::int64_t>(i));
        else if (labels[i] == 0) bg.push_back(static_cast<std::int64_t>(i));
    }
    const auto max_fg = static_cast<std::size_t>(std::floor(fg_fraction * double(batch)));
    if (fg.size() > max_fg) {
        splitmix64 g{mix(seed, 0x46475250ull)};
        detail::choose_subset(fg, max_fg, g);
        for (std::size_t k = max_fg; k < fg.size(); ++k) labels[static_cast<std::size_t>(fg[k])] = -1;
        fg.resize(max_fg);
    }
    const std::size_t max_bg = static_cast<std::size_t>(batch) - fg.size();
    if (bg.size() > max_bg) {
        splitmix64 g{mix(seed, 0x42475250ull)};
        detail::choose_subset(bg, max_bg, g);
        for (std::size_t k = max_bg; k < bg.size(); ++k) labels[static_cast<std::size_t>(bg[k])] = -1;
        bg.resize(max_bg);
    }
    label_counts c;
    c.positive = fg.size();
    c.negative = bg.size();
    c.ignored = labels.size() - c.positive - c.negative;
    return c;
}

} // namespace snip
