// The trainer's data pipeline (trainer/include/snip/train/image.hpp, data.hpp): the one-pass
// chip resampler against a slow resize-the-whole-image-then-crop reference, mirrored
// chips and boxes, padding of small chips, ground-truth states, the prefetching loader
// (same batches with 1 and 3 workers, at most Q batches alive, errors naming the file),
// decode errors, and real coco128 images when ../shared/data is present.
#include <snip/train/data.hpp>
#include <snip/train/image.hpp>

#include "test_util.hpp"

#include <snip/sniper/dataset_plan.hpp>
#include <snip/io/coco.hpp>

#include <stb_image_write.h> // implemented in snip::stb

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace fs = std::filesystem;

namespace {

using snip::train::image;

// ---------------------------------------------------------------------------------------
// Data

/// A deterministic test picture: smooth gradients plus pseudo-random texture, so that
/// both interpolation and indexing errors show.
image test_image(int w, int h, std::uint64_t seed) {
    image im(w, h);
    snip::splitmix64 g{seed};
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            std::uint8_t* p = im.row(y) + 3 * x;
            p[0] = std::uint8_t((x * 255) / std::max(1, w - 1));
            p[1] = std::uint8_t((y * 255) / std::max(1, h - 1));
            p[2] = std::uint8_t(g.below(256));
        }
    return im;
}

/// The slow reference: resize the WHOLE image by (fx, fy) (pixel centres: scaled pixel X
/// reads the original at (X + 0.5) / f - 0.5, clamped to the border, in double), keeping
/// the scaled pixels whose centres lie inside the original, then crop [X1, X1 + cw) x
/// [Y1, Y1 + ch) with zeros outside, then mirror. HWC doubles 0..255; -1 marks padding.
std::vector<double> reference_chip(const image& src, double fx, double fy, int X1, int Y1, int cw,
                                   int ch, bool flip) {
    auto count = [](double f, int n) { // scaled pixels whose centre maps inside [0, n)
        int k = 0;
        while ((k + 0.5) / f < n)
            ++k;
        return k;
    };
    const int ws = count(fx, src.w), hs = count(fy, src.h);
    auto tap = [](double s, int n, int& i0, int& i1, double& w1) {
        const double f = std::floor(s);
        i0 = int(f), i1 = i0 + 1, w1 = s - f;
        if (i0 < 0) i0 = i1 = 0, w1 = 0;
        if (i1 > n - 1) i0 = i1 = n - 1, w1 = 0;
    };
    std::vector<double> scaled(std::size_t(ws) * std::size_t(hs) * 3);
    for (int Y = 0; Y < hs; ++Y)
        for (int X = 0; X < ws; ++X) {
            int x0, x1, y0, y1;
            double wx, wy;
            tap((X + 0.5) / fx - 0.5, src.w, x0, x1, wx);
            tap((Y + 0.5) / fy - 0.5, src.h, y0, y1, wy);
            for (int c = 0; c < 3; ++c) {
                const double top = src.at(x0, y0, c) * (1 - wx) + src.at(x1, y0, c) * wx;
                const double bot = src.at(x0, y1, c) * (1 - wx) + src.at(x1, y1, c) * wx;
                scaled[(std::size_t(Y) * ws + X) * 3 + c] = top * (1 - wy) + bot * wy;
            }
        }
    std::vector<double> out(std::size_t(cw) * std::size_t(ch) * 3, -1.0);
    for (int y = 0; y < ch; ++y)
        for (int x = 0; x < cw; ++x) {
            const int X = X1 + (flip ? cw - 1 - x : x), Y = Y1 + y;
            if (X < 0 || Y < 0 || X >= ws || Y >= hs) continue;
            for (int c = 0; c < 3; ++c)
                out[(std::size_t(y) * cw + x) * 3 + c] = scaled[(std::size_t(Y) * ws + X) * 3 + c];
        }
    return out;
}

/// A chip crop [X1, X1 + cw) x [Y1, Y1 + ch) of the image scaled by f, in original px.
snip::box<double> crop_of(double fx, double fy, int X1, int Y1, int cw, int ch) {
    return {X1 / fx, Y1 / fy, (X1 + cw) / fx, (Y1 + ch) / fy};
}

struct crop_case {
    const char* name;
    int w, h;
    double fx, fy;
    int X1, Y1, cw, ch;
    bool flip;
};

/// Both outputs of crop_resize against the reference: uint8 within 1 grey level (and
/// padding exactly 0), float normalised within 1e-4.
void check_against_reference(const crop_case& k) {
    const std::string name = k.name;
    CAPTURE(name);
    const image src = test_image(k.w, k.h, 7);
    const auto ref = reference_chip(src, k.fx, k.fy, k.X1, k.Y1, k.cw, k.ch, k.flip);
    const auto crop = crop_of(k.fx, k.fy, k.X1, k.Y1, k.cw, k.ch);

    const image u8 = snip::train::crop_resize(src, crop, k.cw, k.ch, k.flip);
    double max_u8 = 0;
    std::size_t pad_bad = 0, pads = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        if (ref[i] < 0) {
            ++pads;
            pad_bad += u8.px[i] != 0;
            continue;
        }
        max_u8 = std::max(max_u8, std::fabs(double(u8.px[i]) - ref[i]));
    }
    CHECK(max_u8 <= 1.0);
    CHECK(pad_bad == 0);

    const snip::train::normalisation norm;
    std::vector<float> f(std::size_t(k.cw) * std::size_t(k.ch) * 3, 99.f);
    snip::train::crop_resize(src, crop, k.cw, k.ch, k.flip,
                        snip::train::chw_view{f.data(), k.cw, std::ptrdiff_t(k.cw) * k.ch}, norm);
    double max_f = 0;
    for (int y = 0; y < k.ch; ++y)
        for (int x = 0; x < k.cw; ++x)
            for (int c = 0; c < 3; ++c) {
                const double r = ref[(std::size_t(y) * k.cw + x) * 3 + c];
                const double want =
                    r < 0 ? 0.0
                          : (r / 255.0 - norm.mean[std::size_t(c)]) / norm.std[std::size_t(c)];
                const double got = f[std::size_t(c) * k.cw * k.ch + std::size_t(y) * k.cw + x];
                max_f = std::max(max_f, std::fabs(got - want));
            }
    CHECK(max_f <= 1e-4);
    MESSAGE(name << ": max |u8 - ref| " << max_u8 << ", max |float - ref| " << max_f << ", "
                 << pads / 3 << " padding px");
}

