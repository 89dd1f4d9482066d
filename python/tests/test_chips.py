"""snip._chips against the C++ command line and against hand-made cases: plan_dataset (positive,
mined and sampled negative chips) equals `snip-chips plan` on coco128 and on COCO val2017's
boxes with both presets and two epochs, the chips file and the report are the CLI's, configs
round-trip through the JSON `snip-chips plan --config` reads, plans have the properties the
planner promises, chip pixels map back to the original image, and assign_chip / count_pixels
/ tune give the known answers."""

import json
import pickle
import subprocess

import numpy as np
import pytest

import snip

COCO128 = "coco128/instances_coco128.json"
VAL2017 = "coco_val2017_boxes/instances_val2017_boxes.json"
PRESETS = ("default", "sniper_coco")
SEED = 5

# ----------------------------------------------------------------------------- helpers


def make_proposals(ds, seed, every=1):
    """Deterministic proposals in COCO results format (as JSON text) for every `every`-th image
    of `ds`: each ground-truth box twice, jittered by up to 15% of its size; two clusters of 40
    small and 14 medium boxes (negative chips at the finer scales); on every third image 14
    large boxes (the coarsest scale); 12 boxes anywhere. Clipped to the image, 2 decimals."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, rec in enumerate(ds):
        if i % every:
            continue
        w, h = rec.width, rec.height
        parts = []
        if rec.num_boxes:
            g = np.repeat(rec.boxes, 2, axis=0)
            wh = np.maximum(g[:, 2:] - g[:, :2], 1.0)
            parts.append(g + rng.uniform(-0.15, 0.15, g.shape) * np.hstack([wh, wh]))

        def around(centre, n, lo, hi, spread):
            side = np.exp(rng.uniform(np.log(lo), np.log(hi), (n, 1))) * rng.uniform(0.7, 1.3, (n, 2))
            ctr = centre + rng.normal(0, min(w, h) * spread, (n, 2))
            return np.hstack([ctr - side / 2, ctr + side / 2])

        for _ in range(2):
            c = rng.uniform([0, 0], [w, h])
            parts += [around(c, 40, 6, 40, 0.06), around(c, 14, 30, 140, 0.12)]
        if i % 3 == 0:
            parts.append(around(np.array([w / 2, h / 2]), 14, 130, 300, 0.15))
        xy = rng.uniform([0, 0], [w, h], (12, 2))
        parts.append(np.hstack([xy, xy + np.exp(rng.uniform(np.log(10), np.log(400), (12, 2)))]))
        p = np.concatenate(parts)
        p[:, [0, 2]] = np.clip(p[:, [0, 2]], 0, w)
        p[:, [1, 3]] = np.clip(p[:, [1, 3]], 0, h)
        p = np.round(p, 2)
        bw = np.round(np.maximum(p[:, 2] - p[:, 0], 0), 2)
        bh = np.round(np.maximum(p[:, 3] - p[:, 1], 0), 2)
        scores = np.round(rng.uniform(0, 1, len(p)), 4)
        for x, y, a, b, s in zip(p[:, 0].tolist(), p[:, 1].tolist(), bw.tolist(), bh.tolist(),
                                 scores.tolist()):
            rows.append('{"image_id":%d,"bbox":[%r,%r,%r,%r],"score":%r}' % (rec.id, x, y, a, b, s))
    return "[" + ",".join(rows) + "]"


class Data:
    """A dataset, its annotation path, a proposals file made for it and the proposals read."""

    def __init__(self, ann, props_path, every):
        self.ann = str(ann)
        self.ds = snip.read_coco(self.ann)
        props_path.write_text(make_proposals(self.ds, 17, every))
        self.props = str(props_path)
        self.proposals = snip.read_proposals(self.props, self.ds)


@pytest.fixture(scope="session")
def data(data_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("chips_data")
    return {"coco128": Data(data_dir / COCO128, d / "coco128_props.json", 1),
            "val2017": Data(data_dir / VAL2017, d / "val2017_props.json", 5)}


def second_epoch(cfg, seed):
    """An epoch whose stride differs from epoch 0's when the config draws its stride (else 1)."""
    if not cfg.draws_stride:
        return 1
    return next(e for e in range(1, 50) if cfg.epoch_stride(seed, e) != cfg.epoch_stride(seed, 0))


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{cmd}: {r.stderr}"
    return r


