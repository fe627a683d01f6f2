"""Container logs as JSON lines: one object per line, for CloudWatch Logs Insights and ``jq``.

The app's records (``roomkit.serving``: ``worker_ready``, ``invocation`` per request, ...) carry
``event`` plus their fields; gunicorn's own records (boot, signals, worker exits) go through
the same formatter with ``logger`` and ``message``.
"""
from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any

log = logging.getLogger("roomkit.serving")


class JsonLogFormatter(logging.Formatter):
    """``{"time", "level", "event"|"message", "pid", ...fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
        }
        if record.name.startswith("roomkit"):
            line["event"] = record.getMessage()
        else:
            line["logger"] = record.name
            line["message"] = record.getMessage()
        line["pid"] = record.process
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["traceback"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(line, default=str)


def configure_logging(level: int) -> None:
    """Send ``roomkit.serving`` records to stderr as JSON lines (idempotent per process)."""
    if any(isinstance(h.formatter, JsonLogFormatter) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


def gunicorn_logconfig(level: int) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its error log as JSON on stderr, no access log (the app
    writes one richer ``invocation`` line per request instead)."""
    name = logging.getLevelName(level) if isinstance(logging.getLevelName(level), str) else "INFO"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "WARNING", "handlers": ["json_stderr"]},
        "loggers": {
            "gunicorn.error": {"level": name, "handlers": ["json_stderr"], "propagate": False,
                               "qualname": "gunicorn.error"},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False,
                                "qualname": "gunicorn.access"},
        },
        "handlers": {
            "json_stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "formatters": {"json": {"()": "roomkit.serving.logs.JsonLogFormatter"}},
    }
