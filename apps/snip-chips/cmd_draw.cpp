// cmd_draw.cpp: `snip-chips draw`, renders the chips of one image to a PNG.
#include <snip_apps/cli.hpp>
#include <snip_apps/draw.hpp>

#include <snip/io/chips_json.hpp>
#include <snip/io/coco.hpp>
#include <snip/mask/rle.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using namespace snip::apps;

const char* const draw_usage =
    R"(usage: snip-chips draw --chips CHIPS.json --annotations COCO.json
                       [--image-id ID | --index K] [--images DIR] [--out FILE.png]
                       [--max-side PX]

Renders the chips of one image, in original image pixels, to a PNG:
  - chips coloured by scale (scale 0 red, 1 green, 2 blue, 3 orange, 4 brown,
    5 teal, then again): positive chips solid, negative chips dashed (thick when
    sampled this epoch, thin when not);
  - ground-truth boxes as thin outlines with a dark rim, in the colour of each
    scale they are valid at (one nested line per scale);
  - boxes valid at no scale and crowd boxes magenta with a diagonal cross (ignored);
  - when the annotations have masks ("segmentation"), each one blended in amber
    (magenta for ignored boxes) under the chips, polygons also outlined;
  - a legend strip below the image: scales, factors, valid ranges, chip counts.
The background is DIR/file_name when --images is given and that file exists,
otherwise a light grey canvas of the image's size.

options:
  --chips FILE        chips JSON written by `snip-chips plan` (required)
  --annotations FILE  the COCO json the chips were planned from (required); the
                      chips file is checked against it and against its config
  --image-id ID       image to draw, by COCO image id
  --index K           image to draw, by position in the chips file (default 0)
  --images DIR        folder with the image files
  --out FILE          output PNG (default snip-demo/chips_<id>.png); the parent
                      folder is created
  --max-side PX       shrink the image part to at most PX on its longer side
                      (averaged; default 1024, minimum 16))";

const draw::rgb palette[] = {{230, 25, 25},  {20, 160, 40}, {30, 80, 235},
                             {255, 140, 0},  {140, 80, 20}, {0, 160, 160}};
constexpr draw::rgb ignored_colour{255, 0, 255};
constexpr draw::rgb mask_colour{255, 190, 0};
constexpr double mask_alpha = 0.4;
constexpr draw::rgb rim_colour{0, 0, 0};
constexpr draw::rgb canvas_grey{205, 205, 205};
constexpr draw::rgb legend_bg{250, 250, 250};
constexpr draw::rgb ink{20, 20, 20};

draw::rgb scale_colour(int s) {
    constexpr int n = int(sizeof(palette) / sizeof(palette[0]));
    return palette[((s % n) + n) % n];
}

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

