// The trainer's synthetic dataset with pixels (trainer/include/snip/train/synthetic.hpp):
// determinism, boxes inside their images with the requested size range, objects that
// stand out from a textured background, the PNG + COCO round trip through write_synthetic,
// option errors naming the field, the in-memory image source feeding the chip loader,
// and a small multi-scale plan that covers every box; the instance masks (polygons that
// rasterise to the drawn shapes, their areas, bounds and the ellipse polygons' 0.1 px bound).
#include <snip/train/data.hpp>
#include <snip/train/image.hpp>
#include <snip/train/synthetic.hpp>

#include "test_util.hpp"

#if __has_include(<snip_apps/draw_detections.hpp>) // the programs' picture of detections
#include <snip_apps/draw_detections.hpp>           // (absent when the programs are not built)
#define SNIP_TEST_DRAW_DETECTIONS 1
#endif

#include <snip/io/coco.hpp>
#include <snip/mask/polygon.hpp>
#include <snip/mask/rle.hpp>
#include <snip/sniper/dataset_plan.hpp>
#include <snip/sniper/plan.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

using snip::train::image;

/// A fresh, empty temporary folder, removed by the destructor.
struct temp_dir {
    fs::path path;
    explicit temp_dir(const std::string& name) {
        path = fs::temp_directory_path() /
               (name + "_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
        fs::remove_all(path);
    }
    ~temp_dir() {
        std::error_code ignore;
        fs::remove_all(path, ignore);
    }
};

bool same_records(const snip::image_record& a, const snip::image_record& b) {
    return a.id == b.id && a.file_name == b.file_name && a.width == b.width &&
           a.height == b.height && a.boxes == b.boxes && a.ann_ids == b.ann_ids &&
           a.categories == b.categories && a.crowd == b.crowd && a.areas == b.areas &&
           a.segments == b.segments;
}

/// The analytic area of shape `cls` (0-based) filling box b (see synthetic.hpp).
double shape_area(int cls, const snip::box<double>& b) {
    constexpr double pi = 3.14159265358979323846, t = 0.36;
    const double wh = b.width() * b.height(); // = 4 hw hh
    switch (cls) {
    case 0:
        return pi / 4 * wh; // ellipse
    case 1:
        return wh; // rectangle
    case 2:
    case 3:
        return wh / 2; // triangle, rhombus
    case 4:
        return (8 * t - 4 * t * t) / 4 * wh; // two bars less their overlap
    default:
        return pi / 4 * (1 - 0.4 * 0.4) * wh; // annulus
    }
}

/// The largest distance between the ellipse (centre c, semi-axes a, b) and the polygon
/// whose vertex k sits at parameter angle first + step k (from vertex `from`, `n` of
/// them, in p): every arc between two vertices sampled against its chord.
double ellipse_gap(const snip::mask::polygon& p, std::size_t from, int n, double cx, double cy,
                   double a, double b, double step) {
    double worst = 0;
    for (int k = 0; k < n; ++k) {
        const std::size_t i = from + std::size_t(k), j = from + std::size_t((k + 1) % n);
        const double x0 = p[2 * i], y0 = p[2 * i + 1], x1 = p[2 * j], y1 = p[2 * j + 1];
        const double len = std::hypot(x1 - x0, y1 - y0);
        for (int s = 0; s <= 64; ++s) {
            const double th = step * (k + s / 64.0);
            const double x = cx + a * std::cos(th), y = cy + b * std::sin(th);
            worst = std::max(worst, std::fabs((x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)) / len);
        }
    }
    return worst;
}

/// Mean colour of the pixels whose centre lies inside `inner` but not inside `hole`.
std::array<double, 3> mean_colour(const image& im, const snip::box<double>& inner,
                                  const snip::box<double>* hole, std::size_t* count) {
    std::array<double, 3> sum{0, 0, 0};
    std::size_t n = 0;
    for (int y = std::max(0, int(inner.y1)); y < std::min(im.h, int(std::ceil(inner.y2))); ++y)
        for (int x = std::max(0, int(inner.x1)); x < std::min(im.w, int(std::ceil(inner.x2))); ++x) {
            const double cx = x + 0.5, cy = y + 0.5;
            if (!(cx >= inner.x1 && cx < inner.x2 && cy >= inner.y1 && cy < inner.y2)) continue;
            if (hole && cx >= hole->x1 && cx < hole->x2 && cy >= hole->y1 && cy < hole->y2) continue;
            for (int c = 0; c < 3; ++c)
                sum[std::size_t(c)] += im.at(x, y, c);
            ++n;
        }
    if (count) *count = n;
    for (auto& s : sum)
        s /= double(std::max<std::size_t>(1, n));
    return sum;
}

snip::box<double> grow(const snip::box<double>& b, double m) {
    return {b.x1 - m, b.y1 - m, b.x2 + m, b.y2 + m};
}

bool boxes_touch(const snip::box<double>& a, const snip::box<double>& b) {
    return std::min(a.x2, b.x2) > std::max(a.x1, b.x1) && std::min(a.y2, b.y2) > std::max(a.y1, b.y1);
}

} // namespace

