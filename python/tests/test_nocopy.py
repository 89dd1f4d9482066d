"""snip._chips reads NumPy arrays in place and hands out views of its own memory: strided
views plan exactly as contiguous copies, the box view the module builds points into the
caller's buffer with the caller's strides, a changed array changes the next result (nothing
is cached), and the arrays of records, proposals, chips and plans share the owner's memory
and keep it alive."""

import gc

import numpy as np
import pytest

import snip


@pytest.fixture(scope="module")
def coco(coco128):
    return snip.read_coco(str(coco128 / "instances_coco128.json"))


def address(a):
    return a.__array_interface__["data"][0]


def plan_key(p):
    return ([(c.scale, c.rect, c.boxes.tolist()) for c in p.positives],
            [(s.valid.tolist(), s.uncoverable.tolist()) for s in p.scales],
            p.outside.tolist(), p.valid_nowhere.tolist())


def strided_variants(boxes):
    """The same boxes as views of other layouts: a column slice of an (N, 8) array, every other
    row of a (2N, 4) array, a Fortran-order array, a transposed (4, N) array."""
    n = len(boxes)
    wide = np.full((n, 8), -7.0, boxes.dtype)
    wide[:, 2:6] = boxes
    rows = np.full((2 * n, 4), -7.0, boxes.dtype)
    rows[::2] = boxes
    fortran = np.asfortranarray(boxes)
    transposed = np.ascontiguousarray(boxes.T).T
    return {"columns": wide[:, 2:6], "every_other_row": rows[::2], "fortran": fortran,
            "transposed": transposed}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("preset", ["default", "sniper_coco"])
def test_strided_views_plan_as_contiguous_copies(coco, dtype, preset):
    cfg = snip.PlanConfig(preset)
    checked = 0
    for rec in list(coco)[:60]:
        base = np.ascontiguousarray(rec.boxes, dtype=dtype)
        want = plan_key(snip.plan_image(cfg, rec.width, rec.height, base, rec.crowd))
        for name, v in strided_variants(base).items():
            assert np.array_equal(v, base) and (len(base) < 2 or not v.flags.c_contiguous), name
            assert plan_key(snip.plan_image(cfg, rec.width, rec.height, v, rec.crowd)) == want, name
            checked += 1
        if len(base):
            chip = snip.Chip(0, 2.0, (0, 0, 600, 500), boxes=[0])
            g = snip.assign_chip(cfg, chip, rec.width, rec.height, base, rec.crowd)
            for v in strided_variants(base).values():
                h = snip.assign_chip(cfg, chip, rec.width, rec.height, v, rec.crowd)
                assert np.array_equal(g.boxes, h.boxes) and np.array_equal(g.state, h.state)
    assert checked == 240


def test_strided_negatives_and_crowd(coco):
    cfg = snip.PlanConfig()
    rng = np.random.default_rng(1)
    rec = max(coco, key=lambda r: r.num_boxes)
    # crowded in the top right corner, which no positive chip covers: negative chips there
    xy = rng.uniform(0, 150, (300, 2)) + [rec.width - 150, 0]
    props = np.hstack([xy, xy + rng.uniform(4, 40, (300, 2))])
    plan = snip.plan_image(cfg, rec.width, rec.height, rec.boxes, rec.crowd)
    want = snip.mine_negatives(cfg, rec.width, rec.height, plan, props, rec.boxes)
    assert len(want) >= 2 and all(len(c.proposals) > 10 for c in want)
    for v in strided_variants(props).values():
        for g in strided_variants(rec.boxes).values():
            assert snip.mine_negatives(cfg, rec.width, rec.height, plan, v, g) == want
    # crowd flags as a strided bool view, and as integers
    flags = np.repeat(rec.crowd, 3)[::3]
    assert flags.strides[0] == 3
    assert plan_key(snip.plan_image(cfg, rec.width, rec.height, rec.boxes, flags)) == plan_key(plan)
    assert plan_key(snip.plan_image(cfg, rec.width, rec.height, rec.boxes,
                                    rec.crowd.astype(np.int64))) == plan_key(plan)


def test_box_view_is_the_callers_buffer():
    for dtype in (np.float64, np.float32):
        item = np.dtype(dtype).itemsize
        base = np.arange(40, dtype=dtype).reshape(10, 4)
        assert snip._chips._box_view_info(base) == (address(base), 10, 4, 1)
        v = strided_variants(base)
        assert snip._chips._box_view_info(v["columns"]) == (address(v["columns"]), 10, 8, 1)
        assert address(v["columns"]) == address(v["columns"].base) + 2 * item
        assert snip._chips._box_view_info(v["every_other_row"]) == (address(v["every_other_row"]), 10, 8, 1)
        assert snip._chips._box_view_info(v["fortran"]) == (address(v["fortran"]), 10, 1, 10)
        assert snip._chips._box_view_info(v["transposed"]) == (address(v["transposed"]), 10, 1, 10)
        rev = base[::-1]
        assert snip._chips._box_view_info(rev) == (address(base) + 9 * 4 * item, 10, -4, 1)
        assert snip._chips._box_view_info(np.zeros((0, 4), dtype))[1] == 0
    # an unpickled array's dtype is an equal but distinct object: still read in place
    import pickle
    b = pickle.loads(pickle.dumps(np.arange(8.0).reshape(2, 4)))
    assert snip._chips._box_view_info(b) == (address(b), 2, 4, 1)


