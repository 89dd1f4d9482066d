"""snip._chips refuses bad input with a message naming the argument (or file and field) and
the value: ValueError for an array of the wrong dtype or shape, TypeError for an argument of
the wrong type or an unknown keyword, snip.Error (a ValueError) for what the library checks."""

import json
import re

import numpy as np
import pytest

import snip

BOXES = np.array([[0, 0, 10, 10], [5, 5, 20, 30], [1, 1, 2, 2]], np.float64)


def raises(exc, text):
    """pytest.raises matching `text` literally."""
    return pytest.raises(exc, match=re.escape(text))


@pytest.fixture(scope="module")
def cfg():
    return snip.PlanConfig()


def test_error_class():
    assert issubclass(snip.Error, ValueError) and snip.Error is snip._chips.Error
    assert snip.Error.__module__ == "snip"


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float16, np.complex64, np.uint8])
def test_box_dtypes(cfg, dtype):
    name = np.dtype(dtype).name
    with raises(ValueError, f"plan_image: boxes: expected a float32 or float64 array, got a {name} array of shape (3, 4)"):
        snip.plan_image(cfg, 100, 100, BOXES.astype(dtype))
    with raises(ValueError, f"assign_chip: boxes: expected a float32 or float64 array, got a {name} array"):
        snip.assign_chip(cfg, snip.Chip(0, 1.0, (0, 0, 50, 50)), 100, 100, BOXES.astype(dtype))
    with raises(ValueError, f"_box_view_info: boxes: expected a float32 or float64 array, got a {name}"):
        snip._chips._box_view_info(BOXES.astype(dtype))


@pytest.mark.parametrize("bad,shape", [(BOXES[:, :3], "(3, 3)"), (BOXES[None], "(1, 3, 4)"),
                                       (BOXES.reshape(-1), "(12,)"), (np.zeros((2, 5)), "(2, 5)")])
def test_box_shapes(cfg, bad, shape):
    msg = f"expected boxes as an (N, 4) array of x1, y1, x2, y2, got a float64 array of shape {shape}"
    with raises(ValueError, "plan_image: boxes: " + msg):
        snip.plan_image(cfg, 100, 100, bad)
    p = snip.plan_image(cfg, 100, 100, BOXES)
    with raises(ValueError, "mine_negatives: proposals: " + msg):
        snip.mine_negatives(cfg, 100, 100, p, bad)
    with raises(ValueError, "mine_negatives: gt: " + msg):
        snip.mine_negatives(cfg, 100, 100, p, BOXES, bad)
    with raises(ValueError, "ImageRecord(id=4): boxes: " + msg):
        snip.ImageRecord(4, 100, 100, bad)


def test_box_values(cfg):
    b = BOXES.copy()
    b[1, 2] = np.nan
    with raises(snip.Error, "plan_image: boxes[1] is [5, 5, nan, 30]: coordinates must be finite numbers"):
        snip.plan_image(cfg, 100, 100, b)
    with raises(snip.Error, "ImageRecord(id=3): boxes[1] is [5, 5, nan, 30]"):
        snip.ImageRecord(3, 100, 100, b)
    b = BOXES.astype(np.float32)
    b[2] = [5, 1, 2, 2]
    with raises(snip.Error, "plan_image: boxes[2] is [5, 1, 2, 2]: must have x1 <= x2 and y1 <= y2"):
        snip.plan_image(cfg, 100, 100, b)
    with raises(snip.Error, "assign_chip: boxes[2] is [5, 1, 2, 2]: must have x1 <= x2"):
        snip.assign_chip(cfg, snip.Chip(0, 1.0, (0, 0, 50, 50)), 100, 100, b)
    p = snip.plan_image(cfg, 100, 100, BOXES)
    with raises(snip.Error, "mine_negatives: proposals[2] is [5, 1, 2, 2]"):
        snip.mine_negatives(cfg, 100, 100, p, b)
    with raises(snip.Error, "ImageProposals: boxes[2] is [5, 1, 2, 2]"):
        snip.ImageProposals(b)
    with raises(ValueError, "plan_image: boxes: expected an (N, 4) float array, got 'boxes'"):
        snip.plan_image(cfg, 100, 100, "boxes")


