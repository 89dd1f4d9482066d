// snip: SNIP/SNIPER multi-scale training primitives.
// sniper/crop.hpp: a chip's pixels, cut from the ORIGINAL image in one bilinear pass (the
// scaled image is never materialised), for any pixel type and memory layout.
//
// Pixel convention: a pixel is a unit square; pixel i covers the continuous interval
// [i, i + 1) and its centre is i + 0.5. A crop box [x1, x2] in original pixels is resampled
// to `out_w` pixels with sx = (x2 - x1) / out_w original px per output px: output pixel x
// (centre x + 0.5) reads the original at the continuous coordinate u = x1 + (x + 0.5) * sx,
// i.e. at pixel-index coordinate u - 0.5, bilinearly between the two nearest pixel centres,
// clamped to the first / last pixel at the border (OpenCV's INTER_LINEAR convention, and
// what resizing the whole image by 1/sx and then cropping at x1/sx gives). An output pixel
// whose centre falls outside [0, width) x [0, height) of the original is 0 in the
// destination (black for 8-bit, the mean colour for normalised floats).
//
//   snip::image_view<const std::uint8_t> src = snip::image_view<const std::uint8_t>::interleaved(px, w, h, 3);
//   std::vector<float> chw(3 * 512 * 512);
//   auto dst = snip::image_view<float>::planar(chw.data(), 512, 512, 3);
//   snip::cut_chip(src, cfg, chip, /*flip=*/false, dst, snip::pixel_transform::normalise(mean, std));
#pragma once

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/sniper/plan.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

namespace snip {

/// @brief A strided image: channel c of pixel (x, y) is
/// data[y * row_stride + x * pixel_stride + c * channel_stride] (strides in elements).
/// T may be const (a source) or not (a destination). The view never owns its pixels.
template <class T>
struct image_view {
    T* data = nullptr;
    int width = 0;
    int height = 0;
    int channels = 0;
    std::ptrdiff_t row_stride = 0;
    std::ptrdiff_t pixel_stride = 0;
    std::ptrdiff_t channel_stride = 0;

    /// Channels interleaved, rows packed (HWC: stb_image, OpenCV, PIL).
    static image_view interleaved(T* data, int width, int height, int channels) {
        return {data, width, height, channels, std::ptrdiff_t(width) * channels, channels, 1};
    }
    /// One plane per channel, rows packed (CHW: a network's input tensor).
    static image_view planar(T* data, int width, int height, int channels) {
        return {data, width, height, channels, width, 1, std::ptrdiff_t(width) * height};
    }
    T& at(int x, int y, int c) const {
        return data[std::ptrdiff_t(y) * row_stride + std::ptrdiff_t(x) * pixel_stride +
                    std::ptrdiff_t(c) * channel_stride];
    }
    bool empty() const { return data == nullptr || width <= 0 || height <= 0 || channels <= 0; }
};

/// @brief What a resampled value v (in the source's units) becomes in the destination:
/// v * scale[c] + offset[c] per channel c (empty vectors: v unchanged). Integral
/// destinations then round to nearest and clamp to their range.
struct pixel_transform {
    std::vector<float> scale;
    std::vector<float> offset;

