// pyramid.hpp: scale specifications and the image size at each scale.
#pragma once

#include <snip/core/error.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace snip {

/// @brief How one level of the image pyramid is sized.
enum class scale_mode {
    factor,     ///< multiply both sides by `factor` (SNIPER's 3.0, 1.667)
    long_side,  ///< resize so the longer side is `long_side` px (SNIPER's "512")
    resolution  ///< SNIPER's (short, max) pairs: short side -> `short_side`, reduced so the
                ///< longer side stays <= `max_side`; short_side <= 0 means long side -> max_side
};

/// @brief One scale of the pyramid.
struct scale_spec {
    scale_mode mode = scale_mode::factor;
    double factor = 1.0;  ///< mode factor
    int long_side = 0;    ///< mode long_side, px
    int short_side = 0;   ///< mode resolution, px (<= 0: unused)
    int max_side = 0;     ///< mode resolution, px (<= 0: unbounded)

    static scale_spec by_factor(double f) { return {scale_mode::factor, f, 0, 0, 0}; }
    static scale_spec by_long_side(int px) { return {scale_mode::long_side, 0.0, px, 0, 0}; }
    static scale_spec by_resolution(int short_px, int max_px) {
        return {scale_mode::resolution, 0.0, 0, short_px, max_px};
    }

    /// @brief Throws snip::error naming the bad value if the spec cannot size an image.
    void validate() const {
        switch (mode) {
        case scale_mode::factor:
            require(std::isfinite(factor) && factor > 0.0,
                    "scale factor must be a finite number > 0, got ", factor);
            break;
        case scale_mode::long_side:
            require(long_side > 0, "long-side scale target must be > 0 px, got ", long_side);
            break;
        case scale_mode::resolution:
            require(short_side > 0 || max_side > 0,
                    "resolution scale needs short side > 0 or max side > 0, got (", short_side,
                    ",", max_side, ")");
            break;
        }
    }

    /// @brief The resize factor for an image of `width` x `height` original pixels,
    /// following the original SNIPER code (including its rounding of the long side).
    double factor_for(int width, int height) const {
        const double lo = width < height ? width : height;
        const double hi = width < height ? height : width;
        switch (mode) {
        case scale_mode::factor: return factor;
        case scale_mode::long_side: return double(long_side) / hi;
        case scale_mode::resolution:
            if (short_side > 0) {
                double s = double(short_side) / lo;
                if (max_side > 0 && std::nearbyint(s * hi) > max_side) s = double(max_side) / hi;
                return s;
            }
            return double(max_side) / hi;
        }
        return factor;
    }

    /// @brief Human-readable form: "3", "512px", "(1400,2000)".
    std::string to_string() const {
        switch (mode) {
        case scale_mode::factor: return concat(factor);
        case scale_mode::long_side: return concat(long_side, "px");
        case scale_mode::resolution: return concat("(", short_side, ",", max_side, ")");
        }
        return {};
    }

    /// @brief Parses "3.0", "1.667", "512px" (long side), "1400,2000" or "(1400,2000)".
    /// @param what names the source (file and field or flag) for the error message.
    static scale_spec parse(const std::string& text, const std::string& what = "scale") {
        std::string t;
        for (char c : text)
            if (c != '(' && c != ')' && c != ' ') t += c;
        auto bad = [&]() -> scale_spec {
            fail(what, ": cannot read scale '", text,
                 "' (expected a factor like 1.667, a long side like 512px, or short,max like "
                 "1400,2000)");
        };
        try {
            std::size_t pos = 0;
            if (auto comma = t.find(','); comma != std::string::npos) {
                int a = std::stoi(t.substr(0, comma), &pos);
                if (pos != comma) return bad();
                std::string rest = t.substr(comma + 1);
                int b = std::stoi(rest, &pos);
                if (pos != rest.size()) return bad();
                auto s = by_resolution(a, b);
                s.validate();
                return s;
            }
            if (t.size() > 2 && t.compare(t.size() - 2, 2, "px") == 0) {
                std::string num = t.substr(0, t.size() - 2);
                int a = std::stoi(num, &pos);
                if (pos != num.size()) return bad();
                auto s = by_long_side(a);
                s.validate();
                return s;
            }
            double f = std::stod(t, &pos);
            if (pos != t.size()) return bad();
            auto s = by_factor(f);
            s.validate();
            return s;
        } catch (const error& e) {
            const std::string m = e.what();
            if (m.rfind(what + ":", 0) == 0) throw;  // already names the source
            fail(what, ": ", m);
        } catch (const std::exception&) {
            return bad();
        }
    }
};

/// @brief An image at one scale: the factor and the scaled size in whole pixels
/// (truncated as the original code does: int(width * factor)).
struct scaled_image {
    double factor = 1.0;
    int width = 0;
    int height = 0;
    double pixels() const { return double(width) * double(height); }
};

/// @brief Sizes an image of `width` x `height` original pixels at one scale.
/// @throws snip::error for an invalid spec (factor <= 0, ...), a non-positive image size,
/// or a scaled size that does not fit an int (an absurd image size).
inline scaled_image scale_image(const scale_spec& s, int width, int height) {
    s.validate();
    require(width > 0 && height > 0, "scale_image: image size must be positive, got ", width, "x",
            height);
    const double f = s.factor_for(width, height);
    const double w = width * f, h = height * f;
    if (!(std::fabs(w) < 2147483648.0 && std::fabs(h) < 2147483648.0))  // message only on failure
        fail("image ", width, " x ", height, " at scale ", s.to_string(), " would be ", w, " x ", h,
             " px, beyond the 2147483647 px an int holds");
    return {f, static_cast<int>(w), static_cast<int>(h)};
}

/// @brief Sizes an image at every scale of a pyramid.
inline std::vector<scaled_image> scale_pyramid(const std::vector<scale_spec>& scales, int width,
                                               int height) {
    std::vector<scaled_image> out;
    out.reserve(scales.size());
    for (const auto& s : scales) out.push_back(scale_image(s, width, height));
    return out;
}

/// @brief Single-scale training size: short side -> `short_side`, long side at most
/// `max_side` (800 x 1333 by default, the usual Faster R-CNN setting).
inline scaled_image single_scale(int width, int height, int short_side = 800,
                                 int max_side = 1333) {
    return scale_image(scale_spec::by_resolution(short_side, max_side), width, height);
}

} // namespace snip
