// backbone.hpp: the SNIPER backbone, a ResNet-18/34/50/101 on LibTorch with trained (or
// frozen) BatchNorm, a frozen stem + stage 1 and a dilated res5, returning the res4 and res5
// maps.
//
// @code
//   #include <snip/train/backbone.hpp>
//   #include <snip/train/weights.hpp>
//   snip::train::resnet_options o;            // ResNet-101, stem + layer1 frozen, res5 dilated
//   snip::train::ResNet net(o);
//   snip::train::load_weights(*net, "resnet101.snipw", /*strict=*/false);  // torchvision names; fc.* skipped
//   snip::train::resnet_features f = net->forward(images);   // images: N x 3 x H x W, float32
//   // f.res4: N x 1024 x H/16 x W/16; f.res5: N x 2048 x H/16 x W/16 (dilated; H/32 if not)
//   torch::optim::SGD sgd(net->trainable_parameters(), torch::optim::SGDOptions(0.015));
// @endcode
//
// Architecture (He et al. 2016, in torchvision's layout, so torchvision weights load by name):
//   stem    conv1 7x7/2 (64, no bias) -> bn1 -> ReLU -> max-pool 3x3/2 pad 1      stride 4
//   layer1  res2, 64 planes                                                       stride 4
//   layer2  res3, 128 planes, first block stride 2                                stride 8
//   layer3  res4, 256 planes, first block stride 2                                stride 16
//   layer4  res5, 512 planes, first block stride 2 (stride 1 when dilated)       stride 32 / 16
//   fc      (only with resnet_options::classifier) global average pool -> Linear
// Blocks per stage: ResNet-18 {2,2,2,2} and ResNet-34 {3,4,6,3} of BasicBlock (two 3x3 convs,
// expansion 1); ResNet-50 {3,4,6,3} and ResNet-101 {3,4,23,3} of Bottleneck (1x1 -> 3x3 -> 1x1,
// expansion 4, the stride on the 3x3 conv: "ResNet v1.5", as torchvision). Every conv has no
// bias and is followed by a BatchNorm2d; a block's shortcut is the identity, or
// `downsample` = 1x1 conv (with the block's stride) + BatchNorm2d when the stride or the
// channel count changes. ReLU after the residual sum.
//
// Names. Parameters and buffers are named as torchvision's state_dict keys: conv1.weight,
// bn1.{weight,bias,running_mean,running_var}, layer1.0.conv1.weight,
// layer1.0.downsample.0.weight, layer1.0.downsample.1.running_var, ..., fc.weight, fc.bias.
// BatchNorm's num_batches_tracked is not kept (the momentum is fixed, so nothing reads it);
// load_weights skips it in a file.
//
// Dilation (resnet_options::dilate_res5, default on, as SNIPER). layer4 keeps stride 1 and
// dilates its 3x3 convs by 2 (padding 2), so res5 keeps res4's stride 16 and the weights are
// unchanged. By default this is torchvision's replace_stride_with_dilation=[False, False, True]
// exactly: the FIRST block of layer4 keeps dilation 1 (it takes the stage's former stride),
// the later blocks use 2. The official SNIPER (MXNet, residual_unit_dilate) dilates every res5
// unit including the first: set dilate_first_res5_block for that. torchvision refuses
// dilation for BasicBlock; here a dilated BasicBlock dilates both its 3x3 convs.
//
// Deformable res5 (resnet_options::deformable_res5_groups > 0, the original SNIPER network's;
// the detector's default `sniper` model sets it to 4 with dilate_first_res5_block): each 3x3
// conv of layer4 becomes a DeformConv2d whose offset conv starts at zero, so ImageNet weights
// load by the same names and, at initialisation, the backbone computes exactly the dilated
// one. The offset convs ("layer4.0.conv2.offset.weight", ...) are not in ImageNet files:
// load_weights' `optional` list lets them stay at zero.
//
// Freezing (resnet_options::frozen_stages, mmdetection's convention): -1 nothing, 0 the stem
// (conv1), k >= 1 the stem and layer1..layerk; SNIPER freezes the stem and stage 1 (1, the
// default). Frozen parameters get requires_grad(false) at construction.
//
// BatchNorm (resnet_options::train_bn, default on, as the original SNIPER: chips make batches
// of 16+ per GPU, so BN trains on each GPU's own batch without synchronisation). The BNs of
// the parts that frozen_stages freezes are frozen (their running statistics normalise, their
// affine values are buffers); the others are trained: weight and bias are parameters, train()
// normalises with batch statistics and moves the running ones (momentum 0.005 = MXNet's 0.995),
// eval() uses the running ones. train_bn = false freezes every BN.
//
// Initialisation (for training without pretrained weights): convs Kaiming-normal (fan_out,
// ReLU), BatchNorm2d identity (weight 1, bias 0, mean 0, var 1), fc LibTorch's default.
// Load ImageNet weights with load_weights (weights.hpp) for real runs.
#pragma once

