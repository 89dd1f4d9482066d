"""snip.torch.ChipDataset on snip's synthetic set: chip pixels map back to the original
image, targets are assign_chip's, set_epoch re-plans deterministically, DataLoader (with
and without workers) and pickling."""

import json
import pathlib
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
_train = pytest.importorskip("snip._train", reason="snip built without LibTorch")

import snip  # noqa: E402
import snip.torch as st  # noqa: E402


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> pathlib.Path:
    d = tmp_path_factory.mktemp("synth")
    _train.write_synthetic(d, images=8, seed=3, classes=3, min_side=160, max_side=320,
                           crowd_fraction=0.2)
    return d


@pytest.fixture(scope="module")
def proposals(synth) -> "snip.Proposals":
    """300 random proposals per image (enough for negative chips to be mined)."""
    ds = snip.read_coco(str(synth / "annotations.json"))
    rng = np.random.default_rng(0)
    per_image = []
    for im in ds:
        xy = rng.uniform(0, [im.width, im.height], size=(300, 2))
        wh = rng.uniform(6, 60, size=(300, 2))
        per_image.append(np.concatenate([xy, np.minimum(xy + wh, [im.width, im.height])], 1))
    return snip.Proposals(per_image)


def bilinear(img: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """img (H, W, C) read at continuous coordinates (u, v) (pixel i covers [i, i + 1)):
    bilinear between pixel centres, clamped at the borders (OpenCV's INTER_LINEAR)."""
    h, w = img.shape[:2]
    x = np.clip(u - 0.5, 0, w - 1)
    y = np.clip(v - 0.5, 0, h - 1)
    x0 = np.floor(x).astype(int)
    y0 = np.floor(y).astype(int)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]
    f = img.astype(np.float64)
    top = f[y0, x0] * (1 - fx) + f[y0, x1] * fx
    bot = f[y1, x0] * (1 - fx) + f[y1, x1] * fx
    return top * (1 - fy) + bot * fy


def test_chips_round_trip_to_original_pixels(synth):
    ds = st.ChipDataset(synth / "annotations.json", synth, flip=True)
    assert len(ds) % 2 == 0 and len(ds) >= 10
    mean = np.array(st.IMAGENET_MEAN).reshape(3, 1, 1)
    std = np.array(st.IMAGENET_STD).reshape(3, 1, 1)
    scales_seen, flips_seen = set(), set()
    for i in range(len(ds)):
        x, t = ds[i]
        s = ds.config.chip_size
        assert x.shape == (3, s, s) and x.dtype == torch.float32
        c = t["chip"]
        raw = (x.numpy() * std + mean) * 255.0  # back to 0..255
        w, h = c["width"], c["height"]
        cx1, cy1, cx2, cy2 = c["crop"]
        sx, sy = (cx2 - cx1) / w, (cy2 - cy1) / h
        assert sx == pytest.approx(1 / c["factor"]) and sy == pytest.approx(1 / c["factor"])
        img = ds.image(ds.items[i][0])
        ys, xs = np.mgrid[0:h:5, 0:w:5]
        xo = (w - 1 - xs) if t["flipped"] else xs  # the content column shown at xs
        u = cx1 + (xo + 0.5) * sx
        v = cy1 + (ys + 0.5) * sy
        inside = (u < img.shape[1]) & (v < img.shape[0])
        want = bilinear(img, u, v)  # (h', w', 3)
        got = raw[:, ys, xs].transpose(1, 2, 0)
        err = np.abs(got - want)[inside]
        assert err.max() < 1e-3, (i, err.max())
        # the padding is 0 after normalisation
        assert np.abs(x.numpy()[:, h:, :]).max(initial=0) == 0
        assert np.abs(x.numpy()[:, :, w:]).max(initial=0) == 0
        scales_seen.add(c["scale"])
        flips_seen.add(t["flipped"])
    assert scales_seen == {0, 1, 2} and flips_seen == {False, True}
    # mirrored items are the plain ones flipped left-right within the content
    x0, t0 = ds[0]
    x1, t1 = ds[1]
    w = t0["chip"]["width"]
    assert not t0["flipped"] and t1["flipped"]
    assert torch.allclose(x1[:, :, :w], x0[:, :, :w].flip(-1), atol=1e-5)


def test_targets_are_assign_chips(synth):
    ds = st.ChipDataset(synth / "annotations.json", synth, flip=True)
    cats = [c[0] for c in ds.dataset.categories]
    assert ds.category_ids == sorted(cats) and ds.num_classes == 3
    n_valid = n_invalid = n_crowd = 0
    for i, (index, chip, negative, flipped) in enumerate(ds.items):
        rec = ds.dataset[index]
        t = ds.target(i)
        gt = snip.assign_chip(ds.config, chip, rec.width, rec.height, rec.boxes, rec.crowd)
        geom = snip.chip_crop(chip, ds.config)
        b = gt.boxes.astype(np.float32)
        b[:, 0::2] = np.clip(b[:, 0::2], 0, geom.width)
        b[:, 1::2] = np.clip(b[:, 1::2], 0, geom.height)
        if flipped:
            b[:, [0, 2]] = geom.width - b[:, [2, 0]]
        valid = gt.state == snip.GT_VALID
        assert torch.equal(t["boxes"], torch.from_numpy(b[valid]).reshape(-1, 4))
        assert torch.equal(t["ignore_boxes"], torch.from_numpy(b[~valid]).reshape(-1, 4))
        assert t["gt_index"].tolist() == gt.index[valid].tolist()
        assert t["ignore_index"].tolist() == gt.index[~valid].tolist()
        assert t["ignore_state"].tolist() == gt.state[~valid].tolist()
        assert t["labels"].dtype == torch.int64
        assert [ds.category_ids[k - 1] for k in t["labels"].tolist()] == [
            int(rec.categories[k]) for k in gt.index[valid]]
        assert sorted(t["gt_index"].tolist()) == sorted(int(k) for k in chip.boxes
                                                        if not rec.crowd[k])
        assert int(t["image_id"]) == rec.id and t["flipped"] == flipped
        assert t["chip"]["rect"] == tuple(chip.rect) and t["chip"]["scale"] == chip.scale
        assert not negative
        # a valid box inside the chip maps back to its original box
        if not flipped:
            f, (rx, ry) = chip.factor, chip.rect[:2]
            for box, k in zip(t["boxes"].numpy(), t["gt_index"].tolist()):
                back = np.array([box[0] + rx, box[1] + ry, box[2] + rx, box[3] + ry]) / f
                orig = rec.boxes[k]
                if (box[2] < geom.width - 1) and (box[3] < geom.height - 1) and box[0] > 0 and box[1] > 0:
                    assert np.abs(back - orig).max() < 1e-3
        n_valid += int(valid.sum())
        n_invalid += int((gt.state == snip.GT_INVALID).sum())
        n_crowd += int((gt.state == snip.GT_CROWD).sum())
    assert n_valid > 0 and n_invalid > 0 and n_crowd > 0