/// A small dataset of `n` synthetic images (160..239 x 120..179) with 4..9 boxes each
/// of categories 1 and 5 (one crowd box every third image).
snip::dataset synthetic_dataset(int n, std::uint64_t seed) {
    snip::dataset ds;
    ds.source = "synthetic";
    ds.categories = {{5, "b"}, {1, "a"}};
    snip::splitmix64 g{seed};
    for (int i = 0; i < n; ++i) {
        snip::image_record r;
        r.id = 100 + i;
        r.file_name = "synthetic_" + std::to_string(i) + ".jpg";
        r.width = 160 + int(g.below(80));
        r.height = 120 + int(g.below(60));
        const int nb = 4 + int(g.below(6));
        for (int b = 0; b < nb; ++b) {
            const double side = 8 + double(g.below(60));
            const double x = double(g.below(std::uint64_t(r.width - 8)));
            const double y = double(g.below(std::uint64_t(r.height - 8)));
            r.boxes.push_back(
                {x, y, std::min(double(r.width), x + side),
                 std::min(double(r.height), y + side * (0.6 + 0.1 * double(g.below(8))))});
            r.ann_ids.push_back(i * 100 + b);
            r.categories.push_back(g.below(2) ? 5 : 1);
            r.crowd.push_back(b == 0 && i % 3 == 0);
        }
        ds.images.push_back(std::move(r));
    }
    return ds;
}

/// Small chips, two scales, so the tests stay fast.
snip::plan_config small_config() {
    snip::plan_config c;
    c.name = "test";
    c.scales = {snip::scale_spec::by_factor(2.0), snip::scale_spec::by_long_side(128)};
    c.ranges = {{-1, 40}, {24, -1}};
    c.chip_size = 128;
    c.stride = 16;
    return c;
}

/// One-thread planning with a seed.
snip::dataset_plan_options plan_options(std::uint64_t seed) {
    snip::dataset_plan_options o;
    o.seed = seed;
    o.threads = 1;
    return o;
}

/// Images made in memory for a dataset (thread-safe: a pure function of the index).
snip::train::image_source synthetic_source(const snip::dataset& ds) {
    return [&ds](std::size_t i) {
        const auto& r = ds.images.at(i);
        return test_image(r.width, r.height, 1000 + i);
    };
}

/// Every batch of a loader, in order.
std::vector<snip::train::chip_batch> drain_loader(snip::train::chip_loader& loader) {
    std::vector<snip::train::chip_batch> out;
    while (auto b = loader.next())
        out.push_back(std::move(*b));
    return out;
}

bool same_batches(const std::vector<snip::train::chip_batch>& a,
                  const std::vector<snip::train::chip_batch>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t k = 0; k < a.size(); ++k) {
        if (a[k].index != b[k].index || !at::equal(a[k].images, b[k].images) ||
            a[k].targets.size() != b[k].targets.size())
            return false;
        for (std::size_t i = 0; i < a[k].targets.size(); ++i) {
            const auto &x = a[k].targets[i], &y = b[k].targets[i];
            if (x.job.image != y.job.image || x.job.flipped != y.job.flipped ||
                x.job.chip.rect != y.job.chip.rect || !at::equal(x.boxes, y.boxes) ||
                !at::equal(x.classes, y.classes) || !at::equal(x.states, y.states))
                return false;
        }
    }
    return true;
}

/// An in-memory JPEG of `im` (stb_image_write, baseline).
std::vector<std::uint8_t> encode_jpeg(const image& im) {
    std::vector<std::uint8_t> bytes;
    auto sink = [](void* ctx, void* data, int size) {
        auto* v = static_cast<std::vector<std::uint8_t>*>(ctx);
        v->insert(v->end(), static_cast<std::uint8_t*>(data),
                  static_cast<std::uint8_t*>(data) + size);
    };
    REQUIRE(stbi_write_jpg_to_func(sink, &bytes, im.w, im.h, 3, im.px.data(), 90) != 0);
    return bytes;
}

