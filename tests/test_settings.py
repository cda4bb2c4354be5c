"""Settings come from the environment; unsafe production settings stop start-up.

Start-up is checked in a fresh interpreter with a controlled environment, since
settings are read once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings

from comments_project import settings as project_settings

PROJECT_ROOT = django_settings.BASE_DIR
SETUP = (
    "import django, json, os; "
    "os.environ['DJANGO_SETTINGS_MODULE'] = 'comments_project.settings'; "
    "django.setup(); "
)
REPORT = (
    "from django.conf import settings as s; "
    "print(json.dumps({"
    "'engine': s.DATABASES['default']['ENGINE'], "
    "'database': s.DATABASES['default']['NAME'], "
    "'cache': s.CACHES['default']['BACKEND'], "
    "'cors': s.CORS_ALLOWED_ORIGINS, "
    "'debug': s.DEBUG}))"
)
REAL_SECRET_KEY = "k3y-" + "x9Qm2vLr8TnWp4ZsYb7HcJd5FgKe1AuR6oVi0NtMqPwXyLz"
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": REAL_SECRET_KEY,
    "ALLOWED_HOSTS": "comments.example.com",
    "AKISMET_API_KEY": "abc123def456",
    "AKISMET_BLOG_URL": "https://news.example.com",
}


def start(env: dict[str, str], code: str = SETUP) -> subprocess.CompletedProcess[str]:
    """Run `code` in a new interpreter whose environment is exactly `env` (plus PATH)."""
    return subprocess.run(  # noqa: S603 (our own interpreter, fixed code)
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def started_settings(env: dict[str, str]) -> dict[str, object]:
    result = start(env, SETUP + REPORT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- SECRET_KEY and DEBUG ------------------------------------------------------------


def test_a_missing_secret_key_with_debug_off_stops_start_up():
    env = {key: value for key, value in PRODUCTION.items() if key != "SECRET_KEY"}

    result = start(env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_an_empty_secret_key_with_debug_off_stops_start_up():
    result = start({**PRODUCTION, "SECRET_KEY": ""})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_the_development_secret_key_with_debug_off_stops_start_up():
    result = start({**PRODUCTION, "SECRET_KEY": project_settings._DEV_SECRET_KEY})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_debug_defaults_to_off_so_a_bare_environment_stops_start_up():
    result = start({})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_debug_off_with_a_real_secret_key_starts():
    values = started_settings(PRODUCTION)

    assert values["debug"] is False


def test_debug_on_starts_without_a_secret_key():
    values = started_settings({"DEBUG": "true"})

    assert values["debug"] is True


def test_a_debug_value_that_is_not_a_boolean_stops_start_up_naming_debug():
    result = start({**PRODUCTION, "DEBUG": "sometimes"})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DEBUG" in result.stderr


# --- Database and cache -----------------------------------------------------------------


def test_a_postgres_database_url_selects_postgresql():
    values = started_settings(
        {**PRODUCTION, "DATABASE_URL": "postgres://app:secret@db.example.com:5432/comments"}
    )

    assert values["engine"] == "django.db.backends.postgresql"
    assert values["database"] == "comments"


def test_no_database_url_selects_a_sqlite_file_in_the_project_folder():
    values = started_settings(PRODUCTION)

    assert values["engine"] == "django.db.backends.sqlite3"
    assert str(values["database"]).startswith(str(PROJECT_ROOT))


def test_redis_url_selects_the_redis_cache():
    values = started_settings({**PRODUCTION, "REDIS_URL": "redis://cache.example.com:6379/0"})

    assert values["cache"] == "django.core.cache.backends.redis.RedisCache"


def test_no_redis_url_selects_a_cache_every_process_shares():
    values = started_settings(PRODUCTION)

    # Web workers and the Celery worker must see the same invalidations.
    assert values["cache"] == "django.core.cache.backends.filebased.FileBasedCache"


# --- CORS ----------------------------------------------------------------------------------


def test_comments_allowed_origins_becomes_the_cors_allow_list():
    values = started_settings(
        {
            **PRODUCTION,
            "COMMENTS_ALLOWED_ORIGINS": "https://news.example.com, https://blog.example.org",
        }
    )

    assert values["cors"] == ["https://news.example.com", "https://blog.example.org"]


def test_no_origin_is_allowed_by_default_in_production():
    values = started_settings(PRODUCTION)

    assert values["cors"] == []


def test_the_demo_origin_is_allowed_by_default_under_debug():
    values = started_settings({"DEBUG": "true"})

    assert "http://localhost:8000" in values["cors"]


ALLOWED_ORIGIN = "https://news.example.com"


@pytest.fixture
def cors(settings):
    settings.CORS_ALLOWED_ORIGINS = [ALLOWED_ORIGIN]
    return settings


def preflight(api, origin: str, method: str = "GET", headers: str = ""):
    extra = {"HTTP_ORIGIN": origin, "HTTP_ACCESS_CONTROL_REQUEST_METHOD": method}
    if headers:
        extra["HTTP_ACCESS_CONTROL_REQUEST_HEADERS"] = headers
    return api.options("/api/v1/articles/", **extra)


@pytest.mark.django_db
def test_a_preflight_from_an_allowed_origin_is_allowed(api, cors):
    response = preflight(api, ALLOWED_ORIGIN)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


@pytest.mark.django_db
def test_a_preflight_from_another_origin_gets_no_allow_origin(api, cors):
    response = preflight(api, "https://evil.example.net")

    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.django_db
def test_a_preflight_allows_the_widgets_headers(api, cors):
    response = preflight(api, ALLOWED_ORIGIN, "PATCH", "content-type, x-comment-token")

    assert response["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    allowed_headers = response["Access-Control-Allow-Headers"].lower()
    assert "x-comment-token" in allowed_headers
    assert "content-type" in allowed_headers
    assert "PATCH" in response["Access-Control-Allow-Methods"]


@pytest.mark.django_db
def test_a_read_from_an_allowed_origin_carries_the_allow_origin_header(api, cors):
    response = api.get("/api/v1/articles/", HTTP_ORIGIN=ALLOWED_ORIGIN)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


@pytest.mark.django_db
def test_cors_is_limited_to_the_api(api, cors):
    response = api.get("/healthz", HTTP_ORIGIN=ALLOWED_ORIGIN)

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_a_missing_akismet_key_with_debug_off_stops_start_up():
    env = {key: value for key, value in PRODUCTION.items() if key != "AKISMET_API_KEY"}

    result = start(env)

    assert result.returncode != 0
    assert "AKISMET_API_KEY" in result.stderr


def test_redis_url_makes_redis_the_celery_broker_and_no_url_the_folder_broker():
    code = SETUP + "from django.conf import settings as s; print(s.CELERY_BROKER_URL)"
    with_redis = start({**PRODUCTION, "REDIS_URL": "redis://127.0.0.1:6379/3"}, code)
    without = start(PRODUCTION, code)
    assert with_redis.stdout.strip().splitlines()[-1] == "redis://127.0.0.1:6379/3"
    assert without.stdout.strip().splitlines()[-1] == "filesystem://"


def test_check_deploy_reports_nothing_with_production_settings():
    code = SETUP + (
        "from django.core.management import call_command; "
        "call_command('check', deploy=True, fail_level='WARNING')"
    )
    result = start({**PRODUCTION, "COMMENTS_HTTPS": "true"}, code)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout + result.stderr


def test_debug_with_a_public_host_stops_start_up():
    result = start({**PRODUCTION, "DEBUG": "true", "ALLOWED_HOSTS": "comments.example.com"})
    assert result.returncode != 0
    assert "DEBUG is on while ALLOWED_HOSTS names a public host" in result.stderr


def test_production_sends_security_headers(client, settings):
    settings.SECURE_SSL_REDIRECT = False
    response = client.get("/healthz")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_our_own_pages_carry_a_content_security_policy(client, settings):
    from comments_project.middleware import ContentSecurityPolicyMiddleware

    settings.SECURE_SSL_REDIRECT = False
    response = client.get("/privacy/")
    assert response["Content-Security-Policy"] == ContentSecurityPolicyMiddleware.POLICY
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "Content-Security-Policy" not in client.get("/healthz")


def test_production_may_run_without_a_key_only_with_the_spam_check_turned_off():
    env = {key: value for key, value in PRODUCTION.items() if key != "AKISMET_API_KEY"}
    assert start({**env, "AKISMET_ENABLED": "false"}).returncode == 0
