"""snip's LibTorch ops from Python, and a chip dataset for PyTorch training.

``import snip.torch`` loads snip's ops library (libsnip_torch_ops.so, copied into this
package's folder when the package is built with SNIP_ENABLE_TORCH) into PyTorch, which
registers ``torch.ops.snip.*``:

=================  ==========================================================
roi_align          RoIAlign, torchvision.ops.roi_align's semantics
roi_pool           RoIPool, torchvision.ops.roi_pool's
deform_conv2d      deformable convolution v1 (torchvision.ops.deform_conv2d
                   without a mask)
deform_roi_pool    deformable position-sensitive RoI pooling (SNIPER's
                   DeformablePSROIPooling)
nms, batched_nms   torchvision.ops.nms / batched_nms (the same indices)
box_iou            torchvision.ops.box_iou
encode_boxes,      the box coder: regression deltas and their inverse
decode_boxes
=================  ==========================================================

The functions below are thin wrappers over them with torchvision's argument names and
order. roi_align, roi_pool, deform_conv2d and deform_roi_pool are differentiable (autograd
works from Python: w.r.t. the features; deform_conv2d also w.r.t. weight, offset and bias;
deform_roi_pool also w.r.t. the offsets); nms, batched_nms, box_iou and the box coder are
not (their outputs never require grad). float32 or float64, one dtype per call (no
promotion); CPU tensors everywhere, CUDA tensors for roi_align, roi_pool, nms, box_iou,
deform_conv2d and deform_roi_pool when the library was built with CUDA. Bad input raises
RuntimeError with snip's message, which names the op, the argument and the value.

The library is loaded once per process (a second ``import`` or a library already loaded by
another path is detected and not loaded again).
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = [
    "library_path",
    "roi_align",
    "roi_pool",
    "deform_conv2d",
    "deform_roi_pool",
    "nms",
    "batched_nms",
    "box_iou",
    "encode_boxes",
    "decode_boxes",
]


def _library_file() -> str:
    if sys.platform == "darwin":
        name = "libsnip_torch_ops.dylib"
    elif sys.platform == "win32":
        name = "snip_torch_ops.dll"
    else:
        name = "libsnip_torch_ops.so"
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)


#: The path of the ops library this module loaded (in the package's folder).
library_path: str = _library_file()


def _registered() -> bool:
    try:
        torch.ops.snip.roi_align  # noqa: B018 (raises when the namespace is not registered)
        return True
    except (AttributeError, RuntimeError):
        return False


if not _registered():
    if not os.path.exists(library_path):
        raise ImportError(
            f"snip.torch: the ops library {library_path} is missing: this snip package was "
            "built without LibTorch (configure with -DSNIP_ENABLE_TORCH=ON and "
            "-DSNIP_BUILD_PYTHON=ON, then build the target snip_python)"
        )
    try:
        torch.ops.load_library(library_path)
    except OSError as e:  # a LibTorch other than this torch's, say
        raise ImportError(
            f"snip.torch: cannot load {library_path} into torch {torch.__version__}: {e} "
            "(the library must be built against the LibTorch of this torch)"
        ) from e

_ops = torch.ops.snip

BoxesArg = Union[Tensor, Sequence[Tensor]]


def _pair(v: Union[int, Sequence[int]], what: str) -> Tuple[int, int]:
    if isinstance(v, int):
        return v, v
    t = tuple(int(x) for x in v)
    if len(t) != 2:
        raise ValueError(f"{what} must be an int or a pair of ints, got {v!r}")
    return t[0], t[1]


def _as_rois(boxes: BoxesArg) -> Tensor:
    """K x 5 RoIs (batch index, x1, y1, x2, y2) from a K x 5 tensor or a list of per-image
    L_i x 4 tensors (the batch index is the list position), as torchvision accepts."""
    if isinstance(boxes, Tensor):
        return boxes
    boxes = list(boxes)
    if not boxes:
        raise ValueError("boxes: an empty list (give a 0 x 5 tensor for no RoIs)")
    parts = []
    for i, b in enumerate(boxes):
        idx = torch.full((b.shape[0], 1), float(i), dtype=b.dtype, device=b.device)
        parts.append(torch.cat([idx, b], dim=1))
    return torch.cat(parts, dim=0)


def roi_align(
    input: Tensor,
    boxes: BoxesArg,
    output_size: Union[int, Tuple[int, int]],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign (Mask R-CNN), torchvision.ops.roi_align's semantics, on snip's kernels.

    Args:
        input: N x C x H x W features (float32 or float64).
        boxes: K x 5 RoIs (batch index, x1, y1, x2, y2) in input-image pixels, or a list of
            N per-image L_i x 4 tensors (xyxy); same dtype and device as ``input``.
        output_size: pooled size, an int or (height, width).
        spatial_scale: feature-map pixels per input pixel (1 / the stride).
        sampling_ratio: samples per bin and axis; <= 0: ceil(RoI size / output size).
        aligned: True shifts the RoIs by -0.5 pixel (pixel centres at 0.5; Detectron2's
            choice), False keeps torchvision's legacy behaviour.

    Returns:
        K x C x output_h x output_w. Differentiable w.r.t. ``input`` (to any order); no
        gradient flows to the boxes.
    """
    ph, pw = _pair(output_size, "output_size")
    return _ops.roi_align(input, _as_rois(boxes), float(spatial_scale), ph, pw,
                          int(sampling_ratio), bool(aligned))


