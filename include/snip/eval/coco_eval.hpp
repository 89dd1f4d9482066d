// eval/coco_eval.hpp: COCO bbox and segm evaluation with the rules of pycocotools'
// COCOeval (iouType 'bbox' or 'segm', coco_eval_options::type): the 12 summary numbers
// (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl) and per-category AP,
// plus a strict reader (and a writer) of detections in COCO results format. Namespace
// snip::io, like the COCO reader it builds on (needs nlohmann-json; target snip::io).
//
// The rules, as COCOeval applies them (this is an independent implementation):
// - categories: the dataset's "categories" (ascending id); when it lists none, every
//   category id that occurs in the ground truth or the detections. Images: every image
//   of the dataset, in ascending id order (that order breaks score ties across images).
// - per (image, category): detections sorted by score, descending, stable (file order
//   breaks ties), at most 100 kept. IoU is computed on [x, y, w, h] boxes as COCO's
//   bbIou does; against a crowd ground truth box it is intersection / detection area.
// - ground truth is ignored when crowd or when its area lies outside the area range
//   (closed: [lo, hi], so a 32 x 32 box is both small and medium). Areas:
//   all [0, 1e10], small [0, 32^2], medium [32^2, 96^2], large [96^2, 1e10]. A ground
//   truth box's area is the annotation's "area" (image_record::areas, read by read_coco;
//   in COCO's own files the segmentation mask's area, smaller than w * h), as pycocotools
//   uses it, so APs/APm/APl and ARs/ARm/ARl are comparable with published numbers; when
//   the file (or the record) has none, it is the box's w * h (where pycocotools would
//   stop with a KeyError). A crowd box is ignored in every range whatever its area, as in
//   pycocotools. A detection's area is w * h of its box (what pycocotools' loadRes sets
//   for bbox results), or detection::area when it is >= 0 (a result without a bbox: its
//   mask's area, as loadRes sets it). The area only picks the range: IoU uses the boxes.
// - matching, for each IoU threshold t in 0.50:0.05:0.95 (numpy.linspace values), in
//   score order: a detection takes the unmatched ground truth box with the highest IoU
//   >= min(t, 1 - 1e-10) (on equal IoU the later box in the order below wins); boxes are
//   ordered non-ignored first (stable), a match to a non-ignored box is never traded for
//   an ignored one; crowd boxes may be matched by any number of detections. A
//   detection matched to an ignored box is ignored (neither TP nor FP); an unmatched
//   detection whose area (w * h) lies outside the area range is ignored too.
// - accumulation, per category, area range and maxDets in {1, 10, 100}: the first maxDets
//   detections of every image are merged and sorted by score (stable; ties keep image
//   order), TP/FP are summed cumulatively, precision = tp / (tp + fp + 2^-52), recall =
//   tp / (number of non-ignored ground truth boxes). Precision is made monotone from the
//   right; at each of the 101 recall thresholds 0:0.01:1 it is read at the first index
//   whose recall >= the threshold (numpy.searchsorted, side='left'), 0 past the last.
//   Recall (for AR) is the final recall. A category/area with no non-ignored ground
//   truth box gets -1 and is left out of every mean; a summary number with no category
//   at all is -1.
// - iou type segm: the same rules with masks instead of boxes. A ground truth mask is its
//   segmentation (polygons rasterized, or the RLE) at the image's size, crowd regions
//   included; a detection's mask is detection::segmentation. IoU is mask IoU
//   (mask::iou_matrix); against a crowd region it is intersection / detection mask area.
//   The area ranges are picked as for bbox: a ground truth's "area" (when there is none,
//   the mask's area rather than w * h), a detection's detection::area (from
//   parse_detections: w * h of its "bbox", or the mask's area when the result has no
//   bbox, as pycocotools' loadRes sets "area"). Every ground truth box needs a
//   segmentation and every detection a mask, else evaluate_coco throws.
//
// Known differences from pycocotools: boxes read with read_coco are clipped to the image
// when they cross its border by <= 1 px (their "area" is kept as is); detections are not.
// The means are summed in a different order than numpy's, which can change the last bits.
#pragma once

#include <snip/io/coco.hpp>
#include <snip/mask/rle.hpp>
#include <snip/mask/segmentation.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace snip::io {

/// @brief One detection in COCO results format.
struct detection {
    std::int64_t image_id = 0;
    int category_id = 0;
    double x = 0, y = 0, w = 0, h = 0; ///< COCO bbox [x, y, w, h], original px, never clipped
    double score = 0;
    /// The instance mask at the image's size (iou_type::segm); height 0 = none.
    mask::rle segmentation;
    /// The area for the area ranges; < 0 (the default): w * h of the bbox. parse_detections
    /// sets the mask's area for a result without "bbox", as pycocotools' loadRes does.
    double area = -1;

    detection() = default;
    detection(std::int64_t image_id_, int category_id_, double x_, double y_, double w_, double h_,
              double score_, mask::rle segmentation_ = {}, double area_ = -1)
        : image_id(image_id_), category_id(category_id_), x(x_), y(y_), w(w_), h(h_), score(score_),
          segmentation(std::move(segmentation_)), area(area_) {}
};

/// @brief What is compared to decide a match: boxes (pycocotools' iouType 'bbox') or
/// instance masks ('segm').
enum class iou_type { bbox, segm };

/// @brief "bbox" or "segm".
inline std::string_view to_string(iou_type t) {
    return t == iou_type::segm ? "segm" : "bbox";
}

