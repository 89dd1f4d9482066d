#!/usr/bin/env python3
"""SNIPER chips for a torchvision Faster R-CNN, on snip's synthetic dataset, on the CPU.

    PYTHONPATH=<build>/python /usr/bin/python3 examples/python/train_torchvision.py --steps 40

What it does:

1. writes snip's synthetic detection set (snip._train.write_synthetic: PNGs with discs,
   squares and triangles from a few pixels to most of the image, and a COCO file) for
   training and a second one, another seed, for testing, into --out (a temporary folder
   by default);
2. plans SNIPER chips (snip.torch.ChipDataset: the config's scales, 512 x 512 chips, each
   scale's valid boxes as targets, the others as ignore regions) and trains a SMALL
   torchvision Faster R-CNN from scratch for --steps steps, printing the loss of every
   step. The network is torchvision's GeneralizedRCNN, RegionProposalNetwork, RoIHeads,
   AnchorGenerator and heads around a tiny 5-layer backbone (stride 16, no pretrained
   weights, nothing downloaded); its RoI pooling is snip's roi_align
   (snip.torch.roi_align over torch.ops.snip.roi_align);
3. detects on every test image at each of the config's scales (the whole image resized by
   the scale's factor), maps the detections back to original pixels and merges them with
   snip's multi-scale merge (snip.merge_multiscale: each scale keeps the detections in
   its valid range, then Soft-NMS per class), prints them and the COCO AP
   (snip.evaluate_coco).

What torchvision's Faster R-CNN cannot do natively, and how this script handles it:

* IGNORE REGIONS. torchvision's detectors know only "boxes" and "labels": every anchor
  and proposal not matched to a box is background. A chip also holds boxes that are not
  targets at its scale (snip.GT_INVALID: too small or too large for the scale's valid
  range, or not assigned to the chip) and crowd regions (snip.GT_CROWD). Left out, they
  would be learned as background, which is exactly what SNIPER avoids; given as boxes,
  they would be learned as objects at the wrong scale. ChipDataset puts them in
  target["ignore_boxes"], and the two subclasses below use them:
  - IgnoreAwareRPN.assign_targets_to_anchors: after torchvision's matching, an anchor
    whose IoU with any ignore box is > 0.3 gets label -1 (torchvision's "between
    thresholds", which its sampler never draws), overriding positive and negative: the
    rule of the original SNIPER's anchor targets (snip.assign_rpn_labels, rule 4).
  - IgnoreAwareRoIHeads.assign_targets_to_proposals: a proposal labelled background
    whose IoU with an ignore box is >= the foreground threshold (0.5) gets label -1,
    so it is neither a negative nor a positive. (The original SNIPER instead lets INVALID
    boxes label proposals with their class in the second stage; torchvision's RoI
    sampler would need their labels as targets, which the simpler "ignore" avoids.)
  Both overrides use only the methods' documented inputs and outputs in torchvision 0.14
  (targets is the list of dicts the model was called with).
* NO RESIZING. GeneralizedRCNNTransform resizes every input to min_size/max_size. The
  chips are already at their scale, so ChipTransform keeps inputs as they are (it also
  sets min_size = max_size = the chip size, which would leave a 512 chip unchanged
  anyway, but test images are larger). Inputs are normalised by the dataset (ImageNet
  statistics), so the transform's mean/std are 0/1.
* VALID RANGES OF PROPOSALS. SNIPER drops training proposals outside the chip's scale
  range (target["chip"]["range"]); torchvision's RoIHeads has no hook for it, so this
  example keeps them.

This is a demonstration of the API on a CPU, not a recipe. The default 30 steps (about
10 s) show the loss falling and only weak detections; on a 2-core machine,
`--steps 400 --batch 4 --images 32 --test-images 8` trained in about 200 s (0.4-0.5 s a
step; loss 1.12 over the first 5 steps, 0.29 over the last 5) and reached COCO AP 0.54,
AP50 0.79 on the 8 test images.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import OrderedDict

import numpy as np
import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform

import snip
import snip._train
import snip.torch as st


# ---------------------------------------------------------------------------------------
# The model


class TinyBackbone(nn.Sequential):
    """Five 3 x 3 convolutions with GroupNorm: stride 16, `out_channels` channels."""

    def __init__(self, width: int = 32):
        chans = [3, width // 2, width, 2 * width, 4 * width, 4 * width]
        strides = [2, 2, 2, 1, 2]
        layers = []
        for cin, cout, s in zip(chans[:-1], chans[1:], strides):
            layers += [nn.Conv2d(cin, cout, 3, s, 1, bias=False), nn.GroupNorm(8, cout),
                       nn.ReLU(inplace=True)]
        super().__init__(*layers)
        self.out_channels = chans[-1]
        self.stride = 16


class SnipRoIAlign(nn.Module):
    """RoIHeads' box_roi_pool on snip's RoIAlign: the single feature map '0' at 1/16."""

    def __init__(self, output_size: int = 7, spatial_scale: float = 1.0 / 16, sampling_ratio: int = 2):
        super().__init__()
        self.output_size, self.spatial_scale, self.sampling_ratio = output_size, spatial_scale, sampling_ratio

    def forward(self, features, proposals, image_shapes):
        x = features["0"]
        if not proposals or sum(len(p) for p in proposals) == 0:
            return x.new_zeros((0, x.shape[1], self.output_size, self.output_size))
        return st.roi_align(x, [p.to(x.dtype) for p in proposals], self.output_size,
                            self.spatial_scale, self.sampling_ratio, aligned=False)


def _ignored(boxes: torch.Tensor, ignore: torch.Tensor, threshold: float, inclusive: bool) -> torch.Tensor:
    """True where a box's IoU with any ignore box is above (or at, when inclusive) threshold."""
    if ignore is None or ignore.numel() == 0 or boxes.numel() == 0:
        return torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    iou = st.box_iou(boxes, ignore.to(boxes.dtype)).max(dim=1).values
    return iou >= threshold if inclusive else iou > threshold


