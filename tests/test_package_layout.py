"""The package's shape: imports go down the layers docs/architecture.md lists, without cycles;
the parse-time modules need only the standard library; drawing tables needs no TensorFlow; files
and functions stay small enough to read."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "workflow" / "scripts" / "nucleiseg"
ARCHITECTURE = REPO / "docs" / "architecture.md"
MAX_FILE_LINES = 350
MAX_FUNCTION_LINES = 60
# What common.smk imports at parse time: Snakemake may run without NumPy on a cluster.
PARSE_TIME = ("batches", "chunks", "config_keys", "errors", "inference", "modelconfig",
              "modelfolder", "modelsource", "run_end")


def documented_layers() -> dict[str, int]:
    """module -> layer number (0 lowest), from the table between the `layers` markers."""
    text = ARCHITECTURE.read_text()
    block = text.split("<!-- layers:start -->")[1].split("<!-- layers:end -->")[0]
    layers = {}
    rows = [line for line in block.splitlines() if line.startswith("| ") and "`" in line]
    for number, row in enumerate(rows):
        for module in re.findall(r"`([a-z_]+)`", row.split("|")[2]):
            assert module not in layers, f"{module} is in two layers"
            layers[module] = number
    return layers


def package_modules() -> dict[str, list[Path]]:
    """Top-level module name -> its files (a subpackage's files all count as the subpackage)."""
    modules: dict[str, list[Path]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts == ("__init__",):
            continue
        modules.setdefault(parts[0], []).append(path)
    return modules


def imports_of(files: list[Path]) -> set[str]:
    """The package modules these files import (relative imports, lazy ones included)."""
    found = set()
    for path in files:
        depth = len(path.relative_to(PACKAGE).parts) - 1  # 0 for a module, 1 in a subpackage
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                if node.level - 1 < depth:  # within its own subpackage
                    continue
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
    return found - {"__version__"}


MODULES = package_modules()
GRAPH = {name: imports_of(files) - {name} for name, files in MODULES.items()}


def test_every_module_is_in_one_documented_layer():
    layers = documented_layers()
    assert sorted(set(MODULES) - set(layers)) == [], "modules missing from architecture.md"
    assert sorted(set(layers) - set(MODULES)) == [], "architecture.md lists modules that are gone"


def test_imports_go_down_the_layers():
    layers = documented_layers()
    upward = sorted(f"{module} ({layers[module]}) imports {target} ({layers[target]})"
                    for module, targets in GRAPH.items() for target in targets
                    if layers[target] > layers[module])
    assert upward == []


def test_no_import_cycles():
    state: dict[str, str] = {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            assert state.get(target) != "open", " -> ".join([*path, module, target])
            if target not in state:
                visit(target, [*path, module])
        state[module] = "done"

    for module in GRAPH:
        if module not in state:
            visit(module, [])


def _loaded_after(imports: str) -> set[str]:
    code = f"import sys; {imports}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, check=True,
                         capture_output=True, text=True).stdout
    return {name.split(".")[0] for name in out.split()}


def test_parse_time_modules_need_only_the_standard_library():
    loaded = _loaded_after("; ".join(f"import nucleiseg.{m}" for m in PARSE_TIME))
    assert not loaded & {"numpy", "pandas", "scipy", "skimage", "tifffile", "tensorflow", "keras"}


@pytest.mark.parametrize("module", ["report", "measure", "tables"])
def test_tables_and_measurements_import_without_tensorflow(module):
    assert not _loaded_after(f"import nucleiseg.{module}") & {"tensorflow", "keras"}


def test_files_and_functions_stay_small():
    too_long = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if text.count("\n") > MAX_FILE_LINES:
            too_long.append(f"{path.relative_to(PACKAGE)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: "
                                    f"{length} lines")
    assert too_long == []
