"""snip's detection layer: anchors, RPN labels and sampling, RCNN targets, box coding,
NMS / Soft-NMS / multi-scale merge, COCO evaluation.

Boxes are (N, 4) float32 or float64 NumPy arrays of x1, y1, x2, y2 with any strides (read
in place, never copied or cast); every box argument of one call has the first one's dtype,
and the results have it too. Bad dtypes or shapes raise ValueError naming the argument;
the library's checks raise snip.Error (a ValueError) with its message."""

import os
from typing import (Any, Dict, Iterable, Iterator, List, Literal, Mapping, Optional, Sequence,
                    Tuple, Union)

import numpy as np
import numpy.typing as npt

from ._chips import Error as Error

_Boxes = npt.NDArray[np.floating[Any]]
_Floats = npt.NDArray[np.floating[Any]]
_Ints = npt.NDArray[np.integer[Any]]
_Convention = Literal["continuous", "inclusive"]
_Path = Union[str, os.PathLike[str]]
_DType = Union[type, str, np.dtype[Any]]

# ----------------------------------------------------------------------------- anchors

class AnchorConfig:
    """An RPN anchor set: stride, scales (multiples of the stride), ratios h / w and the
    template rule ('inclusive': py-faster-rcnn / SNIPER; 'continuous')."""

    stride: float
    scales: List[float]
    ratios: List[float]
    convention: _Convention
    def __init__(
        self,
        stride: float = 16.0,
        scales: Sequence[float] = (2, 4, 7, 10, 13, 16, 24),
        ratios: Sequence[float] = (0.5, 1, 2),
        convention: _Convention = "continuous",
    ) -> None: ...
    @staticmethod
    def sniper() -> AnchorConfig:
        """SNIPER's 21 anchors, inclusive pixels."""
        ...
    @staticmethod
    def defaults() -> AnchorConfig:
        """snip's default: SNIPER's numbers as continuous boxes."""
        ...
    def __len__(self) -> int: ...
    def templates(self) -> npt.NDArray[np.float64]:
        """The (A, 4) templates around feature cell (0, 0), ratio-major."""
        ...
    def grid(self, height: int, width: int, dtype: _DType = "float32") -> _Boxes:
        """The (height * width * A, 4) anchors of a feature map at this stride."""
        ...

def legacy_anchor_templates(base_size: float, ratios: Sequence[float],
                            scales: Sequence[float]) -> npt.NDArray[np.float64]:
    """The py-faster-rcnn / SNIPER templates (inclusive pixels), (A, 4), ratio-major."""
    ...

def continuous_anchor_templates(stride: float, ratios: Sequence[float],
                                scales: Sequence[float]) -> npt.NDArray[np.float64]:
    """Templates of area (stride * scale)^2, aspect h / w = ratio, centred on
    (stride / 2, stride / 2), (A, 4), ratio-major."""
    ...

def grid_anchors(templates: _Boxes, height: int, width: int, stride: float,
                 dtype: _DType = "float32") -> _Boxes:
    """Templates shifted over a height x width grid: row (y * width + x) * A + a."""
    ...

def anchors_inside(anchors: _Boxes, width: float, height: float, border: float = 0.0,
                   convention: _Convention = "continuous") -> npt.NDArray[np.int64]:
    """Ascending indices of the anchors inside a width x height chip grown by border px."""
    ...

# ----------------------------------------------------------------------------- box coding, IoU

DEFAULT_MAX_LOG_SCALE: float
RCNN_STDS: Tuple[float, float, float, float]

def encode_boxes(refs: _Boxes, targets: _Boxes, *,
                 means: Sequence[float] = (0, 0, 0, 0), stds: Sequence[float] = (1, 1, 1, 1),
                 convention: _Convention = "continuous") -> _Floats:
    """(N, 4) deltas (dx, dy, dw, dh) moving each ref onto its target."""
    ...

def decode_boxes(refs: _Boxes, deltas: _Floats, *,
                 means: Sequence[float] = (0, 0, 0, 0), stds: Sequence[float] = (1, 1, 1, 1),
                 convention: _Convention = "continuous",
                 max_log_scale: float = ...,
                 clip: Optional[Tuple[float, float]] = None) -> _Boxes:
    """(N, 4) boxes predicted by the deltas; clip=(width, height) clips them to the image."""
    ...