class IgnoreAwareRPN(RegionProposalNetwork):
    """torchvision's RPN, plus SNIPER's ignore rule: anchors with IoU > 0.3 with an ignore
    box (target["ignore_boxes"]) are neither positive nor negative (label -1)."""

    ignore_iou = 0.3

    def assign_targets_to_anchors(self, anchors, targets):
        labels, matched = super().assign_targets_to_anchors(anchors, targets)
        self.last_ignored = 0
        for lab, a, t in zip(labels, anchors, targets):
            mask = _ignored(a, t.get("ignore_boxes"), self.ignore_iou, inclusive=False)
            lab[mask] = -1.0
            self.last_ignored += int(mask.sum())
        return labels, matched


class IgnoreAwareRoIHeads(RoIHeads):
    """torchvision's RoIHeads, plus: a background proposal with IoU >= fg_iou with an
    ignore box is not sampled (label -1)."""

    def select_training_samples(self, proposals, targets):
        self._ignore = [t.get("ignore_boxes") for t in targets]
        try:
            return super().select_training_samples(proposals, targets)
        finally:
            self._ignore = None

    def assign_targets_to_proposals(self, proposals, gt_boxes, gt_labels):
        matched, labels = super().assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
        ignore = getattr(self, "_ignore", None) or [None] * len(proposals)
        thr = self.proposal_matcher.high_threshold
        for p, lab, ig in zip(proposals, labels, ignore):
            lab[(lab == 0) & _ignored(p, ig, thr, inclusive=True)] = -1
        return matched, labels


class ChipTransform(GeneralizedRCNNTransform):
    """No resizing: chips are already at their scale, test images are resized by the
    caller to each scale. Batching (padding to a multiple of 32) is torchvision's."""

    def resize(self, image, target=None):
        return image, target