def roi_pool(
    input: Tensor,
    boxes: BoxesArg,
    output_size: Union[int, Tuple[int, int]],
    spatial_scale: float = 1.0,
) -> Tensor:
    """RoIPool (Fast R-CNN), torchvision.ops.roi_pool's semantics: the maximum of each bin.

    Arguments as :func:`roi_align`. Returns K x C x output_h x output_w, differentiable
    w.r.t. ``input`` (the gradient goes to each bin's argmax).
    """
    ph, pw = _pair(output_size, "output_size")
    return _ops.roi_pool(input, _as_rois(boxes), float(spatial_scale), ph, pw)


def deform_conv2d(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: Union[int, Tuple[int, int]] = (1, 1),
    padding: Union[int, Tuple[int, int]] = (0, 0),
    dilation: Union[int, Tuple[int, int]] = (1, 1),
    mask: Optional[Tensor] = None,
) -> Tensor:
    """Deformable convolution v1, torchvision.ops.deform_conv2d's semantics (no mask).

    Args:
        input: N x C x H x W.
        offset: N x (2 * offset_groups * kh * kw) x H_out x W_out; channel
            2 * ((g * kh + i) * kw + j) is the y offset of tap (i, j) of offset group g,
            the next channel its x offset (torchvision's layout).
        weight: O x (C / groups) x kh x kw; ``groups`` = C / weight.shape[1].
        bias: O values or None.
        stride, padding, dilation: ints or (h, w) pairs.
        mask: must be None: modulated (v2) deformable convolution is not implemented.

    Returns:
        N x O x H_out x W_out, differentiable w.r.t. input, offset, weight and bias (first
        order).
    """
    if mask is not None:
        raise NotImplementedError("snip.torch.deform_conv2d: mask (deformable convolution v2) "
                                  "is not supported; pass mask=None")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    dh, dw = _pair(dilation, "dilation")
    if input.dim() != 4 or weight.dim() != 4 or offset.dim() != 4:
        raise ValueError(
            "snip.torch.deform_conv2d: input, offset and weight must be 4-D, got "
            f"{tuple(input.shape)}, {tuple(offset.shape)}, {tuple(weight.shape)}")
    kh, kw = int(weight.shape[2]), int(weight.shape[3])
    # As torchvision: the groups follow from the shapes (snip's op checks that they divide).
    groups = int(input.shape[1]) // int(weight.shape[1]) if weight.shape[1] else 0
    offset_groups = int(offset.shape[1]) // (2 * kh * kw) if kh * kw else 0
    return _ops.deform_conv2d(input, weight, offset, bias, sh, sw, ph, pw, dh, dw, groups,
                              offset_groups)


