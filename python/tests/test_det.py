"""snip._det: anchors, box coding, IoU, RPN / RCNN targets, NMS, Soft-NMS and the
multi-scale merge against NumPy references and hand-made cases with known answers."""

import math

import numpy as np
import pytest

import snip

# ----------------------------------------------------------------------------- helpers


def random_boxes(rng, n, dtype, extent=200.0, max_side=60.0):
    """n xyxy boxes with x1 <= x2, y1 <= y2 inside [0, extent + max_side]."""
    xy = rng.uniform(0, extent, size=(n, 2))
    wh = rng.uniform(1, max_side, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(dtype)


def _area(b, e):
    t = b.dtype.type
    w = b[..., 2] - b[..., 0] + t(e)
    h = b[..., 3] - b[..., 1] + t(e)
    return np.where((w > 0) & (h > 0), w * h, t(0)).astype(b.dtype)


def ref_iou_row(box, others, extra=0.0, box_first=True):
    """IoU of one box with others, in the boxes' dtype, with nms_math.hpp's operations:
    inter / (area_first + area_second - inter), 0 when the union is not positive."""
    t = others.dtype.type
    e = t(extra)
    w = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]) + e
    h = np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]) + e
    inter = np.where((w > 0) & (h > 0), w * h, t(0)).astype(others.dtype)
    a, b = _area(box, extra), _area(others, extra)
    uni = (a + b if box_first else b + a) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(uni > 0, inter / np.where(uni > 0, uni, t(1)), t(0)).astype(others.dtype)


def ref_nms(boxes, scores, thr, max_out=None, extra=0.0):
    """torchvision's greedy NMS: stable sort by decreasing score, suppress IoU > thr (as a
    double) with a kept, higher-ranked box (the first of the pair)."""
    order = np.argsort(-scores.astype(np.float64), kind="stable")
    kept = []
    for i in order:
        if max_out is not None and len(kept) >= max_out:
            break
        if kept:
            ious = ref_iou_row(boxes[i], boxes[np.array(kept)], extra, box_first=False)
            if np.any(ious.astype(np.float64) > thr):
                continue
        kept.append(int(i))
    return np.array(kept, dtype=np.int64)


def ref_soft_nms(boxes, scores, method, sigma, nt, score_thr, extra=0.0):
    """soft_nms.hpp's documented rule, selection by selection, in the boxes' dtype."""
    t = boxes.dtype.type
    s = scores.astype(boxes.dtype).copy()
    alive = np.array([j for j in range(len(s)) if not float(s[j]) < score_thr], dtype=np.int64)
    keep, kept_scores = [], []
    while len(alive):
        best = alive[int(np.argmax(s[alive]))]  # first maximum: the lowest index among ties
        keep.append(int(best))
        kept_scores.append(s[best])
        rest = alive[alive != best]
        o = ref_iou_row(boxes[best], boxes[rest], extra)
        if method == "linear":
            wgt = np.where(o.astype(np.float64) > nt, t(1) - o, t(1)).astype(boxes.dtype)
        else:
            wgt = np.exp((-(o * o) / t(sigma)).astype(np.float64)).astype(boxes.dtype)
        hit = o != 0
        s[rest[hit]] = (wgt[hit] * s[rest[hit]]).astype(boxes.dtype)
        alive = rest[~(s[rest].astype(np.float64) < score_thr)]
    return np.array(keep, dtype=np.int64), np.array(kept_scores, dtype=boxes.dtype)


def ref_encode(r, t, means=(0, 0, 0, 0), stds=(1, 1, 1, 1), e=0.0):
    rw, rh = r[:, 2] - r[:, 0] + e, r[:, 3] - r[:, 1] + e
    tw, th = t[:, 2] - t[:, 0] + e, t[:, 3] - t[:, 1] + e
    rcx, rcy = (r[:, 0] + r[:, 2]) * 0.5, (r[:, 1] + r[:, 3]) * 0.5
    tcx, tcy = (t[:, 0] + t[:, 2]) * 0.5, (t[:, 1] + t[:, 3]) * 0.5
    d = np.stack([(tcx - rcx) / rw, (tcy - rcy) / rh, np.log(tw / rw), np.log(th / rh)], axis=1)
    return (d - np.array(means)) / np.array(stds)


def strided_copy(a):
    """The same values as a non-contiguous view into a bigger array: every other row and
    every other column of a (2N, 8) buffer."""
    big = np.full((2 * a.shape[0], 2 * a.shape[1]), np.nan, dtype=a.dtype)
    big[::2, ::2] = a
    v = big[::2, ::2]
    assert not v.flags.c_contiguous and v.strides[1] == 2 * a.itemsize
    return v


