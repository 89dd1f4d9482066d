// make_image_seeds.cpp: writes the seed corpus of fuzz_image (tests/fuzz/corpus/image/):
// tiny synthetic pictures in the variants of JPEG, PNG and BMP that stb_image decodes, so
// that the fuzzer starts inside each decoder rather than at its magic number. No real image
// is used. The files have no extension (the repository ignores *.png). Built on request
// only (target fuzz_image_seeds, not part of `all`):
//
//     cmake --build build/fuzz --target fuzz_image_seeds
//     build/fuzz/tests/fuzz/fuzz_image_seeds tests/fuzz/corpus/image
//
// JPEG: stb_image_write's baseline encoder (4:2:0 below quality 90, 4:4:4 above), plus a
// grayscale baseline and a grayscale progressive JPEG assembled here marker by marker.
// PNG: stb_image_write's 8-bit gray / gray+alpha / RGB / RGBA, plus palette + tRNS, 16-bit
// Adam7-interlaced gray, 16-bit RGB and 1-bit gray written here (zlib "stored" blocks,
// every filter type).
// BMP: stb_image_write's 24-bit, plus OS/2 (12-byte header), 1-, 4- and 8-bit palettes
// (top-down), 16-bit 5-6-5 bit fields and 32-bit ARGB (V4 header) written here.
#include <stb_image_write.h> // implemented in snip::stb

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

namespace {

using bytes = std::vector<std::uint8_t>;

std::string g_dir;
int g_written = 0;

void save(const std::string& name, const bytes& b) {
    const std::string path = g_dir + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
    if (!out) {
        std::fprintf(stderr, "cannot write %s\n", path.c_str());
        std::exit(1);
    }
    std::printf("%-32s %5zu bytes\n", name.c_str(), b.size());
    ++g_written;
}

void collect(void* ctx, void* data, int size) {
    auto* b = static_cast<bytes*>(ctx);
    const auto* p = static_cast<const std::uint8_t*>(data);
    b->insert(b->end(), p, p + size);
}

/// A w x h picture of `comp` channels: gradients and a checker pattern.
bytes picture(int w, int h, int comp) {
    bytes px(std::size_t(w) * std::size_t(h) * std::size_t(comp));
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int c = 0; c < comp; ++c)
                px[(std::size_t(y) * std::size_t(w) + std::size_t(x)) * std::size_t(comp) +
                   std::size_t(c)] = std::uint8_t(c == 3 ? 128 + 100 * ((x + y) & 1)
                                                         : (x * 255 / (w > 1 ? w - 1 : 1) + y * 40 +
                                                            c * 85 + ((x ^ y) & 1) * 30));
    return px;
}

void put16be(bytes& b, unsigned v) {
    b.push_back(std::uint8_t(v >> 8));
    b.push_back(std::uint8_t(v));
}
void put32be(bytes& b, std::uint32_t v) {
    put16be(b, v >> 16);
    put16be(b, v & 0xFFFF);
}
void put16le(bytes& b, unsigned v) {
    b.push_back(std::uint8_t(v));
    b.push_back(std::uint8_t(v >> 8));
}
void put32le(bytes& b, std::uint32_t v) {
    put16le(b, v & 0xFFFF);
    put16le(b, v >> 16);
}
void append(bytes& b, std::initializer_list<std::uint8_t> v) {
    b.insert(b.end(), v);
}

// --- JPEG ------------------------------------------------------------------------------

/// One DHT segment holding a single table (class 0 = DC, 1 = AC; id 0) whose only code is
/// '0' (length 1) for `symbol`.
void one_code_table(bytes& j, int cls, std::uint8_t symbol) {
    append(j, {0xFF, 0xC4});
    put16be(j, 2 + 1 + 16 + 1);
    j.push_back(std::uint8_t(cls << 4));
    j.push_back(1); // one code of length 1
    for (int i = 1; i < 16; ++i)
        j.push_back(0);
    j.push_back(symbol);
}

/// A flat grey 8 x 8 grayscale JPEG: SOF0 (baseline) or SOF2 (progressive: a DC scan, then
/// an AC scan of coefficients 1..63). Every DC difference is 0 and every block ends at once
/// (EOB), so each scan is a few '0' codes.
bytes gray_jpeg(bool progressive) {
    bytes j = {0xFF, 0xD8};
    append(j, {0xFF, 0xDB}); // DQT: table 0, 8-bit, all ones
    put16be(j, 2 + 1 + 64);
    j.push_back(0);
    for (int i = 0; i < 64; ++i)
        j.push_back(1);
    append(j, {0xFF, std::uint8_t(progressive ? 0xC2 : 0xC0)});
    put16be(j, 2 + 6 + 3);
    j.push_back(8);             // precision
    put16be(j, 8);              // height
    put16be(j, 8);              // width
    append(j, {1, 1, 0x11, 0}); // one component: id 1, 1x1 sampling, quant table 0
    one_code_table(j, 0, 0x00); // DC: category 0 (difference 0)
    one_code_table(j, 1, 0x00); // AC: EOB
    auto scan = [&j](int ss, int se, std::uint8_t data) {
        append(j, {0xFF, 0xDA});
        put16be(j, 2 + 1 + 2 + 3);
        append(j, {1, 1, 0x00, std::uint8_t(ss), std::uint8_t(se), 0x00});
        j.push_back(data);
    };
    if (progressive) {
        scan(0, 0, 0x7F);  // DC first scan: '0' then padding ones
        scan(1, 63, 0x7F); // AC first scan: EOB
    } else {
        scan(0, 63, 0x3F); // DC '0', AC EOB '0', padding ones
    }
    append(j, {0xFF, 0xD9});
    return j;
}