/// A fresh temporary folder, removed by the destructor.
struct temp_dir {
    fs::path path;
    temp_dir() {
        path = fs::temp_directory_path() /
               ("snip_trainer_data_" +
                std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string write(const std::string& name, const std::vector<std::uint8_t>& bytes) const {
        const fs::path p = path / name;
        std::ofstream out(p, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
        return p.string();
    }
};

using snip_test::error_of;

void check_contains(const std::string& msg, const std::vector<std::string>& parts) {
    for (const auto& part : parts)
        CHECK_MESSAGE(msg.find(part) != std::string::npos,
                      "expected \"" << part << "\" in: " << msg);
}

} // namespace

// ---------------------------------------------------------------------------------------
// crop_resize

TEST_CASE("crop_resize agrees with resizing the whole image and then cropping") {
    const crop_case cases[] = {
        {"upscale 3x, inside", 97, 61, 3.0, 3.0, 40, 25, 128, 96, false},
        {"upscale 3x, flipped", 97, 61, 3.0, 3.0, 40, 25, 128, 96, true},
        {"upscale 1.667, whole image", 60, 45, 1.667, 1.667, 0, 0, 100, 75, false},
        {"downscale 0.5", 200, 150, 0.5, 0.5, 10, 5, 64, 48, false},
        {"downscale 0.8 (long side 512 of 640)", 160, 120, 0.8, 0.8, 0, 0, 128, 96, true},
        {"anisotropic", 80, 90, 2.5, 1.25, 7, 3, 120, 100, false},
        {"partly outside: left and top", 50, 40, 2.0, 2.0, -17, -9, 64, 64, false},
        {"partly outside: right and bottom, flipped", 50, 40, 3.0, 3.0, 100, 90, 64, 64, true},
        {"entirely outside", 30, 30, 2.0, 2.0, 70, 70, 16, 16, false},
        {"one-pixel source", 1, 1, 4.0, 4.0, -2, -2, 8, 8, false},
    };
    for (const auto& k : cases)
        check_against_reference(k);
}

TEST_CASE("crop_resize: identity crop copies the image, flip mirrors it exactly") {
    const image src = test_image(33, 21, 3);
    const image same = snip::train::crop_resize(src, {0, 0, 33, 21}, 33, 21);
    CHECK(same.px == src.px);
    const image m = snip::train::crop_resize(src, {0, 0, 33, 21}, 33, 21, true);
    bool mirrored = true;
    for (int y = 0; y < 21; ++y)
        for (int x = 0; x < 33; ++x)
            for (int c = 0; c < 3; ++c)
                mirrored = mirrored && m.at(x, y, c) == src.at(32 - x, y, c);
    CHECK(mirrored);
}

TEST_CASE("crop_resize: bad arguments are errors that say what is wrong") {
    const image src = test_image(10, 10, 1);
    check_contains(error_of([&] {
                       (void)snip::train::crop_resize(src, {0, 0, 10, 10}, 0, 5);
                   }),
                   {"output size", "0 x 5"});
    check_contains(error_of([&] {
                       (void)snip::train::crop_resize(src, {5, 0, 5, 10}, 4, 4);
                   }),
                   {"crop box", "non-empty"});
    check_contains(error_of([&] {
                       (void)snip::train::crop_resize(image{}, {0, 0, 1, 1}, 4, 4);
                   }),
                   {"source image is empty"});
}

// ---------------------------------------------------------------------------------------
// Chips: geometry, padding, ground truth, mirroring

TEST_CASE("chip_crop follows the plan's pixel convention") {
    snip::chip c{0, 2.0, {40, 20, 168, 148}, {}, {}};
    auto g = snip::train::chip_crop(c, 128, snip::pixel_convention::continuous);
    CHECK(g.width == 128);
    CHECK(g.height == 128);
    CHECK(g.crop == snip::box<double>{20, 10, 84, 74});
    // inclusive: [p, p + c - 1] is c pixels; the original layout's corner chips one pixel
    // longer than a chip keep chip_size pixels
    snip::chip d{0, 2.0, {40, 20, 167, 148}, {}, {}};
    g = snip::train::chip_crop(d, 128, snip::pixel_convention::inclusive);
    CHECK(g.width == 128);
    CHECK(g.height == 128);
    CHECK(g.crop == snip::box<double>{20, 10, 84, 74});
}

TEST_CASE("a chip smaller than chip_size sits top-left, zero-padded") {
    snip::plan_config cfg = small_config();
    cfg.scales.back() = snip::scale_spec::by_long_side(100); // the coarsest: 100 x 75 < 128
    snip::dataset ds;
    ds.categories = {{1, "a"}};
    snip::image_record r;
    r.file_name = "small.jpg";
    r.width = 160;
    r.height = 120;
    r.boxes = {{20, 20, 100, 90}}; // sqrt(w h) = 75: trained at the coarsest scale only
    r.categories = {1};
    r.crowd = {0};
    r.ann_ids = {1};
    ds.images.push_back(r);
    const image src = test_image(160, 120, 5);
    const auto plan = snip::plan_dataset(cfg, ds, nullptr, plan_options(0));
    const snip::chip* whole = nullptr;
    for (const auto& c : plan[0].plan.positives)
        if (c.scale == 1) whole = &c;
    REQUIRE(whole != nullptr);
    CHECK(whole->rect == snip::box<int>{0, 0, 100, 75});

    const int S = cfg.chip_size;
    std::vector<float> buf(std::size_t(3) * S * S, 42.f);
    const snip::train::chip_job job{0, *whole, false, false};
    snip::train::fill_chip(src, cfg, job, snip::train::chw_view{buf.data(), S, S * S},
                      snip::train::normalisation::raw());
    // content = the whole image resized to 100 x 75, exactly as crop_resize gives it
    const image content = snip::train::crop_resize(src, {0, 0, 160, 120}, 100, 75);
    double max_content = 0;
    std::size_t bad_pad = 0;
    for (int c = 0; c < 3; ++c)
        for (int y = 0; y < S; ++y)
            for (int x = 0; x < S; ++x) {
                const float v = buf[std::size_t(c) * S * S + std::size_t(y) * S + x];
                if (x < 100 && y < 75)
                    max_content = std::max(max_content, std::fabs(double(v) - content.at(x, y, c)));
                else
                    bad_pad += v != 0.f;
            }
    CHECK(max_content <= 0.51); // uint8 content is rounded
    CHECK(bad_pad == 0);
    const auto t = snip::train::make_target(ds, cfg, job, snip::train::class_map(ds));
    CHECK(t.width == 100);
    CHECK(t.height == 75);
}

TEST_CASE("targets: states, classes and boxes from assign_chip; mirrored boxes") {
    snip::dataset ds;
    ds.categories = {{90, "z"}, {3, "c"}, {17, "q"}};
    snip::image_record r;
    r.id = 1;
    r.file_name = "one.jpg";
    r.width = 160;
    r.height = 120;
    r.boxes = {{30, 20, 70, 60},      // assigned to the chip: valid
               {10, 50, 60, 90},      // visible, not assigned: invalid
               {75, 15, 100, 50},     // crowd
               {150, 100, 152, 102}}; // outside the chip: absent
    r.categories = {17, 3, 90, 3};
    r.crowd = {0, 0, 1, 0};
    r.ann_ids = {1, 2, 3, 4};
    ds.images.push_back(r);
    const snip::plan_config cfg = small_config();
    const snip::chip c{0, 2.0, {40, 20, 168, 148}, {0}, {}};
    const snip::train::class_map classes(ds);
    CHECK(classes.num_classes() == 3);
    CHECK(classes(3) == 1);
    CHECK(classes(17) == 2);
    CHECK(classes(90) == 3);
    CHECK(classes.category(3) == 90);
    check_contains(error_of([&] { (void)classes(4); }), {"category id 4"});

    const auto gt =
        snip::assign_chip(cfg, c, r.width, r.height,
                          snip::box_view<const double>(snip::as_box_view(r.boxes)), r.crowd);
    const auto t = snip::train::make_target(ds, cfg, {0, c, false, false}, classes);
    // The chip's valid range in chip px (the plan's range x the chip's factor 2), open ends open:
    // the detector drops training proposals outside it, as the original's MultiProposalTarget.
    const snip::valid_range& r0 = cfg.ranges[0];
    CHECK(t.range.lo == (r0.has_lo() ? 2.0 * r0.lo : -1.0));
    CHECK(t.range.hi == (r0.has_hi() ? 2.0 * r0.hi : -1.0));
    REQUIRE(t.boxes.size(0) == std::int64_t(gt.size()));
    REQUIRE(gt.size() == 3);
    const auto b = t.boxes.accessor<float, 2>();
    for (std::size_t k = 0; k < gt.size(); ++k) {
        CHECK(b[std::int64_t(k)][0] == gt[k].b.x1);
        CHECK(b[std::int64_t(k)][1] == gt[k].b.y1);
        CHECK(b[std::int64_t(k)][2] == gt[k].b.x2);
        CHECK(b[std::int64_t(k)][3] == gt[k].b.y2);
        CHECK(t.states[std::int64_t(k)].item<std::uint8_t>() == std::uint8_t(gt[k].state));
        CHECK(t.gt_index[std::int64_t(k)].item<std::int64_t>() == gt[k].index);
    }
    CHECK(t.states[0].item<std::uint8_t>() == std::uint8_t(snip::gt_state::valid));
    CHECK(t.states[1].item<std::uint8_t>() == std::uint8_t(snip::gt_state::invalid));
    CHECK(t.states[2].item<std::uint8_t>() == std::uint8_t(snip::gt_state::crowd));
    CHECK(t.classes[0].item<std::int64_t>() == 2);
    CHECK(t.classes[1].item<std::int64_t>() == 1);
    CHECK(t.classes[2].item<std::int64_t>() == 3);
    // box 0: original [30,20,70,60] x2 = [60,40,140,120], chip at (40,20): [20,20,100,100]
    CHECK(b[0][0] == 20.f);
    CHECK(b[0][2] == 100.f);

    // mirrored: x' = chip_w - x (continuous), y unchanged, order kept
    const auto f = snip::train::make_target(ds, cfg, {0, c, false, true}, classes);
    const auto fb = f.boxes.accessor<float, 2>();
    for (std::int64_t k = 0; k < f.boxes.size(0); ++k) {
        CHECK(fb[k][0] == 128.f - b[k][2]);
        CHECK(fb[k][2] == 128.f - b[k][0]);
        CHECK(fb[k][1] == b[k][1]);
        CHECK(fb[k][3] == b[k][3]);
    }
    CHECK(at::equal(f.states, t.states));

    // inclusive convention: x' = (chip_w - 1) - x
    snip::plan_config inc = cfg;
    inc.convention = snip::pixel_convention::inclusive;
    const snip::chip ci{0, 2.0, {40, 20, 167, 147}, {0}, {}};
    const auto ti = snip::train::make_target(ds, inc, {0, ci, false, false}, classes);
    const auto fi = snip::train::make_target(ds, inc, {0, ci, false, true}, classes);
    REQUIRE(ti.boxes.size(0) == fi.boxes.size(0));
    CHECK(at::allclose(fi.boxes.select(1, 0), 127.f - ti.boxes.select(1, 2)));
    CHECK(at::allclose(fi.boxes.select(1, 2), 127.f - ti.boxes.select(1, 0)));
}

TEST_CASE("a mirrored chip shows the object where its mirrored box says") {
    // a black image with a white box: the white pixels of the chip must fill the target box
    snip::dataset ds;
    ds.categories = {{1, "a"}};
    snip::image_record r;
    r.file_name = "white_box.png";
    r.width = 160;
    r.height = 120;
    r.boxes = {{30, 20, 70, 60}};
    r.categories = {1};
    r.crowd = {0};
    r.ann_ids = {1};
    ds.images.push_back(r);
    image src(160, 120);
    for (int y = 20; y < 60; ++y)
        for (int x = 30; x < 70; ++x)
            for (int c = 0; c < 3; ++c)
                src.row(y)[3 * x + c] = 255;
    const snip::plan_config cfg = small_config();
    const snip::chip c{0, 2.0, {40, 20, 168, 148}, {0}, {}};
    const int S = cfg.chip_size;
    for (bool flip : {false, true}) {
        CAPTURE(flip);
        const snip::train::chip_job job{0, c, false, flip};
        std::vector<float> buf(std::size_t(3) * S * S);
        snip::train::fill_chip(src, cfg, job, snip::train::chw_view{buf.data(), S, S * S},
                          snip::train::normalisation::raw());
        const auto t = snip::train::make_target(ds, cfg, job, snip::train::class_map(ds));
        const auto b = t.boxes.accessor<float, 2>();
        // every pixel whose centre is 1 px inside the box is white, 1 px outside black
        std::size_t wrong = 0;
        for (int y = 0; y < S; ++y)
            for (int x = 0; x < S; ++x) {
                const double cx = x + 0.5, cy = y + 0.5;
                const bool in =
                    cx > b[0][0] + 1 && cx < b[0][2] - 1 && cy > b[0][1] + 1 && cy < b[0][3] - 1;
                const bool out =
                    cx < b[0][0] - 1 || cx > b[0][2] + 1 || cy < b[0][1] - 1 || cy > b[0][3] + 1;
                const float v = buf[std::size_t(y) * S + x];
                if ((in && v < 254.99f) || (out && v > 0.01f)) ++wrong;
            }
        CHECK(wrong == 0);
        CHECK(b[0][0] == (flip ? 28.f : 20.f));
    }
}

// ---------------------------------------------------------------------------------------
// Jobs

TEST_CASE("make_chip_jobs: positives and sampled negatives, seeded shuffle and flips") {
    std::vector<snip::image_chips_plan> plans(3);
    for (int i = 0; i < 3; ++i) {
        for (int k = 0; k < 4; ++k)
            plans[std::size_t(i)].plan.positives.push_back({0, 1.0, {k, i, k + 10, i + 10}, {k}, {}});
        for (int k = 0; k < 3; ++k)
            plans[std::size_t(i)].negatives.push_back({1, 0.5, {k, 50, k + 10, 60}, {}, {}});
        plans[std::size_t(i)].sampled = {2, 0};
    }
    const auto plain =
        snip::train::make_chip_jobs(plans, {.flip = snip::train::flip_policy::none, .shuffle = false});
    REQUIRE(plain.size() == 18);
    CHECK(plain[0].image == 0);
    CHECK(plain[4].negative);
    CHECK(plain[4].chip.rect.x1 == 2);
    CHECK(plain[5].chip.rect.x1 == 0);
    CHECK(std::none_of(plain.begin(), plain.end(), [](const auto& j) { return j.flipped; }));

    const snip::train::flip_policy rnd = snip::train::flip_policy::random;
    const auto a = snip::train::make_chip_jobs(plans, {.seed = 5, .epoch = 1, .flip = rnd});
    const auto b = snip::train::make_chip_jobs(plans, {.seed = 5, .epoch = 1, .flip = rnd});
    const auto c = snip::train::make_chip_jobs(plans, {.seed = 5, .epoch = 2, .flip = rnd});
    auto key = [](const std::vector<snip::train::chip_job>& v) {
        std::vector<std::tuple<std::size_t, int, int, int, bool>> k;
        for (const auto& j : v)
            k.emplace_back(j.image, j.chip.scale, j.chip.rect.x1, j.chip.rect.y1, j.flipped);
        return k;
    };
    CHECK(bool(key(a) == key(b)));
    CHECK(bool(key(a) != key(c)));
    const auto flips = std::count_if(a.begin(), a.end(), [](const auto& j) { return j.flipped; });
    CHECK(flips > 0);
    CHECK(flips < 18);

    const auto both = snip::train::make_chip_jobs(plans, {.flip = snip::train::flip_policy::both});
    CHECK(both.size() == 36);
    CHECK(std::count_if(both.begin(), both.end(), [](const auto& j) { return j.flipped; }) == 18);
    // The default is the original's (FLIP: true adds a mirrored copy of every image): both.
    const auto def = snip::train::make_chip_jobs(plans, {.seed = 5});
    CHECK(def.size() == 36);
    CHECK(std::count_if(def.begin(), def.end(), [](const auto& j) { return j.flipped; }) == 18);
    CHECK(snip::train::job_options{}.flip == snip::train::flip_policy::both);
    const auto noneg = snip::train::make_chip_jobs(plans, {.flip = rnd, .negatives = false});
    CHECK(noneg.size() == 12);
}

// ---------------------------------------------------------------------------------------
// The decoded-image cache, from several threads (the TSan build checks it for races)

TEST_CASE("image_cache: a waiter shares the one decode, or gets its error's message") {
    for (bool fail : {false, true}) {
        CAPTURE(fail);
        snip::train::image_cache cache(std::size_t(1) << 20);
        std::atomic<bool> release{false};
        std::shared_ptr<const image> first, second;
        std::string first_error, second_error;
        std::thread loader([&] {
            try {
                first = cache.get(7, [&] {
                    while (!release.load()) // until the other thread waits for this decode
                        std::this_thread::yield();
                    if (fail) throw snip::error("image 7: corrupt");
                    return test_image(16, 8, 7);
                });
            } catch (const snip::error& e) {
                first_error = e.what();
            }
        });
        while (cache.misses() == 0) // the loader thread owns the decode...
            std::this_thread::yield();
        std::thread waiter([&] {
            try {
                second = cache.get(7, [&]() -> image { throw std::logic_error("decoded twice"); });
            } catch (const std::exception& e) {
                second_error = e.what();
            }
        });
        while (cache.hits() == 0) // ... and the waiter found it in flight
            std::this_thread::yield();
        release = true;
        loader.join();
        waiter.join();
        CHECK(cache.misses() == 1);
        if (fail) {
            CHECK(first_error == "image 7: corrupt");
            CHECK(second_error == "image 7: corrupt");
            CHECK(cache.bytes() == 0);
        } else {
            REQUIRE(first);
            CHECK(second == first);
            CHECK(first_error.empty());
            CHECK(second_error.empty());
            CHECK(cache.bytes() == 16u * 8u * 3u);
        }
    }
}

TEST_CASE("image_cache: 4 threads, evictions, failing loads: right pixels, budget kept") {
    constexpr int side = 16, keys = 9, rounds = 150, threads = 4;
    const std::size_t one = std::size_t(side) * side * 3;
    snip::train::image_cache cache(3 * one); // room for 3 of the 9 images
    std::atomic<int> loads{0};
    std::vector<int> wrong(threads, 0), errors(threads, 0), bad_messages(threads, 0);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            snip::splitmix64 g{std::uint64_t(t) + 1};
            for (int r = 0; r < rounds; ++r) {
                const auto key = std::size_t(g.below(keys));
                try {
                    const auto img = cache.get(key, [&] {
                        ++loads;
                        if (key == 4) throw snip::error("image 4: truncated");
                        return test_image(side, side, key);
                    });
                    if (img->px != test_image(side, side, key).px) ++wrong[t];
                } catch (const snip::error& e) {
                    ++errors[t];
                    if (key != 4 || std::string(e.what()) != "image 4: truncated") ++bad_messages[t];
                }
            }
        });
    for (auto& th : pool)
        th.join();
    int failed = 0;
    for (int t = 0; t < threads; ++t) {
        CHECK(wrong[t] == 0);
        CHECK(bad_messages[t] == 0);
        failed += errors[t];
    }
    CHECK(failed > 0);
    CHECK(cache.hits() + cache.misses() == std::size_t(threads * rounds));
    CHECK(cache.misses() == std::size_t(loads.load()));
    CHECK(cache.bytes() <= 3 * one);
}