def deform_roi_pool(
    input: Tensor,
    rois: BoxesArg,
    offset: Optional[Tensor],
    spatial_scale: float,
    output_dim: int,
    group_size: int,
    pooled_size: int,
    part_size: int = 0,
    sample_per_part: int = 4,
    trans_std: float = 0.1,
) -> Tensor:
    """Deformable position-sensitive RoI pooling, SNIPER's DeformablePSROIPooling.

    Args:
        input: N x (output_dim * group_size**2) x H x W features.
        rois: K x 5 RoIs (batch index, x1, y1, x2, y2) in input-image pixels (corners are
            rounded to whole pixels, as the original), or a list of per-image L_i x 4.
        offset: K x 2M x Q x Q normalised offsets for M offset classes (output_dim divisible
            by M), or None to pool without offsets.
        spatial_scale: feature-map pixels per input pixel.
        output_dim: output channels D; group_size: position-sensitive groups G (1 for a
            plain deformable RoI pooling); pooled_size: P (output P x P).
        part_size: Q, the offsets' grid (0: P); sample_per_part: samples per bin and axis;
        trans_std: the scale of the offsets (in units of the RoI size).

    Returns:
        K x D x P x P, differentiable w.r.t. ``input`` and ``offset`` (the original
        operator's gradient; see snip/ops/deform_roi_pool.hpp for where it is not the
        derivative of the forward).
    """
    return _ops.deform_roi_pool(input, _as_rois(rois), offset, float(spatial_scale),
                                int(output_dim), int(group_size), int(pooled_size),
                                int(part_size), int(sample_per_part), float(trans_std))


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """torchvision.ops.nms: int64 indices of the kept boxes by decreasing score (equal
    scores: lower index first). A box is dropped when its IoU with a kept box is greater
    than ``iou_threshold``. boxes: N x 4 xyxy; scores: N, same dtype."""
    return _ops.nms(boxes, scores, float(iou_threshold))


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """torchvision.ops.batched_nms: NMS within each class ``idxs[i]`` (int64 or int32),
    the kept indices of all classes by decreasing score. CPU only."""
    return _ops.batched_nms(boxes, scores, idxs, float(iou_threshold))


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """torchvision.ops.box_iou: the N x M IoU matrix of two sets of xyxy boxes
    (continuous convention: a box's area is (x2 - x1) * (y2 - y1)). Not differentiable."""
    return _ops.box_iou(boxes1, boxes2)


def encode_boxes(
    reference: Tensor,
    targets: Tensor,
    means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
    stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    convention: str = "continuous",
) -> Tensor:
    """Regression deltas (dx, dy, dw, dh) that move ``reference[i]`` onto ``targets[i]``
    (both N x 4 xyxy): dx = ((t.cx - r.cx) / r.w - means[0]) / stds[0], dw =
    (log(t.w / r.w) - means[2]) / stds[2] (y and h alike). ``convention``: "continuous"
    (w = x2 - x1, torchvision's) or "inclusive" (w = x2 - x1 + 1, the original SNIPER's).
    CPU only; raises for a box without positive width or height."""
    return _ops.encode_boxes(reference, targets, [float(v) for v in means],
                             [float(v) for v in stds], convention)


def decode_boxes(
    reference: Tensor,
    deltas: Tensor,
    means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
    stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    convention: str = "continuous",
) -> Tensor:
    """The boxes (N x 4 xyxy) that ``deltas`` (N x 4: dx, dy, dw, dh) predict from
    ``reference``: the inverse of :func:`encode_boxes` (dw, dh clamped at log(1000 / 16)).
    CPU only."""
    return _ops.decode_boxes(reference, deltas, [float(v) for v in means],
                             [float(v) for v in stds], convention)