int run_draw(const std::vector<std::string>& argv) {
    cli::args a("draw", argv,
                {"--chips", "--annotations", "--image-id", "--index", "--images", "--out",
                 "--max-side"});
    const std::string chips_path = a.required("--chips");
    const std::string ann_path = a.required("--annotations");
    snip::require(!(a.has("--image-id") && a.has("--index")),
                  "--image-id and --index both given; choose one");
    const long long max_side = a.integer("--max-side", 1024);
    snip::require(max_side >= 16 && max_side <= 65536, "--max-side ", max_side,
                  ": must be in [16, 65536]");

    // --- the image in the chips file and in the annotations -------------------------
    // The whole file is checked against the annotations and its config (validate_chips):
    // a chip that is not the planner's is an error, not a picture of it.
    const snip::dataset ds = snip::io::read_coco(ann_path);
    const snip::io::chips_file cf = snip::io::read_chips(chips_path, ds);
    const snip::io::image_chips* ic = nullptr;
    if (auto id = a.get("--image-id")) {
        const long long want = a.integer("--image-id", 0);
        for (const auto& im : cf.images)
            if (im.id == want) ic = &im;
        snip::require(ic != nullptr, "--image-id ", *id, ": no image with this id in ",
                      chips_path, " (", cf.images.size(), " images)");
    } else {
        const long long k = a.integer("--index", 0);
        snip::require(!cf.images.empty(), chips_path, ": has no images to draw");
        snip::require(k >= 0 && k < static_cast<long long>(cf.images.size()), "--index ", k,
                      ": out of range, ", chips_path, " has ", cf.images.size(),
                      " images (index 0..", cf.images.size() - 1, ")");
        ic = &cf.images[static_cast<std::size_t>(k)];
    }
    const snip::image_record* rec = nullptr;
    for (const auto& im : ds.images)
        if (im.id == ic->id) rec = &im;
    snip::require(rec != nullptr, ann_path, ": has no image with id ", ic->id, " (drawing ",
                  chips_path, ")");
    snip::require(rec->width == ic->width && rec->height == ic->height, ann_path, ": image id ",
                  ic->id, " is ", rec->width, "x", rec->height, " but ", chips_path, " says ",
                  ic->width, "x", ic->height, "; were the chips planned from another file?");
    const int W = ic->width, H = ic->height;

    // --- background, shrunk to --max-side ----------------------------------------------
    const double k = std::min(1.0, double(max_side) / double(std::max(W, H)));
    const int ow = std::max(1, int(std::lround(W * k))), oh = std::max(1, int(std::lround(H * k)));
    draw::canvas img(ow, oh, canvas_grey);
    std::string background = "grey canvas";
    if (auto dir = a.get("--images")) {
        const std::string file = (std::filesystem::path(*dir) / ic->file_name).string();
        if (!ic->file_name.empty() && std::filesystem::is_regular_file(file)) {
            draw::canvas photo = draw::load_image(file);
            snip::require(photo.width() == W && photo.height() == H, file, ": image is ",
                          photo.width(), "x", photo.height(), " but ", ann_path, " says ", W, "x", H, " for image id ",
                          ic->id);
            img = (ow == W && oh == H) ? std::move(photo) : draw::resize(photo, ow, oh);
            background = file;
        } else {
            std::fprintf(stderr, "snip-chips draw: note: %s not found, drawing on grey\n",
                         file.c_str());
        }
    }
    auto px = [&](double v, int side) {
        return std::clamp(int(std::floor(v * k)), 0, side - 1);
    };
    auto to_px = [&](const snip::box<double>& b) {
        return std::array<int, 4>{px(b.x1, ow), px(b.y1, oh), px(b.x2, ow), px(b.y2, oh)};
    };

    // --- which boxes are valid at which scales ------------------------------------------
    const int ns = static_cast<int>(ic->scales.size());
    std::unordered_map<std::int64_t, std::size_t> by_ann;
    for (std::size_t b = 0; b < rec->ann_ids.size(); ++b)
        by_ann[rec->ann_ids[b]] = b;
    std::vector<std::vector<int>> valid_at(rec->boxes.size());
    std::vector<int> valid_n(std::size_t(ns), 0), uncov_n(std::size_t(ns), 0);
    for (int s = 0; s < ns; ++s) {
        const auto& se = ic->scales[std::size_t(s)];
        for (auto id : se.valid_ids)
            if (auto it = by_ann.find(id); it != by_ann.end()) {
                valid_at[it->second].push_back(s);
                ++valid_n[std::size_t(s)];
            }
        uncov_n[std::size_t(s)] = int(se.uncoverable_ids.size());
    }
    auto ignored_box = [&](std::size_t b) { return rec->crowd[b] || valid_at[b].empty(); };

    // --- ground-truth masks, under everything else: blended, polygons outlined ---------
    std::size_t masks = 0;
    for (std::size_t b = 0; b < rec->segments.size(); ++b) {
        const snip::mask::segmentation& seg = rec->segments[b];
        if (seg.empty()) continue;
        ++masks;
        const draw::rgb col = ignored_box(b) ? ignored_colour : mask_colour;
        img.blend_mask(snip::mask::from_segmentation(seg, H, W), col, mask_alpha, k);
        for (const snip::mask::polygon& p : seg.polygons)
            img.polygon_outline(p, col, 1.0, k);
    }

    // --- chips: coarsest scale first so the small chips stay on top ---------------------
    std::vector<int> pos(std::size_t(ns), 0), neg(std::size_t(ns), 0), sampled(std::size_t(ns), 0);
    for (int pass = 0; pass < 2; ++pass)  // negatives below positives
        for (int s = ns - 1; s >= 0; --s)
            for (const auto& c : ic->chips) {
                if (c.scale != s || c.negative != (pass == 0)) continue;
                const auto r = to_px(c.box);
                const draw::rgb col = scale_colour(s);
                if (c.negative) {
                    ++neg[std::size_t(s)];
                    sampled[std::size_t(s)] += c.sampled;
                    img.dashed_rect(r[0], r[1], r[2], r[3], col, c.sampled ? 2 : 1);
                } else {
                    ++pos[std::size_t(s)];
                    img.rect(r[0], r[1], r[2], r[3], col, 2);
                }
            }

    // --- ground-truth boxes -----------------------------------------------------------
    std::size_t ignored = 0;
    for (std::size_t b = 0; b < rec->boxes.size(); ++b) {
        const auto r = to_px(rec->boxes[b]);
        if (ignored_box(b)) {
            ++ignored;
            img.rect(r[0], r[1], r[2], r[3], ignored_colour, 1);
            img.line(r[0], r[1], r[2], r[3], ignored_colour);
            img.line(r[2], r[1], r[0], r[3], ignored_colour);
            continue;
        }
        img.rect(r[0] - 1, r[1] - 1, r[2] + 1, r[3] + 1, rim_colour, 1);
        for (std::size_t j = 0; j < valid_at[b].size(); ++j) {
            const int in = int(j);
            img.rect(r[0] + in, r[1] + in, r[2] - in, r[3] - in, scale_colour(valid_at[b][j]), 1);
        }
    }

    // --- legend ---------------------------------------------------------------------
    const int ts = ow >= 1000 ? 2 : 1;                    // size scale
    const double fs = 12.0 * ts;                          // font size, px
    const int char_h = int(std::ceil(draw::text_height(fs)));
    const int row = char_h + 4 * ts;                      // row height
    const int pad = 6 * ts, sw = 7 * ts, sample = 26 * ts;  // margin, swatch, key sample
    int total_pos = 0, total_neg = 0, total_sampled = 0;
    for (int s = 0; s < ns; ++s)
        total_pos += pos[std::size_t(s)], total_neg += neg[std::size_t(s)],
            total_sampled += sampled[std::size_t(s)];
    std::vector<std::string> lines;
    lines.push_back(snip::concat("image ", ic->id, "  ", ic->file_name, "  ", W, "\u00d7", H, "  ",
                                 total_pos, " positive + ", total_neg, " negative chips (",
                                 total_sampled, " sampled)",
                                 masks ? snip::concat(", ", masks, " masks") : std::string()));
    for (int s = 0; s < ns; ++s) {
        const auto& se = ic->scales[std::size_t(s)];
        const std::size_t si = std::size_t(s);
        std::string range =
            si < cf.config.ranges.size() ? cf.config.ranges[si].to_string() : std::string("?");
        lines.push_back(snip::concat(
            "scale ", s, "  \u00d7", fmt("%.4g", se.factor), "  ", se.width, "\u00d7", se.height,
            "  range ", range, "  positive ", pos[si], "  negative ", neg[si], " (", sampled[si],
            " sampled)  valid ", valid_n[si],
            uncov_n[si] ? snip::concat(" (", uncov_n[si], " uncoverable)") : std::string()));
    }
    const std::string key_pos = "positive chip", key_neg = "negative chip",
                      key_gt = "ground-truth box",
                      key_ign = snip::concat("ignored / crowd (", ignored, ")");
    const std::string footer = snip::concat(
        "preset ", cf.config.name, "  seed ", cf.seed, "  epoch ", cf.epoch,
        ow != W ? snip::concat("  shown at \u00d7", fmt("%.3g", k)) : std::string());
    auto width_of = [&](const std::string& t) { return int(std::ceil(draw::text_width(t, fs))); };
    int need = 0;
    for (std::size_t i = 0; i < lines.size(); ++i)
        need = std::max(need, width_of(lines[i]) + (i > 0 ? sw + pad : 0));
    need = std::max(need, 4 * (sample + 3 * pad) + width_of(key_pos + key_neg + key_gt + key_ign));
    need = std::max(need, width_of(footer));
    const int out_w = std::max(ow, need + 2 * pad);
    const int legend_h = pad + row * int(lines.size() + 2) + pad;
    draw::canvas out(out_w, oh + legend_h, legend_bg);
    out.blit(img, 0, 0);
    out.fill_rect(0, oh, out_w - 1, oh + ts - 1, ink);  // separator
    int y = oh + pad;
    for (std::size_t i = 0; i < lines.size(); ++i, y += row) {
        int x = pad;
        if (i > 0) {
            const int sy = y + (char_h - sw) / 2;
            out.fill_rect(x, sy, x + sw - 1, sy + sw - 1, scale_colour(int(i) - 1));
            x += sw + pad;
        }
        out.text(x, y, lines[i], ink, fs);
    }
    // key: samples of each mark
    {
        int x = pad;
        const int y1 = y + 2 * ts, y2 = y + char_h - 1 - 2 * ts;
        auto next = [&](double after_text) { return int(std::ceil(after_text)) + 3 * pad; };
        out.rect(x, y1, x + sample - 1, y2, ink, 2);
        x = next(out.text(x + sample + pad, y, key_pos, ink, fs));
        out.dashed_rect(x, y1, x + sample - 1, y2, ink, 2, 6 * ts, 3 * ts);
        x = next(out.text(x + sample + pad, y, key_neg, ink, fs));
        out.rect(x, y1, x + sample - 1, y2, rim_colour, 1);
        out.rect(x + 1, y1 + 1, x + sample - 2, y2 - 1, scale_colour(0), 1);
        x = next(out.text(x + sample + pad, y, key_gt, ink, fs));
        out.rect(x, y1, x + sample - 1, y2, ignored_colour, 1);
        out.line(x, y1, x + sample - 1, y2, ignored_colour);
        out.line(x + sample - 1, y1, x, y2, ignored_colour);
        out.text(x + sample + pad, y, key_ign, ink, fs);
        y += row;
    }
    out.text(pad, y, footer, ink, fs);

    // --- write ----------------------------------------------------------------------
    const std::string out_path =
        a.get_or("--out", snip::concat("snip-demo/chips_", ic->id, ".png"));
    const std::filesystem::path parent = std::filesystem::path(out_path).parent_path();
    if (!parent.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        snip::require(!ec, "--out ", out_path, ": cannot create folder ", parent.string(), ": ",
                      ec.message());
    }
    draw::write_png(out, out_path);
    std::printf("%s: image %lld (%dx%d, %s), %d positive + %d negative chips, %zu boxes (%zu "
                "ignored), %zu masks\n",
                out_path.c_str(), static_cast<long long>(ic->id), W, H, background.c_str(),
                total_pos, total_neg, rec->boxes.size(), ignored, masks);
    return 0;
}

} // namespace

SNIP_COMMAND("draw", "render the chips of one image to a PNG", draw_usage, run_draw);