@pytest.fixture(scope="session")
def cli_plans(data, snip_chips, tmp_path_factory):
    """`snip-chips plan` for each dataset, preset and two epochs: {key: (args, chips file path)}."""
    d = tmp_path_factory.mktemp("chips_cli")
    out = {}
    for name, dat in data.items():
        for preset in PRESETS:
            cfg = snip.PlanConfig(preset)
            for epoch in (0, second_epoch(cfg, SEED)):
                path = d / f"{name}_{preset}_{epoch}.json"
                run([snip_chips, "plan", "--annotations", dat.ann, "--proposals", dat.props,
                     "--preset", preset, "--seed", str(SEED), "--epoch", str(epoch), "--threads", "2",
                     "--out", str(path)])
                out[(name, preset, epoch)] = path
    return out


def ann_ids(rec, idx):
    return [int(rec.ann_ids[k]) for k in idx]


def assert_same_as_file(ds, plans, cfg, seed, epoch, f):
    """Every image's scales, positive chips, negative chips and sampled flags of `plans`
    against a chips file's JSON `f`. Returns (positives, negatives, sampled) counted."""
    stride = cfg.epoch_stride(seed, epoch)
    assert len(f["images"]) == len(ds) == len(plans)
    counts = np.zeros(3, int)
    for rec, p, im in zip(ds, plans, f["images"]):
        assert (im["id"], im["width"], im["height"]) == (rec.id, rec.width, rec.height)
        assert len(im["scales"]) == len(p.plan.scales) == cfg.num_scales
        for s, fs in zip(p.plan.scales, im["scales"]):
            assert (fs["factor"], fs["width"], fs["height"], fs["stride"]) == (s.factor, s.width, s.height, stride)
            assert fs["valid_ids"] == ann_ids(rec, s.valid)
            assert fs["uncoverable_ids"] == ann_ids(rec, s.uncoverable)
        pos = [c for c in im["chips"] if c["kind"] == "positive"]
        neg = [c for c in im["chips"] if c["kind"] == "negative"]
        assert len(pos) == len(p.plan.positives) and len(neg) == len(p.negatives)
        for c, fc in zip(p.plan.positives, pos):
            assert (fc["scale"], tuple(fc["rect"]), fc["ann_ids"]) == (c.scale, c.rect, ann_ids(rec, c.boxes))
            assert fc["box"] == list(c.original())
            assert len(c.proposals) == 0
        sampled = set(p.sampled.tolist())
        for k, (c, fc) in enumerate(zip(p.negatives, neg)):
            assert (fc["scale"], tuple(fc["rect"]), fc["box"]) == (c.scale, c.rect, list(c.original()))
            assert fc["proposal_ids"] == c.proposals.tolist() and fc["proposals"] == len(c.proposals)
            assert fc["ann_ids"] == ann_ids(rec, c.boxes)
            assert fc["sampled"] == (k in sampled)
        # chips(): the positives, then the sampled negatives, in the trainer's order
        chips = p.chips()
        assert chips[:len(pos)] == list(p.plan.positives)
        assert chips[len(pos):] == [p.negatives[k] for k in p.sampled]
        counts += (len(pos), len(neg), len(sampled))
    return counts


# ----------------------------------------------------------------------------- plans = the CLI's


