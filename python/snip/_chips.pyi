"""snip's chip layer: presets and configs, planning, negative chips, chip ground truth, chip
pixels, pixel reports and tune.

Boxes are xyxy in ORIGINAL-image pixels, continuous convention (COCO [x, y, w, h] ->
[x, y, x + w, y + h]). Box arguments are (N, 4) float32 or float64 NumPy arrays of any
strides, read in place (never copied or cast); other dtypes or shapes raise ValueError
naming the argument. Arrays handed out by records, proposals, chips and plans are
read-only views on the C++ memory, kept alive by their owner. The library's checks raise
snip.Error (a ValueError) with a message naming the file, field and value."""

import enum
import os
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

_Boxes = npt.NDArray[np.floating[Any]]
_Flags = Union[npt.NDArray[Any], Sequence[bool], Sequence[int], None]
_Ints = Union[npt.NDArray[np.integer[Any]], Sequence[int], None]
_Scale = Union[str, float, Tuple[int, int]]
_Range = Union[Tuple[float, float], str]
_Rect = Tuple[int, int, int, int]
_Progress = Optional[Callable[[int, int], object]]

__version__: str

class Error(ValueError):
    """Bad input or an impossible request; the message names the file, field and value."""

# ----------------------------------------------------------------------------- config

class PlanConfig:
    """Everything that decides a chip plan (snip::plan_config).

    Fields are attributes (writes check the field's type and form; validate() and every
    planning call check the whole). Scales are strings as the chips JSON writes them: '3',
    '1.667', '512px', '(1400,2000)'; ranges are (lo, hi) in original px, -1 = open.
    Equality compares the JSON forms; picklable."""

    name: str
    scales: List[str]
    ranges: List[Tuple[float, float]]
    valid_ranges: List[Tuple[float, float]]
    chip_size: int
    stride: int
    stride_min: int
    stride_max: int
    convention: str  # 'continuous' | 'inclusive'
    layout: str  # 'aligned' | 'sniper'
    finest_min_side: float
    max_side_rule: bool
    negatives_per_image: int
    min_proposals_finest: int
    min_proposals_other: int
    @property
    def num_scales(self) -> int:
        """Number of scales."""
    @property
    def draws_stride(self) -> bool:
        """True when the stride is drawn per epoch (stride_min/stride_max set)."""
    @property
    def max_stride(self) -> int:
        """The largest stride the config plans with."""
    def __init__(self, preset: str = "default", **overrides: Any) -> None:
        """A preset ('default', 'sniper_coco') with keyword overrides of any field, validated.
        An unknown keyword raises TypeError; a fixed `stride` clears the preset's draw unless
        stride_min or stride_max is given too."""
    @staticmethod
    def preset(name: str) -> PlanConfig:
        """The preset of that name (snip.Error for an unknown one)."""
    @staticmethod
    def presets() -> List[str]:
        """The names of the presets."""
    @staticmethod
    def from_json(path: str) -> PlanConfig:
        """Reads a JSON config with the reader of `snip-chips plan --config FILE`."""
    @staticmethod
    def from_dict(d: Mapping[str, Any], source: str = "dict") -> PlanConfig:
        """A config from its JSON form as a dict (to_dict(), a chips file's "config")."""
    def to_dict(self) -> Dict[str, Any]:
        """The JSON form (snip::io::config_to_json) as a dict."""
    def to_json(self, indent: int = 2) -> str:
        """The JSON form as text (indent < 0: compact)."""
    def save(self, path: str) -> None:
        """Writes the JSON form to `path`, a file `snip-chips plan --config` reads."""
    def validate(self) -> None:
        """Raises snip.Error naming the field and value unless the fields fit together."""
    def epoch_stride(self, seed: int = 0, epoch: int = 0) -> int:
        """The candidate stride of an epoch (the seeded draw when the config draws)."""
    def scaled_sizes(self, width: int, height: int) -> List[Tuple[float, int, int]]:
        """(factor, width, height) of an image at every scale."""
    def copy(self) -> PlanConfig:
        """An independent copy."""
    def __eq__(self, other: object) -> bool: ...