// ---------------------------------------------------------------------------------------
// The loader

TEST_CASE("chip_loader: the same batches with 0, 1 and 3 workers") {
    const snip::dataset ds = synthetic_dataset(12, 11);
    const snip::plan_config cfg = small_config();
    const auto plans = snip::plan_dataset(cfg, ds, nullptr, plan_options(3));
    const auto jobs = snip::train::make_chip_jobs(plans, {.seed = 3});
    REQUIRE(jobs.size() > 12);
    std::vector<std::vector<snip::train::chip_batch>> runs;
    for (unsigned workers : {1u, 3u, 0u}) {
        snip::train::chip_loader loader(
            ds, cfg, jobs, synthetic_source(ds),
            {.batch_size = 5, .workers = workers, .max_batches = 2, .cache_bytes = 200000});
        CHECK(loader.num_batches() == (jobs.size() + 4) / 5);
        runs.push_back(drain_loader(loader));
        CHECK(loader.cache().bytes() <= 200000);
        CHECK(loader.cache().hits() + loader.cache().misses() == jobs.size());
    }
    REQUIRE(runs[0].size() == (jobs.size() + 4) / 5);
    CHECK(runs[0].back().images.size(0) == std::int64_t(jobs.size() - 5 * (runs[0].size() - 1)));
    CHECK(same_batches(runs[0], runs[1]));
    CHECK(same_batches(runs[0], runs[2]));
    // batch k holds jobs [5k, 5k + 5) in order
    std::size_t j = 0;
    bool in_order = true;
    for (const auto& b : runs[1])
        for (const auto& t : b.targets) {
            in_order = in_order && t.job.image == jobs[j].image &&
                       t.job.chip.rect == jobs[j].chip.rect && t.job.flipped == jobs[j].flipped;
            ++j;
        }
    CHECK(in_order);
    CHECK(j == jobs.size());
    // drop_last
    snip::train::chip_loader dl(ds, cfg, jobs, synthetic_source(ds),
                           {.batch_size = 5, .drop_last = true});
    CHECK(dl.num_batches() == jobs.size() / 5);
}