#include <snip/core/error.hpp>

#include <ATen/Context.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>

#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace snip::train {

// ---------------------------------------------------------------------------------------
// BatchNorm2d

/// @brief How a BatchNorm layer behaves in training.
struct bn_spec {
    /// false: frozen (weight, bias and running statistics are buffers, never trained nor
    /// updated; the running statistics normalise in train() and eval() alike). true: trained
    /// as the original SNIPER's (symbols/faster/resnet_mx_101_e2e.py, residual_unit: BatchNorm
    /// with fix_gamma=False, use_global_stats=False): weight and bias are parameters, train()
    /// normalises with the batch's statistics and updates the running ones, eval() uses the
    /// running ones.
    bool trained = false;
    /// Running-statistics update in PyTorch's convention, running = (1 - m) * running + m *
    /// batch. The original passes MXNet momentum 0.995 (main_train.py:27, `--momentum`
    /// default), MXNet's running = 0.995 * running + 0.005 * batch: m = 0.005.
    double momentum = 0.005;
    /// The original's MXNet layers use eps 2e-5; snip loads torchvision's ImageNet weights,
    /// which were trained (and are checked here bit for bit) with eps 1e-5, so 1e-5 it is.
    double eps = 1e-5;
};

/// @brief BatchNorm2d, frozen or trained (bn_spec). Frozen: y = x * scale + shift, scale =
/// weight / sqrt(running_var + eps), shift = bias - running_mean * scale, per channel, with
/// weight, bias, running_mean and running_var all buffers. Trained: weight and bias are
/// parameters; in train() the batch's statistics normalise (N x H x W values per channel; each
/// process its own batch, no synchronisation, as the original's per-GPU BatchNorm) and the
/// running statistics move by bn_spec::momentum; in eval() the running statistics normalise.
/// Tensors are saved and loaded by name in both modes (torchvision's state_dict names).
///
/// When the input has the tensors' dtype, the formula is evaluated by ATen's batch_norm, which
/// is what torch.nn.BatchNorm2d runs: one fused kernel, cuDNN on the GPU, and eval-mode results
/// equal to torchvision's eval-mode ResNets to the last bit on the same LibTorch. Two separate
/// operations (x * scale, then + shift) round differently, and a deep ResNet amplifies that: on
/// a random-weight ResNet-50 the layer4 map moves by ~3e-4 (values up to ~13), the size of
/// float32's own error there. An input of another dtype (float64 or float16 into a float32
/// module) takes the two-operation path with the running statistics, in the input's dtype.
class BatchNorm2dImpl : public torch::nn::Module {
public:
    explicit BatchNorm2dImpl(std::int64_t num_features, const bn_spec& spec = {});

    /// x: N x C x H x W with C = num_features.
    torch::Tensor forward(const torch::Tensor& x);

    std::int64_t num_features() const { return num_features_; }
    double eps() const { return spec_.eps; }
    bool trained() const { return spec_.trained; }
    const bn_spec& spec() const { return spec_; }

    void pretty_print(std::ostream& os) const override;

    torch::Tensor weight, bias, running_mean, running_var;

private:
    std::int64_t num_features_;
    bn_spec spec_;
};
TORCH_MODULE(BatchNorm2d);

/// @brief A frozen BatchNorm2d (bn_spec{} : buffers only, never updated).
BatchNorm2d FrozenBatchNorm2d(std::int64_t num_features, double eps = 1e-5);

