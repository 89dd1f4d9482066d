// synthetic.hpp: an embedded multi-scale detection dataset WITH PIXELS, for training and
// testing the SNIPER trainer without any download.
//
//   snip::train::synthetic_options o;              // 64 images of 320..640 px, 3 classes
//   snip::train::synthetic_set s = snip::train::make_synthetic(o);
//   snip::train::chip_loader loader(s.ds, cfg, jobs, snip::train::synthetic_source(s));
//   snip::train::write_synthetic(s, "synth");     // synth/annotations.json + synth/*.png
//
// Every image has a textured background and 1..6 (by default) flat-coloured shapes whose
// sizes run from a few pixels to most of the image, so the scales of a chip pyramid all
// get work. Each class has its own SHAPE and its own typical HUE, so a small network
// trained from scratch learns them in minutes:
//
//   class  1 disc (ellipse)   red        4 diamond (rhombus)  yellow
//          2 square (rect.)   green      5 cross (plus sign)  magenta
//          3 triangle         blue       6 ring (annulus)     cyan
//
// Model, per image i (its own random stream, mix(seed, i), so the set with N images is a
// prefix of the one with N + 1, same seed):
//   1. size: width and height uniform integers in [min_side, max_side], independently.
//   2. objects: n uniform in [min_objects, max_objects]; each has a class (uniform), a
//      side s log-uniform in [min_object, max_object_fraction x shorter image side], an
//      aspect ratio w/h log-uniform in [0.8, 1.25] (both sides then clamped to the side
//      range), a colour (class hue +- 15 degrees, saturation 0.6..1, value 0.6..1) with a
//      gentle linear shading, and for triangles a direction (up, down, left, right).
//      Sides and corners are multiples of 1/8 px, so boxes survive a COCO round trip
//      bit for bit. Objects lie wholly inside the image. They are placed largest first,
//      each at a uniform position where it overlaps every placed object by at most 20 %
//      of the smaller one's box (after 40 tries the object shrinks by 1/4 and tries
//      again; one that never fits is dropped, so an image can hold fewer than
//      min_objects), and drawn in that order: small objects lie on top.
//   3. background: two desaturated base colours (saturation <= 0.3) blended by three
//      random plane waves (wavelengths 20..400 px; some sharpened into soft stripes).
//   4. shapes are composited antialiased: a pixel's coverage is 0 or 1 when its centre
//      is clearly outside or inside the shape, else the share of 4 x 4 sub-samples
//      inside. Finally every pixel gets uniform noise (+-8 grey levels, +-3 per channel).
//
// Boxes: xyxy, continuous convention, ORIGINAL px: the box of a shape is its exact
// geometric extent (a shape covering pixels [x1, x2) has the box x1..x2). Image ids are
// 1..N, file names synth_000001.png..., category ids 1..K named after the shapes,
// annotation ids 1, 2, ... in image order. A share crowd_fraction of the objects is
// flagged iscrowd (drawn like the others; for tests of ignore regions).
//
// Masks: every object has a segmentation in image_record::segments (parallel to boxes),
// one COCO polygon (original px, continuous convention) tracing the shape that step 4
// draws, from no extra random draws:
//   - square, diamond, triangle, cross: their exact corners (box corners, box centre,
//     and for the cross the bar edges at centre +- 0.36 half sides), so the polygon's
//     bounds are the box bit for bit;
//   - disc: n vertices ON the ellipse, every 2 pi / n of its parameter angle starting at
//     the +x end, n the fewest multiple of 4 (>= 8) with R (1 - cos(pi / n)) <= 0.1 px,
//     R the longer semi-axis (synth_ellipse_vertices). The ellipse is the unit circle
//     stretched by at most R, and a chord of the circle spanning 2 pi / n strays at most
//     1 - cos(pi / n) from its arc, so the polygon (inscribed: a little inside) is within
//     0.1 px of the true ellipse everywhere; the four extreme points are vertices, so
//     its bounds are the box exactly too. n runs from 8 (R <= 1.3 px) through 16 (R = 4)
//     to about 124 (R = 300);
//   - ring (annulus, outer radii = the half sides, inner = 0.4 x them): ONE keyhole
//     polygon: the outer ellipse as for the disc, back to its first vertex (+x end), a
//     zero-width cut along y = centre to the inner ellipse's +x end, the inner ellipse
//     (same n) walked the other way round, and back along the cut. COCO's rasterisation
//     (mask::from_polygons, pycocotools' rule) counts the cut's two identical edges
//     twice, so they cancel and the mask is the annulus; a polygon's area (shoelace) is
//     the outer area less the inner one. Several polygons would not do: COCO unites them.
// The polygons are AMODAL: each traces its whole shape, also where a later (smaller)
// object is drawn over it. Objects overlap by at most 20 % of the smaller box and the
// smaller one lies on top, so an object's visible mask is its mask less the masks of the
// objects after it in the image (drawn in record order). An annotation's "area" (see
// image_record::areas, written as COCO's "area") is its polygon's area, not the box's
// w x h: the shape's true area, except that an inscribed ellipse polygon falls short of
// its ellipse by a share 1 - sin(2 pi / n) / (2 pi / n), less than 0.42 R px^2 (2.6 % at
// R = 4 px, 0.4 % at R = 30 px).
//
// Determinism: every random draw comes from snip's splitmix64 (no std:: distributions),
// so a seed gives the same set on every platform, up to <cmath>: object sides (exp, log)
// and pixels (sin, cos) go through it, and last-bit differences between C libraries could
// in rare cases move a box side by 1/8 px or a pixel by one level.
//
// Cost: about 4 ms per 640 x 640 image on one core (no threads are started).
#pragma once

