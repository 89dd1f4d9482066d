// io/coco.hpp: COCO-format annotations and proposals in and out (needs nlohmann-json).
//
// A COCO bbox [x, y, w, h] (original-image pixels, origin at the top-left corner)
// becomes the xyxy box [x, y, x + w, y + h], continuous convention. An annotation's
// optional "area" (in COCO's own files the segmentation mask's area) is kept in
// image_record::areas for COCO evaluation's area ranges, its optional "segmentation"
// (polygons or RLE) in image_record::segments. Reading is strict:
// every problem is a snip::error whose message names the file, the field path
// (e.g. `annotations[17].bbox[2]`) and the bad value.
#pragma once

#include <snip/mask/rle.hpp>
#include <snip/mask/segmentation.hpp>
#include <snip/sniper/dataset.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace snip::io {

/// @brief What a load did, for the command line to print.
struct load_report {
    std::size_t images = 0, boxes = 0, crowd = 0;
    std::size_t degenerate = 0; ///< boxes with w == 0 or h == 0: kept, one warning each
    std::size_t clipped = 0;    ///< boxes that crossed the image border by <= tolerance px and were clipped
    std::vector<std::string> warnings; ///< at most ~20 lines, each naming file, field, value
};

namespace detail {

using json = nlohmann::json;

/// Warning lines kept in a load_report; the rest are only counted.
inline constexpr std::size_t max_warnings = 20;

/// @brief A field path, formatted only when a message needs it:
/// `array[index].key[sub] (label)`. An empty `array` is a top-level array: `[index]`.
struct at {
    std::string_view array;
    std::size_t index = 0;
    std::string_view key = {};
    int sub = -1;
    std::string_view label = {};

    at with(std::string_view k, int s = -1, std::string_view l = {}) const {
        return {array, index, k, s, l};
    }
    std::string str() const {
        std::string s(array);
        s += '[';
        s += std::to_string(index);
        s += ']';
        if (!key.empty()) {
            s += '.';
            s += key;
        }
        if (sub >= 0) {
            s += '[';
            s += std::to_string(sub);
            s += ']';
        }
        if (!label.empty()) {
            s += " (";
            s += label;
            s += ')';
        }
        return s;
    }
};

/// @brief Appends `v` as compact JSON to `out` until `out` is longer than `limit`. The
/// recursion ends with the length, whatever the nesting: json::dump recurses once per
/// level and overflows the stack on a file of a few MB of '['.
inline void show_into(const json& v, std::string& out, std::size_t limit) {
    if (!v.is_structured()) {
        out += v.dump(-1, ' ', false, json::error_handler_t::replace);
        return;
    }
    out += v.is_array() ? '[' : '{';
    bool first = true;
    for (auto it = v.begin(); it != v.end() && out.size() <= limit; ++it) {
        if (!first) out += ',';
        first = false;
        if (v.is_object()) {
            out += json(it.key()).dump(-1, ' ', false, json::error_handler_t::replace);
            out += ':';
        }
        show_into(*it, out, limit);
    }
    if (out.size() <= limit) out += v.is_array() ? ']' : '}';
}

/// @brief A JSON value for messages: compact, at most ~60 characters, NaN/inf spelled out.
inline std::string show(const json& v) {
    if (v.is_number_float()) {
        const double d = v.get<double>();
        if (std::isnan(d)) return "nan";
        if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
    }
    constexpr std::size_t limit = 60;
    std::string s;
    show_into(v, s, limit);
    if (s.size() > limit) s = s.substr(0, limit - 3) + "...";
    return s;
}

/// @brief Throws "<src>: <path> is <value>, must be <must>".
[[noreturn]] inline void bad_value(const std::string& src, const at& p, const json& v,
                                   std::string_view must) {
    fail(src, ": ", p.str(), " is ", show(v), ", must be ", must);
}

/// @brief Element `p.index` of array `arr`, which must be a JSON object.
inline const json& object_at(const json& arr, const std::string& src, const at& p) {
    const json& v = arr[p.index];
    if (!v.is_object()) bad_value(src, p, v, "an object");
    return v;
}

/// @brief Member `key` of object `obj` (the element at `p`), or nullptr when absent.
inline const json* member(const json& obj, const char* key) {
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
}

/// @brief Member `key` of object `obj`; throws "<path>.<key> is missing" when absent.
inline const json& need(const json& obj, const char* key, const std::string& src, const at& p,
                        std::string_view must) {
    const json* v = member(obj, key);
    if (!v) fail(src, ": ", p.with(key).str(), " is missing, must be ", must);
    return *v;
}

/// @brief A finite number (integer or float).
inline double finite_number(const json& v, const std::string& src, const at& p) {
    if (!v.is_number()) bad_value(src, p, v, "a finite number");
    const double d = v.get<double>();
    if (!std::isfinite(d)) bad_value(src, p, v, "a finite number");
    return d;
}

/// @brief An integer in [lo, hi]; a float with an integral value (640.0) is accepted.
inline std::int64_t integer(const json& v, const std::string& src, const at& p,
                            std::string_view must = "an integer",
                            std::int64_t lo = std::numeric_limits<std::int64_t>::min(),
                            std::int64_t hi = std::numeric_limits<std::int64_t>::max()) {
    std::int64_t r = 0;
    if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(hi)) bad_value(src, p, v, must);
        r = static_cast<std::int64_t>(u);
    } else if (v.is_number_integer()) {
        r = v.get<std::int64_t>();
    } else if (v.is_number_float()) {
        const double d = v.get<double>();
        if (!(std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15))
            bad_value(src, p, v, must);
        r = static_cast<std::int64_t>(d);
    } else {
        bad_value(src, p, v, must);
    }
    if (r < lo || r > hi) bad_value(src, p, v, must);
    return r;
}