# ----------------------------------------------------------------------------- anchors


def test_sniper_templates_and_grid():
    cfg = snip.AnchorConfig.sniper()
    assert len(cfg) == 21 and cfg.convention == "inclusive" and cfg.stride == 16.0
    t = cfg.templates()
    assert t.shape == (21, 4) and t.dtype == np.float64
    # every template is centred on (7.5, 7.5), the centre of the inclusive 16 px cell
    np.testing.assert_array_equal((t[:, 0] + t[:, 2]) / 2, 7.5)
    np.testing.assert_array_equal((t[:, 1] + t[:, 3]) / 2, 7.5)
    # inclusive sizes: (w_r, h_r) = (23, 12), (16, 16), (11, 22) times the scales, ratio-major
    scales = np.array([2, 4, 7, 10, 13, 16, 24], dtype=np.float64)
    w = np.concatenate([23 * scales, 16 * scales, 11 * scales])
    h = np.concatenate([12 * scales, 16 * scales, 22 * scales])
    np.testing.assert_array_equal(t[:, 2] - t[:, 0] + 1, w)
    np.testing.assert_array_equal(t[:, 3] - t[:, 1] + 1, h)
    np.testing.assert_array_equal(t[0], [-15, -4, 30, 19])
    np.testing.assert_array_equal(
        snip.legacy_anchor_templates(16, [0.5, 1, 2], list(scales)), t)

    H, W = 5, 7
    a = cfg.grid(H, W)
    assert a.shape == (H * W * 21, 4) and a.dtype == np.float32
    a64 = snip.grid_anchors(t, H, W, 16.0, dtype=np.float64)
    assert a64.dtype == np.float64
    np.testing.assert_array_equal(a, a64.astype(np.float32))
    # anchor (y, x, a) is row (y * W + x) * A + a: template a shifted by (16 x, 16 y)
    g = a64.reshape(H, W, 21, 4)
    ys, xs = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    shift = np.stack([xs, ys, xs, ys], axis=-1)[:, :, None, :] * 16.0
    np.testing.assert_array_equal(g, t[None, None] + shift)
    cx = (g[..., 0] + g[..., 2]) / 2
    np.testing.assert_array_equal(cx, (7.5 + 16 * xs)[:, :, None].repeat(21, axis=2))


def test_continuous_templates():
    cfg = snip.AnchorConfig()
    assert cfg.convention == "continuous" and len(cfg) == 21
    t = cfg.templates()
    np.testing.assert_allclose((t[:, 0] + t[:, 2]) / 2, 8.0)
    np.testing.assert_allclose((t[:, 1] + t[:, 3]) / 2, 8.0)
    side = 16.0 * np.tile(np.array(cfg.scales), 3)
    ratio = np.repeat(np.array(cfg.ratios), 7)
    w, h = t[:, 2] - t[:, 0], t[:, 3] - t[:, 1]
    np.testing.assert_allclose(w * h, side**2, rtol=1e-12)
    np.testing.assert_allclose(h / w, ratio, rtol=1e-12)
    np.testing.assert_array_equal(snip.continuous_anchor_templates(16, cfg.ratios, cfg.scales), t)
    c2 = snip.AnchorConfig(stride=8, scales=[1, 2], ratios=[1], convention="continuous")
    assert len(c2) == 2 and c2.grid(3, 4).shape == (24, 4)
    np.testing.assert_array_equal(c2.templates(), [[0, 0, 8, 8], [-4, -4, 12, 12]])
    assert "AnchorConfig(stride=8.0" in repr(c2)


def test_anchors_inside():
    a = snip.AnchorConfig.sniper().grid(32, 32)
    for conv in ("inclusive", "continuous"):
        keep = snip.anchors_inside(a, 512, 512, 32, convention=conv)
        assert keep.dtype == np.int64
        x2ok = a[:, 2] < 544 if conv == "inclusive" else a[:, 2] <= 544
        y2ok = a[:, 3] < 544 if conv == "inclusive" else a[:, 3] <= 544
        mask = (a[:, 0] >= -32) & (a[:, 1] >= -32) & x2ok & y2ok
        np.testing.assert_array_equal(keep, np.flatnonzero(mask))
        assert 0 < len(keep) < len(a)


