"""Run the operator notebooks with papermill, and keep the committed copies clean.

``run_notebooks`` executes ``notebooks/NN_*.ipynb`` in order, in one output folder, sharing one
local AWS across the sequence (local mode): it starts :class:`roomkit.local.LocalAWS` here, in
the runner's process, writes its endpoints to ``<out>/local-aws.json`` and points
``$ROOMKIT_LOCAL_STATE`` at that file, which is what :func:`roomkit.aws.session` (and
:func:`roomkit.notebooks.walkthrough.connect`) read in each notebook's kernel. Every notebook gets the
parameters ``mode`` and ``out_dir``; the executed copies land in ``<out>/executed/``.

The kernel is the ``python3`` kernel run by this interpreter: the interpreter's ``bin`` folder is
put first on ``PATH`` (the ``python3`` kernelspec launches ``python``), so the notebooks import
the same roomkit as the runner. On POSIX it talks to the runner over IPC sockets (files in
Jupyter's private runtime folder) rather than loopback TCP: no port is opened, and ipykernel has
no reason to warn that the channel is unencrypted.

Checked outputs (``compare_checked_outputs``): the cells marked ``# NBVAL_CHECK_OUTPUT`` of an
executed run are compared with the committed ones as ``pytest --nbval-lax`` compares them (nbval's
stream merging and the regex replacements of ``notebooks/nbval_sanitize.cfg``), without running
the notebooks a second time.

Hygiene (``strip_notebook``, ``check_notebook``): committed notebooks carry no outputs except the
cells marked ``# NBVAL_CHECK_OUTPUT`` (what nbval compares), no execution counts, no papermill
metadata, and nothing that looks like a credential, an AWS account id or an absolute path.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from roomkit.errors import ConfigError, RoomkitError

__all__ = [
    "CHECK_MARK",
    "OPTIONAL",
    "NotebookRun",
    "RunReport",
    "find_notebooks",
    "notebooks_dir",
    "run_notebooks",
    "strip_notebook",
    "check_notebook",
    "record_checked_outputs",
    "compare_checked_outputs",
]

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
NOTEBOOK_RE = re.compile(r"^(\d\d[a-z]?)_[A-Za-z0-9_]+\.ipynb$")
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
MAX_NOTEBOOK_BYTES = 100_000
#: Notebooks outside the walk-through (``make demo``): they run only when ``--only`` names them.
#: 07 trains a model for its ``minutes`` parameter (30 by default).
OPTIONAL: tuple[str, ...] = ("07",)
LOCAL_STATE_NAME = "local-aws.json"
# moto's fixed fake account: the only 12-digit "account id" that may appear in a checked output.
MOTO_ACCOUNT = "123456789012"


# -- discovery ---------------------------------------------------------------------------------
def notebooks_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``notebooks/`` of the checkout holding roomkit, else ``./notebooks``."""
    if path is not None:
        folder = Path(path)
    else:
        from roomkit.notebooks.walkthrough import repo_root

        root = repo_root()
        folder = (root / "notebooks") if root is not None else Path.cwd() / "notebooks"
    if not folder.is_dir():
        raise ConfigError(f"notebook folder {folder} does not exist (pass --notebooks DIR)")
    return folder


def find_notebooks(folder: str | os.PathLike[str], only: Sequence[str] | None = None, *,
                   optional: bool = False) -> list[Path]:
    """``NN_name.ipynb`` files of ``folder`` in order; ``only`` keeps those whose number (``"05"``,
    ``"04b"``) or name stem is listed. Without ``only``, the :data:`OPTIONAL` notebooks are left
    out unless ``optional`` (the walk-through does not run them; strip/check/record do)."""
    found = sorted(p for p in Path(folder).iterdir() if NOTEBOOK_RE.match(p.name))
    if not only and not optional:
        found = [p for p in found if NOTEBOOK_RE.match(p.name).group(1) not in OPTIONAL]
    if only:
        wanted = {w.strip() for item in only for w in str(item).split(",") if w.strip()}
        picked = [p for p in found if NOTEBOOK_RE.match(p.name).group(1) in wanted or p.stem in wanted]
        unknown = wanted - {NOTEBOOK_RE.match(p.name).group(1) for p in picked} - {p.stem for p in picked}
        if unknown:
            raise ConfigError(f"no notebook {', '.join(sorted(unknown))} in {folder} "
                              f"(have: {', '.join(p.name for p in found)})")
        found = picked
    if not found:
        raise ConfigError(f"no NN_*.ipynb notebooks in {folder}")
    return found


# -- running -----------------------------------------------------------------------------------
@dataclass
class NotebookRun:
    """How one notebook went: ``ok``/``failed``/``skipped``, seconds, the executed copy."""

    name: str
    status: str
    seconds: float = 0.0
    output: Path | None = None
    error: str | None = None


