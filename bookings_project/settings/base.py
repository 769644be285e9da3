"""Settings shared by every environment; each value is read strictly from the environment.

With nothing set, the service runs on embedded defaults: SQLite under ``.data/``, a
development secret key created there, Celery tasks run in-process after commit, emails on
the console. ``DATABASE_URL``, ``CELERY_BROKER_URL``, ``CACHE_URL`` and ``EMAIL_URL`` switch
to PostgreSQL, Redis and SMTP.
"""

import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from .env import (
    env_bool,
    env_broker,
    env_cache,
    env_database,
    env_email,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = BASE_DIR / ".data"


def _development_secret_key() -> str:
    """A per-checkout key kept in .data/: sessions survive restarts, nothing is committed."""
    DATA_DIR.mkdir(exist_ok=True)
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = env_str("SECRET_KEY", default=None) or _development_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "bookings",
    "notifications",
]

MIDDLEWARE = [
    "bookings_project.api.middleware.RequestIdMiddleware",
    "bookings_project.api.middleware.RateLimitEveryAnswerMiddleware",
    "bookings_project.api.middleware.ApiJsonErrorsMiddleware",
    "bookings_project.api.middleware.BodySizeLimitMiddleware",
    "bookings_project.api.middleware.NulInUrlMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "bookings_project.urls"
# API paths carry no cookies and are never CSRF-checked; this answers a refusal elsewhere.
CSRF_FAILURE_VIEW = "bookings_project.api.errors.csrf_failure"
WSGI_APPLICATION = "bookings_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# --- Database -------------------------------------------------------------------------------

_database = env_database("DATABASE_URL") or {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": str(DATA_DIR / "db.sqlite3"),
}
if _database["ENGINE"] == "django.db.backends.sqlite3":
    if _database["NAME"] not in ("", ":memory:"):
        Path(_database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # IMMEDIATE takes the write lock when a transaction begins, which serialises writers: the
    # "no double booking" check inside a transaction then cannot race on SQLite.
    # WAL lets readers go on while one writer commits.
    _database.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    # Persistent connections pay off under gunicorn (production sets 60 s by default). The
    # development server starts a thread per request, and each thread's connection would stay
    # open until PostgreSQL runs out of slots ("too many clients"): there, one per request.
    _database.setdefault("CONN_MAX_AGE", env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0))
    _database.setdefault("CONN_HEALTH_CHECKS", True)
    # A request waiting on another's row (the same Idempotency-Key, the same host's slot)
    # gives up after this long instead of piling up.
    _lock_timeout_ms = env_int("DATABASE_LOCK_TIMEOUT_MS", 5000, minimum=0)
    _database.setdefault("OPTIONS", {})["options"] = f"-c lock_timeout={_lock_timeout_ms}"
    # A database host that does not answer (down, unreachable, its port filtered) costs a
    # request this many seconds, then 503, instead of holding a worker until gunicorn's 30 s
    # timeout kills it. A refused connection (the server stopped, the host up) fails at once.
    _database["OPTIONS"]["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 3, minimum=2)
    # Values bound on the server, and a statement prepared (parsed and planned once per
    # connection) from its fifth use: the hot reads and the create's insert skip PostgreSQL's
    # planner. Behind PgBouncer in transaction mode that needs PgBouncer 1.21+ with
    # max_prepared_statements set; or turn it off here.
    _database["OPTIONS"]["server_side_binding"] = True
    _database["OPTIONS"]["prepare_threshold"] = (
        5 if env_bool("DATABASE_PREPARED_STATEMENTS", default=True) else None
    )
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate-limit counters) ------------------------------------------------------------


def cache_settings(config: dict | None) -> dict:
    """The default cache from a parsed URL (None: in-process memory)."""
    config = config or {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "bookings",
    }
    if config["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
        # An unreachable cache must cost a request little: the rate limit then fails open.
        config.setdefault("OPTIONS", {}).update(
            {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
        )
    return config


CACHES = {"default": cache_settings(env_cache("CACHE_URL"))}

# --- Email ----------------------------------------------------------------------------------

_email = env_email("EMAIL_URL") or {
    "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"
}
globals().update(_email)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", default="Bookings <bookings@localhost>")
# Seconds per SMTP socket operation: a hung mail server must not hold a worker forever.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT_SECONDS", 10, minimum=1)
# The outbox (notifications/services.py). A worker that claims a row owns it for the lease; a
# worker killed mid-send leaves it pending, and once the lease and the relay's grace have
# passed, the relay hands it to another worker. The lease must outlast any real send (each of
# its SMTP steps may take EMAIL_TIMEOUT), or a slow send would be handed out twice.
EMAIL_SEND_LEASE_SECONDS = env_int("EMAIL_SEND_LEASE_SECONDS", 300, minimum=1)
# How long a row's own after-commit task gets before the relay (every minute, from beat)
# enqueues the row again. Shorter sends a lost email sooner; too short, and the relay enqueues
# rows whose task is merely waiting in the queue (harmless: a send claims its row once).
EMAIL_RELAY_GRACE_SECONDS = env_int("EMAIL_RELAY_GRACE_SECONDS", 60, minimum=0)
# A send waits at most 8 times on the server (connect, greeting, EHLO, MAIL, RCPT, DATA, the
# message, its end): a shorter lease would hand a slow but live send to a second worker.
if EMAIL_SEND_LEASE_SECONDS <= 8 * EMAIL_TIMEOUT:
    raise ImproperlyConfigured(
        f"Environment variable EMAIL_SEND_LEASE_SECONDS={EMAIL_SEND_LEASE_SECONDS} is invalid: "
        f"expected more than 8 times EMAIL_TIMEOUT_SECONDS ({EMAIL_TIMEOUT})."
    )

# --- Celery ---------------------------------------------------------------------------------

CELERY_BROKER_URL = env_broker("CELERY_BROKER_URL")
# Without a broker, tasks run in-process (after the transaction commits, as always).
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
if CELERY_TASK_ALWAYS_EAGER:
    CELERY_BROKER_URL = "memory://"
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The worker keeps LOGGING's handlers: its lines, and its tasks', carry the request id too.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker that loses the broker reconnects by itself (every 2, 4, … up to 30 s) and never
# gives up: Celery's default (100 retries, about 45 minutes) would end it during a long outage.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Publishing happens after commit, inside the request: fail fast when the broker is down
# (one quick reconnect, not kombu's default of several seconds of retries). Nothing is lost:
# the outbox row stays pending and the relay enqueues it later.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_timeout": 2,
    "socket_connect_timeout": 2,
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_TASK_PUBLISH_RETRY = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "purge-expired-idempotency-keys": {
        "task": "bookings.tasks.purge_idempotency_keys_task",
        "schedule": 3600.0,
    },
    "relay-lost-emails": {
        "task": "notifications.tasks.relay_emails_task",
        "schedule": 60.0,
    },
}

# --- API ------------------------------------------------------------------------------------

API_RATE_LIMIT = env_int("API_RATE_LIMIT", 1000, minimum=1)  # requests per key per minute
API_MAX_BODY_BYTES = 256 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["bookings.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["bookings.auth.HasScope"],
    "DEFAULT_PARSER_CLASSES": ["bookings_project.api.parsers.StrictJSONParser"],
    # A body's Content-Type is its type, not a range; JSON in UTF-8 only (else 415).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "bookings_project.api.parsers.StrictContentNegotiation",
    "DEFAULT_RENDERER_CLASSES": ["bookings_project.api.renderers.Utf8JSONRenderer"],
    "EXCEPTION_HANDLER": "bookings_project.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_VERSIONING_CLASS": None,
    # OPTIONS would answer DRF's own metadata document, outside our envelope: 405 instead.
    "DEFAULT_METADATA_CLASS": None,
    # ``?format=xml`` would pick a renderer (and 404 when none matches): our only format is
    # JSON, and ``format`` is just another unknown query parameter.
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Bookings API",
    "DESCRIPTION": (
        "Bookings routed to the right team member, with a strict lifecycle and safe retries."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "bookings.schema.schema_postprocess",
        "bookings_project.api.schema.schema_add_plumbing",
    ],
    "ENUM_NAME_OVERRIDES": {
        "BookingStatusEnum": "bookings.models.Booking.Status",
        "HistoryActionEnum": "bookings.models.BookingHistory.Action",
        "ActorTypeEnum": "bookings.models.BookingHistory.ActorType",
    },
}

# --- Internationalisation, static files, logging --------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = None  # production sets it; elsewhere WhiteNoise serves the apps' files directly
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Each line names the request it belongs to, or the request whose task it is ("-": neither).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "bookings_project.api.request_id.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
