// image.hpp: decoded RGB images and the one-pass chip resampler of the SNIPER trainer.
//
// Decoding goes through stb_image (and PNG writing through stb_image_write). Their
// implementations are compiled once, in the snip::stb library (src/stb_impl.cpp) that
// snip::trainer links.
//
// Pixel convention of crop_resize: a pixel is a unit square; pixel i covers the
// continuous interval [i, i + 1) and its centre is i + 0.5. A crop box [x1, x2] in
// ORIGINAL-image pixels is resampled to `out_w` pixels, scale sx = (x2 - x1) / out_w
// (original px per output px): output pixel x (centre x + 0.5) reads the original at the
// continuous coordinate u = x1 + (x + 0.5) * sx, i.e. at pixel-index coordinate
// u - 0.5 = (x + 0.5) * sx - 0.5 + x1, bilinearly between the two nearest pixel centres,
// clamped to the first/last pixel at the border (OpenCV's INTER_LINEAR convention, and
// what resizing the whole image by 1/sx and then cropping at x1/sx gives). An output pixel
// whose centre u falls outside [0, width) x [0, height) of the original is 0 in the
// output's space (uint8: black; normalised float: 0, the mean colour).
#pragma once

#include <snip/core/box.hpp>
#include <snip/sniper/crop.hpp>
#include <snip/core/error.hpp>

#include <stb_image.h>

namespace snip::stb {
/// Defined with the stb implementation (src/stb_impl.cpp, library snip::stb).
void reset_failure_reason();
} // namespace snip::stb

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace snip::train {

/// @brief An 8-bit RGB image: `w` x `h` pixels, row-major, channels interleaved (HWC):
/// channel c of pixel (x, y) is px[(y * w + x) * 3 + c].
struct image {
    static constexpr int channels = 3;
    int w = 0;
    int h = 0;
    std::vector<std::uint8_t> px;

    image() = default;
    image(int width, int height)
        : w(width), h(height), px(std::size_t(width) * std::size_t(height) * 3, 0) {}
    std::size_t bytes() const { return px.size(); }
    bool empty() const { return w <= 0 || h <= 0; }
    const std::uint8_t* row(int y) const { return px.data() + std::size_t(y) * std::size_t(w) * 3; }
    std::uint8_t* row(int y) { return px.data() + std::size_t(y) * std::size_t(w) * 3; }
    std::uint8_t at(int x, int y, int c) const { return row(y)[3 * x + c]; }
};

/// @brief The most pixels (width x height) that decode_image accepts unless told otherwise:
/// 2^28 = 268,435,456 (16384 x 16384; the decoded RGB image alone is 768 MiB, and decoding
/// needs about three times that at its peak). A corrupt or hostile file of a few bytes can
/// claim any size up to 2^24 x 2^24 in its header, and stb_image would allocate (up to
/// 2 GiB) and fill the claimed pixels from nothing; decode_image reads the header first
/// (stbi_info_from_memory) and refuses such a file before anything is allocated.
inline constexpr std::int64_t max_image_pixels = std::int64_t(1) << 28;

/// @brief Decodes an encoded image (JPEG, PNG or BMP) held in memory to 8-bit RGB.
/// @param name names the data in error messages (usually its file path).
/// @param max_pixels the largest width x height accepted (max_image_pixels by default),
///        checked against the header before decoding.
/// @throws snip::error naming `name`: empty data, a header claiming more than `max_pixels`
/// pixels (the message gives the claimed size and the limit), a JPEG Huffman table of more
/// than 256 codes (checked before stb_image, which would write past its tables), a
/// truncated JPEG (no end-of-image marker), or anything else stb_image rejects (with its
/// reason).
image decode_image(const std::uint8_t* data, std::size_t size, const std::string& name,
                   std::int64_t max_pixels = max_image_pixels);

/// @brief Reads and decodes an image file (JPEG, PNG or BMP) to 8-bit RGB.
/// @throws snip::error naming the file: missing or unreadable, empty, larger than
/// `max_pixels` (see above), truncated, corrupt.
image decode_image(const std::string& path, std::int64_t max_pixels = max_image_pixels);

/// @brief Per-channel normalisation of a float output: out = (v / 255 - mean) / std for
/// an 8-bit value v, channels in RGB order.
struct normalisation {
    std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
    std::array<float, 3> std{0.229f, 0.224f, 0.225f};

    /// torchvision's ImageNet statistics (the default; what pretrained backbones expect).
    static normalisation imagenet() { return {}; }
    /// The raw 8-bit values as floats, 0..255.
    static normalisation raw() { return {{0.f, 0.f, 0.f}, {1.f / 255, 1.f / 255, 1.f / 255}}; }
};

/// @brief The library's pixel transform for `norm` (8-bit values, max 255).
snip::pixel_transform transform_of(const normalisation& norm);

/// @brief A planar float destination (CHW): channel c of pixel (x, y) is
/// data[c * plane_stride + y * row_stride + x].
struct chw_view {
    float* data = nullptr;
    std::ptrdiff_t row_stride = 0;
    std::ptrdiff_t plane_stride = 0;
};

/// @brief An interleaved 8-bit RGB destination (HWC): channel c of pixel (x, y) is
/// data[y * row_stride + 3 * x + c].
struct hwc_view {
    std::uint8_t* data = nullptr;
    std::ptrdiff_t row_stride = 0;
};


/// @brief Resamples the crop box `crop` (ORIGINAL-image px, xyxy continuous; may extend
/// beyond the image, see the convention at the top of this file) of `src` to `out_w` x
/// `out_h` pixels in one bilinear pass, straight from the original image (the scaled
/// whole image is never materialised), and writes it normalised into the planar float
/// buffer `dst` (only the `out_w` x `out_h` region is written).
/// @param flip mirror the result horizontally (output column x shows what column
///        out_w - 1 - x shows unflipped).
/// @throws snip::error on an empty image, a non-positive output size or an empty crop.
void crop_resize(const image& src, const snip::box<double>& crop, int out_w, int out_h,
                 bool flip, chw_view dst, const normalisation& norm = {});

/// @brief The same resampling written as 8-bit RGB (rounded to nearest) into `dst`.
void crop_resize(const image& src, const snip::box<double>& crop, int out_w, int out_h,
                 bool flip, hwc_view dst);

/// @brief Convenience: the resampled crop as a new 8-bit image.
image crop_resize(const image& src, const snip::box<double>& crop, int out_w, int out_h,
                  bool flip = false);

namespace detail {

/// Forgets stb_image's last failure reason (a thread-local it never clears), so that a
/// failed decode never reports the reason of an earlier one.
inline void reset_stb_failure_reason() { snip::stb::reset_failure_reason(); }

/// True when a JPEG stream (starting with SOI) ends with its end-of-image marker, allowing
/// a little trailing padding (zero bytes, whitespace) as some encoders write.
bool jpeg_has_end_marker(const std::uint8_t* d, std::size_t n);

} // namespace detail

} // namespace snip::train