@pytest.mark.parametrize("w,h", [(0, 100), (100, -5), (-1, -1)])
def test_image_sizes(cfg, w, h):
    with raises(snip.Error, f"plan_image: image size must be positive, got {w}x{h}"):
        snip.plan_image(cfg, w, h, BOXES)
    with raises(snip.Error, f"assign_chip: image size must be positive, got {w}x{h}"):
        snip.assign_chip(cfg, snip.Chip(0, 1.0, (0, 0, 50, 50)), w, h, BOXES)
    with raises(snip.Error, f"ImageRecord(id=2): width and height must be > 0, got {w} x {h}"):
        snip.ImageRecord(2, w, h)
    with raises(snip.Error, "image size must be positive"):
        snip.count_pixels(cfg, w, h, [])


def test_flags_and_other_arguments(cfg):
    with raises(ValueError, "plan_image: crowd: expected a 1-D array of 3 flags (one per box), got a int64 array of shape (2,)"):
        snip.plan_image(cfg, 100, 100, BOXES, crowd=[1, 0])
    with raises(ValueError, "plan_image: crowd: expected a 1-D array of 3 bools or integers, got a <U1 array"):
        snip.plan_image(cfg, 100, 100, BOXES, crowd=["a", "b", "c"])
    with raises(snip.Error, "plan_image: stride must be in [1, chip size 512), got 600"):
        snip.plan_image(cfg, 100, 100, BOXES, stride=600)
    with raises(snip.Error, "plan_image: stride 40 is outside the config's stride draw range 56..59"):
        snip.plan_image(snip.PlanConfig("sniper_coco"), 100, 100, BOXES, stride=40)
    with raises(ValueError, "ImageRecord(id=1): categories: expected 3 category ids (one per box), got 1"):
        snip.ImageRecord(1, 100, 100, BOXES, categories=[1])
    with raises(ValueError, "ImageRecord(id=1): ann_ids: expected 3 integer annotation ids"):
        snip.ImageRecord(1, 100, 100, BOXES, ann_ids=[1.5, 2, 3])
    with raises(ValueError, "ImageProposals: scores: expected a 1-D array of 3 numbers (one per box), got a float64 array of shape (2,)"):
        snip.ImageProposals(BOXES, [0.5, 0.5])
    with raises(snip.Error, "sample_negatives: count must be >= 0, got -1"):
        snip.sample_negatives(5, -1, 0, 0, 1)
    with raises(snip.Error, "epoch_stride: epoch must be >= 0, got -1"):
        cfg.epoch_stride(0, -1)
    with pytest.raises(IndexError, match="Dataset: index 3 out of range for 1 items"):
        snip.Dataset([snip.ImageRecord(1, 10, 10)])[3]


def test_presets_and_config_fields():
    with raises(snip.Error, "PlanConfig: preset: unknown preset 'nope' (known: default, sniper_coco)"):
        snip.PlanConfig("nope")
    with raises(snip.Error, "unknown preset 'nope' (known: default, sniper_coco)"):
        snip.PlanConfig.preset("nope")
    with raises(TypeError, "PlanConfig: unknown field 'strde' (fields: name, scales"):
        snip.PlanConfig(strde=3)
    with raises(TypeError, "PlanConfig: chip_size must be an integer, got 'big' (str)"):
        snip.PlanConfig(chip_size="big")
    with raises(TypeError, "PlanConfig: chip_size must be an integer, got 512.5 (float)"):
        snip.PlanConfig(chip_size=512.5)
    with raises(TypeError, "PlanConfig: max_side_rule must be True or False, got 'yes' (str)"):
        snip.PlanConfig(max_side_rule="yes")
    with raises(snip.Error, "PlanConfig: scales[1]: cannot read scale 'x' (expected a factor like 1.667"):
        snip.PlanConfig(scales=["3", "x", "512px"])
    with raises(snip.Error, "PlanConfig: scales[1]: scale factor must be a finite number > 0, got -2"):
        snip.PlanConfig(scales=["3", -2, "512px"])
    with raises(snip.Error, "PlanConfig: convention is 'pixels', expected 'continuous' or 'inclusive'"):
        snip.PlanConfig(convention="pixels")
    with raises(snip.Error, "PlanConfig: layout is 'grid', expected 'aligned' or 'sniper'"):
        snip.PlanConfig(layout="grid")
    with raises(TypeError, "PlanConfig: ranges[0] is (80, -1, 3): expected a (lo, hi) pair"):
        snip.PlanConfig(ranges=[(80, -1, 3)])
    with raises(snip.Error, "PlanConfig: ranges[0]: lower bound 90 must be below upper bound 80"):
        snip.PlanConfig(ranges=[(90, 80), (32, 150), (120, -1)])
    c = snip.PlanConfig()
    with raises(TypeError, "PlanConfig: chip_size must be an integer, got 'x' (str)"):
        c.chip_size = "x"
    with raises(TypeError, "PlanConfig: scales must be a list, got '3' (str)"):
        c.scales = "3"
    with pytest.raises(AttributeError):
        c.chipsize = 3
    assert c == snip.PlanConfig()  # failed writes leave the config as it was


