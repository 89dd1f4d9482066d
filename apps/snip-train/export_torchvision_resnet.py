#!/usr/bin/env python3
"""Export a torchvision ResNet's weights to a .snipw file that the C++ trainer reads
(snip::train::load_weights in weights.hpp) without Python.

Run it with a Python that has torch and torchvision (on Debian: /usr/bin/python3 with
python3-torch and python3-torchvision).

  # real ImageNet weights you downloaded elsewhere (a torchvision .pth state_dict):
  export_torchvision_resnet.py --arch resnet101 --from-checkpoint resnet101-63fe2227.pth \
      --out resnet101.snipw
  # random weights (tests):
  export_torchvision_resnet.py --arch resnet50 --random-seed 0 --out r50.snipw
  # ... with non-trivial BatchNorm statistics and the model's input/outputs for comparison:
  export_torchvision_resnet.py --arch resnet50 --random-seed 0 --randomize-bn \
      --out r50.snipw --io-out r50_io.snipw --dilated-io-out r50_dil_io.snipw --input-size 64

The weights file holds the model's state_dict under torchvision's names (conv1.weight,
bn1.running_mean, layer1.0.downsample.0.weight, ..., fc.weight), without BatchNorm's
num_batches_tracked counters (the C++ FrozenBatchNorm2d has none).

--io-out writes a second .snipw file with a fixed random input ("input", 1 x 3 x S x S,
float32) and the eval-mode outputs of the same model: "logits" (1 x 1000), "layer3" and
"layer4" (the res4 and res5 maps, taken with forward hooks); with --io-float64 also
"logits_f64", "layer3_f64", "layer4_f64" from the model and input converted to float64
(free of float32 rounding, for a tight structural comparison). --dilated-io-out does the same
for the model rebuilt with replace_stride_with_dilation=[False, False, True] and the same
weights (Bottleneck ResNets only: torchvision does not dilate BasicBlock).

File format (all integers little-endian, see weights.hpp):
  b"SNIPW1", u32 count, then per tensor: u32 name length, name (UTF-8), u8 dtype code
  (0 float32, 1 float64, 2 float16, 3 bfloat16, 4 int64, 5 int32, 6 int16, 7 int8, 8 uint8,
  9 bool), u8 rank, rank x i64 sizes, raw row-major data.

Exit status: 0 done, 2 bad arguments, 3 torch/torchvision cannot be imported, 1 other errors.
"""
import argparse
import os
import struct
import sys

ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
MAGIC = b"SNIPW1"


def dtype_codes(torch):
    return {
        torch.float32: 0, torch.float64: 1, torch.float16: 2, torch.bfloat16: 3,
        torch.int64: 4, torch.int32: 5, torch.int16: 6, torch.int8: 7, torch.uint8: 8,
        torch.bool: 9,
    }