@dataclass
class RunReport:
    out_dir: Path
    mode: str
    runs: list[NotebookRun] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.status == "ok" for r in self.runs)

    @property
    def report_html(self) -> Path | None:
        path = self.out_dir / "report.html"
        return path if path.is_file() else None

    def table(self) -> str:
        width = max([len("notebook")] + [len(r.name) for r in self.runs])
        lines = [f"{'notebook':<{width}}  {'status':<7} {'seconds':>8}"]
        for r in self.runs:
            line = f"{r.name:<{width}}  {r.status:<7} {r.seconds:>8.1f}"
            if r.error:
                line += f"  {r.error}"
            lines.append(line)
        lines.append(f"{'total':<{width}}  {'ok' if self.ok else 'failed':<7} {self.seconds:>8.1f}")
        return "\n".join(lines)


@contextlib.contextmanager
def _environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """Set (value) or unset (None) environment variables for the block; restore afterwards."""
    saved = {k: os.environ.get(k) for k in changes}
    try:
        for key, value in changes.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def kernel_environment(out_dir: Path, state_file: Path | None) -> dict[str, str | None]:
    """What the notebooks' kernels inherit: this interpreter first on PATH, inline figures (even
    when the caller exported MPLBACKEND=Agg), the output folder and the local AWS state file."""
    from roomkit.aws import LOCAL_STATE_ENV
    from roomkit.notebooks.walkthrough import OUT_ENV

    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    warnings = os.environ.get("PYTHONWARNINGS", "")
    return {
        "PATH": bin_dir + (os.pathsep + path if path else ""),
        "MPLBACKEND": INLINE_BACKEND,
        # tqdm falls back to text progress bars without ipywidgets and says so on every bar
        "PYTHONWARNINGS": ",".join(filter(None, [warnings, "ignore:IProgress not found"])),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        OUT_ENV: str(out_dir),
        LOCAL_STATE_ENV: str(state_file) if state_file is not None else None,
    }


def kernel_config() -> Any:
    """The kernel manager's configuration: IPC transport where the platform has it (POSIX)."""
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc"}}) if os.name == "posix" else Config()


