"""Issue 6 §6: schemathesis against /api/v1/schema/ on a running server.

A real gunicorn serves the app on the PostgreSQL test database (DEBUG on, abuse
limits off so they do not stand between the fuzzer and the views, Akismet pointed
at the local stand-in, a throw-away folder broker). Three bounded runs of
`schemathesis run`:
- every operation with a moderator's token (public and moderation operations;
  the article writes answer 403 to a moderator);
- the protected operations without credentials (their 401s must be documented);
- the article operations with an editor's token (may rename or delete articles,
  so it runs on its own rows);
- the author's operations on a comment (read, edit, delete) with edit tokens.
A generated config feeds real slugs, comment ids and edit tokens into part of the
requests, so they reach the views' logic and not only the 404 path.

Checks: no 5xx, responses match the schema, every status code and content type
returned is documented. On failure the message lists, per operation, the status
codes the server returned that the schema does not document (from the recorded
cassette), schemathesis' failures with their reproduction, and any 5xx with the
server's log.

Environment knobs: FUZZ_MAX_EXAMPLES (default 30), FUZZ_SEED (default 1),
FUZZ_TIMEOUT (seconds per run, default 300).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token

from comments import moderation
from comments.models import HoldReason
from comments.tokens import make_edit_token
from tests.akismet_fixtures import TEST_KEY
from tests.factories import ArticleFactory, UserFactory, published_comment, submit_comment
from tests.processes import app_env, gunicorn_args, running_process
from tests.worker_fixtures import IN_CI, _database_url

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "30"))
SEED = os.environ.get("FUZZ_SEED", "1")
RUN_TIMEOUT = float(os.environ.get("FUZZ_TIMEOUT", "300"))
CHECKS = (
    "not_a_server_error,response_schema_conformance,"
    "status_code_conformance,content_type_conformance"
)
SCHEMA_PATH = "/api/v1/schema/"
# Operations that need credentials: moderation, and the staff article writes.
PROTECTED_PATHS = r"/moderation/|/api/v1/articles/(\{[^}]+\}/)?$"
# The article operations, for the editor's run (it may rename or delete what it finds,
# so it runs on its own, after the moderator's run has used the shared rows).
ARTICLE_PATHS = r"^/api/v1/articles/(\{[^}]+\}/)?$"
# The author's operations on one comment (read, edit, delete with the edit token); on
# their own, as the moderator's run changes the statuses of the shared comments.
AUTHOR_PATHS = r"^/api/v1/comments/\{[^}]+\}/$"


def require_postgresql() -> None:
    """A second process must see committed rows: PostgreSQL, not SQLite in memory."""
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        message = "the fuzzing run needs DATABASE_URL to be PostgreSQL"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    assert url.startswith("http://127.0.0.1:")  # loopback only
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@pytest.fixture(scope="module")
def api_server(django_db_setup, django_db_blocker, standin_server, tmp_path_factory):
    """gunicorn on the test database, on a free loopback port; yields (base URL, log path)."""
    require_postgresql()
    with django_db_blocker.unblock():
        database_url = _database_url()
    workdir = tmp_path_factory.mktemp("fuzz-server")
    log_path = workdir / "gunicorn.log"
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(app_env(database_url, standin_server.url, TEST_KEY))
    env.update(
        {
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # No Redis: a throw-away folder broker (nothing consumes the checks) and a
            # per-process cache, so the run leaves nothing behind in shared services.
            "BROKER_DIR": str(workdir / "broker"),
            "CELERY_QUEUE": f"fuzz-{uuid.uuid4().hex[:8]}",
            # Abuse checks would answer 429/409 to the fuzzer before the views run.
            "COMMENTS_THROTTLE_SUBMIT": "100000/min",
            "COMMENTS_THROTTLE_READ": "100000/min",
            "COMMENTS_FLOOD_SECONDS": "0",
            "COMMENTS_MIN_SUBMIT_SECONDS": "0",
            "COMMENTS_DUPLICATE_WINDOW_SECONDS": "0",
        }
    )
    base_url = f"http://127.0.0.1:{port}"
    args = gunicorn_args(
        port,
        "--timeout",
        "30",
        # The URL and header limits of the server in front are a deployment
        # matter (414/400 in text/html from gunicorn or nginx); here every
        # request reaches the app, whose answers the schema must describe.
        "--limit-request-line",
        "0",
        "--limit-request-field_size",
        "0",
    )
    healthy = lambda: http_get(f"{base_url}/healthz")[0] == 200  # noqa: E731
    with running_process("gunicorn", args, env, log_path, healthy):
        yield base_url, log_path


@pytest.fixture
def fuzz_data(tmp_path):
    """Committed rows for the fuzzer to find, a moderator and an article editor, and a
    schemathesis config that feeds real slugs, ids and edit tokens into part of the
    generated requests, so they reach the views' logic instead of stopping at 404."""
    article = ArticleFactory(slug="fuzz-article")
    ArticleFactory(slug="fuzz-closed", comments_open=False)
    ArticleFactory(slug="fuzz-staff")  # what the staff PATCH/DELETE may change or delete
    published = published_comment(article)
    held = submit_comment(article)
    moderation.hold(held, actor=moderation.SYSTEM, hold_reason=HoldReason.TOO_MANY_LINKS)
    spam = submit_comment(article, body="Cheap pills at https://spam.example/")
    moderation.mark_spam(spam, actor=moderation.SPAM_CHECK, reason="akismet_spam")
    own = submit_comment(article, body="The author's own comment, still pending.")
    # Transactional tests flush the data migration's group: grant permissions directly.
    moderator = UserFactory(username="fuzz-moderator")
    moderator.user_permissions.add(
        Permission.objects.get(content_type__app_label="comments", codename="can_moderate")
    )
    staff = UserFactory(username="fuzz-staff")
    staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="articles",
            codename__in=["view_article", "add_article", "change_article", "delete_article"],
        )
    )
    # The author's comment the fuzzer reads, edits and at some point deletes (its id is
    # also learnt from responses, so one comment and one token serve all three).
    edited = submit_comment(article, body="An author's comment the fuzzer edits.")
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        schemathesis_config(
            dictionaries={
                "slugs": ["fuzz-article", "fuzz-closed"],
                "staff_slugs": ["fuzz-staff"],
                "ids": [str(c.pk) for c in (published, held, spam, own, edited)],
                "readable": [str(published.pk), str(edited.pk)],
                "edited": [str(edited.pk)],
                "edited_token": [make_edit_token(edited.pk)],
            },
            parameters={"path.slug": ("slugs", 0.5), "path.id": ("ids", 0.5)},
            operations={
                "PATCH /api/v1/articles/{slug}/": {"path.slug": ("staff_slugs", 0.5)},
                "DELETE /api/v1/articles/{slug}/": {"path.slug": ("staff_slugs", 0.5)},
                "GET /api/v1/comments/{id}/": {
                    "path.id": ("readable", 0.7),
                    "header.X-Comment-Token": ("edited_token", 0.5),
                },
                "PATCH /api/v1/comments/{id}/": {
                    "path.id": ("edited", 0.8),
                    "header.X-Comment-Token": ("edited_token", 0.8),
                },
                "DELETE /api/v1/comments/{id}/": {
                    "path.id": ("edited", 0.5),
                    "header.X-Comment-Token": ("edited_token", 0.8),
                },
            },
        )
    )
    return {
        "moderator": Token.objects.create(user=moderator).key,
        "staff": Token.objects.create(user=staff).key,
        "config": config,
    }


