// backbone.cpp: the ResNet backbone and its BatchNorm (declared in snip/train/backbone.hpp).
#include <snip/train/backbone.hpp>

#include <snip/torch/ops.hpp>

namespace snip::train {

BatchNorm2dImpl::BatchNorm2dImpl(std::int64_t num_features, const bn_spec& spec)
    : num_features_(num_features), spec_(spec) {
    snip::require(num_features > 0, "BatchNorm2d: num_features must be > 0, got ", num_features);
    snip::require(std::isfinite(spec.momentum) && spec.momentum >= 0.0 && spec.momentum <= 1.0,
                  "BatchNorm2d: momentum must be in [0, 1], got ", spec.momentum);
    snip::require(std::isfinite(spec.eps) && spec.eps > 0.0, "BatchNorm2d: eps must be > 0, got ",
                  spec.eps);
    if (spec.trained) {
        weight = register_parameter("weight", torch::ones({num_features}));
        bias = register_parameter("bias", torch::zeros({num_features}));
    } else {
        weight = register_buffer("weight", torch::ones({num_features}));
        bias = register_buffer("bias", torch::zeros({num_features}));
    }
    running_mean = register_buffer("running_mean", torch::zeros({num_features}));
    running_var = register_buffer("running_var", torch::ones({num_features}));
}

torch::Tensor BatchNorm2dImpl::forward(const torch::Tensor& x) {
    snip::require(x.dim() == 4 && x.size(1) == num_features_, "BatchNorm2d: input must be N x ",
                  num_features_, " x H x W, got a tensor of rank ", x.dim(),
                  x.dim() >= 2 ? " with " + std::to_string(x.size(1)) + " channels" : "");
    const bool batch_stats = spec_.trained && is_training();
    if (batch_stats) {
        snip::require(x.size(0) * x.size(2) * x.size(3) > 1,
                      "BatchNorm2d: training with batch statistics needs more than one value "
                      "per channel, got an input of ",
                      x.size(0), " x ", x.size(1), " x ", x.size(2), " x ", x.size(3));
        return torch::batch_norm(x, weight, bias, running_mean, running_var,
                                 /*training=*/true, spec_.momentum, spec_.eps,
                                 at::globalContext().userEnabledCuDNN());
    }
    if (x.scalar_type() == weight.scalar_type())
        // ATen's inference kernel computes exactly x * scale + shift (scale and shift per
        // channel, as above); see the class comment for why it is used.
        return torch::batch_norm(x, weight, bias, running_mean, running_var,
                                 /*training=*/false, /*momentum=*/0.0, spec_.eps,
                                 at::globalContext().userEnabledCuDNN());
    // Another dtype than the tensors' (a float64 input to a float32 module): the same
    // formula in separate operations, in the input's dtype.
    const torch::Tensor scale = weight * (running_var + spec_.eps).rsqrt();
    const torch::Tensor shift = bias - running_mean * scale;
    return x * scale.to(x.scalar_type()).view({1, -1, 1, 1}) +
           shift.to(x.scalar_type()).view({1, -1, 1, 1});
}

void BatchNorm2dImpl::pretty_print(std::ostream& os) const {
    os << "snip::train::BatchNorm2d(" << num_features_ << ", eps=" << spec_.eps
       << (spec_.trained ? ", trained, momentum=" + std::to_string(spec_.momentum)
                         : std::string(", frozen"))
       << ")";
}

BatchNorm2d FrozenBatchNorm2d(std::int64_t num_features, double eps) {
    bn_spec s;
    s.eps = eps;
    return BatchNorm2d(num_features, s);
}

namespace detail {

torch::nn::Conv2d conv2d(std::int64_t in, std::int64_t out, std::int64_t kernel,
                         std::int64_t stride, std::int64_t dilation) {
    // "same" padding for odd kernels: dilation * (kernel - 1) / 2.
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                                 .stride(stride)
                                 .padding(dilation * (kernel - 1) / 2)
                                 .dilation(dilation)
                                 .bias(false));
}

torch::nn::Sequential projection(std::int64_t in, std::int64_t out, std::int64_t stride,
                                 const bn_spec& bn) {
    return torch::nn::Sequential(conv2d(in, out, 1, stride), BatchNorm2d(out, bn));
}

} // namespace detail

DeformConv2dImpl::DeformConv2dImpl(std::int64_t in, std::int64_t out, std::int64_t kernel,
                                   std::int64_t stride, std::int64_t dilation,
                                   std::int64_t offset_groups)
    : in_(in), out_(out), kernel_(kernel), stride_(stride), dilation_(dilation),
      groups_(offset_groups) {
    snip::require(in >= 1 && out >= 1 && kernel >= 1 && stride >= 1 && dilation >= 1,
                  "DeformConv2d: channels, kernel, stride and dilation must be >= 1");
    snip::require(offset_groups >= 1 && in % offset_groups == 0,
                  "DeformConv2d: offset_groups must be >= 1 and divide the ", in,
                  " input channels, got ", offset_groups);
    weight = register_parameter("weight", torch::empty({out, in, kernel, kernel}));
    offset = register_module(
        "offset", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, 2 * offset_groups * kernel * kernel,
                                                             kernel)
                                        .stride(stride)
                                        .padding(dilation * (kernel - 1) / 2)
                                        .dilation(dilation)
                                        .bias(true)));
    torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanOut, torch::kReLU);
    reset_offsets();
}