TEST_CASE("make_synthetic: the same seed gives the same set, another seed another one") {
    snip::train::synthetic_options o;
    o.images = 12;
    o.max_side = 400;
    const auto a = snip::train::make_synthetic(o);
    const auto b = snip::train::make_synthetic(o);
    REQUIRE(a.ds.images.size() == 12);
    REQUIRE(a.pixels.size() == 12);
    for (std::size_t i = 0; i < a.ds.images.size(); ++i) {
        CHECK(same_records(a.ds.images[i], b.ds.images[i]));
        CHECK(a.pixels[i].px == b.pixels[i].px);
    }
    // A shorter set is a prefix of a longer one.
    o.images = 5;
    const auto prefix = snip::train::make_synthetic(o);
    for (std::size_t i = 0; i < 5; ++i) {
        CHECK(same_records(prefix.ds.images[i], a.ds.images[i]));
        CHECK(prefix.pixels[i].px == a.pixels[i].px);
    }
    o.images = 12;
    o.seed = 2;
    const auto c = snip::train::make_synthetic(o);
    std::size_t same_pixels = 0, same_boxes = 0;
    for (std::size_t i = 0; i < a.ds.images.size(); ++i) {
        same_pixels += a.pixels[i].px == c.pixels[i].px;
        same_boxes += a.ds.images[i].boxes == c.ds.images[i].boxes;
    }
    CHECK(same_pixels == 0);
    CHECK(same_boxes == 0);
}

