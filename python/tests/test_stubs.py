"""Every public name of the compiled modules has a type stub and a docstring that says more
than pybind11's signature line, and the package re-exports the chip and detection layers."""

import ast
import importlib
import pathlib

import pytest

import snip

# module -> (classes whose members are not checked, least number of documented callables)
MODULES = {"_chips": (("Error", "GtState"), 150), "_det": (("Error",), 60), "_train": (("Error",), 1)}


def stubbed_names(module) -> set:
    stub = pathlib.Path(module.__file__).with_name(module.__name__.rsplit(".", 1)[1] + ".pyi")
    names = set()
    for node in ast.parse(stub.read_text()).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom) and node.module == "_chips":
            names.update(a.asname or a.name for a in node.names)
    return {n for n in names if not n.startswith("_")}


def described(f) -> bool:
    """Text beyond pybind11's signature line."""
    d = (f.__doc__ or "").strip()
    first, _, rest = d.partition("\n")
    return len((rest if "(" in first and "->" in first else d).strip()) > 10


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_name_has_a_stub_and_a_docstring(name):
    try:
        module = importlib.import_module(f"snip.{name}")
    except ImportError as e:  # snip._train exists only with LibTorch
        pytest.skip(f"[skip] snip.{name} not built: {e}")
    skip_members, least = MODULES[name]
    names = {n for n in dir(module) if not n.startswith("_")}
    assert names == stubbed_names(module)
    checked = 0
    for n in names:
        obj = getattr(module, n)
        if callable(obj):
            assert described(obj), n
            checked += 1
        if isinstance(obj, type) and n not in skip_members:
            for k, v in vars(obj).items():
                if not k.startswith("_") or k in ("__init__", "__len__", "__iter__", "__getitem__"):
                    assert described(v if isinstance(v, property) else getattr(obj, k)), (n, k)
                    checked += 1
    assert checked >= least
    if name != "_train":  # the chip and detection layers are the package's namespace
        assert all(getattr(snip, n) is getattr(module, n) for n in names)