    /// (v / max_value - mean[c]) / std[c]: a network's input normalisation (torchvision's
    /// ImageNet statistics are mean {0.485, 0.456, 0.406}, std {0.229, 0.224, 0.225} for
    /// 8-bit RGB, max_value 255).
    static pixel_transform normalise(const std::vector<float>& mean, const std::vector<float>& std,
                                     float max_value = 255.f) {
        require(mean.size() == std.size(), "pixel_transform: ", mean.size(), " means but ",
                std.size(), " standard deviations");
        pixel_transform t;
        for (std::size_t c = 0; c < mean.size(); ++c) {
            require(std::isfinite(std[c]) && std[c] > 0 && std::isfinite(mean[c]),
                    "pixel_transform: channel ", c, " needs a finite mean and a std > 0, got mean ",
                    mean[c], ", std ", std[c]);
            t.scale.push_back(1.f / (max_value * std[c]));
            t.offset.push_back(-mean[c] / std[c]);
        }
        return t;
    }
};

namespace detail {

/// Where one output pixel reads along one axis: the two source pixels and the weight of
/// the second.
struct axis_tap {
    int i0 = 0;
    int i1 = 0;
    float w1 = 0.f;
};

/// The taps of `n` output pixels along an axis of `src_n` source pixels for a crop that
/// starts at `origin` (original px) with `scale` original px per output px; `reverse`
/// mirrors the axis. Output pixels [first, last) are inside the image (a contiguous range,
/// possibly empty); the others are padding.
struct axis_plan {
    std::vector<axis_tap> taps;
    int first = 0;
    int last = 0;
};

inline axis_plan plan_axis(double origin, double scale, int n, int src_n, bool reverse) {
    axis_plan p;
    p.taps.resize(std::size_t(n));
    p.first = n;
    p.last = 0;
    for (int k = 0; k < n; ++k) {
        const int j = reverse ? n - 1 - k : k;
        const double u = origin + (j + 0.5) * scale; // continuous coordinate of the centre
        if (!(u >= 0.0 && u < double(src_n))) continue;
        p.first = std::min(p.first, k);
        p.last = std::max(p.last, k + 1);
        const double s = u - 0.5; // pixel-index coordinate, in [-0.5, src_n - 0.5)
        const double f = std::floor(s);
        int i0 = int(f);
        float w1 = float(s - f);
        int i1 = i0 + 1;
        if (i0 < 0) {
            i0 = i1 = 0;
            w1 = 0.f;
        } else if (i1 > src_n - 1) {
            i0 = i1 = src_n - 1;
            w1 = 0.f;
        }
        p.taps[std::size_t(k)] = {i0, i1, w1};
    }
    if (p.first >= p.last) p.first = p.last = 0;
    return p;
}

template <class D>
D store_value(float v) {
    if constexpr (std::is_floating_point_v<D>) {
        return D(v);
    } else {
        constexpr float lo = float(std::numeric_limits<D>::min());
        constexpr float hi = float(std::numeric_limits<D>::max());
        return D(std::min(hi, std::max(lo, v + 0.5f)));
    }
}

} // namespace detail

/// @brief Resamples the crop box `crop` (ORIGINAL px, xyxy continuous; may extend beyond
/// the image, see the convention at the top of this file) of `src` to the whole of `dst`
/// in one bilinear pass and writes v * scale + offset (pixel_transform) into it.
/// @param flip mirror the result horizontally (output column x shows what column
///        dst.width - 1 - x shows unflipped).
/// @throws snip::error on an empty source or destination, different channel counts, a
/// non-finite or empty crop, or a transform with a channel count other than the images'.
template <class S, class D>
void crop_resize(const image_view<S>& src, const box<double>& crop, const image_view<D>& dst,
                 bool flip = false, const pixel_transform& transform = {}) {
    static_assert(!std::is_const_v<D>, "crop_resize: the destination view must be writable");
    require(!src.empty(), "crop_resize: the source image is empty (", src.width, " x ",
            src.height, " x ", src.channels, ")");
    require(dst.width > 0 && dst.height > 0 && dst.channels > 0,
            "crop_resize: the output size must be positive, got ", dst.width, " x ", dst.height,
            " x ", dst.channels);
    require(dst.data != nullptr, "crop_resize: the destination has no pixels");
    require(src.channels == dst.channels, "crop_resize: the source has ", src.channels,
            " channels, the destination ", dst.channels);
    require(std::isfinite(crop.x1) && std::isfinite(crop.y1) && std::isfinite(crop.x2) &&
                std::isfinite(crop.y2) && crop.x2 > crop.x1 && crop.y2 > crop.y1,
            "crop_resize: the crop box must be finite and non-empty, got [", crop.x1, ", ",
            crop.y1, ", ", crop.x2, ", ", crop.y2, "]");
    const int nc = src.channels;
    const bool scaled = !transform.scale.empty() || !transform.offset.empty();
    require(!scaled || (transform.scale.size() == std::size_t(nc) &&
                        transform.offset.size() == std::size_t(nc)),
            "crop_resize: the pixel transform has ", transform.scale.size(), " scales and ",
            transform.offset.size(), " offsets for ", nc, " channels");
    const int out_w = dst.width, out_h = dst.height;
    const detail::axis_plan xs =
        detail::plan_axis(crop.x1, crop.width() / out_w, out_w, src.width, flip);
    const detail::axis_plan ys =
        detail::plan_axis(crop.y1, crop.height() / out_h, out_h, src.height, false);

    // Two horizontally resampled source rows (channels interleaved); each source row is
    // resampled at most once while consecutive output rows use it.
    const std::size_t row_len = std::size_t(out_w) * std::size_t(nc);
    std::vector<float> buf(row_len * 2, 0.f);
    float* rows[2] = {buf.data(), buf.data() + row_len};
    int held[2] = {-1, -1};
    auto resample_row = [&](int y, float* out) {
        const S* r = src.data + std::ptrdiff_t(y) * src.row_stride;
        for (int x = xs.first; x < xs.last; ++x) {
            const detail::axis_tap& t = xs.taps[std::size_t(x)];
            const S* a = r + std::ptrdiff_t(t.i0) * src.pixel_stride;
            const S* b = r + std::ptrdiff_t(t.i1) * src.pixel_stride;
            float* o = out + std::size_t(x) * std::size_t(nc);
            for (int c = 0; c < nc; ++c) {
                const float va = float(a[c * src.channel_stride]);
                o[c] = va + t.w1 * (float(b[c * src.channel_stride]) - va);
            }
        }
    };
    auto get = [&](int sy, int keep) -> const float* {
        for (int k = 0; k < 2; ++k)
            if (held[k] == sy) return rows[k];
        const int k = held[0] == keep ? 1 : held[1] == keep ? 0 : (held[0] < held[1] ? 0 : 1);
        resample_row(sy, rows[k]);
        held[k] = sy;
        return rows[k];
    };
    auto pad = [&](D* row, int x0, int x1) {
        for (int x = x0; x < x1; ++x)
            for (int c = 0; c < nc; ++c)
                row[std::ptrdiff_t(x) * dst.pixel_stride + c * dst.channel_stride] = D(0);
    };
    for (int y = 0; y < out_h; ++y) {
        D* row = dst.data + std::ptrdiff_t(y) * dst.row_stride;
        if (y < ys.first || y >= ys.last) {
            pad(row, 0, out_w);
            continue;
        }
        const detail::axis_tap& t = ys.taps[std::size_t(y)];
        const float* r0 = get(t.i0, t.i1);
        const float* r1 = t.i1 == t.i0 ? r0 : get(t.i1, t.i0);
        pad(row, 0, xs.first);
        pad(row, xs.last, out_w);
        for (int c = 0; c < nc; ++c) {
            const float a = scaled ? transform.scale[std::size_t(c)] : 1.f;
            const float b = scaled ? transform.offset[std::size_t(c)] : 0.f;
            D* o = row + c * dst.channel_stride;
            for (int x = xs.first; x < xs.last; ++x) {
                const std::size_t i = std::size_t(x) * std::size_t(nc) + std::size_t(c);
                const float v0 = r0[i];
                const float v = v0 + t.w1 * (r1[i] - v0);
                o[std::ptrdiff_t(x) * dst.pixel_stride] =
                    detail::store_value<D>(scaled ? v * a + b : v);
            }
        }
    }
}

/// @brief Where a chip's pixels come from and where they go.
struct chip_geometry {
    int width = 0;     ///< content width in the chip, px (<= chip_size)
    int height = 0;    ///< content height, px (<= chip_size)
    box<double> crop;  ///< the same region in ORIGINAL px (continuous), for crop_resize
};

/// @brief The geometry of chip `c` for chips of side `chip_size` under convention `conv`:
/// scaled pixels [x1, x2 + e) x [y1, y2 + e) (e = 1 inclusive, 0 continuous), capped at
/// chip_size (the original layout's corner chips one pixel longer than a chip lose that
/// pixel), mapped to original pixels by the chip's exact factor - the same mapping as its
/// ground truth (assign_chip).
/// @throws snip::error for an empty chip or a factor <= 0.
inline chip_geometry chip_crop(const chip& c, int chip_size, pixel_convention conv) {
    const int e = conv == pixel_convention::inclusive ? 1 : 0;
    chip_geometry g;
    g.width = std::min(chip_size, c.rect.x2 - c.rect.x1 + e);
    g.height = std::min(chip_size, c.rect.y2 - c.rect.y1 + e);
    require(g.width > 0 && g.height > 0 && c.factor > 0, "chip [", c.rect.x1, ", ", c.rect.y1,
            ", ", c.rect.x2, ", ", c.rect.y2, "] at factor ", c.factor, " is empty");
    g.crop = {c.rect.x1 / c.factor, c.rect.y1 / c.factor, (c.rect.x1 + g.width) / c.factor,
              (c.rect.y1 + g.height) / c.factor};
    return g;
}

/// @brief Cuts chip `c` of a plan made with `cfg` out of the original image `src` into
/// `dst` (at least cfg.chip_size x cfg.chip_size): the chip's content resampled at the
/// top-left (chip_crop), then v * scale + offset; the rest of the chip_size square is 0 in
/// the destination, like padding. `flip` mirrors the content. Returns the chip's geometry.
/// @throws snip::error as crop_resize, and when `dst` is smaller than the chip.
template <class S, class D>
chip_geometry cut_chip(const image_view<S>& src, const plan_config& cfg, const chip& c, bool flip,
                       const image_view<D>& dst, const pixel_transform& transform = {}) {
    const int s = cfg.chip_size;
    require(dst.width >= s && dst.height >= s, "cut_chip: the destination is ", dst.width, " x ",
            dst.height, ", a chip is ", s, " x ", s);
    const chip_geometry g = chip_crop(c, s, cfg.convention);
    image_view<D> content = dst;
    content.width = g.width;
    content.height = g.height;
    crop_resize(src, g.crop, content, flip, transform);
    for (int y = 0; y < s; ++y)
        for (int x = y < g.height ? g.width : 0; x < s; ++x)
            for (int ch = 0; ch < dst.channels; ++ch) dst.at(x, y, ch) = D(0);
    return g;
}

} // namespace snip