# --- Running schemathesis and reading its reports ---------------------------------------------


def schemathesis_config(
    *,
    dictionaries: dict[str, list[str]],
    parameters: dict[str, tuple[str, float]],
    operations: dict[str, dict[str, tuple[str, float]]],
) -> str:
    """A schemathesis.toml: parameters drawn from known values with some probability
    (the rest stays generated), globally and per operation."""

    def bindings(params: dict[str, tuple[str, float]]) -> str:
        return ", ".join(
            f'"{key}" = {{ dictionary = "{name}", probability = {probability} }}'
            for key, (name, probability) in params.items()
        )

    lines = []
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}"]
    lines += ["[parameters]", *(bindings({k: v}) for k, v in parameters.items())]
    for operation, params in operations.items():
        lines += [
            "[[operations]]",
            f"include-name = {json.dumps(operation)}",
            f"parameters = {{ {bindings(params)} }}",
        ]
    return "\n".join(lines) + "\n"


def run_schemathesis(
    base_url: str, report_dir: Path, config: Path, *extra: str
) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{base_url}{SCHEMA_PATH}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--no-color",
        # Keep testing an operation after its first failure: a complete report, and
        # more chances to find a 5xx behind an undocumented 4xx.
        "--continue-on-failure",
        "--report",
        "junit,vcr",
        "--report-dir",
        str(report_dir),
        *extra,
    ]
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        return subprocess.run(  # noqa: S603
            command,
            cwd=report_dir,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"schemathesis ran over {RUN_TIMEOUT}s: {str(exc.stdout)[-3000:]}")


