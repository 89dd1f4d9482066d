// synth.hpp: the embedded default dataset of snip-chips, a synthetic COCO-format
// annotation set whose image sizes and boxes follow COCO val2017.
//
// Every parameter below was fitted once from
//   instances_val2017_boxes.json  (all 5,000 COCO val2017 images, 36,781 boxes,
//   whole-pixel [x, y, w, h], no crowd flags; see shared/data/README.md)
// with a scratch Python script (empirical histograms and linearly interpolated
// quantiles; no data is shipped). The tables are empirical distributions, sampled by
// inverse CDF with linear interpolation between the knots.
//
// Model, per image:
//   1. size (W, H): one of the 24 most common val2017 sizes (74.4 % of the images,
//      weights = image counts), else "other": long side from {640, 500, 600, 320,
//      400}, short/long ratio from a quantile table, landscape with p = 898/1281.
//   2. number of boxes n: the exact val2017 histogram for n = 0..63 (0.96 % of
//      images have none; mean 7.356, variance 55.3; a negative binomial with that
//      mean and variance would give 10 % empty images, so the histogram is used).
//   3. each box: size s = sqrt(w*h) from a quantile table CONDITIONED on n (crowded
//      images hold small objects: median s is 205 px with 1-2 boxes and 35 px with
//      21+); shape r = sqrt(w/h) from one quantile table; w = round(s*r),
//      h = round(s/r), both >= 1. A box larger than the image keeps its area where it
//      can (w = W, h = s*s/W) and is then clamped to the image. Position: uniform
//      over whole pixels with the box inside the image.
//      Category: the val2017 category frequencies (independent of size).
//      Crowd: 1 % of boxes (the val file has no crowd flags; COCO has ~1 % crowd
//      boxes; coco128 has 10 of 939). Crowd boxes are drawn like the others.
//   Image size does not change the box-size tables (82 % of val2017 images have a
//   long side of 640, which dominates every quantile); boxes are only clamped.
//
// Fit quality (real val2017 vs `make_synthetic_coco(5000, 1)`; seeds 2 and 3 in
// brackets show the sampling noise):
//   boxes / image, mean        7.356  vs  7.437  [7.21, 7.45]
//   images with 0 boxes        0.96 % vs  0.94 %
//   sqrt(w*h) quantile  10 %   13.4   vs  13.4   [13.5, 13.4]
//                       50 %   56.7   vs  57.5   [58.5, 55.9]
//                       90 %  252.9   vs 256.3   [257.6, 253.5]
//                       99 %  487.1   vs 487.3   [490.8, 481.9]
//   small / medium / large (sqrt(w*h) < 32, 32..96, > 96)
//                   31.8 / 34.5 / 33.8 %  vs  31.4 / 34.1 / 34.5 %
//   median sqrt(w*h) by boxes/image 1-2, 3-5, 6-10, 11-20, 21+
//                   205 / 128 / 72 / 45 / 35  vs  204 / 132 / 74 / 45 / 36
//   log(w/h) quantiles 10/50/90 %  -1.07 / -0.15 / 0.85  vs  -1.04 / -0.13 / 0.84
//   long side 640: 81.9 % vs 81.6 %; landscape: 75.4 % vs 76.0 %
//   person share of boxes: 29.9 % vs 29.9 %; crowd: none in the file vs 1.01 %
//   The default 500 images (seed 1): 7.57 boxes/image, quantiles 13.4 / 56.3 /
//   252.7 / 485.1, small/medium/large 31.5 / 34.9 / 33.6 %.
//
// Determinism: the generator uses its own splitmix64 stream and integer arithmetic
// only (tables in fixed point, no std:: distributions, no exp/log), so one seed gives
// bit-identical datasets with every compiler and standard library. The dataset with
// N images is a prefix of the one with N + 1 images (same seed).
#pragma once

#include <snip/sniper/dataset.hpp>
#include <snip/core/random.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace snip::apps::synth {

/// @brief COCO val2017 reference numbers (instances_val2017_boxes.json), printed by
/// `snip-chips synth` beside the synthetic ones.
struct coco_val2017 {
    static constexpr std::size_t images = 5000;
    static constexpr std::size_t boxes = 36781;
    static constexpr double boxes_per_image = 7.356;
    static constexpr double small_share = 0.3175;   ///< sqrt(w*h) < 32
    static constexpr double medium_share = 0.3447;  ///< 32 <= sqrt(w*h) <= 96
    static constexpr double large_share = 0.3378;   ///< sqrt(w*h) > 96
};

