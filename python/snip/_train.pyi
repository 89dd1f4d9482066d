"""snip's LibTorch trainer library (snip::trainer) from Python: the embedded synthetic
detection dataset."""

import os
from typing import Tuple, Union

from ._chips import Error as Error

#: The synthetic classes, category id k + 1 for entry k: disc, square, triangle, diamond,
#: cross, ring.
synthetic_class_names: Tuple[str, ...]

def write_synthetic(
    folder: Union[str, os.PathLike[str]],
    images: int = 64,
    seed: int = 1,
    classes: int = 3,
    min_side: int = 320,
    max_side: int = 640,
    min_objects: int = 1,
    max_objects: int = 6,
    min_object: float = 8.0,
    max_object_fraction: float = 0.6,
    crowd_fraction: float = 0.0,
) -> str:
    """Generates snip's synthetic multi-scale detection set and writes it to ``folder``
    (created when missing): synth_000001.png, ... and annotations.json (COCO, category ids
    1..classes). Deterministic: the same arguments give the same bytes. Releases the GIL.
    Returns the path of annotations.json; raises snip.Error naming the option or path."""
    ...