@pytest.mark.parametrize("name", ["coco128", "val2017"])
@pytest.mark.parametrize("preset", PRESETS)
def test_plan_dataset_equals_cli(data, cli_plans, name, preset, tmp_path):
    dat = data[name]
    cfg = snip.PlanConfig(preset)
    epochs = (0, second_epoch(cfg, SEED))
    strides = {cfg.epoch_stride(SEED, e) for e in epochs}
    assert len(strides) == (2 if cfg.draws_stride else 1)  # sniper_coco: two stride draws
    sampled_sets = []
    for epoch in epochs:
        path = cli_plans[(name, preset, epoch)]
        f = json.loads(path.read_text())
        assert snip.PlanConfig.from_dict(f["config"]) == cfg
        plans = snip.plan_dataset(cfg, dat.ds, dat.proposals, seed=SEED, epoch=epoch, threads=2)
        pos, neg, sampled = assert_same_as_file(dat.ds, plans, cfg, SEED, epoch, f)
        assert pos > len(dat.ds) and neg > 100 and 0 < sampled <= 2 * len(dat.ds)
        # negatives at every scale; where no proposals were given (val2017: all but every 5th
        # image) only ground truth can make one (it joins the mining candidates)
        assert {c.scale for p in plans for c in p.negatives} == set(range(cfg.num_scales))
        if name == "val2017":
            assert all(len(c.proposals) == 0 for i, p in enumerate(plans) if i % 5 for c in p.negatives)
            assert all(len(dat.proposals[i]) == 0 for i in range(len(plans)) if i % 5)
        assert sum(len(c.proposals) > 0 for p in plans for c in p.negatives) > 100
        sampled_sets.append([p.sampled.tolist() for p in plans])
        # the file Python writes is the CLI's, byte for byte
        mine = tmp_path / f"py_{epoch}.json"
        snip.write_chips(str(mine), dat.ds, plans, cfg, seed=SEED, epoch=epoch,
                         annotations=dat.ann, proposals=dat.props)
        assert mine.read_bytes() == path.read_bytes()
    assert sampled_sets[0] != sampled_sets[1]  # the negative sample changes with the epoch


def test_threads_and_single_image_calls_agree(data):
    dat = data["coco128"]
    for preset in PRESETS:
        cfg = snip.PlanConfig(preset)
        plans = snip.plan_dataset(cfg, dat.ds, dat.proposals, seed=SEED, epoch=3, threads=1)
        again = snip.plan_dataset(cfg, dat.ds, dat.proposals, seed=SEED, epoch=3, threads=3)
        stride = cfg.epoch_stride(SEED, 3)
        for i, (rec, p, q) in enumerate(zip(dat.ds, plans, again)):
            assert p.chips() == q.chips() and p.negatives == q.negatives
            one = snip.plan_image(cfg, rec.width, rec.height, rec.boxes, rec.crowd, stride=stride)
            assert one.positives == p.plan.positives
            assert [s.valid.tolist() for s in one.scales] == [s.valid.tolist() for s in p.plan.scales]
            neg = snip.mine_negatives(cfg, rec.width, rec.height, one, dat.proposals[i].boxes,
                                      rec.boxes, stride=stride)
            assert neg == p.negatives
            s = snip.sample_negatives(len(neg), cfg.negatives_per_image, SEED, 3, rec.id)
            assert s.dtype == np.int32 and s.tolist() == p.sampled.tolist()
    # without ground truth among the mining candidates: no negative lists a box
    plans = snip.plan_dataset(snip.PlanConfig(), dat.ds, dat.proposals, mine_ground_truth=False)
    assert all(len(c.boxes) == 0 for p in plans for c in p.negatives)
    calls = []
    snip.plan_dataset(snip.PlanConfig(), dat.ds, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1] == (len(dat.ds), len(dat.ds))

    # an exception in the progress callable (plan_dataset's and tune's) reaches the caller
    def stop(done, total):
        raise KeyboardInterrupt(f"stopped at {done} of {total}")

    with pytest.raises(KeyboardInterrupt, match="stopped at"):
        snip.plan_dataset(snip.PlanConfig(), dat.ds, progress=stop)
    with pytest.raises(KeyboardInterrupt, match="stopped at"):
        snip.tune(dat.ds, snip.TuneOptions(max_scales=1, sample_images=16), reference=None, progress=stop)