void write_jpegs() {
    bytes b;
    const bytes rgb = picture(16, 8, 3);
    stbi_write_jpg_to_func(collect, &b, 16, 8, 3, rgb.data(), 50);
    save("jpeg_rgb_420_q50", b);
    b.clear();
    const bytes rgb8 = picture(8, 8, 3);
    stbi_write_jpg_to_func(collect, &b, 8, 8, 3, rgb8.data(), 95);
    save("jpeg_rgb_444_q95", b);
    save("jpeg_gray_baseline", gray_jpeg(false));
    save("jpeg_gray_progressive", gray_jpeg(true));
}

// --- PNG -------------------------------------------------------------------------------

std::uint32_t crc32(const std::uint8_t* p, std::size_t n) {
    std::uint32_t c = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) {
        c ^= p[i];
        for (int k = 0; k < 8; ++k)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

void chunk(bytes& png, const char* type, const bytes& data) {
    put32be(png, std::uint32_t(data.size()));
    const std::size_t start = png.size();
    png.insert(png.end(), type, type + 4);
    png.insert(png.end(), data.begin(), data.end());
    put32be(png, crc32(png.data() + start, png.size() - start));
}

/// `raw` (filter bytes included) as a zlib stream of "stored" (uncompressed) blocks.
bytes zlib_stored(const bytes& raw) {
    bytes z = {0x78, 0x01};
    std::size_t pos = 0;
    do {
        const std::size_t n = std::min<std::size_t>(raw.size() - pos, 65535);
        const bool last = pos + n == raw.size();
        z.push_back(last ? 1 : 0);
        put16le(z, unsigned(n));
        put16le(z, unsigned(~n & 0xFFFF));
        z.insert(z.end(), raw.begin() + long(pos), raw.begin() + long(pos + n));
        pos += n;
    } while (pos < raw.size());
    std::uint32_t a = 1, b = 0;
    for (std::uint8_t v : raw) {
        a = (a + v) % 65521;
        b = (b + a) % 65521;
    }
    put32be(z, (b << 16) | a);
    return z;
}

bytes png_file(int w, int h, int depth, int color, bool interlaced, const bytes& raw,
               const bytes& plte = {}, const bytes& trns = {}) {
    bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    bytes ihdr;
    put32be(ihdr, std::uint32_t(w));
    put32be(ihdr, std::uint32_t(h));
    append(ihdr, {std::uint8_t(depth), std::uint8_t(color), 0, 0, std::uint8_t(interlaced)});
    chunk(png, "IHDR", ihdr);
    if (!plte.empty()) chunk(png, "PLTE", plte);
    if (!trns.empty()) chunk(png, "tRNS", trns);
    chunk(png, "IDAT", zlib_stored(raw));
    chunk(png, "IEND", {});
    return png;
}

/// Scanlines of `row_bytes` bytes for `rows` rows, filter types cycling 0..4.
void scanlines(bytes& raw, int rows, int row_bytes, int& filter) {
    for (int y = 0; y < rows; ++y) {
        raw.push_back(std::uint8_t(filter++ % 5));
        for (int x = 0; x < row_bytes; ++x)
            raw.push_back(std::uint8_t(x * 29 + y * 7));
    }
}

void write_pngs() {
    const int comps[] = {1, 2, 3, 4};
    const char* names[] = {"png_gray8", "png_gray_alpha8", "png_rgb8", "png_rgba8"};
    for (int i = 0; i < 4; ++i) {
        bytes b;
        const bytes px = picture(5, 3, comps[i]);
        stbi_write_png_to_func(collect, &b, 5, 3, comps[i], px.data(), 5 * comps[i]);
        save(names[i], b);
    }
    int filter = 0;
    { // 2-bit palette, 4 x 4, with transparency
        bytes raw;
        scanlines(raw, 4, 1, filter);
        save("png_palette2_trns", png_file(4, 4, 2, 3, false, raw,
                                           {255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9}, {0, 128}));
    }
    { // 16-bit gray, 5 x 5, Adam7: passes of 1x1, 1x1, 2x1, 1x2, 3x1, 2x3, 5x2 pixels
        bytes raw;
        const int pass_w[7] = {1, 1, 2, 1, 3, 2, 5}, pass_h[7] = {1, 1, 1, 2, 1, 3, 2};
        for (int p = 0; p < 7; ++p)
            scanlines(raw, pass_h[p], pass_w[p] * 2, filter);
        save("png_gray16_adam7", png_file(5, 5, 16, 0, true, raw));
    }
    { // 1-bit gray, 9 x 2 (two bytes a row)
        bytes raw;
        scanlines(raw, 2, 2, filter);
        save("png_gray1", png_file(9, 2, 1, 0, false, raw));
    }
    { // 16-bit RGB, 2 x 2
        bytes raw;
        scanlines(raw, 2, 12, filter);
        save("png_rgb16", png_file(2, 2, 16, 2, false, raw));
    }
}

// --- BMP -------------------------------------------------------------------------------

/// A BMP file: file header, an info header of `hsz` bytes (12: OS/2 core; 40: Windows;
/// 108: V4 with masks and colour space), `extra` (bit masks after a 40-byte header, or the
/// palette), then the pixel rows (each padded to 4 bytes by the caller).
bytes bmp_file(int w, int h, int bpp, std::uint32_t compression, int hsz, const bytes& extra,
               const bytes& rows, std::initializer_list<std::uint32_t> masks = {}) {
    bytes info;
    put32le(info, std::uint32_t(hsz));
    if (hsz == 12) {
        put16le(info, unsigned(w));
        put16le(info, unsigned(h));
        put16le(info, 1);
        put16le(info, unsigned(bpp));
    } else {
        put32le(info, std::uint32_t(w));
        put32le(info, std::uint32_t(h));
        put16le(info, 1);
        put16le(info, unsigned(bpp));
        put32le(info, compression);
        put32le(info, std::uint32_t(rows.size()));
        put32le(info, 2835);
        put32le(info, 2835);
        put32le(info, 0); // colours used: all the depth allows
        put32le(info, 0);
        for (std::uint32_t m : masks)
            put32le(info, m);
        while (info.size() < std::size_t(hsz))
            info.push_back(0);
    }
    const std::uint32_t offset = std::uint32_t(14 + info.size() + extra.size());
    bytes b = {'B', 'M'};
    put32le(b, offset + std::uint32_t(rows.size()));
    put32le(b, 0);
    put32le(b, offset);
    b.insert(b.end(), info.begin(), info.end());
    b.insert(b.end(), extra.begin(), extra.end());
    b.insert(b.end(), rows.begin(), rows.end());
    return b;
}

/// `h` rows of `row_bytes` bytes padded to a multiple of 4.
bytes bmp_rows(int h, int row_bytes) {
    bytes r;
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < row_bytes; ++x)
            r.push_back(std::uint8_t(x * 53 + y * 11));
        for (int x = row_bytes; x % 4; ++x)
            r.push_back(0);
    }
    return r;
}

