"""The per-rule conda environments (envs/*.yaml, used with `--sdm conda` on clusters) against the
pinned pip requirements and against what each rule's code imports. Static: nothing is installed.

TensorFlow: requirements.txt pins the CPU build (tensorflow-cpu), requirements-gpu.txt the CUDA
one (tensorflow[and-cuda]). envs/tensorflow.yaml pins the CUDA one, exactly as requirements-gpu.txt
does: clusters that use these envs have GPU nodes, and the CUDA build also runs on a node without
a GPU. Its version must be requirements.txt's tensorflow-cpu version.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement

from conftest import REPO

ENVS = sorted((REPO / "envs").glob("*.yaml"))
RULES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
SCRIPTS = REPO / "workflow" / "scripts"
PACKAGE = "nucleiseg"
SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12")  # README: Python 3.10-3.12
CPU_TENSORFLOW, TENSORFLOW = "tensorflow-cpu", "tensorflow"
# The one conda package left unpinned: the installer of the pip: section, not something the
# rules import (conda-forge's python brings a matching one).
UNPINNED_INSTALLER = "pip"
# Needed at run time although no rule imports it: tifffile decodes compressed TIFFs (LZW,
# deflate, JPEG, ...) with imagecodecs; without it such images fail to open.
RUNTIME_EXTRAS = {"tifffile": ["imagecodecs"]}


def normalize(name: str) -> str:
    """Package names compared as pip does (PEP 503): case and -_. runs do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_version(requirement: Requirement) -> str | None:
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
        return specs[0].version
    return None


def read_requirements(path: Path) -> dict[str, Requirement]:
    """normalized name -> requirement, from a pip requirements file (-r lines are not followed)."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            found[normalize(requirement.name)] = requirement
    return found


def read_env(path: Path) -> tuple[dict[str, str], dict[str, Requirement]]:
    """(conda specs: name -> version or "", pip requirements: normalized name -> requirement)."""
    env = yaml.safe_load(path.read_text())
    conda, pip = {}, {}
    for entry in env["dependencies"]:
        if isinstance(entry, dict):
            for line in entry["pip"]:
                requirement = Requirement(line)
                pip[normalize(requirement.name)] = requirement
        else:
            name, _, version = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(=?=\s*(\S+))?", entry).group(1, 2, 3)
            conda[normalize(name)] = version or ""
    return conda, pip


REQUIREMENTS = read_requirements(REPO / "requirements.txt")
GPU_REQUIREMENTS = read_requirements(REPO / "requirements-gpu.txt")


# --- pins ---------------------------------------------------------------------------------------


def test_there_are_envs_and_requirements():
    assert {path.stem for path in ENVS} >= {"data", "tensorflow"}
    assert CPU_TENSORFLOW in REQUIREMENTS and TENSORFLOW in GPU_REQUIREMENTS


@pytest.mark.parametrize("requirements", [REQUIREMENTS, GPU_REQUIREMENTS], ids=["cpu", "gpu"])
def test_requirements_pin_every_package(requirements):
    assert {name: str(r) for name, r in requirements.items() if not pinned_version(r)} == {}


def test_gpu_requirements_match_the_cpu_ones():
    """requirements-gpu.txt is requirements.txt with TensorFlow's CUDA build instead of the CPU one."""
    cpu = {name: pinned_version(r) for name, r in REQUIREMENTS.items() if name != CPU_TENSORFLOW}
    gpu = {name: pinned_version(r) for name, r in GPU_REQUIREMENTS.items() if name != TENSORFLOW}
    assert gpu == cpu
    assert pinned_version(GPU_REQUIREMENTS[TENSORFLOW]) == pinned_version(REQUIREMENTS[CPU_TENSORFLOW])
    assert GPU_REQUIREMENTS[TENSORFLOW].extras == {"and-cuda"}


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.stem)
def test_env_pins_every_package(env):
    conda, pip = read_env(env)
    assert {name: str(r) for name, r in pip.items() if not pinned_version(r)} == {}, (
        f"{env.name}: pin every pip package with == (as requirements.txt does)")
    unpinned = {name for name, version in conda.items() if not version} - {UNPINNED_INSTALLER}
    assert not unpinned, f"{env.name}: conda packages without a version: {sorted(unpinned)}"


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.stem)
def test_env_python_is_a_supported_one(env):
    conda, _ = read_env(env)
    assert "python" in conda, f"{env.name} must pin python"
    assert re.fullmatch(r"3\.\d+(\.\d+)?", conda["python"]), conda["python"]
    assert ".".join(conda["python"].split(".")[:2]) in SUPPORTED_PYTHONS, (
        f"{env.name}: python {conda['python']} is not one the README supports {SUPPORTED_PYTHONS}")


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.stem)
def test_env_pins_match_requirements_txt(env):
    """The same versions as the pip install the tests run on: a cluster runs what was tested."""
    _, pip = read_env(env)
    expected, found = {}, {}
    for name, requirement in pip.items():
        if name == TENSORFLOW:
            expected[name] = (pinned_version(REQUIREMENTS[CPU_TENSORFLOW]), {"and-cuda"})
            found[name] = (pinned_version(requirement), requirement.extras)
            continue
        found[name] = pinned_version(requirement)
        expected[name] = pinned_version(REQUIREMENTS[name]) if name in REQUIREMENTS else (
            "not in requirements.txt")
    assert found == expected
    assert CPU_TENSORFLOW not in pip, f"{env.name}: pin tensorflow[and-cuda], as requirements-gpu.txt"


