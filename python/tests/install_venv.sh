#!/usr/bin/env bash
# The README's Python install, checked: a virtual environment over the system's packages
# (torch, torchvision, numpy from Debian), the package installed into it by CMake's
# `python` component, and imported from outside the source and build trees.
#   install_venv.sh PYTHON BUILD_DIR WORK_DIR
set -euo pipefail
py=$1 build=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
"$py" -m venv --system-site-packages "$work/venv"
cmake --install "$build" --component python --prefix "$work/venv" > "$work/install.log"
cd "$work"
"$work/venv/bin/python" - "$work/venv" <<'PY'
import pathlib, sys
venv = pathlib.Path(sys.argv[1]).resolve()
import numpy as np
import snip
where = pathlib.Path(snip.__file__).resolve()
assert venv in where.parents, f"snip imported from {where}, not from the environment {venv}"
cfg = snip.PlanConfig("default")
plan = snip.plan_image(cfg, 640, 480, np.array([[10, 10, 60, 50], [300, 200, 400, 420]], dtype=np.float32))
assert len(plan.positives) >= 1, plan
try:
    import snip.torch  # noqa: F401
    import torch
    assert hasattr(torch.ops.snip, "roi_align")
    print(f"snip {snip.__version__} in {where.parent}: {len(plan.positives)} chips; torch.ops.snip loaded")
except ImportError as e:
    print(f"snip {snip.__version__} in {where.parent}: {len(plan.positives)} chips; snip.torch not built ({e})")
PY
