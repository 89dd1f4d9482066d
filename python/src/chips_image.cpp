// chips_image.cpp: images in and out of snip._chips: decoding (read_image), a chip's
// geometry (chip_crop) and its pixels (cut_chip: one bilinear pass from the original
// image, read in place through its NumPy strides).
#include "chips_parts.hpp"

#include <snip/sniper/crop.hpp>
#include <snip/train/image.hpp>

namespace snip::py {

namespace {

/// An (H, W, C) or (H, W) array of T as an image_view (no copy; any strides).
template <class T>
snip::image_view<T> image_of(const pyb::array& a, const char* what) {
    const auto s = element_strides(a, what);
    snip::image_view<T> v;
    v.data = static_cast<T*>(const_cast<void*>(a.data()));
    v.height = static_cast<int>(a.shape(0));
    v.width = static_cast<int>(a.shape(1));
    v.channels = a.ndim() == 3 ? static_cast<int>(a.shape(2)) : 1;
    v.row_stride = s[0];
    v.pixel_stride = s[1];
    v.channel_stride = a.ndim() == 3 ? s[2] : 0;
    return v;
}

pyb::tuple geometry_tuple(const snip::box<double>& b) { return pyb::make_tuple(b.x1, b.y1, b.x2, b.y2); }

std::vector<float> floats_of(const pyb::object& v, int n, const char* what) {
    pyb::array a = pyb::array::ensure(v);
    if (!a || a.ndim() != 1 || a.shape(0) != n || (a.dtype().kind() != 'f' && a.dtype().kind() != 'i'))
        bad_argument(what, "expected ", n, " numbers (one per channel), got ", pyb::repr(v).cast<std::string>());
    auto f = pyb::array_t<float, pyb::array::c_style | pyb::array::forcecast>::ensure(a);
    return {f.data(), f.data() + f.size()};
}

} // namespace

void bind_chips_image(pyb::module_& m) {
    m.def(
        "read_image",
        [](const std::string& path, std::int64_t max_pixels) {
            snip::train::image im;
            {
                release_gil nogil;
                im = snip::train::decode_image(path, max_pixels);
            }
            const auto h = static_cast<pyb::ssize_t>(im.h), w = static_cast<pyb::ssize_t>(im.w);
            return to_array(std::move(im.px), {h, w, pyb::ssize_t{3}});
        },
        pyb::arg("path"), pyb::arg("max_pixels") = snip::train::max_image_pixels,
        R"doc(Decodes an image file (JPEG, PNG or BMP) to an (H, W, 3) uint8 RGB array.

The decoder is the trainer's (stb_image behind snip's checks): a missing, empty, truncated
or corrupt file, or a header claiming more than `max_pixels` pixels, raises snip.Error
naming the file.)doc");

    pyb::class_<snip::chip_geometry>(m, "ChipGeometry", R"doc(Where a chip's pixels come from and go (snip::chip_geometry).

width, height: the content of the chip, px (<= chip size; the rest is padding);
crop: (x1, y1, x2, y2) the same region in ORIGINAL px (continuous).)doc")
        .def_readonly("width", &snip::chip_geometry::width, "Content width in the chip, px.")
        .def_readonly("height", &snip::chip_geometry::height, "Content height in the chip, px.")
        .def_property_readonly("crop", [](const snip::chip_geometry& g) { return geometry_tuple(g.crop); },
                               "(x1, y1, x2, y2): the content's region in original px.")
        .def("__repr__", [](const snip::chip_geometry& g) {
            return snip::concat("ChipGeometry(width=", g.width, ", height=", g.height, ", crop=(", g.crop.x1, ", ",
                                g.crop.y1, ", ", g.crop.x2, ", ", g.crop.y2, "))");
        });