def write_snipw(torch, path, named):
    """Writes [(name, tensor)] to path atomically (temporary file + rename)."""
    codes = dtype_codes(torch)
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate tensor names")
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<I", len(named)))
        for name, t in named:
            t = t.detach().cpu().contiguous()
            if t.dtype not in codes:
                raise ValueError(f"{name}: dtype {t.dtype} is not supported by .snipw")
            if t.dim() > 8:
                raise ValueError(f"{name}: rank {t.dim()} is above 8")
            raw = name.encode("utf-8")
            if not 1 <= len(raw) <= 4096:
                raise ValueError(f"{name!r}: name length must be in [1, 4096]")
            f.write(struct.pack("<I", len(raw)))
            f.write(raw)
            f.write(struct.pack("<BB", codes[t.dtype], t.dim()))
            f.write(struct.pack(f"<{t.dim()}q", *t.shape))
            if t.numel():
                if sys.byteorder != "little":
                    raise ValueError("big-endian hosts are not supported")
                # uint8 view of the storage: works for every dtype, bfloat16 included.
                f.write(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    os.replace(tmp, path)


def build(torchvision, arch, dilate=False):
    kwargs = {"weights": None}
    if dilate:
        kwargs["replace_stride_with_dilation"] = [False, False, True]
    return getattr(torchvision.models, arch)(**kwargs)


def read_checkpoint(torch, path):
    ckpt = torch.load(path, map_location="cpu")
    for key in ("state_dict", "model"):
        if isinstance(ckpt, dict) and key in ckpt and isinstance(ckpt[key], dict):
            ckpt = ckpt[key]
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: not a state_dict (got {type(ckpt).__name__})")
    prefix = "module."
    if ckpt and all(k.startswith(prefix) for k in ckpt):  # saved from DataParallel
        ckpt = {k[len(prefix):]: v for k, v in ckpt.items()}
    return ckpt


def randomize_bn(torch, model, size, generator):
    """Non-trivial BatchNorm state that keeps activations at the scale of a trained network:
    random affine weights (weight in [0.5, 1.5), bias ~ N(0, 0.2)), then running statistics
    measured in train mode on random images (cumulative average over two batches of 8).
    A freshly built torchvision ResNet has mean 0, var 1, weight 1, bias 0: exported as is,
    every BatchNorm would be the identity and would not test the C++ FrozenBatchNorm2d."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            n = m.num_features
            m.weight.copy_(0.5 + torch.rand(n, generator=generator))
            m.bias.copy_(0.2 * torch.randn(n, generator=generator))
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average
        model.train()
        for _ in range(2):
            model(torch.randn(8, 3, size, size, generator=generator))
        for m in bns:
            m.momentum = 0.1
    model.eval()


def outputs(torch, model, x, suffix=""):
    feats = {}
    hooks = [getattr(model, name).register_forward_hook(
        lambda _m, _inp, out, name=name: feats.__setitem__(name, out.detach().clone()))
        for name in ("layer3", "layer4")]
    model.eval()
    with torch.no_grad():
        logits = model(x)
    for h in hooks:
        h.remove()
    return [("logits" + suffix, logits), ("layer3" + suffix, feats["layer3"]),
            ("layer4" + suffix, feats["layer4"])]


def io_tensors(torch, model, x, float64):
    io = [("input", x)] + outputs(torch, model, x)
    if float64:
        io += outputs(torch, model.double(), x.double(), "_f64")
        model.float()
    return io


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", required=True, choices=ARCHS)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--random-seed", type=int, help="random weights from this seed")
    src.add_argument("--from-checkpoint", metavar="PTH",
                     help="a torchvision state_dict (.pth) for --arch")
    p.add_argument("--out", required=True, help="the .snipw weights file to write")
    p.add_argument("--randomize-bn", action="store_true",
                   help="with --random-seed: random BatchNorm statistics and affine weights")
    p.add_argument("--io-out", metavar="SNIPW",
                   help="also write a random input and the model's eval-mode outputs")
    p.add_argument("--dilated-io-out", metavar="SNIPW",
                   help="the same for replace_stride_with_dilation=[False, False, True]")
    p.add_argument("--input-size", type=int, default=64, help="side of the --io-out input")
    p.add_argument("--io-seed", type=int, default=1, help="seed of the --io-out input")
    p.add_argument("--io-float64", action="store_true",
                   help="also write the outputs of the model and input converted to float64 "
                        "(logits_f64, layer3_f64, layer4_f64)")
    a = p.parse_args(argv)
    if a.randomize_bn and a.random_seed is None:
        p.error("--randomize-bn needs --random-seed")
    if a.input_size < 32:
        p.error("--input-size must be >= 32")
    if a.dilated_io_out and a.arch in ("resnet18", "resnet34"):
        p.error("--dilated-io-out: torchvision does not dilate BasicBlock (resnet18/34)")

    try:
        import torch
        import torchvision
    except ImportError as e:
        print(f"export_torchvision_resnet.py: cannot import torch/torchvision: {e}",
              file=sys.stderr)
        return 3

    if a.random_seed is not None:
        torch.manual_seed(a.random_seed)
        model = build(torchvision, a.arch)
        if a.randomize_bn:
            g = torch.Generator().manual_seed(a.random_seed + 1)
            randomize_bn(torch, model, a.input_size, g)
    else:
        model = build(torchvision, a.arch)
        try:
            model.load_state_dict(read_checkpoint(torch, a.from_checkpoint), strict=True)
        except (OSError, RuntimeError, ValueError) as e:
            print(f"export_torchvision_resnet.py: cannot load {a.from_checkpoint} into a "
                  f"torchvision {a.arch}: {e}", file=sys.stderr)
            return 1
    model.eval()

    state = model.state_dict()
    named = [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]
    write_snipw(torch, a.out, named)
    print(f"wrote {a.out}: {a.arch}, {len(named)} tensors, "
          f"{sum(t.numel() for _, t in named)} values")

    if a.io_out or a.dilated_io_out:
        g = torch.Generator().manual_seed(a.io_seed)
        x = torch.randn(1, 3, a.input_size, a.input_size, generator=g)
        for path, dilate in ((a.io_out, False), (a.dilated_io_out, True)):
            if not path:
                continue
            m = build(torchvision, a.arch, dilate)
            m.load_state_dict(state, strict=True)
            io = io_tensors(torch, m, x, a.io_float64)
            write_snipw(torch, path, io)
            print(f"wrote {path}: " + ", ".join(
                f"{n} {list(t.shape)} max|x| {t.abs().max().item():.3g}" for n, t in io))
    return 0


if __name__ == "__main__":
    sys.exit(main())