def test_report_equals_cli(data, cli_plans, snip_chips):
    dat = data["coco128"]
    for preset in PRESETS:
        cfg = snip.PlanConfig(preset)
        epoch = second_epoch(cfg, SEED)
        plans = snip.plan_dataset(cfg, dat.ds, dat.proposals, seed=SEED, epoch=epoch)
        args = [snip_chips, "report", "--annotations", dat.ann, "--proposals", dat.props,
                "--preset", preset, "--seed", str(SEED), "--epoch", str(epoch)]
        want = json.loads(run(args + ["--json"]).stdout)
        got = snip.report(dat.ds, plans, cfg, seed=SEED, epoch=epoch)
        assert got == want
        assert got["sampled_negative_chips_per_image"] > 0 and 0.9 < got["coverage"] <= 1
        assert snip.report_text(dat.ds, plans, cfg, seed=SEED, epoch=epoch) == run(args).stdout
        f = snip.read_chips(str(cli_plans[("coco128", preset, epoch)]), dat.ds)
        assert f.seed == SEED and f.epoch == epoch and f.config == cfg and len(f) == len(dat.ds)
        assert snip.report(f) == want
        # count_pixels of each image adds up to the report's pixels
        pos = sum(snip.count_pixels(cfg, r.width, r.height, p.plan.positives).chips
                  for r, p in zip(dat.ds, plans))
        assert pos / len(dat.ds) == pytest.approx(want["pixels_per_image"]["positive_chips"], rel=1e-12)


def test_config_json_round_trip_through_the_cli(data, snip_chips, tmp_path):
    dat = data["coco128"]
    cfg = snip.PlanConfig("sniper_coco", name="mine", scales=["2.5", 1.2, "600px"],
                          ranges=[(-1, 90), (30, 160.5), (110, -1)], chip_size=448, stride_min=40,
                          stride_max=48, negatives_per_image=3, min_proposals_finest=20)
    assert cfg.scales == ["2.5", "1.2", "600px"] and cfg.ranges[1] == (30, 160.5)
    assert cfg.convention == "inclusive" and cfg.layout == "sniper" and cfg.draws_stride
    path = tmp_path / "cfg.json"
    cfg.save(str(path))
    assert snip.PlanConfig.from_json(str(path)) == cfg
    assert snip.PlanConfig.from_dict(cfg.to_dict()) == cfg
    assert json.loads(cfg.to_json()) == cfg.to_dict() == json.loads(path.read_text())
    assert pickle.loads(pickle.dumps(cfg)) == cfg and cfg.copy() == cfg
    assert cfg != snip.PlanConfig("sniper_coco") and repr(cfg).startswith("PlanConfig(name='mine'")
    out = tmp_path / "chips.json"
    run([snip_chips, "plan", "--config", str(path), "--annotations", dat.ann, "--proposals",
         dat.props, "--seed", "2", "--epoch", "1", "--out", str(out)])
    f = json.loads(out.read_text())
    assert f["config"] == cfg.to_dict()
    plans = snip.plan_dataset(cfg, dat.ds, dat.proposals, seed=2, epoch=1)
    pos, neg, _ = assert_same_as_file(dat.ds, plans, cfg, 2, 1, f)
    assert pos > 0 and neg > 0
    # a fixed stride replaces a preset's draw, as in a JSON config and on the command line
    c = snip.PlanConfig("sniper_coco", stride=40)
    assert (c.stride, c.stride_min, c.stride_max, c.draws_stride) == (40, 0, 0, False)
    c = snip.PlanConfig("sniper_coco", stride=40, stride_min=50, stride_max=52)
    assert c.draws_stride and 50 <= c.epoch_stride(1, 1) <= 52
    assert snip.PlanConfig.preset("sniper_coco") == snip.PlanConfig("sniper_coco")
    assert snip.PlanConfig.presets() == ["default", "sniper_coco"]
    # attribute writes
    c = snip.PlanConfig()
    c.scales = [2, (1400, 2000)]
    c.ranges = ["-1,100", (80, -1)]
    c.convention = "inclusive"
    c.max_side_rule = False
    c.validate()
    assert c.scales == ["2", "(1400,2000)"] and c.ranges == [(-1, 100), (80, -1)]
    assert c.valid_ranges == c.ranges and not c.max_side_rule
    assert c.scaled_sizes(800, 600) == [(2.0, 1600, 1200), (1400 / 600, 1866, 1400)]