/// A palette of `n` BGRA (or, for OS/2, BGR) entries.
bytes palette(int n, int entry) {
    bytes p;
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < entry; ++c)
            p.push_back(std::uint8_t(i * 37 + c * 80));
    return p;
}

void write_bmps() {
    bytes b;
    const bytes rgb = picture(3, 2, 3);
    stbi_write_bmp_to_func(collect, &b, 3, 2, 3, rgb.data());
    save("bmp_rgb24", b);
    save("bmp_os2_core_rgb24", bmp_file(3, 2, 24, 0, 12, {}, bmp_rows(2, 9)));
    save("bmp_pal1", bmp_file(10, 2, 1, 0, 40, palette(2, 4), bmp_rows(2, 2)));
    save("bmp_pal4_topdown", bmp_file(5, -3, 4, 0, 40, palette(16, 4), bmp_rows(3, 3)));
    save("bmp_pal8_topdown", bmp_file(4, -2, 8, 0, 40, palette(7, 4), bmp_rows(2, 4)));
    // BI_BITFIELDS (3): the masks follow a 40-byte header
    bytes masks565;
    for (std::uint32_t m : {0xF800u, 0x07E0u, 0x001Fu})
        put32le(masks565, m);
    save("bmp_rgb565_bitfields", bmp_file(3, 2, 16, 3, 40, masks565, bmp_rows(2, 6)));
    save("bmp_argb32_v4", bmp_file(2, 2, 32, 3, 108, {}, bmp_rows(2, 8),
                                   {0x00FF0000u, 0x0000FF00u, 0x000000FFu, 0xFF000000u}));
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <output folder>\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    write_jpegs();
    write_pngs();
    write_bmps();
    std::printf("%d seeds written to %s\n", g_written, g_dir.c_str());
    return 0;
}
