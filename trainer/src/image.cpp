// image.cpp: image decoding and crop-resize (declared in snip/train/image.hpp).
#include <snip/train/image.hpp>

#include <cstdlib>
#include <cstring>
#include <string>

namespace snip::train {

namespace {

/// The image as the library's view, after the checks the trainer's image type allows.
snip::image_view<const std::uint8_t> view_of(const image& src) {
    snip::require(!src.empty() && src.px.size() == std::size_t(src.w) * std::size_t(src.h) * 3,
                  "crop_resize: the source image is empty or its buffer does not hold ", src.w,
                  " x ", src.h, " RGB pixels");
    return snip::image_view<const std::uint8_t>::interleaved(src.px.data(), src.w, src.h, 3);
}

/// Where a JPEG starts for stb_image: just after its SOI marker, which may follow 0xFF fill
/// bytes; 0 when the data is not a JPEG to stb.
std::size_t jpeg_body(const std::uint8_t* d, std::size_t n) {
    std::size_t i = 0;
    while (i < n && d[i] == 0xFF)
        ++i;
    return i > 0 && i < n && d[i] == 0xD8 ? i + 1 : 0;
}

/// What walk_jpeg found.
struct jpeg_walk {
    std::string huffman_error;   ///< the first Huffman table of too many codes, or of a scan
                                 ///< that selects an undefined table, or ""
    std::int64_t w = -1, h = -1; ///< the size in the first SOF0/1/2 segment (-1: none)
};

/// stb_image 2.27 (Debian's libstb-dev 0.0~git20220908) builds a JPEG Huffman table from the
/// 16 code counts of a DHT segment without checking that they add up to at most 256, the
/// size of its arrays: a corrupt table of more codes makes it write past them (heap memory
/// of the decoder; found by tests/fuzz/fuzz_image). This walks the markers as stb reads them
/// from `start` (just after SOI): segments by their length, entropy-coded data up to the next
/// marker (stuffed 0xFF00, fill bytes and RSTn skipped), zeros past the end of the data (stb
/// reads zeros there too). Every DHT segment stb could reach is checked, and some that it
/// would never reach (after an error of its own), which only refuses data stb refuses too.
/// The walk stops at the first table of too many codes.
jpeg_walk walk_jpeg(const std::uint8_t* d, std::size_t n, std::size_t start) {
    auto at = [&](std::size_t i) -> std::size_t { return i < n ? d[i] : 0; };
    jpeg_walk out;
    std::size_t pos = start;
    // Which Huffman tables ([class][id]: DC 0, AC 1) a DHT segment has defined so far, and
    // whether the frame is progressive: stb keeps its tables in memory it does not clear, so
    // a scan that selects a table no DHT defined decodes with whatever that memory holds
    // (found by tests/fuzz/fuzz_image: a symbol index from garbage, read out of bounds).
    bool defined[2][4] = {};
    bool progressive = false;
    while (pos < n) {
        if (d[pos] != 0xFF) { // entropy-coded data, or padding stb skips
            ++pos;
            continue;
        }
        while (pos < n && d[pos] == 0xFF)
            ++pos;
        if (pos >= n) break;
        const std::size_t m = d[pos++];
        if (m == 0xD9) break;                                             // EOI
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue; // no length field
        const std::size_t len = (at(pos) << 8) | at(pos + 1);
        if ((m == 0xC0 || m == 0xC1 || m == 0xC2) && out.w < 0) { // the frames stb decodes
            out.h = std::int64_t((at(pos + 3) << 8) | at(pos + 4));
            out.w = std::int64_t((at(pos + 5) << 8) | at(pos + 6));
            progressive = m == 0xC2;
        }
        if (m == 0xDA) { // SOS: the tables its components select must exist
            // stb's use: baseline, both tables; progressive, the DC table in a first DC scan
            // (Ss 0, Ah 0) and the AC table in an AC scan (Ss > 0); none in a DC refinement.
            const std::size_t ns = at(pos + 2);
            const std::size_t ss = at(pos + 3 + 2 * ns), ah = at(pos + 5 + 2 * ns) >> 4;
            const bool dc = !progressive || (ss == 0 && ah == 0), ac = !progressive || ss > 0;
            for (std::size_t k = 0; k < ns && ns <= 4; ++k) {
                const std::size_t td = at(pos + 4 + 2 * k) >> 4, ta = at(pos + 4 + 2 * k) & 15;
                if (td > 3 || ta > 3) break; // stb refuses the scan
                const bool no_dc = dc && !defined[0][td], no_ac = ac && !defined[1][ta];
                if (no_dc || no_ac) {
                    out.huffman_error = snip::concat(
                        "the scan at byte ", pos - 2, " selects the ", no_dc ? "DC" : "AC",
                        " Huffman table ", no_dc ? td : ta,
                        ", which no DHT segment before it defines");
                    return out;
                }
            }
        }
        if (m == 0xC4) { // DHT: tables while the segment has bytes left, as stb reads them
            std::size_t p = pos + 2;
            std::int64_t left = std::int64_t(len) - 2;
            while (left > 0 && p < n) {
                const std::size_t tc = at(p) >> 4, th = at(p) & 15;
                if (tc > 1 || th > 3) break; // stb refuses the segment
                std::size_t codes = 0;
                for (std::size_t i = 1; i <= 16; ++i)
                    codes += at(p + i);
                if (codes > 256) {
                    out.huffman_error =
                        snip::concat("the Huffman table (", tc ? "AC" : "DC", " ", th,
                                     ") of the DHT segment at byte ", pos - 2, " defines ", codes,
                                     " codes, more than the 256 a table holds");
                    return out;
                }
                defined[tc][th] = true;
                p += 17 + codes;
                left -= std::int64_t(17 + codes);
            }
        }
        pos += len;
    }
    return out;
}

/// The width and height that a PNG (IHDR) or BMP header states, read from their fixed
/// places; false for other data. For the message only, where stb_image refuses the header
/// itself (a PNG of more than 2^30 bytes, say): its own reading decides otherwise.
bool png_bmp_size(const std::uint8_t* d, std::size_t n, std::int64_t& w, std::int64_t& h) {
    auto be32 = [&](std::size_t i) {
        return std::int64_t(std::uint32_t(d[i]) << 24 | std::uint32_t(d[i + 1]) << 16 |
                            std::uint32_t(d[i + 2]) << 8 | d[i + 3]);
    };
    auto le32 = [&](std::size_t i) {
        return std::int64_t(std::int32_t(std::uint32_t(d[i]) | std::uint32_t(d[i + 1]) << 8 |
                                         std::uint32_t(d[i + 2]) << 16 |
                                         std::uint32_t(d[i + 3]) << 24));
    };
    static constexpr std::uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n >= 24 && std::memcmp(d, png_magic, 8) == 0 && std::memcmp(d + 12, "IHDR", 4) == 0) {
        w = be32(16);
        h = be32(20);
        return true;
    }
    if (n >= 26 && d[0] == 'B' && d[1] == 'M') {
        if (le32(14) == 12) { // OS/2 core header: 16-bit sizes
            w = d[18] | d[19] << 8;
            h = d[20] | d[21] << 8;
        } else {
            w = std::llabs(le32(18));
            h = std::llabs(le32(22)); // negative: rows top-down
        }
        return true;
    }
    return false;
}

/// A PNG's chunks as stb_image walks them (length, type, data, CRC from byte 8 to IEND):
/// "" when every chunk's stated length fits in the bytes that follow it, else what is
/// wrong. stb_image 2.27 grows its IDAT buffer to the length a chunk states before it reads
/// the chunk, so a file of a few hundred bytes stating a 1 GB IDAT makes it allocate 2 GB
/// (found by tests/fuzz/fuzz_image); a chunk longer than the rest of the file cannot be
/// whole anyway.
std::string png_chunk_error(const std::uint8_t* d, std::size_t n) {
    static constexpr std::uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n < 8 || std::memcmp(d, png_magic, 8) != 0) return {};
    for (std::size_t at = 8; at + 8 <= n;) {
        const std::uint64_t len = std::uint64_t(d[at]) << 24 | std::uint64_t(d[at + 1]) << 16 |
                                  std::uint64_t(d[at + 2]) << 8 | d[at + 3];
        const std::string type(reinterpret_cast<const char*>(d + at + 4), 4);
        const std::uint64_t left = n - at - 8;
        if (len + 4 > left)
            return snip::concat("the chunk at byte ", at, " states ", len, " bytes of data, but ",
                                left, " bytes are left in the file (truncated or corrupt)");
        if (type == "IEND") break;
        at += 12 + std::size_t(len);
    }
    return {};
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

image decode_image(const std::uint8_t* data, std::size_t size, const std::string& name,
                   std::int64_t max_pixels) {
    snip::require(data != nullptr && size > 0, name, ": cannot decode image: the file is empty");
    snip::require(size <= std::size_t(0x7fffffff), name, ": cannot decode image: ", size,
                  " bytes is more than stb_image reads");
    // Before stb_image sees the data: a JPEG's Huffman tables (see walk_jpeg), and the size
    // the header claims, since stb allocates the claimed pixels before it finds out that the
    // data cannot fill them. stb's own reading of the header decides; where it refuses the
    // header (it will not decode it either), the size fields tell the message.
    std::int64_t hw = -1, hh = -1;
    if (const std::size_t body = jpeg_body(data, size)) {
        const jpeg_walk jw = walk_jpeg(data, size, body);
        if (!jw.huffman_error.empty())
            snip::fail(name, ": cannot decode image: corrupt JPEG: ", jw.huffman_error, " (", size,
                       " bytes)");
        hw = jw.w;
        hh = jw.h;
    } else {
        const std::string png = png_chunk_error(data, size);
        if (!png.empty())
            snip::fail(name, ": cannot decode image: corrupt PNG: ", png, " (", size, " bytes)");
        png_bmp_size(data, size, hw, hh);
    }
    int w = 0, h = 0, comp = 0;
    if (stbi_info_from_memory(data, int(size), &w, &h, &comp)) {
        hw = std::llabs(w); // a top-down BMP has a negative height here
        hh = std::llabs(h);
    }
    if (hw > 0 && hh > 0 && hw > max_pixels / hh)
        snip::fail(name, ": cannot decode image: its header claims ", hw, " x ", hh, " = ",
                   std::uint64_t(hw) * std::uint64_t(hh), " pixels, more than the limit of ",
                   max_pixels, " pixels (corrupt, or too large to decode)");
    w = h = comp = 0;
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
    if (w <= 0 || h <= 0 || std::int64_t(w) * std::int64_t(h) > max_pixels) {
        stbi_image_free(px); // not reached while the header check above holds
        snip::fail(name, ": cannot decode image: decoded to ", w, " x ", h,
                   " pixels, which is empty or more than the limit of ", max_pixels, " pixels");
    }
    image out;
    out.w = w;
    out.h = h;
    out.px.assign(px, px + std::size_t(w) * std::size_t(h) * 3);
    stbi_image_free(px);
    return out;
}

image decode_image(const std::string& path, std::int64_t max_pixels) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const std::error_code ec(errno, std::generic_category());
        snip::fail(path, ": cannot open image file (", ec.message(), ")");
    }
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                    std::istreambuf_iterator<char>());
    if (in.bad()) snip::fail(path, ": reading the image file failed");
    return decode_image(bytes.data(), bytes.size(), path, max_pixels);
}

} // namespace snip::train
