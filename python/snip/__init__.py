"""snip: SNIP/SNIPER multi-scale training from Python.

The chip layer (configs, planning, negative chips, chip ground truth, chip pixels, pixel
reports, tune) comes from ``snip._chips`` and the detection layer (anchors, RPN/RCNN
targets, box coding, NMS, COCO evaluation) from ``snip._det``; both work on NumPy arrays
without copying them. ``import snip.torch`` registers ``torch.ops.snip.*`` and gives
``snip.torch.ChipDataset``.

Errors on bad input raise ``snip.Error`` (a ``ValueError``) with the library's message,
which names the file, field and value.
"""

from ._chips import *  # noqa: F401,F403
from ._chips import Error, __version__  # noqa: F401
from ._det import *  # noqa: F401,F403
