// Fuzzer of the trainer's image decoder: bytes -> snip::train::decode_image (stb_image's
// JPEG, PNG and BMP decoders behind snip's checks; image.cpp and stb's implementation are
// compiled into this program, instrumented, without LibTorch). Every input must decode to
// a consistent RGB image or be refused with a snip::error naming the source.
//
// The pixel limit is k_max_pixels here, not the library's max_image_pixels (2^28): an image
// of 2^28 pixels decodes legitimately but takes seconds and ~2.3 GB at its peak, which the
// fuzzer would report as a timeout or an out-of-memory. The check is the same code, and
// regressions/image/ holds headers that claim more than the library's own limit too.
#include "fuzz_util.hpp"

#include <snip/train/image.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

const std::string k_source = "fuzz_image";
constexpr std::int64_t k_max_pixels = std::int64_t(1) << 20;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    snip::train::image im;
    if (!fuzz::accepts([&] { im = snip::train::decode_image(data, size, k_source, k_max_pixels); },
                       k_source))
        return 0;
    fuzz::expect(im.w > 0 && im.h > 0, "decoded an empty image: ", im.w, " x ", im.h);
    fuzz::expect(std::int64_t(im.w) * im.h <= k_max_pixels, "decoded ", im.w, " x ", im.h,
                 " pixels, more than the limit of ", k_max_pixels);
    fuzz::expect(im.px.size() == std::size_t(im.w) * std::size_t(im.h) * 3, "buffer of ",
                 im.px.size(), " bytes for ", im.w, " x ", im.h, " RGB pixels");
    // The limit is checked on the header before decoding: whatever decodes must have a
    // header that says its size. (Called only now: stb_image's header reader has the bug
    // that decode_image guards against, see image.cpp.)
    int iw = 0, ih = 0, icomp = 0;
    const bool has_info = stbi_info_from_memory(data, int(size), &iw, &ih, &icomp) != 0;
    fuzz::expect(has_info && std::llabs(iw) == im.w && std::llabs(ih) == im.h, "decoded ", im.w,
                 " x ", im.h, " but stbi_info_from_memory says ", has_info ? "" : "nothing: ", iw,
                 " x ", ih);

    // The decoded image feeds the chip resampler: a crop over the whole image and beyond,
    // mirrored, into a small chip (reads every border case of the source).
    const snip::box<double> crop{-0.5 * im.w, -0.25 * im.h, 1.5 * im.w, 1.25 * im.h};
    const snip::train::image chip = snip::train::crop_resize(im, crop, 7, 5, /*flip=*/true);
    fuzz::expect(chip.w == 7 && chip.h == 5 && chip.px.size() == 7 * 5 * 3, "crop_resize gave ",
                 chip.w, " x ", chip.h);
    return 0;
}