TEST_CASE("make_synthetic: ids, names, boxes inside their images, classes and sizes as asked") {
    snip::train::synthetic_options o;
    o.images = 64;
    o.classes = 6;
    o.min_side = 200;
    o.max_side = 480;
    o.min_object = 6;
    o.max_object_fraction = 0.5;
    const auto t0 = std::chrono::steady_clock::now();
    const auto s = snip::train::make_synthetic(o);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("64 images of 200..480 px generated in ", secs, " s");

    REQUIRE(s.ds.categories.size() == 6);
    const char* names[] = {"disc", "square", "triangle", "diamond", "cross", "ring"};
    for (int k = 0; k < 6; ++k) {
        CHECK(s.ds.categories[std::size_t(k)].id == k + 1);
        CHECK(s.ds.categories[std::size_t(k)].name == names[k]);
    }
    std::set<std::int64_t> ann_ids;
    std::set<int> classes_seen;
    int min_w = 1 << 30, max_w = 0, min_h = 1 << 30, max_h = 0;
    double min_side = 1e9, max_fraction = 0;
    std::size_t boxes = 0, crowd = 0;
    for (std::size_t i = 0; i < s.ds.images.size(); ++i) {
        const auto& im = s.ds.images[i];
        CAPTURE(i);
        CHECK(im.id == std::int64_t(i) + 1);
        CHECK(im.file_name == "synth_" + std::string(i + 1 < 10 ? "00000" : "0000") +
                                  std::to_string(i + 1) + ".png");
        CHECK(s.pixels[i].w == im.width);
        CHECK(s.pixels[i].h == im.height);
        CHECK(s.pixels[i].px.size() == std::size_t(im.width) * std::size_t(im.height) * 3);
        CHECK(im.width >= o.min_side);
        CHECK(im.width <= o.max_side);
        CHECK(im.height >= o.min_side);
        CHECK(im.height <= o.max_side);
        min_w = std::min(min_w, im.width), max_w = std::max(max_w, im.width);
        min_h = std::min(min_h, im.height), max_h = std::max(max_h, im.height);
        CHECK(im.boxes.size() >= std::size_t(o.min_objects));
        CHECK(im.boxes.size() <= std::size_t(o.max_objects));
        REQUIRE(im.ann_ids.size() == im.boxes.size());
        REQUIRE(im.categories.size() == im.boxes.size());
        REQUIRE(im.crowd.size() == im.boxes.size());
        const double short_side = std::min(im.width, im.height);
        for (std::size_t k = 0; k < im.boxes.size(); ++k) {
            const auto& b = im.boxes[k];
            CAPTURE(b);
            CHECK(b.x1 >= 0);
            CHECK(b.y1 >= 0);
            CHECK(b.x2 <= im.width);
            CHECK(b.y2 <= im.height);
            CHECK(b.width() >= o.min_object);
            CHECK(b.height() >= o.min_object);
            CHECK(b.width() <= o.max_object_fraction * short_side + 0.125);
            CHECK(b.height() <= o.max_object_fraction * short_side + 0.125);
            CHECK(im.categories[k] >= 1);
            CHECK(im.categories[k] <= 6);
            CHECK(im.crowd[k] == 0);
            CHECK(ann_ids.insert(im.ann_ids[k]).second);
            classes_seen.insert(im.categories[k]);
            min_side = std::min({min_side, b.width(), b.height()});
            max_fraction = std::max(max_fraction, std::max(b.width(), b.height()) / short_side);
            ++boxes;
        }
    }
    CHECK(boxes == s.ds.num_boxes());
    CHECK(boxes >= 64 * 2); // 1..6 per image
    CHECK(*ann_ids.begin() == 1);
    CHECK(*ann_ids.rbegin() == std::int64_t(boxes));
    CHECK(classes_seen.size() == 6);
    // The image sizes and object sizes span the requested ranges.
    CHECK(min_w <= 240);
    CHECK(min_h <= 240);
    CHECK(max_w >= 440);
    CHECK(max_h >= 440);
    CHECK(min_side < 2 * o.min_object);
    CHECK(max_fraction > 0.35);

    // crowd flags in about the asked share
    o.images = 32;
    o.crowd_fraction = 0.3;
    const auto c = snip::train::make_synthetic(o);
    for (const auto& im : c.ds.images)
        for (auto f : im.crowd)
            crowd += f;
    const double share = double(crowd) / double(c.ds.num_boxes());
    CAPTURE(share);
    CHECK(share > 0.15);
    CHECK(share < 0.45);
}

TEST_CASE("make_synthetic: objects stand out from a textured background") {
    snip::train::synthetic_options o;
    o.images = 24;
    o.classes = 6;
    const auto s = snip::train::make_synthetic(o);
    std::size_t checked = 0, faint = 0;
    double worst = 1e9;
    for (std::size_t i = 0; i < s.ds.images.size(); ++i) {
        const auto& rec = s.ds.images[i];
        const image& im = s.pixels[i];
        // The background is not flat: many distinct grey levels in the image's first row
        // and a real spread of values.
        std::set<int> levels;
        for (int x = 0; x < im.w; ++x)
            levels.insert(im.at(x, 0, 0) + im.at(x, 0, 1) + im.at(x, 0, 2));
        CHECK(levels.size() >= 20);
        for (std::size_t k = 0; k < rec.boxes.size(); ++k) {
            const auto& b = rec.boxes[k];
            const double m = std::max(3.0, 0.25 * std::min(b.width(), b.height()));
            const auto frame = grow(b, m);
            bool alone = true;
            for (std::size_t j = 0; j < rec.boxes.size(); ++j)
                if (j != k && boxes_touch(frame, rec.boxes[j])) alone = false;
            if (!alone) continue;
            std::size_t n_in = 0, n_out = 0;
            const auto in = mean_colour(im, b, nullptr, &n_in);
            const auto out = mean_colour(im, frame, &b, &n_out);
            if (n_in == 0 || n_out == 0) continue;
            const double diff = std::fabs(in[0] - out[0]) + std::fabs(in[1] - out[1]) +
                                std::fabs(in[2] - out[2]);
            worst = std::min(worst, diff);
            faint += diff < 40;
            ++checked;
        }
    }
    CAPTURE(worst);
    CHECK(checked >= 40);
    CHECK(faint == 0);
}