def run_notebooks(
    out_dir: str | os.PathLike[str],
    *,
    mode: str = "local",
    only: Sequence[str] | None = None,
    folder: str | os.PathLike[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    kernel_name: str = "python3",
    cell_timeout: int = 600,
    keep_going: bool = False,
    echo: Any = print,
) -> RunReport:
    """Execute the notebooks in order; stop at the first failure unless ``keep_going``.

    ``parameters`` are passed to every notebook on top of ``mode`` and ``out_dir``. Returns a
    :class:`RunReport`; never raises for a failing notebook (its error is in the report).
    """
    import papermill as pm

    if mode not in ("local", "aws"):
        raise ConfigError(f"mode must be 'local' or 'aws', got {mode!r}")
    books = find_notebooks(notebooks_dir(folder), only)
    out = Path(out_dir).expanduser().resolve()
    executed = out / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    report = RunReport(out, mode)
    start = time.monotonic()
    params = {"mode": mode, "out_dir": str(out), **dict(parameters or {})}

    with contextlib.ExitStack() as stack:
        state_file = None
        if mode == "local":
            from roomkit.local import reaper
            from roomkit.local import LocalAWS

            reaper.ensure()  # servers die with the runner even if it is killed

            state_file = out / LOCAL_STATE_NAME
            echo(f"roomkit notebooks: starting the shared local AWS (state in {state_file})")
            local = LocalAWS(state_file=state_file, work_dir=out / "local-aws")
            stack.enter_context(local)
        stack.enter_context(_environment(kernel_environment(out, state_file)))
        failed = False
        for book in books:
            if failed and not keep_going:
                report.runs.append(NotebookRun(book.name, "skipped"))
                continue
            target = executed / book.name
            echo(f"roomkit notebooks: running {book.name}", )
            t0 = time.monotonic()
            try:
                pm.execute_notebook(
                    str(book), str(target), parameters=params, kernel_name=kernel_name,
                    cwd=str(book.parent), progress_bar=False, log_output=False,
                    execution_timeout=cell_timeout, start_timeout=120, report_mode=False,
                    config=kernel_config(),
                )
                run = NotebookRun(book.name, "ok", time.monotonic() - t0, target)
            except pm.PapermillExecutionError as exc:
                run = NotebookRun(book.name, "failed", time.monotonic() - t0, target,
                                  f"cell {exc.exec_count}: {exc.ename}: {_first_line(exc.evalue)}")
                failed = True
            except Exception as exc:  # kernel died, timeout, bad notebook file
                run = NotebookRun(book.name, "failed", time.monotonic() - t0,
                                  target if target.exists() else None,
                                  f"{type(exc).__name__}: {_first_line(str(exc))}")
                failed = True
            report.runs.append(run)
            echo(f"roomkit notebooks: {book.name} {run.status} in {run.seconds:.1f} s"
                 + (f": {run.error}" if run.error else ""))
    report.seconds = time.monotonic() - start
    return report


def _first_line(text: str, limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line[:limit]


# -- hygiene -----------------------------------------------------------------------------------
def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def is_checked(cell: Mapping[str, Any]) -> bool:
    return cell.get("cell_type") == "code" and CHECK_MARK in _source(cell)


def strip_notebook(nb: dict[str, Any]) -> dict[str, Any]:
    """The notebook as it is committed (modified in place and returned).

    Removes papermill's injected-parameters cells, all outputs except those of cells marked
    ``# NBVAL_CHECK_OUTPUT`` (whose images, if any, are dropped too: nbval does not compare
    them), execution counts (a checked cell with outputs keeps its position among the code
    cells as its count: nbval skips cells that look unrun), and run-time metadata (papermill,
    execution timings, widgets).
    """
    cells = []
    code_index = 0
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {})
        tags = meta.get("tags", [])
        if "injected-parameters" in tags:
            continue
        for key in ("papermill", "execution", "collapsed", "scrolled", "ExecuteTime"):
            meta.pop(key, None)
        cell["metadata"] = meta
        if cell.get("cell_type") == "code":
            code_index += 1
            cell["execution_count"] = None
            if is_checked(cell):
                # nbval compares only cells that were run (a count is set): a fixed count per
                # position keeps diffs quiet.
                outputs = []
                for out in cell.get("outputs", []):
                    if "execution_count" in out:
                        out["execution_count"] = code_index
                    if "data" in out:
                        out["data"] = {k: v for k, v in out["data"].items() if not k.startswith("image/")}
                        if not out["data"]:
                            continue
                    outputs.append(out)
                cell["outputs"] = outputs
                cell["execution_count"] = code_index if outputs else None
            else:
                cell["outputs"] = []
        cells.append(cell)
    nb["cells"] = cells
    meta = nb.get("metadata", {})
    for key in ("papermill", "widgets", "toc", "varInspector"):
        meta.pop(key, None)
    nb["metadata"] = meta
    return nb


_CREDENTIAL_PATTERNS = [
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"(?i)aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{30,}"), "an AWS secret key"),
    (re.compile(r"(?i)aws_session_token\s*[=:]\s*['\"]?[A-Za-z0-9/+=]{40,}"), "an AWS session token"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"), "a GitHub token"),
]
_ACCOUNT_RE = re.compile(r"(?<![\d.])\d{12}(?![\d.])")
_ABS_PATH_RE = re.compile(
    r"(?<![\w.:/])(?:/(?:home|Users|root|tmp|work|var/folders|private|mnt|opt/(?!ml\b))[^\s'\"<>]*"
    r"|[A-Za-z]:\\\\?[^\s'\"<>]+)"
)


@dataclass
class Finding:
    where: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