namespace detail {

torch::nn::Conv2d conv2d(std::int64_t in, std::int64_t out, std::int64_t kernel,
                         std::int64_t stride = 1, std::int64_t dilation = 1);

/// The projection shortcut: 1x1 conv with the block's stride + BN, named 0 and 1.
torch::nn::Sequential projection(std::int64_t in, std::int64_t out, std::int64_t stride,
                                 const bn_spec& bn);

} // namespace detail

// ---------------------------------------------------------------------------------------
// Deformable convolution

/// @brief A deformable convolution v1 (Dai et al. 2017) as the original SNIPER's res5
/// (mahyarnajibi/SNIPER symbols/faster/resnet_mx_101_e2e.py, residual_unit_deform): a plain
/// k x k conv `offset` (with bias, same stride, padding and dilation) reads the input and
/// predicts 2 x offset_groups x k x k offsets per output position, and snip's
/// torch_ops::deform_conv2d samples the input at the shifted taps and applies `weight`
/// (no bias, as every ResNet conv). `offset` starts at zero, so at initialisation the layer
/// is the plain (dilated) conv with the same weight: ImageNet weights load into `weight`
/// unchanged (its name and shape are the plain conv's) and give the same output.
/// Names: "<conv>.weight", "<conv>.offset.weight", "<conv>.offset.bias".
class DeformConv2dImpl : public torch::nn::Module {
public:
    DeformConv2dImpl(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride,
                     std::int64_t dilation, std::int64_t offset_groups);

    /// x: N x in x H x W float32/float64 (a float16 input, under autocast, runs in float32).
    torch::Tensor forward(const torch::Tensor& x);

    /// Sets the offset predictor to zero (the layer becomes the plain conv).
    void reset_offsets();

    void pretty_print(std::ostream& os) const override;

    torch::Tensor weight;
    torch::nn::Conv2d offset{nullptr};

private:
    std::int64_t in_, out_, kernel_, stride_, dilation_, groups_;
};
TORCH_MODULE(DeformConv2d);

// ---------------------------------------------------------------------------------------
// Residual blocks

/// @brief Two 3x3 convs (the first with the stride), expansion 1 (ResNet-18/34). With
/// `offset_groups` > 0 both 3x3 convs are deformable (DeformConv2d, registered under the same
/// names conv1 and conv2; the plain members then stay empty).
class BasicBlockImpl : public torch::nn::Module {
public:
    static constexpr std::int64_t expansion = 1;

    BasicBlockImpl(std::int64_t inplanes, std::int64_t planes, std::int64_t stride,
                   std::int64_t dilation, bool project, const bn_spec& bn = {},
                   std::int64_t offset_groups = 0);

    torch::Tensor forward(const torch::Tensor& x);

    torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
    DeformConv2d deform1{nullptr}, deform2{nullptr}; ///< the deformable conv1 / conv2
    BatchNorm2d bn1{nullptr}, bn2{nullptr};
    torch::nn::Sequential downsample{nullptr}; ///< empty for an identity shortcut
};
TORCH_MODULE(BasicBlock);

/// @brief 1x1 (reduce) -> 3x3 (stride, dilation) -> 1x1 (expand x4) (ResNet-50/101). With
/// `offset_groups` > 0 the 3x3 conv is deformable (DeformConv2d, registered as conv2; the
/// plain conv2 then stays empty), as the original's residual_unit_deform.
class BottleneckImpl : public torch::nn::Module {
public:
    static constexpr std::int64_t expansion = 4;

    BottleneckImpl(std::int64_t inplanes, std::int64_t planes, std::int64_t stride,
                   std::int64_t dilation, bool project, const bn_spec& bn = {},
                   std::int64_t offset_groups = 0);

    torch::Tensor forward(const torch::Tensor& x);

    torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
    DeformConv2d deform2{nullptr}; ///< the deformable conv2
    BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
    torch::nn::Sequential downsample{nullptr}; ///< empty for an identity shortcut
};
TORCH_MODULE(Bottleneck);

// ---------------------------------------------------------------------------------------
// ResNet