@pytest.mark.parametrize("overrides,text", [
    (dict(stride=600), "PlanConfig: stride must be in [1, chip size 512), got 600"),
    (dict(chip_size=8), "PlanConfig: chip size must be >= 16 px, got 8"),
    (dict(negatives_per_image=-1), "PlanConfig: negatives per image must be >= 0, got -1"),
    (dict(stride_min=50, stride_max=40), "stride draw range must satisfy 0 < min <= max < chip size, got 50..40"),
    (dict(scales=["3", "1.667"]), "PlanConfig: 2 scales but 3 valid ranges; give one range per scale"),
    (dict(ranges=[(-1, 80), (100, 150), (120, -1)]),
     "valid ranges of scales 0 (-1,80) and 1 (100,150) leave a gap: boxes of size 80..100"),
    (dict(ranges=[(-1, 160), (32, 150), (120, -1)]), "valid ranges must grow from the finest scale to the coarsest"),
    (dict(chip_size=64, stride=63), "PlanConfig: chip size 64 minus stride 63 leaves no room for any box"),
])
def test_impossible_configs(overrides, text):
    with raises(snip.Error, text):
        snip.PlanConfig(**overrides)
    c = snip.PlanConfig()
    for k, v in overrides.items():
        setattr(c, k, v)  # each write alone is well-formed
    with raises(snip.Error, text):
        c.validate()
    with raises(snip.Error, "plan_image: config: " + text.replace("PlanConfig: ", "")):
        snip.plan_image(c, 100, 100, BOXES)