/// @brief Parses "bbox" or "segm"; anything else is a snip::error naming `what` (e.g. the
/// command-line flag) and the value.
inline iou_type parse_iou_type(std::string_view s, std::string_view what = "iou type") {
    if (s == "bbox") return iou_type::bbox;
    if (s == "segm") return iou_type::segm;
    fail(what, " is '", s, "', must be bbox or segm");
}

/// @brief The evaluation grid, as pycocotools' Params for iouType 'bbox' and 'segm'.
struct coco_eval_grid {
    static constexpr std::size_t T = 10;  ///< IoU thresholds 0.50:0.05:0.95
    static constexpr std::size_t R = 101; ///< recall thresholds 0:0.01:1
    static constexpr std::size_t A = 4;   ///< area ranges all, small, medium, large
    static constexpr std::size_t M = 3;   ///< maxDets 1, 10, 100
    static constexpr std::array<int, M> max_dets{1, 10, 100};
    static constexpr std::array<std::array<double, 2>, A> area_ranges{
        {{0.0, 1e10}, {0.0, 32.0 * 32.0}, {32.0 * 32.0, 96.0 * 96.0}, {96.0 * 96.0, 1e10}}};
    static constexpr std::array<std::string_view, A> area_names{"all", "small", "medium", "large"};

    /// numpy.linspace(start, stop, n): i * ((stop - start) / (n - 1)) + start, rounded after
    /// the product and after the sum (no fused multiply-add), the last point set to stop.
    static double linspace(double start, double stop, std::size_t n, std::size_t i) {
        if (i + 1 == n) return stop;
        const double step = (stop - start) / static_cast<double>(n - 1);
        volatile double p = static_cast<double>(i) * step; // keeps the two roundings apart
        return p + start;
    }
    static std::array<double, T> iou_thresholds() {
        std::array<double, T> t{};
        for (std::size_t i = 0; i < T; ++i) t[i] = linspace(0.5, 0.95, T, i);
        return t;
    }
    static std::array<double, R> recall_thresholds() {
        std::array<double, R> r{};
        for (std::size_t i = 0; i < R; ++i) r[i] = linspace(0.0, 1.0, R, i);
        return r;
    }
};

/// @brief The result of one category.
struct coco_category_eval {
    int id = 0;
    std::string name;
    std::size_t gt = 0;         ///< non-crowd ground truth boxes
    std::size_t crowd = 0;      ///< crowd ground truth boxes
    std::size_t detections = 0; ///< detections of this category (before the 100 per image cut)
    /// AP @[0.50:0.95], AP @0.50, AP @0.75 and AR @[0.50:0.95] (area all, maxDets 100);
    /// -1 when the category has no non-crowd ground truth box.
    double ap = -1, ap50 = -1, ap75 = -1, ar100 = -1;
};

