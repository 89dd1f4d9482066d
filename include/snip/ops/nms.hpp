// nms.hpp: non-maximum suppression for detections: hard NMS (equal to
// torchvision.ops.nms), per-class NMS (equal to torchvision.ops.batched_nms), linear and
// Gaussian Soft-NMS, and SNIPER's multi-scale merge used at inference. The per-pair maths
// (area, IoU test, 64-bit suppression words) is SNIP_HD and shared with cuda/nms.cuh.
//
// Boxes are xyxy, all in the same pixel frame (for the multi-scale merge: ORIGINAL image
// pixels). With `pixel_convention::continuous` (the default, torchvision's rule)
//   w = x2 - x1, h = y2 - y1, area = w * h;
//   inter = max(0, min(x2a, x2b) - max(x1a, x1b)) * max(0, min(y2a, y2b) - max(y1a, y1b));
//   IoU   = inter / (area_a + area_b - inter), evaluated in T (float boxes: float maths)
// and with `pixel_convention::inclusive` (the original SNIPER / py-faster-rcnn code) every
// width and height gets + 1. A box with w <= 0 or h <= 0 has area 0. When the union is 0
// the IoU test is false (torchvision divides 0 by 0 and compares NaN).
//
// Exactness: hard NMS returns exactly torchvision.ops.nms's kept indices for boxes with
// x1 <= x2, y1 <= y2 (the input torchvision documents): the order is a stable sort by
// decreasing score (equal scores: lower index first), a box is suppressed when its IoU
// with a kept, higher-ranked box is strictly greater than the threshold, and the IoU is
// computed with the same operations in the same order; the threshold is compared as a
// double (torchvision compares the float IoU with the double threshold). This holds when
// the compiler does not contract a * b + c into an FMA on the host (x86-64 g++/clang
// without -mfma/-march=native; otherwise pass -ffp-contract=off); the device code rounds
// every product explicitly (__fmul_rn), so CPU and CUDA results are identical.
//
// Errors (snip::error, naming the value): score count != box count, NaN score, NaN or
// infinite box coordinate, NaN threshold, sigma <= 0, more than 2^31 - 2 boxes.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/core/hd.hpp>
#include <snip/core/parallel.hpp>
#include <snip/core/valid_range.hpp>
#include <snip/core/views.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

namespace snip {

// =====================================================================================
// Shared host/device maths

namespace detail {

/// a * b rounded on its own: on the device __fmul_rn/__dmul_rn stop nvcc from fusing the
/// product into a later add (an FMA would round differently from the CPU).
template <class T>
SNIP_HD inline T mul_rn(T a, T b) {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>)
        return __fmul_rn(a, b);
    else if constexpr (std::is_same_v<T, double>)
        return __dmul_rn(a, b);
    else
        return a * b;
#else
    return a * b;
#endif
}

/// Box `i` of a flat xyxy array (4 numbers per box).
template <class T>
SNIP_HD inline box<T> load_box(const T* xyxy, std::ptrdiff_t i) {
    return {xyxy[4 * i], xyxy[4 * i + 1], xyxy[4 * i + 2], xyxy[4 * i + 3]};
}

} // namespace detail

/// @brief 1 for pixel_convention::inclusive (widths are x2 - x1 + 1), else 0.
template <class T>
SNIP_HD constexpr T width_extra(pixel_convention conv) {
    return conv == pixel_convention::inclusive ? T(1) : T(0);
}

/// @brief Area for NMS: w * h with w = x2 - x1 + extra, h = y2 - y1 + extra; 0 when w <= 0
/// or h <= 0. `extra` is 0 (continuous) or 1 (inclusive), see width_extra().
template <class T>
SNIP_HD inline T nms_area(const box<T>& b, T extra = T(0)) {
    const T w = b.x2 - b.x1 + extra, h = b.y2 - b.y1 + extra;
    return (w > T(0) && h > T(0)) ? detail::mul_rn(w, h) : T(0);
}

/// @brief Intersection area for NMS (same convention as nms_area), 0 when disjoint.
template <class T>
SNIP_HD inline T nms_intersection(const box<T>& a, const box<T>& b, T extra = T(0)) {
    const T w = detail::min_(a.x2, b.x2) - detail::max_(a.x1, b.x1) + extra;
    const T h = detail::min_(a.y2, b.y2) - detail::max_(a.y1, b.y1) + extra;
    return (w > T(0) && h > T(0)) ? detail::mul_rn(w, h) : T(0);
}

/// @brief IoU from precomputed areas: inter / (area_a + area_b - inter), 0 when the union
/// is not positive. `a` is the higher-ranked box (the order of the sum, as torchvision).
template <class T>
SNIP_HD inline T nms_iou(const box<T>& a, T area_a, const box<T>& b, T area_b, T extra = T(0)) {
    const T inter = nms_intersection(a, b, extra);
    const T uni = area_a + area_b - inter;
    return uni > T(0) ? inter / uni : T(0);
}

/// @brief The suppression test of hard NMS: IoU(a, b) > thr (strictly), false when the
/// union is not positive. `thr` is already in T (see nms_threshold()).
template <class T>
SNIP_HD inline bool iou_above(const box<T>& a, T area_a, const box<T>& b, T area_b, T thr,
                              T extra = T(0)) {
    const T inter = nms_intersection(a, b, extra);
    const T uni = area_a + area_b - inter;
    return uni > T(0) && inter / uni > thr;
}

/// @brief iou_above() computing both areas (continuous convention unless `extra` = 1).
template <class T>
SNIP_HD inline bool iou_above(const box<T>& a, const box<T>& b, T thr, T extra = T(0)) {
    return iou_above(a, nms_area(a, extra), b, nms_area(b, extra), thr, extra);
}

/// @brief Boxes per suppression word: the tile side of the bitmask NMS.
inline constexpr int nms_tile = 64;

/// @brief One 64-bit word of the suppression matrix: bit k (begin <= k < end) is set when
/// `cur` suppresses tile box k, i.e. iou_above(cur, tile k). `tile` holds xyxy boxes
/// (4 numbers each) and `tile_area` their nms_area(). Used by the CUDA kernel and the CPU
/// bitmask path.
template <class T>
SNIP_HD inline std::uint64_t nms_mask_word(const box<T>& cur, T cur_area, const T* tile,
                                           const T* tile_area, int begin, int end, T thr,
                                           T extra = T(0)) {
    std::uint64_t bits = 0;
    for (int k = begin; k < end; ++k)
        if (iou_above(cur, cur_area, detail::load_box(tile, k), tile_area[k], thr, extra))
            bits |= std::uint64_t(1) << k;
    return bits;
}

/// @brief Number of 64-bit words of the suppression matrix of `n` sorted boxes: row i holds
/// ceil(n / 64) words (only words at or right of block i / 64 are written or read).
inline std::size_t nms_mask_words(std::int64_t n) {
    const auto blocks = static_cast<std::size_t>((n + nms_tile - 1) / nms_tile);
    return static_cast<std::size_t>(n) * blocks;
}

// =====================================================================================
// Options and results

/// @brief "No limit" for max_out / max_per_image.
inline constexpr std::size_t nms_unlimited = std::numeric_limits<std::size_t>::max();

/// @brief How hard NMS runs on the CPU. All give the same result.
enum class nms_algorithm {
    automatic, ///< grid for more than 256 boxes and a threshold >= 0, else greedy
    greedy,    ///< each box against every kept box: O(N * kept), no setup
    grid,      ///< kept boxes in per-area-level uniform grids: a box is tested only
               ///< against kept boxes sharing a cell (a suppressor must overlap it) whose
               ///< area is within the ratio the threshold allows (IoU <= min/max area);
               ///< falls back to greedy when the threshold is < 0
    bitmask    ///< 64-box suppression words as on the GPU, rows computed on `threads`
               ///< threads in chunks of 256 (O(N^2 / 2) IoUs, skipping removed rows)
};

/// @brief Options of nms() and batched_nms().
struct nms_options {
    std::size_t max_out = nms_unlimited; ///< keep at most this many (the highest ranked)
    pixel_convention convention = pixel_convention::continuous; ///< continuous = torchvision
    nms_algorithm algorithm = nms_algorithm::automatic;
    unsigned threads = 0; ///< bitmask only; 0 = snip::default_threads()
};