def build_model(num_classes: int, chip_size: int, width: int = 32) -> GeneralizedRCNN:
    backbone = TinyBackbone(width)
    anchors = AnchorGenerator(sizes=((16, 32, 64, 128, 256),), aspect_ratios=((0.5, 1.0, 2.0),))
    rpn = IgnoreAwareRPN(
        anchors, RPNHead(backbone.out_channels, anchors.num_anchors_per_location()[0]),
        fg_iou_thresh=0.7, bg_iou_thresh=0.3, batch_size_per_image=256, positive_fraction=0.5,
        pre_nms_top_n=dict(training=1000, testing=600), post_nms_top_n=dict(training=300, testing=150),
        nms_thresh=0.7)
    heads = IgnoreAwareRoIHeads(
        SnipRoIAlign(7, 1.0 / backbone.stride, 2),
        TwoMLPHead(backbone.out_channels * 7 * 7, 256),
        FastRCNNPredictor(256, num_classes + 1),
        fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=128, positive_fraction=0.25,
        bbox_reg_weights=None, score_thresh=0.05, nms_thresh=0.5, detections_per_img=100)
    transform = ChipTransform(min_size=chip_size, max_size=chip_size, image_mean=[0.0, 0.0, 0.0],
                              image_std=[1.0, 1.0, 1.0])
    return GeneralizedRCNN(backbone, rpn, heads, transform)


# ---------------------------------------------------------------------------------------
# Training and inference


def train(model, data: st.ChipDataset, steps: int, batch: int, lr: float, seed: int, workers: int):
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    losses = []
    step, epoch = 0, data.epoch
    while step < steps:
        loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, generator=g,
                                             collate_fn=st.collate, num_workers=workers,
                                             drop_last=len(data) >= batch)
        for images, targets in loader:
            if step >= steps:
                break
            t0 = time.perf_counter()
            tg = [{k: t[k] for k in ("boxes", "labels", "ignore_boxes")} for t in targets]
            parts = model(list(images), tg)
            loss = sum(parts.values())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            step += 1
            losses.append(float(loss))
            nb = sum(len(t["boxes"]) for t in targets)
            ni = sum(len(t["ignore_boxes"]) for t in targets)
            print(f"step {step}/{steps} loss {float(loss):.4f} "
                  f"(rpn_obj {float(parts['loss_objectness']):.3f} "
                  f"rpn_box {float(parts['loss_rpn_box_reg']):.3f} "
                  f"cls {float(parts['loss_classifier']):.3f} "
                  f"box {float(parts['loss_box_reg']):.3f}) "
                  f"boxes {nb} ignore {ni} ignored_anchors {model.rpn.last_ignored} "
                  f"{time.perf_counter() - t0:.2f} s", flush=True)
        epoch += 1
        data.set_epoch(epoch)
    return losses


