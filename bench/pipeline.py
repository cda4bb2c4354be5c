"""Pipeline benchmark (issue 7): one Celery worker against an Akismet that answers in 150 ms.

    python bench/pipeline.py [--database-url URL] [--redis-url URL] [--duration S] [--smoke]

migrates (and seeds) the database, runs the benchmark and prints JSON; `bench/run.py`
calls `run_pipeline_bench()` on a database it has migrated and seeded. Loopback only.

`run_pipeline_bench` starts a driver (this file with `--driver`, Django configured by the
environment given to it) in a new process group, and kills that group at the end. The
driver starts, in the same group, the Akismet stand-in (150 ms latency), one
`celery worker` with the production pool settings on its own queue and the web server
(`comments_project.server.web_command`), each stopped by the driver when it is done.
It works on articles of its own, deleted at the end with their comments.

- throughput: K pending comments are created through `moderation.submit` (each check
  enqueued on commit), then a worker is started; checks/s counts the transitions out of
  pending from the first to the last. Twice: all K on one article (the hot case: every
  publish also updates that article's row) and spread round robin over 20 articles.
- latency: comments are submitted through the HTTP API at a steady 50/s, round robin over
  the 20 articles, for `duration` seconds after a short unmeasured warm-up; latency is
  the published transition's time minus the comment's created_at.
- memory: the worker's peak RSS (VmHWM; its pool threads share the process).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/pipeline.py` imports the project
PYTHON = sys.executable

from bench.harness import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    STANDIN_KEY,
)
from bench.harness import bench_env as harness_env  # noqa: E402

AKISMET_LATENCY = 0.15
SUBMIT_RATE = 50.0
BACKLOG = 2000
SMOKE_BACKLOG = 30
SMOKE_SECONDS = 3.0
ARTICLES = 20  # the spread backlog and the steady submits go round robin over these
DRIVER_TIMEOUT = 600.0  # on top of the latency phase's duration


def log(message: str) -> None:
    print(f"[pipeline] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(what: str, predicate: Callable[[], object], timeout: float) -> Any:
    """Poll predicate() until it is truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not done in {timeout:.0f}s")


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def bench_env(database_url: str, redis_url: str, standin_port: int) -> dict[str, str]:
    """The deployed configuration (production pool settings), abuse limits off."""
    return harness_env(
        database_url,
        redis_url,
        f"http://127.0.0.1:{standin_port}",
        queue=f"bench-pipeline-{os.getpid()}",
    )


def _stop_group(leader: subprocess.Popen) -> None:
    """SIGTERM the leader's process group, SIGKILL it after 20 s and whatever outlived it."""
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader.pid, sig)
        try:
            leader.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(leader.pid, signal.SIGKILL)