/// @brief How Soft-NMS decays the score s of a box with IoU o against the selected box.
enum class soft_nms_method {
    linear,  ///< s *= 1 - o when o > iou_threshold (Nt), unchanged otherwise
    gaussian ///< s *= exp(-o^2 / sigma), for every o (o = 0 leaves s unchanged)
};

/// @brief Options of soft_nms().
struct soft_nms_options {
    soft_nms_method method = soft_nms_method::gaussian;
    double sigma = 0.5;             ///< Gaussian width (> 0)
    double iou_threshold = 0.3;     ///< Nt of the linear method (compared as o > Nt)
    double score_threshold = 0.001; ///< a box whose score is < this is dropped
    std::size_t max_out = nms_unlimited; ///< stop after this many selections
    pixel_convention convention = pixel_convention::continuous;

    /// @brief Throws snip::error unless sigma is finite and > 0 and the thresholds are
    /// numbers.
    void validate() const {
        require(std::isfinite(sigma) && sigma > 0.0,
                "soft_nms: sigma must be a finite number > 0, got ", sigma);
        require(!std::isnan(iou_threshold), "soft_nms: iou_threshold must be a number, got ",
                iou_threshold);
        require(!std::isnan(score_threshold),
                "soft_nms: score_threshold must be a number, got ", score_threshold);
    }
};

/// @brief Soft-NMS output: input indices in selection order and their scores at selection.
template <class T>
struct soft_nms_result {
    std::vector<std::int64_t> keep;
    std::vector<T> scores;
    std::size_t size() const { return keep.size(); }
};

/// @brief Options of merge_multiscale(): SNIPER's inference merge of detections from
/// several scales. The defaults are snip's rules; sniper_coco() reproduces the original.
struct multiscale_merge_options {
    /// Per-scale valid range on sqrt(w * h) in ORIGINAL image pixels (w = x2 - x1),
    /// lo <= size < hi, negative = open (snip::valid_range). Scale s of a detection
    /// uses ranges[s].
    std::vector<valid_range> ranges{{-1.0, 90.0}, {32.0, 180.0}, {75.0, -1.0}};
    double sigma = 0.55;             ///< Gaussian Soft-NMS per class
    double score_threshold = 0.001;  ///< Soft-NMS drop threshold
    std::size_t max_per_image = 200; ///< top-k over all classes (nms_unlimited: no cut)
    pixel_convention convention = pixel_convention::continuous; ///< Soft-NMS IoU widths
    /// The original code's rules instead of snip's: a box is in range when
    /// lo^2 < w * h <= hi^2 (computed in T; lo, hi <= 0 open); a (scale, class) group with
    /// no box in range keeps ALL its boxes; the top-k cut keeps every box scoring at
    /// least the k-th score (ties may give more than k).
    bool sniper_compatible = false;

    /// @brief The official SNIPER COCO inference: ranges (-1,90), (32,180), (75,-1), Gaussian
    /// Soft-NMS sigma 0.55 with +1 pixel widths, threshold 0.001, 200 per image, and the
    /// original range test, empty-group fallback and tie rule (sniper_compatible).
    /// Remaining differences from the original cpu_soft_nms: boxes with an initial score
    /// below the threshold are dropped up front (the original only drops a box after a
    /// decay; its pipeline never passes such boxes), and exactly equal scores are taken
    /// in pool order rather than in the order its in-place swaps leave them.
    static multiscale_merge_options sniper_coco() {
        multiscale_merge_options o;
        o.convention = pixel_convention::inclusive;
        o.sniper_compatible = true;
        return o;
    }

    void validate() const {
        require(!ranges.empty(), "merge_multiscale: at least one valid range is needed");
        for (std::size_t s = 0; s < ranges.size(); ++s)
            ranges[s].validate(concat("merge_multiscale: valid range of scale ", s));
        require(std::isfinite(sigma) && sigma > 0.0,
                "merge_multiscale: sigma must be a finite number > 0, got ", sigma);
        require(!std::isnan(score_threshold),
                "merge_multiscale: score_threshold must be a number, got ", score_threshold);
    }
};

/// @brief Merged detections of one image, sorted by decreasing score (ties: lower class
/// id, then Soft-NMS selection order). `index` points into the inputs of merge_multiscale.
template <class T>
struct merged_detections {
    std::vector<std::int64_t> index; ///< input detection index
    std::vector<box<T>> boxes;       ///< its box (original pixels, unchanged)
    std::vector<T> scores;           ///< score after Soft-NMS
    std::vector<std::int64_t> labels; ///< class id
    std::vector<int> scales;          ///< scale index
    std::size_t size() const { return index.size(); }
};

// =====================================================================================
// Internals

namespace detail {

template <class T>
inline constexpr bool nms_float_v = std::is_same_v<T, float> || std::is_same_v<T, double>;

template <class T>
using score_key_t = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;

/// An unsigned key whose ascending order is the DEScending order of the scores (-0 == +0).
template <class T>
inline score_key_t<T> descending_key(T s) {
    using K = score_key_t<T>;
    if (s == T(0)) s = T(0);
    const K u = std::bit_cast<K>(s);
    constexpr K sign = K(1) << (8 * sizeof(K) - 1);
    const K ascending = (u & sign) ? K(~u) : K(u | sign);
    return K(~ascending);
}

/// The T value t' with (x > t') == (double(x) > t) for every non-NaN T x.
template <class T>
inline T gt_threshold(double t) {
    if constexpr (sizeof(T) >= sizeof(double)) {
        return static_cast<T>(t);
    } else {
        constexpr double mx = double(std::numeric_limits<T>::max());
        if (t == std::numeric_limits<double>::infinity()) return std::numeric_limits<T>::infinity();
        if (t >= mx) return std::numeric_limits<T>::max();
        if (t < -mx) return -std::numeric_limits<T>::infinity();
        T f = static_cast<T>(t);
        if (double(f) > t) f = std::nextafter(f, -std::numeric_limits<T>::infinity());
        return f;
    }
}

/// The T value t' with (x < t') == (double(x) < t) for every non-NaN T x.
template <class T>
inline T lt_threshold(double t) {
    return -gt_threshold<T>(-t);
}

/// Boxes (positive area only) bucketed by area for overlap queries. Level e holds the
/// boxes with area in [2^(e-1), 2^e) and has its own uniform grid, with cells about 1.5x
/// the side of its largest box (grown until the level has at most 4 * count + 16 cells).
/// A box is listed in every cell of its level that its extent [x1, x2 + extra] x
/// [y1, y2 + extra] touches (more than `max_cells` cells: the level's `big` list), and in
/// the level's `all` list. Two boxes with a positive intersection (under the convention)
/// always share a cell of either box's level, because the cell index is a monotone
/// function of the coordinate. A query visits the levels a predicate accepts (hard NMS
/// skips levels whose areas are too different for the IoU to pass the threshold) and in
/// each either the cells the box touches or, when that is cheaper, the `all` list.
template <class T>
struct level_grid {
    static constexpr std::int64_t max_cells = 64;
    struct level {
        double x0 = std::numeric_limits<double>::infinity(), y0 = x0, x1 = -x0, y1 = -x0;
        double lo_area = x0, hi_area = 0.0; ///< areas of the boxes framed in this level
        double inv = 1.0;
        std::int64_t gx = 0, gy = 0, head0 = 0;
        std::int64_t all = -1, big = -1; ///< list heads (into entries)
        std::int32_t count = 0, inserted = 0;
    };
    struct cell_span {
        std::int64_t x1, y1, x2, y2;
        std::int64_t cells() const { return (x2 - x1 + 1) * (y2 - y1 + 1); }
    };
    /// A listed box, stored inline so that a walk reads one record per box.
    struct entry {
        box<T> b;
        T area;
        std::int32_t j;
        std::int64_t next;
    };
    std::vector<level> levels;
    int emin = 0;                       ///< exponent of levels[0]
    /// Per box: its level (after reset), or `unused` when not in the grid. (Before the levels
    /// are known it holds the area's binary exponent, which is negative for areas below 0.5:
    /// the sentinel must not be a value an exponent can take.)
    std::vector<std::int32_t> level_of;
    static constexpr std::int32_t unused = std::numeric_limits<std::int32_t>::min();
    std::vector<std::int64_t> head;
    std::vector<entry> entries;

