"""snip.torch: torch.ops.snip.* against torchvision 0.14's ops (forward and gradients),
autograd from Python, the box coder, and snip's error messages."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
tv_ops = pytest.importorskip("torchvision.ops")

import snip.torch as st  # noqa: E402

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_rois(g, n, batch, height, width, scale, dtype=F64):
    """n RoIs (batch index, x1, y1, x2, y2) in input pixels over a map of height x width at
    `scale`; some reach past the map's edges, a few are tiny."""
    w_img, h_img = width / scale, height / scale
    x1 = torch.rand(n, generator=g, dtype=dtype) * w_img * 1.1 - 0.05 * w_img
    y1 = torch.rand(n, generator=g, dtype=dtype) * h_img * 1.1 - 0.05 * h_img
    bw = torch.rand(n, generator=g, dtype=dtype) * w_img * 0.7 + 0.1
    bh = torch.rand(n, generator=g, dtype=dtype) * h_img * 0.7 + 0.1
    b = torch.randint(0, batch, (n,), generator=g).to(dtype)
    return torch.stack([b, x1, y1, x1 + bw, y1 + bh], dim=1)


def random_boxes(g, n, size=100.0, dtype=F64):
    xy = torch.rand(n, 2, generator=g, dtype=dtype) * size
    wh = torch.rand(n, 2, generator=g, dtype=dtype) * size * 0.4 + 1.0
    return torch.cat([xy, xy + wh], dim=1)


# ---------------------------------------------------------------- loading

def test_ops_registered():
    for name in ("roi_align", "roi_pool", "deform_conv2d", "deform_roi_pool", "nms",
                 "batched_nms", "box_iou", "encode_boxes", "decode_boxes"):
        assert hasattr(torch.ops.snip, name), name
    assert os.path.isfile(st.library_path)


def test_import_without_library_names_the_path(tmp_path: pathlib.Path):
    """A package folder without libsnip_torch_ops.so (built without SNIP_ENABLE_TORCH):
    `import snip.torch` raises ImportError naming the missing file."""
    src = pathlib.Path(st.__file__).parent
    dst = tmp_path / "snip"
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file() and "snip_torch_ops" not in f.name:
            shutil.copy(f, dst / f.name)
    # cwd: `python -c` puts the working folder first on sys.path (CTest runs in the build's
    # python/ folder, which holds the complete package)
    r = subprocess.run([sys.executable, "-c", "import snip.torch"], capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)},
                       cwd=tmp_path, timeout=60)
    assert r.returncode != 0
    assert "ImportError" in r.stderr
    assert str(dst / "libsnip_torch_ops.so") in r.stderr
    assert "SNIP_ENABLE_TORCH" in r.stderr


# ---------------------------------------------------------------- RoIAlign

@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("scale", [1.0, 0.5, 0.25, 1.0 / 16])
@pytest.mark.parametrize("sampling_ratio", [2, -1])
def test_roi_align_matches_torchvision(aligned, scale, sampling_ratio):
    g = gen(int(scale * 1000) + 10 * sampling_ratio + aligned)
    x = torch.randn(2, 3, 11, 13, generator=g, dtype=F64)
    rois = random_rois(g, 24, 2, 11, 13, scale)
    ours_x = x.clone().requires_grad_()
    tv_x = x.clone().requires_grad_()
    a = st.roi_align(ours_x, rois, (3, 4), scale, sampling_ratio, aligned)
    b = tv_ops.roi_align(tv_x, rois, (3, 4), scale, sampling_ratio, aligned)
    assert a.shape == (24, 3, 3, 4)
    assert (a - b).abs().max().item() < 1e-12
    w = torch.randn(a.shape, generator=g, dtype=F64)
    (a * w).sum().backward()
    (b * w).sum().backward()
    assert (ours_x.grad - tv_x.grad).abs().max().item() < 1e-12
    # the raw op is the same function
    c = torch.ops.snip.roi_align(x, rois, scale, 3, 4, sampling_ratio, aligned)
    assert torch.equal(a.detach(), c)