# ----------------------------------------------------------------------------- plan properties


@pytest.mark.parametrize("preset", PRESETS)
def test_plan_properties(data, preset):
    dat = data["coco128"]
    cfg = snip.PlanConfig(preset)
    e = 1.0 if cfg.convention == "inclusive" else 0.0
    checked = 0
    for rec, p in zip(dat.ds, snip.plan_dataset(cfg, dat.ds)):
        b = rec.boxes
        for s, sp in enumerate(p.plan.scales):
            chips = [c for c in p.plan.positives if c.scale == s]
            held = np.concatenate([c.boxes for c in chips] + [np.zeros(0, np.int32)])
            # every valid box is in exactly one chip of its scale, or uncoverable
            assert sorted(held.tolist() + sp.uncoverable.tolist()) == sorted(sp.valid.tolist())
            assert len(set(held.tolist())) == len(held)
            assert not set(sp.valid.tolist()) & set(np.flatnonzero(rec.crowd).tolist())
            for c in chips:
                assert c.factor == sp.factor
                x1, y1, x2, y2 = c.rect
                assert 0 <= x1 <= x2 <= sp.width - e and 0 <= y1 <= y2 <= sp.height - e
                if cfg.layout == "aligned":
                    assert x2 - x1 == min(cfg.chip_size, sp.width) and y2 - y1 == min(cfg.chip_size, sp.height)
                for k in c.boxes:
                    x = b[k].copy()
                    if e:  # the original's inclusive pixels: [x1, x1 + w - 1], clipped
                        lo = np.maximum(x[:2], 0)
                        x = np.concatenate([lo, np.minimum(lo + np.maximum(x[2:] - x[:2] - 1, 0),
                                                           [rec.width - 1, rec.height - 1])])
                    q = np.clip(x * sp.factor, 0, [sp.width - e, sp.height - e] * 2)
                    assert x1 - 1e-3 <= q[0] and q[2] <= x2 + 1e-3 and y1 - 1e-3 <= q[1] and q[3] <= y2 + 1e-3
                    checked += 1
        assert not set(p.plan.valid_nowhere.tolist()) & set(np.concatenate([s.valid for s in p.plan.scales]).tolist())
    assert checked > 700


# ----------------------------------------------------------------------------- chip pixels


def bilinear_reference(img, crop, out_w, out_h):
    """crop.hpp's documented resampling in NumPy: output pixel x reads the original at
    u = x1 + (x + 0.5) * sx, bilinearly between the nearest pixel centres, clamped at the
    border; 0 where the centre falls outside the image."""
    def axis(origin, scale, n, src_n):
        u = origin + (np.arange(n) + 0.5) * scale
        s = u - 0.5
        i0 = np.floor(s).astype(int)
        w1 = s - i0
        i1 = i0 + 1
        lo, hi = i0 < 0, i1 > src_n - 1
        i0[lo], i1[lo], w1[lo] = 0, 0, 0
        i0[hi], i1[hi], w1[hi] = src_n - 1, src_n - 1, 0
        return i0, i1, w1, (u >= 0) & (u < src_n)

    x1, y1, x2, y2 = crop
    xi0, xi1, xw, xin = axis(x1, (x2 - x1) / out_w, out_w, img.shape[1])
    yi0, yi1, yw, yin = axis(y1, (y2 - y1) / out_h, out_h, img.shape[0])
    f = img.astype(np.float64)
    top = f[yi0][:, xi0] + xw[None, :, None] * (f[yi0][:, xi1] - f[yi0][:, xi0])
    bot = f[yi1][:, xi0] + xw[None, :, None] * (f[yi1][:, xi1] - f[yi1][:, xi0])
    v = top + yw[:, None, None] * (bot - top)
    return v * (yin[:, None] & xin[None, :])[..., None]


