// torch_test_util.hpp: inputs shared by the LibTorch tests. Include it after the LibTorch
// headers and before doctest's (see test_torch_ops.cpp).
#pragma once

#include <snip/core/random.hpp>

#include <ATen/ATen.h>

#include <cstdint>
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

} // namespace torch_test