# --- what the rules import ----------------------------------------------------------------------


def rule_scripts() -> dict[str, tuple[Path, Path | None]]:
    """rule name -> (its script, its conda env or None), from the rule files."""
    rules = {}
    for smk in RULES:
        for block in re.split(r"^(?=rule \w+:)", smk.read_text(), flags=re.MULTILINE)[1:]:
            name = re.match(r"rule (\w+):", block).group(1)
            script = re.search(r"^\s+script:\s*\n\s+\"([^\"]+)\"", block, flags=re.MULTILINE)
            conda = re.search(r"^\s+conda:\s*\n\s+\"([^\"]+)\"", block, flags=re.MULTILINE)
            if script:
                rules[name] = ((smk.parent / script.group(1)).resolve(),
                               (smk.parent / conda.group(1)).resolve() if conda else None)
    return rules


def _module_file(name: str) -> Path | None:
    base = SCRIPTS.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


class ImportScan:
    """Which modules from outside the standard library a rule script can import.

    Its own imports, those of every nucleiseg module they load, and the imports inside functions
    (the package imports TensorFlow, matplotlib, ... lazily) of the functions it can reach:
    a function counts once its name is used (called, passed, looked up as an attribute) by code
    that runs; a class's methods count with the class. Name-based, so it errs on the side of
    counting a function, never of missing one that is named.
    """

    def __init__(self, script: Path):
        self.modules: dict[str, ast.Module] = {}  # loaded nucleiseg modules (and "": the script)
        self.names: set[str] = set()
        self.found: set[str] = set()
        self.scanned: set[int] = set()
        self.packages: dict[str, str] = {}  # module -> the package its relative imports start in
        self._load("", ast.parse(script.read_text(), str(script)), is_package=False)
        while True:  # a newly used name can reach a function that uses more names: to a fixpoint
            reachable = [(module, node) for module, tree in list(self.modules.items())
                         for node in ast.walk(tree)
                         if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                         and node.name in self.names and id(node) not in self.scanned]
            if not reachable:
                break
            for module, node in reachable:
                self.scanned.add(id(node))
                self._scan(module, ast.walk(node))

    def _load(self, module: str, tree: ast.Module, is_package: bool) -> None:
        self.modules[module] = tree
        self.packages[module] = module if is_package else module.rpartition(".")[0]
        for statement in tree.body:  # what runs on import: not function bodies, nor methods
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                nodes = [n for d in statement.decorator_list for n in ast.walk(d)]
            elif isinstance(statement, ast.ClassDef):
                nodes = [n for part in (*statement.decorator_list, *statement.bases,
                                        *[s for s in statement.body if not isinstance(
                                            s, (ast.FunctionDef, ast.AsyncFunctionDef))])
                         for n in ast.walk(part)]
            else:
                nodes = ast.walk(statement)
            self._scan(module, nodes)

    def _scan(self, module: str, nodes) -> None:
        for node in nodes:
            if isinstance(node, ast.Name):
                self.names.add(node.id)
            elif isinstance(node, ast.Attribute):
                self.names.add(node.attr)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self._import(alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = importlib.util.resolve_name("." * node.level + base, self.packages[module])
                self._import(base)
                for alias in node.names:
                    self.names.add(alias.name)  # used under its own name or an `as` alias
                    if _module_file(f"{base}.{alias.name}"):  # `from package import module`
                        self._import(f"{base}.{alias.name}")

    def _import(self, target: str) -> None:
        top = target.partition(".")[0]
        if top != PACKAGE:
            if top not in sys.stdlib_module_names:
                self.found.add(top)
            return
        parts = target.split(".")
        for depth in range(1, len(parts) + 1):  # a module's parent packages are imported first
            name = ".".join(parts[:depth])
            file = _module_file(name)
            if file and name not in self.modules:
                self._load(name, ast.parse(file.read_text(), str(file)), file.name == "__init__.py")


def third_party_imports(script: Path) -> set[str]:
    """Top-level modules from outside the standard library that a rule script can import."""
    return ImportScan(script).found


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distribution(module: str) -> str:
    """The pip package that installs a top-level module (as the tests' environment has it)."""
    names = _packages_distributions().get(module)
    assert names, f"no installed package provides the module {module!r}"
    name = normalize(names[0])
    return TENSORFLOW if name == CPU_TENSORFLOW else name


def dependency_closure(roots: set[str]) -> set[str]:
    """The packages that installing `roots` brings (their requirements, recursively, no extras)."""
    environment = {**default_environment(), "extra": ""}
    closure, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        installed = CPU_TENSORFLOW if name == TENSORFLOW else name
        for line in importlib.metadata.requires(installed) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                todo.append(normalize(requirement.name))
    return closure


RULE_SCRIPTS = rule_scripts()


def test_every_rule_with_a_script_names_an_env():
    assert len(RULE_SCRIPTS) >= 10
    assert {rule: str(env) for rule, (_, env) in RULE_SCRIPTS.items()
            if env is None or env not in ENVS} == {}


def test_the_import_scan_follows_the_package():
    """A check on the scan itself: train_model reaches TensorFlow only through nucleiseg.training
    and its lazy imports, download_dataset reaches kaggle through nucleiseg.download.kaggle
    (imported under another name), and a lazy import in a function never used does not count."""
    assert {"tensorflow", "keras", "numpy", "pandas", "matplotlib"} <= third_party_imports(
        SCRIPTS / "train_model.py")
    assert {"kaggle", "requests", "urllib3"} <= third_party_imports(SCRIPTS / "download_dataset.py")
    # report_batch loads nucleiseg.modelfolder (through nucleiseg.segment), whose
    # load_model_folder imports keras: never called there, so keras is not counted.
    assert "keras" not in third_party_imports(SCRIPTS / "report_batch.py")


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.stem)
def test_env_holds_what_its_rules_import(env):
    """Each module its rules import comes from a package the env pins, or, for a package that
    requirements.txt does not pin either (imageio, requests, ...), one its pins depend on.
    Packages that requirements.txt pins and that the env would install anyway are pinned."""
    _, pip = read_env(env)
    pinned = set(pip)
    installed = dependency_closure(pinned)
    project_pins = {TENSORFLOW if name == CPU_TENSORFLOW else name for name in REQUIREMENTS}
    needed = {}
    for rule, (script, rule_env) in RULE_SCRIPTS.items():
        if rule_env != env:
            continue
        modules = third_party_imports(script)
        for module in modules | {extra for m in modules for extra in RUNTIME_EXTRAS.get(m, [])}:
            needed.setdefault(distribution(module), set()).add(rule)
    assert needed, f"no rule uses {env.name}"
    missing = {
        package: sorted(rules) for package, rules in needed.items()
        if package not in pinned and (package in project_pins or package not in installed)
    }
    assert missing == {}, f"{env.name} lacks packages its rules import (package: rules)"
    unpinned_anyway = sorted((installed & project_pins) - pinned)
    assert unpinned_anyway == [], f"{env.name} installs these without requirements.txt's pins"