def epoch_stride(cfg: PlanConfig, seed: int = 0, epoch: int = 0) -> int:
    """The candidate stride of an epoch (PlanConfig.epoch_stride)."""

# ----------------------------------------------------------------------------- data

class ImageRecord:
    """One image and its ground truth; the arrays are read-only views (no copy)."""

    def __init__(self, id: int, width: int, height: int, boxes: Optional[Union[_Boxes, Sequence[Sequence[float]]]] = None,
                 categories: _Ints = None, crowd: _Flags = None, ann_ids: _Ints = None,
                 areas: Optional[Union[npt.NDArray[Any], Sequence[float]]] = None, file_name: str = "") -> None:
        """An image of your own: boxes copied in; categories default 1, ann_ids 1..N."""
    @property
    def id(self) -> int:
        """The image's id."""
    @property
    def file_name(self) -> str:
        """The image's file name."""
    @property
    def width(self) -> int:
        """Width, original px."""
    @property
    def height(self) -> int:
        """Height, original px."""
    @property
    def num_boxes(self) -> int:
        """Number of boxes."""
    @property
    def boxes(self) -> npt.NDArray[np.float64]:
        """(N, 4) xyxy boxes, original px (read-only view)."""
    @property
    def categories(self) -> npt.NDArray[np.int32]:
        """(N,) category ids (read-only view)."""
    @property
    def crowd(self) -> npt.NDArray[np.bool_]:
        """(N,) crowd / ignore flags (read-only view)."""
    @property
    def ann_ids(self) -> npt.NDArray[np.int64]:
        """(N,) annotation ids (read-only view)."""
    @property
    def areas(self) -> npt.NDArray[np.float64]:
        """(N,) COCO areas (< 0: none), or empty (read-only view)."""
    def area(self, k: int) -> float:
        """The area of box k for COCO's area ranges."""

class LoadReport:
    """What read_coco loaded: counts and at most ~20 warning lines."""

    @property
    def images(self) -> int:
        """Images read."""
    @property
    def boxes(self) -> int:
        """Annotations read."""
    @property
    def crowd(self) -> int:
        """Crowd annotations."""
    @property
    def degenerate(self) -> int:
        """Boxes with w == 0 or h == 0 (kept)."""
    @property
    def clipped(self) -> int:
        """Boxes clipped to the image within the border tolerance."""
    @property
    def warnings(self) -> List[str]:
        """Warning lines naming file, field and value."""

class Dataset:
    """A detection dataset: images in order, categories, source. Immutable; picklable."""

    def __init__(self, images: Sequence[ImageRecord] = ..., categories: Optional[Sequence[Any]] = None,
                 source: str = "") -> None:
        """A dataset of your own: records (copied in) and (id, name) categories."""
    def __len__(self) -> int:
        """The number of images."""
    @overload
    def __getitem__(self, index: int) -> ImageRecord: ...
    @overload
    def __getitem__(self, index: slice) -> Dataset: ...
    def __iter__(self) -> Iterator[ImageRecord]:
        """Iterates over the images."""
    @property
    def images(self) -> List[ImageRecord]:
        """The records (sharing the dataset's memory)."""
    @property
    def categories(self) -> List[Tuple[int, str]]:
        """Categories as (id, name) pairs."""
    @property
    def source(self) -> str:
        """The file it was read from, or the source given."""
    @property
    def num_boxes(self) -> int:
        """Boxes of all images."""
    @property
    def load_report(self) -> Optional[LoadReport]:
        """read_coco's report, or None."""
    def index(self, image_id: int) -> int:
        """The position of the image with this id (KeyError when none)."""
    def write_coco(self, path: str) -> None:
        """Writes COCO instances JSON."""

def read_coco(path: str, border_tolerance: float = 1.0) -> Dataset:
    """Reads COCO instances JSON (boxes xyxy, continuous, original px); GIL released."""