/// @brief The top-level array `key` of object `j`.
inline const json& top_array(const json& j, const char* key, const std::string& src) {
    const json* v = member(j, key);
    if (!v) fail(src, ": missing \"", key, "\" array at the top level");
    if (!v->is_array()) fail(src, ": \"", key, "\" is ", show(*v), ", must be an array");
    return *v;
}

/// @brief The image a box must lie in, for border checks and messages.
struct image_frame {
    std::int64_t id;
    int width, height; ///< original px
};

/// @brief Result of reading one bbox.
struct read_box {
    box<double> xyxy;       ///< continuous, original px, clipped to the image
    double overshoot = 0.0; ///< how far (px) it crossed the border before clipping; 0 = inside
    bool degenerate = false; ///< w == 0 or h == 0
};

/// @brief Reads member "bbox" [x, y, w, h] (original px) of `obj`: four finite numbers,
/// w, h >= 0, inside `img` within `tol` px (then clipped to it).
inline read_box read_bbox(const json& obj, const std::string& src, const at& p,
                          const image_frame& img, double tol) {
    const json& b = need(obj, "bbox", src, p, "[x, y, w, h]");
    const at bp = p.with("bbox");
    if (!b.is_array() || b.size() != 4) bad_value(src, bp, b, "an array [x, y, w, h] of 4 numbers");
    static constexpr std::array<std::string_view, 4> names{"x", "y", "w", "h"};
    auto elem = [&](std::size_t k) { return p.with("bbox", static_cast<int>(k), names[k]); };
    std::array<double, 4> v{};
    for (std::size_t k = 0; k < 4; ++k) v[k] = finite_number(b[k], src, elem(k));
    const double x = v[0], y = v[1], w = v[2], h = v[3];
    for (std::size_t k = 2; k < 4; ++k)
        if (v[k] < 0) bad_value(src, elem(k), b[k], ">= 0");
    for (std::size_t k = 0; k < 2; ++k)
        if (v[k] < -tol)
            fail(src, ": ", elem(k).str(), " is ", show(b[k]), ", must be >= ", (tol > 0 ? -tol : 0.0),
                 " (border tolerance ", tol, " px; image ", img.id, " is ", img.width, " x ",
                 img.height, ")");
    const double over_x = x + w - img.width, over_y = y + h - img.height;
    if (over_x > tol)
        fail(src, ": ", bp.str(), " is ", show(b), ": right edge x + w = ", x + w,
             " is beyond the right border of image ", img.id, " (", img.width, " x ", img.height,
             ") by ", over_x, " px (tolerance ", tol, " px)");
    if (over_y > tol)
        fail(src, ": ", bp.str(), " is ", show(b), ": bottom edge y + h = ", y + h,
             " is beyond the bottom border of image ", img.id, " (", img.width, " x ", img.height,
             ") by ", over_y, " px (tolerance ", tol, " px)");
    read_box r;
    r.xyxy = from_xywh(x, y, w, h);
    r.overshoot = std::max({0.0, -x, -y, over_x, over_y});
    if (r.overshoot > 0)
        r.xyxy = clip(r.xyxy, static_cast<double>(img.width), static_cast<double>(img.height));
    r.degenerate = (w == 0 || h == 0);
    return r;
}

/// What a "segmentation" member may be, for messages.
inline constexpr std::string_view segmentation_forms =
    "[] (no mask), a list of polygons [[x0, y0, x1, y1, ...], ...] or an RLE "
    "{\"size\": [height, width], \"counts\": [...] or \"...\"}";