def iou_matrix(a: _Boxes, b: _Boxes, convention: _Convention = "continuous",
               threads: int = 0) -> _Floats:
    """The (N, M) IoU matrix."""
    ...

# ----------------------------------------------------------------------------- RPN / RCNN targets

GT_VALID: int
GT_INVALID: int
GT_CROWD: int

class RpnAssignment:
    """RPN labels of N anchors; unpacks as (labels, matched)."""

    @property
    def labels(self) -> npt.NDArray[np.int8]: ...
    @property
    def matched(self) -> npt.NDArray[np.int32]: ...
    @property
    def positive(self) -> int: ...
    @property
    def negative(self) -> int: ...
    @property
    def ignored(self) -> int: ...
    def __iter__(self) -> Iterator[npt.NDArray[Any]]: ...

def rpn_labels(
    anchors: _Boxes,
    gt: _Boxes,
    states: Optional[_Ints] = None,
    *,
    negative_below: float = 0.4,
    positive_from: float = 0.5,
    best_anchor_positive: bool = True,
    ignore_invalid_above: float = 0.3,
    ignore_crowd_above: float = 0.3,
    crowd_measure: Literal["iou", "anchor_fraction"] = "iou",
    convention: _Convention = "continuous",
    threads: int = 0,
) -> RpnAssignment:
    """RPN labels with SNIPER's rules (1 / 0 / -1), without sampling. states: per gt
    GT_VALID (0), GT_INVALID (1) or GT_CROWD (2); None = all valid."""
    ...

def assign_rpn(
    anchors: _Boxes,
    gt: _Boxes,
    states: Optional[_Ints] = None,
    *,
    batch: int = 256,
    fg_fraction: float = 0.5,
    seed: int = 0,
    negative_below: float = 0.4,
    positive_from: float = 0.5,
    best_anchor_positive: bool = True,
    ignore_invalid_above: float = 0.3,
    ignore_crowd_above: float = 0.3,
    crowd_measure: Literal["iou", "anchor_fraction"] = "iou",
    convention: _Convention = "continuous",
    threads: int = 0,
) -> RpnAssignment:
    """rpn_labels, then sample_labels(batch, fg_fraction, seed) unless batch is 0."""
    ...

def sample_labels(labels: _Ints, batch: int = 256, fg_fraction: float = 0.5,
                  seed: int = 0) -> npt.NDArray[np.int8]:
    """Seeded subsampling of 1 / 0 / -1 labels; returns a new int8 array."""
    ...

class RcnnTargets:
    """The RoIs of one chip and their targets (row r of every array belongs to rois[r])."""

    @property
    def rois(self) -> _Boxes: ...
    @property
    def source(self) -> npt.NDArray[np.int64]: ...
    @property
    def labels(self) -> npt.NDArray[np.int32]: ...
    @property
    def matched(self) -> npt.NDArray[np.int32]: ...
    @property
    def max_iou(self) -> _Floats: ...
    @property
    def deltas(self) -> _Floats: ...
    @property
    def foreground(self) -> int: ...
    def __len__(self) -> int: ...

def rcnn_targets(
    proposals: _Boxes,
    gt: _Boxes,
    states: Optional[_Ints] = None,
    classes: Optional[_Ints] = None,
    *,
    range: Tuple[float, float] = (-1.0, -1.0),
    range_factor: float = 1.0,
    append_gt: bool = True,
    fg_iou: float = 0.5,
    match_invalid_gt: bool = True,
    means: Sequence[float] = (0, 0, 0, 0),
    stds: Sequence[float] = (0.1, 0.1, 0.2, 0.2),
    batch: int = 0,
    fg_fraction: float = 0.25,
    convention: _Convention = "continuous",
    seed: int = 0,
) -> RcnnTargets:
    """RCNN targets of one chip's proposals (SNIPER's rules)."""
    ...

# ----------------------------------------------------------------------------- NMS

def nms(boxes: _Boxes, scores: _Floats, iou_threshold: float, *,
        max_out: Optional[int] = None, convention: _Convention = "continuous",
        algorithm: Literal["auto", "greedy", "grid", "bitmask"] = "auto",
        threads: int = 0) -> npt.NDArray[np.int64]:
    """Hard NMS (torchvision.ops.nms): kept indices by decreasing score."""
    ...

