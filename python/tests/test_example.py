"""examples/python/train_torchvision.py: a short run trains (the loss falls) and detects;
its ignore-region overrides of torchvision's RPN and RoI heads do what its docstring says."""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("snip._train", reason="snip built without LibTorch")


def example_path() -> pathlib.Path:
    root = os.environ.get("SNIP_SOURCE_DIR") or str(pathlib.Path(__file__).resolve().parents[2])
    p = pathlib.Path(root) / "examples" / "python" / "train_torchvision.py"
    if not p.is_file():
        pytest.skip(f"[skip] {p} not found (set SNIP_SOURCE_DIR)")
    return p


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("train_torchvision", example_path())
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_short_run_trains_and_detects(tmp_path):
    steps = 30  # one torch thread: about 10-15 s here, also when other jobs share the cores
    cmd = [sys.executable, str(example_path()), "--steps", str(steps), "--batch", "2",
           "--seed", "1", "--threads", "1", "--score-threshold", "0.01", "--out", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    losses = [float(x) for x in re.findall(r"^step \d+/\d+ loss ([0-9.]+)", out, re.M)]
    assert len(losses) == steps, out
    assert all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < np.mean(losses[:5]), losses
    ignored = [int(x) for x in re.findall(r"ignored_anchors (\d+)", out)]
    assert max(ignored) > 0, "no anchor was ever ignored: the ignore boxes played no part"
    assert len(re.findall(r"^image \d+ \(", out, re.M)) == 3
    m = re.search(r"^detections: (\d+) on 3 test images; COCO AP ([0-9.]+) AP50 ([0-9.]+)", out, re.M)
    assert m, out
    assert int(m.group(1)) > 0
    assert (tmp_path / "train" / "annotations.json").is_file()


def test_rpn_ignores_anchors_near_ignore_boxes(example):
    model = example.build_model(num_classes=3, chip_size=128)
    anchors = torch.tensor([[0, 0, 32, 32], [4, 4, 36, 36], [64, 64, 96, 96], [100, 0, 128, 28],
                            [66, 66, 98, 98]], dtype=torch.float32)
    target = {"boxes": torch.tensor([[64.0, 64.0, 96.0, 96.0]]), "labels": torch.tensor([1]),
              "ignore_boxes": torch.tensor([[0.0, 0.0, 34.0, 34.0], [60.0, 60.0, 100.0, 100.0]])}
    labels, _ = model.rpn.assign_targets_to_anchors([anchors], [target])
    # anchors 0, 1 overlap the first ignore box (IoU > 0.3): ignored instead of background;
    # anchor 2 is the gt box but also overlaps the second ignore box: ignored (SNIPER's rule
    # overrides positives); anchor 3 is plain background
    assert labels[0].tolist() == [-1.0, -1.0, -1.0, 0.0, -1.0]
    plain, _ = example.RegionProposalNetwork.assign_targets_to_anchors(
        model.rpn, [anchors], [{"boxes": target["boxes"], "labels": target["labels"]}])
    assert plain[0].tolist()[:4] == [0.0, 0.0, 1.0, 0.0]


def test_roi_heads_ignore_background_proposals_on_ignore_boxes(example):
    model = example.build_model(num_classes=3, chip_size=128)
    heads = model.roi_heads
    proposals = [torch.tensor([[0, 0, 30, 30], [1, 1, 31, 31], [60, 60, 90, 90],
                               [100, 100, 120, 120]], dtype=torch.float32)]
    target = {"boxes": torch.tensor([[60.0, 60.0, 90.0, 90.0]]), "labels": torch.tensor([2]),
              "ignore_boxes": torch.tensor([[0.0, 0.0, 30.0, 30.0]])}
    heads._ignore = [target["ignore_boxes"]]
    _, labels = heads.assign_targets_to_proposals(proposals, [target["boxes"]], [target["labels"]])
    heads._ignore = None
    assert labels[0].tolist() == [-1, -1, 2, 0]
    # through select_training_samples (which appends the gt boxes as proposals)
    props, matched, labels, _ = heads.select_training_samples(proposals, [target])
    kept = {tuple(p.tolist()): int(lab) for p, lab in zip(props[0], labels[0])}
    assert (0.0, 0.0, 30.0, 30.0) not in kept and (1.0, 1.0, 31.0, 31.0) not in kept
    assert kept[(60.0, 60.0, 90.0, 90.0)] == 2