/// @brief Reads the RLE object `s`, member "segmentation" of the element at `p`:
/// "size" must be [height, width] of `img`; "counts" an array of run lengths (integers in
/// [0, 2^32 - 1]) or COCO's compressed string; the runs must sum to height * width.
inline mask::rle read_rle(const json& s, const std::string& src, const at& p,
                          const image_frame& img) {
    const std::string size_key = "segmentation.size", counts_key = "segmentation.counts";
    const json* size = member(s, "size");
    if (!size)
        fail(src, ": ", p.with(size_key).str(), " is missing, must be [height, width] = [",
             img.height, ", ", img.width, "], the size of image ", img.id);
    const bool size_ok = size->is_array() && size->size() == 2 && (*size)[0].is_number() &&
                         (*size)[1].is_number() &&
                         (*size)[0].get<double>() == static_cast<double>(img.height) &&
                         (*size)[1].get<double>() == static_cast<double>(img.width);
    if (!size_ok)
        fail(src, ": ", p.with(size_key).str(), " is ", show(*size),
             ", must be [height, width] = [", img.height, ", ", img.width, "], the size of image ",
             img.id);
    const json* counts = member(s, "counts");
    constexpr std::string_view counts_must =
        "an array of run lengths or a compressed RLE string (COCO's counts)";
    if (!counts) fail(src, ": ", p.with(counts_key).str(), " is missing, must be ", counts_must);
    mask::rle r;
    if (counts->is_string()) {
        try {
            r = mask::from_string(counts->get_ref<const std::string&>(), img.height, img.width);
        } catch (const snip::error& e) {
            fail(src, ": ", p.with(counts_key).str(), " is ", show(*counts),
                 ", not a valid compressed RLE: ", e.what());
        }
    } else if (counts->is_array()) {
        r.height = img.height;
        r.width = img.width;
        r.counts.reserve(counts->size());
        for (std::size_t k = 0; k < counts->size(); ++k)
            r.counts.push_back(static_cast<std::uint32_t>(
                integer((*counts)[k], src, p.with(counts_key, static_cast<int>(k)),
                        "an integer in [0, 4294967295] (a run length)", 0,
                        std::numeric_limits<std::uint32_t>::max())));
    } else {
        bad_value(src, p.with(counts_key), *counts, counts_must);
    }
    std::uint64_t sum = 0;
    for (const std::uint32_t c : r.counts)
        sum += c;
    const std::uint64_t want =
        static_cast<std::uint64_t>(img.height) * static_cast<std::uint64_t>(img.width);
    if (sum != want)
        fail(src, ": ", p.with(counts_key).str(), " is ", show(*counts), ": the runs sum to ", sum,
             ", must sum to height * width = ", want, " (image ", img.id, " is ", img.width, " x ",
             img.height, ")");
    return r;
}

/// @brief Reads member "segmentation" `s` of the element at `p` (an annotation or a
/// result) on image `img`: [] is no mask (empty()); a list of polygons, each an array of
/// an even count >= 6 of finite numbers (x, y pairs, original px) with every vertex inside
/// the image within `tol` px (kept unchanged: the mask is the polygon's part inside the
/// image); or an RLE (see read_rle).
inline mask::segmentation read_segmentation(const json& s, const std::string& src, const at& p,
                                            const image_frame& img, double tol) {
    mask::segmentation seg;
    if (s.is_object()) {
        seg.mask = read_rle(s, src, p, img);
        return seg;
    }
    if (!s.is_array()) bad_value(src, p.with("segmentation"), s, segmentation_forms);
    seg.polygons.reserve(s.size());
    for (std::size_t j = 0; j < s.size(); ++j) {
        const json& poly = s[j];
        const at pp = p.with("segmentation", static_cast<int>(j));
        if (!poly.is_array())
            bad_value(src, pp, poly, "a polygon [x0, y0, x1, y1, ...] of >= 3 vertices");
        const std::size_t n = poly.size();
        if (n % 2 != 0)
            fail(src, ": ", pp.str(), " is ", show(poly), ": ", n,
                 " numbers, must be an even count (x, y pairs)");
        if (n < 6)
            fail(src, ": ", pp.str(), " is ", show(poly), ": ", n / 2, " vertices, must be >= 3");
        const std::string key = snip::concat("segmentation[", j, "]");
        mask::polygon xy(n);
        for (std::size_t k = 0; k < n; ++k) {
            const bool is_y = k % 2 != 0;
            const at vp = p.with(key, static_cast<int>(k), is_y ? "y" : "x");
            const double v = finite_number(poly[k], src, vp);
            const double side = is_y ? img.height : img.width;
            const double over = std::max(-v, v - side);
            if (over > tol)
                fail(src, ": ", vp.str(), " is ", show(poly[k]), ", outside image ", img.id, " (",
                     img.width, " x ", img.height, ") by ", over, " px (border tolerance ", tol,
                     " px)");
            xy[k] = v;
        }
        seg.polygons.push_back(std::move(xy));
    }
    return seg;
}

inline void check_tolerance(double tol, const std::string& src) {
    require(std::isfinite(tol) && tol >= 0, src, ": border tolerance must be a finite number >= 0, got ",
            tol);
}

