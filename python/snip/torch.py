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

:class:`ChipDataset` serves one epoch's SNIPER chips (snip's planner, chip crops and chip
ground truth) as a ``torch.utils.data.Dataset`` with targets in torchvision's detection
format, plus ignore boxes; :func:`collate` batches them.
examples/python/train_torchvision.py trains a torchvision Faster R-CNN on them.
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


# ---------------------------------------------------------------------------------------
# Chips as a PyTorch dataset

#: torchvision's ImageNet statistics for 8-bit RGB scaled to [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

__all__ += ["ChipDataset", "collate", "IMAGENET_MEAN", "IMAGENET_STD"]


class _ImageCache:
    """Decoded images by dataset index, least recently used first out, bounded by bytes
    (an image larger than the bound is still returned, just not kept). One per process:
    it is not pickled, so each DataLoader worker fills its own."""

    def __init__(self, max_bytes: int):
        from collections import OrderedDict

        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self._items: "OrderedDict[int, object]" = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: int, load):
        img = self._items.get(key)
        if img is not None:
            self._items.move_to_end(key)
            self.hits += 1
            return img
        self.misses += 1
        img = load()
        if img.nbytes <= self.max_bytes:
            self._items[key] = img
            self.bytes += img.nbytes
            while self.bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self.bytes -= old.nbytes
        return img