class ImageProposals:
    """Proposals of one image: boxes (N, 4) float64 and scores (N,) float32, read-only views."""

    def __init__(self, boxes: Union[_Boxes, Sequence[Sequence[float]]],
                 scores: Optional[Union[npt.NDArray[Any], Sequence[float]]] = None) -> None:
        """Boxes copied in; scores default 1.0."""
    def __len__(self) -> int:
        """The number of proposals."""
    @property
    def boxes(self) -> npt.NDArray[np.float64]:
        """(N, 4) xyxy, original px (read-only view)."""
    @property
    def scores(self) -> npt.NDArray[np.float32]:
        """(N,) scores (read-only view)."""

class Proposals:
    """Proposals of every image of a dataset, in its order. Immutable; picklable."""

    def __init__(self, per_image: Sequence[Union[ImageProposals, Tuple[Any, Any], _Boxes]]) -> None:
        """One entry per image: ImageProposals, (boxes, scores) or boxes."""
    def __len__(self) -> int:
        """The number of images."""
    def __getitem__(self, index: int) -> ImageProposals:
        """The proposals of image `index`."""
    def __iter__(self) -> Iterator[ImageProposals]:
        """Iterates over the images' proposals."""
    @property
    def num_boxes(self) -> int:
        """Proposals of all images."""

def read_proposals(path: str, dataset: Dataset, border_tolerance: float = 1.0) -> Proposals:
    """Reads proposals in COCO results format, one ImageProposals per image of `dataset`."""

# ----------------------------------------------------------------------------- plans

class Chip:
    """One chip: scale index, factor, rect (x1, y1, x2, y2) in scaled px, and the int32
    ground-truth (boxes) and proposal (proposals) indices it holds (read-only views)."""

    def __init__(self, scale: int, factor: float, rect: Sequence[int], boxes: _Ints = None,
                 proposals: _Ints = None) -> None:
        """A chip made by hand."""
    @property
    def scale(self) -> int:
        """Scale index."""
    @property
    def factor(self) -> float:
        """Resize factor of its scale."""
    @property
    def rect(self) -> _Rect:
        """(x1, y1, x2, y2), scaled px."""
    @property
    def boxes(self) -> npt.NDArray[np.int32]:
        """Ground-truth indices assigned to the chip."""
    @property
    def proposals(self) -> npt.NDArray[np.int32]:
        """Proposal indices a negative chip counted."""
    def original(self) -> Tuple[float, float, float, float]:
        """The chip in original px (rect / factor)."""
    def __eq__(self, other: object) -> bool: ...

class ScalePlan:
    """One scale of one image's plan."""

    @property
    def factor(self) -> float:
        """Resize factor."""
    @property
    def width(self) -> int:
        """Scaled width, px."""
    @property
    def height(self) -> int:
        """Scaled height, px."""
    @property
    def valid(self) -> npt.NDArray[np.int32]:
        """Boxes valid at this scale."""
    @property
    def uncoverable(self) -> npt.NDArray[np.int32]:
        """Valid boxes no candidate chip can contain."""

class ImagePlan:
    """The positive chips of one image at every scale."""

    @property
    def scales(self) -> List[ScalePlan]:
        """One ScalePlan per scale."""
    @property
    def positives(self) -> List[Chip]:
        """The positive chips."""
    @property
    def outside(self) -> npt.NDArray[np.int32]:
        """Boxes entirely outside the image."""
    @property
    def valid_nowhere(self) -> npt.NDArray[np.int32]:
        """Boxes valid at no scale."""

class ImageChipsPlan:
    """One image's chips for one epoch."""

    @property
    def plan(self) -> ImagePlan:
        """The positive plan."""
    @property
    def positives(self) -> List[Chip]:
        """plan.positives."""
    @property
    def negatives(self) -> List[Chip]:
        """Every negative chip mined."""
    @property
    def sampled(self) -> npt.NDArray[np.int32]:
        """Indices into negatives sampled this epoch."""
    def chips(self, negatives: bool = True) -> List[Chip]:
        """The positives, then the sampled negatives: the trainer's order."""

def plan_image(cfg: PlanConfig, width: int, height: int, boxes: _Boxes, crowd: _Flags = None,
               stride: int = 0) -> ImagePlan:
    """Plans the positive chips of one image; boxes of any strides, read in place."""

