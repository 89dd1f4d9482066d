// test_apps.cpp: the programs' library snip_apps: flags (CLI11), pictures (cairo) and charts.
#include "test_util.hpp"

#include <snip_apps/cli.hpp>
#include <snip_apps/draw.hpp>
#include <snip_apps/plot.hpp>

#include <snip/core/error.hpp>
#include <snip/mask/rle.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <unistd.h>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace snip::apps;

namespace {

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const snip::error& e) {
        return e.what();
    }
    return "(no error)";
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

struct temp_dir {
    fs::path path;
    temp_dir() {
        path = fs::temp_directory_path() /
               ("snip_test_apps_" + std::to_string(std::rand()) + "_" + std::to_string(::getpid()));
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

cli::args parse(const std::vector<std::string>& argv) {
    return cli::args("cmd", argv, {"--out", "--epochs", "--lr", "--bn", "--ranges", "--annotations"},
                     {"--quiet"});
}

bool near(draw::rgb a, draw::rgb b, int tol) {
    return std::abs(a.r - b.r) <= tol && std::abs(a.g - b.g) <= tol && std::abs(a.b - b.b) <= tol;
}

} // namespace

TEST_CASE("cli::args: values, switches, the last of repeated flags") {
    const cli::args a = parse({"--out", "runs/x", "--epochs=3", "--quiet", "--lr", "0.5", "--lr",
                               "0.25", "--ranges", "-1,80;32,150;120,-1"});
    CHECK(a.get("--out") == "runs/x");
    CHECK(a.integer("--epochs", 7) == 3);
    CHECK(a.number("--lr", 1.0) == 0.25);
    CHECK(a.has("--quiet"));
    CHECK_FALSE(a.has("--bn"));
    CHECK(a.get_or("--bn", "trained") == "trained");
    CHECK(a.get("--ranges") == "-1,80;32,150;120,-1");
    CHECK(contains(error_of([&] { (void)a.required("--annotations"); }),
                   "option --annotations is required"));
}

TEST_CASE("cli::args: errors name the flag") {
    CHECK(contains(error_of([] { parse({"--out", "--epochs", "3"}); }), "--out needs a value"));
    CHECK(contains(error_of([] { parse({"--epochs"}); }), "--epochs needs a value"));
    CHECK(contains(error_of([] { parse({"--epoch-count", "3"}); }),
                   "unknown option '--epoch-count'"));
    CHECK(contains(error_of([] { parse({"--out", "a", "b"}); }), "unexpected argument 'b'"));
    CHECK(contains(error_of([] { parse({"--epochs", "0"}); }), "--epochs: expected an integer >= 1"));
    CHECK(contains(error_of([] { parse({"--epochs", "two"}); }), "expected an integer, got 'two'"));
    CHECK(contains(error_of([] { parse({"--lr", "-1"}); }), "--lr: expected a number > 0"));
    CHECK(contains(error_of([] { parse({"--bn", "sync"}); }),
                   "--bn: expected trained or frozen, got 'sync'"));
    CHECK(contains(error_of([] { parse({"--annotations", "/no/such/file.json"}); }),
                   "no such file '/no/such/file.json'"));
    CHECK(contains(error_of([] { parse({"--bn", "sync"}); }), "see snip-chips cmd --help"));
}

TEST_CASE("cli::split keeps empty pieces") {
    CHECK(cli::split("a;;b", ';') == std::vector<std::string>{"a", "", "b"});
    CHECK(cli::split("", ',') == std::vector<std::string>{""});
}

TEST_CASE("draw::canvas: fills, crisp outlines on whole pixels, text, PNG round trip") {
    const temp_dir tmp;
    draw::canvas c(40, 30, {10, 20, 30});
    CHECK(c.width() == 40);
    CHECK(c.height() == 30);
    CHECK(near(c.pixel(39, 29), {10, 20, 30}, 0));
    c.rect(5, 5, 14, 14, {200, 0, 0}, 1);
    CHECK(near(c.pixel(5, 9), {200, 0, 0}, 0));   // the outline covers pixels 5 .. 14
    CHECK(near(c.pixel(14, 9), {200, 0, 0}, 0));
    CHECK(near(c.pixel(15, 9), {10, 20, 30}, 0)); // and nothing beyond
    CHECK(near(c.pixel(9, 9), {10, 20, 30}, 0));  // nor inside
    c.fill_rect(20, 20, 29, 29, {255, 255, 255}, 0.5);
    CHECK(near(c.pixel(25, 25), {133, 138, 143}, 2));
    const std::vector<std::uint8_t> px = c.to_rgb();
    CHECK(px.size() == 40u * 30u * 3u);
    CHECK(px[(9 * 40 + 5) * 3] == 200);
    const draw::canvas copy = draw::canvas::from_rgb(40, 30, px.data());
    CHECK(copy.to_rgb() == px);

    // Text: mixed case at its true widths, drawn antialiased.
    CHECK(draw::text_width("Wide", 12) > draw::text_width("iiii", 12));
    CHECK(draw::text_width("abc", 24) > 1.5 * draw::text_width("abc", 12));
    CHECK(draw::text_height(12) > 10);
    draw::canvas t(80, 20, {255, 255, 255});
    const double end = t.text(2, 2, "Hello", {0, 0, 0}, 12);
    CHECK(end == doctest::Approx(2 + draw::text_width("Hello", 12)));
    int dark = 0, grey = 0;
    for (int y = 0; y < 20; ++y)
        for (int x = 0; x < 80; ++x) {
            const draw::rgb p = t.pixel(x, y);
            dark += p.r < 60;
            grey += p.r >= 60 && p.r < 200;
        }
    CHECK(dark > 20);
    CHECK(grey > 5); // antialiased edges

    const std::string png = tmp.file("c.png");
    c.write_png(png);
    CHECK_FALSE(fs::exists(png + ".tmp"));
    std::ifstream in(png, std::ios::binary);
    char magic[8] = {};
    in.read(magic, 8);
    CHECK(std::string(magic + 1, 3) == "PNG");
    const draw::canvas back = draw::load_image(png);
    CHECK(back.to_rgb() == px);
    const std::string missing = tmp.file("no/such/dir/c.png");
    CHECK(contains(error_of([&] { c.write_png(missing); }), missing));
    CHECK(contains(error_of([&] { draw::load_image(tmp.file("none.png")); }), "none.png"));

    const draw::canvas small = draw::resize(c, 20, 15);
    CHECK(small.width() == 20);
    CHECK(near(small.pixel(19, 0), {10, 20, 30}, 1));
}

TEST_CASE("draw::canvas::blend_mask changes exactly the mask's pixels, by mix(p, colour, alpha)") {
    // A canvas of distinct colours and a mask of scattered pixels plus a block.
    const int W = 30, H = 20;
    std::vector<std::uint8_t> px(std::size_t(W) * H * 3), m(std::size_t(W) * H, 0);
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
            std::uint8_t* p = &px[(std::size_t(y) * W + std::size_t(x)) * 3];
            p[0] = std::uint8_t(8 * x), p[1] = std::uint8_t(12 * y), p[2] = std::uint8_t(255 - 5 * x - 3 * y);
            m[std::size_t(y) * W + std::size_t(x)] =
                ((x * 7 + y * 3) % 5 == 0 || (x >= 20 && x < 26 && y >= 4 && y < 9)) ? 3 : 0;
        }
    const draw::rgb colour{200, 10, 90};
    auto expect = [&](const draw::canvas& c, auto set, double alpha) {
        int changed = 0, wrong = 0;
        for (int y = 0; y < c.height(); ++y)
            for (int x = 0; x < c.width(); ++x) {
                const std::uint8_t* p = &px[(std::size_t(y) * W + std::size_t(x)) * 3];
                const draw::rgb before{p[0], p[1], p[2]};
                const draw::rgb want = set(x, y) ? draw::mix(before, colour, alpha) : before;
                const draw::rgb got = c.pixel(x, y);
                wrong += got.r != want.r || got.g != want.g || got.b != want.b;
                changed += got.r != before.r || got.g != before.g || got.b != before.b;
            }
        CHECK(wrong == 0);
        return changed;
    };
    auto in_mask = [&](int x, int y) { return m[std::size_t(y) * W + std::size_t(x)] != 0; };
    std::size_t set_pixels = 0;
    for (auto v : m) set_pixels += v != 0;