TEST_CASE("write_synthetic: PNG files and COCO annotations read back exactly") {
    snip::train::synthetic_options o;
    o.images = 5;
    o.min_side = 64;
    o.max_side = 160;
    o.min_object = 4;
    o.classes = 4;
    o.crowd_fraction = 0.25;
    o.seed = 9;
    const auto s = snip::train::make_synthetic(o);
    temp_dir tmp("snip_synthetic");
    const fs::path dir = tmp.path / "nested" / "set";
    snip::train::write_synthetic(s, dir.string());
    const auto ds = snip::io::read_coco((dir / "annotations.json").string());
    REQUIRE(ds.images.size() == s.ds.images.size());
    REQUIRE(ds.categories.size() == 4);
    for (std::size_t k = 0; k < 4; ++k) {
        CHECK(ds.categories[k].id == s.ds.categories[k].id);
        CHECK(ds.categories[k].name == s.ds.categories[k].name);
    }
    // The polygons (and areas) come back as written, bit for bit.
    for (std::size_t i = 0; i < ds.images.size(); ++i) {
        CAPTURE(i);
        REQUIRE(s.ds.images[i].segments.size() == s.ds.images[i].boxes.size());
        CHECK((ds.images[i].segments == s.ds.images[i].segments));
        CHECK(ds.images[i].areas == s.ds.images[i].areas);
        CHECK(same_records(ds.images[i], s.ds.images[i]));
        const image back = snip::train::decode_image((dir / ds.images[i].file_name).string());
        CHECK(back.w == s.pixels[i].w);
        CHECK(back.h == s.pixels[i].h);
        CHECK(back.px == s.pixels[i].px);
    }
    // Nothing but the PNGs and the annotations (no temporary files left behind).
    std::size_t files = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        CHECK(e.path().extension() != ".tmp");
        ++files;
    }
    CHECK(files == s.ds.images.size() + 1);
    // The folder files_in reads from gives the same pixels as the in-memory source.
    const auto from_files = snip::train::files_in(ds, dir.string());
    const auto from_memory = snip::train::synthetic_source(s);
    CHECK(from_files(3).px == from_memory(3).px);

    // A folder that cannot be made: the error names it.
    const fs::path blocker = tmp.path / "a_file";
    { std::ofstream(blocker) << "x"; }
    const std::string bad = (blocker / "sub").string();
    CHECK_THROWS_WITH_AS(snip::train::write_synthetic(s, bad), doctest::Contains(bad.c_str()), snip::error);
}

TEST_CASE("synthetic_options::validate names the field and the value") {
    auto fails = [](auto change, const std::string& what) {
        snip::train::synthetic_options o;
        change(o);
        CAPTURE(what);
        CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains(what.c_str()), snip::error);
        CHECK_THROWS_WITH_AS(snip::train::make_synthetic(o), doctest::Contains(what.c_str()), snip::error);
    };
    CHECK_NOTHROW(snip::train::synthetic_options{}.validate());
    fails([](auto& o) { o.images = 0; }, "images is 0");
    fails([](auto& o) { o.classes = 7; }, "classes is 7");
    fails([](auto& o) { o.classes = 0; }, "classes is 0");
    fails([](auto& o) { o.min_side = 700; }, "min_side 700 is larger than max_side 640");
    fails([](auto& o) { o.min_side = 8; }, "min_side is 8");
    fails([](auto& o) { o.min_object = 0; }, "min_object is 0");
    fails([](auto& o) { o.min_object = -3; }, "min_object is -3");
    fails([](auto& o) { o.min_object = 200; }, "min_object 200 px is larger than the largest object");
    fails([](auto& o) { o.max_object_fraction = 1.5; }, "max_object_fraction is 1.5");
    fails([](auto& o) { o.max_object_fraction = 0; }, "max_object_fraction is 0");
    fails([](auto& o) { o.min_objects = -1; }, "min_objects is -1");
    fails([](auto& o) { o.min_objects = 7; }, "min_objects 7 is larger than max_objects 6");
    fails([](auto& o) { o.crowd_fraction = 2; }, "crowd_fraction is 2");
    fails([](auto& o) { o.crowd_fraction = std::nan(""); }, "crowd_fraction is nan");
}

