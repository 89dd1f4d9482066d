// stb_impl.cpp: the one translation unit that compiles the stb_image (decode) and
// stb_image_write (PNG encode) implementations, for the trainer and the programs
// (library snip::stb).
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#endif

#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

namespace snip::stb {
/// Forgets stb_image's last failure reason (a thread-local it never clears).
void reset_failure_reason() { stbi__g_failure_reason = nullptr; }
} // namespace snip::stb

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