    m.def(
        "chip_crop",
        [](const snip::chip& c, int chip_size, const std::string& convention) {
            return snip::chip_crop(c, chip_size, convention_of(convention, "chip_crop"));
        },
        pyb::arg("chip"), pyb::arg("chip_size"), pyb::arg("convention") = "continuous",
        R"doc(The geometry of a chip (snip::chip_crop): scaled pixels [x1, x2 + e) x [y1, y2 + e)
(e = 1 'inclusive', 0 'continuous') capped at chip_size, mapped to original pixels by the
chip's factor, the same mapping as its ground truth.)doc");
    m.def(
        "chip_crop",
        [](const snip::chip& c, const snip::plan_config& cfg) { return snip::chip_crop(c, cfg.chip_size, cfg.convention); },
        pyb::arg("chip"), pyb::arg("cfg"), "chip_crop(chip, cfg.chip_size, cfg.convention).");

    m.def(
        "cut_chip",
        [](const pyb::array& image_arg, const snip::plan_config& cfg, const snip::chip& c, bool flip,
           const pyb::object& mean, const pyb::object& stdev, const pyb::object& out) {
            const pyb::array& image = image_arg;
            const char* what = "cut_chip: image";
            const bool u8 = has_dtype<std::uint8_t>(image), f32 = has_dtype<float>(image);
            if ((!u8 && !f32) || (image.ndim() != 3 && image.ndim() != 2))
                bad_argument(what, "expected an (H, W, C) or (H, W) uint8 or float32 array, got a ", describe(image));
            const int nc = image.ndim() == 3 ? static_cast<int>(image.shape(2)) : 1;
            const int s = cfg.chip_size;
            snip::require(s > 0, "cut_chip: cfg.chip_size must be > 0, got ", s);
            if (mean.is_none() != stdev.is_none())
                bad_argument("cut_chip: mean, std", "give both or neither");
            snip::pixel_transform t;
            if (!mean.is_none()) {
                const auto mv = floats_of(mean, nc, "cut_chip: mean");
                const auto sv = floats_of(stdev, nc, "cut_chip: std");
                try {
                    t = snip::pixel_transform::normalise(mv, sv);
                } catch (const snip::error& e) {
                    snip::fail("cut_chip: mean, std: ", e.what());
                }
            }
            pyb::array dst;
            if (out.is_none()) {
                dst = pyb::array_t<float>({pyb::ssize_t{nc}, pyb::ssize_t{s}, pyb::ssize_t{s}});
            } else {
                if (!pyb::isinstance<pyb::array>(out))
                    bad_argument("cut_chip: out", "expected a NumPy array, got ", pyb::repr(out).cast<std::string>());
                dst = pyb::reinterpret_borrow<pyb::array>(out);
            }
            const bool out_f32 = has_dtype<float>(dst), out_u8 = has_dtype<std::uint8_t>(dst);
            auto shape_is = [&](pyb::ssize_t a, pyb::ssize_t b, pyb::ssize_t cc) {
                return dst.ndim() == 3 && dst.shape(0) == a && dst.shape(1) == b && dst.shape(2) == cc;
            };
            const bool chw = shape_is(nc, s, s), hwc = !chw && shape_is(s, s, nc);
            if ((!out_f32 && !out_u8) || (!chw && !hwc))
                bad_argument("cut_chip: out", "expected a float32 or uint8 array of shape (", nc, ", ", s, ", ", s,
                             ") or (", s, ", ", s, ", ", nc, "), got a ", describe(dst));
            if (!dst.writeable()) bad_argument("cut_chip: out", "the ", describe(dst), " is read-only");
            if (out_u8 && !t.scale.empty())
                bad_argument("cut_chip: out", "mean/std normalise to floats: give a float32 output, got a ",
                             describe(dst));
            const auto ds = element_strides(dst, "cut_chip: out");
            auto run = [&](auto* dptr) {
                using D = std::remove_pointer_t<decltype(dptr)>;
                snip::image_view<D> dv{dptr, s, s, nc, chw ? ds[1] : ds[0], chw ? ds[2] : ds[1], chw ? ds[0] : ds[2]};
                auto go = [&](auto sv) {
                    release_gil nogil;
                    return snip::cut_chip(sv, cfg, c, flip, dv, t);
                };
                if (u8) return go(image_of<const std::uint8_t>(image, what));
                return go(image_of<const float>(image, what));
            };
            const snip::chip_geometry g = out_f32 ? run(static_cast<float*>(dst.mutable_data()))
                                                  : run(static_cast<std::uint8_t*>(dst.mutable_data()));
            return pyb::make_tuple(dst, g);
        },
        pyb::arg("image"), pyb::arg("cfg"), pyb::arg("chip"), pyb::arg("flip") = false, pyb::arg("mean") = pyb::none(),
        pyb::arg("std") = pyb::none(), pyb::arg("out") = pyb::none(),
        R"doc(Cuts a chip's pixels from the ORIGINAL image in one bilinear pass (snip::cut_chip) -> (out, ChipGeometry).

image: (H, W, C) or (H, W) uint8 (or float32) array of any strides, read in place (no
copy). The chip's content (chip_crop) is resampled to the top-left of a chip_size square
and the rest is 0 (padding); flip mirrors the content. With mean and std (C values each)
the output is (v / 255 - mean) / std, else the raw values (0..255) as floats.
out: None -> a new (C, S, S) float32 array (S = cfg.chip_size); or your own writeable
array, any strides (a slice of a batch), float32 or uint8, of shape (C, S, S) (planar)
or (S, S, C) (interleaved); a uint8 output is rounded and clamped and takes no mean/std.
The GIL is released while cutting.)doc");
}

} // namespace snip::py