TEST_CASE("synthetic_source: copies from memory; a small plan covers every box; the loader runs") {
    snip::train::synthetic_options o;
    o.images = 16;
    o.classes = 3;
    o.crowd_fraction = 0.1;
    o.seed = 4;
    const auto s = snip::train::make_synthetic(o);
    const auto src = snip::train::synthetic_source(s);
    CHECK(src(0).px == s.pixels[0].px);
    CHECK(src(15).w == s.pixels[15].w);
    CHECK_THROWS_WITH_AS(src(16), doctest::Contains("image index 16"), snip::error);

    // Three scales, 128 px chips: enlarge x2 for small objects, x1, and the whole image
    // in one chip for the large ones.
    snip::plan_config cfg;
    cfg.name = "synthetic test";
    cfg.scales = {snip::scale_spec::by_factor(2.0), snip::scale_spec::by_factor(1.0),
                  snip::scale_spec::by_long_side(128)};
    cfg.ranges = {{-1, 40}, {24, 100}, {64, -1}};
    cfg.chip_size = 128;
    cfg.stride = 16;
    REQUIRE_NOTHROW(cfg.validate());
    snip::plan_workspace ws;
    std::size_t covered = 0, objects = 0;
    for (const auto& im : s.ds.images) {
        const auto p = snip::plan_image(cfg, im.width, im.height,
                                        snip::box_view<const double>(snip::as_box_view(im.boxes)),
                                        im.crowd, ws);
        std::vector<int> chips_of(im.boxes.size(), 0);
        for (const auto& c : p.positives)
            for (int b : c.boxes)
                ++chips_of[std::size_t(b)];
        for (const auto& sp : p.scales)
            CHECK(sp.uncoverable.empty());
        for (std::size_t b = 0; b < im.boxes.size(); ++b) {
            if (im.crowd[b]) {
                CHECK(chips_of[b] == 0);
                continue;
            }
            CAPTURE(im.boxes[b]);
            CHECK(chips_of[b] >= 1);
            covered += chips_of[b] >= 1;
            ++objects;
        }
    }
    CHECK(objects > 16);
    CHECK(covered == objects);

    // The chips of one epoch load from memory into batches.
    snip::dataset_plan_options po;
    po.seed = 1;
    po.threads = 1;
    const auto plans = snip::plan_dataset(cfg, s.ds, nullptr, po);
    auto jobs = snip::train::make_chip_jobs(plans, {.seed = 1});
    const std::size_t n_jobs = jobs.size();
    REQUIRE(n_jobs > 0);
    snip::train::chip_loader loader(s.ds, cfg, std::move(jobs), src,
                               {.batch_size = 8, .workers = 2, .max_batches = 2});
    std::size_t chips = 0, targets = 0;
    while (auto batch = loader.next()) {
        chips += std::size_t(batch->images.size(0));
        for (const auto& t : batch->targets)
            targets += std::size_t(t.boxes.size(0));
    }
    CHECK(chips == n_jobs);
    CHECK(targets >= objects);
}