def test_set_epoch_replans_deterministically(synth, proposals):
    cfg = snip.PlanConfig("default", stride_min=40, stride_max=60)
    ds = st.ChipDataset(synth / "annotations.json", synth, config=cfg, proposals=proposals,
                        seed=3, flip="random")

    def key(d):
        return [(i, c.scale, tuple(c.rect), n, f) for i, c, n, f in d.items]

    e0 = key(ds)
    assert any(n for _, _, _, n, _ in e0), "no negative chips were mined"
    ds.set_epoch(1)
    e1 = key(ds)
    assert e1 != e0 and ds.epoch == 1
    assert cfg.epoch_stride(3, 0) != cfg.epoch_stride(3, 1)
    ds.set_epoch(0)
    assert key(ds) == e0
    fresh = st.ChipDataset(synth / "annotations.json", synth, config=cfg, proposals=proposals,
                           seed=3, epoch=1, flip="random")
    assert key(fresh) == e1
    other_seed = st.ChipDataset(synth / "annotations.json", synth, config=cfg,
                                proposals=proposals, seed=4, flip="random")
    assert key(other_seed) != e0
    # negative chips carry no valid box the miner did not assign
    for i, (_, c, n, _) in enumerate(ds.items):
        if n:
            t = ds.target(i)
            assert t["chip"]["negative"]
            assert set(t["gt_index"].tolist()) <= set(int(k) for k in c.boxes)


def test_dataloader_collate_workers_and_pickle(synth):
    ds = st.ChipDataset(synth / "annotations.json", synth, config="default", flip=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, shuffle=False, collate_fn=st.collate)
    batches = list(loader)
    assert sum(len(t) for _, t in batches) == len(ds)
    images, targets = batches[0]
    assert images.shape == (3, 3, 512, 512) and len(targets) == 3
    x0, t0 = ds[0]
    assert torch.equal(images[0], x0) and torch.equal(targets[0]["boxes"], t0["boxes"])
    # pickled into worker processes: the same items
    workers = torch.utils.data.DataLoader(ds, batch_size=3, shuffle=False,
                                          collate_fn=st.collate, num_workers=2)
    for (a, ta), (b, tb) in zip(batches, workers):
        assert torch.equal(a, b)
        assert all(torch.equal(p["boxes"], q["boxes"]) for p, q in zip(ta, tb))
    clone = pickle.loads(pickle.dumps(ds))
    assert len(clone) == len(ds) and clone.epoch == ds.epoch
    xc, tc = clone[len(ds) - 1]
    xd, td = ds[len(ds) - 1]
    assert torch.equal(xc, xd) and torch.equal(tc["ignore_boxes"], td["ignore_boxes"])


def test_raw_pixels_contiguous_labels_and_errors(synth, tmp_path):
    raw = st.ChipDataset(synth / "annotations.json", synth, mean=None, std=None)
    x, _ = raw[0]
    assert x.min() >= 0 and x.max() <= 255 and x.max() > 1
    # sparse category ids become 1..C in increasing id order
    coco = json.loads((synth / "annotations.json").read_text())
    remap = {1: 7, 2: 3, 3: 12}
    for c in coco["categories"]:
        c["id"] = remap[c["id"]]
    for a in coco["annotations"]:
        a["category_id"] = remap[a["category_id"]]
    sparse = tmp_path / "sparse.json"
    sparse.write_text(json.dumps(coco))
    ds = st.ChipDataset(sparse, synth)
    assert ds.category_ids == [3, 7, 12] and ds.label_of(7) == 2
    for i in range(len(ds)):
        t = ds.target(i)
        rec = ds.dataset[ds.items[i][0]]
        assert [ds.category_ids[k - 1] for k in t["labels"].tolist()] == [
            int(rec.categories[k]) for k in t["gt_index"].tolist()]
    # an image whose size is not the annotation's
    coco["images"][0]["width"] += 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(coco))
    ds = st.ChipDataset(bad, synth)
    first = next(i for i, it in enumerate(ds.items) if it[0] == 0)
    with pytest.raises(snip.Error, match="synth_000001.png: the image is"):
        ds[first]
    with pytest.raises(ValueError, match="flip"):
        st.ChipDataset(synth / "annotations.json", synth, flip="sometimes")
    with pytest.raises(TypeError, match="config"):
        st.ChipDataset(synth / "annotations.json", synth, config=3)
    with pytest.raises(IndexError):
        raw[len(raw)]