TEST_CASE("chip_loader: never more than Q batches alive, and a clean stop mid-epoch") {
    const snip::dataset ds = synthetic_dataset(12, 12);
    const snip::plan_config cfg = small_config();
    const auto plans = snip::plan_dataset(cfg, ds, nullptr, plan_options(0));
    const auto jobs = snip::train::make_chip_jobs(plans);
    std::atomic<int> decodes{0};
    auto source = [&](std::size_t i) {
        ++decodes;
        return test_image(ds.images[i].width, ds.images[i].height, i);
    };
    {
        snip::train::chip_loader loader(
            ds, cfg, jobs, source,
            {.batch_size = 2, .workers = 3, .max_batches = 2, .cache_bytes = 0});
        REQUIRE(loader.num_batches() >= 6);
        std::size_t got = 0;
        auto wait_full = [&] { // the workers fill the queue (Q = 2)...
            for (int t = 0; t < 400 && loader.in_flight() < 2; ++t)
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            return loader.in_flight();
        };
        for (int k = 0; k < 4; ++k) {
            CHECK(wait_full() == 2);
            // ... and then wait for this slow consumer
            std::this_thread::sleep_for(std::chrono::milliseconds(30));
            CHECK(loader.in_flight() == 2);
            // counted independently: images loaded (one per chip, no cache) never run
            // more than Q batches of B = 2 chips ahead of the batches taken
            CHECK(decodes.load() <= int((got + 2) * 2));
            auto b = loader.next();
            REQUIRE(b);
            CHECK(b->index == got);
            ++got;
        }
        CHECK(loader.peak_in_flight() == 2);
    } // the destructor stops the workers with batches still queued
    CHECK(decodes.load() > 0);

    snip::train::chip_loader one(ds, cfg, jobs, source,
                            {.batch_size = 3, .workers = 2, .max_batches = 1});
    const auto all = drain_loader(one);
    CHECK(all.size() == one.num_batches());
    CHECK(one.peak_in_flight() == 1);
}

