// rle.hpp: COCO run-length encodings (snip::mask::rle): encoding and decoding, area, box,
// union and intersection, IoU on the runs, COCO's compressed counts strings, and
// rasterisation of polygons and boxes with the rules of COCO's own tools (pycocotools'
// maskApi), so that a mask made here equals, bit for bit, the one COCO's tools make.
//
// Layout: an rle reads the mask in column-major order (pixel (x, y) is at position
// x * height + y) as alternating runs that start with zeros. Functions here accept runs of
// length zero anywhere; those that build an rle emit the canonical form (only the first run
// may be empty, no two neighbouring runs have the same value).
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/mask/segmentation.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace snip::mask {

namespace detail {

/// Appends a run of `value` and length `n` to canonical counts (zeros first).
class run_builder {
public:
    void push(bool value, std::uint64_t n) {
        if (n == 0) return;
        if (counts_.empty()) {
            if (value) counts_.push_back(0);
            counts_.push_back(static_cast<std::uint32_t>(n));
            last_ = value;
            return;
        }
        if (value == last_) {
            counts_.back() += static_cast<std::uint32_t>(n);
        } else {
            counts_.push_back(static_cast<std::uint32_t>(n));
            last_ = value;
        }
    }
    /// The counts; {0} for a mask of no pixels (as COCO's encoder gives).
    std::vector<std::uint32_t> take() {
        if (counts_.empty()) counts_.push_back(0);
        return std::move(counts_);
    }

private:
    std::vector<std::uint32_t> counts_;
    bool last_ = false;
};

/// Walks the runs of ones of an rle as half-open position intervals [begin, end),
/// skipping empty ones.
class ones_cursor {
public:
    explicit ones_cursor(const std::vector<std::uint32_t>& counts) : c_(counts) {}
    bool next(std::uint64_t& begin, std::uint64_t& end) {
        while (k_ < c_.size()) {
            pos_ += c_[k_++]; // a run of zeros
            if (k_ >= c_.size()) return false;
            begin = pos_;
            pos_ += c_[k_++]; // a run of ones
            end = pos_;
            if (end > begin) return true;
        }
        return false;
    }

private:
    const std::vector<std::uint32_t>& c_;
    std::size_t k_ = 0;
    std::uint64_t pos_ = 0;
};

inline std::uint64_t pixels(const rle& r) {
    return static_cast<std::uint64_t>(r.height) * static_cast<std::uint64_t>(r.width);
}

inline void require_same_size(const rle& a, const rle& b, const char* what) {
    require(a.height == b.height && a.width == b.width, what, ": masks of different sizes, ",
            a.height, "x", a.width, " and ", b.height, "x", b.width, " (height x width)");
}

/// Pixels set in both masks (same size assumed), from the runs.
inline std::uint64_t intersection_count(const rle& a, const rle& b) {
    ones_cursor ca(a.counts), cb(b.counts);
    std::uint64_t a0, a1, b0, b1, inter = 0;
    bool ha = ca.next(a0, a1), hb = cb.next(b0, b1);
    while (ha && hb) {
        std::uint64_t lo = std::max(a0, b0), hi = std::min(a1, b1);
        if (hi > lo) inter += hi - lo;
        if (a1 < b1)
            ha = ca.next(a0, a1);
        else
            hb = cb.next(b0, b1);
    }
    return inter;
}

/// Union or intersection of two masks of the same size, canonical counts.
inline rle merge2(const rle& a, const rle& b, bool intersect) {
    // Boundaries of both masks, walked together; the value between two boundaries is
    // constant in both.
    run_builder out;
    std::size_t ia = 0, ib = 0;
    std::uint64_t ra = a.counts.empty() ? 0 : a.counts[0];
    std::uint64_t rb = b.counts.empty() ? 0 : b.counts[0];
    bool va = false, vb = false;
    const std::uint64_t total = pixels(a);
    std::uint64_t done = 0;
    while (done < total) {
        while (ra == 0 && ia + 1 < a.counts.size())
            ra = a.counts[++ia], va = !va;
        while (rb == 0 && ib + 1 < b.counts.size())
            rb = b.counts[++ib], vb = !vb;
        std::uint64_t step = std::min(ra, rb);
        if (step == 0) break; // counts shorter than the mask: checked by callers
        out.push(intersect ? (va && vb) : (va || vb), step);
        ra -= step;
        rb -= step;
        done += step;
    }
    rle r{a.height, a.width, out.take()};
    return r;
}

} // namespace detail

/// @brief Throws snip::error unless `r` is a valid rle: height and width >= 0 and the
/// counts summing to height * width. The message names `what` and the numbers.
inline void check(const rle& r, std::string_view what) {
    require(r.height >= 0 && r.width >= 0, what, ": rle size ", r.height, "x", r.width,
            " (height x width) is negative");
    std::uint64_t sum = 0;
    for (std::uint32_t c : r.counts)
        sum += c;
    require(sum == detail::pixels(r), what, ": rle counts sum to ", sum, " but the mask is ",
            r.height, "x", r.width, " = ", detail::pixels(r), " pixels");
}

namespace detail {

/// The runs of a height x width mask whose pixel (y, x) is m[y * row_stride + x * col_stride]
/// (nonzero = set), read in COCO's column-major order; `who` names the caller in errors.
inline rle encode_strided(const std::uint8_t* m, int height, int width, std::size_t row_stride,
                          std::size_t col_stride, const char* who) {
    require(height >= 0 && width >= 0, who, ": size ", height, "x", width,
            " (height x width) is negative");
    run_builder b;
    bool cur = false;
    std::uint64_t len = 0;
    for (int x = 0; x < width; ++x) {
        const std::uint8_t* col = m + static_cast<std::size_t>(x) * col_stride;
        for (int y = 0; y < height; ++y) {
            bool v = col[static_cast<std::size_t>(y) * row_stride] != 0;
            if (v != cur) {
                b.push(cur, len);
                cur = v;
                len = 0;
            }
            ++len;
        }
    }
    b.push(cur, len);
    return rle{height, width, b.take()};
}

} // namespace detail

/// @brief Encodes a row-major mask (m[y * width + x], nonzero = set) of height x width.
inline rle encode(const std::uint8_t* m, int height, int width) {
    return detail::encode_strided(m, height, width, static_cast<std::size_t>(std::max(width, 0)),
                                  1, "mask::encode");
}

/// @brief Encodes a column-major mask (m[x * height + y], nonzero = set).
inline rle encode_col_major(const std::uint8_t* m, int height, int width) {
    return detail::encode_strided(m, height, width, 1,
                                  static_cast<std::size_t>(std::max(height, 0)),
                                  "mask::encode_col_major");
}

/// @brief Decodes `r` into `out`, row-major 0/1, height * width bytes. `r` is checked.
inline void decode(const rle& r, std::uint8_t* out) {
    check(r, "mask::decode");
    const std::size_t h = static_cast<std::size_t>(r.height);
    const std::size_t w = static_cast<std::size_t>(r.width);
    std::fill(out, out + h * w, std::uint8_t{0});
    detail::ones_cursor c(r.counts);
    std::uint64_t b, e;
    while (c.next(b, e)) {
        for (std::uint64_t p = b; p < e;) {
            std::size_t x = static_cast<std::size_t>(p / h), y = static_cast<std::size_t>(p % h);
            std::uint64_t stop = std::min<std::uint64_t>(e, (x + 1) * h);
            for (; p < stop; ++p, ++y)
                out[y * w + x] = 1;
        }
    }
}

/// @brief Decodes `r` into a new row-major 0/1 buffer of height * width bytes.
inline std::vector<std::uint8_t> decode(const rle& r) {
    check(r, "mask::decode");
    std::vector<std::uint8_t> out(detail::pixels(r));
    decode(r, out.data());
    return out;
}

/// @brief Number of set pixels.
inline std::uint64_t area(const rle& r) {
    std::uint64_t a = 0;
    for (std::size_t j = 1; j < r.counts.size(); j += 2)
        a += r.counts[j];
    return a;
}

/// @brief The tight box of the set pixels, xyxy in continuous pixels (pixel (x, y) covers
/// [x, x + 1) x [y, y + 1)), so {x_min, y_min, x_max + 1, y_max + 1}; all zeros for an
/// empty mask. COCO's toBbox gives the same box as x, y, w, h (recent pycocotools; older
/// versions missed the rows of a run that wraps from one column into the next).
inline box<double> bbox(const rle& r) {
    if (r.height <= 0 || r.width <= 0) return {};
    const std::uint64_t h = static_cast<std::uint64_t>(r.height);
    std::uint64_t xs = std::numeric_limits<std::uint64_t>::max(), xe = 0;
    std::uint64_t ys = h, ye = 0;
    bool any = false;
    detail::ones_cursor c(r.counts);
    std::uint64_t b, e;
    while (c.next(b, e)) {
        any = true;
        std::uint64_t x0 = b / h, y0 = b % h, x1 = (e - 1) / h, y1 = (e - 1) % h;
        xs = std::min(xs, x0);
        xe = std::max(xe, x1);
        if (x1 > x0) {
            ys = 0;
            ye = h - 1;
        } else {
            ys = std::min(ys, y0);
            ye = std::max(ye, y1);
        }
    }
    if (!any) return {};
    return {static_cast<double>(xs), static_cast<double>(ys), static_cast<double>(xe + 1),
            static_cast<double>(ye + 1)};
}

/// @brief The union (or, with `intersect`, the intersection) of masks of one size, in
/// canonical form. No masks give an empty 0x0 rle; masks of different sizes throw
/// snip::error naming both sizes.
inline rle merge(std::span<const rle> rs, bool intersect = false) {
    if (rs.empty()) return rle{};
    for (std::size_t i = 0; i < rs.size(); ++i) {
        if (i > 0) detail::require_same_size(rs[0], rs[i], "mask::merge");
        check(rs[i], "mask::merge");
    }
    rle acc = detail::merge2(rs[0], rs[0], false); // canonical copy
    for (std::size_t i = 1; i < rs.size(); ++i)
        acc = detail::merge2(acc, rs[i], intersect);
    return acc;
}

/// @brief COCO's mask IoU (pycocotools' rleIou): |dt & gt| / |dt | gt|, or, when the ground
/// truth is a crowd region, |dt & gt| / |dt|. 0 when the masks do not overlap (also when
/// both are empty). Computed on the runs; masks of different sizes throw snip::error (COCO
/// gives -1). Equal to COCO's value, except where old pycocotools versions (with the
/// toBbox fault noted at bbox()) skipped two overlapping masks as having disjoint boxes and
/// gave 0.
inline double iou(const rle& dt, const rle& gt, bool gt_crowd) {
    detail::require_same_size(dt, gt, "mask::iou");
    std::uint64_t inter = detail::intersection_count(dt, gt);
    if (inter == 0) return 0.0;
    std::uint64_t ad = area(dt);
    std::uint64_t u = gt_crowd ? ad : ad + area(gt) - inter;
    return static_cast<double>(inter) / static_cast<double>(u);
}

/// @brief iou() of every detection with every ground truth, row-major:
/// result[i_dt * gts.size() + j_gt]. `gt_crowd` has one flag per ground truth (nonzero =
/// crowd), or is empty (no crowds). All masks must have one size (else snip::error naming
/// both sizes).
inline std::vector<double> iou_matrix(std::span<const rle> dts, std::span<const rle> gts,
                                      std::span<const std::uint8_t> gt_crowd) {
    require(gt_crowd.empty() || gt_crowd.size() == gts.size(),
            "mask::iou_matrix: ", gt_crowd.size(), " crowd flags for ", gts.size(),
            " ground truths");
    const std::size_t nd = dts.size(), ng = gts.size();
    std::vector<double> out(nd * ng, 0.0);
    if (nd == 0 || ng == 0) return out;
    const rle& ref = ng > 0 ? gts[0] : dts[0];
    std::vector<box<double>> db(nd), gb(ng);
    std::vector<std::uint64_t> da(nd), ga(ng);
    for (std::size_t i = 0; i < nd; ++i) {
        detail::require_same_size(dts[i], ref, "mask::iou_matrix (detection vs ground truth)");
        check(dts[i], concat("mask::iou_matrix: detection ", i));
        db[i] = bbox(dts[i]);
        da[i] = area(dts[i]);
    }
    for (std::size_t j = 0; j < ng; ++j) {
        detail::require_same_size(gts[j], ref, "mask::iou_matrix (ground truths)");
        check(gts[j], concat("mask::iou_matrix: ground truth ", j));
        gb[j] = bbox(gts[j]);
        ga[j] = area(gts[j]);
    }
    for (std::size_t i = 0; i < nd; ++i) {
        for (std::size_t j = 0; j < ng; ++j) {
            if (intersection(db[i], gb[j]).empty()) continue; // no common pixel
            std::uint64_t inter = detail::intersection_count(dts[i], gts[j]);
            if (inter == 0) continue;
            bool crowd = !gt_crowd.empty() && gt_crowd[j] != 0;
            std::uint64_t u = crowd ? da[i] : da[i] + ga[j] - inter;
            out[i * ng + j] = static_cast<double>(inter) / static_cast<double>(u);
        }
    }
    return out;
}

/// @brief COCO's compressed counts string (pycocotools' rleToString): from the fourth
/// count on, each count is written as its difference from the count two before; each value
/// is cut into 5-bit groups, low first, each written as one character 48 + group, with bit
/// 0x20 set when more groups follow; the last group's bit 0x10 is the sign.
inline std::string to_string(const rle& r) {
    std::string s;
    s.reserve(r.counts.size() * 2);
    for (std::size_t i = 0; i < r.counts.size(); ++i) {
        std::int64_t x = r.counts[i];
        if (i > 2) x -= static_cast<std::int64_t>(r.counts[i - 2]);
        for (bool more = true; more;) {
            int c = static_cast<int>(x & 0x1f);
            x >>= 5; // arithmetic shift: the sign stays
            more = (c & 0x10) ? x != -1 : x != 0;
            if (more) c |= 0x20;
            s.push_back(static_cast<char>(c + 48));
        }
    }
    return s;
}

/// @brief Parses COCO's compressed counts string (see to_string) of a height x width mask.
/// Throws snip::error, naming the character position and value, on a character outside
/// '0'..'o', a string that ends inside a value, a value of more than 12 characters or a
/// negative run; and when the counts do not sum to height * width.
inline rle from_string(std::string_view s, int height, int width) {
    require(height >= 0 && width >= 0, "mask::from_string: size ", height, "x", width,
            " (height x width) is negative");
    rle r{height, width, {}};
    std::size_t p = 0;
    while (p < s.size()) {
        const std::size_t start = p;
        std::int64_t x = 0;
        int k = 0;
        for (bool more = true; more; ++k, ++p) {
            require(p < s.size(),
                    "mask::from_string: counts string ends inside the value that "
                    "starts at character ",
                    start, " (length ", s.size(), ")");
            const int ch = static_cast<unsigned char>(s[p]);
            require(ch >= 48 && ch < 48 + 64, "mask::from_string: character ", p, " is '", s[p],
                    "' (code ", ch, "), outside '0'..'o'");
            require(k < 12, "mask::from_string: the value that starts at character ", start,
                    " is longer than 12 characters");
            const int c = ch - 48;
            x |= static_cast<std::int64_t>(c & 0x1f) << (5 * k);
            more = (c & 0x20) != 0;
            if (!more && (c & 0x10)) x |= ~std::int64_t{0} << (5 * (k + 1)); // sign
        }
        const std::size_t m = r.counts.size();
        if (m > 2) x += static_cast<std::int64_t>(r.counts[m - 2]);
        require(x >= 0, "mask::from_string: run ", m, " (characters ", start, "..", p - 1,
                ") is negative: ", x);
        require(x <= std::numeric_limits<std::uint32_t>::max(), "mask::from_string: run ", m,
                " (characters ", start, "..", p - 1, ") is too large: ", x);
        r.counts.push_back(static_cast<std::uint32_t>(x));
    }
    std::uint64_t sum = 0;
    for (std::uint32_t c : r.counts)
        sum += c;
    require(sum == detail::pixels(r), "mask::from_string: counts sum to ", sum, " but the mask is ",
            height, "x", width, " = ", detail::pixels(r), " pixels");
    return r;
}

namespace detail {

/// Appends the column-major positions x * h + y at which a polygon's rasterisation toggles
/// between outside and inside, by COCO's rule (pycocotools' rleFrPoly):
/// 1. vertices are scaled by 5 and rounded, (int)(5 v + 0.5);
/// 2. each edge is walked in unit steps along its longer axis; the other coordinate at step
///    t is (int)(a + s t + 0.5) with a the coordinate at the edge's lower end along the
///    longer axis and s the slope, whatever the direction of the walk;
/// 3. every step of the walk between upsampled columns 5x + 2 and 5x + 3 (the centre of
///    pixel column x, 0 <= x < w) toggles column x from pixel row
///    clamp(ceil((min(v_a, v_b) - 2) / 5), 0, h) down.
/// Casts to int truncate toward zero, as COCO's C code does.
inline void polygon_toggles(const double* xy, std::size_t k, long long h, long long w,
                            std::vector<std::int64_t>& out) {
    if (k == 0) return;
    auto up = [](double v) { // vertices beyond +-2e8 px are held there (C's cast is undefined)
        return static_cast<long long>(static_cast<int>(std::clamp(5.0 * v + 0.5, -1e9, 1e9)));
    };
    bool have_prev = false;
    long long pu = 0, pv = 0;
    auto visit = [&](long long u, long long v) {
        if (have_prev && u != pu) {
            const long long col = u < pu ? u : u - 1; // the step's left column
            if (col >= 0 && col % 5 == 2 && col / 5 <= w - 1) {
                const long long vm = std::min(v, pv) - 2;
                long long row = vm <= 0 ? 0 : (vm + 4) / 5;
                if (row > h) row = h;
                out.push_back(col / 5 * h + row);
            }
        }
        pu = u;
        pv = v;
        have_prev = true;
    };
    for (std::size_t j = 0; j < k; ++j) {
        const std::size_t n = (j + 1) % k;
        long long xs = up(xy[2 * j]), ys = up(xy[2 * j + 1]);
        long long xe = up(xy[2 * n]), ye = up(xy[2 * n + 1]);
        const long long dx = xe > xs ? xe - xs : xs - xe, dy = ye > ys ? ye - ys : ys - ye;
        const bool x_major = dx >= dy;
        const bool flip = x_major ? xs > xe : ys > ye;
        if (flip) std::swap(xs, xe), std::swap(ys, ye);
        if (dx == 0 && dy == 0) {
            visit(xs, ys);
            continue;
        }
        if (x_major) {
            const double s = static_cast<double>(ye - ys) / static_cast<double>(dx);
            for (long long d = 0; d <= dx; ++d) {
                const long long t = flip ? dx - d : d;
                visit(t + xs,
                      static_cast<int>(static_cast<double>(ys) + s * static_cast<double>(t) + 0.5));
            }
        } else {
            const double s = static_cast<double>(xe - xs) / static_cast<double>(dy);
            for (long long d = 0; d <= dy; ++d) {
                const long long t = flip ? dy - d : d;
                visit(static_cast<int>(static_cast<double>(xs) + s * static_cast<double>(t) + 0.5),
                      t + ys);
            }
        }
    }
}

/// Canonical counts from sorted toggle positions in [0, total]: a position toggled an even
/// number of times does not toggle.
inline std::vector<std::uint32_t> counts_from_toggles(std::vector<std::int64_t>& t,
                                                      std::uint64_t total) {
    std::sort(t.begin(), t.end());
    run_builder b;
    bool v = false;
    std::uint64_t pos = 0;
    for (std::size_t i = 0; i < t.size();) {
        std::size_t j = i;
        while (j < t.size() && t[j] == t[i])
            ++j;
        if ((j - i) % 2 == 1) {
            const std::uint64_t at =
                std::min<std::uint64_t>(static_cast<std::uint64_t>(t[i]), total);
            b.push(v, at - pos);
            pos = at;
            v = !v;
        }
        i = j;
    }
    b.push(v, total - pos);
    return b.take();
}

inline void check_polygon(const polygon& p, const char* what) {
    require(p.size() % 2 == 0, what, ": a polygon has an odd number of values (", p.size(), ")");
    for (std::size_t i = 0; i < p.size(); ++i)
        require(std::isfinite(p[i]), what, ": polygon value ", i, " is not finite (", p[i], ")");
}

} // namespace detail

/// @brief Rasterises one polygon into a height x width mask exactly as COCO's tools do
/// (pycocotools' frPyObjects / rleFrPoly; see detail::polygon_toggles for the rule): a
/// pixel is set when its centre is inside the polygon drawn on a 5x finer grid, so results
/// equal COCO's bit for bit. Vertices may lie outside the image. An odd number of values or
/// a non-finite one throws snip::error.
inline rle from_polygon(const polygon& p, int height, int width) {
    require(height >= 0 && width >= 0, "mask::from_polygon: size ", height, "x", width,
            " (height x width) is negative");
    detail::check_polygon(p, "mask::from_polygon");
    std::vector<std::int64_t> t;
    detail::polygon_toggles(p.data(), p.size() / 2, height, width, t);
    rle r{height, width, {}};
    r.counts = detail::counts_from_toggles(t, detail::pixels(r));
    return r;
}

/// @brief The union of the polygons' rasterisations (COCO's annToRLE: frPyObjects then
/// merge). No polygons give an all-zero mask.
inline rle from_polygons(const std::vector<polygon>& ps, int height, int width) {
    require(height >= 0 && width >= 0, "mask::from_polygons: size ", height, "x", width,
            " (height x width) is negative");
    if (ps.empty()) {
        rle r{height, width, {}};
        detail::run_builder b;
        b.push(false, detail::pixels(r));
        r.counts = b.take();
        return r;
    }
    rle acc = from_polygon(ps[0], height, width);
    for (std::size_t i = 1; i < ps.size(); ++i)
        acc = detail::merge2(acc, from_polygon(ps[i], height, width), false);
    return acc;
}

/// @brief The mask of an annotation's segmentation at height x width: polygons are
/// rasterised (from_polygons); an RLE is checked and returned as is, and must be
/// height x width (else snip::error naming both sizes). An empty segmentation gives an
/// all-zero mask.
inline rle from_segmentation(const segmentation& s, int height, int width) {
    if (s.is_rle()) {
        require(s.mask.height == height && s.mask.width == width,
                "mask::from_segmentation: the RLE is ", s.mask.height, "x", s.mask.width,
                " but the image is ", height, "x", width, " (height x width)");
        check(s.mask, "mask::from_segmentation");
        return s.mask;
    }
    return from_polygons(s.polygons, height, width);
}

/// @brief The mask of a box (xyxy, continuous pixels) by COCO's frBbox rule: the box
/// rasterised as the polygon (x1, y1), (x1, y2), (x2, y2), (x2, y1).
inline rle from_box(const box<double>& b, int height, int width) {
    const polygon p{b.x1, b.y1, b.x1, b.y2, b.x2, b.y2, b.x2, b.y1};
    return from_polygon(p, height, width);
}

} // namespace snip::mask