/// @brief The library's splitmix64 stream, drawn from with 32-bit multiply-shift
/// (integer-only, so every platform gives the same dataset).
struct rng {
    snip::splitmix64 g;
    explicit rng(std::uint64_t seed) : g{seed} {}
    /// 32 uniform bits.
    std::uint64_t u32() { return g.next() >> 32; }
    /// Uniform integer in [0, n) for n <= 2^32 (multiply-shift).
    std::uint64_t below(std::uint64_t n) { return (u32() * n) >> 32; }
};

namespace table {

/// One of the 24 most common val2017 image sizes: width, height, image count.
struct size_weight {
    int width, height, count;
};
inline constexpr std::array<size_weight, 24> common_sizes{{
    {640, 480, 1061}, {640, 427, 606}, {480, 640, 336}, {500, 375, 240}, {640, 426, 215},
    {427, 640, 171},  {640, 428, 161}, {640, 425, 146}, {612, 612, 106}, {375, 500, 94},
    {500, 333, 80},   {426, 640, 73},  {640, 640, 54},  {640, 360, 53},  {640, 424, 51},
    {428, 640, 47},   {425, 640, 41},  {640, 478, 35},  {478, 640, 31},  {333, 500, 28},
    {424, 640, 24},   {500, 334, 23},  {640, 457, 22},  {640, 359, 21}}};
/// The 1,281 images of other sizes.
inline constexpr int other_sizes_count = 1281;
/// Their long side: value, image count (the 46 images with rare long sides,
/// 200..638 px, are lumped at 400).
inline constexpr std::array<std::array<int, 2>, 5> other_long_side{
    {{640, 949}, {500, 255}, {600, 18}, {320, 13}, {400, 46}}};
/// Their short/long ratio x 10^4 at percentiles 0, 5, 10, 20, ..., 90, 95, 100 (x 10).
inline constexpr std::array<int, 13> other_ratio_pct{0,   50,  100, 200, 300, 400, 500,
                                                     600, 700, 800, 900, 950, 1000};
inline constexpr std::array<int, 13> other_ratio{2484, 5141, 5641, 6260, 6609, 6720, 6984,
                                                 7297, 7516, 7980, 8562, 9220, 10000};
/// Their landscape (width >= height) share: 898 of 1281.
inline constexpr int other_landscape = 898;

/// Images with n = 0..63 boxes (sum 5000, 36,781 boxes).
inline constexpr std::array<int, 64> boxes_per_image{
    48, 593, 925, 544, 422, 285, 270, 215, 175, 191, 134, 117, 102, 88, 94, 115,
    91, 72,  81,  49,  56,  48,  31,  38,  23,  25,  30,  23,  14,  19, 8,  9,
    5,  5,   5,   8,   5,   7,   5,   5,   4,   3,   2,   3,   0,   1,  1,  0,
    0,  0,   0,   0,   1,   1,   1,   0,   2,   0,   0,   0,   0,   0,  0,  1};

/// Percentiles (x 10) of the box-size knots.
inline constexpr std::array<int, 19> size_pct{0,   10,  25,  50,  100, 150, 200, 300, 400, 500,
                                              600, 700, 800, 850, 900, 950, 975, 990, 1000};
/// sqrt(w*h) in 1/100 px at those percentiles, one row per boxes-per-image class
/// 1-2, 3-5, 6-10, 11-20, 21+ (2443, 4745, 7584, 12885, 9124 boxes); minimum 1 px.
inline constexpr std::array<std::array<int, 19>, 5> size_knots{{
    {632, 1791, 2347, 3525, 5164, 6850, 8787, 12208, 15983, 20460, 25325, 30230, 36174, 39360,
     42958, 48395, 51863, 54834, 61200},
    {245, 738, 1176, 1755, 2647, 3549, 4522, 6843, 9673, 12749, 16415, 20991, 27344, 31386,
     35971, 42921, 48851, 53322, 63900},
    {173, 529, 800, 1092, 1603, 2098, 2581, 3776, 5194, 7244, 9582, 12917, 17446, 20472, 25244,
     31864, 39079, 47398, 63950},
    {100, 424, 632, 866, 1200, 1530, 1876, 2615, 3421, 4470, 5897, 7967, 11017, 13593, 17427,
     24489, 31879, 40479, 62948},
    {100, 447, 601, 775, 1078, 1342, 1612, 2163, 2755, 3512, 4617, 6207, 8493, 10504, 13250,
     19494, 27392, 36542, 62233},
}};
inline constexpr int size_class(std::size_t n) {
    return n <= 2 ? 0 : n <= 5 ? 1 : n <= 10 ? 2 : n <= 20 ? 3 : 4;
}

/// Percentiles (x 10) of the box-shape knots and sqrt(w/h) x 10^4 there (all boxes).
inline constexpr std::array<int, 17> shape_pct{0,   10,  25,  50,  100, 200, 300, 400, 500,
                                               600, 700, 800, 900, 950, 975, 990, 1000};
inline constexpr std::array<int, 17> shape_knots{1961, 4170,  4767,  5252,  5855,  6739,
                                                 7566, 8402,  9258,  10150, 11258, 12683,
                                                 15291, 18075, 21134, 25762, 71725};

/// The 80 COCO categories (official ids and names) with their val2017 box counts.
struct category_weight {
    int id;
    const char* name;
    int count;
};
inline constexpr std::array<category_weight, 80> categories{{
    {1, "person", 11004},       {2, "bicycle", 316},        {3, "car", 1932},
    {4, "motorcycle", 371},     {5, "airplane", 143},       {6, "bus", 285},
    {7, "train", 190},          {8, "truck", 415},          {9, "boat", 430},
    {10, "traffic light", 637}, {11, "fire hydrant", 101},  {13, "stop sign", 75},
    {14, "parking meter", 60},  {15, "bench", 413},         {16, "bird", 440},
    {17, "cat", 202},           {18, "dog", 218},           {19, "horse", 273},
    {20, "sheep", 361},         {21, "cow", 380},           {22, "elephant", 255},
    {23, "bear", 71},           {24, "zebra", 268},         {25, "giraffe", 232},
    {27, "backpack", 371},      {28, "umbrella", 413},      {31, "handbag", 540},
    {32, "tie", 254},           {33, "suitcase", 303},      {34, "frisbee", 115},
    {35, "skis", 241},          {36, "snowboard", 69},      {37, "sports ball", 263},
    {38, "kite", 336},          {39, "baseball bat", 146},  {40, "baseball glove", 148},
    {41, "skateboard", 179},    {42, "surfboard", 269},     {43, "tennis racket", 225},
    {44, "bottle", 1025},       {46, "wine glass", 343},    {47, "cup", 899},
    {48, "fork", 215},          {49, "knife", 326},         {50, "spoon", 253},
    {51, "bowl", 626},          {52, "banana", 379},        {53, "apple", 239},
    {54, "sandwich", 177},      {55, "orange", 287},        {56, "broccoli", 316},
    {57, "carrot", 371},        {58, "hot dog", 127},       {59, "pizza", 285},
    {60, "donut", 338},         {61, "cake", 316},          {62, "chair", 1791},
    {63, "couch", 261},         {64, "potted plant", 343},  {65, "bed", 163},
    {67, "dining table", 697},  {70, "toilet", 179},        {72, "tv", 288},
    {73, "laptop", 231},        {74, "mouse", 106},         {75, "remote", 283},
    {76, "keyboard", 153},      {77, "cell phone", 262},    {78, "microwave", 55},
    {79, "oven", 143},          {80, "toaster", 9},         {81, "sink", 225},
    {82, "refrigerator", 126},  {84, "book", 1161},         {85, "clock", 267},
    {86, "vase", 277},          {87, "scissors", 36},       {88, "teddy bear", 191},
    {89, "hair drier", 11},     {90, "toothbrush", 57},
}};

/// Crowd share: 1 % of 2^32.
inline constexpr std::uint64_t crowd_threshold = 42949673;

} // namespace table

