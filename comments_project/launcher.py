"""`make run`: start web, worker, beat and (without a key) the Akismet stand-in.

Every process is a child in its own process group; Ctrl-C (or any child
dying) stops them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from comments_project.server import web_command

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STANDIN_KEY = "local-standin-key"


def _spawn(name: str, args: list[str], env: dict[str, str]) -> tuple[str, subprocess.Popen]:
    process = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603
    return name, process


def _stop(children: list[tuple[str, subprocess.Popen]]) -> None:
    # The leaders (granian's main process, celery's main process) stop their own children.
    for _, process in children:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 15
    for _, process in children:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> int:
    port = os.environ.get("PORT", "8000")
    env = dict(os.environ)
    children: list[tuple[str, subprocess.Popen]] = []
    akismet_note = f"Akismet:      {env.get('AKISMET_API_URL', 'https://rest.akismet.com')}"
    if not env.get("AKISMET_API_KEY"):
        standin_port = env.get("AKISMET_STANDIN_PORT", "8089")
        children.append(
            _spawn(
                "akismet-standin",
                [
                    str(BIN / "python"),
                    "manage.py",
                    "akismet_standin",
                    "--port",
                    standin_port,
                    "--key",
                    STANDIN_KEY,
                ],
                env,
            )
        )
        env.update(
            AKISMET_API_KEY=STANDIN_KEY,
            AKISMET_API_URL=f"http://127.0.0.1:{standin_port}",
            AKISMET_IS_TEST="true",
        )
        akismet_note = (
            f"Akismet:      local stand-in on http://127.0.0.1:{standin_port} "
            "(no AKISMET_API_KEY set; author 'akismet-guaranteed-spam' is always spam)"
        )
    children += [
        _spawn(
            "web",
            web_command(port, access_log=True),
            env,
        ),
        # One worker process; its pool (threads) and size come from
        # CELERY_WORKER_POOL / CELERY_WORKER_CONCURRENCY in settings.
        _spawn(
            "worker",
            [str(BIN / "celery"), "-A", "comments_project", "worker", "--loglevel", "INFO"],
            env,
        ),
        _spawn(
            "beat",
            [str(BIN / "celery"), "-A", "comments_project", "beat", "--loglevel", "INFO"],
            env,
        ),
    ]
    broker = "Redis " + env["REDIS_URL"] if env.get("REDIS_URL") else "folder broker in var/broker"
    base = f"http://127.0.0.1:{port}"
    print(
        "\n".join(
            [
                "",
                "Moderated comments is running (Ctrl-C stops everything):",
                f"  API:          {base}/api/v1/articles/",
                f"  API docs:     {base}/api/v1/docs/",
                f"  Admin:        {base}/admin/  "
                "(create a user: .venv/bin/python manage.py createsuperuser)",
                f"  Health:       {base}/healthz   {base}/readyz",
                f"  {akismet_note}",
                f"  Worker+beat:  celery on the {broker}",
                "",
            ]
        ),
        flush=True,
    )

    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    while not stopping:
        for name, process in children:
            if process.poll() is not None:
                print(f"{name} exited with {process.returncode}; stopping everything", flush=True)
                exit_code = 1
                stopping = True
                break
        time.sleep(0.5)
    _stop(children)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