def load_schema(base_url: str) -> dict:
    status, body = http_get(f"{base_url}{SCHEMA_PATH}?format=json")
    assert status == 200, status
    return json.loads(body)


def operation_matchers(schema: dict) -> list[tuple[str, re.Pattern, dict[str, set[str]]]]:
    """(path template, regex, {METHOD: documented statuses}) for every path."""
    matchers = []
    for template, operations in schema["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        documented = {
            method.upper(): set(operation["responses"])
            for method, operation in operations.items()
            if isinstance(operation, dict) and "responses" in operation
        }
        matchers.append((template, pattern, documented))
    # Literal paths first (/comments/bulk/ before /comments/{id}/).
    return sorted(matchers, key=lambda m: (m[0].count("{"), m[0]))


def recorded_interactions(report_dir: Path) -> list[tuple[str, str, int, str]]:
    """(method, path, status, uri) of every request in the VCR cassette."""
    out = []
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for cassette in sorted(report_dir.glob("vcr-*.yaml")):
        data = yaml.load(cassette.read_text(), Loader=loader)  # noqa: S506 (a safe loader)
        for item in data.get("http_interactions") or []:
            response = item.get("response") or {}
            if not response:
                continue
            uri = item["request"]["uri"]
            path = urllib.parse.urlsplit(uri).path
            out.append((item["request"]["method"], path, int(response["status"]["code"]), uri))
    return out


def status_report(schema: dict, interactions) -> tuple[dict, list[str]]:
    """Undocumented statuses per operation (with one example request), and 5xx lines."""
    matchers = operation_matchers(schema)
    undocumented: dict[str, dict[int, str]] = defaultdict(dict)
    server_errors = []
    for method, path, status, uri in interactions:
        if status >= 500:
            server_errors.append(f"{status} on {method} {uri}")
        for template, pattern, operations in matchers:
            if not pattern.match(path):
                continue
            # A method the path does not have (405) is not one of its operations.
            documented = {d.upper() for d in operations.get(method, {"default"})}
            if not documented & {str(status), f"{str(status)[0]}XX", "DEFAULT"}:
                undocumented[f"{method} {template}"].setdefault(status, uri)
            break
    return undocumented, server_errors


def junit_failures(report_dir: Path) -> list[str]:
    """One line per schemathesis failure: operation, check, what, reproduction."""
    lines = []
    for report in sorted(report_dir.glob("junit-*.xml")):
        for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 (our own file)
            for failure in case:
                text = failure.text or ""
                what = re.findall(r"^- (ST\d+ .+)$", text, flags=re.M)
                detail = re.findall(
                    r"^\s+(Received: .+|Documented: .+|.+ is not .+|.+ is a required property"
                    r"|.+ (?:should not be valid|does not match|is too long|is too short).*)$",
                    text,
                    re.M,
                )
                curl = re.findall(r"^\s+(curl .+)$", text, flags=re.M)
                lines.append(
                    f"{case.get('name')}: {'; '.join(what) or failure.get('message')} "
                    f"[{'; '.join(d.strip()[:200] for d in detail[:3])}] "
                    f"{curl[-1][:400] if curl else ''}"
                )
    return lines


def explain(run, schema, report_dir: Path, log_path: Path) -> tuple[list[str], str]:
    undocumented, server_errors = status_report(schema, recorded_interactions(report_dir))
    lines = [
        f"{operation}: undocumented {sorted(statuses)}; e.g. "
        + "; ".join(f"{status} ← {uri[:160]}" for status, uri in sorted(statuses.items()))
        for operation, statuses in sorted(undocumented.items())
    ]
    message = "\n".join(
        [
            f"schemathesis exit code {run.returncode}",
            "Undocumented status codes by operation:",
            *(lines or ["  (none)"]),
            "Failures reported by schemathesis:",
            *(junit_failures(report_dir) or ["  (none)"]),
            "Server errors:",
            *(server_errors or ["  (none)"]),
            "Console tail:",
            run.stdout[-2500:],
        ]
    )
    if server_errors:
        message += "\nServer log tail:\n" + log_path.read_text(errors="replace")[-4000:]
    return server_errors, message