TEST_CASE("make_synthetic: each object's polygon rasterises to its drawn shape") {
    // Every class, sizes from 6 px to half the image, in 12 images of 160..400 px.
    snip::train::synthetic_options o;
    o.images = 12;
    o.classes = 6;
    o.min_side = 160;
    o.max_side = 400;
    o.min_object = 6;
    o.max_object_fraction = 0.5;
    const auto s = snip::train::make_synthetic(o);
    std::size_t sure_in = 0, sure_out = 0, missed = 0, extra = 0, objects = 0, ellipses = 0;
    std::array<int, 6> per_class{};
    double worst_gap = 0;
    for (std::size_t i = 0; i < s.ds.images.size(); ++i) {
        CAPTURE(i);
        const auto& rec = s.ds.images[i];
        snip::image_record again;
        image pixels;
        std::vector<snip::train::detail::synth_object> objs;
        snip::train::detail::synth_image(o, i, again, pixels, &objs);
        CHECK(pixels.px == s.pixels[i].px); // asking for the objects changes nothing
        REQUIRE(objs.size() == rec.boxes.size());
        REQUIRE(rec.segments.size() == rec.boxes.size());
        REQUIRE(rec.areas.size() == rec.boxes.size());
        const int W = rec.width, H = rec.height;
        for (std::size_t k = 0; k < objs.size(); ++k) {
            CAPTURE(k);
            const auto& ob = objs[k];
            const auto& b = rec.boxes[k];
            CAPTURE(b);
            CAPTURE(ob.cls);
            REQUIRE(ob.b == b);
            REQUIRE(ob.cls + 1 == rec.categories[k]);
            ++per_class[std::size_t(ob.cls)];
            ++objects;
            const auto& seg = rec.segments[k];
            REQUIRE(seg.is_polygons());
            REQUIRE(seg.polygons.size() == 1);
            const snip::mask::polygon& poly = seg.polygons[0];

            // Exact bounds: corners for the polygonal shapes, the four extreme vertices
            // of the ellipses.
            CHECK(snip::mask::bounds(seg.polygons) == b);
            // Area: the annotation's is the polygon's, within 1 % + 2 px^2 of the shape's.
            const double pa = snip::mask::area(poly), want = shape_area(ob.cls, b);
            CHECK(rec.areas[k] == pa);
            CHECK(std::fabs(pa - want) <= 0.01 * want + 2.0);
            if (ob.cls == 1 || ob.cls == 2 || ob.cls == 3)
                CHECK(pa == doctest::Approx(want).epsilon(1e-12));

            // Ellipses: vertices on the curve, at most 0.1 px from it, and the fewest
            // vertices that achieve it.
            if (ob.cls == 0 || ob.cls == 5) {
                ++ellipses;
                const double cx = 0.5 * (b.x1 + b.x2), cy = 0.5 * (b.y1 + b.y2);
                const double a = 0.5 * b.width(), bb = 0.5 * b.height();
                const int n = snip::train::detail::synth_ellipse_vertices(a, bb);
                CHECK(n % 4 == 0);
                REQUIRE(poly.size() == (ob.cls == 0 ? 2 * std::size_t(n) : 4 * std::size_t(n) + 4));
                const double step = 2 * 3.14159265358979323846 / n;
                for (int v = 0; v < n; ++v) {
                    const double u = (poly[2 * std::size_t(v)] - cx) / a,
                                 w = (poly[2 * std::size_t(v) + 1] - cy) / bb;
                    CHECK(u * u + w * w == doctest::Approx(1.0).epsilon(1e-12));
                }
                const double gap = ellipse_gap(poly, 0, n, cx, cy, a, bb, step);
                CHECK(gap <= snip::train::detail::synth_max_gap + 1e-12);
                worst_gap = std::max(worst_gap, gap);
                if (n > 8) // four vertices fewer would not do
                    CHECK(std::max(a, bb) * (1 - std::cos(3.14159265358979323846 / (n - 4))) >
                          snip::train::detail::synth_max_gap);
                if (ob.cls == 5) {
                    // The keyhole: the outer ring, its first vertex again, the inner ring
                    // backwards from angle 0, its first vertex again.
                    CHECK(poly[2 * std::size_t(n)] == poly[0]);
                    CHECK(poly[2 * std::size_t(n) + 1] == poly[1]);
                    const std::size_t in0 = std::size_t(n) + 1;
                    CHECK(poly[2 * (in0 + std::size_t(n))] == poly[2 * in0]);
                    CHECK(poly[2 * (in0 + std::size_t(n)) + 1] == poly[2 * in0 + 1]);
                    snip::mask::polygon inner;
                    for (int v = 0; v < n; ++v) { // forwards again: vertex v at angle v step
                        const std::size_t q = in0 + std::size_t((n - v) % n);
                        inner.push_back(poly[2 * q]);
                        inner.push_back(poly[2 * q + 1]);
                    }
                    const double inner_gap =
                        ellipse_gap(inner, 0, n, cx, cy, 0.4 * a, 0.4 * bb, step);
                    CHECK(inner_gap <= 0.4 * snip::train::detail::synth_max_gap + 1e-12);
                    // The cut cancels: the keyhole's mask is the outer polygon's less the
                    // inner polygon's, pixel for pixel.
                    const snip::mask::polygon outer(poly.begin(), poly.begin() + 2 * n);
                    const auto mo = snip::mask::decode(snip::mask::from_polygons({outer}, H, W));
                    const auto mi = snip::mask::decode(snip::mask::from_polygons({inner}, H, W));
                    const auto mk =
                        snip::mask::decode(snip::mask::from_polygons(seg.polygons, H, W));
                    std::size_t differ = 0, holes = 0;
                    for (std::size_t q = 0; q < mk.size(); ++q) {
                        differ += mk[q] != (mo[q] && !mi[q]);
                        holes += mi[q];
                    }
                    CHECK(differ == 0);
                    if (std::min(a, bb) >= 5) CHECK(holes > 0);
                }
            }

            // The rasterised polygon against the renderer's own coverage of the shape.
            const auto m = snip::mask::decode(snip::mask::from_polygons(seg.polygons, H, W));
            const auto cov = snip::train::detail::synth_coverage(ob, W, H);
            REQUIRE(m.size() == cov.size());
            for (std::size_t q = 0; q < m.size(); ++q) {
                const bool in = cov[q] >= 0.75f, out = cov[q] <= 0.25f;
                sure_in += in;
                sure_out += out;
                if (!(in && m[q] == 0) && !(out && m[q] != 0)) continue;
                (in ? missed : extra) += 1;
                // Only a corner pixel whose centre lies on the shape's edge may disagree.
                const double px = double(q % std::size_t(W)) + 0.5,
                             py = double(q / std::size_t(W)) + 0.5;
                double nearest = 1e9;
                for (std::size_t v = 0; v + 1 < poly.size(); v += 2)
                    nearest = std::min(nearest, std::hypot(poly[v] - px, poly[v + 1] - py));
                CAPTURE(px);
                CAPTURE(py);
                CAPTURE(cov[q]);
                CHECK(nearest <= 0.5);
            }
        }
    }
    MESSAGE(objects, " objects (", ellipses, " ellipses, worst gap ", worst_gap, " px): ", missed,
            " of ", sure_in, " pixels covered >= 3/4 outside the mask, ", extra,
            " covered <= 1/4 inside it");
    for (int c = 0; c < 6; ++c)
        CHECK(per_class[std::size_t(c)] >= 2);
    // COCO's rule sets a pixel when its centre is inside the polygon (on a 5x grid). A
    // pixel at a corner whose centre lies on an edge of the shape can hold a quarter of
    // it (4 of 16 sub-samples) and still be set: 15 of 255,000 sure pixels in 64 such
    // images, 2 of 31,500 here. Nothing else disagrees.
    CHECK(sure_in > 20000);
    CHECK(sure_out > 20 * sure_in);
    CHECK(extra + missed <= sure_in / 5000);
}

