"""The operator notebooks: executed once, in order, by ``roomkit notebooks run`` (papermill, one
shared local AWS); the cells marked ``# NBVAL_CHECK_OUTPUT`` of that run are compared with the
committed outputs as nbval compares them (its stream merging and ``nbval_sanitize.cfg``), without
executing the notebooks a second time; and the committed copies are kept clean. The standalone
path (a notebook opened alone starts its own local AWS and re-creates 03's deployment) is
tested in-process in test_walkthrough.py.

When an intended change (a better detector) changes a checked cell's output, refresh the expected
outputs with ``roomkit notebooks run --out OUT && roomkit notebooks record OUT/executed``.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from notebook_support import notebook_env
from roomkit.notebooks.runner import (
    CHECK_MARK,
    check_notebook,
    compare_checked_outputs,
    find_notebooks,
    record_checked_outputs,
    strip_notebook,
    write_notebook,
)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = [
    "01_detect_and_tune.ipynb",
    "02_build_container.ipynb",
    "03_deploy_async_endpoint.ipynb",
    "04_submit_blueprints.ipynb",
    "04b_upload_trigger.ipynb",
    "05_visual_qa.ipynb",
    "06_teardown.ipynb",
]
REFRESH_HINT = ("if the change is intended, refresh the expected outputs: "
                "roomkit notebooks run --out OUT && roomkit notebooks record OUT/executed")


def _env(tmp: Path) -> dict[str, str]:
    return notebook_env(tmp)


# -- the committed notebooks ---------------------------------------------------------------------
def test_the_walkthrough_is_complete_and_in_order():
    assert [p.name for p in find_notebooks(NOTEBOOKS)] == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_notebook_is_clean(name):
    path = NOTEBOOKS / name
    assert check_notebook(path) == []
    nb = json.loads(path.read_text(encoding="utf-8"))
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown" and "cost" in "".join(first["source"]).lower()
    params = nb["cells"][1]
    assert params["cell_type"] == "code" and "parameters" in params["metadata"]["tags"]
    for name_ in ("mode", "region", "out_dir"):
        assert re.search(rf"^{name_} = ", "".join(params["source"]), re.M), name_
    # stripping a committed notebook changes nothing: it is stored as committed
    assert strip_notebook(json.loads(json.dumps(nb))) == nb


def test_checked_cells_have_recorded_outputs():
    checked = {}
    for path in find_notebooks(NOTEBOOKS):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and CHECK_MARK in "".join(cell["source"]):
                assert cell["outputs"], f"{path.name}: checked cell has no recorded output; {REFRESH_HINT}"
                checked[path.name] = checked.get(path.name, "") + "".join(
                    "".join(o.get("text", "")) for o in cell["outputs"])
    assert "total" in checked["01_detect_and_tune.ipynb"]  # room counts per sample
    assert "'tuned' changed " in checked["01_detect_and_tune.ipynb"]  # what the parameter change did
    assert checked["03_deploy_async_endpoint.ipynb"].startswith("endpoint roomkit-demo: InService")
    assert checked["05_visual_qa.ipynb"].startswith("F1@0.5=")
    assert checked["06_teardown.ipynb"] == "endpoint still deployed: False\n"


def test_main_test_run_does_not_collect_the_notebooks():
    """`make test` runs pytest on tests/ only; the notebooks are executed once, by the run below
    (an nbval collection would run every notebook again)."""
    import tomllib

    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert options["testpaths"] == ["tests"]
    assert "nbval" not in options.get("addopts", "")
    assert not list((ROOT / "tests").glob("*.ipynb"))


# -- hygiene checker and stripper --------------------------------------------------------------------
def _notebook(cells, **meta):
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": meta, "cells": cells}


def _code(source, outputs=(), tags=(), count=None):
    return {"cell_type": "code", "id": f"c{abs(hash(source)) % 10**8}", "source": source,
            "metadata": {"tags": list(tags)} if tags else {}, "outputs": list(outputs), "execution_count": count}


def _stream(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def test_check_notebook_flags_what_must_not_be_committed(tmp_path):
    nb = _notebook([
        _code("mode = 'local'", tags=["parameters"]),
        _code("print(1)", [_stream("1\n")], count=3),
        _code(f"{CHECK_MARK}\nprint(key)", [_stream("AKIA" + "ABCDEFGHIJKLMNOP\n")]),
        _code(f"{CHECK_MARK}\nprint(arn)", [_stream("arn:aws:iam::" + "210987654321:role/x\n")]),
        _code(f"{CHECK_MARK}\nprint(p)", [_stream("/home/someone/out/config.json\n")]),
        _code(f"{CHECK_MARK}\nprint(big)", [{"output_type": "display_data", "metadata": {},
                                              "data": {"text/plain": "x" * 120_000}}]),
    ], papermill={"input_path": "x"})
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(nb))
    problems = "\n".join(str(f) for f in check_notebook(path))
    assert "over the 100000-byte limit" in problems
    assert "has outputs but is not marked" in problems
    assert "execution count" in problems
    assert "AWS access key id" in problems
    assert "account id (210987654321)" in problems
    assert "absolute path (/home/someone" in problems
    assert "papermill metadata" in problems


def test_check_notebook_requires_a_parameters_cell_and_accepts_a_clean_one(tmp_path):
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(_notebook([_code("x = 1")])))
    assert [f.problem for f in check_notebook(path)] == ["has no code cell tagged 'parameters'"]
    path.write_text(json.dumps(_notebook([
        _code("mode = 'local'", tags=["parameters"]),
        _code(f"{CHECK_MARK}\nprint(n)", [_stream("endpoint roomkit-demo: InService\n")], count=2),
    ])))
    assert check_notebook(path) == []


def test_strip_keeps_only_checked_outputs_and_drops_run_metadata():
    nb = _notebook([
        _code("mode = 'local'", tags=["parameters"], count=1),
        _code("mode = 'aws'", tags=["injected-parameters"], count=2),
        _code("fig", [{"output_type": "display_data", "metadata": {},
                       "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}}], count=3),
        _code(f"{CHECK_MARK}\nprint(1)\nfig", [
            _stream("1\n"),
            {"output_type": "execute_result", "execution_count": 4, "metadata": {},
             "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}},
        ], count=4),
    ], papermill={"parameters": {}}, kernelspec={"name": "python3"})
    nb["cells"][0]["metadata"]["papermill"] = {"duration": 1.0}
    out = strip_notebook(nb)
    assert [c["source"] for c in out["cells"]] == ["mode = 'local'", "fig", f"{CHECK_MARK}\nprint(1)\nfig"]
    assert [c["execution_count"] for c in out["cells"]] == [None, None, 3]  # position among the code cells kept
    assert out["cells"][1]["outputs"] == []
    kept = out["cells"][2]["outputs"]
    assert kept[0] == _stream("1\n")
    assert kept[1]["data"] == {"text/plain": "<Figure>"} and kept[1]["execution_count"] == 3
    assert out["metadata"] == {"kernelspec": {"name": "python3"}}
    assert "papermill" not in out["cells"][0]["metadata"]


def test_record_copies_checked_outputs_from_an_executed_run(tmp_path):
    source = _notebook([_code("mode = 'local'", tags=["parameters"]),
                        _code(f"{CHECK_MARK}\nprint(n)"), _code("print(2)")])
    executed = json.loads(json.dumps(source))
    executed["cells"][1]["outputs"] = [_stream("7 rooms\n")]
    executed["cells"][2]["outputs"] = [_stream("2\n")]
    executed["cells"][1]["execution_count"] = 5
    write_notebook(source, tmp_path / "src.ipynb")
    write_notebook(executed, tmp_path / "run.ipynb")
    assert record_checked_outputs(tmp_path / "run.ipynb", tmp_path / "src.ipynb") == 1
    stored = json.loads((tmp_path / "src.ipynb").read_text())
    assert stored["cells"][1]["outputs"] == [_stream("7 rooms\n")]
    assert stored["cells"][1]["execution_count"] == 2
    assert stored["cells"][2]["outputs"] == []
    assert check_notebook(tmp_path / "src.ipynb") == []


def test_only_selects_by_number_or_name_and_rejects_unknown(tmp_path):
    from roomkit.errors import ConfigError

    assert [p.name for p in find_notebooks(NOTEBOOKS, ["05", "01_detect_and_tune"])] == [
        "01_detect_and_tune.ipynb", "05_visual_qa.ipynb"]
    assert [p.name for p in find_notebooks(NOTEBOOKS, ["04b,06"])] == [
        "04b_upload_trigger.ipynb", "06_teardown.ipynb"]
    with pytest.raises(ConfigError, match="no notebook 99"):
        find_notebooks(NOTEBOOKS, ["99"])


# -- execution -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def walkthrough_run(tmp_path_factory):
    """`roomkit notebooks run` once, through the CLI: papermill, one shared local AWS. Its temp
    folder is private, so what it leaves there can be checked."""
    tmp = tmp_path_factory.mktemp("walkthrough")
    out = tmp / "out"
    env = _env(tmp)
    env["TMPDIR"] = str(tmp / "tmp")
    (tmp / "tmp").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "roomkit", "notebooks", "run", "--out", str(out)],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=900,
    )
    return proc, out


@pytest.mark.slow
def test_roomkit_notebooks_run_executes_the_walkthrough(walkthrough_run):
    proc, out = walkthrough_run
    assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]
    for name in EXPECTED:
        assert re.search(rf"^{re.escape(name)}\s+ok\s+\d+\.\d$", proc.stdout, re.M), proc.stdout
        executed = json.loads((out / "executed" / name).read_text(encoding="utf-8"))
        errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors
        assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])
    assert re.search(r"^total\s+ok\s+\d+\.\d$", proc.stdout, re.M)
    # the shared local AWS was used by every notebook that talks to AWS, and is gone afterwards
    for name in ("03_deploy_async_endpoint.ipynb", "04_submit_blueprints.ipynb", "06_teardown.ipynb"):
        text = (out / "executed" / name).read_text(encoding="utf-8")
        assert "using the running local AWS" in text, name
    assert not (out / "local-aws.json").exists()


@pytest.mark.slow
def test_walkthrough_outputs_figures_results_and_report(walkthrough_run):
    proc, out = walkthrough_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert "min_room_area" in config
    assert (out / "model.tar.gz").is_file()
    results = sorted(p.stem for p in (out / "results").glob("*.json"))
    samples = sorted(p.stem for p in (ROOT / "data" / "samples").iterdir() if p.suffix in (".png", ".jpg"))
    assert results == samples
    assert (out / "results" / "broken_upload.error.txt").read_text().strip()
    assert not (out / "deployment.json").exists()  # 06 removed everything and then the manifest

    def images(name):
        nb = json.loads((out / "executed" / name).read_text(encoding="utf-8"))
        return sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))

    assert images("01_detect_and_tune.ipynb") >= 2  # overlays, before/after the parameter change
    assert images("04_submit_blueprints.ipynb") >= 1  # latency
    assert images("05_visual_qa.ipynb") >= 2  # gallery, threshold curve
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("src='data:image/png;base64,") >= len(samples)
    assert "F1@0.5=" in html
    assert str(out / "report.html") in proc.stdout


@pytest.mark.slow
def test_checked_cells_print_what_is_recorded(walkthrough_run):
    """The cells marked NBVAL_CHECK_OUTPUT printed, in this one run, what the committed notebooks
    record (after nbval's sanitizing): room counts, the deployed endpoint, submission outcomes,
    the metrics, teardown."""
    proc, out = walkthrough_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    problems = [p for name in EXPECTED
                for p in compare_checked_outputs(out / "executed" / name, NOTEBOOKS / name,
                                                 NOTEBOOKS / "nbval_sanitize.cfg")]
    assert not problems, REFRESH_HINT + "\n" + "\n".join(problems)


@pytest.mark.slow
def test_walkthrough_is_quiet_and_leaves_no_temporary_folders(walkthrough_run):
    """No `[IPKernelApp] WARNING | Kernel is running over TCP without encryption` (the kernels
    talk over IPC), and nothing of the local AWS left in the temp folder."""
    proc, out = walkthrough_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "without encryption" not in proc.stderr
    tmp = out.parent / "tmp"
    assert not list(tmp.glob("roomkit-local-*")), sorted(p.name for p in tmp.iterdir())


@pytest.mark.slow
def test_notebooks_readme_names_what_the_walkthrough_leaves(walkthrough_run):
    """notebooks/README.md says what a full run leaves in its output folder; it is all there,
    and the manifest it says 06 removes is gone."""
    proc, out = walkthrough_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    readme = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    match = re.search(r"After a full run the output folder holds (.*?)\.\s", readme, re.S)
    assert match, "notebooks/README.md must say what a full run leaves"
    named = [n for n in re.findall(r"`([^`]+)`", match.group(1)) if "<" not in n and " " not in n]
    assert {"config.json", "report.html", "results/", "executed/"} <= set(named)
    for name in named:
        assert (out / name.rstrip("/")).exists(), name
    removed = re.search(r"`deployment\.json`[^.]*removed by 06", readme)
    assert removed, "notebooks/README.md must say that 06 removes deployment.json"
    assert not (out / "deployment.json").exists()


def test_compare_checked_outputs_sanitizes_and_reports_differences(tmp_path):
    cfg = tmp_path / "sanitize.cfg"
    cfg.write_text("regex: \\b\\d+ ms\\b\nreplace: DURATION\n")
    source = _notebook([_code("mode = 'local'", tags=["parameters"]),
                        _code(f"{CHECK_MARK}\nprint(n)", [_stream("7 rooms in 12 ms\n")], count=2)])
    run = json.loads(json.dumps(source))
    run["cells"][1]["outputs"] = [_stream("7 rooms "), _stream("in 30 ms\n")]  # split stream, other time
    write_notebook(source, tmp_path / "src.ipynb")
    write_notebook(run, tmp_path / "run.ipynb")
    assert compare_checked_outputs(tmp_path / "run.ipynb", tmp_path / "src.ipynb", cfg) == []
    run["cells"][1]["outputs"] = [_stream("6 rooms in 30 ms\n")]
    write_notebook(run, tmp_path / "run.ipynb")
    [problem] = compare_checked_outputs(tmp_path / "run.ipynb", tmp_path / "src.ipynb", cfg)
    assert "7 rooms in DURATION" in problem and "6 rooms in DURATION" in problem


@pytest.mark.slow
def test_runner_reports_a_failing_notebook_and_skips_the_rest(tmp_path):
    """Exit status 1, the failing cell's error in the summary, later notebooks skipped, the
    parameters injected (aws mode here, so no local AWS is started)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    folder = tmp_path / "nbs"
    folder.mkdir()

    def book(name, *sources):
        nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                   "language": "python"}})
        nb.cells = [new_code_cell("mode = 'local'\nout_dir = None\ncolor = 'red'", metadata={"tags": ["parameters"]})]
        nb.cells += [new_code_cell(s) for s in sources]
        nbformat.write(nb, folder / name)

    book("01_first.ipynb", "import pathlib\npathlib.Path(out_dir, 'seen.txt').write_text(f'{mode} {color}')")
    book("02_second.ipynb", "raise ValueError('boom ' + color)")
    book("03_third.ipynb", "print('never')")
    proc = subprocess.run(
        [sys.executable, "-m", "roomkit", "notebooks", "run", "--mode", "aws", "--notebooks", str(folder),
         "--out", str(tmp_path / "out"), "-p", "color=\"blue\""],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "without encryption" not in proc.stderr  # the kernels talk over IPC, not loopback TCP
    assert (tmp_path / "out" / "seen.txt").read_text() == "aws blue"
    assert re.search(r"^01_first\.ipynb\s+ok\s", proc.stdout, re.M)
    assert re.search(r"^02_second\.ipynb\s+failed\s+\d+\.\d\s+cell \d+: ValueError: boom blue$", proc.stdout, re.M)
    assert re.search(r"^03_third\.ipynb\s+skipped\s", proc.stdout, re.M)
    assert re.search(r"^total\s+failed\s", proc.stdout, re.M)
    assert (tmp_path / "out" / "executed" / "02_second.ipynb").is_file()
    assert not (tmp_path / "out" / "executed" / "03_third.ipynb").exists()