def test_cut_chip_maps_back_to_the_original(data_dir):
    img = snip.read_image(str(data_dir / "coco128/images/000000000009.jpg"))
    h, w, _ = img.shape
    assert img.dtype == np.uint8 and (w, h) == (640, 480)
    cfg = snip.PlanConfig()
    s = cfg.chip_size
    # factor 1: the chip is the original's pixels, exactly; rows below the image are padding 0
    chip = snip.Chip(0, 1.0, (100, 20, 100 + s, 20 + s))
    out, geom = snip.cut_chip(img, cfg, chip)
    assert out.shape == (3, s, s) and out.dtype == np.float32
    assert (geom.width, geom.height, geom.crop) == (s, s, (100.0, 20.0, 612.0, 532.0))
    np.testing.assert_array_equal(out[:, : h - 20, :].transpose(1, 2, 0), img[20:, 100:612])
    assert np.all(out[:, h - 20:, :] == 0)
    # flipped: the content mirrored
    flipped, _ = snip.cut_chip(img, cfg, chip, flip=True)
    np.testing.assert_array_equal(flipped, out[:, :, ::-1])
    # normalised, then mapped back
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    norm, _ = snip.cut_chip(img, cfg, chip, mean=mean, std=std)
    back = (norm * np.array(std, np.float32)[:, None, None] + np.array(mean, np.float32)[:, None, None]) * 255
    np.testing.assert_allclose(back[:, : h - 20], out[:, : h - 20], atol=2e-3)
    # uint8 interleaved output, into a slice of a batch (any strides)
    batch = np.zeros((2, s, s, 3), np.uint8)
    view = batch[1]
    res, _ = snip.cut_chip(img, cfg, chip, out=view)
    assert res is view
    np.testing.assert_array_equal(batch[1, : h - 20], img[20:, 100:612])
    assert not batch[0].any()
    planar = np.zeros((4, 3, s, s), np.float32)
    snip.cut_chip(img, cfg, chip, out=planar[2])
    np.testing.assert_array_equal(planar[2], out)
    # factor 0.5: each chip pixel is the mean of a 2 x 2 block of the original
    half = snip.Chip(0, 0.5, (0, 0, 320, 240))
    hv, g = snip.cut_chip(img, cfg, half)
    assert (g.width, g.height, g.crop) == (320, 240, (0.0, 0.0, 640.0, 480.0))
    blocks = img.astype(np.float64).reshape(240, 2, 320, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(hv[:, :240, :320].transpose(1, 2, 0), blocks, atol=1e-3)
    assert np.all(hv[:, 240:, :] == 0) and np.all(hv[:, :, 320:] == 0)


@pytest.mark.parametrize("preset", PRESETS)
def test_cut_chip_of_planned_chips(data, data_dir, preset):
    dat = data["coco128"]
    cfg = snip.PlanConfig(preset)
    k = next(i for i, r in enumerate(dat.ds) if r.file_name == "000000000009.jpg")
    rec = dat.ds[k]
    img = snip.read_image(str(data_dir / "coco128/images" / rec.file_name))
    p = snip.plan_image(cfg, rec.width, rec.height, rec.boxes, rec.crowd)
    assert {c.scale for c in p.positives} == {0, 1, 2}
    for c in p.positives:
        out, g = snip.cut_chip(img, cfg, c)
        assert g.crop == snip.chip_crop(c, cfg).crop == snip.chip_crop(c, cfg.chip_size, cfg.convention).crop
        ref = bilinear_reference(img, g.crop, g.width, g.height)
        np.testing.assert_allclose(out[:, : g.height, : g.width].transpose(1, 2, 0), ref, atol=2e-3)
        assert np.all(out[:, g.height:, :] == 0) and np.all(out[:, :, g.width:] == 0)


# ----------------------------------------------------------------------------- ground truth, pixels


@pytest.mark.parametrize("convention", ["continuous", "inclusive"])
def test_assign_chip_states(convention):
    cfg = snip.PlanConfig(convention=convention)
    e = 1.0 if convention == "inclusive" else 0.0
    boxes = np.array([[5, 5, 20, 20],      # in chip.boxes: VALID
                      [10, 10, 30, 30],    # visible, not the chip's: INVALID
                      [45, 45, 60, 60],    # crowd, clipped to 10 px (90..100): CROWD
                      [48, 48, 70, 70],    # clipped to 4 px: dropped
                      [200, 200, 210, 210],  # outside the chip: dropped
                      [1, 2, 8, 9]], np.float32)  # 7 px at factor 1 -> 14 px: INVALID
    crowd = np.array([0, 0, 1, 0, 0, 0], bool)
    chip = snip.Chip(0, 2.0, (0, 0, 100, 100), boxes=[0])
    gt = snip.assign_chip(cfg, chip, 400, 300, boxes, crowd)
    assert len(gt) == 4 and gt.index.dtype == np.int32 and gt.boxes.dtype == np.float32
    np.testing.assert_array_equal(gt.index, [0, 1, 2, 5])
    np.testing.assert_array_equal(gt.state, [snip.GT_VALID, snip.GT_INVALID, snip.GT_CROWD, snip.GT_INVALID])
    assert [snip.GtState(int(x)) for x in gt.state] == [snip.GtState.VALID, snip.GtState.INVALID,
                                                        snip.GtState.CROWD, snip.GtState.INVALID]
    want = np.array([[10, 10, 40, 40], [20, 20, 60, 60], [90, 90, 120, 120], [2, 4, 16, 18]], np.float64)
    want[:, 2:] -= 2 * e  # inclusive: x2 = x1 + w - 1 before scaling by 2
    np.testing.assert_array_equal(gt.boxes, np.minimum(want, 100))  # clipped to the chip
    # min_size: 15 chip px drops the 14 px box and the 10 px crowd box
    np.testing.assert_array_equal(snip.assign_chip(cfg, chip, 400, 300, boxes, crowd, min_size=15).index, [0, 1])
    # a negative chip: only the ground truth the miner assigned is valid
    neg = snip.Chip(0, 2.0, (0, 0, 100, 100), proposals=[0, 1, 2])
    assert snip.assign_chip(cfg, neg, 400, 300, boxes).state.tolist() == [1, 1, 1, 1]


def test_count_pixels_known_answer():
    for conv, e in (("continuous", 0), ("inclusive", 1)):
        cfg = snip.PlanConfig(convention=conv)
        chips = [snip.Chip(0, 3.0, (0, 0, 512, 512)), snip.Chip(1, 1.667, (10, 0, 310, 200))]
        p = snip.count_pixels(cfg, 640, 480, chips)
        assert p.chips == (512 + e) ** 2 + (300 + e) * (200 + e)
        assert p.chips_padded == 2 * 512 * 512
        assert p.single_scale == 1066 * 800  # short side 800: 640 x 480 -> 1066 x 800
        assert p.pyramid == 1920 * 1440 + int(640 * 1.667) * int(480 * 1.667) + 512 * 384
        assert p.to_dict() == {"chips": p.chips, "chips_padded": p.chips_padded,
                               "single_scale": p.single_scale, "pyramid": p.pyramid}


# ----------------------------------------------------------------------------- datasets of your own


def test_dataset_from_python_and_pickling(data, tmp_path):
    dat = data["coco128"]
    recs = [snip.ImageRecord(r.id, r.width, r.height, r.boxes, categories=r.categories,
                             crowd=r.crowd, ann_ids=r.ann_ids, file_name=r.file_name) for r in dat.ds[:40]]
    ds = snip.Dataset(recs, categories=dat.ds.categories, source="mine")
    assert len(ds) == 40 and ds.source == "mine" and ds.load_report is None
    assert dat.ds.load_report.images == 128 and dat.ds.load_report.crowd == 10
    cfg = snip.PlanConfig()
    a = snip.plan_dataset(cfg, ds)
    b = snip.plan_dataset(cfg, dat.ds)[:40]
    assert [p.chips() for p in a] == [p.chips() for p in b]
    # pickles: dataset, proposals, plans, chips, config (what a DataLoader's workers receive)
    for obj in (dat.ds, dat.proposals, a[0], a[0].plan, a[0].chips()[0], cfg, ds[3]):
        back = pickle.loads(pickle.dumps(obj))
        assert type(back) is type(obj)
    d2 = pickle.loads(pickle.dumps(dat.ds))
    assert len(d2) == 128 and d2.categories == dat.ds.categories and d2.source == dat.ds.source
    for r, q in zip(dat.ds, d2):
        assert (r.id, r.file_name, r.width, r.height) == (q.id, q.file_name, q.width, q.height)
        for f in ("boxes", "categories", "crowd", "ann_ids", "areas"):
            np.testing.assert_array_equal(getattr(r, f), getattr(q, f))
    p2 = pickle.loads(pickle.dumps(dat.proposals))
    assert all(np.array_equal(x.boxes, y.boxes) and np.array_equal(x.scores, y.scores)
               for x, y in zip(dat.proposals, p2))
    plans = snip.plan_dataset(cfg, dat.ds, dat.proposals, seed=1)
    back = pickle.loads(pickle.dumps(plans))
    assert all(x.chips() == y.chips() and x.negatives == y.negatives for x, y in zip(plans, back))
    # write_coco / read_coco round trip
    path = tmp_path / "mine.json"
    ds.write_coco(str(path))
    again = snip.read_coco(str(path))
    assert [r.id for r in again] == [r.id for r in ds]
    np.testing.assert_allclose(again[5].boxes, ds[5].boxes, rtol=1e-12)
    # records, proposals built from arrays
    r = snip.ImageRecord(7, 100, 50, [[0, 0, 10, 10], [5, 5, 20, 30]])
    assert r.categories.tolist() == [1, 1] and r.ann_ids.tolist() == [1, 2] and not r.crowd.any()
    assert r.areas.shape == (0,) and r.area(1) == 15 * 25
    pr = snip.Proposals([np.array([[0, 0, 5, 5]], np.float32), (np.zeros((2, 4)), np.array([0.5, 0.25]))])
    assert len(pr) == 2 and pr[0].scores.tolist() == [1.0] and pr[1].scores.dtype == np.float32
    assert pr.num_boxes == 3 and dat.ds.index(dat.ds[9].id) == 9


def test_tune_equals_cli(data, snip_chips, tmp_path):
    dat = data["coco128"]
    cli = json.loads(run([snip_chips, "tune", "--annotations", dat.ann, "--json", "--scales", "2",
                          "--sample", "64", "--seed", "3", "--out", str(tmp_path / "t.json"),
                          "--png", str(tmp_path / "t.png")]).stdout)
    r = snip.tune(dat.ds, min_scales=2, max_scales=2, sample_images=64, seed=3)
    got = r.to_dict()
    for k in ("rule", "sample_images", "chosen", "best_per_scale_count", "reference"):
        assert got[k] == cli[k], k
    assert r.sample_images == 64 and len(r.evaluated) > 10 and r.reference.cfg == snip.PlanConfig("sniper_coco")
    assert snip.PlanConfig.from_json(str(tmp_path / "t.json")) == r.chosen.cfg
    assert r.chosen.metrics.images == 128 and r.chosen.metrics.valid_share == cli["chosen"]["valid_share"]
    opts = snip.TuneOptions(max_scales=2, min_scales=2, sample_images=64, seed=3, cost="padded")
    assert snip.tune(dat.ds, opts, reference=None).to_dict()["chosen"] == cli["chosen"]
    m = snip.evaluate_config(snip.PlanConfig(), dat.ds)
    assert m.images == 128 and 0 < m.good_share <= m.valid_share <= 1 and len(m.per_scale_valid) == 3
    assert isinstance(snip.dataset_warnings(snip.PlanConfig(), dat.ds), list)
