#!/usr/bin/env python3
"""Planning COCO val2017 from Python: snip's C++ planner, the same planner called once per
image from Python, and a pure-NumPy implementation of the same greedy rule, in one run.

    PYTHONPATH=build/ci/python /usr/bin/python3 bench/python/bench_plan.py \
        [--annotations ../shared/data/coco_val2017_boxes/instances_val2017_boxes.json]
        [--numpy-images 500] [--repeat 3]

Rows (images per second, best of --repeat, one thread everywhere):
  cpp      snip.plan_dataset(cfg, ds, threads=1): the whole dataset in one call, so the
           time is the C++ planner's own (one Python call for 5,000 images).
  python   snip.plan_image(cfg, w, h, boxes, crowd) in a Python loop over the images: the
           same C++ work plus one binding call per image; (python - cpp) / images is the
           binding overhead per image.
  numpy    plan_image_numpy below on the first --numpy-images images: the valid-range
           filter, the candidate grid and the greedy cover written with NumPy arrays (a
           dense chips x boxes containment matrix, one argmax per chosen chip), the way a
           Python detection codebase would write it. Its chips are checked against snip's
           on every image it plans: the benchmark fails if one differs.
The config is snip's default preset (3 scales, continuous pixels, aligned grid, stride 32),
the rule the NumPy version implements.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np

import snip


def scale_factor(spec: str, width: int, height: int) -> float:
    """The resize factor of a scale written as snip writes it ("3", "1.667", "512px")."""
    if spec.endswith("px"):
        return float(spec[:-2]) / max(width, height)
    return float(spec)


def candidate_starts(side: int, chip: int, stride: int) -> np.ndarray:
    """Aligned grid: 0, stride, ... below side - chip, plus one flush with the far edge."""
    return np.unique(np.append(np.arange(0, max(side - chip, 0), stride), max(side - chip, 0)))


def plan_image_numpy(width: int, height: int, boxes: np.ndarray, crowd: np.ndarray,
                     scales: list[str], ranges: list[tuple[float, float]], chip: int,
                     stride: int, finest_min_side: float) -> list[tuple[int, tuple[int, int, int, int]]]:
    """Positive chips (scale index, x1, y1, x2, y2 in scaled px) of one image under snip's
    default rules (continuous pixels, aligned candidate grid), in the order chosen."""
    out: list[tuple[int, tuple[int, int, int, int]]] = []
    b = boxes.astype(np.float64)
    keep = crowd == 0
    outside = (b[:, 2] <= 0) | (b[:, 3] <= 0) | (b[:, 0] >= width) | (b[:, 1] >= height)
    b = np.stack([np.clip(b[:, 0], 0, width), np.clip(b[:, 1], 0, height),
                  np.clip(b[:, 2], 0, width), np.clip(b[:, 3], 0, height)], axis=1)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    size = np.sqrt(w * h)
    for s, (spec, (lo, hi)) in enumerate(zip(scales, ranges)):
        f = scale_factor(spec, width, height)
        sw, sh = int(width * f), int(height * f)
        ok = keep & ~outside & (w >= 0) & (h >= 0)
        if lo >= 0:
            ok &= size >= lo
        if hi >= 0:
            ok &= size < hi
        coarsest = s == len(scales) - 1
        if s == 0 and not coarsest:
            ok &= (w >= finest_min_side) & (h >= finest_min_side)
        if not coarsest:
            ok &= np.maximum(w, h) < (chip - stride - 1) / f
        if not ok.any() or sw <= 0 or sh <= 0:
            continue
        sb = (b[ok] * f).astype(np.float64)
        sb[:, [0, 2]] = np.clip(sb[:, [0, 2]], 0, sw)
        sb[:, [1, 3]] = np.clip(sb[:, [1, 3]], 0, sh)
        sb = sb.astype(np.float32).astype(np.float64)
        xs, ys = candidate_starts(sw, chip, stride), candidate_starts(sh, chip, stride)
        cw, ch = min(chip, sw), min(chip, sh)
        # candidates sorted by (y1, y2, x1, x2): rows outer, columns inner
        cy, cx = np.meshgrid(ys, xs, indexing="ij")
        cx1, cy1 = cx.ravel(), cy.ravel()
        cx2, cy2 = cx1 + cw, cy1 + ch
        inside = ((cx1[:, None] <= sb[None, :, 0]) & (sb[None, :, 2] <= cx2[:, None]) &
                  (cy1[:, None] <= sb[None, :, 1]) & (sb[None, :, 3] <= cy2[:, None]))
        uncovered = np.ones(len(sb), dtype=bool)
        while True:
            counts = inside[:, uncovered].sum(axis=1)
            best = int(np.argmax(counts))  # the first of equal counts, as snip's tie-break
            if counts[best] == 0:
                break
            out.append((s, (int(cx1[best]), int(cy1[best]), int(cx2[best]), int(cy2[best]))))
            uncovered &= ~inside[best]
    return out


def best_of(repeat: int, fn):
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> int:
    default_data = os.environ.get("SNIP_DATA_DIR", str(pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--annotations", default=os.path.join(default_data, "coco_val2017_boxes", "instances_val2017_boxes.json"))
    ap.add_argument("--images", type=int, default=0, help="plan only the first N images (0: all)")
    ap.add_argument("--numpy-images", type=int, default=500, help="images the NumPy version plans (it is slow)")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    if not os.path.exists(a.annotations):
        print(f"[skip] {a.annotations} not found (set SNIP_DATA_DIR or --annotations)")
        return 1 if os.environ.get("SNIP_REQUIRE_DATA", "") not in ("", "0") else 0

    ds = snip.read_coco(a.annotations)
    if a.images:
        ds = snip.Dataset(images=[ds.images[i] for i in range(min(a.images, len(ds.images)))],
                          categories=ds.categories)
    cfg = snip.PlanConfig("default")
    n = len(ds.images)
    nboxes = sum(len(im.boxes) for im in ds.images)
    print(f"bench_plan: {n} images, {nboxes} boxes ({a.annotations}); config {cfg.name}: "
          f"scales {cfg.scales}, chip {cfg.chip_size}, stride {cfg.stride}; 1 thread; best of {a.repeat}")

    t_cpp, plans = best_of(a.repeat, lambda: snip.plan_dataset(cfg, ds, threads=1))
    records = [(im.width, im.height, im.boxes, im.crowd) for im in ds.images]
    t_py, py_plans = best_of(a.repeat, lambda: [snip.plan_image(cfg, w, h, b, c) for w, h, b, c in records])

    m = min(a.numpy_images, n)
    ranges = [tuple(r) for r in cfg.ranges]
    t_np, np_chips = best_of(1, lambda: [plan_image_numpy(w, h, b, c, cfg.scales, ranges, cfg.chip_size, cfg.stride,
                                                         cfg.finest_min_side) for w, h, b, c in records[:m]])
    # the three must agree chip for chip
    for i in range(n):
        want = [(c.scale, tuple(c.rect)) for c in plans[i].plan.positives]
        got = [(c.scale, tuple(c.rect)) for c in py_plans[i].positives]
        if want != got:
            print(f"bench_plan: image {ds.images[i].id}: plan_image differs from plan_dataset", file=sys.stderr)
            return 1
        if i < m and np_chips[i] != want:
            print(f"bench_plan: image {ds.images[i].id}: the NumPy version gives {np_chips[i]}, snip {want}",
                  file=sys.stderr)
            return 1
    chips = sum(len(p.plan.positives) for p in plans)
    rate_cpp, rate_py, rate_np = n / t_cpp, n / t_py, m / t_np
    print(f"{'row':8} {'images':>7} {'seconds':>9} {'images/s':>10}")
    print(f"{'cpp':8} {n:7d} {t_cpp:9.4f} {rate_cpp:10.0f}")
    print(f"{'python':8} {n:7d} {t_py:9.4f} {rate_py:10.0f}")
    print(f"{'numpy':8} {m:7d} {t_np:9.4f} {rate_np:10.1f}")
    print(f"{chips} positive chips; all three agree on every image planned")
    print(f"binding overhead: {(t_py - t_cpp) / n * 1e6:.1f} us per image "
          f"(python loop / cpp = {t_py / t_cpp:.2f}x the time)")
    print(f"numpy / cpp: {rate_cpp / rate_np:.0f}x the time per image "
          f"(python loop vs numpy: {rate_py / rate_np:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
