// image.cpp: image decoding and crop-resize (declared in snip/train/image.hpp).
#include <snip/train/image.hpp>

namespace snip::train {

namespace {

/// The image as the library's view, after the checks the trainer's image type allows.
snip::image_view<const std::uint8_t> view_of(const image& src) {
    snip::require(!src.empty() && src.px.size() == std::size_t(src.w) * std::size_t(src.h) * 3,
                  "crop_resize: the source image is empty or its buffer does not hold ", src.w,
                  " x ", src.h, " RGB pixels");
    return snip::image_view<const std::uint8_t>::interleaved(src.px.data(), src.w, src.h, 3);
}

} // namespace

snip::pixel_transform transform_of(const normalisation& norm) {
    return snip::pixel_transform::normalise({norm.mean.begin(), norm.mean.end()},
                                            {norm.std.begin(), norm.std.end()});
}

void crop_resize(const image& src, const snip::box<double>& crop, int out_w, int out_h, bool flip,
                 chw_view dst, const normalisation& norm) {
    snip::crop_resize(view_of(src), crop,
                      snip::image_view<float>{dst.data, out_w, out_h, 3, dst.row_stride, 1,
                                              dst.plane_stride},
                      flip, transform_of(norm));
}

void crop_resize(const image& src, const snip::box<double>& crop, int out_w, int out_h, bool flip,
                 hwc_view dst) {
    snip::crop_resize(view_of(src), crop,
                      snip::image_view<std::uint8_t>{dst.data, out_w, out_h, 3, dst.row_stride, 3, 1},
                      flip);
}

image crop_resize(const image& src, const snip::box<double>& crop, int out_w, int out_h,
                  bool flip) {
    image out(out_w, out_h);
    crop_resize(src, crop, out_w, out_h, flip, hwc_view{out.px.data(), std::ptrdiff_t(out_w) * 3});
    return out;
}

namespace detail {

bool jpeg_has_end_marker(const std::uint8_t* d, std::size_t n) {
    std::size_t end = n;
    for (std::size_t k = 0; k < 64 && end > 0; ++k) {
        const std::uint8_t c = d[end - 1];
        if (c != 0 && c != '\n' && c != '\r' && c != ' ') break;
        --end;
    }
    return end >= 4 && d[end - 2] == 0xFF && d[end - 1] == 0xD9;
}

} // namespace detail

image decode_image(const std::uint8_t* data, std::size_t size, const std::string& name) {
    snip::require(data != nullptr && size > 0, name, ": cannot decode image: the file is empty");
    snip::require(size <= std::size_t(0x7fffffff), name, ": cannot decode image: ", size,
                  " bytes is more than stb_image reads");
    int w = 0, h = 0, comp = 0;
    detail::reset_stb_failure_reason();
    stbi_uc* px = stbi_load_from_memory(data, int(size), &w, &h, &comp, 3);
    if (!px) {
        const char* why = stbi_failure_reason();
        if (why && !*why) why = nullptr;
        const bool jpeg = size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
        if (jpeg && !detail::jpeg_has_end_marker(data, size))
            snip::fail(name, ": cannot decode image: truncated JPEG (", size,
                       " bytes, no end-of-image marker; decoder: ", why ? why : "unknown error",
                       ")");
        snip::fail(name, ": cannot decode image: corrupt or unsupported data (", size,
                   " bytes; decoder: ", why ? why : "unknown error", ")");
    }
    image out;
    out.w = w;
    out.h = h;
    out.px.assign(px, px + std::size_t(w) * std::size_t(h) * 3);
    stbi_image_free(px);
    return out;
}

image decode_image(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const std::error_code ec(errno, std::generic_category());
        snip::fail(path, ": cannot open image file (", ec.message(), ")");
    }
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                    std::istreambuf_iterator<char>());
    if (in.bad()) snip::fail(path, ": reading the image file failed");
    return decode_image(bytes.data(), bytes.size(), path);
}

} // namespace snip::train
