"""snip._det's COCO evaluation: the same numbers as `snip-chips eval --json` on coco128 and
on a subset of COCO val2017 (deterministic synthetic detections), from a results file and
from NumPy arrays per image; hand-made cases with known answers."""

import json
import math
import subprocess

import numpy as np
import pytest

import snip

NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


# ----------------------------------------------------------------------------- helpers


def make_detections(ann, seed, keep=0.85, fp_per_image=3):
    """Deterministic detections for a COCO instances dict: most ground truth boxes jittered
    (some with a wrong class, some duplicated), plus false positives; scores rounded to
    2 decimals so that equal scores (ties broken by input order) occur. Returns
    {image_id: (boxes xywh float64 (N, 4), scores float64 (N,), category_ids int64 (N,))}
    in the file's image order."""
    rng = np.random.default_rng(seed)
    cat_ids = np.array([c["id"] for c in ann["categories"]])
    by_image = {im["id"]: [] for im in ann["images"]}
    for a in ann["annotations"]:
        by_image[a["image_id"]].append(a)
    out = {}
    for im in ann["images"]:
        W, H = im["width"], im["height"]
        rows = []
        for a in by_image[im["id"]]:
            if rng.random() > keep:
                continue
            x, y, w, h = a["bbox"]
            j = rng.normal(0.0, 0.08, 4)
            box = [x + j[0] * w, y + j[1] * h, max(w * (1 + j[2]), 0.5), max(h * (1 + j[3]), 0.5)]
            cat = a["category_id"] if rng.random() > 0.05 else int(rng.choice(cat_ids))
            rows.append((box, round(float(rng.uniform(0.3, 1.0)), 2), cat))
            if rng.random() < 0.1:  # a duplicate: a false positive once the first is matched
                rows.append(([v + 2.0 for v in box[:2]] + box[2:], round(float(rng.uniform(0, 0.6)), 2), cat))
        for _ in range(fp_per_image):
            w, h = rng.uniform(4, W / 2), rng.uniform(4, H / 2)
            box = [rng.uniform(0, W - w), rng.uniform(0, H - h), w, h]
            rows.append((box, round(float(rng.uniform(0.0, 0.7)), 2), int(rng.choice(cat_ids))))
        boxes = np.array([r[0] for r in rows], np.float64).reshape(-1, 4)
        out[im["id"]] = (boxes, np.array([r[1] for r in rows], np.float64),
                         np.array([r[2] for r in rows], np.int64))
    return out


def write_results(path, dets):
    """dets as a COCO results file, in the same order (images, then rows)."""
    res = [{"image_id": int(i), "category_id": int(c), "bbox": [float(v) for v in b], "score": float(s)}
           for i, (bs, ss, cs) in dets.items() for b, s, c in zip(bs, ss, cs)]
    path.write_text(json.dumps(res))
    return len(res)


def cli_eval(snip_chips, ann_path, res_path):
    out = subprocess.run([snip_chips, "eval", "--annotations", str(ann_path), "--results", str(res_path),
                          "--json"], check=True, capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout)


def check_same_as_cli(cli, r, tol=0.0):
    for n in NAMES:
        assert math.isclose(r[n], cli[n], rel_tol=0, abs_tol=tol), (n, r[n], cli[n])
    for k in ("images", "gt_boxes", "crowd_boxes", "detections"):
        assert getattr(r, k) == cli[k], k
    assert len(r.categories) == len(cli["categories"])
    for a, b in zip(r.categories, cli["categories"]):
        assert (a["id"], a["name"], a["gt"], a["crowd"], a["detections"]) == \
               (b["id"], b["name"], b["gt"], b["crowd"], b["detections"])
        for n in ("AP", "AP50", "AP75", "AR100"):
            assert math.isclose(a[n], b[n], rel_tol=0, abs_tol=tol), (a["id"], n)