def _texts(nb: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, text) for every source and text output of the notebook, and its metadata."""
    yield "metadata", json.dumps(nb.get("metadata", {}))
    for i, cell in enumerate(nb.get("cells", [])):
        yield f"cell {i} source", _source(cell)
        for out in cell.get("outputs", []) or []:
            if "text" in out:
                text = out["text"]
                yield f"cell {i} output", "".join(text) if isinstance(text, list) else str(text)
            for key, value in (out.get("data") or {}).items():
                if not key.startswith("image/"):
                    yield f"cell {i} output ({key})", "".join(value) if isinstance(value, list) else json.dumps(value)
            if "traceback" in out:
                yield f"cell {i} output (traceback)", "\n".join(out["traceback"])


def check_notebook(path: str | os.PathLike[str], *, max_bytes: int = MAX_NOTEBOOK_BYTES) -> list[Finding]:
    """Why ``path`` must not be committed as is (an empty list when it is fine)."""
    path = Path(path)
    raw = path.read_bytes()
    findings: list[Finding] = []
    if len(raw) > max_bytes:
        findings.append(Finding(path.name, f"{len(raw)} bytes, over the {max_bytes}-byte limit (outputs left in?)"))
    try:
        nb = json.loads(raw)
    except ValueError as exc:
        return findings + [Finding(path.name, f"not valid JSON: {exc}")]
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs") and not is_checked(cell):
            findings.append(Finding(f"{path.name} cell {i}", "has outputs but is not marked " + CHECK_MARK))
        if cell.get("execution_count") is not None and not is_checked(cell):
            findings.append(Finding(f"{path.name} cell {i}", "has an execution count (strip it)"))
        if is_checked(cell) and cell.get("outputs") and cell.get("execution_count") is None:
            findings.append(Finding(f"{path.name} cell {i}", "checked cell has outputs but no execution "
                                                            "count: nbval would refuse it (strip it again)"))
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "error":
                findings.append(Finding(f"{path.name} cell {i}", "stores an error output"))
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            findings.append(Finding(f"{path.name} cell {i}", "is papermill's injected-parameters cell"))
    if "papermill" in nb.get("metadata", {}):
        findings.append(Finding(path.name, "carries papermill metadata (strip it)"))
    for where, text in _texts(nb):
        for pattern, what in _CREDENTIAL_PATTERNS:
            if pattern.search(text):
                findings.append(Finding(f"{path.name} {where}", f"contains {what}"))
        for match in _ACCOUNT_RE.findall(text):
            if match != MOTO_ACCOUNT or "output" not in where:
                findings.append(Finding(f"{path.name} {where}", f"contains what looks like an AWS account id ({match})"))
        for match in _ABS_PATH_RE.findall(text):
            findings.append(Finding(f"{path.name} {where}", f"contains an absolute path ({match[:60]})"))
    if not any(c.get("cell_type") == "code" and "parameters" in c.get("metadata", {}).get("tags", [])
               for c in nb.get("cells", [])):
        findings.append(Finding(path.name, "has no code cell tagged 'parameters'"))
    return findings


def record_checked_outputs(executed: str | os.PathLike[str], source: str | os.PathLike[str]) -> int:
    """Copy the outputs of the checked cells of an executed notebook into its source notebook
    (then strip it): how the expected outputs nbval compares are refreshed after an intended
    change, e.g. a better detector. Cells are matched by their source text. Returns how many
    cells were updated."""
    import nbformat

    run = json.loads(Path(executed).read_text(encoding="utf-8"))
    outputs = {_source(c): c.get("outputs", []) for c in run.get("cells", []) if is_checked(c)}
    nb = json.loads(Path(source).read_text(encoding="utf-8"))
    updated = 0
    for cell in nb.get("cells", []):
        if is_checked(cell):
            if _source(cell) not in outputs:
                raise RoomkitError(f"{executed} has no executed copy of checked cell {_source(cell)[:60]!r}")
            cell["outputs"] = outputs[_source(cell)]
            updated += 1
    nb = strip_notebook(nb)
    nbformat.validate(nbformat.from_dict(nb))
    write_notebook(nb, source)
    return updated


def _checked_text(outputs: Sequence[Mapping[str, Any]], patterns: Sequence[tuple[str, str]]) -> str:
    """The text nbval compares for a checked cell: streams merged (nbval's own function), text
    data, images left out (as :func:`strip_notebook` leaves them out), then sanitized."""
    import nbformat
    from nbval.plugin import coalesce_streams

    def joined(out: Mapping[str, Any]) -> dict[str, Any]:  # committed files store text as lines
        out = dict(out)
        if isinstance(out.get("text"), list):
            out["text"] = "".join(out["text"])
        return out

    parts = []
    for out in coalesce_streams([nbformat.from_dict(joined(o)) for o in outputs]):
        if out.get("output_type") == "stream":
            text = out.get("text", "")
            parts.append(f"[{out.get('name')}] " + ("".join(text) if isinstance(text, list) else text))
        elif out.get("output_type") == "error":
            parts.append(f"[error] {out.get('ename')}: {out.get('evalue')}")
        else:
            for key, value in sorted((out.get("data") or {}).items()):
                if not key.startswith("image/"):
                    parts.append(f"[{key}] " + ("".join(value) if isinstance(value, list) else str(value)))
    text = "\n".join(parts)
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    return text


def compare_checked_outputs(executed: str | os.PathLike[str], source: str | os.PathLike[str],
                            sanitize: str | os.PathLike[str] | None = None) -> list[str]:
    """How the checked cells of an executed notebook differ from the committed ``source`` (an
    empty list when they match), after the replacements of the nbval ``sanitize`` file."""
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns(Path(sanitize).read_text(encoding="utf-8")) if sanitize else []
    run = json.loads(Path(executed).read_text(encoding="utf-8"))
    got = {_source(c): c.get("outputs", []) for c in run.get("cells", []) if is_checked(c)}
    nb = json.loads(Path(source).read_text(encoding="utf-8"))
    problems = []
    for cell in nb.get("cells", []):
        if not is_checked(cell):
            continue
        where = f"{Path(source).name}: checked cell {_source(cell).splitlines()[1:2] or ['']}"
        if _source(cell) not in got:
            problems.append(f"{where}: not in the executed copy")
            continue
        want, have = _checked_text(cell.get("outputs", []), patterns), _checked_text(got[_source(cell)], patterns)
        if want != have:
            problems.append(f"{where}:\n--- recorded\n{want}\n--- this run\n{have}")
    return problems


def write_notebook(nb: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write with Jupyter's own layout (1-space indent, sorted keys, trailing newline)."""
    path = Path(path)
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