/// @brief What evaluate_coco returns.
struct coco_eval_result {
    /// AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl (see stat_names);
    /// -1 when no category has ground truth for that setting.
    std::array<double, 12> stats{};
    static constexpr std::array<std::string_view, 12> stat_names{
        "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};
    std::vector<coco_category_eval> categories; ///< ascending id
    std::size_t images = 0, gt_boxes = 0, crowd_boxes = 0, detections = 0;
    iou_type type = iou_type::bbox; ///< what was compared (coco_eval_options::type)

    /// Only with coco_eval_options::keep_curves: pycocotools' eval['precision'] [T][R][K][A][M]
    /// and eval['recall'] [T][K][A][M] (K = categories.size()), -1 where undefined.
    std::vector<double> precision, recall;
    double precision_at(std::size_t t, std::size_t r, std::size_t k, std::size_t a, std::size_t m) const {
        using G = coco_eval_grid;
        return precision.at((((t * G::R + r) * categories.size() + k) * G::A + a) * G::M + m);
    }
    double recall_at(std::size_t t, std::size_t k, std::size_t a, std::size_t m) const {
        using G = coco_eval_grid;
        return recall.at(((t * categories.size() + k) * G::A + a) * G::M + m);
    }
};

struct coco_eval_options {
    bool keep_curves = false; ///< fill coco_eval_result::precision and ::recall
    iou_type type = iou_type::bbox; ///< what a match compares: boxes or masks
};

namespace detail {

/// "<name of the dataset>" for messages.
inline std::string gt_name(const dataset& gt) {
    return gt.source.empty() ? std::string("the ground truth") : gt.source;
}

/// Reads the detection at `p` of a results array.
inline detection read_detection(const json& o, const std::string& src, const at& p,
                                const std::unordered_map<std::int64_t, std::size_t>& image_ids,
                                const std::unordered_set<int>* category_ids, const dataset& gt) {
    detection d;
    d.image_id = integer(need(o, "image_id", src, p, "an integer"), src, p.with("image_id"));
    const auto found = image_ids.find(d.image_id);
    if (found == image_ids.end())
        fail(src, ": ", p.with("image_id").str(), " is ", d.image_id, ", but no image of ", gt_name(gt),
             " has this id");
    const image_record& im = gt.images[found->second];
    d.category_id = static_cast<int>(integer(need(o, "category_id", src, p, "an integer"), src,
                                             p.with("category_id"), "an integer (int range)",
                                             std::numeric_limits<int>::min(),
                                             std::numeric_limits<int>::max()));
    if (category_ids && !category_ids->count(d.category_id))
        fail(src, ": ", p.with("category_id").str(), " is ", d.category_id,
             ", which is not an id in the \"categories\" of ", gt_name(gt));
    // the mask: an RLE (or polygons, rasterized) at the image's size; [] = none
    if (const json* sv = member(o, "segmentation")) {
        const image_frame frame{im.id, im.width, im.height};
        // polygon vertices may lie outside the image, by up to its larger side (beyond, the
        // rasterization would walk the whole distance)
        const double reach = static_cast<double>(std::max(im.width, im.height));
        mask::segmentation seg = read_segmentation(*sv, src, p, frame, reach);
        if (seg.is_polygons())
            d.segmentation = mask::from_polygons(seg.polygons, im.height, im.width);
        else if (seg.is_rle())
            d.segmentation = std::move(seg.mask);
    }
    const json* bp = member(o, "bbox");
    if (!bp && d.segmentation.height > 0) {
        // no bbox: the mask's bounding box and area, as pycocotools' loadRes derives them
        const box<double> mb = mask::bbox(d.segmentation);
        d.x = mb.x1, d.y = mb.y1, d.w = mb.x2 - mb.x1, d.h = mb.y2 - mb.y1;
        d.area = static_cast<double>(mask::area(d.segmentation));
        d.score = finite_number(need(o, "score", src, p, "a finite number"), src, p.with("score"));
        return d;
    }
    const json& b = need(o, "bbox", src, p, "[x, y, w, h]");
    if (!b.is_array() || b.size() != 4)
        bad_value(src, p.with("bbox"), b, "an array [x, y, w, h] of 4 numbers");
    static constexpr std::array<std::string_view, 4> names{"x", "y", "w", "h"};
    std::array<double, 4> v{};
    for (std::size_t k = 0; k < 4; ++k) {
        const at ep = p.with("bbox", static_cast<int>(k), names[k]);
        v[k] = finite_number(b[k], src, ep);
        if (k >= 2 && v[k] < 0) bad_value(src, ep, b[k], ">= 0");
    }
    d.x = v[0], d.y = v[1], d.w = v[2], d.h = v[3];
    d.score = finite_number(need(o, "score", src, p, "a finite number"), src, p.with("score"));
    return d;
}

/// One ground truth box of the evaluation.
struct eval_gt {
    double x1, y1, x2, y2, w, h, area; ///< area = w * h (for IoU)
    double range_area;                 ///< the annotation's area (for the area ranges)
    bool crowd;
};

/// One detection of the evaluation.
struct eval_dt {
    double x1, y1, x2, y2, area, score;
};

/// COCO's bbIou (maskApi.c) for one pair: [x, y, w, h] boxes; against a crowd box the
/// union is the detection's area.
inline double coco_box_iou(const eval_dt& d, const eval_gt& g) {
    const double w = std::fmin(d.x2, g.x2) - std::fmax(d.x1, g.x1);
    if (w <= 0) return 0.0;
    const double h = std::fmin(d.y2, g.y2) - std::fmax(d.y1, g.y1);
    if (h <= 0) return 0.0;
    const double i = w * h;
    const double u = g.crowd ? d.area : d.area + g.area - i;
    return i / u;
}

/// The mask of box `b` of gt.images[ii] for iou type segm: its segmentation rasterized (or
/// taken as is, an RLE) at the image's size; `src` names the dataset in messages.
inline mask::rle gt_mask(const dataset& gt, std::size_t ii, std::size_t b, const std::string& src) {
    const image_record& im = gt.images[ii];
    const std::string ann = b < im.ann_ids.size()
                                ? snip::concat(" (annotation id ", im.ann_ids[b], ")")
                                : std::string();
    if (im.segments.empty())
        fail(src, ": image id ", im.id, " box ", b, ann,
             " has no segmentation (the image has none); iou type segm needs a mask for every "
             "ground truth box");
    if (im.segments.size() != im.boxes.size())
        fail(src, ": image id ", im.id, " has ", im.boxes.size(), " boxes but ", im.segments.size(),
             " segments; they must be parallel");
    const mask::segmentation& seg = im.segments[b];
    if (seg.empty())
        fail(src, ": image id ", im.id, " box ", b, ann,
             " has no segmentation; iou type segm needs a mask for every ground truth box");
    if (seg.is_rle() && (seg.mask.height != im.height || seg.mask.width != im.width))
        fail(src, ": image id ", im.id, " box ", b, ann, " has an RLE of ", seg.mask.height, " x ",
             seg.mask.width, " (height x width), must be ", im.height, " x ", im.width,
             ", the size of the image");
    return mask::from_segmentation(seg, im.height, im.width);
}

/// Flags of one detection at one IoU threshold.
enum : std::uint8_t { dt_matched = 1, dt_ignored = 2 };

} // namespace detail

/// @brief Detections from COCO results JSON: an array of {"image_id", "category_id",
/// "bbox": [x, y, w, h], "score", "segmentation"} (other members are ignored), in file
/// order. Every member named is required but "segmentation", and "bbox" when there is a
/// mask; image_id must be an image of `gt`; category_id must be one of gt's "categories"
/// when it has any; bbox holds 4 finite numbers with w, h >= 0 (it may cross the image
/// border); score is finite. "segmentation" (optional) is an RLE {"size": [h, w],
/// "counts": "..." or [runs]} whose size must be the image's [height, width], or polygons
/// (rasterized at the image's size; a vertex may lie outside the image by up to the
/// image's larger side), or [] (no mask); it becomes detection::segmentation. A result
/// with a mask and no "bbox" gets the mask's bounding box and, for the area ranges, the
/// mask's area (detection::area), as pycocotools' loadRes derives them; with a "bbox" the
/// area is its w * h. An empty array is valid (no detections).
/// @throws snip::error naming source, field path (e.g. `[12].bbox[2] (w)`) and value.
inline std::vector<detection> parse_detections(const nlohmann::json& j, const std::string& source,
                                               const dataset& gt) {
    using namespace detail;
    const std::string& src = source;
    if (!j.is_array())
        fail(src, ": top level is ", j.type_name(),
             ", must be an array of {\"image_id\", \"category_id\", \"bbox\", \"score\"} (COCO results "
             "format)");
    std::unordered_map<std::int64_t, std::size_t> image_ids;
    image_ids.reserve(gt.images.size());
    for (std::size_t i = 0; i < gt.images.size(); ++i)
        image_ids.emplace(gt.images[i].id, i);
    std::unordered_set<int> cats;
    for (const auto& c : gt.categories) cats.insert(c.id);
    std::vector<detection> out;
    out.reserve(j.size());
    for (std::size_t i = 0; i < j.size(); ++i) {
        const at p{std::string_view{}, i};
        out.push_back(read_detection(object_at(j, src, p), src, p, image_ids, cats.empty() ? nullptr : &cats, gt));
    }
    return out;
}

/// @brief Reads a results file; see parse_detections. A file that Python's json.dump wrote
/// with NaN or Infinity (not JSON) is reported as such.
inline std::vector<detection> read_detections(const std::string& path, const dataset& gt) {
    return parse_detections(parse_json_text(read_text_file(path), path), path, gt);
}

/// @brief Evaluates `dets` against the boxes (options.type bbox, the default) or masks
/// (segm) of `gt` with pycocotools' COCOeval rules for that iouType (see the top of this
/// file): a ground truth box's area for the area ranges is image_record::area(k), the
/// annotation's "area" when it has one, else w * h (segm: the mask's area).
/// Runs in O(sum over (image, category) of dets x gts x 10 x 4) plus a sort per category;
/// 5,000 images x 100 detections take well under a second.
/// @throws snip::error naming the detection (index, field, value) when an image id is
/// not in `gt`, a category id is not in gt's categories (when it lists any), a box is
/// non-finite or has w < 0 or h < 0, or a score is non-finite; and for a malformed `gt`
/// (duplicate image ids, per-box arrays of different lengths (`areas` may be empty), a box
/// category not in its categories, a non-finite or inverted box, a non-finite area). With
/// iou type segm also for a ground truth box without a segmentation (naming the image id,
/// the box and its annotation id), a detection without a mask or with a mask of another
/// size than its image's (naming the detection's index), or a malformed RLE.
inline coco_eval_result evaluate_coco(const dataset& gt, const std::vector<detection>& dets,
                                      const coco_eval_options& options = {}) {
    using namespace detail;
    using G = coco_eval_grid;
    constexpr std::size_t T = G::T, R = G::R, A = G::A, M = G::M;
    const std::string src = gt_name(gt);
    const auto iou_thr = G::iou_thresholds();
    const auto rec_thr = G::recall_thresholds();

    // --- images in ascending id order ------------------------------------------------
    const std::size_t I = gt.images.size();
    std::vector<std::uint32_t> rank_of(I); // image index -> position in id order
    std::unordered_map<std::int64_t, std::uint32_t> image_rank;
    std::vector<std::uint32_t> order(I); // position in id order -> image index
    {
        std::iota(order.begin(), order.end(), 0u);
        std::sort(order.begin(), order.end(),
                  [&](std::uint32_t a, std::uint32_t b) { return gt.images[a].id < gt.images[b].id; });
        image_rank.reserve(I);
        for (std::size_t r = 0; r < I; ++r) {
            const auto i = order[r];
            if (r > 0 && gt.images[order[r - 1]].id == gt.images[i].id)
                fail(src, ": image id ", gt.images[i].id, " occurs twice (images[", std::min(order[r - 1], i),
                     "] and images[", std::max(order[r - 1], i), "])");
            rank_of[i] = static_cast<std::uint32_t>(r);
            image_rank.emplace(gt.images[i].id, static_cast<std::uint32_t>(r));
        }
    }

    // --- categories ----------------------------------------------------------------------
    std::vector<int> cat_ids;
    const bool listed = !gt.categories.empty();
    if (listed) {
        for (const auto& c : gt.categories) cat_ids.push_back(c.id);
    } else {
        for (const auto& im : gt.images) cat_ids.insert(cat_ids.end(), im.categories.begin(), im.categories.end());
        for (const auto& d : dets) cat_ids.push_back(d.category_id);
    }
    std::sort(cat_ids.begin(), cat_ids.end());
    cat_ids.erase(std::unique(cat_ids.begin(), cat_ids.end()), cat_ids.end());
    const std::size_t K = cat_ids.size();
    std::unordered_map<int, std::uint32_t> cat_index;
    cat_index.reserve(K);
    for (std::size_t k = 0; k < K; ++k) cat_index.emplace(cat_ids[k], static_cast<std::uint32_t>(k));

    const bool segm = options.type == iou_type::segm;
    coco_eval_result res;
    res.type = options.type;
    res.images = I;
    res.detections = dets.size();
    res.categories.resize(K);
    for (std::size_t k = 0; k < K; ++k) res.categories[k].id = cat_ids[k];
    for (const auto& c : gt.categories) res.categories[cat_index.at(c.id)].name = c.name;

    // --- ground truth and detections, keyed (category, image rank, file order) -----------
    struct keyed {
        std::uint32_t k, r, i;
    };
    auto by_key = [](const keyed& a, const keyed& b) {
        return a.k != b.k ? a.k < b.k : (a.r != b.r ? a.r < b.r : a.i < b.i);
    };
    std::vector<eval_gt> gts;
    std::vector<keyed> gt_keys;
    std::vector<mask::rle> gt_masks; // segm: the mask of gts[i]
    gts.reserve(gt.num_boxes());
    gt_keys.reserve(gt.num_boxes());
    if (segm) gt_masks.reserve(gt.num_boxes());
    for (std::size_t ii = 0; ii < I; ++ii) {
        const image_record& im = gt.images[ii];
        const std::size_t n = im.boxes.size();
        require(im.categories.size() == n && im.crowd.size() == n && (im.areas.empty() || im.areas.size() == n),
                src, ": images[", ii, "] (id ", im.id, ") has ", n, " boxes but ", im.categories.size(),
                " categories, ", im.crowd.size(), " crowd flags and ", im.areas.size(),
                " areas; they must be parallel (areas may be empty)");
        for (std::size_t b = 0; b < n; ++b) {
            const box<double>& bx = im.boxes[b];
            const double w = bx.x2 - bx.x1, h = bx.y2 - bx.y1;
            require(std::isfinite(bx.x1) && std::isfinite(bx.y1) && std::isfinite(w) && std::isfinite(h) &&
                        w >= 0 && h >= 0,
                    src, ": images[", ii, "] (id ", im.id, ") box ", b, " [", bx.x1, ", ", bx.y1, ", ", bx.x2,
                    ", ", bx.y2, "] is not a finite xyxy box with x2 >= x1, y2 >= y1");
            if (!im.areas.empty() && !std::isfinite(im.areas[b]))
                fail(src, ": images[", ii, "] (id ", im.id, ") box ", b, " has area ", im.areas[b],
                     ", must be a finite number (< 0: none, w * h)");
            const auto c = cat_index.find(im.categories[b]);
            if (c == cat_index.end())
                fail(src, ": images[", ii, "] (id ", im.id, ") box ", b, " has category ", im.categories[b],
                     ", which is not an id in its \"categories\"");
            const bool crowd = im.crowd[b] != 0;
            double range_area = im.area(b);
            if (segm) {
                gt_masks.push_back(gt_mask(gt, ii, b, src));
                if (im.areas.empty() || im.areas[b] < 0)
                    range_area = static_cast<double>(mask::area(gt_masks.back()));
            }
            gt_keys.push_back({c->second, rank_of[ii], static_cast<std::uint32_t>(gts.size())});
            gts.push_back({bx.x1, bx.y1, bx.x2, bx.y2, w, h, w * h, range_area, crowd});
            auto& cr = res.categories[c->second];
            ++(crowd ? cr.crowd : cr.gt);
            ++(crowd ? res.crowd_boxes : res.gt_boxes);
        }
    }
    std::vector<keyed> dt_keys;
    dt_keys.reserve(dets.size());
    for (std::size_t i = 0; i < dets.size(); ++i) {
        const detection& d = dets[i];
        const auto r = image_rank.find(d.image_id);
        if (r == image_rank.end())
            fail("detections[", i, "].image_id is ", d.image_id, ", but no image of ", src, " has this id");
        const auto c = cat_index.find(d.category_id);
        if (c == cat_index.end())
            fail("detections[", i, "].category_id is ", d.category_id, ", which is not an id in the \"categories\" of ",
                 src);
        const double v[4] = {d.x, d.y, d.w, d.h};
        static constexpr const char* names[4] = {"x", "y", "w", "h"};
        for (int k = 0; k < 4; ++k) {
            if (!std::isfinite(v[k]))
                fail("detections[", i, "].bbox[", k, "] (", names[k], ") is ", v[k], ", must be a finite number");
            if (k >= 2 && v[k] < 0) fail("detections[", i, "].bbox[", k, "] (", names[k], ") is ", v[k], ", must be >= 0");
        }
        if (!std::isfinite(d.score))
            fail("detections[", i, "].score is ", d.score, ", must be a finite number");
        if (std::isnan(d.area) || std::isinf(d.area))
            fail("detections[", i, "].area is ", d.area, ", must be a finite number (< 0: w * h)");
        if (segm) {
            const image_record& im = gt.images[order[r->second]];
            if (d.segmentation.height == 0)
                fail("detections[", i, "] (image id ", d.image_id, ", category ", d.category_id,
                     ") has no segmentation mask; iou type segm needs one for every detection");
            if (d.segmentation.height != im.height || d.segmentation.width != im.width)
                fail("detections[", i, "].segmentation is ", d.segmentation.height, " x ",
                     d.segmentation.width, " (height x width), must be ", im.height, " x ",
                     im.width, ", the size of image ", im.id);
            mask::check(d.segmentation, snip::concat("detections[", i, "].segmentation"));
        }
        dt_keys.push_back({c->second, r->second, static_cast<std::uint32_t>(i)});
        ++res.categories[c->second].detections;
    }
    std::sort(gt_keys.begin(), gt_keys.end(), by_key);
    std::sort(dt_keys.begin(), dt_keys.end(), by_key);
    // segm: the masks and crowd flags in gt_keys order, so one (category, image) is a span
    std::vector<mask::rle> gt_masks_sorted;
    std::vector<std::uint8_t> gt_crowd_sorted;
    if (segm) {
        gt_masks_sorted.resize(gt_keys.size());
        gt_crowd_sorted.resize(gt_keys.size());
        for (std::size_t q = 0; q < gt_keys.size(); ++q) {
            gt_masks_sorted[q] = std::move(gt_masks[gt_keys[q].i]);
            gt_crowd_sorted[q] = gts[gt_keys[q].i].crowd ? 1 : 0;
        }
        gt_masks = {};
    }

    // --- per category: per-image matching, then accumulation -------------------------------
    if (options.keep_curves) {
        res.precision.assign(T * R * K * A * M, -1.0);
        res.recall.assign(T * K * A * M, -1.0);
    }
    // sums[k][a][m][t] = sum over r of precision; rec[k][a][m][t] = recall; -1 = undefined
    std::vector<double> prec_sum(K * A * M * T, -1.0), rec(K * A * M * T, -1.0);
    auto kamt = [&](std::size_t k, std::size_t a, std::size_t m, std::size_t t) {
        return ((k * A + a) * M + m) * T + t;
    };

    // One image of the current category: its detections (sorted, <= 100) and flags.
    struct image_eval {
        std::size_t dt_begin, D; // into `cdt`
        std::size_t flag_off;    // into flags[a]: T x D
    };
    std::vector<eval_dt> cdt;                   // detections of the category, per image, sorted
    std::vector<image_eval> evals;              // images with gt or detections, in id order
    std::array<std::vector<std::uint8_t>, A> flags;
    std::array<std::size_t, A> npig{};
    std::vector<double> ious;
    std::vector<std::uint32_t> dsort, perm;
    std::vector<std::uint8_t> gtig, gmatched;
    struct merged_dt {
        double score;
        std::uint32_t e, d;
    };
    std::vector<merged_dt> merged;
    std::vector<double> tpc, prc;
    std::vector<mask::rle> dt_masks; // segm: the masks of one image's sorted detections
    const std::size_t max_det = static_cast<std::size_t>(G::max_dets[M - 1]);

    std::size_t gpos = 0, dpos = 0;
    for (std::uint32_t k = 0; k < K; ++k) {
        cdt.clear();
        evals.clear();
        for (auto& f : flags) f.clear();
        npig.fill(0);
        while (true) {
            // next image (lowest rank) with a gt or detection of category k
            const bool hg = gpos < gt_keys.size() && gt_keys[gpos].k == k;
            const bool hd = dpos < dt_keys.size() && dt_keys[dpos].k == k;
            if (!hg && !hd) break;
            const std::uint32_t r = !hg ? dt_keys[dpos].r : !hd ? gt_keys[gpos].r : std::min(gt_keys[gpos].r, dt_keys[dpos].r);
            const std::size_t g0 = gpos, d0 = dpos;
            while (gpos < gt_keys.size() && gt_keys[gpos].k == k && gt_keys[gpos].r == r) ++gpos;
            while (dpos < dt_keys.size() && dt_keys[dpos].k == k && dt_keys[dpos].r == r) ++dpos;
            const std::size_t Gn = gpos - g0;

            // detections: stable sort by score, descending; keep the first 100
            dsort.resize(dpos - d0);
            std::iota(dsort.begin(), dsort.end(), 0u);
            std::stable_sort(dsort.begin(), dsort.end(), [&](std::uint32_t a, std::uint32_t b) {
                return dets[dt_keys[d0 + a].i].score > dets[dt_keys[d0 + b].i].score;
            });
            const std::size_t D = std::min(dsort.size(), max_det);
            image_eval ev{cdt.size(), D, flags[0].size()};
            for (std::size_t j = 0; j < D; ++j) {
                const detection& d = dets[dt_keys[d0 + dsort[j]].i];
                cdt.push_back(
                    {d.x, d.y, d.w + d.x, d.h + d.y, d.area >= 0 ? d.area : d.w * d.h, d.score});
            }
            const eval_dt* dt = cdt.data() + ev.dt_begin;
            auto gt_at = [&](std::size_t g) -> const eval_gt& { return gts[gt_keys[g0 + g].i]; };

            if (!segm) {
                ious.resize(D * Gn);
                for (std::size_t d = 0; d < D; ++d)
                    for (std::size_t g = 0; g < Gn; ++g)
                        ious[d * Gn + g] = coco_box_iou(dt[d], gt_at(g));
            } else if (D == 0 || Gn == 0) {
                ious.clear();
            } else {
                dt_masks.resize(D);
                for (std::size_t j = 0; j < D; ++j)
                    dt_masks[j] = dets[dt_keys[d0 + dsort[j]].i].segmentation;
                ious = mask::iou_matrix(
                    std::span<const mask::rle>(dt_masks.data(), D),
                    std::span<const mask::rle>(gt_masks_sorted.data() + g0, Gn),
                    std::span<const std::uint8_t>(gt_crowd_sorted.data() + g0, Gn));
            }

            for (std::size_t a = 0; a < A; ++a) {
                const double lo = G::area_ranges[a][0], hi = G::area_ranges[a][1];
                gtig.resize(Gn);
                perm.clear();
                for (std::size_t g = 0; g < Gn; ++g) {
                    const eval_gt& b = gt_at(g);
                    gtig[g] = (b.crowd || b.range_area < lo || b.range_area > hi) ? 1 : 0;
                    if (!gtig[g]) perm.push_back(static_cast<std::uint32_t>(g)), ++npig[a];
                }
                for (std::size_t g = 0; g < Gn; ++g)
                    if (gtig[g]) perm.push_back(static_cast<std::uint32_t>(g));
                auto& fl = flags[a];
                fl.resize(ev.flag_off + T * D, 0);
                std::uint8_t* f = fl.data() + ev.flag_off;
                for (std::size_t t = 0; t < T; ++t) {
                    gmatched.assign(Gn, 0);
                    for (std::size_t d = 0; d < D; ++d) {
                        double best = std::min(iou_thr[t], 1.0 - 1e-10);
                        std::ptrdiff_t m = -1;
                        for (std::size_t j = 0; j < Gn; ++j) {
                            const std::uint32_t g = perm[j];
                            if (gmatched[j] && !gt_at(g).crowd) continue;
                            if (m > -1 && !gtig[perm[static_cast<std::size_t>(m)]] && gtig[g]) break;
                            const double v = ious[d * Gn + g];
                            if (v < best) continue;
                            best = v;
                            m = static_cast<std::ptrdiff_t>(j);
                        }
                        std::uint8_t fv = 0;
                        if (m > -1) {
                            gmatched[static_cast<std::size_t>(m)] = 1;
                            fv = dt_matched;
                            if (gtig[perm[static_cast<std::size_t>(m)]]) fv |= dt_ignored;
                        } else if (dt[d].area < lo || dt[d].area > hi) {
                            fv = dt_ignored;
                        }
                        f[t * D + d] = fv;
                    }
                }
            }
            evals.push_back(ev);
        }

        // accumulate: for each maxDets, merge the images' first maxDets detections by score
        for (std::size_t m = 0; m < M; ++m) {
            const std::size_t md = static_cast<std::size_t>(G::max_dets[m]);
            merged.clear();
            for (std::size_t e = 0; e < evals.size(); ++e)
                for (std::size_t d = 0; d < std::min(evals[e].D, md); ++d)
                    merged.push_back({cdt[evals[e].dt_begin + d].score, static_cast<std::uint32_t>(e),
                                      static_cast<std::uint32_t>(d)});
            std::stable_sort(merged.begin(), merged.end(),
                             [](const merged_dt& a, const merged_dt& b) { return a.score > b.score; });
            const std::size_t nd = merged.size();
            for (std::size_t a = 0; a < A; ++a) {
                if (npig[a] == 0) continue; // -1: no ground truth to find
                const double np = static_cast<double>(npig[a]);
                for (std::size_t t = 0; t < T; ++t) {
                    tpc.resize(nd);
                    prc.resize(nd);
                    double tp = 0, fp = 0;
                    for (std::size_t i = 0; i < nd; ++i) {
                        const image_eval& ev = evals[merged[i].e];
                        const std::uint8_t fv = flags[a][ev.flag_off + t * ev.D + merged[i].d];
                        if (!(fv & dt_ignored)) {
                            if (fv & dt_matched) tp += 1;
                            else fp += 1;
                        }
                        tpc[i] = tp;
                        prc[i] = tp / (fp + tp + std::numeric_limits<double>::epsilon());
                    }
                    const double recall = nd ? tp / np : 0.0;
                    for (std::size_t i = nd; i-- > 1;)
                        if (prc[i] > prc[i - 1]) prc[i - 1] = prc[i];
                    // searchsorted(rc, recThrs, 'left') over rc = tpc / np (non-decreasing)
                    double sum = 0;
                    std::size_t i = 0;
                    for (std::size_t ri = 0; ri < R; ++ri) {
                        while (i < nd && tpc[i] / np < rec_thr[ri]) ++i;
                        const double q = i < nd ? prc[i] : 0.0;
                        sum += q;
                        if (options.keep_curves) res.precision[(((t * R + ri) * K + k) * A + a) * M + m] = q;
                    }
                    prec_sum[kamt(k, a, m, t)] = sum;
                    rec[kamt(k, a, m, t)] = recall;
                    if (options.keep_curves) res.recall[((t * K + k) * A + a) * M + m] = recall;
                }
            }
        }
    }

    // --- summaries ------------------------------------------------------------------------
    // mean of the defined entries over T (or one t), R and K, as summarize() does
    auto mean_ap = [&](std::size_t a, std::size_t m, std::ptrdiff_t only_t) {
        double s = 0;
        std::size_t n = 0;
        for (std::size_t k = 0; k < K; ++k)
            for (std::size_t t = 0; t < T; ++t) {
                if (only_t >= 0 && t != static_cast<std::size_t>(only_t)) continue;
                const double v = prec_sum[kamt(k, a, m, t)];
                if (v < 0) continue;
                s += v;
                n += R;
            }
        return n ? s / static_cast<double>(n) : -1.0;
    };
    auto mean_ar = [&](std::size_t a, std::size_t m) {
        double s = 0;
        std::size_t n = 0;
        for (std::size_t k = 0; k < K; ++k)
            for (std::size_t t = 0; t < T; ++t) {
                const double v = rec[kamt(k, a, m, t)];
                if (v < 0) continue;
                s += v;
                ++n;
            }
        return n ? s / static_cast<double>(n) : -1.0;
    };
    std::size_t t50 = 0, t75 = 0;
    for (std::size_t t = 0; t < T; ++t) {
        if (iou_thr[t] == 0.5) t50 = t;
        if (iou_thr[t] == 0.75) t75 = t;
    }
    const std::size_t m100 = M - 1;
    res.stats = {mean_ap(0, m100, -1), mean_ap(0, m100, static_cast<std::ptrdiff_t>(t50)),
                 mean_ap(0, m100, static_cast<std::ptrdiff_t>(t75)), mean_ap(1, m100, -1),
                 mean_ap(2, m100, -1), mean_ap(3, m100, -1),
                 mean_ar(0, 0), mean_ar(0, 1), mean_ar(0, m100),
                 mean_ar(1, m100), mean_ar(2, m100), mean_ar(3, m100)};
    for (std::size_t k = 0; k < K; ++k) {
        auto& c = res.categories[k];
        if (prec_sum[kamt(k, 0, m100, 0)] < 0) continue;
        double s = 0, r = 0;
        for (std::size_t t = 0; t < T; ++t) s += prec_sum[kamt(k, 0, m100, t)], r += rec[kamt(k, 0, m100, t)];
        c.ap = s / static_cast<double>(T * R);
        c.ap50 = prec_sum[kamt(k, 0, m100, t50)] / static_cast<double>(R);
        c.ap75 = prec_sum[kamt(k, 0, m100, t75)] / static_cast<double>(R);
        c.ar100 = r / static_cast<double>(T);
    }
    return res;
}

/// @brief Detections as COCO results JSON, the inverse of parse_detections: [{"image_id",
/// "category_id", "bbox": [x, y, w, h], "score"}, ...] in order, plus "segmentation":
/// {"size": [h, w], "counts": "..."} (compressed) for a detection with a mask.
/// parse_detections of it gives the detections back (a mask's `area` aside: with a bbox
/// written, the area is w * h again).
/// @throws snip::error for a mask whose runs do not sum to height * width.
inline nlohmann::json detections_json(const std::vector<detection>& dets) {
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < dets.size(); ++i) {
        const detection& d = dets[i];
        nlohmann::json o = {{"image_id", d.image_id},
                            {"category_id", d.category_id},
                            {"bbox", {d.x, d.y, d.w, d.h}},
                            {"score", d.score}};
        if (d.segmentation.height > 0) {
            mask::check(d.segmentation, snip::concat("detections[", i, "].segmentation"));
            o["segmentation"] = {{"size", {d.segmentation.height, d.segmentation.width}},
                                 {"counts", mask::to_string(d.segmentation)}};
        }
        out.push_back(std::move(o));
    }
    return out;
}