    draw::canvas a = draw::canvas::from_rgb(W, H, px.data());
    a.blend_mask(m.data(), W, H, colour, 0.4);
    CHECK(expect(a, in_mask, 0.4) == int(set_pixels)); // every masked pixel moves here
    CHECK(near(a.pixel(22, 6), draw::mix({176, 72, 127}, colour, 0.4), 0));
    CHECK(near(a.pixel(1, 0), {8, 0, 250}, 0)); // (7 + 0) % 5 != 0: not in the mask

    // The same mask as a COCO RLE gives the same picture.
    draw::canvas b = draw::canvas::from_rgb(W, H, px.data());
    b.blend_mask(snip::mask::encode(m.data(), H, W), colour, 0.4);
    CHECK(b.to_rgb() == a.to_rgb());

    // alpha 1 paints the colour, alpha 0 (and below) changes nothing.
    draw::canvas full = draw::canvas::from_rgb(W, H, px.data());
    full.blend_mask(m.data(), W, H, colour, 1.0);
    expect(full, in_mask, 1.0);
    CHECK(near(full.pixel(22, 6), colour, 0));
    draw::canvas none = draw::canvas::from_rgb(W, H, px.data());
    none.blend_mask(m.data(), W, H, colour, -2.0);
    CHECK(none.to_rgb() == px);