    static int exponent(T area) {
        if (!(area < std::numeric_limits<T>::infinity())) return 1 << 20;
        int e = 0;
        (void)std::frexp(double(area), &e);
        return e;
    }

    /// Frames the boxes j < n with use(j) (each must have a[j] > 0) and empties the lists.
    template <class Use>
    void reset(const T* c, const T* a, std::int32_t n, T extra, Use&& use) {
        level_of.assign(std::size_t(n), unused);
        head.clear();
        entries.clear();
        levels.clear();
        emin = std::numeric_limits<int>::max();
        int emax = std::numeric_limits<int>::min();
        for (std::int32_t j = 0; j < n; ++j) {
            if (!use(j)) continue;
            const int e = exponent(a[j]);
            level_of[std::size_t(j)] = e;
            emin = std::min(emin, e);
            emax = std::max(emax, e);
        }
        if (emin > emax) return;
        if (emax == (1 << 20)) { // infinite areas: one level above the largest finite one
            int top = emin;
            for (std::int32_t j = 0; j < n; ++j)
                if (level_of[std::size_t(j)] != unused && level_of[std::size_t(j)] < (1 << 20))
                    top = std::max(top, level_of[std::size_t(j)]);
            emax = top + 1;
            for (auto& e : level_of)
                if (e == (1 << 20)) e = emax;
        }
        levels.resize(std::size_t(emax - emin + 1));
        for (std::int32_t j = 0; j < n; ++j) {
            std::int32_t& li = level_of[std::size_t(j)];
            if (li == unused) continue;
            li -= emin;
            level& L = levels[std::size_t(li)];
            const box<T> b = load_box(c, j);
            L.x0 = std::min(L.x0, double(b.x1));
            L.y0 = std::min(L.y0, double(b.y1));
            L.x1 = std::max(L.x1, double(b.x2 + extra));
            L.y1 = std::max(L.y1, double(b.y2 + extra));
            L.lo_area = std::min(L.lo_area, double(a[j]));
            L.hi_area = std::max(L.hi_area, double(a[j]));
            ++L.count;
        }
        std::int64_t total = 0;
        for (level& L : levels) {
            if (L.count == 0) continue;
            const double ex = L.x1 - L.x0, ey = L.y1 - L.y0;
            const double cap = 4.0 * double(L.count) + 16.0;
            auto along = [](double e, double side) { return std::max(1.0, std::ceil(e / side)); };
            double side = std::max(1.5 * std::sqrt(L.hi_area), 1e-300);
            double dx = along(ex, side), dy = along(ey, side);
            if (dx * dy > cap) side *= std::sqrt(dx * dy / cap);
            for (;;) {
                dx = along(ex, side);
                dy = along(ey, side);
                if (dx * dy <= cap) break;
                side *= 1.25;
            }
            L.gx = std::int64_t(dx);
            L.gy = std::int64_t(dy);
            L.inv = 1.0 / side;
            L.head0 = total;
            total += L.gx * L.gy;
        }
        head.assign(std::size_t(total), -1);
    }

    static std::int64_t index(double v, double origin, double inv, std::int64_t g) {
        const double q = (v - origin) * inv;
        if (!(q >= 0.0)) return 0;
        if (q >= double(g)) return g - 1;
        return std::min<std::int64_t>(g - 1, std::int64_t(q));
    }

    static cell_span span(const level& L, const box<T>& b, T extra) {
        return {index(double(b.x1), L.x0, L.inv, L.gx), index(double(b.y1), L.y0, L.inv, L.gy),
                index(double(b.x2 + extra), L.x0, L.inv, L.gx),
                index(double(b.y2 + extra), L.y0, L.inv, L.gy)};
    }

    void push(std::int64_t& list, std::int32_t j, const box<T>& b, T area) {
        entries.push_back({b, area, j, list});
        list = std::int64_t(entries.size()) - 1;
    }

    /// Lists box j (framed by reset; `area` its nms_area) in its level.
    void insert(std::int32_t j, const box<T>& b, T area, T extra) {
        level& L = levels[std::size_t(level_of[std::size_t(j)])];
        ++L.inserted;
        push(L.all, j, b, area);
        const cell_span s = span(L, b, extra);
        if (s.cells() > max_cells) {
            push(L.big, j, b, area);
            return;
        }
        for (std::int64_t y = s.y1; y <= s.y2; ++y)
            for (std::int64_t x = s.x1; x <= s.x2; ++x)
                push(head[std::size_t(L.head0 + y * L.gx + x)], j, b, area);
    }

    template <class F>
    bool walk(std::int64_t e, F& f) const {
        for (; e >= 0; e = entries[std::size_t(e)].next)
            if (f(entries[std::size_t(e)])) return true;
        return false;
    }

    /// The levels that can hold areas in [lo, hi] (lo <= 0: from the first, hi = inf: to
    /// the last), as [first, last) indices.
    std::pair<std::size_t, std::size_t> levels_for(T lo, T hi) const {
        const auto nl = std::int64_t(levels.size());
        std::int64_t first = 0, last = nl;
        if (lo > T(0)) first = std::clamp<std::int64_t>(exponent(lo) - emin, 0, nl);
        if (hi < std::numeric_limits<T>::infinity())
            last = std::clamp<std::int64_t>(exponent(hi) - emin + 1, 0, nl);
        return {std::size_t(first), std::size_t(std::max(first, last))};
    }

    /// Calls f(entry) for listed boxes that may share a cell with `b` in the levels
    /// [range.first, range.second) with want(level) (a box may come more than once);
    /// returns true as soon as f does.
    template <class Want, class F>
    bool any(const box<T>& b, T extra, std::pair<std::size_t, std::size_t> range, Want&& want,
             F&& f) const {
        for (std::size_t li = range.first; li < range.second; ++li) {
            const level& L = levels[li];
            if (L.inserted == 0 || !want(L)) continue;
            const cell_span s = span(L, b, extra);
            if (s.cells() >= L.inserted) {
                if (walk(L.all, f)) return true;
                continue;
            }
            for (std::int64_t y = s.y1; y <= s.y2; ++y)
                for (std::int64_t x = s.x1; x <= s.x2; ++x)
                    if (walk(head[std::size_t(L.head0 + y * L.gx + x)], f)) return true;
            if (walk(L.big, f)) return true;
        }
        return false;
    }
};

/// Whether a level can hold a box whose IoU with a box of area `area` exceeds `thr`.
/// IoU <= min(area) / max(area), and in floating point the computed intersection never
/// exceeds the computed smaller area, so the computed IoU stays below
/// (min / max) * (1 + 4 eps); the 1e-5 margin covers that. Not used (always true) when
/// thr < 1e-3 or the area is below 1e-30 (where rounding is no longer relative).
struct area_filter {
    double thr = 0.0, area = 0.0;
    bool active = false;
    template <class T>
    static area_filter make(T thr, T area) {
        area_filter f;
        f.thr = double(thr);
        f.area = double(area);
        f.active = f.thr >= 1e-3 && f.area >= 1e-30;
        return f;
    }
    template <class L>
    bool operator()(const L& lv) const {
        if (!active) return true;
        constexpr double margin = 1.0 + 1e-5;
        return !(lv.hi_area * margin <= thr * area || area * margin <= thr * lv.lo_area);
    }
    /// The same test for one box, as an area window [lo, hi] in T: areas outside it cannot
    /// reach the threshold (the window is widened by a further 1e-5 for the rounding of
    /// its own computation). Everything passes when the filter is inactive.
    template <class T>
    void window(T& lo, T& hi) const {
        if (!active) {
            lo = T(0);
            hi = std::numeric_limits<T>::infinity();
            return;
        }
        constexpr double margin = 1.0 + 2e-5;
        lo = T(thr * area / margin);
        const double h = area * margin / thr;
        hi = h < double(std::numeric_limits<T>::max()) ? T(h) : std::numeric_limits<T>::infinity();
    }
};

/// The alive position with the highest score (equal scores: the lower position) under
/// decreasing scores: the scores of alive positions, -inf for the others, in blocks of 64
/// with a cached maximum per block; a changed position marks its block, and top()
/// recomputes the marked blocks, then scans the block maxima.
template <class T>
struct block_max {
    static constexpr std::int32_t width = 64;
    std::vector<T> v, bmax;
    std::vector<std::uint8_t> dirty_flag;
    std::vector<std::int32_t> dirty;
    std::int32_t n = 0, alive = 0;