def test_roi_align_float32_and_box_list():
    g = gen(7)
    x = torch.randn(2, 4, 16, 16, generator=g)
    boxes = [random_boxes(g, 5, 60.0, torch.float32), random_boxes(g, 3, 60.0, torch.float32)]
    a = st.roi_align(x, boxes, 7, 0.25, 2, True)
    b = tv_ops.roi_align(x, boxes, 7, 0.25, 2, True)
    assert a.shape == (8, 4, 7, 7)
    assert (a - b).abs().max().item() < 1e-5
    rois = torch.cat([torch.cat([torch.full((len(bx), 1), float(i)), bx], 1)
                      for i, bx in enumerate(boxes)])
    assert torch.equal(a, st.roi_align(x, rois, 7, 0.25, 2, True))


@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_gradcheck(aligned):
    g = gen(3)
    x = torch.randn(2, 2, 6, 7, generator=g, dtype=F64, requires_grad=True)
    rois = random_rois(g, 4, 2, 6, 7, 0.5)
    f = lambda t: st.roi_align(t, rois, (2, 3), 0.5, 2, aligned)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_roi_align_autograd_through_a_graph():
    """The op inside a larger graph: gradients reach a leaf in front of it."""
    g = gen(4)
    w = torch.randn(3, 2, 1, 1, generator=g, dtype=F64, requires_grad=True)
    img = torch.randn(1, 2, 9, 9, generator=g, dtype=F64)
    rois = random_rois(g, 5, 1, 9, 9, 1.0)

    def f(weight):
        feats = torch.nn.functional.conv2d(img, weight)
        return st.roi_align(feats, rois, 2, 1.0, 2, True)

    assert torch.autograd.gradcheck(f, (w,))
    out = f(w)
    out.sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


# ---------------------------------------------------------------- RoIPool

@pytest.mark.parametrize("scale", [1.0, 0.5, 0.125])
def test_roi_pool_matches_torchvision(scale):
    g = gen(int(scale * 100))
    x = torch.randn(2, 3, 10, 12, generator=g, dtype=F64)
    rois = random_rois(g, 20, 2, 10, 12, scale)
    ours_x = x.clone().requires_grad_()
    tv_x = x.clone().requires_grad_()
    a = st.roi_pool(ours_x, rois, (2, 3), scale)
    b = tv_ops.roi_pool(tv_x, rois, (2, 3), scale)
    assert torch.equal(a.detach(), b.detach())
    w = torch.randn(a.shape, generator=g, dtype=F64)
    (a * w).sum().backward()
    (b * w).sum().backward()
    assert (ours_x.grad - tv_x.grad).abs().max().item() < 1e-12


def test_roi_pool_gradcheck():
    g = gen(5)
    x = torch.randn(1, 2, 6, 6, generator=g, dtype=F64, requires_grad=True)
    rois = torch.tensor([[0, 0.0, 0.0, 5.0, 5.0], [0, 1.2, 2.5, 4.1, 5.3]], dtype=F64)
    assert torch.autograd.gradcheck(lambda t: st.roi_pool(t, rois, 2, 1.0), (x,))


# ---------------------------------------------------------------- NMS, IoU

@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
def test_nms_matches_torchvision(dtype, thr):
    g = gen(int(thr * 10))
    boxes = random_boxes(g, 300, 200.0, dtype)
    scores = torch.rand(300, generator=g, dtype=dtype)
    keep = st.nms(boxes, scores, thr)
    assert keep.dtype == torch.int64
    assert torch.equal(keep, tv_ops.nms(boxes, scores, thr))


@pytest.mark.parametrize("thr", [0.4, 0.6])
def test_batched_nms_matches_torchvision(thr):
    g = gen(11)
    boxes = random_boxes(g, 400, 150.0)
    scores = torch.rand(400, generator=g, dtype=F64)
    idxs = torch.randint(0, 5, (400,), generator=g)
    keep = st.batched_nms(boxes, scores, idxs, thr)
    assert torch.equal(keep, tv_ops.batched_nms(boxes, scores, idxs, thr))
    assert torch.equal(st.batched_nms(boxes, scores, idxs.int(), thr), keep)