TEST_CASE("synth_polygons: the exact corners of each polygonal shape; bad ellipses") {
    namespace d = snip::train::detail;
    d::synth_object o;
    o.b = {10, 20, 30, 60}; // centre (20, 40), half sides 10 and 20
    o.cls = 1;
    CHECK(d::synth_polygons(o) ==
          std::vector<snip::mask::polygon>{{10, 20, 30, 20, 30, 60, 10, 60}});
    o.cls = 3;
    CHECK(d::synth_polygons(o) ==
          std::vector<snip::mask::polygon>{{20, 20, 30, 40, 20, 60, 10, 40}});
    o.cls = 2;
    const std::vector<std::vector<double>> triangles{{20, 20, 30, 60, 10, 60},  // apex up
                                                     {20, 60, 30, 20, 10, 20},  // down
                                                     {10, 40, 30, 60, 30, 20},  // left
                                                     {30, 40, 10, 60, 10, 20}}; // right
    for (int dir = 0; dir < 4; ++dir) {
        CAPTURE(dir);
        o.direction = dir;
        CHECK(d::synth_polygons(o) ==
              std::vector<snip::mask::polygon>{triangles[std::size_t(dir)]});
        // Each vertex lies on the drawn shape's boundary (distance 0 in unit coordinates).
        const auto p = d::synth_polygons(o)[0];
        for (std::size_t v = 0; v < 3; ++v)
            CHECK(d::synth_shape_distance(2, dir, (p[2 * v] - 20) / 10, (p[2 * v + 1] - 40) / 20) ==
                  doctest::Approx(0.0).epsilon(1e-12));
    }
    o.cls = 4;
    const auto cross = d::synth_polygons(o)[0];
    REQUIRE(cross.size() == 24);
    for (std::size_t v = 0; v < 12; ++v)
        CHECK(
            d::synth_shape_distance(4, 0, (cross[2 * v] - 20) / 10, (cross[2 * v + 1] - 40) / 20) ==
            doctest::Approx(0.0).scale(1).epsilon(1e-12));
    CHECK(snip::mask::area(cross) == doctest::Approx((8 * 0.36 - 4 * 0.36 * 0.36) * 200));
    // Vertex counts: the fewest multiples of 4 (from 8) within 0.1 px.
    CHECK(d::synth_ellipse_vertices(0.5, 0.3) == 8);
    CHECK(d::synth_ellipse_vertices(4, 3) == 16);
    CHECK(d::synth_ellipse_vertices(3, 4) == 16);
    CHECK(d::synth_ellipse_vertices(300, 10) == 124);
    CHECK_THROWS_WITH_AS(d::synth_ellipse_vertices(0, 3), doctest::Contains("semi-axes 0 and 3"),
                         snip::error);
    CHECK_THROWS_WITH_AS(d::synth_coverage(o, 0, 5), doctest::Contains("image size 0 x 5"),
                         snip::error);
}

