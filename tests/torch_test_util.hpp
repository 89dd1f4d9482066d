// torch_test_util.hpp: inputs shared by the LibTorch tests and the loading of torchvision's
// compiled ops. Include it after the LibTorch headers and before doctest's (see
// test_torch_ops.cpp).
#pragma once

#include <snip/core/random.hpp>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <utility>
#include <vector>

namespace torch_test {

/// RoIs with every awkward case (partly/fully outside, zero size, inverted, sub-pixel,
/// larger than the image), in input-image pixels of an img_w x img_h image.
at::Tensor make_rois(int k, int batch, double img_w, double img_h, std::uint64_t seed,
                     at::ScalarType dtype) {
    snip::splitmix64 g{seed};
    std::vector<double> v;
    for (int i = 0; i < k; ++i) {
        double b = double(g.below(std::uint64_t(batch)));
        double x1 = g.uniform() * img_w, y1 = g.uniform() * img_h;
        double x2 = x1 + g.uniform() * img_w * 0.6, y2 = y1 + g.uniform() * img_h * 0.6;
        switch (i % 9) {
        case 1:
            x1 -= img_w * 0.3, y1 -= img_h * 0.3;
            break;
        case 2:
            x1 += img_w * 1.2, x2 += img_w * 1.2;
            break;
        case 3:
            x2 = x1, y2 = y1;
            break;
        case 4:
            std::swap(x1, x2);
            break;
        case 5:
            x2 = x1 + 0.3, y2 = y1 + 0.7;
            break;
        case 6:
            x1 = -0.25 * img_w, x2 = 1.25 * img_w, y1 = -0.1 * img_h, y2 = 1.1 * img_h;
            break;
        case 7:
            x2 += img_w * 0.5, y2 += img_h * 0.5;
            break; // past the bottom-right edge
        default:
            break;
        }
        v.insert(v.end(), {b, x1, y1, x2, y2});
    }
    return at::tensor(v, at::kDouble).reshape({k, 5}).to(dtype);
}

/// Loads torchvision's compiled ops (the library SNIP_TORCHVISION_OPS, once): false, after
/// printing "[skip] torchvision ops not found ..." and why, when it cannot be loaded.
inline bool have_torchvision() {
    static const bool ok = [] {
#ifdef SNIP_TORCHVISION_OPS
        if (dlopen(SNIP_TORCHVISION_OPS, RTLD_NOW | RTLD_GLOBAL) != nullptr) return true;
        const char* why = dlerror();
        std::printf("[skip] torchvision ops not found: dlopen(%s) failed: %s\n",
                    SNIP_TORCHVISION_OPS, why ? why : "unknown error");
#else
        std::printf("[skip] torchvision ops not found (SNIP_TORCHVISION_OPS is not defined)\n");
#endif
        return false;
    }();
    return ok;
}

/// A torchvision op (e.g. "torchvision::nms") through the dispatcher; throws when absent.
inline c10::OperatorHandle tv_op(const char* name) {
    return c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
}

} // namespace torch_test
