"""The reproducible HTTP benchmark (issue 7): `make bench`, `make bench-smoke`.

For each size N: seed with `manage.py seed_demo --comments N`, count SQL queries per
request in-process, then load the app served by `comments_project.server.web_command`
with wrk (fixed connections, fixed time, over loopback): the comment page with the read
cache warm and off, the batch counts the same two ways, anonymous submits. Then the
floor, `bench/floor_app.py` answering with the exact bytes captured from the app, under
the same server command and under gunicorn's sync workers. Writes JSON to
bench/results/ and prints a Markdown section (`--write-docs` puts it into
docs/performance.md between the bench markers).

Needs PostgreSQL (BENCH_DATABASE_URL, created and migrated here), Redis (BENCH_REDIS_URL,
a database the benchmark may flush) and wrk (`bash bench/setup.sh`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench.harness import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    PYTHON,
    STANDIN_KEY,
    BenchError,
    Server,
    checkpoint,
    ensure_database,
    find_wrk,
    free_port,
    http,
    redis_client,
    run_checked,
    run_wrk,
    wrk_script,
    wrk_version,
)
from bench.harness import bench_env as harness_env  # noqa: E402
from comments_project.server import web_command  # noqa: E402

DEFAULT_SIZES = (100, 1_000, 100_000)
FLOOR_APP = "bench.floor_app:application"
KINDS = ("read", "counts", "submit", "pipeline")
RESULTS_DIR = BENCH_DIR / "results"
DOCS = ROOT / "docs" / "performance.md"

READ_PATH = "/api/v1/articles/article-0/comments/?limit=50"
COUNTS_PATH = "/api/v1/articles/counts/?" + "&".join(f"slug=article-{i}" for i in range(1, 21))
SUBMIT_PATH = "/api/v1/articles/article-1/comments/"
FORM_TOKEN_PATH = "/api/v1/articles/article-1/form-token/"  # noqa: S105 (a path)
PATHS = {"read": READ_PATH, "counts": COUNTS_PATH, "submit": SUBMIT_PATH}
# The abuse limits every other figure runs without (bench/harness.py). One submit figure
# keeps them at their defaults, as a production site runs, with each request from its
# own address behind one trusted proxy so that they count without refusing the load.
ABUSE_LIMITS = (
    "COMMENTS_MIN_SUBMIT_SECONDS", "COMMENTS_THROTTLE_SUBMIT", "COMMENTS_THROTTLE_READ",
    "COMMENTS_FLOOD_SECONDS", "COMMENTS_DUPLICATE_WINDOW_SECONDS",
)  # fmt: skip


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def bench_env(database_url: str, redis_url: str, standin_url: str) -> dict[str, str]:
    """The environment of every process of the run: the app as deployed, limits off."""
    return harness_env(database_url, redis_url, standin_url, queue=f"bench-{os.getpid()}")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _commit() -> str:
    def git(*args: str) -> str:
        command = ["git", *args]
        result = subprocess.run(  # noqa: S603
            command, cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        return result.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def _package_set() -> str:
    """Which requirements file the serving virtualenv was built from. The test-only
    packages cost a web worker about 9 MiB: DRF imports Pygments and requests when
    they are installed."""
    try:
        metadata.version("pytest")
    except metadata.PackageNotFoundError:
        return "requirements.txt"
    return "requirements-dev.txt"


def environment(wrk: str, pg_version: str, redis_info: dict, server_args: list[str]) -> dict:
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    workers = server_args[server_args.index("--workers") + 1]
    threads = server_args[server_args.index("--blocking-threads") + 1]
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "django": _version("Django"),
        "granian": _version("granian"),
        "gunicorn": _version("gunicorn"),
        "server_workers": f"{workers} workers × {threads} threads",
        "packages": _package_set(),
        "postgresql": pg_version,
        "redis": redis_info.get("redis_version", "?"),
        "wrk": wrk_version(wrk).split(" [")[0].replace("debian/", ""),
        "commit": _commit(),
    }


class Run:
    """One benchmark run: configuration, the processes it started, the figures."""

    def __init__(self, args: argparse.Namespace, wrk: str, work: Path) -> None:
        self.args = args
        self.wrk = wrk
        self.work = work
        self.kinds = set(args.only)
        self.warnings: list[str] = []
        self.env: dict[str, str] = {}

    # --- measuring ------------------------------------------------------------------

    def load(
        self, server: Server, kind: str, label: str, script_args: tuple[str, ...] = ()
    ) -> dict:
        """Warm up, then measure one request kind for the configured time."""
        # Reads with arguments come each from its own address (the limits' server).
        script_kind = kind if kind == "submit" else ("forwarded" if script_args else "get")
        script = wrk_script(self.work / f"{script_kind}.lua", script_kind)
        url = server.base_url + PATHS[kind]
        threads, connections = self.args.wrk_threads, self.args.connections
        if kind == "submit":
            self.checkpoint()
        if self.args.warmup:
            warm_args = script_args
            if kind == "submit" and len(script_args) > 2:
                # Neither the same comments (the duplicate check) nor the same addresses
                # (flood control) as the measurement that follows.
                warm_args = (script_args[0], script_args[1] + "w", "0")
            elif script_args:
                warm_args = ("64",)  # addresses of their own, as above
            run_wrk(self.wrk, url, script, self.args.warmup, connections, threads, warm_args)
        with server.cpu_meter() as meter:
            figures = run_wrk(
                self.wrk, url, script, self.args.duration, connections, threads, script_args
            )
        figures["cpu_cores"] = meter.cores(figures.pop("wrk_cpu_seconds"))
        if kind == "submit":
            # Any answer but 202 is an error here, even another 2xx.
            detail = figures["error_detail"]
            sockets = sum(detail.values()) - detail["status"]
            wrong = sum(n for code, n in figures["statuses"].items() if code != "202")
            figures["errors"] = sockets + wrong
        cpu = figures["cpu_cores"]
        log(
            f"{label}: {figures['rps']:,.0f} req/s, p50 {figures['p50_ms']} ms, "
            f"p99 {figures['p99_ms']} ms, errors {figures['errors']}; cores: server "
            f"{cpu['server']}, postgres+redis {cpu['postgres_redis']}, wrk {cpu['wrk']}, "
            f"other {cpu['other']}, disk wait {cpu['disk_wait']}"
        )
        return figures

    def checkpoint(self) -> None:
        """CHECKPOINT (harness.checkpoint); a refusal is warned about once."""
        refused = checkpoint(self.env["DATABASE_URL"])
        if refused and refused not in self.warnings:
            log(f"warning: {refused}")
            self.warnings.append(refused)

    def capture(self, base: str) -> dict[str, dict[str, Any]]:
        """The answers the floor repeats: status, content type and bytes, per kind."""
        captured: dict[str, dict[str, Any]] = {}
        for kind in ("read", "counts"):
            if kind in self.kinds:
                http(base + PATHS[kind])  # primes the cache
                status, headers, body = http(base + PATHS[kind])
                _expect(status, 200, f"GET {PATHS[kind]}", body)
                captured[kind] = {
                    "status": status, "content_type": _ctype(headers), "body": body, "base": base,
                }  # fmt: skip
        if "submit" in self.kinds:
            status, headers, body = http(base + FORM_TOKEN_PATH)
            _expect(status, 200, f"GET {FORM_TOKEN_PATH}", body)
            token = json.loads(body)["form_token"]
            payload = {
                "author_name": "Bench reader 0",
                "author_email": "bench-0@example.com",
                "body": f"Capturing the answer to a submit ({os.getpid()}, {time.time()}).",
                "form_token": token,
                "website": "",
            }
            status, headers, body = http(
                base + SUBMIT_PATH,
                "POST",
                json.dumps(payload).encode(),
                {"Content-Type": "application/json"},
            )
            _expect(status, 202, f"POST {SUBMIT_PATH}", body)
            captured["submit"] = {
                "status": status, "content_type": _ctype(headers), "body": body, "token": token,
            }  # fmt: skip
        return captured

    def app_server(
        self, name: str, extra_env: dict[str, str] | None = None, *, limits: bool = False
    ) -> Server:
        """The app; with `limits`, the abuse limits at their defaults behind one proxy."""
        port = free_port()
        base = self.env
        if limits:
            base = {k: v for k, v in self.env.items() if k not in ABUSE_LIMITS}
            base["COMMENTS_TRUSTED_PROXIES"] = "1"
        env = {**base, **(extra_env or {})}
        return Server(name, web_command(port), env, self.work, f"http://127.0.0.1:{port}/healthz")

    def floor_server(self, name: str, routes_file: Path, gunicorn: bool) -> Server:
        port = free_port()
        env = {**self.env, "BENCH_FLOOR_ROUTES": str(routes_file)}
        if gunicorn:
            args = [
                PYTHON, "-m", "gunicorn", FLOOR_APP, "--bind", f"127.0.0.1:{port}",
                "--workers", "2", "--worker-class", "sync", "--log-level", "warning",
            ]  # fmt: skip
        else:
            args = web_command(port, app=FLOOR_APP)
        return Server(name, args, env, self.work, f"http://127.0.0.1:{port}/healthz")

    # --- one size -------------------------------------------------------------------

    def size(self, n: int, redis: Any) -> dict[str, Any]:
        log(f"N={n:,}: seeding")
        started = time.monotonic()
        run_checked(
            [PYTHON, "manage.py", "seed_demo", "--comments", str(n)],
            self.env, timeout=3600, what=f"seed_demo --comments {n}",
        )  # fmt: skip
        seed_seconds = round(time.monotonic() - started, 1)
        self.checkpoint()  # the seed's writes are flushed before anything is measured
        queries = json.loads(
            run_checked([PYTHON, "-m", "bench.queries"], self.env, 600, "counting SQL queries")
            .stdout.strip()
            .splitlines()[-1]
        )
        if queries.get("article_0_published") != n:
            self.warnings.append(
                f"N={n}: article-0 has {queries.get('article_0_published')} published comments"
            )
        redis.flushdb()
        rows: dict[str, dict[str, Any]] = {}
        memory: dict[str, list[dict[str, Any]]] = {}
        wanted = [k for k in ("read", "counts", "submit") if k in self.kinds]

        with self.app_server(f"app-{n}") as app:
            captured = self.capture(app.base_url)
            if "read" in self.kinds:
                rows["read-warm"] = self.load(app, "read", f"N={n:,} comment page, cache warm")
            if "counts" in self.kinds:
                rows["counts-warm"] = self.load(app, "counts", f"N={n:,} counts of 20, cache warm")
            if "submit" in self.kinds:
                nonce = f"{os.getpid()}x{n}"
                rows["submit"] = self.load(
                    app, "submit", f"N={n:,} submit", (captured["submit"]["token"], nonce)
                )
            memory["app, cache on"] = app.peak_memory()

        with (
            self.app_server(f"app-{n}-limits", limits=True) if wanted else contextlib.nullcontext()
        ) as app:
            # The same requests with every abuse limit at its default, as a site runs.
            for kind, label in (("read", "comment page"), ("counts", "counts of 20")):
                if kind in self.kinds:
                    rows[f"{kind}-limits"] = self.load(
                        app, kind, f"N={n:,} {label}, cache warm, default abuse limits", ("128",)
                    )
            if "submit" in self.kinds:
                command = [PYTHON, "-m", "bench.queries", "--submit-only"]
                what = "counting SQL queries with the abuse limits"
                output = run_checked(command, app.env, 600, what).stdout
                limited = json.loads(output.strip().splitlines()[-1])
                queries["submit-limits"] = limited["submit"]
                rows["submit-limits"] = self.load(
                    app,
                    "submit",
                    f"N={n:,} submit, default abuse limits",
                    (captured["submit"]["token"], f"{os.getpid()}x{n}L", "128"),
                )
            if app is not None:
                memory["app, default abuse limits"] = app.peak_memory()

        if "read" in self.kinds or "counts" in self.kinds:
            with self.app_server(f"app-{n}-nocache", {"COMMENTS_READ_CACHE": "false"}) as app:
                for kind, label in (("read", "comment page"), ("counts", "counts of 20")):
                    if kind not in self.kinds:
                        continue
                    status, _, body = http(app.base_url + PATHS[kind])
                    _expect(status, 200, f"GET {PATHS[kind]} (cache off)", body)
                    # The same answer but for the server's own address in the `next` link.
                    on = captured[kind]["body"].replace(captured[kind]["base"].encode(), b"")
                    if body.replace(app.base_url.encode(), b"") != on:
                        self.warnings.append(
                            f"N={n}: {kind} differs with the cache off "
                            f"({len(body)} bytes, {len(captured[kind]['body'])} with it on)"
                        )
                    rows[f"{kind}-cold"] = self.load(app, kind, f"N={n:,} {label}, cache off")
                memory["app, cache off"] = app.peak_memory()

        routes = {}
        for kind in wanted:
            body_file = self.work / f"floor-{n}-{kind}.bin"
            body_file.write_bytes(captured[kind]["body"])
            method = "POST" if kind == "submit" else "GET"
            routes[f"{method} {PATHS[kind].split('?')[0]}"] = {
                "status": captured[kind]["status"],
                "content_type": captured[kind]["content_type"],
                "body_file": str(body_file),
            }
        routes_file = self.work / f"floor-{n}.json"
        routes_file.write_text(json.dumps(routes))
        floors: dict[str, dict[str, Any]] = {}
        servers = ["granian"] + (["gunicorn"] if self.args.gunicorn_floor else [])
        for server in servers:
            floors[server] = {}
            with self.floor_server(f"floor-{server}-{n}", routes_file, server == "gunicorn") as fl:
                for kind in wanted:
                    args = (captured["submit"]["token"], "floor") if kind == "submit" else ()
                    figures = self.load(fl, kind, f"N={n:,} floor {server} {kind}", args)
                    figures["bytes"] = len(captured[kind]["body"])
                    floors[server][kind] = figures
                memory[f"floor, {server}"] = fl.peak_memory()

        labelled = []
        for key, label in (
            ("read-warm", "comment page, cache warm"),
            ("read-cold", "comment page, cache off"),
            ("counts-warm", "counts of 20, cache warm"),
            ("counts-cold", "counts of 20, cache off"),
            ("submit", "submit (202)"),
            ("read-limits", "comment page, cache warm, default abuse limits"),
            ("counts-limits", "counts of 20, cache warm, default abuse limits"),
            ("submit-limits", "submit (202), default abuse limits"),
        ):
            if key not in rows:
                continue
            row = rows[key]
            kind, _, mode = key.partition("-")
            floor = floors["granian"][kind]["rps"]
            gunicorn = floors.get("gunicorn", {}).get(kind, {}).get("rps")
            row.update(
                key=key,
                label=label,
                kind=kind,
                body_bytes=len(captured[kind]["body"]),
                sql=queries[key if key in queries else kind]["cold" if mode == "cold" else "warm"][
                    "queries"
                ],
                ratio_floor=round(row["rps"] / floor, 3) if floor else None,
                ratio_gunicorn=round(row["rps"] / gunicorn, 3) if gunicorn else None,
            )
            labelled.append(row)
        return {
            "n": n,
            "seed_seconds": seed_seconds,
            "queries": queries,
            "rows": labelled,
            "floors": floors,
            "memory": memory,
        }


def _expect(status: int, expected: int, what: str, body: bytes) -> None:
    if status != expected:
        raise BenchError(f"{what} answered {status}, not {expected}: {body[:500]!r}")


def _ctype(headers: dict[str, str]) -> str:
    return next((v for k, v in headers.items() if k.lower() == "content-type"), "")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny run: N=20, 2 s per figure, 4 connections, no gunicorn floor",
    )
    parser.add_argument("--duration", type=int, help="seconds per figure (default 10; smoke 2)")
    parser.add_argument(
        "--warmup",
        type=int,
        help="seconds of warm-up before each figure (default 2; smoke 1; 0: none)",
    )
    parser.add_argument("--connections", type=int, help="wrk connections (default 16; smoke 4)")
    parser.add_argument(
        "--wrk-threads",
        type=int,
        default=1,
        help="wrk threads (default 1: leaves the cores to the server)",
    )
    parser.add_argument("--sizes", help="comma-separated N (default 100,1000,100000; smoke 20)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(KINDS)}")
    parser.add_argument(
        "--gunicorn-floor",
        action=argparse.BooleanOptionalAction,
        help="also measure the floor under gunicorn sync (default: not in smoke)",
    )
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="put the Markdown into docs/performance.md between the bench markers",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="measure nothing: print (and with --write-docs, write) the Markdown of a result",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="write the JSON here (default: "
        "bench/results/run-<time>.json; latest.json too for a full run)",
    )
    args = parser.parse_args(argv)
    smoke = args.smoke
    args.duration = args.duration or (2 if smoke else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if smoke else 2)
    args.connections = args.connections or (4 if smoke else 16)
    if args.sizes:
        args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    else:
        args.sizes = [20] if smoke else list(DEFAULT_SIZES)
    args.partial = bool(args.only) or args.sizes != list(DEFAULT_SIZES)
    args.only = [k.strip() for k in args.only.split(",")] if args.only else list(KINDS)
    unknown = set(args.only) - set(KINDS)
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}; use {','.join(KINDS)}")
    if args.gunicorn_floor is None:
        args.gunicorn_floor = not smoke
    if args.duration < 1 or args.connections < 1 or args.wrk_threads < 1:
        parser.error("--duration, --connections and --wrk-threads must be at least 1")
    return args


def run_pipeline(
    database_url: str, redis_url: str, duration: float, smoke: bool
) -> dict[str, Any] | None:
    """bench/pipeline.py's result when that file exists (another part of issue 7)."""
    if not (BENCH_DIR / "pipeline.py").exists():
        log("pipeline: bench/pipeline.py does not exist (yet); skipped")
        return None
    module = importlib.import_module("bench.pipeline")
    log("pipeline: running bench.pipeline.run_pipeline_bench")
    return module.run_pipeline_bench(
        database_url=database_url, redis_url=redis_url, duration=duration, smoke=smoke
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        section = report.markdown(json.loads(args.render.read_text()))
        print(section)
        if args.write_docs:
            report.write_docs(DOCS, section)
        return 0
    # A stopped run (SIGTERM, as from `kill` or a CI timeout) leaves through the context
    # managers, so the servers, the stand-in and wrk it started are stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    started_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        wrk = find_wrk()
        database_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
        redis_url = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL
        pg_version = ensure_database(database_url)
        redis = redis_client(redis_url)
        if not (ROOT / "articles/management/commands/seed_demo.py").exists():
            raise BenchError("manage.py seed_demo is missing (articles/management/commands)")
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    load = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="comments-bench-"))
    run = Run(args, wrk, work)
    if load > 1.0:
        log(f"warning: load average {load:.2f}; other work on these cores lowers the figures")
    result: dict[str, Any] = {
        "schema": 1,
        "started_at": started_at.isoformat().replace("+00:00", "Z"),
        "smoke": args.smoke,
        "full": not args.smoke and not args.partial,
        "config": {
            key: getattr(args, key)
            for key in ("duration", "warmup", "connections", "wrk_threads", "sizes", "only")
        }
        | {"gunicorn_floor": args.gunicorn_floor},
        "paths": PATHS,
    }
    failed, exit_code = True, 0
    try:
        redis.flushdb()
        standin_port = free_port()
        run.env = bench_env(database_url, redis_url, f"http://127.0.0.1:{standin_port}")
        server_args = web_command(0)
        result["environment"] = environment(wrk, pg_version, redis.info("server"), server_args)
        shown = [Path(server_args[0]).name, *server_args[1:-1]]
        result["server_command"] = ["<port>" if arg == "0" else arg for arg in shown]
        log(f"migrating {database_url.rsplit('@', 1)[-1]}")
        run_checked([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], run.env, 900,
                    "migrate")  # fmt: skip
        standin = Server(
            "akismet-standin",
            [PYTHON, "manage.py", "akismet_standin", "--port", str(standin_port),
             "--key", STANDIN_KEY],
            run.env, work, f"http://127.0.0.1:{standin_port}/__admin/requests",
        )  # fmt: skip
        with standin:
            result["sizes"] = [run.size(n, redis) for n in args.sizes]
            result["read_cache_setting"] = result["sizes"][0]["queries"]["read_cache_setting"]
            if result["read_cache_setting"] is None:
                run.warnings.append(
                    "COMMENTS_READ_CACHE is not a setting of this version: there is no read "
                    "cache, so 'cache warm' and 'cache off' run the same code"
                )
        if "pipeline" in run.kinds:
            try:
                result["pipeline"] = run_pipeline(
                    database_url, redis_url, float(args.duration), args.smoke
                )
            except Exception as exc:  # reported in the results; the run fails
                result["pipeline"] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"bench: the pipeline benchmark failed: {exc!r}", file=sys.stderr)
                exit_code = 1
        failed = False
    except BenchError as exc:
        print(f"bench: {exc}\n(logs in {work})", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(Exception):
            queue = run.env.get("CELERY_QUEUE")
            if queue:
                redis.delete(queue)  # the submitted comments' check tasks
            redis.flushdb()
        if not failed:
            shutil.rmtree(work, ignore_errors=True)
        elif work.exists():
            print(f"bench: server logs kept in {work}", file=sys.stderr)

    finished = dt.datetime.now(dt.UTC).replace(microsecond=0)
    result["finished_at"] = finished.isoformat().replace("+00:00", "Z")
    result["warnings"] = run.warnings
    text = json.dumps(result, indent=2) + "\n"
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    outputs = [args.output] if args.output else [RESULTS_DIR / f"run-{stamp}.json"]
    if result["full"]:
        outputs.append(RESULTS_DIR / "latest.json")
    for output in outputs:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        log(f"wrote {output}")
    section = report.markdown(result)
    print("\n" + section)
    if args.write_docs:
        report.write_docs(DOCS, section)
        log(f"updated {DOCS.relative_to(ROOT)}")
    for warning in report.warnings(result):
        log(f"warning: {warning}")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
