// trainer_test_util.hpp: what the trainer's tests share. LibTorch only (no doctest), so it
// can be included before "test_util.hpp" as those tests must.
#pragma once

#include <detector.hpp>

#include <cstdint>

namespace trainer_test {

/// A tiny detector for fast CPU tests: ResNet-18 at width 8 trained from scratch (nothing
/// frozen), RPN 32, head 16 and FC 64 channels.
inline sniper::detector_options tiny_model(std::int64_t classes = 2) {
    sniper::detector_options o;
    o.backbone.depth = 18;
    o.backbone.width = 8;
    o.backbone.frozen_stages = -1;
    o.num_classes = classes;
    o.rpn_channels = 32;
    o.head_channels = 16;
    o.fc_channels = 64;
    return o;
}

} // namespace trainer_test
