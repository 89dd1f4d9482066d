"""Shared fixtures of snip's pytest suite (run through CTest: python/CMakeLists.txt sets
PYTHONPATH to the package in the build tree and the paths below)."""

import os
import pathlib

import pytest


def _require_data() -> bool:
    return os.environ.get("SNIP_REQUIRE_DATA", "") not in ("", "0")


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    """The real data folder (../shared/data): skips when absent, fails under SNIP_REQUIRE_DATA."""
    d = pathlib.Path(os.environ.get("SNIP_DATA_DIR", ""))
    if not str(d) or not (d / "coco128").is_dir():
        msg = f"[skip] real data not found at '{d}' (set SNIP_DATA_DIR)"
        if _require_data():
            pytest.fail(msg + " and SNIP_REQUIRE_DATA is set")
        pytest.skip(msg)
    return d


@pytest.fixture(scope="session")
def coco128(data_dir: pathlib.Path) -> pathlib.Path:
    """coco128's folder: annotations and images."""
    return data_dir / "coco128"


@pytest.fixture(scope="session")
def snip_chips() -> str:
    """The snip-chips program built beside the package (for cross-checks with the CLI)."""
    p = os.environ.get("SNIP_CHIPS", "")
    if not p or not os.path.exists(p):
        pytest.skip("[skip] snip-chips not built (SNIP_BUILD_APPS is OFF)")
    return p