TEST_CASE("decode errors name the file: missing, empty, truncated, corrupt") {
    temp_dir dir;
    const auto jpeg = encode_jpeg(test_image(64, 48, 2));
    const std::string good = dir.write("good.jpg", jpeg);
    const image ok = snip::train::decode_image(good);
    CHECK(ok.w == 64);
    CHECK(ok.h == 48);
    CHECK(ok.bytes() == 64u * 48u * 3u);

    const std::string missing = (dir.path / "missing.jpg").string();
    check_contains(error_of([&] { (void)snip::train::decode_image(missing); }),
                   {missing, "cannot open", "No such file"});
    const std::string empty = dir.write("empty.jpg", {});
    check_contains(error_of([&] { (void)snip::train::decode_image(empty); }), {empty, "empty"});
    const std::string truncated =
        dir.write("truncated.jpg",
                  std::vector<std::uint8_t>(jpeg.begin(), jpeg.begin() + long(jpeg.size() / 2)));
    check_contains(error_of([&] { (void)snip::train::decode_image(truncated); }),
                   {truncated, "truncated"});
    std::vector<std::uint8_t> garbage(jpeg.begin(), jpeg.begin() + 2);
    for (int i = 0; i < 500; ++i)
        garbage.push_back(std::uint8_t(i * 37));
    garbage.push_back(0xFF);
    garbage.push_back(0xD9);
    const std::string corrupt = dir.write("corrupt.jpg", garbage);
    check_contains(error_of([&] { (void)snip::train::decode_image(corrupt); }), {corrupt, "corrupt"});
    const std::string text = dir.write("text.jpg", {'h', 'e', 'l', 'l', 'o'});
    check_contains(error_of([&] { (void)snip::train::decode_image(text); }), {text, "corrupt"});
}

TEST_CASE("chip_loader: a worker's error reaches next() at its batch, naming the file") {
    temp_dir dir;
    snip::dataset ds = synthetic_dataset(6, 21);
    const snip::plan_config cfg = small_config();
    for (std::size_t i = 0; i < ds.images.size(); ++i) {
        const auto& r = ds.images[i];
        auto bytes = encode_jpeg(test_image(r.width, r.height, i));
        if (i == 4) bytes.resize(bytes.size() / 3); // truncated
        dir.write(r.file_name, bytes);
    }
    const auto plans = snip::plan_dataset(cfg, ds, nullptr, plan_options(0));
    auto jobs = snip::train::make_chip_jobs(plans, {.shuffle = false});
    // the first chip of image 4 is chip `bad`; batches before it load fine
    const auto bad = std::size_t(
        std::find_if(jobs.begin(), jobs.end(), [](const auto& j) { return j.image == 4; }) -
        jobs.begin());
    REQUIRE(bad < jobs.size());
    for (unsigned workers : {0u, 1u, 3u}) {
        CAPTURE(workers);
        snip::train::chip_loader loader(ds, cfg, jobs, snip::train::files_in(ds, dir.path.string()),
                                   {.batch_size = 2, .workers = workers});
        std::size_t good = 0;
        std::string msg;
        try {
            while (loader.next())
                ++good;
        } catch (const snip::error& e) {
            msg = e.what();
        }
        CHECK(good == bad / 2);
        check_contains(msg, {"synthetic_4.jpg", "truncated", "batch " + std::to_string(bad / 2)});
        // the loader stays failed
        check_contains(error_of([&] { (void)loader.next(); }), {"synthetic_4.jpg"});
    }
}

TEST_CASE("files_in: an image of another size than its annotation is an error naming both "
          "sizes (swapped: the EXIF hint)") {
    temp_dir dir;
    snip::dataset ds = synthetic_dataset(3, 4);
    ds.source = "ann.json";
    const auto& r = ds.images;
    dir.write(r[0].file_name, encode_jpeg(test_image(r[0].width, r[0].height, 0)));
    dir.write(r[1].file_name, encode_jpeg(test_image(r[1].width + 10, r[1].height, 1)));
    dir.write(r[2].file_name, encode_jpeg(test_image(r[2].height, r[2].width, 2)));
    const snip::train::image_source src = snip::train::files_in(ds, dir.path.string());
    CHECK(src(0).w == r[0].width);
    check_contains(error_of([&] { (void)src(1); }),
                   {r[1].file_name, "is " + std::to_string(r[1].width + 10) + " x " +
                                        std::to_string(r[1].height) + " pixels",
                    "ann.json", "width " + std::to_string(r[1].width)});
    const std::string m = error_of([&] { (void)src(2); });
    check_contains(m, {r[2].file_name, "swapped", "EXIF"});
    CHECK(m.find("swapped") != std::string::npos);
    CHECK(error_of([&] { (void)src(1); }).find("swapped") == std::string::npos);
}