def test_anchor_errors():
    with pytest.raises(snip.Error, match="stride"):
        snip.AnchorConfig(stride=-1).templates()
    with pytest.raises(snip.Error, match="scale"):
        snip.continuous_anchor_templates(16, [1], [0])
    with pytest.raises(ValueError, match="convention"):
        snip.AnchorConfig(convention="pixels")
    with pytest.raises(ValueError, match="dtype"):
        snip.AnchorConfig().grid(2, 2, dtype=np.int32)
    with pytest.raises(ValueError, match="templates"):
        snip.grid_anchors(np.zeros((3, 3)), 2, 2, 16.0)


# ----------------------------------------------------------------------------- box coding, IoU


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("conv,e", [("continuous", 0.0), ("inclusive", 1.0)])
def test_encode_decode(dtype, conv, e):
    rng = np.random.default_rng(7)
    r = random_boxes(rng, 200, dtype)
    t = random_boxes(rng, 200, dtype)
    means, stds = (0.01, -0.02, 0.03, 0.0), snip.RCNN_STDS
    d = snip.encode_boxes(r, t, means=means, stds=stds, convention=conv)
    assert d.shape == (200, 4) and d.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 2e-4
    expect = ref_encode(r.astype(np.float64), t.astype(np.float64), means, stds, e)
    np.testing.assert_allclose(d, expect, rtol=tol, atol=tol)
    back = snip.decode_boxes(r, d, means=means, stds=stds, convention=conv)
    assert back.dtype == dtype
    np.testing.assert_allclose(back, t, rtol=tol, atol=tol * 300)
    # the plain coder: stds 1
    np.testing.assert_allclose(snip.encode_boxes(r, t, convention=conv),
                               ref_encode(r.astype(np.float64), t.astype(np.float64), e=e),
                               rtol=tol, atol=tol)


