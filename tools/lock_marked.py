"""Print the lock lines a Python version needs beyond the 3.11 freeze, each with its marker.

``make lock`` freezes the environment on CPython 3.11. Some requirements apply to other
versions only (papermill needs aiohttp on 3.12 alone); pip evaluates markers for the running
interpreter even with ``--python-version``, so they are resolved here explicitly:

    python tools/lock_marked.py REPORT.json BASE.txt 'python_version == "3.12"'

REPORT.json is pip's ``--report`` of a ``--dry-run --python-version X`` install of those
requirements constrained by BASE.txt (the freeze); every distribution it would install that
the freeze lacks is printed as ``name==version ; MARKER``.
"""
from __future__ import annotations

import json
import re
import sys


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(report: str, base: str, marker: str) -> int:
    with open(base, encoding="utf-8") as fh:
        pinned = {canonical(line.split("==")[0]) for line in fh if "==" in line}
    with open(report, encoding="utf-8") as fh:
        found = [item["metadata"] for item in json.load(fh)["install"]]
    for meta in sorted(found, key=lambda m: canonical(m["name"])):
        if canonical(meta["name"]) not in pinned:
            print(f"{meta['name']}=={meta['version']} ; {marker}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
