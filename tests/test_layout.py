"""The package's rooms follow the data's path: no module imports one from a room above it."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "tfp_dgbn"

# Lowest first; a module may import from its own room and from any room below it.
ROOMS = [
    {"tfk", "atomic", "validate", "seeds"},
    {"simulate"},
    {"dataset"},
    {"model"},
    {"fit"},
    {"predict", "export"},
    {"plots"},
    {"evaluate"},
    {"tasks"},
    {"studies"},
    {"cli", "notebook_runner"},
]


def _room(module):
    """Room index of a dotted module name inside tfp_dgbn (None for the package root, the API facade)."""
    parts = module.split(".")
    if parts[0] != "tfp_dgbn" or len(parts) == 1:
        return None
    for i, room in enumerate(ROOMS):
        if parts[1] in room:
            return i
    raise AssertionError(f"{module} is in no room of tests/test_layout.py: place it")


def _imports(path):
    """Every tfp_dgbn module imported by the file (module level and inside functions)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tfp_dgbn"):
            yield from (f"{node.module}.{a.name}" if node.module == "tfp_dgbn" else node.module for a in node.names)
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("tfp_dgbn"))


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_room_above_its_own(path):
    name = ".".join(("tfp_dgbn",) + path.relative_to(PACKAGE).with_suffix("").parts)
    own = _room(name)
    upward = [m for m in _imports(path) if (_room(m) or 0) > own]
    assert not upward, f"{name} (room {own}) imports {upward} from a room above it"


def test_the_room_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from tfp_dgbn.evaluate.report import write_report\n")
    assert [m for m in _imports(bad) if _room(m) > _room("tfp_dgbn.fit.resume")] == ["tfp_dgbn.evaluate.report"]


def test_the_package_root_holds_only_the_core():
    assert sorted(p.stem for p in PACKAGE.glob("*.py")) == [
        "__init__", "atomic", "cli", "export", "notebook_runner", "predict", "seeds", "tfk", "validate"]