/// @brief Reads `detections_path` (COCO results format, see read_detections) and evaluates
/// it against `gt` (see evaluate_coco).
inline coco_eval_result evaluate_coco_file(const dataset& gt, const std::string& detections_path,
                                      const coco_eval_options& options = {}) {
    return evaluate_coco(gt, read_detections(detections_path, gt), options);
}

/// @brief The 12 summary lines in pycocotools' layout, e.g.
/// ` Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.372`.
inline std::string format_coco_summary(const coco_eval_result& r) {
    struct line {
        bool ap;
        const char* iou;
        const char* area;
        int max_dets;
    };
    static constexpr line lines[12] = {
        {true, "0.50:0.95", "all", 100},   {true, "0.50", "all", 100},
        {true, "0.75", "all", 100},        {true, "0.50:0.95", "small", 100},
        {true, "0.50:0.95", "medium", 100}, {true, "0.50:0.95", "large", 100},
        {false, "0.50:0.95", "all", 1},    {false, "0.50:0.95", "all", 10},
        {false, "0.50:0.95", "all", 100},  {false, "0.50:0.95", "small", 100},
        {false, "0.50:0.95", "medium", 100}, {false, "0.50:0.95", "large", 100}};
    std::string out;
    char buf[160];
    for (std::size_t i = 0; i < 12; ++i) {
        const line& l = lines[i];
        std::snprintf(buf, sizeof buf, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n",
                      l.ap ? "Average Precision" : "Average Recall", l.ap ? "(AP)" : "(AR)", l.iou, l.area,
                      l.max_dets, r.stats[i]);
        out += buf;
    }
    return out;
}