/// @brief Index drawn with probability weight(i) / sum of weights.
template <class Table, class Weight>
std::size_t pick(rng& g, const Table& t, Weight weight) {
    std::uint64_t total = 0;
    for (const auto& e : t) total += static_cast<std::uint64_t>(weight(e));
    std::uint64_t u = g.below(total);
    for (std::size_t i = 0; i < t.size(); ++i) {
        const auto w = static_cast<std::uint64_t>(weight(t[i]));
        if (u < w) return i;
        u -= w;
    }
    return t.size() - 1;
}

/// @brief Inverse CDF of a quantile table (percentiles x 10, integer knots), linear
/// between knots, in integer arithmetic.
template <std::size_t K>
std::int64_t quantile(rng& g, const std::array<int, K>& pct, const std::array<int, K>& knots) {
    // p in [0, 1000 * 2^32): the drawn percentile x 10, in 32.32 fixed point.
    const std::uint64_t p = g.u32() * 1000u;
    for (std::size_t i = 0; i + 1 < K; ++i) {
        const std::uint64_t hi = std::uint64_t(pct[i + 1]) << 32;
        if (p >= hi && i + 2 < K) continue;
        const std::uint64_t lo = std::uint64_t(pct[i]) << 32;
        const std::uint64_t span = hi - lo;
        const auto d = static_cast<std::uint64_t>(knots[i + 1] - knots[i]);
        // d < 2^17 and p - lo < 2^42: the product fits in 64 bits.
        return knots[i] + static_cast<std::int64_t>(d * (p - lo) / span);
    }
    return knots[K - 1];
}