def plan_dataset(cfg: PlanConfig, dataset: Dataset, proposals: Optional[Proposals] = None, seed: int = 0,
                 epoch: int = 0, threads: int = 0, mine_ground_truth: bool = True,
                 progress: _Progress = None) -> List[ImageChipsPlan]:
    """Plans one epoch of a dataset (positives, mined and sampled negatives); GIL released."""

def mine_negatives(cfg: PlanConfig, width: int, height: int, plan: ImagePlan, proposals: _Boxes,
                   gt: Optional[_Boxes] = None, stride: int = 0) -> List[Chip]:
    """Negative chips of one image, before sampling."""

def sample_negatives(available: int, count: int, seed: int, epoch: int, image_id: int) -> npt.NDArray[np.int32]:
    """This epoch's negative chips of one image: increasing indices."""

# ----------------------------------------------------------------------------- ground truth

class GtState(enum.IntEnum):
    """What a ground-truth box is to the detector trained on a chip."""

    VALID = 0
    INVALID = 1
    CROWD = 2

GT_VALID: int
GT_INVALID: int
GT_CROWD: int

class ChipGT:
    """The ground truth of one chip: boxes (K, 4) float32 in chip px, index (K,) int32,
    state (K,) uint8 GtState values."""

    @property
    def boxes(self) -> npt.NDArray[np.float32]:
        """(K, 4) boxes in chip pixels."""
    @property
    def index(self) -> npt.NDArray[np.int32]:
        """(K,) index of each box in the image."""
    @property
    def state(self) -> npt.NDArray[np.uint8]:
        """(K,) GtState of each box."""
    def __len__(self) -> int:
        """The number of boxes."""

def assign_chip(cfg: PlanConfig, chip: Chip, width: int, height: int, boxes: _Boxes, crowd: _Flags = None,
                min_size: float = 10.0) -> ChipGT:
    """The image's boxes in the chip's frame, with their states."""

# ----------------------------------------------------------------------------- pixels

def read_image(path: str, max_pixels: int = ...) -> npt.NDArray[np.uint8]:
    """Decodes a JPEG, PNG or BMP file to an (H, W, 3) uint8 RGB array."""

class ChipGeometry:
    """Where a chip's pixels come from: content width, height and the crop in original px."""

    @property
    def width(self) -> int:
        """Content width in the chip, px."""
    @property
    def height(self) -> int:
        """Content height in the chip, px."""
    @property
    def crop(self) -> Tuple[float, float, float, float]:
        """The content's region in original px."""

@overload
def chip_crop(chip: Chip, chip_size: int, convention: str = "continuous") -> ChipGeometry:
    """The geometry of a chip."""
@overload
def chip_crop(chip: Chip, cfg: PlanConfig) -> ChipGeometry: ...
def cut_chip(image: npt.NDArray[Any], cfg: PlanConfig, chip: Chip, flip: bool = False,
             mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
             out: Optional[npt.NDArray[Any]] = None) -> Tuple[npt.NDArray[Any], ChipGeometry]:
    """A chip's pixels from the original (H, W, C) image, read in place: a (C, S, S) float32
    array (or `out`: (C, S, S) / (S, S, C), float32 or uint8) and the geometry."""

class PixelBudget:
    """Pixels of one image: chips as cut, chips padded, single scale, pyramid."""

    @property
    def chips(self) -> float:
        """Chip areas as cut, scaled px."""
    @property
    def chips_padded(self) -> float:
        """Chips x chip_size^2."""
    @property
    def single_scale(self) -> float:
        """Single-scale pixels (800 x 1333)."""
    @property
    def pyramid(self) -> float:
        """Every scale, whole."""
    def to_dict(self) -> Dict[str, float]:
        """The four numbers as a dict."""

def count_pixels(cfg: PlanConfig, width: int, height: int, chips: Sequence[Chip], single_short: int = 800,
                 single_max: int = 1333) -> PixelBudget:
    """Pixel accounting of one image for a list of chips."""