def test_changes_to_the_callers_array_are_seen(coco):
    cfg = snip.PlanConfig()
    rec = next(r for r in coco if r.num_boxes >= 4)
    a = np.array(rec.boxes)  # a writeable copy the test changes in place
    view = a[::1]
    before = plan_key(snip.plan_image(cfg, rec.width, rec.height, view))
    a *= 0.25  # every box 4x smaller: they move to finer scales
    after = plan_key(snip.plan_image(cfg, rec.width, rec.height, view))
    assert after != before
    assert after == plan_key(snip.plan_image(cfg, rec.width, rec.height, a.copy()))
    a[:] = rec.boxes
    assert plan_key(snip.plan_image(cfg, rec.width, rec.height, view)) == before
    # the same for an image: cut_chip reads the pixels at the call
    img = np.zeros((64, 64, 3), np.uint8)
    chip = snip.Chip(0, 1.0, (0, 0, 16, 16))
    small = snip.PlanConfig(chip_size=16, stride=8, scales=["1"], ranges=[(-1, -1)])
    assert snip.cut_chip(img, small, chip)[0].max() == 0
    img[:, :, 1] = 200
    out, _ = snip.cut_chip(img, small, chip)
    assert out[1].min() == 200 and out[0].max() == 0


def test_cut_chip_reads_strided_images(coco128):
    img = snip.read_image(str(coco128 / "images/000000000009.jpg"))
    cfg = snip.PlanConfig()
    chip = snip.Chip(1, 1.667, (30, 40, 542, 552))
    want, _ = snip.cut_chip(img, cfg, chip)
    wide = np.zeros((img.shape[0], img.shape[1], 5), np.uint8)
    wide[:, :, 1:4] = img
    flipped_rows = np.ascontiguousarray(img[::-1])[::-1]  # negative row stride
    planar = np.ascontiguousarray(img.transpose(2, 0, 1)).transpose(1, 2, 0)  # channels apart
    for v in (wide[:, :, 1:4], flipped_rows, planar):
        assert np.array_equal(v, img) and not v.flags.c_contiguous
        got, _ = snip.cut_chip(v, cfg, chip)
        np.testing.assert_array_equal(got, want)
    # grey (H, W) images: one channel
    grey, _ = snip.cut_chip(img[:, :, 1], cfg, chip)
    np.testing.assert_array_equal(grey[0], want[1])


def test_record_arrays_share_the_datasets_memory(coco):
    rec = coco[3]
    a, b = rec.boxes, coco[3].boxes
    assert np.shares_memory(a, b) and address(a) == address(b)
    assert isinstance(a.base, snip.ImageRecord) and not a.flags.writeable and not a.flags.owndata
    with pytest.raises(ValueError):
        a[0, 0] = 1
    for f in ("categories", "crowd", "ann_ids", "areas"):
        x, y = getattr(rec, f), getattr(coco[3], f)
        assert np.shares_memory(x, y) and not x.flags.writeable, f
    assert rec.crowd.dtype == np.bool_ and rec.categories.dtype == np.int32
    # the same record through iteration and .images
    assert address(next(iter(coco)).boxes) == address(coco[0].boxes)
    assert address(coco.images[3].boxes) == address(a)
    # a view keeps its dataset alive
    ds = snip.read_coco(coco.source)
    boxes = ds[5].boxes
    keep = boxes.copy()
    del ds
    gc.collect()
    _ = [np.ones(10000) for _ in range(50)]
    np.testing.assert_array_equal(boxes, keep)
    # boxes planned straight from a record are read in place too
    assert snip._chips._box_view_info(rec.boxes)[0] == address(rec.boxes)


def test_plan_and_proposal_arrays_are_views(coco):
    cfg = snip.PlanConfig()
    props = snip.Proposals([np.asarray(r.boxes) for r in coco])
    assert np.shares_memory(props[2].boxes, props[2].boxes) and not props[2].scores.flags.writeable
    plans = snip.plan_dataset(cfg, coco, props)
    p = next(q for q in plans if len(q.plan.positives) > 1)
    c = p.plan.positives[0]
    assert np.shares_memory(c.boxes, p.plan.positives[0].boxes)
    assert np.shares_memory(p.plan.scales[1].valid, p.plan.scales[1].valid)
    assert not c.boxes.flags.writeable and c.boxes.dtype == np.int32
    # the chips of a plan keep it alive
    chips = plans[10].chips()
    rects = [x.rect for x in chips]
    boxes = [x.boxes.copy() for x in chips]
    del plans, p, c
    gc.collect()
    assert [x.rect for x in chips] == rects
    assert all(np.array_equal(x.boxes, b) for x, b in zip(chips, boxes))