def compare_with_cli(snip_chips, ann_path, ann, tmp_path, seed):
    dets = make_detections(ann, seed)
    res_path = tmp_path / f"dets_{seed}.json"
    n = write_results(res_path, dets)
    cli = cli_eval(snip_chips, ann_path, res_path)
    assert cli["detections"] == n
    # the detections are neither perfect nor useless: the numbers mean something
    assert 0.2 < cli["AP"] < 0.95 and 0.2 < cli["AR100"] < 0.98 and cli["AP50"] > cli["AP75"]

    gt = snip.CocoGroundTruth(ann_path)
    from_file = snip.evaluate_coco_file(ann_path, res_path)
    check_same_as_cli(cli, from_file)  # the same numbers, to the last bit
    assert json.loads(from_file.to_json()) == cli
    check_same_as_cli(cli, snip.evaluate_coco_file(gt, res_path))
    # NumPy arrays per image (COCO's [x, y, w, h]): the same values as the file
    check_same_as_cli(cli, snip.evaluate_coco(gt, dets, box_format="xywh"))
    # ... as (image_id, boxes, scores, category_ids) tuples, xyxy (w = x2 - x1: ~1e-16 apart)
    xyxy = [(i, np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1), s, c)
            for i, (b, s, c) in dets.items()]
    check_same_as_cli(cli, snip.evaluate_coco(gt, xyxy), tol=1e-9)
    return cli, dets, gt


# ----------------------------------------------------------------------------- against the CLI


def test_coco128_same_numbers_as_cli(snip_chips, coco128, tmp_path):
    ann_path = coco128 / "instances_coco128.json"
    ann = json.loads(ann_path.read_text())
    cli, dets, gt = compare_with_cli(snip_chips, ann_path, ann, tmp_path, seed=128)
    assert cli["crowd_boxes"] == 10 and gt.num_boxes == 939 and gt.num_images == 128
    assert gt.num_crowd == 10 and len(gt.categories) == 80 and gt.categories[1] == "person"
    np.testing.assert_array_equal(gt.image_ids, [im["id"] for im in ann["images"]])
    assert "CocoGroundTruth(" in repr(gt)
    # float32 arrays are accepted (their rounding moves the numbers a little)
    f32 = {i: (b.astype(np.float32), s.astype(np.float32), c.astype(np.int32)) for i, (b, s, c) in dets.items()}
    r32 = snip.evaluate_coco(gt, f32, box_format="xywh")
    assert abs(r32.AP - cli["AP"]) < 0.01
    # the summary lines the CLI prints without --json
    out = subprocess.run([snip_chips, "eval", "--annotations", str(ann_path), "--results",
                          str(tmp_path / "dets_128.json")], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    assert out.startswith("iou type: bbox\n")  # the CLI names what it scored first
    assert out.split("\n", 1)[1] == snip.evaluate_coco(gt, dets, box_format="xywh").summary()


def test_val2017_subset_same_numbers_as_cli(snip_chips, data_dir, tmp_path):
    full = json.loads((data_dir / "coco_val2017_boxes" / "instances_val2017_boxes.json").read_text())
    rng = np.random.default_rng(2017)
    chosen = set(rng.choice([im["id"] for im in full["images"]], 1500, replace=False).tolist())
    ann = {"images": [im for im in full["images"] if im["id"] in chosen],
           "annotations": [a for a in full["annotations"] if a["image_id"] in chosen],
           "categories": full["categories"]}
    ann_path = tmp_path / "val2017_subset.json"
    ann_path.write_text(json.dumps(ann))
    cli, _, gt = compare_with_cli(snip_chips, ann_path, ann, tmp_path, seed=1500)
    assert gt.num_images == 1500 and cli["gt_boxes"] == len(ann["annotations"])


def test_curves_give_the_summary(coco128, tmp_path):
    ann_path = coco128 / "instances_coco128.json"
    ann = json.loads(ann_path.read_text())
    dets = make_detections(ann, seed=5)
    r = snip.evaluate_coco(ann_path, dets, box_format="xywh", keep_curves=True)
    K = len(r.categories)
    assert r.precision.shape == (10, 101, K, 4, 3) and r.recall.shape == (10, K, 4, 3)
    p = r.precision[:, :, :, 0, 2]
    assert math.isclose(r.AP, p[p > -1].mean(), rel_tol=1e-12)
    p50 = r.precision[0, :, :, 0, 2]
    assert math.isclose(r.AP50, p50[p50 > -1].mean(), rel_tol=1e-12)
    rc = r.recall[:, :, 0, 0]
    assert math.isclose(r.AR1, rc[rc > -1].mean(), rel_tol=1e-12)
    assert snip.evaluate_coco(ann_path, dets, box_format="xywh").precision is None


# ----------------------------------------------------------------------------- known answers


def small_gt(tmp_path, anns, name="gt.json"):
    """A COCO file of one 200 x 200 image (id 1), categories 1 and 2; anns: (bbox, iscrowd)."""
    d = {"images": [{"id": 1, "width": 200, "height": 200, "file_name": "a.jpg"},
                    {"id": 2, "width": 200, "height": 200, "file_name": "b.jpg"}],
         "annotations": [{"id": k + 1, "image_id": 1, "category_id": 1, "bbox": list(b),
                          "area": float(b[2] * b[3]), "iscrowd": c} for k, (b, c) in enumerate(anns)],
         "categories": [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}]}
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return p


