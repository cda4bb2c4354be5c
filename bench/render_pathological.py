"""Render time of pathological comment bodies at the 10,000-character limit.

Run: DEBUG=true .venv/bin/python bench/render_pathological.py
Prints the median of 5 renders per shape, slowest first.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "comments_project.settings")
os.environ.setdefault("DEBUG", "true")

import django  # noqa: E402

django.setup()

from comments.rendering import render_body  # noqa: E402
from tests.test_rendering_properties import PATHOLOGICAL  # noqa: E402


def main() -> None:
    results = []
    for name, text in PATHOLOGICAL.items():
        times = []
        for _ in range(5):
            started = time.perf_counter()
            render_body(text)
            times.append(time.perf_counter() - started)
        results.append((statistics.median(times), name))
    for seconds, name in sorted(results, reverse=True):
        print(f"{seconds * 1000:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