namespace {

/// Chips of `jobs` whose image is not in `bad`.
std::size_t chips_without(const std::vector<snip::train::chip_job>& jobs,
                          const std::vector<std::size_t>& bad) {
    return std::size_t(std::count_if(jobs.begin(), jobs.end(), [&](const auto& j) {
        return std::find(bad.begin(), bad.end(), j.image) == bad.end();
    }));
}

/// Runs the loader to the end; returns (chips, skipped names) or throws its error.
std::pair<std::size_t, std::vector<std::string>> drain_skipping(snip::train::chip_loader& loader) {
    std::size_t chips = 0;
    std::vector<std::string> skipped;
    while (auto b = loader.next()) {
        CHECK(b->images.size(0) == std::int64_t(b->targets.size()));
        chips += b->targets.size();
        for (const auto& w : b->skipped)
            if (std::find(skipped.begin(), skipped.end(), w) == skipped.end()) skipped.push_back(w);
    }
    return {chips, skipped};
}

} // namespace

TEST_CASE("chip_loader: skip_bad_images leaves out the chips of a truncated and a missing "
          "image and names them; without it the error stops the loader") {
    temp_dir dir;
    snip::dataset ds = synthetic_dataset(6, 21);
    const snip::plan_config cfg = small_config();
    for (std::size_t i = 0; i < ds.images.size(); ++i) {
        const auto& r = ds.images[i];
        auto bytes = encode_jpeg(test_image(r.width, r.height, i));
        if (i == 2) bytes.resize(bytes.size() / 3); // truncated
        if (i != 4) dir.write(r.file_name, bytes);  // image 4 is missing
    }
    const auto plans = snip::plan_dataset(cfg, ds, nullptr, plan_options(0));
    const auto jobs = snip::train::make_chip_jobs(plans, {.seed = 3});
    for (unsigned workers : {0u, 2u}) {
        CAPTURE(workers);
        snip::train::chip_loader skip(ds, cfg, jobs, snip::train::files_in(ds, dir.path.string()),
                                      {.batch_size = 3, .workers = workers, .skip_bad_images = true});
        const auto [chips, skipped] = drain_skipping(skip);
        CHECK(chips == chips_without(jobs, {2, 4}));
        REQUIRE(skipped.size() == 2);
        std::string all = skipped[0] + "\n" + skipped[1];
        check_contains(all, {"synthetic_2.jpg", "truncated", "synthetic_4.jpg", "No such file"});
        snip::train::chip_loader strict(ds, cfg, jobs, snip::train::files_in(ds, dir.path.string()),
                                        {.batch_size = 3, .workers = workers});
        const std::string m = error_of([&] { (void)drain_skipping(strict); });
        CHECK((m.find("synthetic_2.jpg") != std::string::npos ||
               m.find("synthetic_4.jpg") != std::string::npos));
    }
}

// ---------------------------------------------------------------------------------------
// Real images

TEST_CASE("coco128: real JPEGs through the pipeline with the sniper_coco preset") {
    const std::string ann = snip_test::data_file("coco128/instances_coco128.json");
    if (ann.empty()) return;
    const std::string images = (fs::path(ann).parent_path() / "images").string();
    snip::dataset ds = snip::io::read_coco(ann);
    ds.images.resize(std::min<std::size_t>(ds.images.size(), 12));
    const auto cfg = snip::plan_config::sniper_coco();
    const auto plans = snip::plan_dataset(cfg, ds, nullptr, plan_options(1));
    const auto jobs = snip::train::make_chip_jobs(plans, {.seed = 1});
    snip::train::chip_loader loader(ds, cfg, jobs, snip::train::files_in(ds, images),
                               {.batch_size = 4, .workers = 2, .max_batches = 2});
    std::size_t chips = 0, boxes = 0, valid = 0;
    for (int k = 0; k < 3; ++k) {
        auto b = loader.next();
        if (!b) break;
        CHECK(b->images.sizes() == at::IntArrayRef({std::int64_t(b->targets.size()), 3, 512, 512}));
        CHECK(at::isfinite(b->images).all().item<bool>());
        for (std::size_t i = 0; i < b->targets.size(); ++i) {
            const auto& t = b->targets[i];
            ++chips;
            boxes += std::size_t(t.boxes.size(0));
            valid += std::size_t((t.states == 0).sum().item<std::int64_t>());
            if (t.boxes.size(0) > 0) {
                CHECK(t.boxes.min().item<float>() >= 0.f);
                CHECK(t.boxes.max().item<float>() <= 511.f);
            }
            // the chip against the slow reference
            const auto& im = ds.images[t.job.image];
            const image src = snip::train::decode_image((fs::path(images) / im.file_name).string());
            CHECK(src.w == im.width);
            CHECK(src.h == im.height);
            const auto& c = t.job.chip;
            const auto ref = reference_chip(src, c.factor, c.factor, c.rect.x1, c.rect.y1, t.width,
                                            t.height, t.job.flipped);
            const auto chip = b->images[std::int64_t(i)];
            const snip::train::normalisation norm;
            double md = 0;
            for (int ch = 0; ch < 3; ++ch) {
                const auto plane = chip[ch].contiguous();
                const float* p = plane.data_ptr<float>();
                for (int y = 0; y < t.height; y += 7)
                    for (int x = 0; x < t.width; x += 5) {
                        const double r = ref[(std::size_t(y) * t.width + x) * 3 + ch];
                        const double want = r < 0 ? 0.0
                                                  : (r / 255.0 - norm.mean[std::size_t(ch)]) /
                                                        norm.std[std::size_t(ch)];
                        md = std::max(md, std::fabs(p[y * 512 + x] - want));
                    }
            }
            CHECK(md <= 1e-4);
        }
    }
    CHECK(chips == std::min<std::size_t>(12, jobs.size()));
    CHECK(valid > 0);
    MESSAGE("coco128: " << jobs.size() << " chips planned for 12 images; 3 batches: " << chips
                        << " chips, " << boxes << " boxes (" << valid << " valid)");
}