@pytest.mark.parametrize("content,text", [
    ('{"chip_size": "big"}', 'config.chip_size is "big", expected an integer'),
    ('{"scales": ["3", "x", "512px"]}', "config.scales[1]: cannot read scale 'x'"),
    ('{"valid_ranges": [[1, 2, 3]]}', "config.valid_ranges[0] is [1,2,3], expected [lo, hi]"),
    ('{"stride": 9999}', "config: stride must be in [1, chip size 512), got 9999"),
    ('{"preset": "nope"}', "config.preset: unknown preset 'nope'"),
    ('{"convention": "px"}', 'config.convention is "px", expected "inclusive" or "continuous"'),
    ('{"max_side_rule": 1}', "config.max_side_rule is 1, expected true or false"),
    ('[1, 2]', "config is [1,2], expected an object"),
    ('{"chip_size": 512,', "malformed JSON at byte 19 (line 1, column 19)"),
    ('{"chip_size": NaN}', "malformed JSON at byte 15 (line 1, column 15): it holds NaN, a non-finite number"),
])
def test_bad_config_files(tmp_path, snip_chips, content, text):
    import subprocess

    path = tmp_path / "bad.json"
    path.write_text(content)
    with raises(snip.Error, f"{path}: {text}"):
        snip.PlanConfig.from_json(str(path))
    # snip-chips plan --config reads it with the same reader: the same message
    r = subprocess.run([snip_chips, "plan", "--config", str(path), "--annotations", str(path),
                        "--out", str(tmp_path / "o.json")], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and f"{path}: {text}" in r.stderr


def test_other_files(tmp_path, cfg):
    missing = tmp_path / "none.json"
    with raises(snip.Error, f"{missing}: file not found"):
        snip.PlanConfig.from_json(str(missing))
    with raises(snip.Error, f"{missing}: file not found"):
        snip.read_coco(str(missing))
    bad = tmp_path / "coco.json"
    bad.write_text(json.dumps({"images": [{"id": 1, "width": 10, "height": 10}],
                               "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, -3, 4]}]}))
    with raises(snip.Error, f"{bad}: annotations[0].bbox[2] (w) is -3, must be >= 0"):
        snip.read_coco(str(bad))
    ds = snip.Dataset([snip.ImageRecord(1, 10, 10)])
    props = tmp_path / "props.json"
    props.write_text('[{"image_id": 2, "bbox": [0, 0, 1, 1]}]')
    with raises(snip.Error, f"{props}: [0].image_id is 2, but no image of the dataset has this id"):
        snip.read_proposals(str(props), ds)
    chips = tmp_path / "chips.json"
    chips.write_text('{"images": []}')
    with raises(snip.Error, f"{chips}: top level.format is missing"):
        snip.read_chips(str(chips))
    with raises(snip.Error, "dict: config.chip_size is \"big\", expected an integer"):
        snip.PlanConfig.from_dict({"chip_size": "big"})
    with raises(TypeError, "dict.chip_size: cannot express"):
        snip.PlanConfig.from_dict({"chip_size": object()})
    img = tmp_path / "none.jpg"
    with raises(snip.Error, f"{img}: cannot open image file"):
        snip.read_image(str(img))


def test_chips_and_plans_of_something_else(cfg):
    with raises(snip.Error, "Chip: factor must be a finite number > 0, got 0"):
        snip.Chip(0, 0.0, (0, 0, 10, 10))
    with raises(snip.Error, "Chip: rect is (10, 0, 0, 10), must have x1 <= x2 and y1 <= y2"):
        snip.Chip(0, 1.0, (10, 0, 0, 10))
    with raises(TypeError, "Chip: rect is (0, 0, 10), expected (x1, y1, x2, y2) integers"):
        snip.Chip(0, 1.0, (0, 0, 10))
    with raises(snip.Error, "assign_chip: chip scale 5 but the config has 3 scales"):
        snip.assign_chip(cfg, snip.Chip(5, 1.0, (0, 0, 10, 10)), 100, 100, BOXES)
    with raises(snip.Error, "assign_chip: chip box index 7 but the image has 3 boxes"):
        snip.assign_chip(cfg, snip.Chip(0, 1.0, (0, 0, 10, 10), boxes=[7]), 100, 100, BOXES)
    with raises(snip.Error, "assign_chip: min_size must be a finite number >= 0, got -1"):
        snip.assign_chip(cfg, snip.Chip(0, 1.0, (0, 0, 10, 10)), 100, 100, BOXES, min_size=-1)
    p = snip.plan_image(cfg, 100, 100, BOXES)
    with raises(snip.Error, "mine_negatives: plan scale 0 is 300 x 300 px but the config sizes this 200 x 100 image to 600 x 300"):
        snip.mine_negatives(cfg, 200, 100, p, BOXES)
    with raises(snip.Error, "mine_negatives: the plan has 3 scales but the config has 1"):
        snip.mine_negatives(snip.PlanConfig(scales=["2"], ranges=[(-1, -1)]), 100, 100, p, BOXES)
    ds = snip.Dataset([snip.ImageRecord(1, 100, 100, BOXES)])
    with raises(snip.Error, "plan_dataset: 2 proposal lists for 1 images"):
        snip.plan_dataset(cfg, ds, snip.Proposals([BOXES, BOXES]))
    with raises(snip.Error, "Dataset: images[1].id is 1, duplicate of images[0].id"):
        snip.Dataset([snip.ImageRecord(1, 10, 10), snip.ImageRecord(1, 10, 10)])
    with raises(snip.Error, "Dataset: images[0] (id 1) box 2 has category 9, which is not among the categories"):
        snip.Dataset([snip.ImageRecord(1, 100, 100, BOXES, categories=[1, 2, 9])], categories=[(1, "a"), (2, "b")])
    with raises(TypeError, "Dataset: images[0] is 'x', expected an ImageRecord"):
        snip.Dataset(["x"])
    # an image the planner refuses is named by the dataset's source, its index and its id
    bad = snip.Dataset([snip.ImageRecord(1, 100, 100, BOXES), snip.ImageRecord(9, 90000, 90000, BOXES)],
                       source="mine")
    with raises(snip.Error, "mine: images[1] (id 9): image 90000 x 90000 at scale 0 (3) is 270000 x 270000 px"):
        snip.plan_dataset(cfg, bad)


def test_cut_chip_arguments(cfg):
    img = np.zeros((50, 60, 3), np.uint8)
    ch = snip.Chip(0, 1.0, (0, 0, 512, 512))
    with raises(ValueError, "cut_chip: image: expected an (H, W, C) or (H, W) uint8 or float32 array, got a float64 array of shape (50, 60, 3)"):
        snip.cut_chip(img.astype(np.float64), cfg, ch)
    with raises(ValueError, "cut_chip: image: expected an (H, W, C) or (H, W) uint8 or float32 array, got a uint8 array of shape (1, 50, 60, 3)"):
        snip.cut_chip(img[None], cfg, ch)
    with raises(ValueError, "cut_chip: std: expected 3 numbers (one per channel), got [0.2, 0.2]"):
        snip.cut_chip(img, cfg, ch, mean=[0.5] * 3, std=[0.2, 0.2])
    with raises(ValueError, "cut_chip: mean, std: give both or neither"):
        snip.cut_chip(img, cfg, ch, mean=[0.5] * 3)
    with raises(snip.Error, "cut_chip: mean, std: pixel_transform: channel 0 needs a finite mean and a std > 0, got mean 0.5, std 0"):
        snip.cut_chip(img, cfg, ch, mean=[0.5] * 3, std=[0, 1, 1])
    with raises(ValueError, "cut_chip: out: expected a float32 or uint8 array of shape (3, 512, 512) or (512, 512, 3), got a float32 array of shape (3, 100, 100)"):
        snip.cut_chip(img, cfg, ch, out=np.zeros((3, 100, 100), np.float32))
    o = np.zeros((3, 512, 512), np.float32)
    o.setflags(write=False)
    with raises(ValueError, "cut_chip: out: the float32 array of shape (3, 512, 512) is read-only"):
        snip.cut_chip(img, cfg, ch, out=o)
    with raises(ValueError, "cut_chip: out: mean/std normalise to floats: give a float32 output"):
        snip.cut_chip(img, cfg, ch, out=np.zeros((512, 512, 3), np.uint8), mean=[0.5] * 3, std=[0.2] * 3)
    with raises(snip.Error, "chip [0, 0, 0, 5] at factor 1 is empty"):
        snip.cut_chip(img, cfg, snip.Chip(0, 1.0, (0, 0, 0, 5)))
    with raises(snip.Error, "chip_crop: convention is 'pixel', expected 'continuous' or 'inclusive'"):
        snip.chip_crop(ch, 512, "pixel")


def test_tune_arguments(coco128):
    ds = snip.read_coco(str(coco128 / "instances_coco128.json"))
    with raises(snip.Error, "tune: scales must satisfy 1 <= min <= max <= 6, got 1..9"):
        snip.tune(ds, max_scales=9)
    with raises(snip.Error, "TuneOptions: cost is 'area', expected 'padded' or 'cut'"):
        snip.tune(ds, cost="area")
    with raises(TypeError, "TuneOptions: unknown option 'bogus' (options: cost, band"):
        snip.tune(ds, bogus=1)
    with raises(snip.Error, "tune: size band must satisfy 0 < lo < hi, got 150..32"):
        snip.TuneOptions(band=(150, 32))
    with raises(snip.Error, "unknown preset 'nope'"):
        snip.tune(ds, reference="nope")
    with raises(snip.Error, "tune: the dataset has no images"):
        snip.tune(snip.Dataset([]))