def one(bbox, score, cat=1, image=1):
    return image, np.array([bbox], np.float64), np.array([score]), np.array([cat])


def test_perfect_detection_gives_one(tmp_path):
    gt = small_gt(tmp_path, [((10, 10, 40, 40), 0)])  # area 1600: medium
    r = snip.evaluate_coco(gt, [one((10, 10, 50, 50), 0.9)])
    expect = dict(AP=1, AP50=1, AP75=1, APs=-1, APm=1, APl=-1, AR1=1, AR10=1, AR100=1, ARs=-1, ARm=1, ARl=-1)
    # precision is tp / (tp + fp + 2^-52), as pycocotools: "1" is 1 - 2^-52
    assert r.as_dict() == pytest.approx(expect, abs=1e-15)
    assert list(r.as_dict()) == list(snip.COCO_STAT_NAMES) == list(NAMES)
    assert r.stats == pytest.approx(tuple(expect.values()), abs=1e-15)
    assert r.AR1 == 1 and r.ARm == 1  # recall has no epsilon
    # category 2 has no ground truth: -1, left out of the means
    assert r.categories[1]["id"] == 2 and r.categories[1]["AP"] == -1
    assert r.categories[0]["AP"] == pytest.approx(1, abs=1e-15) and r.gt_boxes == 1 and r.detections == 1
    # a detection of category 2 (no ground truth) or on the other image changes nothing for AP
    r = snip.evaluate_coco(gt, [one((10, 10, 50, 50), 0.9), one((0, 0, 5, 5), 0.99, cat=2)])
    assert r.AP == pytest.approx(1, abs=1e-15) and r.categories[1]["detections"] == 1
    r = snip.evaluate_coco(gt, [one((10, 10, 50, 50), 0.9), one((10, 10, 50, 50), 0.95, image=2)])
    assert math.isclose(r.AP, 0.5, abs_tol=1e-12)  # a false positive ranked first: precision 1/2


def test_no_detections_give_zero(tmp_path):
    gt = small_gt(tmp_path, [((10, 10, 40, 40), 0)])
    for r in (snip.evaluate_coco(gt, {}), snip.evaluate_coco(gt, [])):
        assert r.AP == 0 and r.AP50 == 0 and r.APm == 0 and r.AR100 == 0 and r.ARm == 0
        assert r.APs == -1 and r.APl == -1 and r.detections == 0
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert snip.evaluate_coco_file(gt, empty).AP == 0


def test_iou_062_matches_three_thresholds(tmp_path):
    gt = small_gt(tmp_path, [((0, 0, 100, 100), 0)])  # area 10000: large
    r = snip.evaluate_coco(gt, [one((0, 0, 62, 100), 0.5)])  # IoU 0.62: 0.50, 0.55, 0.60
    assert math.isclose(r.AP, 0.3, abs_tol=1e-12) and math.isclose(r.AR100, 0.3, abs_tol=1e-12)
    assert r.AP50 == pytest.approx(1, abs=1e-15) and r.AP75 == 0 and r.APm == -1
    assert math.isclose(r.APl, 0.3, abs_tol=1e-12)
    # box_format: (10, 0, 52, 100) is [10, 0, 62, 100] as x, y, w, h (IoU 0.52: one
    # threshold) but a 42 px wide box as xyxy (IoU 0.42: none)
    r = snip.evaluate_coco(gt, [one((10, 0, 52, 100), 0.5)], box_format="xywh")
    assert math.isclose(r.AP, 0.1, abs_tol=1e-12) and r.AP50 == pytest.approx(1, abs=1e-15)
    assert snip.evaluate_coco(gt, [one((10, 0, 52, 100), 0.5)]).AP == 0


