// valid_range.hpp: SNIP's valid ranges and the per-scale box filter.
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>

#include <cmath>
#include <limits>
#include <string>

namespace snip {

/// @brief A range of object sizes, measured as sqrt(w * h) in ORIGINAL image pixels:
/// a box is in range when lo <= size < hi (lower bound inclusive, upper exclusive).
/// A negative bound means unbounded (SNIPER writes -1).
struct valid_range {
    double lo = -1.0;
    double hi = -1.0;

    bool has_lo() const { return lo >= 0.0; }
    bool has_hi() const { return hi >= 0.0; }
    bool contains(double size) const {
        return (!has_lo() || size >= lo) && (!has_hi() || size < hi);
    }
    void validate(const std::string& what = "valid range") const {
        require(!std::isnan(lo) && !std::isnan(hi), what, ": bounds must be numbers, got (", lo,
                ",", hi, ")");
        require(!(has_lo() && has_hi()) || lo < hi, what, ": lower bound ", lo,
                " must be below upper bound ", hi);
    }
    std::string to_string() const { return concat("(", lo, ",", hi, ")"); }

    /// @brief Parses "lo,hi" or "(lo,hi)"; -1 for an open end.
    static valid_range parse(const std::string& text, const std::string& what = "valid range") {
        std::string t;
        for (char c : text)
            if (c != '(' && c != ')' && c != ' ') t += c;
        auto comma = t.find(',');
        valid_range r;
        try {
            if (comma == std::string::npos) throw std::invalid_argument("no comma");
            std::size_t p1 = 0, p2 = 0;
            std::string a = t.substr(0, comma), b = t.substr(comma + 1);
            r.lo = std::stod(a, &p1);
            r.hi = std::stod(b, &p2);
            if (p1 != a.size() || p2 != b.size()) throw std::invalid_argument("trailing");
        } catch (const std::exception&) {
            fail(what, ": cannot read valid range '", text, "' (expected lo,hi such as 32,150)");
        }
        r.validate(what);
        return r;
    }
};

/// @brief The size of a box for valid-range tests, in original pixels.
/// `continuous`: w = x2 - x1. `inclusive`: int(x2 - x1), as the original code does.
struct box_size {
    double w = 0, h = 0;
    double sqrt_area() const { return std::sqrt(w * h); }
    double max_side() const { return w > h ? w : h; }
};

template <class T>
box_size size_of(const box<T>& b, pixel_convention conv) {
    double w = double(b.x2) - double(b.x1), h = double(b.y2) - double(b.y1);
    if (conv == pixel_convention::inclusive) {
        w = std::trunc(w);
        h = std::trunc(h);
    }
    return {w, h};
}

/// @brief Everything that decides whether a box is trained on at one scale.
struct scale_filter {
    valid_range range;                                              ///< sqrt(w*h), original px
    double max_side_scaled = std::numeric_limits<double>::infinity(); ///< longer side * factor < this
    double min_side = 0.0;                                          ///< w, h >= this, original px
    double factor = 1.0;                                            ///< the scale's resize factor

    bool accepts(const box_size& s) const {
        if (!(s.w >= 0.0 && s.h >= 0.0)) return false;
        if (s.w < min_side || s.h < min_side) return false;
        if (!range.contains(s.sqrt_area())) return false;
        return s.max_side() < max_side_scaled / factor;
    }
};

} // namespace snip