/// @brief How to build the backbone. The defaults are SNIPER's: ResNet-101, stem + layer1
/// frozen, res5 dilated (torchvision's semantics), no classifier.
struct resnet_options {
    int depth = 101;                      ///< 18, 34, 50 or 101
    int frozen_stages = 1;                ///< -1 none, 0 stem, k: stem + layer1..layerk (<= 4)
    bool dilate_res5 = true;              ///< layer4 stride 1, dilation 2: res5 at stride 16
    bool dilate_first_res5_block = false; ///< also dilate layer4's first block (official SNIPER)
    /// Deformable res5 (the original SNIPER network, resnet_mx_101_e2e.py resnetc5 with
    /// deform=True): every 3x3 conv of layer4 is a DeformConv2d with this many offset groups
    /// (the original: 4, num_deformable_group); 0: plain convs. Needs dilate_res5.
    std::int64_t deformable_res5_groups = 0;
    bool classifier = false;              ///< build fc (for forward_classifier / ImageNet files)
    std::int64_t num_classes = 1000;      ///< fc outputs, when classifier
    /// BatchNorm of the stages that are not frozen: trained with batch statistics (the
    /// original SNIPER's recipe: fix_bn=False for stages 2-5; main_train.py:27 momentum 0.995,
    /// resnet_mx_101_e2e.py residual_unit) or frozen (false: every BN keeps its loaded
    /// statistics and affine values). BN inside frozen stages (frozen_stages) is always frozen,
    /// as the original's FIXED_PARAMS conv0, bn0, stage1 (use_global_stats=True there).
    bool train_bn = true;
    double bn_momentum = 0.005; ///< PyTorch convention (1 - MXNet's 0.995)
    double bn_eps = 1e-5;       ///< torchvision's (its weights' own); the original's MXNet: 2e-5
    /// Channels of the stem and layer1's planes (layer k has width * 2^(k-1) planes); 64 is
    /// torchvision's and the only value its weights fit. Smaller widths make the tiny models
    /// of CPU tests and the embedded demo (16 cuts the compute about 16x).
    std::int64_t width = 64;
};

/// @brief The two maps the SNIPER head reads.
struct resnet_features {
    torch::Tensor res4; ///< layer3 output: N x (256 * expansion) x H/16 x W/16
    torch::Tensor res5; ///< layer4 output: N x (512 * expansion) x H/16 (dilated) or H/32
};

class ResNetImpl : public torch::nn::Module {
public:
    explicit ResNetImpl(const resnet_options& options = {});

    /// @brief res4 and res5 of `x` (N x 3 x H x W; H, W >= 1).
    resnet_features forward(const torch::Tensor& x);

    /// @brief The ImageNet classifier: global average pool of res5 -> fc -> N x num_classes
    /// logits. Needs resnet_options::classifier. For checking weights, not for detection.
    torch::Tensor forward_classifier(const torch::Tensor& x);

    /// @brief The parameters with requires_grad (what an optimizer should get).
    std::vector<torch::Tensor> trainable_parameters() const;

    const resnet_options& options() const { return options_; }
    std::int64_t res4_channels() const { return 4 * options_.width * expansion_; }
    std::int64_t res5_channels() const { return 8 * options_.width * expansion_; }
    static constexpr std::int64_t res4_stride() { return 16; }
    std::int64_t res5_stride() const { return options_.dilate_res5 ? 16 : 32; }

    torch::nn::Conv2d conv1{nullptr};
    BatchNorm2d bn1{nullptr};
    torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
    torch::nn::Linear fc{nullptr}; ///< empty unless resnet_options::classifier

private:
    // One stage: `count` blocks, the first with `stride` (or, when `dilate`, stride 1 and the
    // dilation multiplied by the stride) and a projection shortcut when the shape changes.
    /// The BatchNorm of part `k` (0 the stem, k >= 1 layer k): trained when train_bn and the
    /// part is not frozen (frozen_stages: -1 none, 0 the stem, k the stem and layer1..k).
    bn_spec bn_of(int k) const;

    torch::nn::Sequential make_layer(std::int64_t planes, std::int64_t count, std::int64_t stride,
                                     bool dilate, const bn_spec& bn,
                                     std::int64_t offset_groups = 0);

    void freeze();

    resnet_options options_;
    bool bottleneck_ = false;
    std::int64_t expansion_ = 1;
    std::int64_t inplanes_ = 64;
    std::int64_t dilation_ = 1;
};
TORCH_MODULE(ResNet);

} // namespace snip::train