    // A smaller mask covers only its own part of the canvas.
    draw::canvas part = draw::canvas::from_rgb(W, H, px.data());
    std::vector<std::uint8_t> corner(10 * 5, 1);
    part.blend_mask(corner.data(), 10, 5, colour, 0.5);
    CHECK(expect(part, [](int x, int y) { return x < 10 && y < 5; }, 0.5) > 0);

    // A canvas of the image at half size shows mask pixel (2x + 1, 2y + 1) at (x, y).
    const draw::canvas half_src = draw::canvas::from_rgb(W, H, px.data());
    draw::canvas half(15, 10, {});
    half.blit(half_src, 0, 0); // the image's top-left 15 x 10 pixels, as the expectation reads them
    half.blend_mask(m.data(), W, H, colour, 0.4, 0.5);
    expect(half, [&](int x, int y) { return in_mask(2 * x + 1, 2 * y + 1); }, 0.4);

    CHECK(contains(error_of([&] { a.blend_mask(m.data(), W, H, colour, 0.4, 0.0); }),
                   "canvas::blend_mask: scale 0 must be a finite number > 0"));
    CHECK(contains(error_of([&] { a.blend_mask(m.data(), -1, H, colour, 0.4); }),
                   "canvas::blend_mask: mask size -1x20 is negative"));
    CHECK(contains(error_of([&] { a.blend_mask(nullptr, 2, 2, colour, 0.4); }),
                   "no mask buffer for a 2x2 mask"));
    snip::mask::rle bad{H, W, {5, 7}};
    CHECK(contains(error_of([&] { a.blend_mask(bad, colour, 0.4); }),
                   "rle counts sum to 12 but the mask is 20x30 = 600 pixels"));
}

