"""The records of an async batch: job handles, completions, result rows, and their files.

:class:`Job` is what :func:`roomkit.aws.submit.submit` returns for each plan and what
:func:`save_jobs` / :func:`load_jobs` write as JSON, so a notebook (or ``roomkit results``) can
collect results long after the submitting process has gone. :class:`WaitResult` is what
``wait`` saw; :class:`ResultRow` is one line of the results table.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from roomkit.errors import InputError, RoomkitError

if TYPE_CHECKING:  # pragma: no cover
    import pandas

    from roomkit.plans.response import Detection

JOBS_FORMAT = "roomkit.aws.jobs/1"
SUCCESS, FAILED, PENDING = "success", "failed", "pending"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Job:
    """Handle on one plan sent to an async endpoint.

    ``inference_id`` starts with the plan's content hash (``plan_key``), so the same plan sent
    again is recognizable in notifications, S3 and logs; the suffix makes each invocation unique.
    ``reused`` marks a handle that points at an earlier invocation's result instead of a new one
    (see ``submit(rerun=...)``). ``error`` is set when the plan could not be submitted at all;
    such a job is already finished, as a failure. ``batch`` is the ``S3OutputPathExtension`` the
    invocation was made with (one per ``submit`` call): its output and failure objects share the
    prefix ``<S3OutputPath>/<batch>/``, which ``wait`` lists instead of probing each job.
    ``inline`` marks a plan sent inside the request (InvokeEndpointAsync ``Body``, small local
    plans): it was not uploaded, and ``s3_input_uri`` is empty.
    """

    input: str
    s3_input_uri: str
    inference_id: str
    output_location: str
    failure_location: str | None
    submitted_at: datetime
    content_type: str
    endpoint_name: str
    plan_key: str
    custom_attributes: str | None = None
    reused: bool = False
    error: str | None = None
    batch: str | None = None
    inline: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["submitted_at"] = self.submitted_at.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Job":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        try:
            values["submitted_at"] = parse_time(values["submitted_at"])
            return cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a roomkit job record ({exc}): {dict(data)!r:.200}") from None


@dataclass(frozen=True)
class Completion:
    """How one invocation ended, as told by its notification or found in S3."""

    inference_id: str
    status: str  # SUCCESS or FAILED
    output_location: str | None = None
    failure_location: str | None = None
    failure_reason: str | None = None
    completed_at: datetime | None = None
    source: str = "notification"  # "notification" | "s3" | "submit"
    response_body: bytes | None = field(default=None, repr=False, compare=False)


@dataclass
class WaitResult:
    """What :func:`roomkit.aws.submit.wait` saw: a completion per finished job, and what is left."""

    jobs: list[Job]
    completions: dict[str, Completion]
    timed_out: bool = False
    elapsed_s: float = 0.0
    duplicates: int = 0  # notifications seen more than once (SNS delivers at least once)

    @property
    def pending(self) -> list[Job]:
        return [j for j in self.jobs if j.inference_id not in self.completions]

    @property
    def succeeded(self) -> list[Job]:
        return [j for j in self.jobs if self._status(j) == SUCCESS]

    @property
    def failed(self) -> list[Job]:
        return [j for j in self.jobs if self._status(j) == FAILED]

    @property
    def done(self) -> bool:
        return not self.pending

    def _status(self, job: Job) -> str:
        c = self.completions.get(job.inference_id)
        return c.status if c else PENDING

    def summary(self) -> str:
        text = (
            f"{len(self.succeeded)} succeeded, {len(self.failed)} failed, "
            f"{len(self.pending)} pending after {self.elapsed_s:.1f} s"
        )
        if self.pending:
            names = ", ".join(j.input for j in self.pending[:10])
            more = f" and {len(self.pending) - 10} more" if len(self.pending) > 10 else ""
            text += f"; not finished: {names}{more}"
        return text

    def raise_for_timeout(self) -> "WaitResult":
        """Raise :class:`WaitTimeout` (naming the unfinished jobs) if any job is still pending."""
        if self.pending:
            raise WaitTimeout(self)
        return self


class WaitTimeout(RoomkitError):
    """``wait`` ran out of time; ``.result`` holds what finished and what did not."""

    code = "wait_timeout"

    def __init__(self, result: WaitResult) -> None:
        super().__init__("timed out: " + result.summary())
        self.result = result


@dataclass
class ResultRow:
    """One plan's line in the results table; ``detection`` is in pixel space, ready to draw."""

    input: str
    inference_id: str
    status: str
    rooms: int | None = None
    processing_time_ms: float | None = None
    latency_s: float | None = None
    width: int | None = None
    height: int | None = None
    output_location: str | None = None
    failure_location: str | None = None
    error: str | None = None
    submitted_at: datetime | None = None
    completed_at: datetime | None = None
    #: The rooms' types as read from the plan's text, e.g. "2 bedroom, bathroom, kitchen".
    room_types: str | None = None
    detection: "Detection | None" = field(default=None, repr=False)

    def to_dict(self, *, include_detection: bool = False) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "detection"}
        if include_detection:
            data["detection"] = self.detection
        return data


# -- files ----------------------------------------------------------------------------------------
def save_jobs(jobs: Iterable[Job], path: str | os.PathLike[str]) -> Path:
    """Write job handles as JSON (atomically: a crash never leaves half a file)."""
    path = Path(path)
    doc = {"format": JOBS_FORMAT, "jobs": [j.to_dict() for j in jobs]}
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_jobs(path: str | os.PathLike[str]) -> list[Job]:
    """Read job handles written by :func:`save_jobs`."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no jobs file {path}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read jobs file {path}: {exc}") from exc
    if isinstance(doc, list):
        records = doc
    elif isinstance(doc, dict) and isinstance(doc.get("jobs"), list):
        records = doc["jobs"]
    else:
        raise InputError(f"{path} is not a roomkit jobs file (no 'jobs' list)")
    return [Job.from_dict(r) for r in records]


# -- tables and figures ---------------------------------------------------------------------------
def to_dataframe(rows: Sequence[ResultRow], *, include_detection: bool = False) -> "pandas.DataFrame":
    """The results as a pandas DataFrame (one row per plan); needs pandas installed."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - pandas is in the locked environment
        raise RoomkitError("to_dataframe needs pandas: pip install pandas") from exc
    columns = [f.name for f in fields(ResultRow) if include_detection or f.name != "detection"]
    return pd.DataFrame(
        [r.to_dict(include_detection=include_detection) for r in rows], columns=columns
    )


@dataclass(frozen=True)
class LatencyStats:
    """Submit → completion seconds over the finished jobs."""

    count: int
    p50: float | None
    p95: float | None
    mean: float | None
    max: float | None

    def __str__(self) -> str:
        if not self.count:
            return "no finished jobs"
        return (
            f"{self.count} jobs: p50 {self.p50:.2f} s, p95 {self.p95:.2f} s, "
            f"mean {self.mean:.2f} s, max {self.max:.2f} s"
        )


def latency_stats(rows: Iterable[ResultRow]) -> LatencyStats:
    """p50/p95/mean/max of ``latency_s`` over rows that finished (success or failure)."""
    values = sorted(r.latency_s for r in rows if r.latency_s is not None and r.status != PENDING)
    if not values:
        return LatencyStats(0, None, None, None, None)
    return LatencyStats(
        count=len(values),
        p50=_percentile(values, 50),
        p95=_percentile(values, 95),
        mean=sum(values) / len(values),
        max=values[-1],
    )


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    pos = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def parse_time(value: Any) -> datetime:
    """ISO 8601 (``Z`` allowed) or datetime → aware UTC-based datetime."""
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)

