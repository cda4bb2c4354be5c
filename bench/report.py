"""The Markdown of a benchmark run, and its place in docs/performance.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# Cores used by anything but the system under test and wrk above which a figure is
# flagged: the machine was shared, and the figure is low.
OTHER_CPU_WARNING = 0.15
DISK_WAIT_WARNING = 0.15
BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"

HEADING = "## HTTP benchmark (`make bench`)"
METHOD = """\
Method. `bench/run.py` (`make bench`; `make bench-smoke` is a short sanity run) creates
and migrates a PostgreSQL database of its own (`BENCH_DATABASE_URL`, default
`postgres://postgres@127.0.0.1:5432/comments_bench`) and uses a Redis database of its own
(`BENCH_REDIS_URL`, default `redis://127.0.0.1:6379/9`, flushed before and after). For
each N it runs `manage.py seed_demo --comments N` (each reply answers one of the 50
comments before it, so the first page holds about the same comments at every N) and
serves the app with `comments_project.server.web_command` (granian; `make bench` runs
from `.venv-prod`, which holds only `requirements.txt`, as production does), `DEBUG=false`,
the Akismet stand-in, every abuse limit off and no Celery worker (submitted comments stay
pending; the queue is purged afterwards). wrk (Debian) loads it over loopback on the same
2 cores, with a fixed number of connections for a fixed time after a short warm-up, one
figure at a time:
the widget's first page (`GET /api/v1/articles/article-0/comments/?limit=50`) with the
read cache primed ("cache warm") and, on a second server start with
`COMMENTS_READ_CACHE=false`, with every request computed ("cache off"; PostgreSQL's own
buffers stay warm); the counts of 20 articles
(`GET /api/v1/articles/counts/?slug=article-1&…&slug=article-20`), the same two ways; and
anonymous submits (`POST /api/v1/articles/article-1/comments/`, a unique body and
e-mail per request, 202 expected). The cached page, the cached counts and the submit are
measured once more on a server with every abuse limit at its default (the read limit;
for submits the form token's age, the limits per address and per e-mail, flood control
and the duplicate check), each request from its own address behind one trusted proxy
(`X-Forwarded-For`) so that the limits do their work without refusing the load, and each
submit with an `Idempotency-Key`, as the widget sends them ("default abuse limits"). The
floor is `bench/floor_app.py`, a minimal WSGI app under the
same server command that answers each path with the exact bytes captured from the app
just before; every figure is also given as a fraction of that floor and of the same floor
under `gunicorn --workers 2` (sync workers), the reference the issue's targets are quoted
against. Errors are answers other than 2xx/3xx (for submits: other than 202) plus socket
errors and timeouts. SQL queries are counted in-process for one request of each kind
through the same WSGI app (cold: cache emptied first; warm: the same request again).
The cores columns split the CPU time used while a figure was measured between the server,
PostgreSQL and Redis, wrk, and everything else; "other" above 0.15 cores means the machine
was shared and the figure is low. "Disk wait" is the cores left idle waiting on the disk
(the machine's iowait): above 0.15 the disk held the figure back (for submits, each
commit waits for its WAL flush). PostgreSQL is told to CHECKPOINT after seeding and before
each submit figure, so that no figure flushes the pages earlier work dirtied. Memory is
the peak RSS (VmHWM) of each server process when its figures are done. The raw figures
of the last full run are in
`bench/results/latest.json`; `python bench/run.py --render FILE --write-docs` puts a result
here again.
"""


def _int(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _ms(value: float | None) -> str:
    return "–" if value is None else (f"{value:.1f}" if value < 100 else f"{value:,.0f}")


def _ratio(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}×" if value >= 0.1 else f"{value:.3f}×"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def _cores(figures: dict[str, Any]) -> str:
    cpu = figures.get("cpu_cores")
    if not cpu:
        return "–"
    keys = ("server", "postgres_redis", "wrk", "other", "disk_wait")
    return ", ".join("–" if key not in cpu else f"{cpu[key]:.2f}" for key in keys)


def _size(n: int) -> str:
    return f"{n:,}"


def markdown(result: dict[str, Any]) -> str:
    """The section between the markers: method, setup, app table, floors, memory, pipeline."""
    env = result["environment"]
    config = result["config"]
    title = "smoke run" if result["smoke"] else "run"
    lines = [
        METHOD,
        f"### Latest {title}: {result['started_at'][:16].replace('T', ' ')} UTC, "
        f"commit {env['commit']}",
        "",
        f"{env['cores']} cores, {env['memory_gib']} GiB, Python {env['python']}; "
        f"granian {env['granian']} ({env['server_workers']}), Django {env['django']}, "
        f"packages of {env.get('packages', 'requirements-dev.txt')}, "
        f"PostgreSQL {env['postgresql']}, Redis {env['redis']}; {env['wrk']}, "
        f"{config['wrk_threads']} thread, {config['connections']} connections, "
        f"{config['duration']} s per figure after {config['warmup']} s of warm-up. "
        f"Read cache setting: `COMMENTS_READ_CACHE` "
        + ("exists." if result.get("read_cache_setting") is not None else "absent (no cache)."),
        "",
        "| N | request | req/s | ÷ floor | ÷ gunicorn floor | p50 ms | p99 ms | errors "
        "| SQL/request | body bytes | cores: server, db, wrk, other, disk wait |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for size in result["sizes"]:
        for row in size["rows"]:
            lines.append(
                f"| {_size(size['n'])} | {row['label']} | {_int(row['rps'])} "
                f"| {_ratio(row.get('ratio_floor'))} | {_ratio(row.get('ratio_gunicorn'))} "
                f"| {_ms(row['p50_ms'])} | {_ms(row['p99_ms'])} | {row['errors']} "
                f"| {_int(row.get('sql'))} | {_int(row.get('body_bytes'))} | {_cores(row)} |"
            )
    lines += [
        "",
        "Floors (`bench/floor_app.py`, the same bytes):",
        "",
        "| N | request | granian req/s | p50 ms | p99 ms | gunicorn sync req/s | p50 ms "
        "| p99 ms | granian ÷ gunicorn | cores (granian run) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for size in result["sizes"]:
        floors = size["floors"]
        for kind, floor in floors.get("granian", {}).items():
            gunicorn = floors.get("gunicorn", {}).get(kind)
            ratio = floor["rps"] / gunicorn["rps"] if gunicorn and gunicorn["rps"] else None
            lines.append(
                f"| {_size(size['n'])} | {kind} ({_int(floor['bytes'])} B) | {_int(floor['rps'])} "
                f"| {_ms(floor['p50_ms'])} | {_ms(floor['p99_ms'])} "
                f"| {_int(gunicorn['rps']) if gunicorn else '–'} "
                f"| {_ms(gunicorn['p50_ms']) if gunicorn else '–'} "
                f"| {_ms(gunicorn['p99_ms']) if gunicorn else '–'} | {_ratio(ratio)} "
                f"| {_cores(floor)} |"
            )
    lines += [
        "",
        "Peak memory (VmHWM, MiB) of the server processes:",
        "",
        "| N | server | main | workers | total |",
        "| ---: | --- | ---: | --- | ---: |",
    ]
    for size in result["sizes"]:
        for server, processes in size["memory"].items():
            main = sum(p["hwm_kib"] for p in processes if p["role"] == "main")
            workers = [p["hwm_kib"] for p in processes if p["role"] != "main"]
            total = main + sum(workers)
            lines.append(
                f"| {_size(size['n'])} | {server} | {_mib(main)} "
                f"| {' + '.join(_mib(w) for w in workers) or '–'} | {_mib(total)} |"
            )
    pipeline = result.get("pipeline")
    if pipeline is not None:
        lines += ["", "Pipeline (`bench/pipeline.py`):", "", "| figure | value |", "| --- | ---: |"]
        lines += [f"| {key} | {value} |" for key, value in _flatten(pipeline)]
    notes = warnings(result)
    if notes:
        lines += ["", "Warnings:", ""] + [f"- {warning}" for warning in notes]
    return "\n".join(lines) + "\n"


def warnings(result: dict[str, Any]) -> list[str]:
    """The run's warnings, and a line each on the figures other processes took CPU from
    and on those the disk held back."""
    figures = [
        figures
        for size in result.get("sizes", [])
        for figures in [
            *size["rows"],
            *(f for server in size["floors"].values() for f in server.values()),
        ]
    ]
    others = [f["cpu_cores"]["other"] for f in figures if "cpu_cores" in f]
    noisy = [other for other in others if other > OTHER_CPU_WARNING]
    notes = list(result.get("warnings", []))
    if noisy:
        notes.append(
            f"{len(noisy)} of {len(others)} figures were measured while other processes used "
            f"more than {OTHER_CPU_WARNING} cores (up to {max(noisy):.2f}; see the cores "
            "columns): those figures are low; measure again on a quiet machine"
        )
    waits = [f["cpu_cores"].get("disk_wait", 0.0) for f in figures if "cpu_cores" in f]
    stalled = [wait for wait in waits if wait > DISK_WAIT_WARNING]
    if stalled:
        notes.append(
            f"{len(stalled)} of {len(waits)} figures were measured while the cores waited on "
            f"the disk for more than {DISK_WAIT_WARNING} cores (up to {max(stalled):.2f}; see "
            "the cores columns): the disk held those figures back"
        )
    return notes


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(data, dict):
        items: list[tuple[str, str]] = []
        for key, value in data.items():
            items += _flatten(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}")
        return items
    if isinstance(data, float):
        return [(prefix, f"{data:,.2f}")]
    if isinstance(data, int) and not isinstance(data, bool):
        return [(prefix, f"{data:,}")]
    return [(prefix, str(data).replace("|", "\\|").replace("\n", " "))]


def write_docs(path: Path, section: str) -> None:
    """Replace the text between the markers; add a heading and the markers if absent."""
    text = path.read_text() if path.exists() else "# Performance\n"
    block = f"{BEGIN}\n{section.rstrip()}\n{END}"
    if BEGIN in text and END in text:
        pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + HEADING + "\n\n" + block + "\n"
    path.write_text(text if text.endswith("\n") else text + "\n")
