// chips_image.cpp: images in and out of snip._chips (decoding; the chip crop is bound with
// the rest of the chip layer).
#include "chips_parts.hpp"

#include <snip/train/image.hpp>

namespace snip::py {

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
}

} // namespace snip::py
