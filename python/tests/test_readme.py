"""The README's Python example runs as written (the block after the marker comment)."""

import os
import pathlib
import re
import runpy

import pytest


def test_readme_python_example_runs(tmp_path, capsys):
    readme = pathlib.Path(os.environ.get("SNIP_SOURCE_DIR", pathlib.Path(__file__).parents[2])) / "README.md"
    text = readme.read_text(encoding="utf-8")
    m = re.search(r"<!-- python-readme-example[^>]*-->\s*```python\n(.*?)```", text, re.S)
    if m is None:
        pytest.fail(f"{readme}: no ```python block after the python-readme-example marker")
    script = tmp_path / "readme_example.py"
    script.write_text(m.group(1), encoding="utf-8")
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "PlanConfig(name='sniper_coco'" in out
    assert "['VALID']" in out           # the chip's one ground-truth box, valid at its scale
    assert "positive anchors" in out
