"""The environment definitions stay in sync: one set of pins for venv, conda and CI."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock_lines() -> dict[str, tuple[str, str | None]]:
    """canonical name → (version, marker or None)."""
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pin, _, marker = line.partition(";")
        name, sep, version = pin.partition("==")
        assert sep, f"requirements.lock line is not an exact pin: {line!r}"
        pins[_canonical(name.strip())] = (version.strip(), marker.strip() or None)
    return pins


def _lock() -> dict[str, str]:
    return {name: version for name, (version, _) in _lock_lines().items()}


SUPPORTED = ["3.11", "3.12", "3.13"]


def _makefile_pythons() -> list[str]:
    match = re.search(r"^PYTHONS\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "Makefile must name the supported Python versions (PYTHONS := ...)"
    return match.group(1).split()


def test_supported_pythons_agree_in_makefile_and_readme():
    assert _makefile_pythons() == SUPPORTED
    readme = (ROOT / "README.md").read_text()
    assert f"Python {SUPPORTED[0]}–{SUPPORTED[-1]}" in readme


@pytest.mark.parametrize("version", SUPPORTED)
def test_lock_is_complete_on_every_supported_python(version):
    """Every distribution the environment needs on ``version`` is pinned for it: walk the
    requirements from requirements.in through the installed distributions' metadata with the
    markers evaluated for that version (pip does not: ``--python-version`` only picks wheels).
    Distributions not installed here (another version's only) are checked as pinned, not walked."""
    from importlib import metadata

    from packaging.requirements import Requirement

    lock = _lock_lines()
    env = {"python_version": version, "python_full_version": f"{version}.0"}

    def applies(req: Requirement, extras: set[str]) -> bool:
        if req.marker is None:
            return True
        return any(req.marker.evaluate({**env, "extra": e}) for e in extras | {""})

    roots = [Requirement(line.split("#")[0].strip())
             for line in (ROOT / "requirements.in").read_text().splitlines() if line.split("#")[0].strip()]
    todo = [(r, set(r.extras)) for r in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    missing = []
    while todo:
        req, extras = todo.pop()
        name = _canonical(req.name)
        if (name, frozenset(extras)) in seen:
            continue
        seen.add((name, frozenset(extras)))
        pin = lock.get(name)
        if pin is None or (pin[1] is not None and not Requirement(f"x; {pin[1]}").marker.evaluate(env)):
            missing.append(f"{req} (needed on {version})")
            continue
        try:
            requires = metadata.distribution(req.name).requires or []
        except metadata.PackageNotFoundError:
            continue  # pinned for another version only: its own requirements were resolved by make lock
        for text in requires:
            child = Requirement(text)
            if applies(child, extras):
                todo.append((child, set(child.extras)))
    assert not missing, ("requirements.lock lacks, for Python " + version + ": " + ", ".join(sorted(missing))
                         + " (add the requirement to the Makefile's LOCK_ONLY_* and run `make lock`)")


def test_make_refuses_an_unsupported_python_clearly(tmp_path):
    """`make` names the supported versions and the one it found, and stops before creating a venv."""
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    fake = tmp_path / "python3.10"
    fake.write_text("#!/bin/sh\necho 3.10\n")
    fake.chmod(0o755)
    proc = subprocess.run(["make", "-C", str(ROOT), "venv", f"PYTHON={fake}", f"VENV={tmp_path / 'venv'}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"roomkit supports Python {' '.join(SUPPORTED)}; '{fake}' is 3.10." in proc.stderr
    assert not (tmp_path / "venv").exists()


def test_every_top_level_requirement_is_pinned_in_the_lock():
    lock = _lock()
    for line in (ROOT / "requirements.in").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name = re.split(r"[\[=<>~! ]", line, maxsplit=1)[0]
        key = re.sub(r"[-_.]+", "-", name).lower()
        assert key in lock, f"{name} is in requirements.in but not pinned in requirements.lock"
        if "==" in line:
            assert lock[key] == line.split("==")[1].strip(), f"{name}: requirements.in and lock disagree"


def test_environment_yml_installs_the_lock_on_python_311():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    assert "pip" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-r requirements.lock" in pip_section
    assert "-e ." in pip_section


def test_pyproject_runtime_dependencies_are_in_the_lock():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = _lock()
    for extra, deps in {"": project["dependencies"], **project["optional-dependencies"]}.items():
        if extra == "sagemaker":
            continue  # optional extra, deliberately not part of the environment
        for dep in deps:
            name = re.split(r"[\[=<>~! ]", dep, maxsplit=1)[0]
            assert re.sub(r"[-_.]+", "-", name).lower() in lock, f"{dep} ({extra or 'core'}) missing from lock"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, flags=re.S)
    assert blocks, "README must open with the two commands in a code block"
    commands = [c.split("#")[0].strip() for c in blocks[0].splitlines() if c.split("#")[0].strip()]
    assert len(commands) == 2, f"README's first block must hold exactly two commands, got {commands}"
    assert commands[1] in ci, f".ci/run must call the README's test command {commands[1]!r}"


def test_license_is_an_spdx_string_setuptools_understands():
    """setuptools warns on every build about the table form of ``project.license``; the SPDX
    string needs setuptools 77 or newer in the build requirements."""
    import tomllib

    from packaging.requirements import Requirement

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["license"] == "Apache-2.0"
    setuptools = next(Requirement(r) for r in data["build-system"]["requires"] if r.startswith("setuptools"))
    assert not setuptools.specifier.contains("76.9"), setuptools