/// @brief Collects at most max_warnings lines into a report and counts the rest.
class warner {
public:
    explicit warner(load_report* r) : report_(r) {}
    /// Adds the line `make()` returns; calls it only when the line will be kept.
    template <class F>
    void add(F&& make) {
        if (!report_) return;
        if (report_->warnings.size() + 1 < max_warnings) report_->warnings.push_back(make());
        else ++dropped_;
    }
    /// Appends "N more warning(s) not shown" when lines were dropped.
    void finish() {
        if (report_ && dropped_ > 0)
            report_->warnings.push_back(snip::concat(dropped_, " more warning(s) not shown"));
    }

private:
    load_report* report_;
    std::size_t dropped_ = 0;
};

} // namespace detail

/// @brief The bytes of a file; errors name the path.
inline std::string read_text_file(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const auto st = fs::status(path, ec);
    if (ec || !fs::exists(st)) fail(path, ": file not found");
    if (fs::is_directory(st)) fail(path, ": is a directory, not a JSON file");
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, ": cannot open the file for reading");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail(path, ": read error");
    return text;
}

namespace detail {

/// "line L, column C" of the 0-based byte `pos` of `text`.
inline std::string line_column(std::string_view text, std::size_t pos) {
    pos = std::min(pos, text.size());
    std::size_t line = 1, start = 0;
    for (std::size_t i = 0; i < pos; ++i)
        if (text[i] == '\n') ++line, start = i + 1;
    return snip::concat("line ", line, ", column ", pos - start + 1);
}

/// The word (letters, with a leading sign) around the 0-based byte `pos`: what a parser
/// stopped on, e.g. NaN or -Infinity.
inline std::string_view word_at(std::string_view text, std::size_t pos) {
    auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    if (pos >= text.size()) return {};
    std::size_t b = pos, e = pos;
    while (b > 0 && letter(text[b - 1])) --b;
    if (b > 0 && (text[b - 1] == '-' || text[b - 1] == '+')) --b;
    while (e < text.size() && letter(text[e])) ++e;
    return text.substr(b, e - b);
}

/// The field path (`annotations[3].bbox[1]`) of the first number token `literal` in
/// `text`, found by parsing a copy with that token replaced by a marker; "" when the
/// token cannot be placed (then the caller gives the position alone).
inline std::string path_of_number(std::string_view text, std::string_view literal,
                                  std::size_t& pos) {
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    // a value: after '[', ',' or ':' and before ',', ']' or '}' (blanks aside); not a
    // part of a longer number or of a string
    auto is_value = [&](std::size_t b, std::size_t e) {
        while (b > 0 && space(text[b - 1])) --b;
        while (e < text.size() && space(text[e])) ++e;
        return b > 0 && (text[b - 1] == '[' || text[b - 1] == ',' || text[b - 1] == ':') &&
               (e == text.size() || text[e] == ',' || text[e] == ']' || text[e] == '}');
    };
    for (pos = text.find(literal); pos != std::string_view::npos;
         pos = text.find(literal, pos + 1))
        if (is_value(pos, pos + literal.size())) break;
    if (pos == std::string_view::npos) return {};
    std::string patched(text.substr(0, pos));
    patched += "\"\\u0001\"";
    patched += text.substr(pos + literal.size());
    json doc;
    try {
        doc = json::parse(patched);
    } catch (const json::exception&) {
        return {};  // another error in the text: the position alone
    }
    // depth-first, with an explicit stack (a file may nest deeper than the call stack)
    std::vector<std::pair<const json*, std::string>> todo{{&doc, std::string()}};
    while (!todo.empty()) {
        auto [v, path] = std::move(todo.back());
        todo.pop_back();
        if (v->is_string() && v->get_ref<const std::string&>() == "\x01")
            return path.empty() ? std::string("the document") : path;
        if (v->is_array())
            for (std::size_t i = v->size(); i-- > 0;)
                todo.emplace_back(&(*v)[i], snip::concat(path, "[", i, "]"));
        else if (v->is_object())
            for (auto it = v->begin(); it != v->end(); ++it)
                todo.emplace_back(&it.value(), path.empty() ? it.key() : path + "." + it.key());
    }
    return {};
}

} // namespace detail