@torch.no_grad()
def detect_multiscale(model, data: st.ChipDataset, annotations: str, images_dir: str,
                      score_threshold: float):
    """Detections of every image of `annotations` at each of the config's scales, merged
    by snip.merge_multiscale: {image_id: (boxes, scores, category ids)}."""
    model.eval()
    model.roi_heads.score_thresh = score_threshold  # torchvision's per-class cut, per scale
    cfg = data.config
    test = snip.read_coco(annotations)
    mean = torch.tensor(data.mean).view(3, 1, 1)
    std = torch.tensor(data.std).view(3, 1, 1)
    # SNIPER's test ranges for its three COCO scales (wider than the training ones),
    # else the config's training ranges
    ranges = None if cfg.num_scales == 3 else list(cfg.ranges)
    results = {}
    for rec in test:
        img = snip.read_image(os.path.join(images_dir, rec.file_name))
        x = torch.from_numpy(img).permute(2, 0, 1).float().div_(255.0).sub_(mean).div_(std)
        boxes, scores, labels, scales = [], [], [], []
        for s, (factor, w, h) in enumerate(cfg.scaled_sizes(rec.width, rec.height)):
            xs = torch.nn.functional.interpolate(x[None], size=(h, w), mode="bilinear",
                                                 align_corners=False)[0]
            out = model([xs])[0]
            boxes.append(out["boxes"].double() / factor)
            scores.append(out["scores"].double())
            labels.append(out["labels"])
            scales.append(torch.full((len(out["boxes"]),), s, dtype=torch.int64))
        b = torch.cat(boxes).numpy()
        kw = {} if ranges is None else {"ranges": ranges}
        m = snip.merge_multiscale(b, torch.cat(scores).numpy(), torch.cat(labels).numpy(),
                                  torch.cat(scales).numpy(), score_threshold=score_threshold,
                                  convention=cfg.convention, **kw)
        cats = np.array([data.category_ids[int(k) - 1] for k in m.labels], dtype=np.int64)
        results[rec.id] = (np.asarray(m.boxes), np.asarray(m.scores), cats)
        names = dict(test.categories)
        top = ", ".join(f"{names[int(c)]} {sc:.2f} [{' '.join(f'{v:.0f}' for v in bx)}]"
                        for bx, sc, c in list(zip(m.boxes, m.scores, cats))[:3])
        print(f"image {rec.id} ({rec.width} x {rec.height}, {rec.num_boxes} objects): "
              f"{len(m.scores)} detections after the merge of {len(b)}; best: {top}", flush=True)
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30, help="training steps (default 30)")
    ap.add_argument("--batch", type=int, default=2, help="chips per step (default 2)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--images", type=int, default=12, help="training images (default 12)")
    ap.add_argument("--test-images", type=int, default=3)
    ap.add_argument("--min-side", type=int, default=160)
    ap.add_argument("--max-side", type=int, default=320)
    ap.add_argument("--config", default="default", help="snip preset (default, sniper_coco)")
    ap.add_argument("--crowd-fraction", type=float, default=0.1,
                    help="share of crowd-flagged objects (ignore regions; default 0.1)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers (default 0)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--score-threshold", type=float, default=0.05,
                    help="lowest detection score kept, per scale and after the merge (0.05)")
    ap.add_argument("--out", default="", help="folder for the data (default: a temporary one)")
    a = ap.parse_args(argv)

    torch.manual_seed(a.seed)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    tmp = None
    out = a.out
    if not out:
        tmp = tempfile.TemporaryDirectory(prefix="snip_tv_")
        out = tmp.name
    try:
        train_dir, test_dir = os.path.join(out, "train"), os.path.join(out, "test")
        common = dict(classes=3, min_side=a.min_side, max_side=a.max_side,
                      crowd_fraction=a.crowd_fraction)
        train_json = snip._train.write_synthetic(train_dir, images=a.images, seed=a.seed, **common)
        test_json = snip._train.write_synthetic(test_dir, images=a.test_images, seed=a.seed + 1000,
                                                **common)
        data = st.ChipDataset(train_json, train_dir, config=a.config, seed=a.seed, flip="random")
        cfg = data.config
        print(f"data: {len(data.dataset)} images, {len(data)} chips of {cfg.chip_size} px at "
              f"scales {cfg.scales} ({data.num_classes} classes) in {out}", flush=True)
        model = build_model(data.num_classes, cfg.chip_size)
        t0 = time.perf_counter()
        losses = train(model, data, a.steps, a.batch, a.lr, a.seed, a.workers)
        k = max(1, min(5, len(losses) // 3))
        print(f"training: {len(losses)} steps in {time.perf_counter() - t0:.1f} s, mean loss of the "
              f"first {k} {np.mean(losses[:k]):.4f}, of the last {k} {np.mean(losses[-k:]):.4f}",
              flush=True)
        results = detect_multiscale(model, data, test_json, test_dir, a.score_threshold)
        n = sum(len(v[1]) for v in results.values())
        r = snip.evaluate_coco(test_json, results)
        print(f"detections: {n} on {len(results)} test images; COCO AP {r.AP:.3f} AP50 {r.AP50:.3f}",
              flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