#include <snip/train/data.hpp>
#include <snip/train/image.hpp>

#include <snip/core/box.hpp>
#include <snip/core/error.hpp>
#include <snip/core/random.hpp>
#include <snip/io/coco.hpp>
#include <snip/mask/segmentation.hpp>
#include <snip/sniper/dataset.hpp>

#include <stb_image_write.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace snip::train {

/// @brief Names of the synthetic classes, category id k + 1 for entry k.
inline constexpr std::array<const char*, 6> synthetic_class_names{"disc",    "square", "triangle",
                                                                  "diamond", "cross",  "ring"};

/// @brief Typical hue of each synthetic class, degrees (red, green, blue, yellow,
/// magenta, cyan); each object's hue is jittered by up to +-15 degrees.
inline constexpr std::array<double, 6> synthetic_class_hues{0.0, 120.0, 225.0, 55.0, 300.0, 180.0};

/// @brief What make_synthetic generates.
struct synthetic_options {
    int images = 64;                    ///< number of images
    int min_side = 320, max_side = 640; ///< image width and height drawn in [min_side, max_side]
    int classes = 3;                    ///< 1..6 classes: disc, square, triangle, diamond, cross, ring
    int min_objects = 1, max_objects = 6; ///< objects per image (drawn uniformly)
    double min_object = 8.0;            ///< smallest object side, px
    /// Largest object side as a fraction of the image's shorter side; sides are drawn
    /// log-uniformly between min_object and this.
    double max_object_fraction = 0.6;
    double crowd_fraction = 0.0;        ///< share of objects flagged iscrowd
    std::uint64_t seed = 1;

    /// @brief Throws snip::error naming the field and its value when the options are
    /// impossible.
    void validate() const;
};

/// @brief A synthetic dataset and its decoded pixels: pixels[i] is the image of
/// ds.images[i].
struct synthetic_set {
    snip::dataset ds;
    std::vector<image> pixels;
};

namespace detail {

/// Uniform double in [a, b).
double synth_uniform(snip::splitmix64& g, double a, double b);

/// Log-uniform double in [a, b), a, b > 0.
double synth_log_uniform(snip::splitmix64& g, double a, double b);

/// HSV (hue in degrees, saturation and value in [0, 1]) to RGB in [0, 255].
std::array<float, 3> synth_hsv(double h, double s, double v);

/// One shape to draw: class (0-based), box in original px, colour and shading.
struct synth_object {
    int cls = 0;
    int direction = 0; ///< triangles: 0 up, 1 down, 2 left, 3 right
    snip::box<double> b;
    std::array<float, 3> rgb{};
    float shade_x = 0.f, shade_y = 0.f; ///< brightness slope across the shape, per half side
    bool crowd = false;
};

/// Signed distance of the unit-square point (u, v) (the shape's box is [-1, 1]^2) to the
/// boundary of shape `cls`, negative inside. Exact or an under-estimate of its magnitude
/// (for the polygons and the cross), which is what the coverage shortcut needs.
double synth_shape_distance(int cls, int direction, double u, double v);

/// Composites `o` antialiased into the float RGB buffer `buf` (w x h, interleaved).
void synth_draw(std::vector<float>& buf, int w, int h, const synth_object& o);

/// The coverage (0..1) that synth_draw composites `o` with, for every pixel of a w x h
/// image, row-major (0 outside the shape's box).
/// @throws snip::error unless w and h are positive.
std::vector<float> synth_coverage(const synth_object& o, int w, int h);

/// Largest distance in px between a disc's or ring's polygon and its true ellipse.
inline constexpr double synth_max_gap = 0.1;

/// Vertex count of the polygon of an ellipse with semi-axes a and b px: the fewest
/// multiple of 4, at least 8, with max(a, b) (1 - cos(pi / n)) <= synth_max_gap.
/// @throws snip::error unless a and b are finite and positive.
int synth_ellipse_vertices(double a, double b);

/// The segmentation of `o` as COCO polygons, original px (see "Masks" at the top).
std::vector<mask::polygon> synth_polygons(const synth_object& o);

/// Fraction of the smaller box that the two boxes share.
double synth_overlap(const snip::box<double>& a, const snip::box<double>& b);

/// Image `index` of the set: its record (without annotation ids) and its pixels; with
/// `objects`, also the objects drawn, in record order.
void synth_image(const synthetic_options& o, std::size_t index, snip::image_record& rec, image& out,
                 std::vector<synth_object>* objects = nullptr);

} // namespace detail

/// @brief Generates the synthetic set (see the top of this file). Deterministic: the
/// same options give the same boxes and pixels.
/// @throws snip::error naming the field for impossible options (synthetic_options::validate).
synthetic_set make_synthetic(const synthetic_options& o);

/// @brief The images of `s` from memory: a copy of s.pixels[i]. Thread-safe (reads only);
/// `s` must outlive the source.
/// @throws snip::error (from the source) for an index outside the set.
image_source synthetic_source(const synthetic_set& s);

/// @brief Writes the set to `dir` (created when missing): one PNG per image,
/// dir/<file_name>, then dir/annotations.json (COCO, snip::io::write_coco, with each
/// object's "segmentation" polygon and its "area"), so a folder with its annotations is
/// complete. Every file is written to `<path>.tmp` and renamed.
/// @throws snip::error naming the path when a folder or file cannot be written.
void write_synthetic(const synthetic_set& s, const std::string& dir);

} // namespace snip::train