    template <class Alive>
    void build(const T* s, std::int32_t count, Alive&& is_alive) {
        n = count;
        alive = 0;
        const std::int32_t blocks = (n + width - 1) / width;
        v.assign(std::size_t(blocks) * width, -std::numeric_limits<T>::infinity());
        for (std::int32_t j = 0; j < n; ++j)
            if (is_alive(j)) {
                v[std::size_t(j)] = s[j];
                ++alive;
            }
        bmax.assign(std::size_t(blocks), T(0));
        dirty_flag.assign(std::size_t(blocks), 1);
        dirty.resize(std::size_t(blocks));
        std::iota(dirty.begin(), dirty.end(), 0);
    }
    void mark(std::int32_t j) {
        const std::int32_t b = j / width;
        if (!dirty_flag[std::size_t(b)]) {
            dirty_flag[std::size_t(b)] = 1;
            dirty.push_back(b);
        }
    }
    void set(std::int32_t j, T score) {
        v[std::size_t(j)] = score;
        mark(j);
    }
    void remove(std::int32_t j) {
        v[std::size_t(j)] = -std::numeric_limits<T>::infinity();
        --alive;
        mark(j);
    }
    /// The best alive position, -1 when none. `is_alive` settles a maximum of -inf.
    template <class Alive>
    std::int32_t top(Alive&& is_alive) {
        if (alive == 0) return -1;
        for (const std::int32_t b : dirty) {
            const T* p = v.data() + std::size_t(b) * width;
            T m = p[0];
            for (std::int32_t k = 1; k < width; ++k) m = p[k] > m ? p[k] : m;
            bmax[std::size_t(b)] = m;
            dirty_flag[std::size_t(b)] = 0;
        }
        dirty.clear();
        std::size_t bb = 0;
        for (std::size_t b = 1; b < bmax.size(); ++b)
            if (bmax[b] > bmax[bb]) bb = b;
        const T m = bmax[bb];
        if (m == -std::numeric_limits<T>::infinity()) { // every alive score is -inf
            for (std::int32_t j = 0; j < n; ++j)
                if (is_alive(j)) return j;
            return -1;
        }
        const std::int32_t first = std::int32_t(bb) * width;
        for (std::int32_t j = first;; ++j)
            if (v[std::size_t(j)] == m) return j;
    }
};

} // namespace detail

/// @brief Reusable scratch memory for nms(), batched_nms() and soft_nms(): pass the same
/// workspace to repeated calls to avoid allocations. Its contents mean nothing between
/// calls. Not thread-safe: one workspace per thread.
template <class T>
struct nms_workspace {
    static_assert(detail::nms_float_v<T>, "nms_workspace<T>: T must be float or double");
    std::vector<std::int32_t> order, order_tmp, group, kept, local;
    std::vector<detail::score_key_t<T>> keys, keys_tmp;
    std::vector<T> coords, area, cur, out_scores;
    std::vector<std::uint8_t> flag;
    std::vector<std::uint64_t> masks, removed;
    std::vector<std::int32_t> stamp, alive;
    detail::level_grid<T> grid;
    detail::block_max<T> best;
};

namespace detail {

inline constexpr std::size_t nms_max_boxes = std::size_t(std::numeric_limits<std::int32_t>::max()) - 1;

template <class T>
void check_scores(const char* fn, std::size_t nboxes, std::span<const T> scores) {
    require(scores.size() == nboxes, fn, ": got ", scores.size(), " scores for ", nboxes,
            " boxes");
    require(nboxes <= nms_max_boxes, fn, ": at most ", nms_max_boxes, " boxes, got ", nboxes);
}

inline void check_threshold(const char* fn, double thr) {
    require(!std::isnan(thr), fn, ": iou_threshold must be a number, got ", thr);
}

/// ws.order = indices of `scores` by decreasing score, equal scores by increasing index
/// (a stable sort; LSD radix on the float bits for n > 64). Throws on a NaN score.
template <class T>
void sort_by_score(const char* fn, std::span<const T> scores, nms_workspace<T>& ws) {
    using K = score_key_t<T>;
    const std::size_t n = scores.size();
    ws.keys.resize(n);
    ws.order.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        require(!std::isnan(scores[i]), fn, ": score ", i, " is NaN");
        ws.keys[i] = descending_key(scores[i]);
        ws.order[i] = std::int32_t(i);
    }
    if (n < 2) return;
    if (n <= 64) {
        const K* k = ws.keys.data();
        std::sort(ws.order.begin(), ws.order.end(), [k](std::int32_t a, std::int32_t b) {
            return k[a] < k[b] || (k[a] == k[b] && a < b);
        });
        return;
    }
    constexpr int bytes = int(sizeof(K));
    std::array<std::array<std::uint32_t, 256>, bytes> hist{};
    for (std::size_t i = 0; i < n; ++i) {
        const K k = ws.keys[i];
        for (int b = 0; b < bytes; ++b) ++hist[std::size_t(b)][std::size_t((k >> (8 * b)) & 0xFF)];
    }
    ws.keys_tmp.resize(n);
    ws.order_tmp.resize(n);
    for (int b = 0; b < bytes; ++b) {
        auto& h = hist[std::size_t(b)];
        if (h[std::size_t((ws.keys[0] >> (8 * b)) & 0xFF)] == n) continue; // one digit: no-op
        std::array<std::uint32_t, 256> off;
        std::uint32_t sum = 0;
        for (std::size_t d = 0; d < 256; ++d) {
            off[d] = sum;
            sum += h[d];
        }
        for (std::size_t i = 0; i < n; ++i) {
            const K k = ws.keys[i];
            const std::uint32_t p = off[std::size_t((k >> (8 * b)) & 0xFF)]++;
            ws.keys_tmp[p] = k;
            ws.order_tmp[p] = ws.order[i];
        }
        ws.keys.swap(ws.keys_tmp);
        ws.order.swap(ws.order_tmp);
    }
}

/// Copies box `src` of `boxes` to slot `dst` of ws.coords / ws.area; throws on NaN/inf.
template <class T>
inline void gather_box(const char* fn, box_view<const T> boxes, std::int64_t src, std::size_t dst,
                       T extra, nms_workspace<T>& ws) {
    const box<T> b = boxes[src];
    require(std::isfinite(b.x1) && std::isfinite(b.y1) && std::isfinite(b.x2) &&
                std::isfinite(b.y2),
            fn, ": box ", src, " has a coordinate that is not finite: [", b.x1, ", ", b.y1, ", ",
            b.x2, ", ", b.y2, "]");
    T* c = ws.coords.data() + 4 * dst;
    c[0] = b.x1;
    c[1] = b.y1;
    c[2] = b.x2;
    c[3] = b.y2;
    ws.area[dst] = nms_area(b, extra);
}

/// Greedy NMS over n boxes already in rank order (flat xyxy `c`, areas `a`): writes the
/// kept positions (ascending) to `keep`, returns their count.
template <class T>
std::size_t nms_greedy_sorted(const T* c, const T* a, std::int32_t n, T thr, T extra,
                              std::size_t max_out, std::int32_t* keep) {
    std::size_t count = 0;
    for (std::int32_t j = 0; j < n && count < max_out; ++j) {
        const box<T> bj = load_box(c, j);
        bool suppressed = false;
        for (std::size_t k = 0; k < count && !suppressed; ++k) {
            const std::int32_t i = keep[k];
            suppressed = iou_above(load_box(c, i), a[i], bj, a[j], thr, extra);
        }
        if (!suppressed) keep[count++] = j;
    }
    return count;
}