/// Rounded a / b for non-negative a, positive b.
inline std::int64_t div_round(std::int64_t a, std::int64_t b) { return (a + b / 2) / b; }

} // namespace snip::apps::synth

namespace snip::apps {

/// @brief A synthetic COCO-like dataset: `images` images with ids 1..images, file
/// names synthetic_000001.jpg..., annotation ids from 1, the 80 COCO categories.
/// Boxes are whole-pixel xyxy inside their image, w, h >= 1. The same seed gives the
/// same dataset on every platform.
inline snip::dataset make_synthetic_coco(std::size_t images, std::uint64_t seed) {
    namespace t = synth::table;
    synth::rng g(seed);
    snip::dataset ds;
    ds.source = snip::concat("synthetic COCO val2017-like (", images, " images, seed ",
                                     seed, ")");
    for (const auto& c : t::categories) ds.categories.push_back({c.id, c.name});
    ds.images.reserve(images);
    std::int64_t next_ann = 1;
    for (std::size_t i = 0; i < images; ++i) {
        snip::image_record im;
        im.id = static_cast<std::int64_t>(i + 1);
        std::string num = std::to_string(im.id);
        im.file_name = "synthetic_" + std::string(num.size() < 6 ? 6 - num.size() : 0, '0') +
                       num + ".jpg";
        // 1. image size
        const std::uint64_t common_total = [] {
            std::uint64_t s = 0;
            for (const auto& e : t::common_sizes) s += std::uint64_t(e.count);
            return s;
        }();
        if (g.below(common_total + t::other_sizes_count) < common_total) {
            const auto& e = t::common_sizes[synth::pick(g, t::common_sizes,
                                                        [](const auto& x) { return x.count; })];
            im.width = e.width;
            im.height = e.height;
        } else {
            const int lng = t::other_long_side[synth::pick(g, t::other_long_side,
                                                           [](const auto& x) { return x[1]; })][0];
            const auto ratio = synth::quantile(g, t::other_ratio_pct, t::other_ratio);
            const int shrt = static_cast<int>(synth::div_round(lng * ratio, 10000));
            const bool landscape = g.below(t::other_sizes_count) < t::other_landscape;
            im.width = landscape ? lng : shrt;
            im.height = landscape ? shrt : lng;
        }
        // 2. number of boxes
        const std::size_t n = synth::pick(g, t::boxes_per_image, [](int c) { return c; });
        const auto& size_row = t::size_knots[std::size_t(t::size_class(n))];
        const std::int64_t W = im.width, H = im.height;
        // 3. boxes
        for (std::size_t b = 0; b < n; ++b) {
            const std::int64_t s = synth::quantile(g, t::size_pct, size_row);  // 1/100 px
            const std::int64_t r = synth::quantile(g, t::shape_pct, t::shape_knots);  // 1e-4
            std::int64_t w = std::max<std::int64_t>(1, synth::div_round(s * r, 1000000));
            std::int64_t h = std::max<std::int64_t>(1, synth::div_round(s * 100, r));
            const std::int64_t area = s * s;  // 1e-4 px^2
            if (w > W) {
                w = W;
                h = std::max<std::int64_t>(1, synth::div_round(area, 10000 * W));
            } else if (h > H) {
                h = H;
                w = std::max<std::int64_t>(1, synth::div_round(area, 10000 * H));
            }
            w = std::min(w, W);
            h = std::min(h, H);
            const auto x = static_cast<std::int64_t>(g.below(std::uint64_t(W - w + 1)));
            const auto y = static_cast<std::int64_t>(g.below(std::uint64_t(H - h + 1)));
            const int cat = t::categories[synth::pick(g, t::categories,
                                                      [](const auto& c) { return c.count; })]
                                .id;
            const bool crowd = g.u32() < t::crowd_threshold;
            im.boxes.push_back({double(x), double(y), double(x + w), double(y + h)});
            im.ann_ids.push_back(next_ann++);
            im.categories.push_back(cat);
            im.crowd.push_back(crowd ? 1 : 0);
        }
        ds.images.push_back(std::move(im));
    }
    return ds;
}

} // namespace snip::apps
