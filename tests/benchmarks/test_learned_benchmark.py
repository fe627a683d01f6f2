"""benchmarks/learned.py runs end to end: its command line on two sample plans with a small
random-weight model prints the rules, learned and hybrid backends side by side, checks the
targets and writes the figures as JSON; without a model it says so and runs the rules alone.

The figures of a random model mean nothing; these tests check the benchmark, not the model.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "learned.py"


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from roomkit.learned import export, net
    from roomkit.learned.modelfile import ModelInfo

    d = tmp_path_factory.mktemp("model")
    channels = (4, 8, 8, 8, 8)
    export.write_onnx(net.init_params(0, channels, 4), 4, d / "model.onnx")
    ModelInfo(channels=channels).write(d)
    return d


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--sets", "samples", "--limit", "2",
                           "--real-dir", str(cwd / "no-real-plans"), *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def table_rows(stdout: str, title: str) -> dict[str, list[str]]:
    """Rows of one set's table, by backend (the first word of each row)."""
    block = stdout.split(f"== {title}", 1)[1].split("\n\n", 1)[0]
    rows = [ln.split() for ln in block.splitlines()[3:] if ln.strip()]
    return {r[0]: r[1:] for r in rows}


def test_samples_table_has_the_three_backends_and_the_json_figures(random_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = run("--model", str(random_model), "--json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = table_rows(proc.stdout, "data/samples")
    assert list(rows) == ["rules", "learned", "hybrid"], proc.stdout
    for backend in ("learned", "hybrid"):  # each model backend is checked against the rules
        assert re.match(r"^[01]\.\d{3}$", rows[backend][1]) and rows[backend][2] in ("met", "MISSED"), rows[backend]
    figures = json.loads(out.read_text())
    samples = figures["accuracy"]["samples"]
    assert {b: samples[b]["plans"] for b in ("rules", "learned", "hybrid")} == {"rules": 2, "learned": 2, "hybrid": 2}
    assert all(0.0 <= samples[b]["f1@0.5"] <= 1.0 for b in ("rules", "learned", "hybrid"))
    checks = {(c["figure"], c["backend"]): c["verdict"] for c in figures["targets"]}
    assert set(checks) == {("samples F1@0.5", "learned"), ("samples F1@0.5", "hybrid")}
    assert "== targets" in proc.stdout


def test_without_a_model_it_says_so_and_runs_the_rules_alone(tmp_path: Path) -> None:
    empty = tmp_path / "empty-model"
    empty.mkdir()
    proc = run("--model", str(empty), "--limit", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "NO MODEL" in proc.stdout and str(empty) in proc.stdout
    assert list(table_rows(proc.stdout, "data/samples")) == ["rules"]


def test_speed_table_prints_predict_wall_and_cpu_ms_beside_the_targets(random_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--sets", "speed", "--backends", "learned", "--limit", "1",
                           "--repeat", "1", "--real-dir", str(tmp_path / "no-real-plans"), "--model", str(random_model),
                           "--json", str(out)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    speed = json.loads(out.read_text())["speed"]
    assert list(speed) == ["synth @ 0.5 MP", "synth @ 2 MP"]
    for label, entry in speed.items():
        assert entry["plans"] == 1 and entry["predict_ms"] > 0 and entry["predict_cpu_ms"] > 0, entry
        row = next(ln for ln in proc.stdout.splitlines() if ln.startswith(label))
        cells = row[len(label):].split()  # n, MP, decode, predict, verdict, ratio, cpu, detect, x dec
        assert cells[4] in ("met", "MISSED") and float(cells[6]) == round(entry["predict_cpu_ms"], 1), row
