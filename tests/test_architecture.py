"""The folder tree is the architecture: no import cycles, no private cross-module imports,
and the detector side and the AWS side never load each other's heavy dependencies."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import roomkit

PKG = Path(roomkit.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The roomkit module an import names (``roomkit.aws.session`` names the package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import in ``module``, nested ones too."""
    tree = ast.parse(MODULES[module].read_text())
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("roomkit"):
                    found.append((alias.name, []))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            if not base.startswith("roomkit"):
                continue
            names = [a.name for a in node.names]
            for n in names:  # `from roomkit.aws import iam` imports the module roomkit.aws.iam
                if f"{base}.{n}" in MODULES:
                    found.append((f"{base}.{n}", []))
            found.append((base, [n for n in names if f"{base}.{n}" not in MODULES]))
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, _ in _imports(module):
            resolved = _resolve(target)
            if resolved and resolved != module:
                graph[module].add(resolved)
    return graph


def _packages_of(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_import_cycles():
    graph = _graph()
    # A package's __init__ importing its own submodules (lazy re-exports) is not a cycle of the
    # architecture; every other edge counts, function-level imports included.
    edges = {m: {t for t in ts if not (m in _packages_of(t))} for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            strongconnect(v)
    assert cycles == [], f"import cycles: {cycles}"


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for module in MODULES:
        for target, names in _imports(module):
            resolved = _resolve(target)
            if resolved == module:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                offenders.append(f"{module} imports {private} from {target}")
    assert offenders == []


def _loaded(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("modules", [
    "roomkit.aws.deploy, roomkit.aws.submit, roomkit.aws.wait, roomkit.aws.results, "
    "roomkit.aws.transform, roomkit.aws.trigger_deploy, roomkit.aws.trigger, roomkit.local, "
    "roomkit.detector.config, roomkit.plans.response",
])
def test_aws_side_loads_no_opencv(modules):
    assert _loaded(f"import roomkit, {modules}, sys; print('cv2' in sys.modules)") == "False"


@pytest.mark.parametrize("modules", [
    "roomkit.detector, roomkit.plans.imageio, roomkit.qa.evaluate, roomkit.qa.synth",
])
def test_detector_side_loads_no_boto3(modules):
    code = f"import roomkit, {modules}, sys; roomkit.detect_rooms; print('boto3' in sys.modules)"
    assert _loaded(code) == "False"