def test_nms_empty():
    e = torch.zeros(0, 4)
    assert st.nms(e, torch.zeros(0), 0.5).numel() == 0
    assert st.batched_nms(e, torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5).numel() == 0


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_box_iou_matches_torchvision(dtype):
    g = gen(12)
    a = random_boxes(g, 40, 50.0, dtype)
    b = random_boxes(g, 30, 50.0, dtype)
    ours = st.box_iou(a, b)
    assert ours.shape == (40, 30) and ours.dtype == dtype
    tol = 1e-6 if dtype == torch.float32 else 1e-14
    assert (ours - tv_ops.box_iou(a, b)).abs().max().item() < tol
    assert not st.box_iou(a.requires_grad_(), b).requires_grad


# ---------------------------------------------------------------- deform_conv2d

DCN_CASES = [
    # (N, C, H, W, O, k, stride, pad, dilation, groups, offset_groups, bias)
    (2, 4, 7, 8, 6, 3, 1, 1, 1, 2, 2, True),
    (1, 3, 9, 7, 4, 3, 2, 2, 2, 1, 3, False),
    (2, 2, 5, 6, 2, 2, 1, 0, 1, 1, 1, True),
]


@pytest.mark.parametrize("case", DCN_CASES)
def test_deform_conv2d_matches_torchvision(case):
    n, c, h, w, o, k, s, p, d, groups, og, with_bias = case
    g = gen(sum(case))
    ho = (h + 2 * p - d * (k - 1) - 1) // s + 1
    wo = (w + 2 * p - d * (k - 1) - 1) // s + 1
    x = torch.randn(n, c, h, w, generator=g, dtype=F64)
    weight = torch.randn(o, c // groups, k, k, generator=g, dtype=F64)
    offset = torch.randn(n, 2 * og * k * k, ho, wo, generator=g, dtype=F64) * 1.5
    bias = torch.randn(o, generator=g, dtype=F64) if with_bias else None
    leaves = [t for t in (x, weight, offset, bias) if t is not None]
    ours_in = [t.clone().requires_grad_() for t in leaves]
    tv_in = [t.clone().requires_grad_() for t in leaves]

    def call(fn, ins):
        xb, wb, ob = ins[:3]
        bb = ins[3] if with_bias else None
        return fn(xb, ob, wb, bb, stride=(s, s), padding=(p, p), dilation=(d, d))

    a = call(st.deform_conv2d, ours_in)
    b = call(tv_ops.deform_conv2d, tv_in)
    assert a.shape == (n, o, ho, wo)
    assert (a - b).abs().max().item() < 1e-10
    gw = torch.randn(a.shape, generator=g, dtype=F64)
    (a * gw).sum().backward()
    (b * gw).sum().backward()
    for name, u, v in zip(("input", "weight", "offset", "bias"), ours_in, tv_in):
        assert (u.grad - v.grad).abs().max().item() < 1e-9, name


def test_deform_conv2d_gradcheck():
    g = gen(21)
    x = torch.randn(1, 2, 5, 5, generator=g, dtype=F64, requires_grad=True)
    weight = torch.randn(2, 2, 2, 2, generator=g, dtype=F64, requires_grad=True)
    # offsets away from whole pixels (the bilinear kernel has kinks there)
    offset = (torch.rand(1, 8, 4, 4, generator=g, dtype=F64) * 0.8 + 0.1).requires_grad_()
    bias = torch.randn(2, generator=g, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b, c, d: st.deform_conv2d(a, c, b, d), (x, weight, offset, bias))


def test_deform_conv2d_refuses_a_mask():
    x = torch.zeros(1, 1, 3, 3)
    with pytest.raises(NotImplementedError, match="mask"):
        st.deform_conv2d(x, torch.zeros(1, 2, 3, 3), torch.zeros(1, 1, 1, 1),
                         mask=torch.ones(1, 1, 3, 3))


# ---------------------------------------------------------------- deform_roi_pool

def test_deform_roi_pool_without_offsets_is_a_mean_pooling_and_differentiable():
    g = gen(31)
    # group_size 1, one output channel per input channel
    x = torch.randn(1, 3, 10, 10, generator=g, dtype=F64, requires_grad=True)
    rois = torch.tensor([[0, 1.0, 2.0, 7.0, 8.0], [0, 0.0, 0.0, 9.0, 9.0]], dtype=F64)
    y = st.deform_roi_pool(x, rois, None, 1.0, 3, 1, 2, 0, 2, 0.1)
    assert y.shape == (2, 3, 2, 2)
    assert torch.isfinite(y).all()
    assert torch.autograd.gradcheck(
        lambda t: st.deform_roi_pool(t, rois, None, 1.0, 3, 1, 2, 0, 2, 0.1), (x,))
    # position-sensitive: 2 x 2 groups of 2 output channels
    xs = torch.randn(1, 8, 10, 10, generator=g, dtype=F64)
    assert st.deform_roi_pool(xs, rois, None, 1.0, 2, 2, 2).shape == (2, 2, 2, 2)


def test_deform_roi_pool_offsets_move_the_bins_and_get_gradients():
    g = gen(32)
    x = torch.randn(1, 2, 12, 12, generator=g, dtype=F64, requires_grad=True)
    rois = torch.tensor([[0, 2.0, 2.0, 8.0, 8.0]], dtype=F64)
    off = (torch.rand(1, 2, 2, 2, generator=g, dtype=F64) * 0.6 - 0.3).requires_grad_()
    y0 = st.deform_roi_pool(x, rois, None, 1.0, 2, 1, 2, 2, 3, 0.1)
    y = st.deform_roi_pool(x, rois, off, 1.0, 2, 1, 2, 2, 3, 0.1)
    assert (y - y0).abs().max() > 1e-6
    y.sum().backward()
    assert x.grad is not None and off.grad is not None
    assert torch.isfinite(off.grad).all() and off.grad.abs().sum() > 0
    # the input gradient is the true derivative (the output is linear in the features)
    assert torch.autograd.gradcheck(
        lambda t: st.deform_roi_pool(t, rois, off.detach(), 1.0, 2, 1, 2, 2, 3, 0.1), (x,))


# ---------------------------------------------------------------- box coder

@pytest.mark.parametrize("convention", ["continuous", "inclusive"])
def test_encode_decode_round_trip(convention):
    g = gen(41)
    ref = random_boxes(g, 50, 300.0)
    tgt = random_boxes(g, 50, 300.0)
    means, stds = (0.01, -0.02, 0.0, 0.03), (0.1, 0.1, 0.2, 0.2)
    d = st.encode_boxes(ref, tgt, means, stds, convention)
    assert d.shape == (50, 4)
    back = st.decode_boxes(ref, d, means, stds, convention)
    assert (back - tgt).abs().max().item() < 1e-9


def test_encode_matches_torchvision_box_coder():
    """stds = 1 / torchvision's weights, continuous widths: the same deltas."""
    from torchvision.models.detection._utils import BoxCoder

    g = gen(42)
    ref = random_boxes(g, 30, 100.0)
    tgt = random_boxes(g, 30, 100.0)
    coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
    ours = st.encode_boxes(ref, tgt, stds=(0.1, 0.1, 0.2, 0.2))
    assert (ours - coder.encode_single(tgt, ref)).abs().max().item() < 1e-12
    dec = st.decode_boxes(ref, ours, stds=(0.1, 0.1, 0.2, 0.2))
    assert (dec - coder.decode_single(ours, ref)).abs().max().item() < 1e-9


# ---------------------------------------------------------------- errors

def test_bad_input_raises_runtime_error_with_snips_message():
    x = torch.zeros(1, 2, 4, 4)
    with pytest.raises(RuntimeError, match=r"roi_align: rois must be a K x 5 float32 tensor, "
                                           r"got float64 \[1, 5\]"):
        st.roi_align(x, torch.zeros(1, 5, dtype=F64), 2)
    with pytest.raises(RuntimeError, match=r"roi_align: rois"):
        st.roi_align(x, torch.zeros(3, 4), 2)
    with pytest.raises(RuntimeError, match=r"encode_boxes: convention must be \"continuous\" "
                                           r"or \"inclusive\", got \"pixels\""):
        st.encode_boxes(torch.ones(1, 4), torch.ones(1, 4), convention="pixels")
    with pytest.raises(RuntimeError, match=r"encode_boxes: means must hold 4 values, got 3"):
        st.encode_boxes(torch.ones(1, 4), torch.ones(1, 4), means=(0, 0, 0))
    with pytest.raises(RuntimeError, match=r"nms"):
        st.nms(torch.zeros(3, 4), torch.zeros(2), 0.5)