def test_max_dets(tmp_path):
    gt = small_gt(tmp_path, [((10, 10, 40, 40), 0), ((100, 100, 40, 40), 0)])
    dets = {1: (np.array([[10, 10, 50, 50], [100, 100, 140, 140]], np.float64),
                np.array([0.9, 0.8]), np.array([1, 1]))}
    r = snip.evaluate_coco(gt, dets)
    assert r.AR1 == 0.5 and r.AR10 == 1 and r.AR100 == 1 and r.AP == pytest.approx(1, abs=1e-15)


def test_crowd_region_absorbs_detections(tmp_path):
    person = ((10, 10, 30, 30), 0)
    crowd = ((100, 100, 80, 80), 1)
    inside = [one((110, 110, 140, 140), 0.9), one((150, 150, 170, 170), 0.95)]
    tp = one((10, 10, 40, 40), 0.8)
    r = snip.evaluate_coco(small_gt(tmp_path, [person, crowd]), [tp] + inside)
    assert r.AP == pytest.approx(1, abs=1e-15) and r.AR100 == 1
    assert r.crowd_boxes == 1 and r.gt_boxes == 1
    # detections matched to the crowd region still take the places of maxDets: the best
    # one per image is absorbed, so AR1 finds nothing
    assert r.AR1 == 0
    assert r.categories[0]["crowd"] == 1 and r.categories[0]["gt"] == 1
    # without the crowd region both are false positives ranked above the true one
    r = snip.evaluate_coco(small_gt(tmp_path, [person], "nocrowd.json"), [tp] + inside)
    assert math.isclose(r.AP, 1 / 3, abs_tol=1e-12) and r.AR100 == 1


# ----------------------------------------------------------------------------- errors


def test_eval_errors(tmp_path):
    gt = small_gt(tmp_path, [((10, 10, 40, 40), 0)])
    with pytest.raises(ValueError, match=r"detections: image id 7 is not an image"):
        snip.evaluate_coco(gt, [one((0, 0, 1, 1), 0.5, image=7)])
    with pytest.raises(ValueError, match=r"category_ids: entry 0 is 3, which is not an id"):
        snip.evaluate_coco(gt, [one((0, 0, 1, 1), 0.5, cat=3)])
    with pytest.raises(ValueError, match=r"scores: entry 0 is nan"):
        snip.evaluate_coco(gt, [one((0, 0, 1, 1), float("nan"))])
    with pytest.raises(ValueError, match=r"boxes: box 0 .* x2 < x1"):
        snip.evaluate_coco(gt, [one((5, 0, 1, 1), 0.5)])
    with pytest.raises(ValueError, match=r"boxes: box 0 .* w < 0"):
        snip.evaluate_coco(gt, [one((5, 0, -1, 1), 0.5)], box_format="xywh")
    with pytest.raises(ValueError, match=r"boxes: expected a float32 or float64 array"):
        snip.evaluate_coco(gt, {1: (np.zeros((1, 4), np.int64), np.zeros(1), np.ones(1, np.int64))})
    with pytest.raises(ValueError, match=r"scores: expected a 1-D array of 1 elements"):
        snip.evaluate_coco(gt, {1: (np.zeros((1, 4)), np.zeros(2), np.ones(1, np.int64))})
    with pytest.raises(ValueError, match=r"box_format"):
        snip.evaluate_coco(gt, {}, box_format="cxcywh")
    with pytest.raises(ValueError, match=r"detections"):
        snip.evaluate_coco(gt, [(1, np.zeros((1, 4)))])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, -2, 3], "score": 0.5}]))
    with pytest.raises(snip.Error, match=r"bad\.json.*\[0\]\.bbox\[2\] \(w\)"):
        snip.evaluate_coco_file(gt, bad)
    with pytest.raises(snip.Error, match=r"missing\.json"):
        snip.evaluate_coco_file(tmp_path / "missing.json", bad)
    with pytest.raises(snip.Error, match=r"missing\.json"):
        snip.CocoGroundTruth(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match=r"annotations: expected a path"):
        snip.evaluate_coco(42, {})
    r = snip.evaluate_coco(gt, {})
    with pytest.raises(KeyError):
        r["mAP"]
    with pytest.raises(AttributeError):
        r.mAP
