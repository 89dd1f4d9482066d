// test_apps.cpp: the programs' library snip_apps: flags (CLI11), pictures (cairo) and charts.
#include "test_util.hpp"

#include <snip_apps/cli.hpp>
#include <snip_apps/draw.hpp>
#include <snip_apps/plot.hpp>

#include <snip/core/error.hpp>

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