class ChipDataset(torch.utils.data.Dataset):
    """The chips of one SNIPER epoch as a map-style dataset, targets in torchvision's
    detection format.

    Args:
        annotations: a COCO instances JSON path (read with ``snip.read_coco``) or a
            ``snip.Dataset``.
        images_dir: the folder of the images (``images_dir / file_name``).
        config: a ``snip.PlanConfig`` or a preset name ("default", "sniper_coco").
        proposals: None (positive chips only: negative chips are mined from proposals), a
            ``snip.Proposals`` or a proposals file path (``snip.read_proposals``).
        seed, epoch: the plan's seed and epoch: the stride draw (configs that draw it) and
            the negative sample; ``set_epoch`` re-plans.
        flip: False: no mirroring; True: every chip twice, plain then mirrored (the
            original SNIPER trains on a flipped copy of every image); "random": each chip
            mirrored with probability 1/2, drawn from (seed, epoch).
        mean, std: per-channel normalisation, (v / 255 - mean) / std (default ImageNet's);
            both None: raw 0..255 values as float32.
        min_size: ground-truth boxes smaller than this in chip pixels (after clipping to
            the chip) are dropped (``snip.assign_chip``; SNIPER: 10).
        cache_bytes: the decoded-image cache of each process (least recently used out).
        threads: planning threads (0: all cores; the plan does not depend on it).

    Items, in a fixed order: for every image in dataset order its positive chips, then its
    sampled negative chips (``ImageChipsPlan.chips()``), each followed by its mirrored
    copy with ``flip=True``. ``items[i]`` tells (image index, Chip, negative, flipped)
    without loading anything. ``dataset[i]`` is ``(image, target)``:

    * image: (3, S, S) float32, S = config.chip_size: the chip's content resampled from the
      original image at its top-left, the rest 0 (padding; the mean colour when
      normalised), mirrored when flipped (``snip.cut_chip``).
    * target["boxes"]: (K, 4) float32 xyxy in chip pixels (the plan's convention), the
      VALID boxes of the chip (``snip.assign_chip``), clipped to the content and mirrored
      with the pixels; target["labels"]: (K,) int64 CONTIGUOUS class indices 1..C (the
      dataset's category ids in increasing order; 0 is background, as torchvision's
      detectors expect): ``category_ids[label - 1]`` is the COCO id;
      target["gt_index"]: (K,) int64 index of each box in the image's list.
    * target["ignore_boxes"]: (M, 4) float32, the chip's INVALID (visible, out of the
      scale's range or not assigned) and CROWD boxes, same frame;
      target["ignore_state"]: (M,) uint8 ``snip.GT_INVALID`` / ``snip.GT_CROWD``;
      target["ignore_labels"], target["ignore_index"]: (M,) int64 as above. A detector
      should neither learn them as objects nor as background (see
      examples/python/train_torchvision.py for torchvision).
    * target["image_id"]: int64 tensor, the COCO image id; target["flipped"]: bool;
      target["chip"]: a dict: scale (index), factor, rect (scaled px, the plan's
      convention), crop (the content in ORIGINAL px, continuous: x1, y1, x2, y2), width and
      height (the content in chip px), negative (bool), range (the scale's valid range in
      CHIP px, (lo, hi), -1 open).

    A chip pixel (x, y) inside the content shows the original image at
    (crop.x1 + (x' + 0.5) * (crop.x2 - crop.x1) / width, alike for y), with x' = x, or
    width - 1 - x when flipped; a chip box maps back as x / factor + rect.x1 / factor.

    Workers: the dataset pickles (the plan and records are picklable; the image cache is
    left behind and refilled per worker), so ``DataLoader(num_workers=N)`` works; call
    ``set_epoch`` before creating the epoch's iterator (persistent workers would keep the
    old plan).
    """

    def __init__(
        self,
        annotations,
        images_dir,
        config="default",
        proposals=None,
        seed: int = 0,
        epoch: int = 0,
        flip: Union[bool, str] = False,
        mean: Optional[Sequence[float]] = IMAGENET_MEAN,
        std: Optional[Sequence[float]] = IMAGENET_STD,
        min_size: float = 10.0,
        cache_bytes: int = 512 << 20,
        threads: int = 0,
    ):
        import snip

        self.dataset = (annotations if isinstance(annotations, snip.Dataset)
                        else snip.read_coco(os.fspath(annotations)))
        self.images_dir = os.fspath(images_dir)
        if isinstance(config, str):
            config = snip.PlanConfig(config)
        if not isinstance(config, snip.PlanConfig):
            raise TypeError(f"ChipDataset: config must be a snip.PlanConfig or a preset name, "
                            f"got {config!r}")
        self.config = config
        if proposals is not None and not isinstance(proposals, snip.Proposals):
            proposals = snip.read_proposals(os.fspath(proposals), self.dataset)
        self.proposals = proposals
        if flip not in (False, True, "random"):
            raise ValueError(f"ChipDataset: flip must be False, True or 'random', got {flip!r}")
        self.flip = flip
        if (mean is None) != (std is None):
            raise ValueError("ChipDataset: give both mean and std, or neither")
        self.mean = None if mean is None else tuple(float(v) for v in mean)
        self.std = None if std is None else tuple(float(v) for v in std)
        self.min_size = float(min_size)
        self.seed = int(seed)
        self.threads = int(threads)
        self.cache_bytes = int(cache_bytes)
        self._cache = _ImageCache(self.cache_bytes)
        cats = sorted({int(c[0]) for c in self.dataset.categories})
        if not cats:
            cats = sorted({int(c) for im in self.dataset.images for c in im.categories})
        #: COCO category id of contiguous label k + 1.
        self.category_ids: List[int] = cats
        self._label_of = {c: k + 1 for k, c in enumerate(cats)}
        self._convention_extra = 1.0 if config.convention == "inclusive" else 0.0
        self.set_epoch(epoch)

    # ------------------------------------------------------------------ plan
    @property
    def num_classes(self) -> int:
        """C, the number of object classes (labels are 1..C; 0 is background)."""
        return len(self.category_ids)

    def label_of(self, category_id: int) -> int:
        """The contiguous label (1..C) of a COCO category id (KeyError when unknown)."""
        return self._label_of[int(category_id)]

    def set_epoch(self, epoch: int) -> None:
        """Plans epoch `epoch` (snip.plan_dataset with this dataset's seed): the stride draw,
        the negative sample and the random flips follow from (seed, epoch) alone."""
        import snip
        import numpy as np

        self.epoch = int(epoch)
        #: One snip.ImageChipsPlan per image of the dataset.
        self.plans = snip.plan_dataset(self.config, self.dataset, self.proposals,
                                       seed=self.seed, epoch=self.epoch, threads=self.threads)
        items = []
        for i, p in enumerate(self.plans):
            npos = len(p.positives)
            for k, c in enumerate(p.chips()):
                negative = k >= npos
                if self.flip is True:
                    items.append((i, c, negative, False))
                    items.append((i, c, negative, True))
                else:
                    items.append((i, c, negative, False))
        if self.flip == "random":
            g = np.random.default_rng([self.seed, self.epoch, 0x5F11])
            coins = g.integers(0, 2, size=len(items))
            items = [(i, c, n, bool(f)) for (i, c, n, _), f in zip(items, coins)]
        #: (image index, snip.Chip, negative, flipped) of every item, in order.
        self.items: List[Tuple[int, object, bool, bool]] = items

    def __len__(self) -> int:
        return len(self.items)

    # ------------------------------------------------------------------ pixels
    def image(self, index: int):
        """The decoded (H, W, 3) uint8 image of dataset image `index` (cached). Raises
        snip.Error naming the file when it cannot be read or its size differs from the
        annotations' (its boxes would not be where they say)."""
        import snip

        rec = self.dataset[index]

        def load():
            path = os.path.join(self.images_dir, rec.file_name)
            img = snip.read_image(path)
            h, w = img.shape[:2]
            if (rec.width > 0 and w != rec.width) or (rec.height > 0 and h != rec.height):
                raise snip.Error(f"{path}: the image is {w} x {h} pixels but the annotations "
                                 f"give image id {rec.id} width {rec.width} and height "
                                 f"{rec.height}")
            return img

        return self._cache.get(index, load)

    def target(self, i: int) -> dict:
        """The target of item i (no pixels are read)."""
        import snip
        import numpy as np

        index, chip, negative, flipped = self.items[i]
        rec = self.dataset[index]
        cfg = self.config
        geom = snip.chip_crop(chip, cfg)
        gt = snip.assign_chip(cfg, chip, rec.width, rec.height, rec.boxes, rec.crowd,
                              min_size=self.min_size)
        e = self._convention_extra
        mx, my = float(geom.width) - e, float(geom.height) - e
        b = gt.boxes.astype(np.float32, copy=True)
        np.clip(b[:, 0::2], 0.0, mx, out=b[:, 0::2])
        np.clip(b[:, 1::2], 0.0, my, out=b[:, 1::2])
        if flipped:
            b[:, [0, 2]] = mx - b[:, [2, 0]]
        idx = gt.index.astype(np.int64)
        cats = rec.categories
        labels = np.array([self._label_of[int(cats[k])] for k in idx], dtype=np.int64)
        valid = gt.state == snip.GT_VALID
        lo, hi = cfg.ranges[chip.scale]
        f = chip.factor
        return {
            "boxes": torch.from_numpy(np.ascontiguousarray(b[valid])).reshape(-1, 4),
            "labels": torch.from_numpy(labels[valid]),
            "gt_index": torch.from_numpy(idx[valid]),
            "ignore_boxes": torch.from_numpy(np.ascontiguousarray(b[~valid])).reshape(-1, 4),
            "ignore_state": torch.from_numpy(np.ascontiguousarray(gt.state[~valid])),
            "ignore_labels": torch.from_numpy(labels[~valid]),
            "ignore_index": torch.from_numpy(idx[~valid]),
            "image_id": torch.tensor(int(rec.id), dtype=torch.int64),
            "flipped": bool(flipped),
            "chip": {
                "scale": int(chip.scale),
                "factor": float(f),
                "rect": tuple(int(v) for v in chip.rect),
                "crop": tuple(float(v) for v in geom.crop),
                "width": int(geom.width),
                "height": int(geom.height),
                "negative": bool(negative),
                "range": (lo * f if lo >= 0 else -1.0, hi * f if hi >= 0 else -1.0),
            },
        }

    def __getitem__(self, i: int):
        import snip

        if i < 0:
            i += len(self.items)
        if not 0 <= i < len(self.items):
            raise IndexError(f"ChipDataset: item {i} of {len(self.items)}")
        index, chip, _, flipped = self.items[i]
        pixels, _ = snip.cut_chip(self.image(index), self.config, chip, flip=flipped,
                                  mean=self.mean, std=self.std)
        return torch.from_numpy(pixels), self.target(i)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cache"] = None  # each process decodes its own images
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._cache = _ImageCache(self.cache_bytes)

    def __repr__(self) -> str:
        return (f"ChipDataset({len(self.items)} chips of {len(self.dataset)} images, "
                f"config={self.config.name!r}, epoch={self.epoch}, flip={self.flip!r})")


def collate(batch):
    """Collates ChipDataset items for a DataLoader: (images, targets) with the images
    stacked into one (B, 3, S, S) tensor (all chips have the same size; torchvision's
    detectors take it as is, or ``list(images)``) and the targets as a list of dicts."""
    images = torch.stack([b[0] for b in batch]) if batch else torch.empty(0)
    return images, [b[1] for b in batch]
