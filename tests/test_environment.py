"""The environment definitions stay in sync: one set of pins for venv, conda and CI."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"requirements.lock line is not an exact pin: {line!r}"
        pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


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