void DeformConv2dImpl::reset_offsets() {
    torch::NoGradGuard ng;
    offset->weight.zero_();
    offset->bias.zero_();
}

torch::Tensor DeformConv2dImpl::forward(const torch::Tensor& x) {
    // snip's op takes float32 / float64: a float16 map (autocast) runs in float32.
    const torch::Tensor in = x.scalar_type() == torch::kHalf ? x.to(torch::kFloat) : x;
    const torch::Tensor off = offset(in).to(in.scalar_type());
    const std::int64_t pad = dilation_ * (kernel_ - 1) / 2;
    return snip::torch_ops::deform_conv2d(in, weight.to(in.scalar_type()), off, torch::Tensor(),
                                          stride_, stride_, pad, pad, dilation_, dilation_, 1,
                                          groups_);
}

void DeformConv2dImpl::pretty_print(std::ostream& os) const {
    os << "snip::train::DeformConv2d(" << in_ << ", " << out_ << ", kernel_size=" << kernel_
       << ", stride=" << stride_ << ", dilation=" << dilation_ << ", offset_groups=" << groups_
       << ")";
}

namespace {

DeformConv2d deform3x3(std::int64_t in, std::int64_t out, std::int64_t stride,
                       std::int64_t dilation, std::int64_t groups) {
    return DeformConv2d(in, out, 3, stride, dilation, groups);
}

} // namespace

BasicBlockImpl::BasicBlockImpl(std::int64_t inplanes, std::int64_t planes, std::int64_t stride,
                               std::int64_t dilation, bool project, const bn_spec& bn,
                               std::int64_t offset_groups) {
    if (offset_groups > 0)
        deform1 = register_module("conv1",
                                  deform3x3(inplanes, planes, stride, dilation, offset_groups));
    else
        conv1 = register_module("conv1", detail::conv2d(inplanes, planes, 3, stride, dilation));
    bn1 = register_module("bn1", BatchNorm2d(planes, bn));
    if (offset_groups > 0)
        deform2 = register_module("conv2", deform3x3(planes, planes, 1, dilation, offset_groups));
    else
        conv2 = register_module("conv2", detail::conv2d(planes, planes, 3, 1, dilation));
    bn2 = register_module("bn2", BatchNorm2d(planes, bn));
    if (project)
        downsample = register_module("downsample",
                                     detail::projection(inplanes, planes * expansion, stride, bn));
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
    torch::Tensor y = bn1(conv1 ? conv1(x) : deform1(x)).relu_();
    y = bn2(conv2 ? conv2(y) : deform2(y));
    y += downsample ? downsample->forward(x) : x;
    return y.relu_();
}

BottleneckImpl::BottleneckImpl(std::int64_t inplanes, std::int64_t planes, std::int64_t stride,
                               std::int64_t dilation, bool project, const bn_spec& bn,
                               std::int64_t offset_groups) {
    conv1 = register_module("conv1", detail::conv2d(inplanes, planes, 1));
    bn1 = register_module("bn1", BatchNorm2d(planes, bn));
    if (offset_groups > 0)
        deform2 = register_module("conv2",
                                  deform3x3(planes, planes, stride, dilation, offset_groups));
    else
        conv2 = register_module("conv2", detail::conv2d(planes, planes, 3, stride, dilation));
    bn2 = register_module("bn2", BatchNorm2d(planes, bn));
    conv3 = register_module("conv3", detail::conv2d(planes, planes * expansion, 1));
    bn3 = register_module("bn3", BatchNorm2d(planes * expansion, bn));
    if (project)
        downsample = register_module("downsample",
                                     detail::projection(inplanes, planes * expansion, stride, bn));
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
    torch::Tensor y = bn1(conv1(x)).relu_();
    y = bn2(conv2 ? conv2(y) : deform2(y)).relu_();
    y = bn3(conv3(y));
    y += downsample ? downsample->forward(x) : x;
    return y.relu_();
}