# --- The runs ---------------------------------------------------------------------------------


def test_every_operation_with_a_moderator_token_conforms_to_the_schema(
    api_server, fuzz_data, tmp_path
):
    base_url, log_path = api_server
    report_dir = tmp_path / "report"
    run = run_schemathesis(
        base_url,
        report_dir,
        fuzz_data["config"],
        "--header",
        f"Authorization: Token {fuzz_data['moderator']}",
    )
    server_errors, message = explain(run, load_schema(base_url), report_dir, log_path)
    assert not server_errors, message
    assert run.returncode == 0, message


def test_protected_operations_without_credentials_document_their_401(
    api_server, fuzz_data, tmp_path
):
    base_url, log_path = api_server
    report_dir = tmp_path / "report"
    run = run_schemathesis(
        base_url, report_dir, fuzz_data["config"], "--include-path-regex", PROTECTED_PATHS
    )
    server_errors, message = explain(run, load_schema(base_url), report_dir, log_path)
    assert not server_errors, message
    interactions = recorded_interactions(report_dir)
    assert any(status == 401 for _, _, status, _ in interactions), message
    assert run.returncode == 0, message


def test_article_operations_with_an_editor_token_conform_to_the_schema(
    api_server, fuzz_data, tmp_path
):
    base_url, log_path = api_server
    report_dir = tmp_path / "report"
    run = run_schemathesis(
        base_url,
        report_dir,
        fuzz_data["config"],
        "--header",
        f"Authorization: Token {fuzz_data['staff']}",
        "--include-path-regex",
        ARTICLE_PATHS,
    )
    server_errors, message = explain(run, load_schema(base_url), report_dir, log_path)
    assert not server_errors, message
    assert run.returncode == 0, message


def test_author_operations_with_edit_tokens_conform_to_the_schema(api_server, fuzz_data, tmp_path):
    base_url, log_path = api_server
    report_dir = tmp_path / "report"
    run = run_schemathesis(
        base_url, report_dir, fuzz_data["config"], "--include-path-regex", AUTHOR_PATHS
    )
    server_errors, message = explain(run, load_schema(base_url), report_dir, log_path)
    assert not server_errors, message
    assert run.returncode == 0, message
    interactions = recorded_interactions(report_dir)
    reached = {(method, status) for method, _, status, _ in interactions}
    # The edit tokens in the config must have taken requests past the token check.
    past_the_token = {("PATCH", 202), ("PATCH", 400), ("PATCH", 409), ("DELETE", 204)}
    assert ("GET", 200) in reached and reached & past_the_token, reached


# --- The schema itself (no server needed) ------------------------------------------------------

THROTTLED_PUBLIC = ("/api/v1/articles/", "/api/v1/comments/")
CONFLICT_OPERATIONS = {
    ("post", "/api/v1/articles/{slug}/comments/"),
    ("patch", "/api/v1/comments/{id}/"),
    ("post", "/api/v1/moderation/comments/{id}/approve/"),
    ("post", "/api/v1/moderation/comments/{id}/reject/"),
    ("post", "/api/v1/moderation/comments/{id}/spam/"),
}


def test_the_schema_documents_the_error_responses_each_operation_can_return(api):
    """The statuses the runs above found, checked on the schema alone (fast, everywhere)."""
    schema = api.get(SCHEMA_PATH, {"format": "json"}).json()
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            documented = set(operation["responses"])
            expected = {"400", "401"}
            if method not in ("get", "head", "options") or "/moderation/" in path:
                expected.add("403")
            if "{" in path:
                expected.add("404")
            if method in ("post", "put", "patch"):
                expected |= {"413", "415"}
            if (method, path) in CONFLICT_OPERATIONS:
                expected.add("409")
            if path.startswith(THROTTLED_PUBLIC) and "/moderation/" not in path:
                expected.add("429")
            if expected - documented:
                missing.append(f"{method.upper()} {path}: {sorted(expected - documented)}")
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert "application/json" in response.get("content", {}), (path, status)
    assert not missing, "\n".join(missing)