@overload
def report(dataset: Dataset, plans: Sequence[ImageChipsPlan], cfg: PlanConfig, seed: int = 0,
           epoch: int = 0) -> Dict[str, Any]:
    """The dict of `snip-chips report --json` for one planned epoch."""
@overload
def report(chips_file: ChipsFile) -> Dict[str, Any]: ...
@overload
def report_text(dataset: Dataset, plans: Sequence[ImageChipsPlan], cfg: PlanConfig, seed: int = 0,
                epoch: int = 0) -> str:
    """The tables `snip-chips report` prints for one planned epoch."""
@overload
def report_text(chips_file: ChipsFile) -> str: ...

# ----------------------------------------------------------------------------- chips files

class ScaleEntry:
    """One scale of an image in a chips file."""

    @property
    def factor(self) -> float:
        """Resize factor."""
    @property
    def width(self) -> int:
        """Scaled width, px."""
    @property
    def height(self) -> int:
        """Scaled height, px."""
    @property
    def stride(self) -> int:
        """Candidate stride of the epoch."""
    @property
    def valid_ids(self) -> List[int]:
        """Annotation ids valid at this scale."""
    @property
    def uncoverable_ids(self) -> List[int]:
        """Annotation ids valid but uncoverable."""

class ChipEntry:
    """One chip of an image in a chips file."""

    @property
    def scale(self) -> int:
        """Scale index."""
    @property
    def negative(self) -> bool:
        """True for a negative chip."""
    @property
    def box(self) -> Tuple[float, float, float, float]:
        """Original px."""
    @property
    def rect(self) -> _Rect:
        """Scaled px."""
    @property
    def ann_ids(self) -> List[int]:
        """Annotation ids assigned to the chip."""
    @property
    def proposals(self) -> int:
        """Negatives: proposals counted."""
    @property
    def proposal_ids(self) -> List[int]:
        """Negatives: proposal indices."""
    @property
    def sampled(self) -> bool:
        """Negatives: used this epoch."""

class ImageChips:
    """One image of a chips file."""

    @property
    def id(self) -> int:
        """Image id."""
    @property
    def file_name(self) -> str:
        """Image file name."""
    @property
    def width(self) -> int:
        """Width, original px."""
    @property
    def height(self) -> int:
        """Height, original px."""
    @property
    def scales(self) -> List[ScaleEntry]:
        """One entry per scale."""
    @property
    def chips(self) -> List[ChipEntry]:
        """Positives, then negatives."""

class ChipsFile:
    """The chips JSON of one planned epoch ("snip-chips/2")."""

    @property
    def version(self) -> int:
        """Format version."""
    @property
    def annotations(self) -> str:
        """The annotation file, as written."""
    @property
    def proposals(self) -> str:
        """The proposals file, as written."""
    @property
    def config(self) -> PlanConfig:
        """The config (a copy)."""
    @property
    def seed(self) -> int:
        """Seed."""
    @property
    def epoch(self) -> int:
        """Epoch."""
    @property
    def images(self) -> List[ImageChips]:
        """One entry per image."""
    def __len__(self) -> int:
        """The number of images."""
    def to_dict(self) -> Dict[str, Any]:
        """The chips JSON as a dict."""
    def write(self, path: str, indent: int = -1) -> None:
        """Writes the chips JSON."""
    def validate(self, dataset: Dataset, source: str = "chips file") -> None:
        """Checks the file against its annotations and config."""

def make_chips_file(dataset: Dataset, plans: Sequence[ImageChipsPlan], cfg: PlanConfig, seed: int = 0,
                    epoch: int = 0, annotations: str = "", proposals: str = "") -> ChipsFile:
    """The chips file of one planned epoch."""

def write_chips(path: str, dataset: Dataset, plans: Sequence[ImageChipsPlan], cfg: PlanConfig, seed: int = 0,
                epoch: int = 0, annotations: str = "", proposals: str = "", indent: int = -1) -> None:
    """Writes the chips JSON `snip-chips plan --out` writes."""

def read_chips(path: str, dataset: Optional[Dataset] = None) -> ChipsFile:
    """Reads a chips JSON (checked against `dataset` when given)."""