/// Grid NMS (thr >= 0): a box with zero area can neither suppress nor be suppressed (its
/// intersection is 0); any other box is tested only against the kept boxes of a similar
/// area (area_filter) that share a grid cell with it (level_grid). Same result as greedy.
template <class T>
std::size_t nms_grid_sorted(const T* c, const T* a, std::int32_t n, T thr, T extra,
                            std::size_t max_out, std::int32_t* keep, nms_workspace<T>& ws) {
    auto& g = ws.grid;
    g.reset(c, a, n, extra, [a](std::int32_t j) { return a[j] > T(0); });
    std::size_t count = 0;
    for (std::int32_t j = 0; j < n && count < max_out; ++j) {
        if (!(a[j] > T(0))) {
            keep[count++] = j;
            continue;
        }
        const box<T> bj = load_box(c, j);
        const T aj = a[j];
        const area_filter filter = area_filter::make(thr, aj);
        T lo, hi;
        filter.window(lo, hi);
        const bool suppressed = g.any(bj, extra, g.levels_for(lo, hi), filter, [&](const auto& e) {
            return e.area >= lo && e.area <= hi && iou_above(e.b, e.area, bj, aj, thr, extra);
        });
        if (suppressed) continue;
        keep[count++] = j;
        g.insert(j, bj, aj, extra);
    }
    return count;
}

/// Bitmask NMS on the CPU: the GPU algorithm (nms_mask_word per 64-box tile) with rows
/// computed in chunks on several threads, rows already removed skipped.
template <class T>
std::size_t nms_bitmask_sorted(const T* c, const T* a, std::int32_t n, T thr, T extra,
                               std::size_t max_out, std::int32_t* keep, unsigned threads,
                               nms_workspace<T>& ws) {
    const std::int64_t blocks = (std::int64_t(n) + nms_tile - 1) / nms_tile;
    constexpr std::int32_t chunk = 256;
    ws.removed.assign(std::size_t(blocks), 0);
    ws.masks.resize(std::size_t(chunk) * std::size_t(blocks));
    std::uint64_t* removed = ws.removed.data();
    std::uint64_t* masks = ws.masks.data();
    std::size_t count = 0;
    for (std::int32_t r0 = 0; r0 < n && count < max_out; r0 += chunk) {
        const std::int32_t r1 = std::min(n, r0 + chunk);
        parallel_for(
            r1 - r0, 16,
            [&](std::ptrdiff_t lo, std::ptrdiff_t hi) {
                for (std::ptrdiff_t r = lo; r < hi; ++r) {
                    const std::int32_t i = r0 + std::int32_t(r);
                    if ((removed[i / nms_tile] >> (i % nms_tile)) & 1u) continue;
                    const box<T> bi = load_box(c, i);
                    std::uint64_t* row = masks + r * blocks;
                    for (std::int64_t cb = i / nms_tile; cb < blocks; ++cb) {
                        const int begin = cb == i / nms_tile ? i % nms_tile + 1 : 0;
                        const int end = int(std::min<std::int64_t>(nms_tile, n - cb * nms_tile));
                        row[cb] = nms_mask_word(bi, a[i], c + 4 * cb * nms_tile,
                                                a + cb * nms_tile, begin, end, thr, extra);
                    }
                }
            },
            threads);
        for (std::int32_t i = r0; i < r1 && count < max_out; ++i) {
            if ((removed[i / nms_tile] >> (i % nms_tile)) & 1u) continue;
            keep[count++] = i;
            const std::uint64_t* row = masks + std::int64_t(i - r0) * blocks;
            for (std::int64_t cb = i / nms_tile; cb < blocks; ++cb) removed[cb] |= row[cb];
        }
    }
    return count;
}

/// Above this many boxes `automatic` uses the grid (measured crossover on clustered
/// detections: greedy wins below ~256 boxes, the grid above).
inline constexpr std::int32_t nms_grid_min = 256;

/// Hard NMS over n boxes in rank order; dispatches on the algorithm.
template <class T>
std::size_t nms_sorted(const T* c, const T* a, std::int32_t n, T thr, T extra,
                       std::size_t max_out, std::int32_t* keep, const nms_options& opt,
                       nms_workspace<T>& ws) {
    if (n <= 0 || max_out == 0) return 0;
    nms_algorithm alg = opt.algorithm;
    if (alg == nms_algorithm::automatic)
        alg = (n > nms_grid_min && thr >= T(0)) ? nms_algorithm::grid : nms_algorithm::greedy;
    if (alg == nms_algorithm::grid && !(thr >= T(0))) alg = nms_algorithm::greedy;
    switch (alg) {
    case nms_algorithm::grid: return nms_grid_sorted(c, a, n, thr, extra, max_out, keep, ws);
    case nms_algorithm::bitmask:
        return nms_bitmask_sorted(c, a, n, thr, extra, max_out, keep, opt.threads, ws);
    default: return nms_greedy_sorted(c, a, n, thr, extra, max_out, keep);
    }
}

inline void check_keep_capacity(const char* fn, std::size_t n, std::size_t max_out, std::size_t cap) {
    const std::size_t need = std::min(n, max_out);
    require(cap >= need, fn, ": the output span holds ", cap, " indices but up to ", need,
            " may be kept");
}

template <class T>
std::size_t nms_impl(box_view<const T> boxes, std::span<const T> scores, double iou_threshold,
                     std::span<std::int64_t> keep, nms_workspace<T>& ws, const nms_options& opt) {
    constexpr const char* fn = "nms";
    check_scores(fn, std::size_t(boxes.size()), scores);
    check_threshold(fn, iou_threshold);
    const std::size_t n = scores.size();
    check_keep_capacity(fn, n, opt.max_out, keep.size());
    if (n == 0 || opt.max_out == 0) return 0;
    sort_by_score(fn, scores, ws);
    const T extra = width_extra<T>(opt.convention);
    ws.coords.resize(4 * n);
    ws.area.resize(n);
    for (std::size_t p = 0; p < n; ++p) gather_box(fn, boxes, ws.order[p], p, extra, ws);
    ws.kept.resize(std::min(n, opt.max_out));
    const std::size_t count =
        nms_sorted(ws.coords.data(), ws.area.data(), std::int32_t(n),
                   gt_threshold<T>(iou_threshold), extra, opt.max_out, ws.kept.data(), opt, ws);
    for (std::size_t k = 0; k < count; ++k) keep[k] = ws.order[std::size_t(ws.kept[k])];
    return count;
}

template <class T, class C>
std::size_t batched_nms_impl(box_view<const T> boxes, std::span<const T> scores,
                             std::span<const C> classes, double iou_threshold,
                             std::span<std::int64_t> keep, nms_workspace<T>& ws,
                             const nms_options& opt) {
    constexpr const char* fn = "batched_nms";
    check_scores(fn, std::size_t(boxes.size()), scores);
    require(classes.size() == scores.size(), fn, ": got ", classes.size(), " class ids for ",
            scores.size(), " boxes");
    check_threshold(fn, iou_threshold);
    const std::size_t n = scores.size();
    check_keep_capacity(fn, n, opt.max_out, keep.size());
    if (n == 0 || opt.max_out == 0) return 0;
    sort_by_score(fn, scores, ws);
    const std::int32_t* order = ws.order.data();

    // Rank positions grouped by class, rank order kept inside a class (stable).
    auto& group = ws.group;
    group.resize(n);
    C mn = classes[0], mx = classes[0];
    for (C k : classes) {
        mn = std::min(mn, k);
        mx = std::max(mx, k);
    }
    const std::uint64_t span =
        std::uint64_t(std::int64_t(mx)) - std::uint64_t(std::int64_t(mn)); // mx >= mn
    if (span < 4 * std::uint64_t(n) + 1024) {
        auto& start = ws.local;
        start.assign(std::size_t(span) + 2, 0);
        for (std::size_t p = 0; p < n; ++p)
            ++start[std::size_t(std::int64_t(classes[order[p]]) - std::int64_t(mn)) + 1];
        for (std::size_t k = 1; k < start.size(); ++k) start[k] += start[k - 1];
        for (std::size_t p = 0; p < n; ++p)
            group[std::size_t(start[std::size_t(std::int64_t(classes[order[p]]) - std::int64_t(mn))]++)] =
                std::int32_t(p);
    } else {
        std::iota(group.begin(), group.end(), 0);
        std::stable_sort(group.begin(), group.end(), [&](std::int32_t x, std::int32_t y) {
            return classes[order[x]] < classes[order[y]];
        });
    }

    const T extra = width_extra<T>(opt.convention);
    ws.coords.resize(4 * n);
    ws.area.resize(n);
    for (std::size_t q = 0; q < n; ++q) gather_box(fn, boxes, order[group[q]], q, extra, ws);
    ws.flag.assign(n, 0);
    ws.kept.resize(n);
    const T thr = gt_threshold<T>(iou_threshold);
    for (std::size_t s = 0; s < n;) {
        const C k = classes[order[group[s]]];
        std::size_t e = s + 1;
        while (e < n && classes[order[group[e]]] == k) ++e;
        // A class never contributes more than max_out boxes to the merged top max_out.
        const std::size_t cnt =
            nms_sorted(ws.coords.data() + 4 * s, ws.area.data() + s, std::int32_t(e - s), thr,
                       extra, opt.max_out, ws.kept.data(), opt, ws);
        for (std::size_t q = 0; q < cnt; ++q) ws.flag[std::size_t(group[s + std::size_t(ws.kept[q])])] = 1;
        s = e;
    }
    std::size_t count = 0;
    for (std::size_t p = 0; p < n && count < opt.max_out; ++p)
        if (ws.flag[p]) keep[count++] = order[p];
    return count;
}