def soft_nms(boxes: _Boxes, scores: _Floats, *,
             method: Literal["gaussian", "linear"] = "gaussian", sigma: float = 0.5,
             iou_threshold: float = 0.3, score_threshold: float = 0.001,
             max_out: Optional[int] = None,
             convention: _Convention = "continuous") -> Tuple[npt.NDArray[np.int64], _Floats]:
    """Soft-NMS: (indices in selection order, their scores at selection)."""
    ...

def batched_nms(boxes: _Boxes, scores: _Floats, classes: _Ints, iou_threshold: float, *,
                max_out: Optional[int] = None, convention: _Convention = "continuous",
                algorithm: Literal["auto", "greedy", "grid", "bitmask"] = "auto",
                ) -> npt.NDArray[np.int64]:
    """Per-class NMS (torchvision.ops.batched_nms)."""
    ...

class MergedDetections:
    """Merged detections of one image by decreasing score."""

    @property
    def index(self) -> npt.NDArray[np.int64]: ...
    @property
    def boxes(self) -> _Boxes: ...
    @property
    def scores(self) -> _Floats: ...
    @property
    def labels(self) -> npt.NDArray[np.int64]: ...
    @property
    def scales(self) -> npt.NDArray[np.int32]: ...
    def __len__(self) -> int: ...

def merge_multiscale(
    boxes: _Boxes,
    scores: _Floats,
    classes: _Ints,
    scales: _Ints,
    *,
    preset: Literal["default", "sniper_coco"] = "default",
    ranges: Optional[Sequence[Tuple[float, float]]] = None,
    sigma: Optional[float] = None,
    score_threshold: Optional[float] = None,
    max_per_image: Optional[int] = None,
    convention: Optional[_Convention] = None,
    sniper_compatible: Optional[bool] = None,
) -> MergedDetections:
    """SNIPER's multi-scale merge of one image (valid ranges, per-class Gaussian Soft-NMS,
    top-k); options not given come from the preset."""
    ...

# ----------------------------------------------------------------------------- COCO evaluation

COCO_STAT_NAMES: Tuple[str, ...]

class CocoGroundTruth:
    """A COCO instances file read once."""

    def __init__(self, path: _Path) -> None: ...
    @property
    def source(self) -> str: ...
    @property
    def num_images(self) -> int: ...
    @property
    def num_boxes(self) -> int: ...
    @property
    def num_crowd(self) -> int: ...
    @property
    def image_ids(self) -> npt.NDArray[np.int64]: ...
    @property
    def categories(self) -> Dict[int, str]: ...

class CocoEvalResult:
    """The 12 COCO numbers (r.AP, r["AP50"], r.as_dict(), r.stats), counts, per-category
    results and, with keep_curves, the precision / recall arrays."""

    AP: float
    AP50: float
    AP75: float
    APs: float
    APm: float
    APl: float
    AR1: float
    AR10: float
    AR100: float
    ARs: float
    ARm: float
    ARl: float
    @property
    def stats(self) -> Tuple[float, ...]: ...
    def as_dict(self) -> Dict[str, float]: ...
    def __getitem__(self, name: str) -> float: ...
    @property
    def images(self) -> int: ...
    @property
    def gt_boxes(self) -> int: ...
    @property
    def crowd_boxes(self) -> int: ...
    @property
    def detections(self) -> int: ...
    @property
    def categories(self) -> List[Dict[str, Any]]: ...
    @property
    def precision(self) -> Optional[npt.NDArray[np.float64]]: ...
    @property
    def recall(self) -> Optional[npt.NDArray[np.float64]]: ...
    def summary(self) -> str:
        """The 12 lines `snip-chips eval` prints."""
        ...
    def to_json(self) -> str:
        """The JSON `snip-chips eval --json` prints."""
        ...

_PerImage = Tuple[_Boxes, _Floats, _Ints]

def evaluate_coco(
    annotations: Union[_Path, CocoGroundTruth],
    detections: Union[Mapping[int, _PerImage], Iterable[Tuple[int, _Boxes, _Floats, _Ints]]],
    *,
    box_format: Literal["xyxy", "xywh"] = "xyxy",
    keep_curves: bool = False,
) -> CocoEvalResult:
    """COCO bbox evaluation of per-image NumPy detections (pycocotools' rules)."""
    ...

def evaluate_coco_file(annotations: Union[_Path, CocoGroundTruth], results: _Path, *,
                       keep_curves: bool = False) -> CocoEvalResult:
    """COCO bbox evaluation of a results file: the numbers `snip-chips eval` prints."""
    ...
