"""snip._train.write_synthetic: the embedded synthetic dataset written as PNGs and a COCO
file that snip.read_image and a JSON reader agree with; determinism; one LibTorch in the
process whatever the import order."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import snip

_train = pytest.importorskip("snip._train", reason="snip built without LibTorch")


def files_of(folder: pathlib.Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_writes_a_coco_file_and_decodable_images(tmp_path: pathlib.Path):
    out = tmp_path / "synth"  # created by write_synthetic
    path = _train.write_synthetic(out, images=6, seed=3, classes=4, min_side=64, max_side=160,
                                  min_objects=2, max_objects=4)
    assert pathlib.Path(path) == out / "annotations.json"
    coco = json.loads(pathlib.Path(path).read_text())
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3, 4]
    assert [c["name"] for c in coco["categories"]] == list(_train.synthetic_class_names[:4])
    assert [im["id"] for im in coco["images"]] == [1, 2, 3, 4, 5, 6]
    assert sorted(os.listdir(out)) == ["annotations.json"] + [
        f"synth_{i:06d}.png" for i in range(1, 7)]
    per_image = {im["id"]: 0 for im in coco["images"]}
    for a in coco["annotations"]:
        per_image[a["image_id"]] += 1
        assert 1 <= a["category_id"] <= 4
    assert all(n <= 4 for n in per_image.values())
    assert [a["id"] for a in coco["annotations"]] == list(range(1, len(coco["annotations"]) + 1))
    sizes = {im["id"]: (im["width"], im["height"]) for im in coco["images"]}
    for im in coco["images"]:
        px = snip.read_image(str(out / im["file_name"]))
        assert px.dtype == np.uint8
        assert px.shape == (im["height"], im["width"], 3)
        assert 64 <= im["width"] <= 160 and 64 <= im["height"] <= 160
        assert px.std() > 1.0  # textured, not blank
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        iw, ih = sizes[a["image_id"]]
        assert w >= 1 and h >= 1
        assert 0 <= x and x + w <= iw and 0 <= y and y + h <= ih
        assert (x * 8).is_integer() and (w * 8).is_integer()  # multiples of 1/8 px


def test_objects_are_drawn_where_the_boxes_say(tmp_path: pathlib.Path):
    """The centre of a large disc or square differs from the image's mean colour (a shape of
    the class's saturated hue on a desaturated background)."""
    path = _train.write_synthetic(tmp_path, images=4, seed=5, classes=2, min_side=128,
                                  max_side=128, min_objects=1, max_objects=1, min_object=60.0,
                                  max_object_fraction=0.6)
    coco = json.loads(pathlib.Path(path).read_text())
    names = {im["id"]: im["file_name"] for im in coco["images"]}
    assert len(coco["annotations"]) == 4
    for a in coco["annotations"]:
        px = snip.read_image(str(tmp_path / names[a["image_id"]])).astype(np.float64)
        x, y, w, h = a["bbox"]
        centre = px[int(y + h / 2), int(x + w / 2)]
        assert np.abs(centre - px.mean(axis=(0, 1))).max() > 20  # discs and squares



def test_same_seed_same_bytes(tmp_path: pathlib.Path):
    kw = dict(images=5, seed=11, classes=3, min_side=48, max_side=96)
    _train.write_synthetic(tmp_path / "a", **kw)
    _train.write_synthetic(str(tmp_path / "b"), **kw)  # str or PathLike
    a, b = files_of(tmp_path / "a"), files_of(tmp_path / "b")
    assert a == b
    _train.write_synthetic(tmp_path / "c", **{**kw, "seed": 12})
    c = files_of(tmp_path / "c")
    assert c["annotations.json"] != a["annotations.json"]
    assert c["synth_000001.png"] != a["synth_000001.png"]
    # the set with N images is a prefix of the one with N + 1 (same seed)
    _train.write_synthetic(tmp_path / "d", **{**kw, "images": 6})
    d = files_of(tmp_path / "d")
    assert all(d[f"synth_{i:06d}.png"] == a[f"synth_{i:06d}.png"] for i in range(1, 6))


def test_crowd_fraction(tmp_path: pathlib.Path):
    path = _train.write_synthetic(tmp_path, images=3, min_side=64, max_side=64,
                                  crowd_fraction=1.0)
    anns = json.loads(pathlib.Path(path).read_text())["annotations"]
    assert anns and all(a["iscrowd"] == 1 for a in anns)


def test_bad_options_raise_snip_error(tmp_path: pathlib.Path):
    with pytest.raises(snip.Error, match="classes is 7, must be in 1..6"):
        _train.write_synthetic(tmp_path, classes=7)
    with pytest.raises(snip.Error, match="min_side 300 is larger than max_side 200"):
        _train.write_synthetic(tmp_path, min_side=300, max_side=200)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(snip.Error, match="cannot create the folder"):
        _train.write_synthetic(blocker / "sub", images=1, min_side=32, max_side=32)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
@pytest.mark.parametrize("torch_first", [False, True])
def test_one_libtorch_whatever_the_import_order(torch_first: bool):
    pytest.importorskip("torch")
    first, second = ("torch", "snip._train") if torch_first else ("snip._train", "torch")
    code = f"""
import re, sys
import {first}
import {second}
import snip.torch, torch
assert torch.ops.snip.box_iou(torch.ones(1, 4), torch.ones(1, 4) * 2).shape == (1, 1)
maps = open('/proc/self/maps').read()
libs = sorted(set(re.findall(r'\\S*/(?:libtorch_cpu|libc10)\\.so\\S*', maps)))
print(libs)
real = sorted(set(__import__('os').path.realpath(p) for p in libs))
assert len(real) == 2, real
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