TEST_CASE("coco128 copy: a truncated JPEG and a deleted file are named, or skipped with "
          "skip_bad_images") {
    const std::string ann = snip_test::data_file("coco128/instances_coco128.json");
    if (ann.empty()) return;
    const fs::path images = fs::path(ann).parent_path() / "images";
    snip::dataset ds = snip::io::read_coco(ann);
    ds.images.resize(std::min<std::size_t>(ds.images.size(), 6));
    temp_dir dir; // the copy; the shared data stays untouched
    for (const auto& im : ds.images) fs::copy_file(images / im.file_name, dir.path / im.file_name);
    fs::resize_file(dir.path / ds.images[1].file_name, fs::file_size(dir.path / ds.images[1].file_name) / 2);
    fs::remove(dir.path / ds.images[3].file_name);
    const auto cfg = snip::plan_config::sniper_coco();
    const auto plans = snip::plan_dataset(cfg, ds, nullptr, plan_options(1));
    const auto jobs = snip::train::make_chip_jobs(plans, {.seed = 1});
    snip::train::chip_loader skip(ds, cfg, jobs, snip::train::files_in(ds, dir.path.string()),
                                  {.batch_size = 4, .workers = 2, .skip_bad_images = true});
    const auto [chips, skipped] = drain_skipping(skip);
    CHECK(chips == chips_without(jobs, {1, 3}));
    REQUIRE(skipped.size() == 2);
    check_contains(skipped[0] + "\n" + skipped[1],
                   {ds.images[1].file_name, "truncated", ds.images[3].file_name, "No such file"});
    snip::train::chip_loader strict(ds, cfg, jobs, snip::train::files_in(ds, dir.path.string()),
                                    {.batch_size = 4, .workers = 2});
    const std::string m = error_of([&] { (void)drain_skipping(strict); });
    CHECK((m.find(ds.images[1].file_name) != std::string::npos ||
           m.find(ds.images[3].file_name) != std::string::npos));
    MESSAGE("coco128 copy: " << jobs.size() << " chips planned, " << chips
                             << " loaded with 2 bad images skipped");
}

TEST_CASE("decode_image refuses, before decoding, a header claiming more pixels than its limit "
          "and a JPEG Huffman table of more than 256 codes or never defined") {
    temp_dir dir;
    std::vector<std::uint8_t> bytes;
    auto sink = [](void* ctx, void* data, int size) {
        auto* v = static_cast<std::vector<std::uint8_t>*>(ctx);
        v->insert(v->end(), static_cast<std::uint8_t*>(data),
                  static_cast<std::uint8_t*>(data) + size);
    };
    const image small = test_image(2, 2, 5);
    auto put_be32 = [](std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
        for (int i = 0; i < 4; ++i)
            b[at + std::size_t(i)] = std::uint8_t(v >> (24 - 8 * i));
    };
    auto put_le32 = [](std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
        for (int i = 0; i < 4; ++i)
            b[at + std::size_t(i)] = std::uint8_t(v >> (8 * i));
    };

    // A 2 x 2 PNG whose header (IHDR width and height, bytes 16..23) claims 100000 x 100000.
    REQUIRE(stbi_write_png_to_func(sink, &bytes, 2, 2, 3, small.px.data(), 6) != 0);
    put_be32(bytes, 16, 100000);
    put_be32(bytes, 20, 100000);
    const std::string png = dir.write("huge.png", bytes);
    check_contains(error_of([&] { (void)snip::train::decode_image(png); }),
                   {png, "100000 x 100000", "10000000000 pixels", "limit of 268435456"});

    // A 2 x 2 BMP claiming 20000 x 20000: 1.2 GB that stb_image would allocate and fill
    // from nothing (below its own limit of 2^31 bytes), refused by snip's 2^28 pixels.
    bytes.clear();
    REQUIRE(stbi_write_bmp_to_func(sink, &bytes, 2, 2, 3, small.px.data()) != 0);
    put_le32(bytes, 18, 20000);
    put_le32(bytes, 22, 20000);
    const std::string bmp = dir.write("huge.bmp", bytes);
    check_contains(error_of([&] { (void)snip::train::decode_image(bmp); }),
                   {bmp, "20000 x 20000", "limit"});

    // The limit is a parameter: an image of exactly max_pixels decodes, one more refuses.
    const auto jpeg = encode_jpeg(test_image(64, 48, 6));
    const std::string ok = dir.write("ok.jpg", jpeg);
    CHECK(snip::train::decode_image(ok, 64 * 48).w == 64);
    check_contains(error_of([&] { (void)snip::train::decode_image(ok, 64 * 48 - 1); }),
                   {ok, "64 x 48", "limit of 3071"});
    CHECK(snip::train::decode_image(jpeg.data(), jpeg.size(), "in memory").h == 48);

    // A DHT segment whose 16 code counts add up to more than 256 (stb_image 2.27 would
    // write past its tables).
    std::vector<std::uint8_t> bad = jpeg;
    std::size_t dht = 0;
    for (std::size_t i = 2; i + 21 < bad.size() && !dht; ++i)
        if (bad[i] == 0xFF && bad[i + 1] == 0xC4) dht = i;
    REQUIRE(dht > 0);
    bad[dht + 5 + 14] = 200; // the counts of 15- and 16-bit codes
    bad[dht + 5 + 15] = 200;
    const std::string huff = dir.write("bad_huffman.jpg", bad);
    check_contains(error_of([&] { (void)snip::train::decode_image(huff); }),
                   {huff, "corrupt JPEG", "Huffman table", "more than the 256"});

    // A scan that selects a Huffman table no DHT segment defined (stb would decode with the
    // uninitialised memory of that table): the DHT's second table, AC 0, relabelled DC 0.
    std::vector<std::uint8_t> undefined = jpeg;
    const std::size_t first = dht + 4; // the first table's class/id byte
    REQUIRE(undefined[first] == 0x00);
    std::size_t codes = 0;
    for (std::size_t i = 1; i <= 16; ++i) codes += undefined[first + i];
    const std::size_t second = first + 17 + codes;
    REQUIRE(undefined[second] == 0x10);
    undefined[second] = 0x00;
    const std::string und = dir.write("undefined_huffman.jpg", undefined);
    check_contains(error_of([&] { (void)snip::train::decode_image(und); }),
                   {und, "corrupt JPEG", "selects the AC Huffman table 0",
                    "which no DHT segment before it defines"});
}