# ----------------------------------------------------------------------------- tune

class TuneOptions:
    """Options of tune(); keyword arguments of the constructor set any field."""

    cost: str  # 'padded' | 'cut'
    band: Tuple[float, float]
    max_upscale: float
    min_factor: float
    grid_points: int
    long_side_scale: bool
    min_chip_fill: float
    min_scales: int
    max_scales: int
    overlap: float
    min_valid_share: float
    good_tolerance: float
    pixel_budget: Optional[float]
    sample_images: int
    seed: int
    chip_size: int
    stride: int
    finest_min_side: float
    threads: int
    def __init__(self, **fields: Any) -> None:
        """The defaults with those fields set, validated."""
    def validate(self) -> None:
        """Raises snip.Error naming the bad value."""

class ConfigMetrics:
    """What a configuration does to a dataset."""

    @property
    def images(self) -> int:
        """Images measured."""
    @property
    def boxes(self) -> int:
        """Non-crowd boxes with positive area."""
    @property
    def valid(self) -> int:
        """Boxes valid at one scale at least."""
    @property
    def good(self) -> int:
        """Boxes valid where their scaled size is in the band."""
    @property
    def chips(self) -> float:
        """Positive chips."""
    @property
    def chip_pixels(self) -> float:
        """Chip pixels as cut."""
    @property
    def padded_pixels(self) -> float:
        """Chips x chip_size^2."""
    @property
    def single_pixels(self) -> float:
        """Single-scale pixels."""
    @property
    def per_scale_valid(self) -> List[int]:
        """Boxes valid at each scale."""
    @property
    def valid_share(self) -> float:
        """valid / boxes."""
    @property
    def good_share(self) -> float:
        """good / boxes."""
    @property
    def chips_per_image(self) -> float:
        """Positive chips per image."""
    @property
    def pixels_per_image(self) -> float:
        """Chip pixels as cut per image."""
    @property
    def padded_per_image(self) -> float:
        """Padded chip pixels per image."""
    @property
    def ratio_to_single_scale(self) -> float:
        """Chip pixels over single-scale pixels."""

class TuneCandidate:
    """One evaluated configuration."""

    @property
    def cfg(self) -> PlanConfig:
        """The configuration."""
    @property
    def metrics(self) -> ConfigMetrics:
        """Its metrics."""
    def to_dict(self) -> Dict[str, Any]:
        """The form of `snip-chips tune --json`."""

class TuneResult:
    """What tune() found."""

    @property
    def evaluated(self) -> List[TuneCandidate]:
        """Every configuration tried (sample)."""
    @property
    def best_per_count(self) -> List[TuneCandidate]:
        """The choice with k scales, all images."""
    @property
    def chosen(self) -> TuneCandidate:
        """The proposal, all images."""
    @property
    def reference(self) -> Optional[TuneCandidate]:
        """The reference configuration, or None."""
    @property
    def target_good(self) -> float:
        """Good share the choice had to reach."""
    @property
    def valid_floor(self) -> float:
        """Valid share the choice had to reach."""
    @property
    def sample_images(self) -> int:
        """Images in the search sample."""
    @property
    def rule(self) -> str:
        """How the choice was made."""
    def to_dict(self) -> Dict[str, Any]:
        """The result fields of `snip-chips tune --json`."""

def tune(dataset: Dataset, options: Optional[TuneOptions] = None, reference: Union[str, PlanConfig, None] = "sniper_coco",
         progress: _Progress = None, **fields: Any) -> TuneResult:
    """Searches scale sets and valid ranges for a dataset (what `snip-chips tune` runs)."""

def evaluate_config(cfg: PlanConfig, dataset: Dataset, band: Tuple[float, float] = (32.0, 150.0),
                    subset: Sequence[int] = (), threads: int = 0) -> ConfigMetrics:
    """Measures a configuration on a dataset (or the images `subset`)."""

def dataset_warnings(cfg: PlanConfig, dataset: Dataset, min_fill: float = 0.5, box_counts: bool = True) -> List[str]:
    """Scales no box is valid at, mostly-padding scales, boxes valid nowhere."""