ResNetImpl::ResNetImpl(const resnet_options& options) : options_(options) {
    std::vector<std::int64_t> blocks;
    switch (options.depth) {
    case 18:
        blocks = {2, 2, 2, 2};
        break;
    case 34:
        blocks = {3, 4, 6, 3};
        break;
    case 50:
        blocks = {3, 4, 6, 3};
        break;
    case 101:
        blocks = {3, 4, 23, 3};
        break;
    default:
        snip::fail("ResNet: depth must be 18, 34, 50 or 101, got ", options.depth);
    }
    snip::require(options.frozen_stages >= -1 && options.frozen_stages <= 4,
                  "ResNet: frozen_stages must be in [-1, 4], got ", options.frozen_stages);
    snip::require(options.width >= 1, "ResNet: width must be >= 1, got ", options.width);
    snip::require(!options.classifier || options.num_classes > 0,
                  "ResNet: num_classes must be > 0, got ", options.num_classes);
    snip::require(options.deformable_res5_groups >= 0, "ResNet: deformable_res5_groups must be "
                  ">= 0, got ", options.deformable_res5_groups);
    snip::require(options.deformable_res5_groups == 0 || options.dilate_res5,
                  "ResNet: a deformable res5 needs dilate_res5 (the original's deformable res5 "
                  "is dilated, at stride 16)");
    bottleneck_ = options.depth >= 50;
    expansion_ = bottleneck_ ? BottleneckImpl::expansion : BasicBlockImpl::expansion;

    conv1 = register_module(
        "conv1",
        torch::nn::Conv2d(
            torch::nn::Conv2dOptions(3, options.width, 7).stride(2).padding(3).bias(false)));
    const std::int64_t w = options.width;
    inplanes_ = w;
    bn1 = register_module("bn1", BatchNorm2d(w, bn_of(0)));
    layer1 = register_module("layer1", make_layer(w, blocks[0], 1, false, bn_of(1)));
    layer2 = register_module("layer2", make_layer(2 * w, blocks[1], 2, false, bn_of(2)));
    layer3 = register_module("layer3", make_layer(4 * w, blocks[2], 2, false, bn_of(3)));
    layer4 =
        register_module("layer4", make_layer(8 * w, blocks[3], 2, options.dilate_res5, bn_of(4),
                                             options.deformable_res5_groups));
    if (options.classifier)
        fc = register_module("fc", torch::nn::Linear(8 * w * expansion_, options.num_classes));

    for (auto& m : modules(/*include_self=*/false))
        if (auto* c = m->as<torch::nn::Conv2d>())
            torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    // The loop above also drew the deformable convs' offset predictors: back to zero.
    for (auto& m : modules(/*include_self=*/false))
        if (auto* d = m->as<DeformConv2dImpl>()) d->reset_offsets();
    freeze();
}

resnet_features ResNetImpl::forward(const torch::Tensor& x) {
    snip::require(x.dim() == 4 && x.size(1) == 3,
                  "ResNet: input must be N x 3 x H x W, got a tensor of rank ", x.dim(),
                  x.dim() >= 2 ? " with " + std::to_string(x.size(1)) + " channels" : "");
    namespace F = torch::nn::functional;
    torch::Tensor y = bn1(conv1(x)).relu_();
    y = F::max_pool2d(y, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
    y = layer2->forward(layer1->forward(y));
    resnet_features f;
    f.res4 = layer3->forward(y);
    f.res5 = layer4->forward(f.res4);
    return f;
}

torch::Tensor ResNetImpl::forward_classifier(const torch::Tensor& x) {
    snip::require(static_cast<bool>(fc), "ResNet::forward_classifier: built without a classifier "
                                         "(set resnet_options::classifier)");
    torch::Tensor y = forward(x).res5;
    return fc(y.mean({2, 3}));
}

std::vector<torch::Tensor> ResNetImpl::trainable_parameters() const {
    std::vector<torch::Tensor> out;
    for (const auto& p : parameters())
        if (p.requires_grad()) out.push_back(p);
    return out;
}

bn_spec ResNetImpl::bn_of(int k) const {
    bn_spec s;
    s.trained = options_.train_bn && k > options_.frozen_stages;
    s.momentum = options_.bn_momentum;
    s.eps = options_.bn_eps;
    return s;
}

torch::nn::Sequential ResNetImpl::make_layer(std::int64_t planes, std::int64_t count,
                                             std::int64_t stride, bool dilate, const bn_spec& bn,
                                             std::int64_t offset_groups) {
    const std::int64_t before = dilation_;
    if (dilate) {
        dilation_ *= stride;
        stride = 1;
    }
    const std::int64_t first_dilation =
        dilate && options_.dilate_first_res5_block ? dilation_ : before;
    const bool project = stride != 1 || inplanes_ != planes * expansion_;
    torch::nn::Sequential seq;
    for (std::int64_t i = 0; i < count; ++i) {
        const std::int64_t s = i == 0 ? stride : 1;
        const std::int64_t d = i == 0 ? first_dilation : dilation_;
        const bool p = i == 0 && project;
        if (bottleneck_)
            seq->push_back(Bottleneck(inplanes_, planes, s, d, p, bn, offset_groups));
        else
            seq->push_back(BasicBlock(inplanes_, planes, s, d, p, bn, offset_groups));
        inplanes_ = planes * expansion_;
    }
    return seq;
}

void ResNetImpl::freeze() {
    const int k = options_.frozen_stages;
    if (k < 0) return;
    std::vector<torch::nn::Module*> frozen{conv1.get(), bn1.get()};
    torch::nn::Sequential stages[] = {layer1, layer2, layer3, layer4};
    for (int i = 0; i < k; ++i)
        frozen.push_back(stages[i].get());
    for (auto* m : frozen)
        for (auto& p : m->parameters())
            p.requires_grad_(false);
}

} // namespace snip::train