/// Soft-NMS decay parameters, in T.
template <class T>
struct soft_params {
    soft_nms_method method;
    T sigma;     ///< gaussian
    T nt_gt;     ///< linear: IoU > Nt  <=>  IoU > nt_gt
    T score_lt;  ///< dropped: score < threshold  <=>  score < score_lt
    T extra;

    static soft_params from(const soft_nms_options& o) {
        return {o.method, T(o.sigma), gt_threshold<T>(o.iou_threshold),
                lt_threshold<T>(o.score_threshold), width_extra<T>(o.convention)};
    }
    /// The factor for IoU o (the weight the score is multiplied by).
    T weight(T o) const {
        if (method == soft_nms_method::linear) return o > nt_gt ? T(1) - o : T(1);
        const T e = -(o * o) / sigma;
        return static_cast<T>(std::exp(static_cast<double>(e)));
    }
};

/// Up to this many boxes, Soft-NMS scans all alive boxes per selection (no setup);
/// above it, it uses a level_grid and a tournament.
inline constexpr std::int32_t soft_nms_dense_max = 256;

/// Soft-NMS over n boxes (flat xyxy `c`, areas `a`) with current scores `s` (modified):
/// writes selected positions and their scores, returns their count. Rule: drop every box
/// with s < threshold; repeatedly select the alive box with the highest score (ties: lower
/// position) and multiply every other alive box's score by weight(IoU(selected, box)),
/// dropping it when it falls below the threshold. A box whose IoU is 0 keeps its score
/// (weight(0) == 1), so the large-input path only visits boxes sharing a grid cell with
/// the selected one (and, for the linear method, of a similar area).
template <class T>
std::size_t soft_nms_core(const T* c, const T* a, T* s, std::int32_t n, const soft_params<T>& p,
                          std::size_t max_out, std::int32_t* keep, T* kept_scores,
                          nms_workspace<T>& ws) {
    if (n <= 0 || max_out == 0) return 0;
    std::size_t count = 0;
    // Returns true when k stays alive.
    auto decay = [&](const box<T>& bj, T aj, std::int32_t k, const box<T>& bk, T ak) {
        const T o = nms_iou(bj, aj, bk, ak, p.extra);
        if (o == T(0)) return true;
        const T ns = p.weight(o) * s[k];
        s[k] = ns;
        return !(ns < p.score_lt);
    };
    if (n <= soft_nms_dense_max) {
        auto& alive = ws.alive; // ascending positions
        alive.clear();
        for (std::int32_t j = 0; j < n; ++j)
            if (!(s[j] < p.score_lt)) alive.push_back(j);
        while (!alive.empty() && count < max_out) {
            std::size_t best = 0;
            for (std::size_t q = 1; q < alive.size(); ++q)
                if (s[alive[q]] > s[alive[best]]) best = q;
            const std::int32_t j = alive[best];
            keep[count] = j;
            kept_scores[count] = s[j];
            ++count;
            const box<T> bj = load_box(c, j);
            const T aj = a[j];
            std::size_t out = 0;
            for (std::size_t q = 0; q < alive.size(); ++q) {
                const std::int32_t k = alive[q];
                if (k == j) continue;
                if (!(aj > T(0)) || decay(bj, aj, k, load_box(c, k), a[k])) alive[out++] = k;
            }
            alive.resize(out);
        }
        return count;
    }

    auto& state = ws.flag; // 1 alive, 0 dropped or selected
    state.assign(std::size_t(n), 0);
    for (std::int32_t j = 0; j < n; ++j) state[std::size_t(j)] = !(s[j] < p.score_lt);
    auto& g = ws.grid;
    auto in_grid = [&](std::int32_t j) { return state[std::size_t(j)] && a[j] > T(0); };
    // (Re)builds the grid over the alive boxes; returns how many it holds.
    auto build_grid = [&] {
        g.reset(c, a, n, p.extra, in_grid);
        std::int32_t held = 0;
        for (std::int32_t j = 0; j < n; ++j)
            if (in_grid(j)) {
                g.insert(j, load_box(c, j), a[j], p.extra);
                ++held;
            }
        return held;
    };
    std::int32_t held = build_grid(), gone = 0; // gone: held boxes no longer alive
    auto& best = ws.best;
    auto alive = [&](std::int32_t j) { return state[std::size_t(j)] != 0; };
    best.build(s, n, alive);
    auto& stamp = ws.stamp;
    stamp.assign(std::size_t(n), -1);
    const bool linear = p.method == soft_nms_method::linear;
    for (std::int32_t step = 0; count < max_out; ++step) {
        const std::int32_t j = best.top(alive);
        if (j < 0) break;
        state[std::size_t(j)] = 0;
        best.remove(j);
        keep[count] = j;
        kept_scores[count] = s[j];
        ++count;
        if (!(a[j] > T(0))) continue; // overlaps nothing
        ++gone;
        const box<T> bj = load_box(c, j);
        const T aj = a[j];
        auto visit = [&](const auto& e) {
            const std::int32_t k = e.j;
            if (!state[std::size_t(k)] || stamp[std::size_t(k)] == step) return false;
            stamp[std::size_t(k)] = step;
            const T before = s[k];
            if (!decay(bj, aj, k, e.b, e.area)) {
                state[std::size_t(k)] = 0;
                best.remove(k);
                ++gone;
            } else if (s[k] != before) {
                best.set(k, s[k]);
            }
            return false;
        };
        // Linear: only IoU > Nt decays, so levels of too different areas are skipped.
        const area_filter filter = linear ? area_filter::make(p.nt_gt, aj) : area_filter{};
        T lo, hi;
        filter.window(lo, hi);
        g.any(bj, p.extra, g.levels_for(lo, hi), filter, visit);
        if (gone > 32 && 2 * gone > held) { // mostly dead entries: rebuild
            held = build_grid();
            gone = 0;
        }
    }
    return count;
}

template <class T>
std::size_t soft_nms_impl(box_view<const T> boxes, std::span<const T> scores,
                          const soft_nms_options& opt, std::span<std::int64_t> keep,
                          std::span<T> kept_scores, nms_workspace<T>& ws) {
    constexpr const char* fn = "soft_nms";
    check_scores(fn, std::size_t(boxes.size()), scores);
    opt.validate();
    const std::size_t n = scores.size();
    check_keep_capacity(fn, n, opt.max_out, keep.size());
    check_keep_capacity(fn, n, opt.max_out, kept_scores.size());
    const auto p = soft_params<T>::from(opt);
    ws.coords.resize(4 * n);
    ws.area.resize(n);
    ws.cur.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        require(!std::isnan(scores[i]), fn, ": score ", i, " is NaN");
        gather_box(fn, boxes, std::int64_t(i), i, p.extra, ws);
        ws.cur[i] = scores[i];
    }
    ws.kept.resize(std::min(n, opt.max_out));
    const std::size_t count =
        soft_nms_core(ws.coords.data(), ws.area.data(), ws.cur.data(), std::int32_t(n), p,
                             opt.max_out, ws.kept.data(), kept_scores.data(), ws);
    for (std::size_t k = 0; k < count; ++k) keep[k] = ws.kept[k];
    return count;
}