def run_pipeline_bench(
    database_url: str, redis_url: str, duration: float, smoke: bool
) -> dict[str, Any]:
    """Run the benchmark on a migrated database and a Redis database; the figures as a dict."""
    env = bench_env(database_url, redis_url, free_port())
    args = [PYTHON, str(Path(__file__).resolve()), "--driver", "--duration", str(duration)]
    if smoke:
        args.append("--smoke")
    driver = subprocess.Popen(  # noqa: S603 (our own interpreter and script)
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        output, _ = driver.communicate(timeout=DRIVER_TIMEOUT + duration)
    except subprocess.TimeoutExpired:
        limit = DRIVER_TIMEOUT + duration
        raise RuntimeError(f"the pipeline benchmark took over {limit:.0f}s") from None
    finally:
        _stop_group(driver)  # the driver's group: stand-in, worker, web server
    if driver.returncode != 0:
        raise RuntimeError(f"the pipeline driver failed ({driver.returncode}); see its log above")
    return json.loads(output.strip().splitlines()[-1])


# --- the driver (a separate process: Django configured by its environment) -----------


class Child:
    """A server process in the driver's process group, its output in a log file."""

    def __init__(self, name: str, args: list[str], work: Path) -> None:
        self.name = name
        self.log_path = work / f"{name}.log"
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(  # noqa: S603
                args, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT
            )

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{tail}")

    def cpu_seconds(self) -> float:
        """User plus system CPU time so far, of all its threads."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_memory(self) -> dict[str, int]:
        """VmHWM and VmRSS in KiB, and the thread count, from /proc."""
        wanted = {"VmHWM": "peak_rss_kib", "VmRSS": "rss_kib", "Threads": "threads"}
        values = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in wanted:
                values[wanted[key]] = int(rest.split()[0])
        return values

    def stop(self) -> None:
        """SIGTERM (a worker finishes its running tasks), SIGKILL after 30 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def child(name: str, args: list[str], work: Path) -> Iterator[Child]:
    process = Child(name, args, work)
    try:
        yield process
    finally:
        process.stop()


def _standin_call(http: Any, path: str, body: dict[str, Any] | None = None) -> Any:
    """GET (or with a body, POST) one of the stand-in's admin endpoints."""
    url = os.environ["AKISMET_API_URL"] + path
    response = http.get(url) if body is None else http.post(url, json=body)
    response.raise_for_status()
    return response.json()


def _transitions(ids: list[int], to_status: str | None = None) -> list[tuple[int, Any]]:
    """(comment id, time) of each transition out of pending, optionally into `to_status`."""
    from comments.models import CommentEvent

    events = CommentEvent.objects.filter(comment_id__in=ids, from_status="pending").exclude(
        to_status="pending"
    )
    if to_status:
        events = events.filter(to_status=to_status)
    return list(events.values_list("comment_id", "created_at"))


def _wait_checked(ids: list[int], worker: Child, timeout: float) -> tuple[int, float | None]:
    """Wait until none of `ids` is pending: how many still are when the time is up, and
    the worker's CPU milliseconds per check from the first finished check on."""
    from comments.models import Comment

    deadline = time.monotonic() + timeout
    pending = len(ids)
    first: tuple[float, int] | None = None
    while time.monotonic() < deadline:
        worker.check_alive()
        pending = Comment.objects.filter(pk__in=ids, status="pending").count()
        if first is None and pending < len(ids):
            first = (worker.cpu_seconds(), pending)
        if not pending:
            break
        time.sleep(0.25)
    cpu_ms = None
    if first is not None and first[1] > pending:
        cpu_ms = round((worker.cpu_seconds() - first[0]) * 1000 / (first[1] - pending), 2)
    return pending, cpu_ms


def _statuses(ids: list[int]) -> dict[str, int]:
    from comments.models import Comment

    return dict(Counter(Comment.objects.filter(pk__in=ids).values_list("status", flat=True)))


def _create_backlog(articles: list[Any], count: int) -> list[int]:
    """Pending comments (round robin over `articles`) whose checks are enqueued on commit."""
    from comments import moderation

    started = time.monotonic()
    ids = []
    for n in range(count):
        if time.monotonic() - started > 120:
            break
        comment = moderation.submit(
            article=articles[n % len(articles)],
            author_name=f"Backlog reader {n}",
            author_email=f"backlog{n}@example.com",
            body=f"Backlog comment {n}: a plain remark about the article.",
            ip_address="127.0.0.1",
            user_agent="pipeline-bench",
        )
        ids.append(comment.pk)
    log(f"throughput: {len(ids)} pending comments enqueued in {time.monotonic() - started:.1f}s")
    return ids


def _throughput(
    name: str, articles: list[Any], count: int, http: Any, standin: Child, work: Path
) -> tuple[dict[str, Any], Child]:
    """Create a backlog, then start a worker and time how fast it empties it.

    Returns the figures and the worker, still running: the caller stops it.
    """
    _standin_call(http, "/__admin/reset", {})
    _standin_call(http, "/__admin/latency", {"seconds": AKISMET_LATENCY})
    ids = _create_backlog(articles, count)
    worker = Child(
        f"worker-{name}",
        [PYTHON, "-m", "celery", "-A", "comments_project", "worker", "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "-n", f"bench-pipeline-{os.getpid()}@%h"],
        work,
    )  # fmt: skip
    standin_cpu = standin.cpu_seconds()
    try:
        figures = _backlog_figures(ids, worker, http)
    except BaseException:
        worker.stop()
        raise
    requests = _standin_call(http, "/__admin/stats")["requests"]
    standin_ms = (standin.cpu_seconds() - standin_cpu) * 1000 / max(1, requests)
    figures["akismet_standin_cpu_ms_per_request"] = round(standin_ms, 2)
    log(
        f"throughput ({len(articles)} article(s)): {figures['checks_per_second']} checks/s "
        f"over {figures['seconds']}s"
    )
    return figures, worker


def _backlog_figures(ids: list[int], worker: Child, http: Any) -> dict[str, Any]:
    unfinished, cpu_ms = _wait_checked(ids, worker, timeout=60 + len(ids) / 10)
    times = sorted(created for _, created in _transitions(ids))
    span = (times[-1] - times[0]).total_seconds() if len(times) > 1 else 0.0
    result = {
        "comments": len(ids),
        "checked": len(times),
        "unfinished": unfinished,
        "seconds": round(span, 3),
        "checks_per_second": round((len(times) - 1) / span, 1) if span else None,
        "statuses": _statuses(ids),
        "worker_cpu_ms_per_check": cpu_ms,
        "akismet_max_in_flight": _standin_call(http, "/__admin/stats")["max_in_flight"],
    }
    return result


def _submit_steadily(
    base_url: str, slugs: list[str], seconds: float, warmup: float
) -> list[dict[str, Any]]:
    """POST comments at SUBMIT_RATE on a fixed schedule (a slow answer never delays the next).

    The first `warmup` seconds (a cold server's first requests) are marked, not measured.
    """
    import httpx

    warmup_count = round(SUBMIT_RATE * warmup)
    count = warmup_count + max(1, round(SUBMIT_RATE * seconds))
    sent: list[dict[str, Any]] = []
    lock = threading.Lock()
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)

    def submit(client: httpx.Client, n: int) -> None:
        body = {
            "author_name": f"Steady reader {n}",
            "author_email": f"steady{n}@example.com",
            "body": f"Steady comment {n}: a plain remark about the article.",
            "website": "",
        }
        started = time.monotonic()
        try:
            slug = slugs[n % len(slugs)]
            response = client.post(f"/api/v1/articles/{slug}/comments/", json=body)
            status, comment_id = response.status_code, response.json().get("id")
        except (httpx.HTTPError, ValueError) as exc:
            status, comment_id = type(exc).__name__, None
        took = time.monotonic() - started
        entry = {"status": status, "id": comment_id, "sent": started, "took": took}
        if n >= warmup_count:
            with lock:
                sent.append(entry)

    # Each request is bounded by the client's timeout; leaving the block waits for them.
    with (
        httpx.Client(base_url=base_url, timeout=10, limits=limits) as client,
        ThreadPoolExecutor(max_workers=32) as pool,
    ):
        start = time.monotonic() + 0.2
        for n in range(count):
            delay = start + n / SUBMIT_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(submit, client, n)
    return sent


def _latency(
    articles: list[Any], seconds: float, worker: Child, http: Any, work: Path
) -> dict[str, Any]:
    """Submit through the HTTP API at a steady rate; time each comment until it is published."""
    import httpx

    from comments.models import Comment
    from comments_project.server import web_command

    _standin_call(http, "/__admin/reset", {})
    _standin_call(http, "/__admin/latency", {"seconds": AKISMET_LATENCY})
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with child("web", web_command(port), work) as web:

        def web_ready() -> bool:
            web.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                return http.get(base_url + "/healthz").status_code == 200
            return False

        wait_until("the web server", web_ready, timeout=60)
        warmup = 1.0 if seconds < 5 else 2.0
        log(f"latency: submitting {SUBMIT_RATE:.0f}/s for {warmup:.0f}+{seconds:.0f}s over HTTP")
        cpu_before = worker.cpu_seconds()
        slugs = [article.slug for article in articles]
        sent = _submit_steadily(base_url, slugs, seconds, warmup)
        ids = [entry["id"] for entry in sent if entry["status"] == 202 and entry["id"]]
        # The web server keeps running until the checks are done: its dispatcher may
        # still hold the last ids (a stopped process leaves them to the sweeper).
        unfinished, _ = _wait_checked(ids, worker, timeout=60)
    checks = len(ids) + round(SUBMIT_RATE * warmup)  # the warm-up's comments were checked too
    cpu_ms = (worker.cpu_seconds() - cpu_before) * 1000 / checks
    published = dict(_transitions(ids, to_status="published"))
    created = dict(Comment.objects.filter(pk__in=ids).values_list("pk", "created_at"))
    latencies = [
        (published[pk] - created[pk]).total_seconds()
        for pk in ids
        if pk in published and pk in created
    ]
    send_times = sorted(entry["sent"] for entry in sent)
    sending = send_times[-1] - send_times[0] if len(send_times) > 1 else 0.0
    took = [entry["took"] for entry in sent]
    result = {
        "submit_path": "http",
        "articles": len(articles),
        "target_rate": SUBMIT_RATE,
        "warmup_s": warmup,
        "submitted": len(sent),
        "accepted": len(ids),
        "refused": dict(Counter(str(e["status"]) for e in sent if e["status"] != 202)),
        "achieved_rate": round((len(sent) - 1) / sending, 1) if sending else None,
        "unfinished": unfinished,
        "statuses": _statuses(ids),
        "published_p50_s": _rounded(percentile(latencies, 50)),
        "published_p99_s": _rounded(percentile(latencies, 99)),
        "published_max_s": _rounded(max(latencies, default=None)),
        "http_submit_p50_s": _rounded(percentile(took, 50)),
        "http_submit_p99_s": _rounded(percentile(took, 99)),
        "worker_cpu_ms_per_check": _rounded(cpu_ms),
        "akismet_max_in_flight": _standin_call(http, "/__admin/stats")["max_in_flight"],
    }
    log(f"latency: p50 {result['published_p50_s']}s p99 {result['published_p99_s']}s")
    return result


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _forget_keys(broker: Any, queue: str) -> None:
    """The queue's keys and those about the benchmark's articles (read-cache tokens)."""
    keys = [queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"]
    keys += broker.scan_iter(match=f"*bench-pipeline-{os.getpid()}-*", count=1000)
    broker.delete(*keys)


def drive(duration: float, smoke: bool) -> dict[str, Any]:
    """The whole benchmark, in the driver process."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "comments_project.settings")
    django.setup()
    import httpx
    import redis
    from django.conf import settings
    from django.utils import timezone

    from articles.models import Article

    seconds = min(duration, SMOKE_SECONDS) if smoke else duration
    backlog = SMOKE_BACKLOG if smoke else BACKLOG
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    broker = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)
    work = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    log(f"server logs in {work} (removed after a successful run)")
    standin_port = str(urlsplit(settings.AKISMET_API_URL).port)
    result: dict[str, Any] = {
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "akismet_latency_s": AKISMET_LATENCY,
        "worker": {
            "pool": settings.CELERY_WORKER_POOL,
            "concurrency": settings.CELERY_WORKER_CONCURRENCY,
            "prefetch_multiplier": settings.CELERY_WORKER_PREFETCH_MULTIPLIER,
            "cores": os.cpu_count(),
        },
    }
    with contextlib.ExitStack() as stack:  # undone in reverse order
        stack.callback(_forget_keys, broker, queue)
        http = stack.enter_context(httpx.Client(timeout=10))
        standin = stack.enter_context(
            child(
                "akismet-standin",
                [PYTHON, "manage.py", "akismet_standin", "--port", standin_port,
                 "--key", STANDIN_KEY],
                work,
            )
        )  # fmt: skip

        def standin_ready() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return http.get(settings.AKISMET_API_URL + "/__admin/stats").is_success
            return False

        wait_until("the Akismet stand-in", standin_ready, timeout=60)
        broker.delete(queue)
        articles = []
        for n in range(ARTICLES):
            article = Article.objects.create(
                slug=f"bench-pipeline-{os.getpid()}-{n}",
                title=f"Pipeline benchmark {n}",
                url=f"https://news.example.com/bench-pipeline-{n}/",
                published_at=timezone.now(),
            )
            stack.callback(Article.objects.filter(pk=article.pk).delete)  # with its comments
            articles.append(article)
        peaks: list[dict[str, int]] = []
        throughput = result["throughput"] = {}
        # One article is the hot case: every publish also updates that article's row.
        for name, group in (("one_article", articles[:1]), ("spread", articles)):
            throughput[name], worker = _throughput(name, group, backlog, http, standin, work)
            if name == "one_article":
                peaks.append(worker.peak_memory())
                worker.stop()
        stack.callback(worker.stop)  # before the articles are deleted
        result["latency"] = _latency(articles, seconds, worker, http, work)
        peaks.append(worker.peak_memory())
        result["worker"] |= max(peaks, key=lambda peak: peak.get("peak_rss_kib", 0))
        result["load_average_at_end"] = round(os.getloadavg()[0], 2)
    shutil.rmtree(work, ignore_errors=True)
    return result


# --- standalone ---------------------------------------------------------------------


def prepare_database(database_url: str, env: dict[str, str]) -> None:
    """Create the database if needed, migrate it and seed the demo articles."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    with psycopg.connect(
        urlunsplit(parts._replace(path="/postgres")), autocommit=True, connect_timeout=5
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    commands = [["migrate", "--noinput", "-v", "0"]]
    if (ROOT / "articles" / "management" / "commands" / "seed_demo.py").exists():
        commands.append(["seed_demo", "--comments", "100"])
    for command in commands:
        log("manage.py " + " ".join(command))
        subprocess.run(  # noqa: S603 (stdout is the JSON result's)
            [PYTHON, "manage.py", *command],
            cwd=ROOT, env=env, check=True, timeout=900, stdout=sys.stderr,
        )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL"))
    parser.add_argument("--duration", type=float, default=10.0, help="latency phase, seconds")
    parser.add_argument("--smoke", action="store_true", help="tiny numbers, to see it work")
    parser.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.driver:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))  # run the cleanup
        print(json.dumps(drive(args.duration, args.smoke)), flush=True)
        return 0
    database_url = args.database_url or DEFAULT_DATABASE_URL
    redis_url = args.redis_url or DEFAULT_REDIS_URL
    prepare_database(database_url, bench_env(database_url, redis_url, 0))
    result = run_pipeline_bench(database_url, redis_url, args.duration, args.smoke)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
