// image.cpp: image decoding and crop-resize (declared in snip/train/image.hpp).
#include <snip/train/image.hpp>

namespace snip::train {

namespace detail {

axis_plan plan_axis(double origin, double scale, int n, int src_n, bool reverse) {
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

void resample_row(const image& src, int y, const axis_plan& xs, float* out) {
    const std::uint8_t* r = src.row(y);
    for (int x = xs.first; x < xs.last; ++x) {
        const axis_tap& t = xs.taps[std::size_t(x)];
        const std::uint8_t* a = r + 3 * t.i0;
        const std::uint8_t* b = r + 3 * t.i1;
        for (int c = 0; c < 3; ++c) {
            const float va = float(a[c]);
            out[3 * x + c] = va + t.w1 * (float(b[c]) - va);
        }
    }
}

} // namespace detail

void crop_resize(const image& src, const snip::box<double>& crop, int out_w, int out_h, bool flip,
                 chw_view dst, const normalisation& norm) {
    float a[3], b[3];
    for (int c = 0; c < 3; ++c) {
        a[c] = 1.f / (255.f * norm.std[std::size_t(c)]);
        b[c] = -norm.mean[std::size_t(c)] / norm.std[std::size_t(c)];
    }
    auto plane_row = [&](int c, int y) {
        return dst.data + c * dst.plane_stride + std::ptrdiff_t(y) * dst.row_stride;
    };
    auto pad = [&](int y) {
        for (int c = 0; c < 3; ++c)
            std::fill_n(plane_row(c, y), out_w, 0.f);
    };
    auto emit = [&](int y, const detail::axis_plan& xs, const float* r0, const float* r1,
                    float w1) {
        float* o[3] = {plane_row(0, y), plane_row(1, y), plane_row(2, y)};
        for (int c = 0; c < 3; ++c) {
            std::fill(o[c], o[c] + xs.first, 0.f);
            std::fill(o[c] + xs.last, o[c] + out_w, 0.f);
        }
        for (int x = xs.first; x < xs.last; ++x)
            for (int c = 0; c < 3; ++c) {
                const float v0 = r0[3 * x + c];
                o[c][x] = (v0 + w1 * (r1[3 * x + c] - v0)) * a[c] + b[c];
            }
    };
    detail::resample(src, crop, out_w, out_h, flip, emit, pad);
}

void crop_resize(const image& src, const snip::box<double>& crop, int out_w, int out_h, bool flip,
                 hwc_view dst) {
    auto pad = [&](int y) {
        std::fill_n(dst.data + std::ptrdiff_t(y) * dst.row_stride, 3 * out_w, std::uint8_t(0));
    };
    auto emit = [&](int y, const detail::axis_plan& xs, const float* r0, const float* r1,
                    float w1) {
        std::uint8_t* o = dst.data + std::ptrdiff_t(y) * dst.row_stride;
        std::fill(o, o + 3 * xs.first, std::uint8_t(0));
        std::fill(o + 3 * xs.last, o + 3 * out_w, std::uint8_t(0));
        for (int i = 3 * xs.first; i < 3 * xs.last; ++i) {
            const float v = r0[i] + w1 * (r1[i] - r0[i]);
            o[i] = std::uint8_t(std::min(255.f, std::max(0.f, v + 0.5f)));
        }
    };
    detail::resample(src, crop, out_w, out_h, flip, emit, pad);
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