template <class T, class C>
merged_detections<T> merge_multiscale_impl(box_view<const T> boxes, std::span<const T> scores,
                                           std::span<const C> classes, std::span<const int> scale,
                                           const multiscale_merge_options& opt) {
    constexpr const char* fn = "merge_multiscale";
    opt.validate();
    check_scores(fn, std::size_t(boxes.size()), scores);
    const std::size_t n = scores.size();
    require(classes.size() == n, fn, ": got ", classes.size(), " class ids for ", n,
            " detections");
    require(scale.size() == n, fn, ": got ", scale.size(), " scale indices for ", n,
            " detections");
    const int nscales = int(opt.ranges.size());
    for (std::size_t i = 0; i < n; ++i) {
        require(scale[i] >= 0 && scale[i] < nscales, fn, ": detection ", i, " has scale index ",
                scale[i], " but ", nscales, " valid ranges are given");
        require(!std::isnan(scores[i]), fn, ": score ", i, " is NaN");
    }

    // Detections in (class, scale, index) order: each class pools its scales in scale order.
    std::vector<std::int32_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](std::int32_t x, std::int32_t y) {
        if (classes[x] != classes[y]) return classes[x] < classes[y];
        if (scale[x] != scale[y]) return scale[x] < scale[y];
        return x < y;
    });

    // Valid-range filter.
    std::vector<std::uint8_t> ok(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
        const box<T> b = boxes[std::ptrdiff_t(i)];
        const valid_range& r = opt.ranges[std::size_t(scale[i])];
        if (opt.sniper_compatible) {
            const T area = (b.x2 - b.x1) * (b.y2 - b.y1);
            ok[i] = (!(r.lo > 0.0) || area > T(r.lo * r.lo)) &&
                    (!(r.hi > 0.0) || area <= T(r.hi * r.hi));
        } else {
            const double w = std::max(0.0, double(b.x2) - double(b.x1));
            const double h = std::max(0.0, double(b.y2) - double(b.y1));
            ok[i] = r.contains(std::sqrt(w * h));
        }
    }
    if (opt.sniper_compatible) { // a (scale, class) group with nothing in range keeps all
        for (std::size_t s = 0; s < n;) {
            std::size_t e = s + 1;
            while (e < n && classes[idx[e]] == classes[idx[s]] && scale[idx[e]] == scale[idx[s]]) ++e;
            bool any = false;
            for (std::size_t q = s; q < e; ++q) any = any || ok[std::size_t(idx[q])];
            if (!any)
                for (std::size_t q = s; q < e; ++q) ok[std::size_t(idx[q])] = 1;
            s = e;
        }
    }

    struct row {
        T score;
        std::int64_t label;
        std::int32_t rank;
        std::int32_t index;
    };
    std::vector<row> rows;
    nms_workspace<T> ws;
    std::vector<std::int32_t> member;
    std::vector<T> kept_scores;
    soft_nms_options so;
    so.method = soft_nms_method::gaussian;
    so.sigma = opt.sigma;
    so.score_threshold = opt.score_threshold;
    so.convention = opt.convention;
    const auto p = soft_params<T>::from(so);
    // snip's exact top-k: a class never contributes more than k boxes.
    const std::size_t per_class = opt.sniper_compatible ? nms_unlimited : opt.max_per_image;
    for (std::size_t s = 0; s < n;) {
        std::size_t e = s + 1;
        while (e < n && classes[idx[e]] == classes[idx[s]]) ++e;
        member.clear();
        for (std::size_t q = s; q < e; ++q)
            if (ok[std::size_t(idx[q])]) member.push_back(idx[q]);
        const std::size_t m = member.size();
        ws.coords.resize(4 * m);
        ws.area.resize(m);
        ws.cur.resize(m);
        for (std::size_t q = 0; q < m; ++q) {
            gather_box(fn, boxes, member[q], q, p.extra, ws);
            ws.cur[q] = scores[std::size_t(member[q])];
        }
        ws.kept.resize(m);
        kept_scores.resize(m);
        const std::size_t cnt =
            soft_nms_core(ws.coords.data(), ws.area.data(), ws.cur.data(), std::int32_t(m),
                                 p, per_class, ws.kept.data(), kept_scores.data(), ws);
        for (std::size_t q = 0; q < cnt; ++q)
            rows.push_back({kept_scores[q], std::int64_t(classes[idx[s]]), std::int32_t(q),
                            member[std::size_t(ws.kept[q])]});
        s = e;
    }
    std::sort(rows.begin(), rows.end(), [](const row& x, const row& y) {
        if (x.score != y.score) return x.score > y.score;
        if (x.label != y.label) return x.label < y.label;
        return x.rank < y.rank;
    });
    std::size_t out = rows.size();
    if (opt.max_per_image < out) {
        out = opt.max_per_image;
        if (opt.sniper_compatible && out > 0) {
            const T kth = rows[out - 1].score;
            while (out < rows.size() && rows[out].score >= kth) ++out;
        }
    }
    merged_detections<T> r;
    r.index.reserve(out);
    r.boxes.reserve(out);
    r.scores.reserve(out);
    r.labels.reserve(out);
    r.scales.reserve(out);
    for (std::size_t k = 0; k < out; ++k) {
        const row& x = rows[k];
        r.index.push_back(x.index);
        r.boxes.push_back(boxes[x.index]);
        r.scores.push_back(x.score);
        r.labels.push_back(x.label);
        r.scales.push_back(scale[std::size_t(x.index)]);
    }
    return r;
}

template <class T>
using score_span = std::type_identity_t<std::span<const std::remove_const_t<T>>>;

} // namespace detail

// =====================================================================================
// Public API

/// @brief Hard NMS (torchvision.ops.nms): indices of the kept boxes, by decreasing score
/// (equal scores: lower index first). A box is dropped when its IoU with a kept box of
/// higher rank is > `iou_threshold` (strictly; compared as a double; any number, NaN is an
/// error). @param boxes N xyxy boxes (any strides; float or double);
/// @param scores N scores of the same type as the boxes; @param keep receives the indices,
/// must hold
/// min(N, opt.max_out); @return the number kept. Example:
/// @code
///   std::vector<float> b = {0, 0, 10, 10,  1, 1, 11, 11,  50, 50, 60, 60};
///   std::vector<float> s = {0.9f, 0.8f, 0.7f};
///   auto keep = snip::nms(snip::as_box_view(b), s, 0.5);  // {0, 2}
/// @endcode
template <class T>
std::size_t nms(box_view<T> boxes, detail::score_span<T> scores, double iou_threshold,
                std::span<std::int64_t> keep, nms_workspace<std::remove_const_t<T>>& ws,
                const nms_options& opt = {}) {
    using V = std::remove_const_t<T>;
    static_assert(detail::nms_float_v<V>, "nms: boxes must be float or double");
    return detail::nms_impl<V>(box_view<const V>(boxes), scores, iou_threshold, keep, ws, opt);
}

/// @brief nms() returning a vector.
template <class T>
std::vector<std::int64_t> nms(box_view<T> boxes, detail::score_span<T> scores,
                              double iou_threshold, const nms_options& opt = {}) {
    using V = std::remove_const_t<T>;
    nms_workspace<V> ws;
    std::vector<std::int64_t> keep(std::min(scores.size(), opt.max_out));
    keep.resize(nms(boxes, scores, iou_threshold, std::span<std::int64_t>(keep), ws, opt));
    return keep;
}