TEST_CASE("draw::canvas::polygon_outline: a closed outline through the vertices, nothing inside") {
    const draw::rgb white{255, 255, 255}, blue{0, 0, 200};
    // Vertices at pixel centres (continuous coordinates: pixel i covers [i, i + 1)).
    const snip::mask::polygon tri{10.5, 5.5, 50.5, 20.5, 20.5, 40.5};
    draw::canvas c(60, 50, white);
    c.polygon_outline(tri, blue, 1.0);
    auto inked = [&](const draw::canvas& cv, int x, int y) { return cv.pixel(x, y).r < 100; };
    CHECK(inked(c, 10, 5)); // every vertex
    CHECK(inked(c, 50, 20));
    CHECK(inked(c, 20, 40));
    CHECK(inked(c, 26, 11)); // a pixel centre on the edge (10.5, 5.5) - (50.5, 20.5)
    CHECK(inked(c, 35, 30)); // on (50.5, 20.5) - (20.5, 40.5)
    CHECK(inked(c, 16, 26)); // on the closing edge (20.5, 40.5) - (10.5, 5.5)
    CHECK(near(c.pixel(27, 22), white, 0)); // inside, away from the edges
    CHECK(near(c.pixel(55, 45), white, 0)); // outside
    CHECK(near(c.pixel(5, 45), white, 0));
    int ink = 0;
    for (int y = 0; y < 50; ++y)
        for (int x = 0; x < 60; ++x) ink += inked(c, x, y);
    CHECK(ink > 70); // the perimeter is about 115 px
    CHECK(ink < 180);

    // At scale 2 the vertex (10.5, 5.5) lands on the continuous point (21, 11).
    draw::canvas big(130, 100, white);
    big.polygon_outline(tri, blue, 1.0, 2.0);
    CHECK(big.pixel(20, 10).b > big.pixel(20, 10).r); // the pixels around (21, 11)
    CHECK(big.pixel(21, 11).b > big.pixel(21, 11).r);
    CHECK(inked(big, 32, 15)); // the first edge passes 0.2 px from the centre (32.5, 15.5)
    CHECK(near(big.pixel(55, 45), white, 0));

    // A keyhole polygon (a square with a square hole, joined by a cut along y = 20.5):
    // both boundaries are drawn, the cut is not.
    const snip::mask::polygon keyhole{5.5,  5.5,  35.5, 5.5,  35.5, 20.5, 35.5, 35.5, 5.5,
                                      35.5, 5.5,  20.5, 15.5, 20.5, 15.5, 25.5, 25.5, 25.5,
                                      25.5, 15.5, 15.5, 15.5, 15.5, 20.5, 5.5,  20.5};
    draw::canvas k(40, 40, white);
    k.polygon_outline(keyhole, blue);
    CHECK(inked(k, 5, 12)); // outer boundary
    CHECK(inked(k, 35, 30));
    CHECK(inked(k, 15, 18)); // inner boundary
    CHECK(inked(k, 20, 25));
    CHECK(near(k.pixel(10, 20), white, 0)); // the cut
    CHECK(near(k.pixel(20, 20), white, 0)); // inside the hole

    // Fewer than two vertices draw nothing; bad input names itself.
    draw::canvas d(20, 20, white);
    d.polygon_outline({5.5, 5.5}, blue);
    d.polygon_outline({}, blue);
    CHECK(near(d.pixel(5, 5), white, 0));
    CHECK(contains(error_of([&] { d.polygon_outline({1, 2, 3}, blue); }),
                   "canvas::polygon_outline: 3 values, must be an even count"));
    CHECK(contains(error_of([&] { d.polygon_outline({1, 2, 3, NAN}, blue); }),
                   "canvas::polygon_outline: value 3 is nan, must be finite"));
    CHECK(contains(error_of([&] { d.polygon_outline(tri, blue, 1.0, -1.0); }),
                   "canvas::polygon_outline: scale -1 must be a finite number > 0"));
}

TEST_CASE("plot::render: the chart's size, its series, its errors") {
    plot::chart ch;
    ch.title = "Loss of run x";
    ch.xlabel = "step";
    ch.ylabel = "loss";
    ch.data.push_back({"total", {0, 1, 2, 3}, {4, 3, 2.5, 2}, {214, 39, 40}, plot::series::line, 2});
    const draw::canvas c = plot::render(ch, 400, 300);
    CHECK(c.width() == 400);
    CHECK(c.height() == 300);
    int red = 0;
    for (int y = 0; y < 300; ++y)
        for (int x = 0; x < 400; ++x) red += near(c.pixel(x, y), {214, 39, 40}, 30);
    CHECK(red > 200);
    ch.data[0].y.pop_back();
    CHECK(contains(error_of([&] { plot::render(ch, 400, 300); }),
                   "series 'total' has 4 x values but 3 y values"));
    ch.data[0].y.push_back(1);
    ch.log_y = true;
    ch.ymin = -1.0;
    CHECK(contains(error_of([&] { plot::render(ch, 400, 300); }), "log y axis needs positive ends"));
    CHECK(contains(error_of([&] { plot::grid({}, 2); }), "no panels"));
}

TEST_CASE("cli::args: a flag listed twice (two shared groups) is one flag") {
    const cli::args a("cmd", {"--threads", "2"}, {"--threads", "--out", "--threads"}, {"--quiet", "--quiet"});
    CHECK(a.integer("--threads", 0) == 2);
}