#ifdef SNIP_TEST_DRAW_DETECTIONS
TEST_CASE("draw_detections: a detection's mask tints exactly its pixels, in the class colour") {
    snip::train::synthetic_options o;
    o.images = 1;
    o.classes = 6;
    o.min_side = o.max_side = 240;
    o.min_objects = o.max_objects = 1;
    o.min_object = 120;
    o.seed = 3;
    const auto s = snip::train::make_synthetic(o);
    const auto& rec = s.ds.images[0];
    const image& img = s.pixels[0];
    REQUIRE(rec.boxes.size() == 1);
    const snip::box<double> b = rec.boxes[0];
    const auto m = snip::mask::from_polygons(rec.segments[0].polygons, img.h, img.w);
    const auto bits = snip::mask::decode(m);

    snip::train::image_detections d;
    d.boxes = {snip::box<float>{float(b.x1), float(b.y1), float(b.x2), float(b.y2)},
               snip::box<float>{0, 0, 10, 10}};
    d.scores = {0.9f, 0.8f};
    d.labels = {rec.categories[0], 2};
    d.masks = {m, snip::mask::rle{}}; // the second detection has no mask
    temp_dir tmp("snip_synthetic_draw");
    fs::create_directories(tmp.path);
    const std::string path = (tmp.path / "masks.png").string();
    snip::apps::draw_detections(img, d, {}, 0.5, path);
    const image png = snip::train::decode_image(path);
    REQUIRE(png.w == img.w);
    REQUIRE(png.h == img.h);
    // Away from the outlines and the label (above the box or inside its top, <= 30 px),
    // a pixel of the mask is mix(pixel, class colour, alpha) and any other is unchanged.
    const auto col = snip::apps::class_colour(rec.categories[0]);
    std::size_t tinted = 0, kept = 0, wrong = 0;
    for (int y = 0; y < img.h; ++y)
        for (int x = 0; x < img.w; ++x) {
            const bool near_box = x >= b.x1 - 3 && x < b.x2 + 3 && y >= b.y1 - 3 && y < b.y2 + 3 &&
                                  !(x > b.x1 + 3 && x < b.x2 - 4 && y > b.y1 + 3 && y < b.y2 - 4);
            if (near_box || (y >= b.y1 - 31 && y < b.y1 + 31) || (x < 40 && y < 40)) continue;
            const snip::apps::draw::rgb p{img.at(x, y, 0), img.at(x, y, 1), img.at(x, y, 2)};
            const bool in = bits[std::size_t(y) * std::size_t(img.w) + std::size_t(x)] != 0;
            const auto want =
                in ? snip::apps::draw::mix(p, col, snip::apps::detection_mask_alpha) : p;
            wrong +=
                png.at(x, y, 0) != want.r || png.at(x, y, 1) != want.g || png.at(x, y, 2) != want.b;
            (in ? tinted : kept) += 1;
        }
    CHECK(wrong == 0);
    CHECK(tinted > 1000);
    CHECK(kept > 10000);

    // Masks of the wrong count or size are errors naming them.
    auto fails = [&](const snip::train::image_detections& bad, const std::string& what) {
        CAPTURE(what);
        CHECK_THROWS_WITH_AS(snip::apps::draw_detections(img, bad, {}, 0.5, path),
                             doctest::Contains(what.c_str()), snip::error);
    };
    auto bad = d;
    bad.masks.pop_back();
    fails(bad, "2 boxes but 1 masks (must be as many, or none)");
    bad = d;
    bad.masks[1] = snip::mask::rle{10, 10, {100}};
    fails(bad,
          snip::concat("the mask of detection 1 is 10 x 10, the image is ", img.w, " x ", img.h));
}
#endif