/// @brief Per-class NMS (torchvision.ops.batched_nms): NMS runs independently on the boxes
/// of each class id; the kept indices of all classes come merged by decreasing score
/// (equal scores: lower index first). Implemented by grouping (one stable sort by score,
/// then a stable grouping by class), not by offsetting coordinates, so no precision is
/// lost for large coordinates or many classes. (torchvision 0.14 offsets coordinates for
/// up to 1000 boxes on the CPU, 5000 on the GPU - equal to this for coordinates that stay
/// exact after the offset - and above that loops over classes, leaving the order of equal
/// scores unspecified.)
/// `classes` may be any integers (negative too). Writes up to min(N, opt.max_out) indices.
template <class T>
std::size_t batched_nms(box_view<T> boxes, detail::score_span<T> scores,
                        std::span<const std::int64_t> classes, double iou_threshold,
                        std::span<std::int64_t> keep, nms_workspace<std::remove_const_t<T>>& ws,
                        const nms_options& opt = {}) {
    using V = std::remove_const_t<T>;
    static_assert(detail::nms_float_v<V>, "batched_nms: boxes must be float or double");
    return detail::batched_nms_impl<V>(box_view<const V>(boxes), scores, classes, iou_threshold,
                                       keep, ws, opt);
}
/// @brief batched_nms() with 32-bit class ids.
template <class T>
std::size_t batched_nms(box_view<T> boxes, detail::score_span<T> scores,
                        std::span<const std::int32_t> classes, double iou_threshold,
                        std::span<std::int64_t> keep, nms_workspace<std::remove_const_t<T>>& ws,
                        const nms_options& opt = {}) {
    using V = std::remove_const_t<T>;
    static_assert(detail::nms_float_v<V>, "batched_nms: boxes must be float or double");
    return detail::batched_nms_impl<V>(box_view<const V>(boxes), scores, classes, iou_threshold,
                                       keep, ws, opt);
}
/// @brief batched_nms() returning a vector.
template <class T>
std::vector<std::int64_t> batched_nms(box_view<T> boxes, detail::score_span<T> scores,
                                      std::span<const std::int64_t> classes, double iou_threshold,
                                      const nms_options& opt = {}) {
    nms_workspace<std::remove_const_t<T>> ws;
    std::vector<std::int64_t> keep(std::min(scores.size(), opt.max_out));
    keep.resize(batched_nms(boxes, scores, classes, iou_threshold, std::span<std::int64_t>(keep),
                            ws, opt));
    return keep;
}
/// @brief batched_nms() with 32-bit class ids, returning a vector.
template <class T>
std::vector<std::int64_t> batched_nms(box_view<T> boxes, detail::score_span<T> scores,
                                      std::span<const std::int32_t> classes, double iou_threshold,
                                      const nms_options& opt = {}) {
    nms_workspace<std::remove_const_t<T>> ws;
    std::vector<std::int64_t> keep(std::min(scores.size(), opt.max_out));
    keep.resize(batched_nms(boxes, scores, classes, iou_threshold, std::span<std::int64_t>(keep),
                            ws, opt));
    return keep;
}

/// @brief Soft-NMS (Bodla et al. 2017). Boxes with score < score_threshold are dropped
/// first. Then, repeatedly: the alive box with the highest current score is selected
/// (equal scores: lower index first) and every other alive box's score s becomes, with
/// o = IoU(selected, box) in T,
///   linear:   s = (o > iou_threshold ? 1 - o : 1) * s
///   gaussian: s = T(exp(double(-(o * o) / T(sigma)))) * s   (as the original code)
/// and the box is dropped when s < score_threshold. Writes the selected indices and their
/// scores at selection (non-increasing) in selection order to `keep` / `kept_scores`
/// (each must hold min(N, opt.max_out)); returns the count.
template <class T>
std::size_t soft_nms(box_view<T> boxes, detail::score_span<T> scores, const soft_nms_options& opt,
                     std::span<std::int64_t> keep, std::span<std::remove_const_t<T>> kept_scores,
                     nms_workspace<std::remove_const_t<T>>& ws) {
    using V = std::remove_const_t<T>;
    static_assert(detail::nms_float_v<V>, "soft_nms: boxes must be float or double");
    return detail::soft_nms_impl<V>(box_view<const V>(boxes), scores, opt, keep, kept_scores, ws);
}

/// @brief soft_nms() returning vectors.
template <class T>
soft_nms_result<std::remove_const_t<T>> soft_nms(box_view<T> boxes, detail::score_span<T> scores,
                                                 const soft_nms_options& opt = {}) {
    using V = std::remove_const_t<T>;
    nms_workspace<V> ws;
    soft_nms_result<V> r;
    const std::size_t cap = std::min(scores.size(), opt.max_out);
    r.keep.resize(cap);
    r.scores.resize(cap);
    const std::size_t cnt = soft_nms(boxes, scores, opt, std::span<std::int64_t>(r.keep),
                                     std::span<V>(r.scores), ws);
    r.keep.resize(cnt);
    r.scores.resize(cnt);
    return r;
}

/// @brief SNIPER's multi-scale merge for ONE image. Inputs: N detections from all test
/// scales, boxes xyxy in ORIGINAL image pixels, scores, class ids and the scale index
/// (0 = finest; selects opt.ranges[scale]). Rule (snip defaults): keep a detection when
/// sqrt(w * h) (w = x2 - x1, in double) is inside its scale's valid range [lo, hi); pool
/// the kept detections of all scales per class (pool order: scale, then index - this
/// breaks ties in Soft-NMS); run Gaussian Soft-NMS per class (sigma, score_threshold,
/// convention); keep the max_per_image best over all classes, sorted by decreasing score
/// (ties: lower class id, then selection order). `opt.sniper_compatible` switches to the
/// original code's range test, empty-group fallback and tie-inclusive cut (see
/// multiscale_merge_options).
template <class T>
merged_detections<std::remove_const_t<T>>
merge_multiscale(box_view<T> boxes, detail::score_span<T> scores,
                 std::span<const std::int64_t> classes, std::span<const int> scale,
                 const multiscale_merge_options& opt = {}) {
    using V = std::remove_const_t<T>;
    static_assert(detail::nms_float_v<V>, "merge_multiscale: boxes must be float or double");
    return detail::merge_multiscale_impl<V>(box_view<const V>(boxes), scores, classes, scale, opt);
}
/// @brief merge_multiscale() with 32-bit class ids.
template <class T>
merged_detections<std::remove_const_t<T>>
merge_multiscale(box_view<T> boxes, detail::score_span<T> scores,
                 std::span<const std::int32_t> classes, std::span<const int> scale,
                 const multiscale_merge_options& opt = {}) {
    using V = std::remove_const_t<T>;
    static_assert(detail::nms_float_v<V>, "merge_multiscale: boxes must be float or double");
    return detail::merge_multiscale_impl<V>(box_view<const V>(boxes), scores, classes, scale, opt);
}

/// @brief The host half of the bitmask NMS (cuda/nms.cuh): walks `n` boxes in rank order,
/// keeps a box unless a kept box's suppression word has its bit, and ORs in the row of
/// every kept box. `masks` holds nms_mask_words(n) words, row i at [i * ceil(n / 64)],
/// only words of column blocks >= i / 64 are read. Writes kept rank positions (ascending)
/// to `keep` (must hold min(n, max_out)); returns the count.
inline std::size_t reduce_nms_masks(std::span<const std::uint64_t> masks, std::int64_t n,
                                    std::span<std::int64_t> keep,
                                    std::size_t max_out = nms_unlimited) {
    require(n >= 0, "reduce_nms_masks: n must be >= 0, got ", n);
    require(masks.size() >= nms_mask_words(n), "reduce_nms_masks: ", n, " boxes need ",
            nms_mask_words(n), " mask words, got ", masks.size());
    detail::check_keep_capacity("reduce_nms_masks", std::size_t(n), max_out, keep.size());
    const std::int64_t blocks = (n + nms_tile - 1) / nms_tile;
    std::vector<std::uint64_t> removed(std::size_t(blocks), 0);
    std::size_t count = 0;
    for (std::int64_t i = 0; i < n && count < max_out; ++i) {
        if ((removed[std::size_t(i / nms_tile)] >> (i % nms_tile)) & 1u) continue;
        keep[count++] = i;
        const std::uint64_t* row = masks.data() + i * blocks;
        for (std::int64_t cb = i / nms_tile; cb < blocks; ++cb) removed[std::size_t(cb)] |= row[cb];
    }
    return count;
}

/// @brief The exact T threshold for an IoU threshold given as a double: for every T value
/// x, (x > nms_threshold<T>(t)) == (double(x) > t). Pass it to iou_above() and the CUDA
/// kernel so that they decide like the double comparison.
template <class T>
T nms_threshold(double t) {
    detail::check_threshold("nms_threshold", t);
    return detail::gt_threshold<T>(t);
}

} // namespace snip