def test_decode_clamp_and_clip():
    r = np.array([[10, 10, 26, 26]], np.float64)
    d = np.array([[0, 0, 100.0, -100.0]])
    b = snip.decode_boxes(r, d)
    w = b[0, 2] - b[0, 0]
    assert math.isclose(w, 16 * 1000 / 16, rel_tol=1e-12)  # exp(log(1000/16)) * 16
    assert np.all(np.isfinite(b))
    b = snip.decode_boxes(r, d, max_log_scale=1.0)
    assert math.isclose(b[0, 2] - b[0, 0], 16 * math.e, rel_tol=1e-12)
    c = snip.decode_boxes(r, d, clip=(100, 50))
    np.testing.assert_array_equal(c[0, [0, 2]], [0, 100])
    c = snip.decode_boxes(r, d, clip=(100, 50), convention="inclusive")
    assert c[0, 0] == 0 and c[0, 2] == 99
    d2 = np.array([[0.5, 0.25, 0.0, 0.0]])
    np.testing.assert_allclose(snip.decode_boxes(r, d2), [[18, 14, 34, 30]])
    np.testing.assert_allclose(snip.decode_boxes(r, d2, stds=snip.RCNN_STDS), [[10.8, 10.4, 26.8, 26.4]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("conv,e", [("continuous", 0.0), ("inclusive", 1.0)])
def test_iou_matrix(dtype, conv, e):
    rng = np.random.default_rng(3)
    a = random_boxes(rng, 70, dtype, extent=100)
    b = random_boxes(rng, 50, dtype, extent=100)
    a[0] = [5, 5, 5, 5]  # empty under 'continuous'
    m = snip.iou_matrix(a, b, convention=conv)
    assert m.shape == (70, 50) and m.dtype == dtype
    expect = np.stack([ref_iou_row(a[i], b, e) for i in range(len(a))])
    np.testing.assert_allclose(m, expect, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-7)
    if conv == "continuous":
        assert np.all(m[0] == 0)
    assert np.any(m > 0.3)
    np.testing.assert_array_equal(snip.iou_matrix(a, b, convention=conv, threads=2), m)
    assert snip.iou_matrix(a[:0], b).shape == (0, 50)
    assert snip.iou_matrix(np.zeros((0,), dtype), b).shape == (0, 50)


# ----------------------------------------------------------------------------- NMS


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
def test_nms_against_reference(dtype, thr):
    rng = np.random.default_rng(int(thr * 10))
    b = random_boxes(rng, 300, dtype, extent=150)
    s = rng.uniform(0, 1, 300).astype(dtype)
    s[::7] = s[3]  # equal scores: lower index first
    expect = ref_nms(b, s, thr)
    keep = snip.nms(b, s, thr)
    assert keep.dtype == np.int64
    np.testing.assert_array_equal(keep, expect)
    for alg in ("greedy", "grid", "bitmask"):
        np.testing.assert_array_equal(snip.nms(b, s, thr, algorithm=alg), expect)
    np.testing.assert_array_equal(snip.nms(b, s, thr, max_out=5), expect[:5])
    np.testing.assert_array_equal(snip.nms(b, s, thr, convention="inclusive"),
                                  ref_nms(b, s, thr, extra=1.0))
    assert len(expect) < 300


def test_nms_small_known_answer():
    b = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    s = np.array([0.9, 0.8, 0.7], np.float32)
    np.testing.assert_array_equal(snip.nms(b, s, 0.5), [0, 2])
    np.testing.assert_array_equal(snip.nms(b, s, 0.7), [0, 1, 2])
    assert snip.nms(b[:0], s[:0], 0.5).shape == (0,)
    assert snip.nms(b, s, 0.5, max_out=0).shape == (0,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batched_nms_against_reference(dtype):
    rng = np.random.default_rng(11)
    b = random_boxes(rng, 400, dtype, extent=120)
    s = rng.uniform(0, 1, 400).astype(dtype)
    c = rng.integers(-2, 3, 400)
    expect = []
    for k in np.unique(c):
        idx = np.flatnonzero(c == k)
        expect.extend(idx[ref_nms(b[idx], s[idx], 0.5)])
    expect = np.array(sorted(expect, key=lambda i: (-float(s[i]), i)), dtype=np.int64)
    np.testing.assert_array_equal(snip.batched_nms(b, s, c, 0.5), expect)
    np.testing.assert_array_equal(snip.batched_nms(b, s, c.astype(np.int32), 0.5), expect)
    np.testing.assert_array_equal(snip.batched_nms(b, s, c.astype(np.int16), 0.5), expect)
    np.testing.assert_array_equal(snip.batched_nms(b, s, c, 0.5, max_out=10), expect[:10])
    # one class: plain NMS
    np.testing.assert_array_equal(snip.batched_nms(b, s, np.zeros(400, np.int64), 0.5),
                                  snip.nms(b, s, 0.5))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", ["gaussian", "linear"])
def test_soft_nms_against_reference(dtype, method):
    rng = np.random.default_rng(5 if method == "linear" else 6)
    b = random_boxes(rng, 120, dtype, extent=100)
    s = rng.uniform(0, 1, 120).astype(dtype)
    s[:10] = 0.0005  # below the score threshold from the start
    keep, ks = snip.soft_nms(b, s, method=method, sigma=0.5, iou_threshold=0.3,
                             score_threshold=0.001)
    ek, es = ref_soft_nms(b, s, method, 0.5, 0.3, 0.001)
    assert keep.dtype == np.int64 and ks.dtype == dtype
    np.testing.assert_array_equal(keep, ek)
    np.testing.assert_allclose(ks, es, rtol=1e-12 if dtype == np.float64 else 1e-6)
    assert np.all(np.diff(ks.astype(np.float64)) <= 0)
    assert not set(range(10)) & set(keep.tolist())
    assert len(keep) > len(snip.nms(b, s, 0.3))  # decays instead of removing


def test_soft_nms_large_input_path():
    # more than 256 boxes takes the grid / tournament path: same documented rule
    rng = np.random.default_rng(8)
    b = random_boxes(rng, 400, np.float64, extent=300, max_side=40)
    s = rng.uniform(0, 1, 400)
    for method in ("gaussian", "linear"):
        keep, ks = snip.soft_nms(b, s, method=method, sigma=0.3, iou_threshold=0.4,
                                 score_threshold=0.05, max_out=150)
        ek, es = ref_soft_nms(b, s, method, 0.3, 0.4, 0.05)
        np.testing.assert_array_equal(keep, ek[:150])
        np.testing.assert_allclose(ks, es[:150], rtol=1e-12)


def test_soft_nms_known_answer():
    b = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [20, 20, 30, 30]], np.float64)
    s = np.array([0.9, 0.8, 0.7])
    keep, ks = snip.soft_nms(b, s, method="linear", iou_threshold=0.3)
    # IoU(0, 1) = 0.5 > 0.3: 0.8 * (1 - 0.5) = 0.4; box 2 untouched
    np.testing.assert_array_equal(keep, [0, 2, 1])
    np.testing.assert_allclose(ks, [0.9, 0.7, 0.4])
    keep, ks = snip.soft_nms(b, s, method="gaussian", sigma=0.5)
    np.testing.assert_array_equal(keep, [0, 2, 1])
    np.testing.assert_allclose(ks, [0.9, 0.7, 0.8 * math.exp(-0.25 / 0.5)])


def test_merge_multiscale():
    rng = np.random.default_rng(21)
    n = 150
    b = random_boxes(rng, n, np.float64, extent=300, max_side=150)
    s = rng.uniform(0.01, 1, n)
    c = rng.integers(1, 4, n)
    sc = rng.integers(0, 3, n)
    ranges = [(-1, 90), (32, 180), (75, -1)]
    m = snip.merge_multiscale(b, s, c, sc, max_per_image=50)
    assert len(m) == 50 and m.boxes.shape == (50, 4) and m.scales.dtype == np.int32
    # reference: valid-range filter, per-class Gaussian Soft-NMS (pool order: scale, index)
    size = np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    rows = []
    for k in np.unique(c):
        idx = [i for i in sorted(np.flatnonzero(c == k), key=lambda i: (sc[i], i))
               if (ranges[sc[i]][0] < 0 or size[i] >= ranges[sc[i]][0])
               and (ranges[sc[i]][1] < 0 or size[i] < ranges[sc[i]][1])]
        idx = np.array(idx)
        keep, ks = ref_soft_nms(b[idx], s[idx], "gaussian", 0.55, 0.3, 0.001)
        rows += [(-ks[r], int(k), r, int(idx[keep[r]])) for r in range(len(keep))]
    rows.sort()
    expect = np.array([r[3] for r in rows[:50]])
    np.testing.assert_array_equal(m.index, expect)
    np.testing.assert_allclose(m.scores, [-r[0] for r in rows[:50]], rtol=1e-12)
    np.testing.assert_array_equal(m.boxes, b[expect])
    np.testing.assert_array_equal(m.labels, c[expect])
    np.testing.assert_array_equal(m.scales, sc[expect])
    # the SNIPER preset differs (inclusive widths, its range test)
    p = snip.merge_multiscale(b, s, c, sc, preset="sniper_coco")
    assert len(p) >= 50
    # one range, no cut: the whole pool of each class
    one = snip.merge_multiscale(b, s, c, np.zeros(n, np.int32), ranges=[(-1, -1)],
                                max_per_image=10**6)
    for k in np.unique(c):
        idx = np.flatnonzero(c == k)
        keep, ks = ref_soft_nms(b[idx], s[idx], "gaussian", 0.55, 0.3, 0.001)
        np.testing.assert_array_equal(one.index[one.labels == k], idx[keep][np.argsort(-ks, kind="stable")])
    with pytest.raises(ValueError, match="scales"):
        snip.merge_multiscale(b, s, c, np.full(n, 3))
    with pytest.raises(ValueError, match="preset"):
        snip.merge_multiscale(b, s, c, sc, preset="nope")


# ----------------------------------------------------------------------------- RPN / RCNN targets

# gt: G (valid), G2 (valid), H (invalid), C (crowd region)
GT = np.array([[0, 0, 10, 10], [50, 0, 70, 10], [100, 100, 110, 110], [200, 200, 300, 300]],
              np.float64)
STATES = np.array([snip.GT_VALID, snip.GT_VALID, snip.GT_INVALID, snip.GT_CROWD])
ANCHORS = np.array([
    [0, 0, 10, 10],        # 0: IoU 1 with G                      -> 1
    [0, 0, 10, 5],         # 1: IoU 0.5 with G (>= 0.5)           -> 1
    [0, 0, 10, 4.5],       # 2: IoU 0.45 (between 0.4 and 0.5)    -> -1
    [0, 0, 10, 3],         # 3: IoU 0.3                           -> 0
    [100, 100, 110, 110],  # 4: IoU 1 with the invalid H          -> -1
    [210, 210, 220, 220],  # 5: IoU 0.01 with the crowd region    -> 0 ('iou'), -1 ('anchor_fraction')
    [50, 0, 58, 10],       # 6: IoU 0.4 with G2, its best anchor  -> 1 (best anchor)
    [400, 400, 410, 410],  # 7: nothing                           -> 0
], np.float64)


def test_rpn_labels_hand_made():
    r = snip.rpn_labels(ANCHORS, GT, STATES)
    np.testing.assert_array_equal(r.labels, [1, 1, -1, 0, -1, 0, 1, 0])
    assert r.labels.dtype == np.int8 and r.matched.dtype == np.int32
    np.testing.assert_array_equal(r.matched, [0, 0, 0, 0, 0, 0, 1, 0])
    assert (r.positive, r.negative, r.ignored) == (3, 3, 2)
    labels, matched = r  # unpacks
    assert labels is not None and matched is not None
    r = snip.rpn_labels(ANCHORS, GT, STATES, crowd_measure="anchor_fraction")
    np.testing.assert_array_equal(r.labels, [1, 1, -1, 0, -1, -1, 1, 0])
    r = snip.rpn_labels(ANCHORS, GT, STATES, best_anchor_positive=False)
    np.testing.assert_array_equal(r.labels, [1, 1, -1, 0, -1, 0, -1, 0])
    # H valid too: anchor 4 becomes positive
    r = snip.rpn_labels(ANCHORS, GT, np.array([0, 0, 0, 2], np.uint8))
    np.testing.assert_array_equal(r.labels, [1, 1, -1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(r.matched[4], 2)
    # thresholds: negative_below 0.3 makes anchor 3 (IoU 0.3) ignored
    r = snip.rpn_labels(ANCHORS, GT, STATES, negative_below=0.3)
    assert r.labels[3] == -1
    # no gt at all: everything negative, matched -1
    r = snip.rpn_labels(ANCHORS, GT[:0])
    np.testing.assert_array_equal(r.labels, 0)
    np.testing.assert_array_equal(r.matched, -1)
    # float32 gives the same labels
    r32 = snip.rpn_labels(ANCHORS.astype(np.float32), GT.astype(np.float32), STATES)
    np.testing.assert_array_equal(r32.labels, [1, 1, -1, 0, -1, 0, 1, 0])


def test_sample_labels_counts():
    rng = np.random.default_rng(0)
    labels = np.full(2000, -1, np.int8)
    labels[rng.choice(2000, 100, replace=False)] = 1
    rest = np.flatnonzero(labels == -1)
    labels[rng.choice(rest, 500, replace=False)] = 0
    out = snip.sample_labels(labels, 256, 0.5, seed=3)
    assert out.dtype == np.int8 and out is not labels
    assert np.sum(out == 1) == 100
    assert np.sum(out == 0) == 256 - 100
    out = snip.sample_labels(labels, 128, 0.5, seed=3)
    assert np.sum(out == 1) == 64 and np.sum(out == 0) == 64
    # only kept labels stay; nothing becomes positive or negative that was not
    assert np.all((out == labels) | (out == -1))
    np.testing.assert_array_equal(out, snip.sample_labels(labels, 128, 0.5, seed=3))
    assert not np.array_equal(out, snip.sample_labels(labels, 128, 0.5, seed=4))
    assert np.sum(labels == 1) == 100  # input unchanged
    out = snip.sample_labels(labels.astype(np.int64), 64, 0.25, seed=1)
    assert np.sum(out == 1) == 16 and np.sum(out == 0) == 48
    with pytest.raises(ValueError, match="labels"):
        snip.sample_labels(np.array([0, 2, 1]), 2)
    with pytest.raises(snip.Error, match="fg_fraction"):
        snip.sample_labels(labels, 2, 1.5)


def test_assign_rpn_samples():
    cfg = snip.AnchorConfig.sniper()
    a = cfg.grid(32, 32)
    rng = np.random.default_rng(2)
    gt = random_boxes(rng, 12, np.float32, extent=400, max_side=120)
    full = snip.rpn_labels(a, gt, convention="inclusive")
    r = snip.assign_rpn(a, gt, batch=256, fg_fraction=0.5, seed=9, convention="inclusive")
    pos = min(full.positive, 128)
    assert r.positive == pos and r.negative == 256 - pos
    assert r.positive + r.negative + r.ignored == len(a)
    assert np.sum(r.labels == 1) == r.positive
    np.testing.assert_array_equal(r.matched, full.matched)
    np.testing.assert_array_equal(r.labels, snip.sample_labels(full.labels, 256, 0.5, seed=9))
    r0 = snip.assign_rpn(a, gt, batch=0, convention="inclusive")
    np.testing.assert_array_equal(r0.labels, full.labels)


def test_rcnn_targets():
    gt = np.array([[0, 0, 100, 100], [200, 200, 260, 260], [400, 400, 500, 500]], np.float64)
    props = np.array([
        [0, 0, 100, 80],       # IoU 0.8 with gt 0  -> class 3
        [0, 0, 100, 40],       # IoU 0.4            -> background
        [200, 200, 250, 260],  # IoU 0.833 gt 1     -> class 5
        [600, 600, 601, 601],  # tiny: dropped by the range (1 < 16)
        [5, 5, 5, 50],         # no width: dropped
    ], np.float64)
    classes = np.array([3, 5, 7])
    states = np.array([0, 0, 1])
    t = snip.rcnn_targets(props, gt, states, classes, range=(16, -1))
    # kept proposals 0, 1, 2, then the VALID gt 0, 1 appended
    np.testing.assert_array_equal(t.source, [0, 1, 2, 5, 6])
    np.testing.assert_array_equal(t.rois, np.concatenate([props[:3], gt[:2]]))
    np.testing.assert_array_equal(t.labels, [3, 0, 5, 3, 5])
    np.testing.assert_array_equal(t.matched, [0, 0, 1, 0, 1])
    np.testing.assert_allclose(t.max_iou, [0.8, 0.4, 50 / 60, 1, 1])
    assert t.foreground == 4 and len(t) == 5
    fg = t.labels > 0
    expect = snip.encode_boxes(t.rois[fg], gt[t.matched[fg]], stds=snip.RCNN_STDS)
    np.testing.assert_allclose(t.deltas[fg], expect, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(t.deltas[~fg], 0)
    # the invalid gt labels proposals (match_invalid_gt), crowd never
    p2 = np.array([[400, 400, 500, 490]], np.float64)
    assert snip.rcnn_targets(p2, gt, states, classes).labels[0] == 7
    assert snip.rcnn_targets(p2, gt, states, classes, match_invalid_gt=False).labels[0] == 0
    assert snip.rcnn_targets(p2, gt, np.array([0, 0, 2]), classes).labels[0] == 0
    # sampling: at most batch RoIs, at most floor(0.25 * batch) foreground, input order kept
    rng = np.random.default_rng(4)
    many = random_boxes(rng, 300, np.float32, extent=400, max_side=150)
    s = snip.rcnn_targets(many, gt.astype(np.float32), batch=64, fg_fraction=0.25, seed=1)
    assert len(s) == 64 and s.foreground <= 16 and s.foreground == np.sum(s.labels > 0)
    assert np.all(np.diff(s.source) > 0)
    assert s.rois.dtype == np.float32 and s.deltas.shape == (64, 4)
    with pytest.raises(ValueError, match="classes"):
        snip.rcnn_targets(props, gt, None, np.array([1, 0, 2]))


# ----------------------------------------------------------------------------- views and errors


def test_strided_views_match_contiguous_copies():
    rng = np.random.default_rng(12)
    for dtype in (np.float32, np.float64):
        b = random_boxes(rng, 150, dtype, extent=120)
        g = random_boxes(rng, 9, dtype, extent=120)
        s = rng.uniform(0, 1, 150).astype(dtype)
        bv, gv = strided_copy(b), strided_copy(g)
        sv = np.repeat(s, 3)[::3]
        assert sv.strides[0] == 3 * s.itemsize
        fb = np.asfortranarray(b)  # column-major
        assert not fb.flags.c_contiguous
        for x in (bv, fb):
            np.testing.assert_array_equal(snip.nms(x, sv, 0.5), snip.nms(b, s, 0.5))
            np.testing.assert_array_equal(snip.iou_matrix(x, gv), snip.iou_matrix(b, g))
            np.testing.assert_array_equal(snip.encode_boxes(x, x[::-1]), snip.encode_boxes(b, b[::-1]))
            np.testing.assert_array_equal(snip.decode_boxes(x, x * 0.01), snip.decode_boxes(b, b * 0.01))
            np.testing.assert_array_equal(snip.rpn_labels(x, gv).labels, snip.rpn_labels(b, g).labels)
            np.testing.assert_array_equal(snip.soft_nms(x, sv)[0], snip.soft_nms(b, s)[0])
            np.testing.assert_array_equal(snip.batched_nms(x, sv, np.arange(150)[::-1] % 3, 0.5),
                                          snip.batched_nms(b, s, np.arange(150)[::-1] % 3, 0.5))
            np.testing.assert_array_equal(snip.rcnn_targets(x, gv).labels,
                                          snip.rcnn_targets(b, g).labels)
        # reversed (negative-stride) views
        np.testing.assert_array_equal(snip.nms(b[::-1], s[::-1], 0.5),
                                      snip.nms(b[::-1].copy(), s[::-1].copy(), 0.5))
        np.testing.assert_array_equal(snip.iou_matrix(b[::-1], g), snip.iou_matrix(b, g)[::-1])


def test_outputs_own_their_memory():
    b = np.array([[0, 0, 10, 10], [1, 1, 11, 11]], np.float64)
    keep = snip.nms(b, np.array([0.5, 0.4]), 0.9)
    assert keep.flags.owndata is False and keep.base is not None  # held by a capsule
    m = snip.iou_matrix(b, b)
    m[0, 0] = 7  # writeable, independent of the inputs
    assert b[0, 0] == 0


def test_argument_errors_name_the_argument():
    b = np.array([[0, 0, 10, 10], [1, 1, 11, 11]], np.float32)
    s = np.array([0.5, 0.4], np.float32)
    with pytest.raises(ValueError, match=r"boxes: expected a float32 or float64 array, got a int64"):
        snip.nms(b.astype(np.int64), s, 0.5)
    with pytest.raises(ValueError, match=r"boxes: expected boxes as an \(N, 4\) array.*\(2, 3\)"):
        snip.nms(b[:, :3], s, 0.5)
    with pytest.raises(ValueError, match=r"scores: expected a float32 array"):
        snip.nms(b, s.astype(np.float64), 0.5)
    with pytest.raises(ValueError, match=r"scores: expected a 1-D array of 2 elements"):
        snip.nms(b, s[:1], 0.5)
    with pytest.raises(ValueError, match=r"b: expected a float32 array \(the dtype of a\)"):
        snip.iou_matrix(b, b.astype(np.float64))
    with pytest.raises(ValueError, match=r"targets: expected a float32 array"):
        snip.encode_boxes(b, b.astype(np.float64))
    with pytest.raises(ValueError, match=r"deltas: .*\(2, 3\)"):
        snip.decode_boxes(b, b[:, :3])
    with pytest.raises(ValueError, match=r"gt: expected boxes as an \(N, 4\)"):
        snip.rpn_labels(b, np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"anchors: expected a float32 or float64 array"):
        snip.rpn_labels(b.astype(np.int32), b)
    with pytest.raises(ValueError, match=r"states: entry 1 is 3"):
        snip.rpn_labels(b, b, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"states: expected a 1-D array of 2 elements"):
        snip.rpn_labels(b, b, np.array([0]))
    with pytest.raises(ValueError, match=r"states: expected an integer array"):
        snip.rpn_labels(b, b, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"classes: expected a 1-D array of 2 elements"):
        snip.batched_nms(b, s, np.array([1]), 0.5)
    with pytest.raises(ValueError, match=r"classes: expected an integer array"):
        snip.batched_nms(b, s, np.array([1.0, 2.0]), 0.5)
    with pytest.raises(ValueError, match="convention"):
        snip.iou_matrix(b, b, convention="pixel")
    with pytest.raises(ValueError, match="method"):
        snip.soft_nms(b, s, method="hard")
    with pytest.raises(ValueError, match="algorithm"):
        snip.nms(b, s, 0.5, algorithm="fast")
    with pytest.raises(ValueError, match="max_out"):
        snip.nms(b, s, 0.5, max_out=-1)
    with pytest.raises(ValueError, match="stds: expected 4 numbers"):
        snip.encode_boxes(b, b, stds=(1, 1))
    with pytest.raises(ValueError, match="crowd_measure"):
        snip.rpn_labels(b, b, crowd_measure="area")


def test_library_errors_are_snip_errors():
    b = np.array([[0, 0, 10, 10], [1, 1, np.nan, 11]], np.float32)
    s = np.array([0.5, 0.4], np.float32)
    with pytest.raises(snip.Error, match=r"nms: box 1 has a coordinate that is not finite"):
        snip.nms(b, s, 0.5)
    with pytest.raises(snip.Error, match=r"soft_nms: box 1"):
        snip.soft_nms(b, s)
    ok = np.nan_to_num(b, nan=11.0)
    with pytest.raises(snip.Error, match=r"nms: score 1 is NaN"):
        snip.nms(ok, np.array([0.5, np.nan], np.float32), 0.5)
    with pytest.raises(snip.Error, match=r"iou_threshold must be a number"):
        snip.nms(ok, s, float("nan"))
    with pytest.raises(snip.Error, match=r"soft_nms: sigma must be a finite number > 0"):
        snip.soft_nms(ok, s, sigma=0)
    with pytest.raises(snip.Error, match=r"encode_boxes: reference box 0 .* no positive width"):
        snip.encode_boxes(np.array([[5, 5, 5, 9]], np.float32), np.array([[0, 0, 1, 1]], np.float32))
    with pytest.raises(snip.Error, match=r"box_coder: std of dw must be finite and > 0"):
        snip.decode_boxes(ok, ok, stds=(1, 1, 0, 1))
    with pytest.raises(snip.Error, match=r"rpn_options: negative_below 0.6 must not exceed"):
        snip.rpn_labels(ok, ok, negative_below=0.6)
    with pytest.raises(snip.Error, match=r"rcnn_options: fg_iou must be in \[0, 1\]"):
        snip.rcnn_targets(ok, ok, fg_iou=2)
    with pytest.raises(snip.Error, match=r"merge_multiscale: sigma"):
        snip.merge_multiscale(ok, s, np.array([1, 1]), np.array([0, 0]), sigma=-1)
    assert issubclass(snip.Error, ValueError)