/// @brief Parses JSON text read from `source`; a syntax error is a snip::error naming
/// the source, the byte, the line and the column. Two errors are spelled out: a NaN or
/// Infinity (Python's json.dump writes them for non-finite floats; JSON has neither),
/// and a number beyond a double's range (1e999), named by its field path.
/// read_json_file parses files with it, fuzzers parse bytes.
inline nlohmann::json parse_json_text(std::string_view text, const std::string& source) {
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        const std::size_t at = e.byte > 0 ? e.byte - 1 : 0;
        const std::string_view w = detail::word_at(text, at);
        for (std::string_view bad : {"NaN", "-NaN", "nan", "Infinity", "-Infinity", "+Infinity",
                                     "inf", "-inf", "Inf", "-Inf"})
            if (w == bad)
                fail(source, ": malformed JSON at byte ", e.byte, " (",
                     detail::line_column(text, at), "): it holds ", w,
                     ", a non-finite number, which JSON cannot hold (Python's json.dump writes "
                     "it for a NaN or infinite float: fix the value where the file is made): ",
                     e.what());
        fail(source, ": malformed JSON at byte ", e.byte, " (", detail::line_column(text, at),
             "): ", e.what());
    } catch (const nlohmann::json::out_of_range& e) {
        // "number overflow parsing '1e999'": name the field and where it is
        const std::string what = e.what();
        const std::string open = "parsing '";
        const auto a = what.find(open);
        const auto b = a == std::string::npos ? a : what.find('\'', a + open.size());
        if (b != std::string::npos) {
            const std::string literal = what.substr(a + open.size(), b - a - open.size());
            std::size_t pos = 0;
            const std::string path = detail::path_of_number(text, literal, pos);
            if (!path.empty())
                fail(source, ": malformed JSON: ", path, " is ", literal, " (byte ", pos + 1, ", ",
                     detail::line_column(text, pos),
                     "), beyond the range of a double (about 1.8e308)");
        }
        fail(source, ": malformed JSON: ", what);
    } catch (const nlohmann::json::exception& e) {
        fail(source, ": malformed JSON: ", e.what());
    }
}

/// @brief Reads and parses a JSON file; errors name the path (and the byte for syntax errors).
inline nlohmann::json read_json_file(const std::string& path) { return parse_json_text(read_text_file(path), path); }

/// @brief Writes `text` to `path + ".tmp"`, then renames it onto `path`.
inline void write_atomically(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    {
        errno = 0;
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out)
            fail(path, ": cannot open ", tmp, " for writing (",
                 std::error_code(errno, std::generic_category()).message(), ")");
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        out.close();
        if (!out) {
            const int e = errno; // the stream keeps no reason; the failed write() set errno
            std::error_code ignore;
            std::filesystem::remove(tmp, ignore);
            fail(path, ": writing ", tmp, " failed (",
                 e ? std::error_code(e, std::generic_category()).message()
                   : std::string("disk full or file too large?"),
                 "); ", path, " is unchanged");
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::error_code ignore;
        std::filesystem::remove(tmp, ignore);
        fail(path, ": cannot rename ", tmp, " onto it: ", ec.message());
    }
}

