"""Settings, driven only by environment variables (each one is documented in README.md)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use true or false.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


# --- Core -------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)

_DEV_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY") or (_DEV_SECRET_KEY if DEBUG else "")
if not DEBUG and SECRET_KEY in ("", _DEV_SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY is missing (or is the development default) while DEBUG is off. "
        "Set SECRET_KEY to a long random value, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`, "
        "or set DEBUG=true for local development."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1", "testserver"}
if DEBUG and any(host not in _LOCAL_HOSTS for host in ALLOWED_HOSTS):
    raise ImproperlyConfigured(
        "DEBUG is on while ALLOWED_HOSTS names a public host "
        f"({', '.join(h for h in ALLOWED_HOSTS if h not in _LOCAL_HOSTS)}): debug pages leak "
        "settings and data. Turn DEBUG off in production."
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "articles",
    "comments",
]

MIDDLEWARE = [
    "comments_project.middleware.ApiJsonErrorsMiddleware",
    "comments_project.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "comments_project.middleware.LazyMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "comments_project.middleware.DatabaseUnavailableMiddleware",
    "comments_project.middleware.ContentSecurityPolicyMiddleware",
    # Innermost: only the view of an anonymous public GET may read the replica.
    "comments_project.db_router.ReplicaReadMiddleware",
]

ROOT_URLCONF = "comments_project.urls"
WSGI_APPLICATION = "comments_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database and cache -----------------------------------------------------

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # `make run`: web threads and the worker write at once. Take the write lock when a
    # transaction starts (no "database is locked" upgrade failures) and wait for it.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
# Optional PostgreSQL read replica. Only anonymous public reads (marked by
# db_router.ReplicaReadMiddleware) use it; writes, the author's own comment,
# moderation, the admin and workers read the primary. Tests mirror it to default.
# (A lower-case name: a settings name ending in _URL would show its password on
# debug pages.)
_replica_url = env_str("DATABASE_REPLICA_URL")
if _replica_url:
    DATABASES["replica"] = {
        **dj_database_url.parse(
            _replica_url,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        ),
        "TEST": {"MIRROR": "default"},
    }
    if DATABASES["replica"]["ENGINE"] != DATABASES["default"]["ENGINE"]:
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URL must name a replica of DATABASE_URL's database "
            f"(same engine), not {DATABASES['replica']['ENGINE']}."
        )
DATABASE_ROUTERS = ["comments_project.db_router.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Several sites (or test runs) can share one Redis under their own prefixes.
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "comments"),
        }
    }
else:
    # Without Redis, a folder every process shares (web workers, the Celery
    # worker), so cached pages are invalidated everywhere at once.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": env_str("CACHE_DIR", str(BASE_DIR / "var" / "cache")),
        }
    }

# --- Auth, i18n, static -----------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Behind a TLS-terminating proxy; harmless without one.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Served over HTTPS (directly or behind a TLS proxy): secure cookies, redirect
# to https, HSTS. Off by default so a plain-HTTP local run keeps working.
HTTPS = env_bool("COMMENTS_HTTPS", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", HTTPS)
SESSION_COOKIE_HTTPONLY = True
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
# /healthz and /readyz answer plain HTTP probes from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- REST API ----------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "comments_project.negotiation.JsonFirstNegotiation",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "comments.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Moderated comments API",
    "DESCRIPTION": "Public, staff and moderation endpoints of the comment backend.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Serve Swagger UI from our own static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"CommentStatusEnum": "comments.models.Comment.Status"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "comments.schema.add_error_responses",
    ],
}

CORS_ALLOWED_ORIGINS = env_list(
    "COMMENTS_ALLOWED_ORIGINS",
    "http://localhost:8000,http://127.0.0.1:8000" if DEBUG else "",
)
CORS_URLS_REGEX = r"^/api/v1/.*$"
CORS_ALLOW_HEADERS = ["accept", "content-type", "x-comment-token", "idempotency-key"]
CORS_EXPOSE_HEADERS = ["Retry-After", "Idempotent-Replayed"]

# --- Akismet -------------------------------------------------------------------

AKISMET_API_KEY = env_str("AKISMET_API_KEY")
AKISMET_BLOG_URL = env_str("AKISMET_BLOG_URL", "http://localhost:8000" if DEBUG else "")
AKISMET_API_URL = env_str("AKISMET_API_URL", "https://rest.akismet.com").rstrip("/")
AKISMET_TIMEOUT = env_float("AKISMET_TIMEOUT", 3.0)
AKISMET_IS_TEST = env_bool("AKISMET_IS_TEST", False)
AKISMET_BLOG_LANG = env_str("AKISMET_BLOG_LANG", "en")
# Turning the spam check off sends every comment that passes the local rules to
# a human instead: nothing is ever published unchecked.
AKISMET_ENABLED = env_bool("AKISMET_ENABLED", True)
if not DEBUG and AKISMET_ENABLED and not AKISMET_API_KEY:
    raise ImproperlyConfigured(
        "AKISMET_API_KEY is not set while DEBUG is off: no comment could ever be checked. "
        "Set AKISMET_API_KEY and AKISMET_BLOG_URL (or run `make run` for the local stand-in), "
        "or set AKISMET_ENABLED=false to have a human review every comment."
    )
if AKISMET_API_KEY and not AKISMET_BLOG_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured("AKISMET_BLOG_URL must be the site's full http(s):// address.")

# --- Celery ------------------------------------------------------------------------

# Redis when REDIS_URL is set; otherwise a folder-based broker that needs no
# server (the `make run` default) but still feeds a separate worker process.
BROKER_DIR = Path(env_str("BROKER_DIR", str(BASE_DIR / "var" / "broker")))
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Far above the hard time limit, so a running task is never handed out
        # twice; a task of a killed worker comes back after this many seconds.
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 300),
        # A publish (`delay()` inside a web request) fails fast when Redis is gone,
        # instead of holding the request: about 1 s for a dead host, 2 s for a hung
        # server, at once for a refused connection. The comment is already
        # committed as pending; the sweeper enqueues it later.
        "socket_connect_timeout": 1,
        "socket_timeout": 2,
    }
else:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "comments")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Reserve one message per pool slot (concurrency x 1); reserved and running
# messages are acknowledged only when done, so a killed worker loses none.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A check mostly waits for Akismet, so one worker process runs many at once in
# threads; `celery -A comments_project worker` uses these (an explicit
# `--pool=prefork` is overridden: Celery cannot tell it from its default).
# Each thread keeps its own database connection. SQLite (the `make run`
# default) fails two transactions that both read and then write instead of
# letting one wait ("database is locked"), so there the pool has one thread.
CELERY_WORKER_POOL = env_str("CELERY_WORKER_POOL", "threads")
if CELERY_WORKER_POOL not in {"threads", "prefork", "solo"}:
    raise ImproperlyConfigured(
        f"CELERY_WORKER_POOL={CELERY_WORKER_POOL!r}; use threads, prefork or solo."
    )
_SQLITE = DATABASES["default"]["ENGINE"].endswith("sqlite3")
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 1 if _SQLITE else 32)
if CELERY_WORKER_CONCURRENCY < 1:
    raise ImproperlyConfigured("CELERY_WORKER_CONCURRENCY must be at least 1.")
# Celery's Django fix-up would close a worker's database connection after every
# task; celery.py applies Django's own rule instead (kept for
# DATABASE_CONN_MAX_AGE, dropped when broken), so the fix-up never closes it.
CELERY_DB_REUSE_MAX = 2**62
# Enforced by the prefork pool only: Celery's threads pool cannot stop a thread,
# so there a task is bounded by its own timeouts (AKISMET_TIMEOUT per call).
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# No publish retries: redis-py already reconnects a dropped pooled connection by
# itself, and each retry against a dead broker only adds a full timeout to the
# request; a message that could not be sent is the sweeper's (R03).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 0,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_TASK_ALWAYS_EAGER = False  # unit tests may turn it on; never in a running system
CELERY_BEAT_SCHEDULE_FILENAME = env_str(
    "CELERY_BEAT_SCHEDULE_FILENAME", str(BASE_DIR / "var" / "celerybeat-schedule")
)
CELERY_BEAT_SCHEDULE = {
    "sweep-stranded-pending": {
        "task": "comments.tasks.sweep_pending",
        "schedule": env_float("COMMENTS_SWEEP_INTERVAL_SECONDS", 30.0),
    },
    "recheck-unavailable": {
        "task": "comments.tasks.recheck_unavailable",
        "schedule": env_float("COMMENTS_RECHECK_POLL_SECONDS", 60.0),
    },
    # Trims old IP addresses and deletes old spam (comments/retention.py).
    "apply-retention": {
        "task": "comments.tasks.apply_retention",
        "schedule": 3600.0,
    },
    # Webhook deliveries that are due (lost messages, retries, expired leases).
    "deliver-due-webhooks": {
        "task": "comments.tasks.deliver_due_webhooks",
        "schedule": env_float("COMMENTS_WEBHOOK_SWEEP_SECONDS", 30.0),
    },
    "sweep-owed-emails": {
        "task": "comments.tasks.sweep_owed_emails",
        "schedule": env_float("COMMENTS_EMAIL_SWEEP_SECONDS", 300.0),
    },
}

# --- Comments ------------------------------------------------------------------

# Seconds during which the author may edit or delete with the edit token.
COMMENTS_EDIT_WINDOW_SECONDS = env_int("COMMENTS_EDIT_WINDOW_SECONDS", 15 * 60)
# Replies may nest this many levels below a top-level comment; deeper replies
# attach at the deepest level.
COMMENTS_MAX_DEPTH = env_int("COMMENTS_MAX_DEPTH", 3)
# Requests with a larger body are refused with 413 before they are parsed.
COMMENTS_MAX_REQUEST_BYTES = env_int("COMMENTS_MAX_REQUEST_BYTES", 64 * 1024)
# How many reverse proxies in front of us append to X-Forwarded-For (a number),
# or which networks they are in (comma-separated CIDRs).
COMMENTS_TRUSTED_PROXIES = env_str("COMMENTS_TRUSTED_PROXIES", "0")
if not COMMENTS_TRUSTED_PROXIES.strip().isdigit():
    try:
        for _network in COMMENTS_TRUSTED_PROXIES.split(","):
            ipaddress.ip_network(_network.strip(), strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"COMMENTS_TRUSTED_PROXIES={COMMENTS_TRUSTED_PROXIES!r}: use a number of proxies "
            "or comma-separated networks such as 10.0.0.0/8."
        ) from None
# A pending comment whose check has not finished this many seconds after it was
# due is handed to a worker again by the sweeper (lost message, flushed broker).
COMMENTS_SWEEP_AFTER_SECONDS = env_int("COMMENTS_SWEEP_AFTER_SECONDS", 60)
# A web process collects the comments committed within this many milliseconds and
# hands them to the workers as one message; 0 sends one message per comment.
COMMENTS_DISPATCH_BATCH_MS = env_int("COMMENTS_DISPATCH_BATCH_MS", 20)
# Fast retries of one check before the comment is held as "spam check unavailable".
COMMENTS_CHECK_RETRIES = env_int("COMMENTS_CHECK_RETRIES", 3)
# First delay before a held-as-unavailable comment is checked again; doubles per
# failed recheck up to COMMENTS_RECHECK_MAX_SECONDS.
COMMENTS_RECHECK_INTERVAL_SECONDS = env_int("COMMENTS_RECHECK_INTERVAL_SECONDS", 300)
COMMENTS_RECHECK_MAX_SECONDS = env_int("COMMENTS_RECHECK_MAX_SECONDS", 6 * 3600)
COMMENTS_RECHECK_BATCH = env_int("COMMENTS_RECHECK_BATCH", 50)
# How long blatant spam (Akismet's "discard") is kept before it is deleted.
COMMENTS_DISCARD_RETENTION_DAYS = env_int("COMMENTS_DISCARD_RETENTION_DAYS", 15)
# Days after which a comment's IP address is truncated (/24, /48) and its user
# agent and referrer are cleared, also in the copy sent to Akismet.
COMMENTS_IP_RETENTION_DAYS = env_int("COMMENTS_IP_RETENTION_DAYS", 30)
# Days other spam and rejected comments are kept after that decision.
COMMENTS_SPAM_RETENTION_DAYS = env_int("COMMENTS_SPAM_RETENTION_DAYS", 90)
# Days finished webhook deliveries (succeeded or failed) stay in the delivery log.
COMMENTS_WEBHOOK_LOG_RETENTION_DAYS = env_int("COMMENTS_WEBHOOK_LOG_RETENTION_DAYS", 30)
for _name in (
    "COMMENTS_IP_RETENTION_DAYS",
    "COMMENTS_SPAM_RETENTION_DAYS",
    "COMMENTS_WEBHOOK_LOG_RETENTION_DAYS",
):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1 (days).")
# Who readers contact about their data (an e-mail address or a URL), on /privacy/.
COMMENTS_PRIVACY_CONTACT = env_str("COMMENTS_PRIVACY_CONTACT").strip()
# Akismet is asked and its verdict recorded, but every comment waits for a human.
COMMENTS_SHADOW_MODE = env_bool("COMMENTS_SHADOW_MODE", False)
# Abuse limits on the public API; 0 (or an empty rate) turns a check off.
COMMENTS_THROTTLE_SUBMIT = env_str("COMMENTS_THROTTLE_SUBMIT", "10/min")
COMMENTS_THROTTLE_READ = env_str("COMMENTS_THROTTLE_READ", "600/min")
COMMENTS_FLOOD_SECONDS = env_int("COMMENTS_FLOOD_SECONDS", 5)
# The public comment pages and counts are cached as ready bytes (Redis) and
# invalidated on every publish, edit and removal; false computes every read.
COMMENTS_READ_CACHE = env_bool("COMMENTS_READ_CACHE", True)
COMMENTS_READ_CACHE_SECONDS = env_int("COMMENTS_READ_CACHE_SECONDS", 3600)
# Cache-Control max-age for browsers and CDNs; 0 makes them revalidate (304) each time.
COMMENTS_READ_MAX_AGE = env_int("COMMENTS_READ_MAX_AGE", 0)
# Entries in the Atom feeds of comments (per article and site-wide), newest first.
COMMENTS_FEED_ITEMS = env_int("COMMENTS_FEED_ITEMS", 50)
COMMENTS_MIN_SUBMIT_SECONDS = env_int("COMMENTS_MIN_SUBMIT_SECONDS", 3)
COMMENTS_FORM_TOKEN_MAX_AGE = env_int("COMMENTS_FORM_TOKEN_MAX_AGE", 24 * 3600)
COMMENTS_DUPLICATE_WINDOW_SECONDS = env_int("COMMENTS_DUPLICATE_WINDOW_SECONDS", 24 * 3600)
COMMENTS_MAX_LINKS = env_int("COMMENTS_MAX_LINKS", 2)
COMMENTS_PREMODERATION = env_str("COMMENTS_PREMODERATION", "none")
if COMMENTS_PREMODERATION not in {"none", "new_authors", "all"}:
    raise ImproperlyConfigured(
        f"COMMENTS_PREMODERATION={COMMENTS_PREMODERATION!r}; use none, new_authors or all."
    )

# --- Webhooks (comments/webhooks.py)
# Seconds for each part (connect, send, each read) of one webhook POST.
COMMENTS_WEBHOOK_TIMEOUT = env_float("COMMENTS_WEBHOOK_TIMEOUT", 5.0)
# Attempts of one delivery (backoff 10 s, 30 s, 2 min, 10 min, 30 min, 2 h, 6 h ...)
# before it is marked failed.
COMMENTS_WEBHOOK_MAX_ATTEMPTS = env_int("COMMENTS_WEBHOOK_MAX_ATTEMPTS", 8)
if COMMENTS_WEBHOOK_TIMEOUT <= 0 or COMMENTS_WEBHOOK_MAX_ATTEMPTS < 1:
    raise ImproperlyConfigured(
        "COMMENTS_WEBHOOK_TIMEOUT must be positive and COMMENTS_WEBHOOK_MAX_ATTEMPTS at least 1."
    )

# --- E-mail ----------------------------------------------------------------------

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "comments@localhost")
# Who is told about held comments; empty: every active user who may moderate.
COMMENTS_MODERATOR_EMAILS = env_list("COMMENTS_MODERATOR_EMAILS")
# E-mails whose task was lost (broker down at the decision) are sent by a sweeper
# (every COMMENTS_EMAIL_SWEEP_SECONDS) for decisions up to this many hours old.
COMMENTS_EMAIL_SWEEP_HOURS = env_int("COMMENTS_EMAIL_SWEEP_HOURS", 24)
# This server's public base URL, for links in e-mails.
COMMENTS_SITE_URL = env_str("COMMENTS_SITE_URL", "http://localhost:8000")

# --- Reply notifications ------------------------------------------------------------

# How long the link in a confirmation e-mail (double opt-in) stays valid.
COMMENTS_NOTIFY_CONFIRM_SECONDS = env_int("COMMENTS_NOTIFY_CONFIRM_SECONDS", 7 * 86400)
# Least time between two confirmation e-mails to one address, so the form cannot be
# used to flood a stranger's inbox.
COMMENTS_NOTIFY_CONFIRM_COOLDOWN_SECONDS = env_int("COMMENTS_NOTIFY_CONFIRM_COOLDOWN_SECONDS", 3600)

# --- Personal data ------------------------------------------------------------------

# The author's name shown on a comment whose author had their personal data erased.
COMMENTS_ERASED_NAME = env_str("COMMENTS_ERASED_NAME", "Anonymous")
# Whether an erasure keeps the comment's text (true) or replaces it with a short note.
COMMENTS_ERASURE_KEEPS_TEXT = env_bool("COMMENTS_ERASURE_KEEPS_TEXT", False)
# Self-service export/erasure requests per client IP and, separately, per e-mail.
COMMENTS_THROTTLE_PERSONAL_DATA = env_str("COMMENTS_THROTTLE_PERSONAL_DATA", "5/hour")
# Seconds the e-mailed export or erasure link stays valid.
COMMENTS_PERSONAL_DATA_LINK_SECONDS = env_int("COMMENTS_PERSONAL_DATA_LINK_SECONDS", 24 * 3600)

# --- Observability -----------------------------------------------------------------

# json: one JSON object per line (python-json-logger) for a log collector; plain: for
# a person at a terminal. The Celery worker logs the same way (it leaves the root
# logger alone: CELERY_WORKER_HIJACK_ROOT_LOGGER). A comment's life is logged on
# `comments.events` with ids and codes as fields, never e-mails, IPs or text.
LOG_FORMAT = env_str("LOG_FORMAT", "plain" if DEBUG else "json").strip().lower()
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}; use json or plain.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# /metrics (Prometheus): with a token, only requests that send `Authorization: Bearer
# <token>`; without one, only requests straight from this machine (loopback, no proxy).
METRICS_TOKEN = env_str("METRICS_TOKEN")
# Prometheus scrapers reach /metrics over plain HTTP, like the health probes.
SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^metrics$"]
# Each process (web workers, Celery workers) keeps its counters in files here, summed
# at scrape time; empty: counters of the scraped process only. prometheus_client reads
# the environment variable, so it is set for this process and the ones it starts.
_prometheus_dir = env_str("PROMETHEUS_MULTIPROC_DIR", "var/prometheus").strip()
PROMETHEUS_MULTIPROC_DIR = str(BASE_DIR / _prometheus_dir) if _prometheus_dir else ""
if PROMETHEUS_MULTIPROC_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
else:
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
# /readyz fails when a pending comment has waited longer than this for its check
# (workers stuck, or lost messages and no sweeper); 0 only reports the figures.
COMMENTS_READY_MAX_PENDING_AGE_SECONDS = env_int("COMMENTS_READY_MAX_PENDING_AGE_SECONDS", 600)