/// @brief The result as JSON: {"AP": .., ..., "ARl": .., "images", "gt_boxes",
/// "crowd_boxes", "detections", "iou_type" ("bbox" or "segm"), "categories": [{"id", "name", "gt",
/// "crowd", "detections", "AP", "AP50", "AP75", "AR100"}]}; -1 marks an undefined number.
inline nlohmann::json coco_eval_json(const coco_eval_result& r) {
    nlohmann::json j = nlohmann::json::object();
    for (std::size_t i = 0; i < r.stats.size(); ++i) j[std::string(r.stat_names[i])] = r.stats[i];
    j["images"] = r.images;
    j["gt_boxes"] = r.gt_boxes;
    j["crowd_boxes"] = r.crowd_boxes;
    j["detections"] = r.detections;
    j["iou_type"] = std::string(to_string(r.type));
    nlohmann::json cats = nlohmann::json::array();
    for (const auto& c : r.categories)
        cats.push_back({{"id", c.id},
                        {"name", c.name},
                        {"gt", c.gt},
                        {"crowd", c.crowd},
                        {"detections", c.detections},
                        {"AP", c.ap},
                        {"AP50", c.ap50},
                        {"AP75", c.ap75},
                        {"AR100", c.ar100}});
    j["categories"] = std::move(cats);
    return j;
}

} // namespace snip::io