/// @brief Builds a dataset from COCO instances JSON ("images", "annotations", optional
/// "categories"). Boxes become xyxy, continuous, original px; images keep file order.
/// An annotation's "area" (optional; a finite number >= 0, px^2, kept as is when its box
/// is clipped) goes to image_record::areas: when no annotation of the file has one, every
/// `areas` is left empty; otherwise they are parallel to the boxes, -1 where absent.
/// Boxes crossing the image border by <= `border_tolerance` px are clipped (counted in
/// `report->clipped`); boxes with w == 0 or h == 0 are kept (counted in `degenerate`).
/// An annotation's "segmentation" (optional) goes to image_record::segments, as "area"
/// does to `areas`: when no annotation has a mask (none has the member, or all are [], as
/// in many converted files), every `segments` is left empty; otherwise they are parallel
/// to the boxes, empty() where absent or []. Its forms: polygons (each
/// an even count >= 6 of finite numbers, original px), an uncompressed RLE {"size":
/// [h, w], "counts": [runs]} or a compressed one {"size": [h, w], "counts": "..."}; an
/// RLE's size must be the image's [height, width] and its runs must sum to h * w. A
/// polygon vertex outside the image by more than `border_tolerance` px is an error, as a
/// box edge is; within it the vertex is kept unchanged (a box is clipped, but the mask of
/// a polygon is its part inside the image anyway, as COCO rasterizes it).
/// When "categories" is absent or empty, category ids are not checked.
/// @param source name used in messages (usually the file path)
/// @throws snip::error naming source, field path and value on any malformed input.
inline dataset parse_coco(const nlohmann::json& j, const std::string& source,
                          load_report* report = nullptr, double border_tolerance = 1.0) {
    using namespace detail;
    const std::string& src = source;
    const double tol = border_tolerance;
    check_tolerance(tol, src);
    if (report) *report = load_report{};
    warner warn(report);
    if (!j.is_object())
        fail(src, ": top level is ", j.type_name(),
             ", must be an object with \"images\" and \"annotations\" arrays");
    const json& images = top_array(j, "images", src);
    const json& anns = top_array(j, "annotations", src);
    if (images.empty()) fail(src, ": \"images\" is an empty array: no images");

    dataset ds;
    ds.source = source;

    // categories (optional)
    std::unordered_map<std::int64_t, std::size_t> cat_index;
    if (const json* cats = member(j, "categories")) {
        if (!cats->is_array()) fail(src, ": \"categories\" is ", show(*cats), ", must be an array");
        ds.categories.reserve(cats->size());
        for (std::size_t i = 0; i < cats->size(); ++i) {
            const at p{"categories", i};
            const json& c = object_at(*cats, src, p);
            const json& idv = need(c, "id", src, p, "an integer");
            const auto id = integer(idv, src, p.with("id"), "an integer (int range)",
                                    std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
            if (auto [it, fresh] = cat_index.emplace(id, i); !fresh)
                fail(src, ": ", p.with("id").str(), " is ", id, ", duplicate of categories[",
                     it->second, "].id");
            category cat;
            cat.id = static_cast<int>(id);
            if (const json* name = member(c, "name")) {
                if (!name->is_string()) bad_value(src, p.with("name"), *name, "a string");
                cat.name = name->get<std::string>();
            }
            ds.categories.push_back(std::move(cat));
        }
    }
    const bool check_categories = !cat_index.empty();

    // images, in file order
    std::unordered_map<std::int64_t, std::size_t> image_index;
    image_index.reserve(images.size());
    ds.images.resize(images.size());
    for (std::size_t i = 0; i < images.size(); ++i) {
        const at p{"images", i};
        const json& im = object_at(images, src, p);
        image_record& rec = ds.images[i];
        rec.id = integer(need(im, "id", src, p, "an integer"), src, p.with("id"));
        if (auto [it, fresh] = image_index.emplace(rec.id, i); !fresh)
            fail(src, ": ", p.with("id").str(), " is ", rec.id, ", duplicate of images[", it->second,
                 "].id");
        constexpr std::string_view side = "an integer > 0 (px)";
        rec.width = static_cast<int>(integer(need(im, "width", src, p, side), src, p.with("width"),
                                             side, 1, std::numeric_limits<int>::max()));
        rec.height = static_cast<int>(integer(need(im, "height", src, p, side), src,
                                              p.with("height"), side, 1,
                                              std::numeric_limits<int>::max()));
        if (const json* fn = member(im, "file_name")) {
            if (!fn->is_string()) bad_value(src, p.with("file_name"), *fn, "a string");
            rec.file_name = fn->get<std::string>();
        }
    }

    // annotations, grouped onto their image in file order
    std::unordered_map<std::int64_t, std::size_t> ann_index;
    ann_index.reserve(anns.size());
    std::size_t crowd = 0, degenerate = 0, clipped = 0;
    bool any_area = false, any_segmentation = false;
    for (std::size_t i = 0; i < anns.size(); ++i) {
        const at p{"annotations", i};
        const json& a = object_at(anns, src, p);
        const auto id = integer(need(a, "id", src, p, "an integer"), src, p.with("id"));
        if (auto [it, fresh] = ann_index.emplace(id, i); !fresh)
            fail(src, ": ", p.with("id").str(), " is ", id, ", duplicate of annotations[", it->second,
                 "].id");
        const json& imv = need(a, "image_id", src, p, "an integer");
        const auto image_id = integer(imv, src, p.with("image_id"));
        const auto found = image_index.find(image_id);
        if (found == image_index.end())
            fail(src, ": ", p.with("image_id").str(), " is ", image_id, ", but no image has this id");
        image_record& rec = ds.images[found->second];
        const json& cv = need(a, "category_id", src, p, "an integer");
        const auto cat = integer(cv, src, p.with("category_id"), "an integer (int range)",
                                 std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
        if (check_categories && !cat_index.count(cat))
            fail(src, ": ", p.with("category_id").str(), " is ", cat,
                 ", which is not an id in \"categories\"");
        std::uint8_t is_crowd = 0;
        if (const json* c = member(a, "iscrowd")) {
            if (c->is_boolean()) is_crowd = c->get<bool>() ? 1 : 0;
            else is_crowd = static_cast<std::uint8_t>(integer(*c, src, p.with("iscrowd"), "0 or 1", 0, 1));
        }
        double area = -1; // none: w * h
        if (const json* av = member(a, "area")) {
            constexpr std::string_view must = "a finite number >= 0 (px^2)";
            if (!av->is_number()) bad_value(src, p.with("area"), *av, must);
            area = av->get<double>();
            if (!(std::isfinite(area) && area >= 0)) bad_value(src, p.with("area"), *av, must);
            any_area = true;
        }
        const read_box rb = read_bbox(a, src, p, {rec.id, rec.width, rec.height}, tol);
        if (rb.degenerate) {
            ++degenerate;
            warn.add([&] {
                return snip::concat(src, ": ", p.with("bbox").str(), " is ", show(a["bbox"]),
                                            ": zero width or height (degenerate box), kept");
            });
        }
        if (rb.overshoot > 0) {
            ++clipped;
            warn.add([&] {
                return snip::concat(src, ": ", p.with("bbox").str(), " is ", show(a["bbox"]),
                                            ": crosses the border of image ", rec.id, " (", rec.width,
                                            " x ", rec.height, ") by ", rb.overshoot, " px (tolerance ",
                                            tol, " px), clipped");
            });
        }
        crowd += is_crowd;
        rec.boxes.push_back(rb.xyxy);
        rec.ann_ids.push_back(id);
        rec.categories.push_back(static_cast<int>(cat));
        rec.crowd.push_back(is_crowd);
        rec.areas.push_back(area);
        if (const json* sv = member(a, "segmentation")) {
            rec.segments.push_back(
                read_segmentation(*sv, src, p, {rec.id, rec.width, rec.height}, tol));
            any_segmentation = any_segmentation || !rec.segments.back().empty();
        } else {
            rec.segments.emplace_back();
        }
    }
    if (!any_area)
        for (image_record& rec : ds.images) rec.areas = {};
    if (!any_segmentation)
        for (image_record& rec : ds.images)
            rec.segments = {};

    if (report) {
        report->images = ds.images.size();
        report->boxes = anns.size();
        report->crowd = crowd;
        report->degenerate = degenerate;
        report->clipped = clipped;
    }
    warn.finish();
    return ds;
}

/// @brief Reads a COCO instances JSON file; see parse_coco.
/// @throws snip::error for a missing/unreadable file, malformed JSON (with the byte
/// position) or any content error (with the field path and value).
inline dataset read_coco(const std::string& path, load_report* report = nullptr,
                         double border_tolerance = 1.0) {
    return parse_coco(read_json_file(path), path, report, border_tolerance);
}

/// @brief Proposals in COCO results format, `[{"image_id": 42, "bbox": [x, y, w, h],
/// "score": 0.9}, ...]` (or `{"proposals": [...]}`); category_id and other fields are
/// ignored. Returns one image_proposals per `ds.images` entry, same order; each keeps
/// the file order. Boxes become xyxy, continuous, original px, clipped to the image when
/// they cross its border by <= `border_tolerance` px. A missing score is 1.0.
/// @throws snip::error naming source, field path and value.
inline std::vector<image_proposals> parse_proposals(const nlohmann::json& j, const std::string& source,
                                                    const dataset& ds, double border_tolerance = 1.0) {
    using namespace detail;
    const std::string& src = source;
    const double tol = border_tolerance;
    check_tolerance(tol, src);
    const json* list = &j;
    std::string_view array_name;
    if (j.is_object()) {
        const json* p = member(j, "proposals");
        if (!p) fail(src, ": top level is an object without a \"proposals\" array");
        if (!p->is_array()) fail(src, ": \"proposals\" is ", show(*p), ", must be an array");
        list = p;
        array_name = "proposals";
    } else if (!j.is_array()) {
        fail(src, ": top level is ", j.type_name(),
             ", must be an array of {\"image_id\", \"bbox\", \"score\"} or {\"proposals\": [...]}");
    }

    std::unordered_map<std::int64_t, std::size_t> image_index;
    image_index.reserve(ds.images.size());
    for (std::size_t i = 0; i < ds.images.size(); ++i) image_index.emplace(ds.images[i].id, i);

    std::vector<image_proposals> out(ds.images.size());
    for (std::size_t i = 0; i < list->size(); ++i) {
        const at p{array_name, i};
        const json& o = object_at(*list, src, p);
        const auto image_id = integer(need(o, "image_id", src, p, "an integer"), src, p.with("image_id"));
        const auto found = image_index.find(image_id);
        if (found == image_index.end())
            fail(src, ": ", p.with("image_id").str(), " is ", image_id, ", but no image of ",
                 ds.source.empty() ? std::string("the dataset") : ds.source, " has this id");
        const image_record& rec = ds.images[found->second];
        const read_box rb = read_bbox(o, src, p, {rec.id, rec.width, rec.height}, tol);
        double score = 1.0;
        if (const json* s = member(o, "score")) {
            score = finite_number(*s, src, p.with("score"));
            if (std::fabs(score) > std::numeric_limits<float>::max())
                bad_value(src, p.with("score"), *s, "a number a float holds (|score| <= 3.4e38)");
        }
        out[found->second].boxes.push_back(rb.xyxy);
        out[found->second].scores.push_back(static_cast<float>(score));
    }
    return out;
}

/// @brief Reads a proposals file; see parse_proposals.
inline std::vector<image_proposals> read_proposals(const std::string& path, const dataset& ds,
                                                   double border_tolerance = 1.0) {
    return parse_proposals(read_json_file(path), path, ds, border_tolerance);
}

namespace detail {

/// @brief One segmentation as COCO JSON: polygons as lists of numbers, an RLE compressed
/// ({"size": [h, w], "counts": "..."}), no mask as []. `what` names it in messages.
/// @throws snip::error for a non-finite vertex, a polygon of an odd count or < 3 vertices,
/// an RLE whose size is not [height, width] or whose runs do not sum to height * width.
inline nlohmann::json segmentation_json(const mask::segmentation& seg, const std::string& what,
                                        int height, int width) {
    using json = nlohmann::json;
    if (seg.is_polygons()) {
        json polys = json::array();
        for (std::size_t j = 0; j < seg.polygons.size(); ++j) {
            const mask::polygon& poly = seg.polygons[j];
            require(poly.size() % 2 == 0 && poly.size() >= 6, what, " polygon ", j, " has ",
                    poly.size(), " numbers, must be an even count >= 6 (>= 3 x, y pairs)");
            for (std::size_t k = 0; k < poly.size(); ++k)
                require(std::isfinite(poly[k]), what, " polygon ", j, " value ", k, " is ", poly[k],
                        ", must be a finite number");
            polys.push_back(poly);
        }
        return polys;
    }
    if (seg.is_rle()) {
        const mask::rle& r = seg.mask;
        require(r.height == height && r.width == width, what, " has an RLE of size [", r.height,
                ", ", r.width, "], must be [", height, ", ", width,
                "] (the image's [height, width])");
        mask::check(r, what);
        return {{"size", {r.height, r.width}}, {"counts", mask::to_string(r)}};
    }
    return json::array();
}

} // namespace detail

/// @brief The inverse of parse_coco: "images" (id, width, height, file_name),
/// "annotations" (id, image_id, category_id, bbox [x, y, w, h] original px, area =
/// image_record::area(k): the kept "area" when there is one, else w * h, iscrowd, and
/// "segmentation" when the image's `segments` is not empty: polygons as lists, an RLE
/// compressed, no mask as []) and, when the dataset has any, "categories" (id, name).
/// parse_coco(to_coco_json(ds)) gives `ds` back (polygons, RLEs and all; a dataset whose
/// segmentations are all empty() reads back with empty `segments`, which means the same).
/// @throws snip::error when an image's per-box arrays differ in length (`areas` and
/// `segments` may be empty), a box is non-finite or inverted, an area is not finite, or a
/// segmentation is malformed (see detail::segmentation_json).
inline nlohmann::json to_coco_json(const dataset& ds) {
    using json = nlohmann::json;
    const std::string src = ds.source.empty() ? std::string("dataset") : ds.source;
    json images = json::array();
    json anns = json::array();
    for (std::size_t i = 0; i < ds.images.size(); ++i) {
        const image_record& im = ds.images[i];
        const std::size_t n = im.boxes.size();
        require(im.ann_ids.size() == n && im.categories.size() == n && im.crowd.size() == n &&
                    (im.areas.empty() || im.areas.size() == n),
                src, ": images[", i, "] (id ", im.id, ") has ", n, " boxes but ", im.ann_ids.size(),
                " ann_ids, ", im.categories.size(), " categories, ", im.crowd.size(), " crowd flags and ",
                im.areas.size(), " areas; they must be parallel (areas may be empty)");
        require(im.segments.empty() || im.segments.size() == n, src, ": images[", i, "] (id ",
                im.id, ") has ", n, " boxes but ", im.segments.size(),
                " segments; they must be parallel (or segments empty)");
        images.push_back({{"id", im.id},
                          {"width", im.width},
                          {"height", im.height},
                          {"file_name", im.file_name}});
        for (std::size_t k = 0; k < n; ++k) {
            const box<double>& b = im.boxes[k];
            const double w = b.width(), h = b.height();
            require(std::isfinite(b.x1) && std::isfinite(b.y1) && std::isfinite(w) && std::isfinite(h) &&
                        w >= 0 && h >= 0,
                    src, ": images[", i, "] (id ", im.id, ") box ", k, " [", b.x1, ", ", b.y1, ", ",
                    b.x2, ", ", b.y2, "] is not a finite xyxy box with x2 >= x1, y2 >= y1");
            if (!im.areas.empty() && !std::isfinite(im.areas[k]))
                fail(src, ": images[", i, "] (id ", im.id, ") box ", k, " has area ", im.areas[k],
                     ", must be a finite number (< 0: none, w * h)");
            json a = {{"id", im.ann_ids[k]},
                      {"image_id", im.id},
                      {"category_id", im.categories[k]},
                      {"bbox", {b.x1, b.y1, w, h}},
                      {"area", im.area(k)},
                      {"iscrowd", static_cast<int>(im.crowd[k])}};
            if (!im.segments.empty())
                a["segmentation"] = detail::segmentation_json(
                    im.segments[k], snip::concat(src, ": images[", i, "] (id ", im.id, ") box ", k),
                    im.height, im.width);
            anns.push_back(std::move(a));
        }
    }
    json j = json::object();
    j["images"] = std::move(images);
    j["annotations"] = std::move(anns);
    if (!ds.categories.empty()) {
        json cats = json::array();
        for (const category& c : ds.categories) cats.push_back({{"id", c.id}, {"name", c.name}});
        j["categories"] = std::move(cats);
    }
    return j;
}

/// @brief Writes to_coco_json(ds) to `path` atomically: first `path + ".tmp"`, then a
/// rename, so a reader never sees a half-written file.
/// @throws snip::error naming the path when the file cannot be written.
inline void write_coco(const dataset& ds, const std::string& path) {
    write_atomically(path, to_coco_json(ds).dump());
}

} // namespace snip::io
