"""IPVAS settings, read from the environment (12-factor).

With no environment at all this is the *embedded* set-up: SQLite under
``var/``, a Celery broker on the file system, the sandbox on. Production is
``IPVAS_PRODUCTION=1`` and then refuses to start on an embedded default, a
simulator or a missing secret: see ``docs/configuration.md``.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Exchange, Queue

from ipvas import keycheck
from ipvas.broker import INTERACTIVE_QUEUE, transport_for
from ipvas.env import env_bool, env_float, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("IPVAS_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

PRODUCTION = env_bool("IPVAS_PRODUCTION", False)
DEBUG = env_bool("DEBUG", False)
SANDBOX = env_bool("IPVAS_SANDBOX", not PRODUCTION)
SANDBOX_DIR = Path(env_str("SANDBOX_DIR", str(VAR_DIR / "sandbox")))
if PRODUCTION and SANDBOX:
    raise ImproperlyConfigured("IPVAS_SANDBOX must be off when IPVAS_PRODUCTION=1.")
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when IPVAS_PRODUCTION=1.")


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when IPVAS_PRODUCTION=1.")
    # The embedded set-up keeps a generated key beside its database, so that
    # sessions survive a restart and no key is ever committed.
    path = VAR_DIR / "secret_key.txt"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        candidate = secrets.token_urlsafe(50)
        try:
            with path.open("x") as fh:
                fh.write(candidate)
            path.chmod(0o600)
            return candidate
        except FileExistsError:  # another process won the race
            return path.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when IPVAS_PRODUCTION=1.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# A clerk's form refused for its token is said in the clerk's words (ipvas.views.csrf_failure).
CSRF_FAILURE_VIEW = "ipvas.views.csrf_failure"

# Public base URL of this system, used in notify URLs given to providers.
# Production must say it: the providers are given notify URLs under it, and the EPG the TV pages' launch URLs.
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", "" if PRODUCTION else "http://127.0.0.1:8000").rstrip("/")
if PRODUCTION and not PUBLIC_BASE_URL:
    raise ImproperlyConfigured(
        "PUBLIC_BASE_URL must be set when IPVAS_PRODUCTION=1: the address the providers and set-top boxes reach."
    )

INSTALLED_APPS = [
    # django.contrib.admin, its index ordered for the operator's day (backoffice/site.py).
    "backoffice.admin_config.IpvasAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_prometheus",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "ipvas",
    "orders",
    "billing",
    "lifecycle",
    "callbacks",
    "channels_crm",
    "epg_api",
    "tv",
    "backoffice",
    "sandbox",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "ipvas.logs.LogContextMiddleware",
    # Before SecurityMiddleware, so that its redirects to HTTPS carry the CSP too.
    "ipvas.middleware.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Staff reach admin only with a second factor when ADMIN_REQUIRE_MFA is on (ipvas/mfa.py).
    "ipvas.mfa.AdminSecondFactorMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "ipvas.urls"
# Flash messages live in the session: a separate cookie would not travel in the CRM's iframe.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
WSGI_APPLICATION = "ipvas.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "ipvas.context_processors.site",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------


def process_kind(argv: list[str]) -> str:
    """What this process is, for PostgreSQL's application_name: ipvas-worker, ipvas-beat, ipvas-<command> of
    manage.py, or ipvas-web (granian, gunicorn: anything else)."""
    program = argv[0] if argv else ""  # celery's script, or celery/__main__.py under python -m celery
    if Path(program).name == "celery" or Path(program).parent.name == "celery":
        return next((f"ipvas-{kind}" for kind in ("worker", "beat") if kind in argv), "ipvas-celery")
    if Path(program).name == "manage.py" and len(argv) > 1:
        return f"ipvas-{argv[1]}"[:63]
    return "ipvas-web"


APPLICATION_NAME = process_kind(sys.argv)  # this process's name on its PostgreSQL connections
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'ipvas.sqlite3'}")
if PRODUCTION and DATABASE_URL.startswith("sqlite"):
    raise ImproperlyConfigured("Production needs DATABASE_URL (PostgreSQL), not SQLite.")
try:
    _db = dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0),
        # A kept connection is checked on its first use in a request or a task. The workers rely on it: a task
        # cut short mid-query by its time limit leaves its connection in the middle of a command, and the next
        # task gets a new one (tests/ipvas/test_task_connections.py).
        conn_health_checks=True,
    )
except ValueError as exc:  # an unknown scheme ('postgress://'), a port that is no number
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
if PRODUCTION and _db["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(f"Production needs DATABASE_URL (PostgreSQL), not {DATABASE_URL.partition(':')[0]}.")
if _db["ENGINE"] == "django.db.backends.postgresql":
    # Which process a connection is, in pg_stat_activity and PgBouncer's SHOW CLIENTS (a name in the URL's
    # query, ?application_name=…, is kept).
    _db["OPTIONS"] = {"application_name": APPLICATION_NAME, **_db.get("OPTIONS", {})}
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        # WAL lets the web server read while a worker writes; IMMEDIATE makes
        # every transaction take the write lock at BEGIN, which serialises
        # writers the way SELECT ... FOR UPDATE does on PostgreSQL.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
DATABASES = {"default": _db}
# A streaming replica of DATABASE_URL for the sales dashboard (ipvas/reports_database.py); none by default.
REPORTS_DATABASE_URL = env_str("REPORTS_DATABASE_URL").strip()
if REPORTS_DATABASE_URL:
    try:
        _reports = dj_database_url.parse(
            REPORTS_DATABASE_URL,
            conn_max_age=_db["CONN_MAX_AGE"],
            conn_health_checks=True,
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"REPORTS_DATABASE_URL is not a database URL: {exc}") from None
    if _reports["ENGINE"] != "django.db.backends.postgresql" or _db["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            "REPORTS_DATABASE_URL is a PostgreSQL replica of DATABASE_URL's PostgreSQL: both must be postgres:// URLs."
        )
    # A replica that does not answer costs the dashboard this long before it falls back to the primary. What the
    # URL's query gives (sslmode=…, a connect_timeout of its own) is kept.
    _reports["OPTIONS"] = {
        "connect_timeout": env_int("REPORTS_DATABASE_CONNECT_TIMEOUT", 3, minimum=1),
        "application_name": APPLICATION_NAME,
        **_reports.get("OPTIONS", {}),
    }
    _reports["TEST"] = {"MIRROR": "default"}
    DATABASES["reports"] = _reports
# Asked at every query: installed only with a replica to route to.
DATABASE_ROUTERS = ["ipvas.reports_database.ReportsRouter"] if REPORTS_DATABASE_URL else []
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache --------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL").strip()
if REDIS_URL and not REDIS_URL.lower().startswith(("redis://", "rediss://", "unix://")):
    # A typo would start with a cache that never answers: every limit per process, the health check 503.
    raise ImproperlyConfigured(
        f"REDIS_URL must be a redis://, rediss:// or unix:// URL, not one beginning {REDIS_URL.partition(':')[0]!r}."
    )
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "ipvas.redis_cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "ipvas"),
            "TIMEOUT": 300,
        }
    }
else:
    if PRODUCTION:
        raise ImproperlyConfigured("Production needs REDIS_URL for the shared cache.")
    # Shared by the web server and the worker processes of the embedded set-up.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "TIMEOUT": 300,
        }
    }

# --- auth (django-allauth) -------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_ADAPTER = "ipvas.accounts.StaffOnlyAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
# The limit per address counts the caller's: behind the load balancer every request comes from its address, and
# 10 failed sign-ins a minute from anyone refused every admin's. TRUSTED_PROXY_COUNT: how many proxies in front
# append the address they were called from to X-Forwarded-For (haproxy's option forwardfor, docs/operations.md);
# the caller's is that many entries from the end, and what a caller wrote before them is not believed. 0: no
# proxy, the connection's own address.
ALLAUTH_TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 1 if PRODUCTION else 0, minimum=0)
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "IPVAS"
# Admin only with TOTP: set up at the first sign-in, asked at every sign-in after (ipvas/mfa.py). On in
# production; off in the embedded demo, so that `python3 dev.py up` stays one step.
ADMIN_REQUIRE_MFA = env_bool("ADMIN_REQUIRE_MFA", PRODUCTION)
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- i18n ---------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"  # calendar months are the operator's months
USE_I18N = True
USE_TZ = True

# --- static files ----------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = not PRODUCTION
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- security -----------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env_bool("BEHIND_TLS_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # The providers and the SMS gateway call the URLs they were given, and a 301 to HTTPS is not a
    # delivery (they retry, then give up): the notify and SMS endpoints answer on plain HTTP too, where
    # a deployment gives them so (every one verifies its signature). The health check is polled by the
    # load balancer, the workers' one by the monitoring on each node. Give the providers https:// notify
    # URLs where TLS reaches us (PUBLIC_BASE_URL).
    SECURE_REDIRECT_EXEMPT = [r"^healthz/$", r"^healthz/workers/$", r"^billing/notify/", r"^sms/inbound/$"]

# --- Django REST framework (the EPG API) ---------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON with a bound on nesting (ipvas/jsonparse.py): 6 KB of "[" must not exhaust the stack.
    "DEFAULT_PARSER_CLASSES": ["ipvas.jsonparse.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "epg_api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "IPVAS EPG API",
    "DESCRIPTION": ("Ordering of IPTV value-added products from the TV program guide. Contract: docs/interfaces.md."),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery -------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://").strip()
_BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp", "filesystem", "memory")
if CELERY_BROKER_URL.partition("://")[0].lower() not in _BROKER_SCHEMES or "://" not in CELERY_BROKER_URL:
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL must be a redis://, rediss:// or amqp:// URL (Redis or RabbitMQ), not one beginning "
        f"{CELERY_BROKER_URL.partition(':')[0]!r}."
    )
if PRODUCTION and CELERY_BROKER_URL.startswith("memory://"):
    raise ImproperlyConfigured("Production needs CELERY_BROKER_URL (Redis or RabbitMQ), not memory://.")
# Our Redis and file-system transports (ipvas/broker.py): a worker survives its broker going away,
# and the embedded broker never hands out half a message.
if transport_for(CELERY_BROKER_URL):
    CELERY_BROKER_TRANSPORT = transport_for(CELERY_BROKER_URL)
_BROKER_DIR = VAR_DIR / "broker"
BROKER_IS_RABBITMQ = CELERY_BROKER_URL.partition("://")[0].lower() in ("amqp", "amqps", "pyamqp")
if CELERY_BROKER_URL.startswith("filesystem://"):
    if PRODUCTION:
        raise ImproperlyConfigured("Production needs CELERY_BROKER_URL (Redis or RabbitMQ).")
    for _sub in ("queue", "processed", "control"):
        (_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
elif BROKER_IS_RABBITMQ:
    # RabbitMQ (docs/decisions.md, "The broker"): a publish returns when the broker has the message
    # (publisher confirms); the queues are quorum queues (replicated, durable), declared below.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
else:
    # Redis re-delivers an unacknowledged message after visibility_timeout;
    # every countdown and retry delay stays below it (tests check).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_TASK_DEFAULT_QUEUE = "default"
# Every queue a task is routed to is declared, so that a plain ``celery -A ipvas worker``
# consumes them all; a worker for one kind of work names it with ``-Q`` (docs/operations.md).
# "interactive" holds what a person waits for at a screen (the pre-check: the TV's payment screen); a
# worker on Redis takes from it first (ipvas.broker.InteractiveFirst); on RabbitMQ give it workers of
# its own (docs/operations.md).
CELERY_QUEUE_NAMES = (INTERACTIVE_QUEUE, "default", "deadlines", "provisioning", "sms")
if BROKER_IS_RABBITMQ:
    # Quorum queues behind a topic exchange: a task due later (the outbox publishes up to a minute ahead
    # with an ETA) waits in the broker's delay queues (kombu's native delayed delivery, which needs a
    # topic exchange), not unacknowledged in a worker's memory.
    CELERY_TASK_DEFAULT_EXCHANGE = "ipvas"
    CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "topic"
    CELERY_TASK_QUEUES = [
        Queue(name, Exchange("ipvas", type="topic"), routing_key=name, queue_arguments={"x-queue-type": "quorum"})
        for name in CELERY_QUEUE_NAMES
    ]
else:
    CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in CELERY_QUEUE_NAMES]
CELERY_TASK_ROUTES = {
    "lifecycle.tasks.precheck_order": {"queue": INTERACTIVE_QUEUE},
    "lifecycle.tasks.precheck_renewal": {"queue": "default"},  # a renewal's: nobody waits for it
    "lifecycle.tasks.order_deadline": {"queue": "deadlines"},
    "lifecycle.tasks.sweep_deadlines": {"queue": "deadlines"},
    "lifecycle.tasks.provision_order": {"queue": "provisioning"},
    "lifecycle.tasks.send_sms_confirmation": {"queue": "sms"},
    "lifecycle.tasks.send_notice": {"queue": "sms"},
    "lifecycle.tasks.sweep_subscriptions": {"queue": "deadlines"},
    "lifecycle.tasks.subscription_due": {"queue": "deadlines"},
    "lifecycle.tasks.sweep_contracts": {"queue": "deadlines"},
    "lifecycle.tasks.sweep_stalled": {"queue": "deadlines"},
    "lifecycle.tasks.contract_due": {"queue": "deadlines"},
}
# Celery's Django fixup closes the database connections around every task (celery 5.6 went back to that:
# celery/celery#9824), so each task opened a new PostgreSQL connection: ~2 ms of the worker's CPU, a backend
# started by PostgreSQL, and the round trips of setting it up (issue #17, py-spy of the pipeline). With this
# set, the fixup closes them once in this many tasks; ipvas.signals gives each task a request's connection
# lifecycle instead (Django's close_old_connections before and after it: DB_CONN_MAX_AGE and the health
# check hold).
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Lets go of a task due later once its time comes: Celery's kept it in a reference cycle (ipvas/worker.py).
CELERY_WORKER_CONSUMER = "ipvas.worker:Consumer"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker whose broker is away keeps trying to reconnect, however long it takes (Celery gives up after 100).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "relay-outbox": {
        "task": "ipvas.tasks.relay_outbox",
        "schedule": float(env_int("OUTBOX_RELAY_INTERVAL_SECONDS", 5, minimum=1)),
    },
    "sweep-subscriptions": {
        "task": "lifecycle.tasks.sweep_subscriptions",
        "schedule": float(env_int("SUBSCRIPTION_SWEEP_INTERVAL_SECONDS", 10, minimum=1)),
    },
    # Deduction contracts left half (signed without a paid order, or the reverse), and unsigns under way.
    "sweep-contracts": {
        "task": "lifecycle.tasks.sweep_contracts",
        "schedule": float(env_int("CONTRACT_SWEEP_INTERVAL_SECONDS", 30, minimum=1)),
    },
    # Refunds and subscribers' SMS whose own retry chain was lost (a message the broker lost).
    "sweep-stalled": {
        "task": "lifecycle.tasks.sweep_stalled",
        "schedule": float(env_int("STALLED_SWEEP_INTERVAL_SECONDS", 60, minimum=1)),
    },
    "sweep-deadlines": {
        "task": "lifecycle.tasks.sweep_deadlines",
        "schedule": float(env_int("DEADLINE_SWEEP_INTERVAL_SECONDS", 5, minimum=1)),
    },
    # What is kept only for a while (retention settings below), every hour.
    "purge-outbox": {"task": "ipvas.tasks.purge_outbox", "schedule": crontab(minute=17)},
    "purge-sso-tickets": {"task": "channels_crm.tasks.purge_sso_tickets", "schedule": crontab(minute=27)},
    "purge-idempotency-keys": {"task": "epg_api.tasks.purge_idempotency_keys", "schedule": crontab(minute=37)},
    "purge-tv-sessions": {"task": "epg_api.tasks.purge_tv_sessions", "schedule": crontab(minute=47)},
    "purge-sessions": {"task": "ipvas.tasks.purge_sessions", "schedule": crontab(minute=7)},
    "purge-payment-codes": {"task": "billing.tasks.purge_payment_codes", "schedule": crontab(minute=52)},
    "purge-sms-replies": {"task": "billing.tasks.purge_sms_replies", "schedule": crontab(minute=57)},
    # Every morning, the three-way reconciliation of the day before (billing.reconciliation).
    "reconcile-yesterday": {
        "task": "billing.tasks.reconcile_yesterday",
        "schedule": crontab(hour=9, minute=0),
    },
}
# Beat on more than one node (docs/operations.md): with BEAT_LOCK=redis (the default in production)
# celery-redbeat keeps the schedule's last runs and a lock in Redis. One beat ticks; the others wait for the
# lock and one takes over within BEAT_LOCK_TIMEOUT_SECONDS of the active one dying, without firing again
# what already ran. The embedded set-up (no Redis) keeps Celery's own file scheduler and one beat.
BEAT_LOCK = env_str("BEAT_LOCK", "redis" if PRODUCTION else "")
if BEAT_LOCK == "redis":
    if not REDIS_URL:
        raise ImproperlyConfigured("BEAT_LOCK=redis needs REDIS_URL.")
    CELERY_BEAT_SCHEDULER = "redbeat.RedBeatScheduler"
    CELERY_REDBEAT_REDIS_URL = REDIS_URL
    CELERY_REDBEAT_REDIS_OPTIONS: dict[str, object] = {}
    CELERY_REDBEAT_KEY_PREFIX = env_str("BEAT_LOCK_PREFIX", "ipvas:beat")
    CELERY_REDBEAT_LOCK_TIMEOUT = env_int("BEAT_LOCK_TIMEOUT_SECONDS", 30, minimum=10)
    # The active beat renews its lock on every tick: it ticks at least this often.
    CELERY_BEAT_MAX_LOOP_INTERVAL = max(1, CELERY_REDBEAT_LOCK_TIMEOUT // 5)
elif BEAT_LOCK:
    raise ImproperlyConfigured(f"BEAT_LOCK must be 'redis' or empty, not {BEAT_LOCK!r}.")
# Retention: how long what is kept only for a while is kept (deleted hourly by beat).
OUTBOX_RETENTION_DAYS = env_int("OUTBOX_RETENTION_DAYS", 7, minimum=1)
SSO_TICKET_RETENTION_DAYS = env_int("SSO_TICKET_RETENTION_DAYS", 1, minimum=1)
# An Idempotency-Key answers the same order for 24 hours (docs/interfaces.md §2): never purged earlier.
IDEMPOTENCY_RETENTION_HOURS = env_int("IDEMPOTENCY_RETENTION_HOURS", 48, minimum=24)
# A scanned payment code (付款码, the customer's one-time bearer credential) is needed to send its charge and to
# refuse the same scan twice while it could be charged, minutes; kept this long, whole, then forgotten.
PAYMENT_CODE_RETENTION_HOURS = env_int("PAYMENT_CODE_RETENTION_HOURS", 24, minimum=1)
# Every SMS reply the gateway delivers (the number and whatever was written), kept to recognise a delivery the
# gateway retries and to answer a dispute; what a reply decided stays in the confirmation and the subscription's
# events. 180 days: the six months China's Cybersecurity Law (art. 21) asks network logs to be kept.
# A reply older than a day less than this is refused (lifecycle.confirmations.reply_freshness): its digest, which
# refuses a replay, may be gone.
SMS_REPLY_RETENTION_DAYS = env_int("SMS_REPLY_RETENTION_DAYS", 180, minimum=2)
# Relay outbox messages as soon as their transaction commits. Tests turn this
# off and drain the outbox themselves, so that time travel decides what runs.
OUTBOX_RELAY_ON_COMMIT = env_bool("OUTBOX_RELAY_ON_COMMIT", True)
# A message not relayed this long after it became due is relayed by beat.
OUTBOX_STALE_SECONDS = env_int("OUTBOX_STALE_SECONDS", 10, minimum=1)
# A follow-up's message (outbox.must_finish) whose task has not succeeded this long after it was relayed
# is published again: longer than a queue's backlog at a peak, shorter than a customer's patience.
OUTBOX_UNFINISHED_SECONDS = env_int("OUTBOX_UNFINISHED_SECONDS", 900, minimum=60)

# --- the business's deadlines (seconds) ---------------------------------------------
ORDER_IDLE_SECONDS = env_int("ORDER_IDLE_SECONDS", 900, minimum=1)
PAYMENT_WINDOW_SECONDS = env_int("PAYMENT_WINDOW_SECONDS", 180, minimum=1)
# How often one order may switch between the WeChat Pay and Alipay QR codes (each switch opens a provider trade).
QR_SWITCHES_PER_ORDER = env_int("QR_SWITCHES_PER_ORDER", 4, minimum=0)
# A payment code scanned at the counter (docs/interfaces.md §10): while the customer confirms in the app,
# or the provider's answer is unclear, it is queried every PAYMENT_CODE_QUERY_INTERVAL_SECONDS for up to
# PAYMENT_CODE_QUERY_SECONDS after the scan, then reversed.
PAYMENT_CODE_QUERY_SECONDS = env_int("PAYMENT_CODE_QUERY_SECONDS", 60, minimum=1)
PAYMENT_CODE_QUERY_INTERVAL_SECONDS = env_int("PAYMENT_CODE_QUERY_INTERVAL_SECONDS", 5, minimum=1)
# A reverse that does not go through is tried this many times (backoff 5 s doubling, at most 5 min), then a
# person is asked (a work item).
PAYMENT_CODE_REVERSE_ATTEMPTS = env_int("PAYMENT_CODE_REVERSE_ATTEMPTS", 6, minimum=1)
PRECHECK_DEADLINE_SECONDS = env_int("PRECHECK_DEADLINE_SECONDS", 60, minimum=1)
PROVISIONING_DEADLINE_SECONDS = env_int("PROVISIONING_DEADLINE_SECONDS", 900, minimum=1)
DEADLINE_SWEEP_BATCH = env_int("DEADLINE_SWEEP_BATCH", 500, minimum=1)
# An order whose handler is calling an outside system is left alone this long
# (longer than any client timeout); a handler that died is replaced after it.
ORDER_CLAIM_LEASE_SECONDS = env_int("ORDER_CLAIM_LEASE_SECONDS", 30, minimum=1)
# Subscriptions (docs/interfaces.md §8): the reminder goes out RENEWAL_REMINDER_DAYS before the
# renewal, which is charged RENEWAL_LEAD_HOURS before the paid period ends and retried every
# RENEWAL_RETRY_HOURS until it ends.
RENEWAL_REMINDER_DAYS = env_int("RENEWAL_REMINDER_DAYS", 5, minimum=0)
RENEWAL_LEAD_HOURS = env_int("RENEWAL_LEAD_HOURS", 24, minimum=0)
RENEWAL_RETRY_HOURS = env_int("RENEWAL_RETRY_HOURS", 8, minimum=1)
# The reminder SMS is planned between REMINDER_HOURS_START:00 and REMINDER_HOURS_END:00 local time: one that
# would fall at night goes out at REMINDER_HOURS_END:00 the evening before (earlier, so the renewal keeps its
# time). 0 and 24 plan it at any hour (docs/decisions.md, "Reminders by day").
REMINDER_HOURS_START = env_int("REMINDER_HOURS_START", 8, minimum=0)
REMINDER_HOURS_END = env_int("REMINDER_HOURS_END", 21, minimum=REMINDER_HOURS_START + 1)
if REMINDER_HOURS_END > 24:
    raise ImproperlyConfigured(f"REMINDER_HOURS_END must be at most 24, not {REMINDER_HOURS_END}")
SUBSCRIPTION_SWEEP_BATCH = env_int("SUBSCRIPTION_SWEEP_BATCH", 500, minimum=1)
# A deduction contract offered in the QR of an auto-renewing order waits this long after the QR window for
# its other half (the payment, or the signing); then it is ended at the provider, never left half.
CONTRACT_SIGN_WAIT_SECONDS = env_int("CONTRACT_SIGN_WAIT_SECONDS", 600, minimum=1)
# How long the entitlement check (the hot path) keeps an account's entitlements
# in the cache; every change forgets them at once. 0 turns the cache off (the
# benchmarks measure the uncached path with it).
ENTITLEMENT_CACHE_SECONDS = env_int("ENTITLEMENT_CACHE_SECONDS", 300, minimum=0)

# --- outside systems ----------------------------------------------------------------
# Each adapter is "simulator" or its real client; production refuses simulators.
SMP_ADAPTER = env_str("SMP_ADAPTER", "simulator")
SMP_URL = env_url("SMP_URL", "" if PRODUCTION else f"{PUBLIC_BASE_URL}/sandbox/smp/api")
SMP_API_TOKEN = env_str("SMP_API_TOKEN", "" if PRODUCTION else "sandbox-smp-token")
SMP_TIMEOUT_SECONDS = env_float("SMP_TIMEOUT_SECONDS", 3, minimum=0.1)
SMP_SIMULATOR_SLOW_SECONDS = env_float("SMP_SIMULATOR_SLOW_SECONDS", 5, minimum=0)
# The "slow" fault mode of the other simulated systems (WeChat Pay, Alipay, SMS, CRM): sandbox/faults.py.
SIMULATOR_SLOW_SECONDS = env_float("SIMULATOR_SLOW_SECONDS", SMP_SIMULATOR_SLOW_SECONDS, minimum=0)

# WeChat Pay API v3, Native (QR) payments. Keys: X or X_FILE (ipvas/credentials.py).
WECHATPAY_ADAPTER = env_str("WECHATPAY_ADAPTER", "simulator")
WECHATPAY_GATEWAY = env_str("WECHATPAY_GATEWAY", "https://api.mch.weixin.qq.com")
WECHATPAY_MCHID = env_str("WECHATPAY_MCHID", "" if PRODUCTION else "1900000001")
WECHATPAY_APPID = env_str("WECHATPAY_APPID", "" if PRODUCTION else "wx8888888888888888")
WECHATPAY_MERCHANT_SERIAL_NO = env_str("WECHATPAY_MERCHANT_SERIAL_NO", "" if PRODUCTION else "SANDBOXMERCHANTSERIAL")
WECHATPAY_MERCHANT_PRIVATE_KEY = env_str("WECHATPAY_MERCHANT_PRIVATE_KEY")
WECHATPAY_MERCHANT_PRIVATE_KEY_FILE = env_str("WECHATPAY_MERCHANT_PRIVATE_KEY_FILE")
WECHATPAY_APIV3_KEY = env_str("WECHATPAY_APIV3_KEY")
WECHATPAY_APIV3_KEY_FILE = env_str("WECHATPAY_APIV3_KEY_FILE")
WECHATPAY_PLATFORM_PUBLIC_KEY = env_str("WECHATPAY_PLATFORM_PUBLIC_KEY")
WECHATPAY_PLATFORM_PUBLIC_KEY_FILE = env_str("WECHATPAY_PLATFORM_PUBLIC_KEY_FILE")
WECHATPAY_PLATFORM_PUBLIC_KEY_ID = env_str(
    "WECHATPAY_PLATFORM_PUBLIC_KEY_ID", "" if PRODUCTION else "PUB_KEY_ID_0119000000012026112500000000000001"
)
# More of WeChat Pay's keys, for a switch of keys (docs/operations.md): ``id=path`` entries or a directory of
# ``<id>.pem`` files. A notification or an answer is verified with the key its Wechatpay-Serial names, among these
# and the one above (WECHATPAY_PLATFORM_PUBLIC_KEY_ID's, which our requests name).
WECHATPAY_PLATFORM_PUBLIC_KEYS = env_str("WECHATPAY_PLATFORM_PUBLIC_KEYS")
WECHATPAY_TIMEOUT_SECONDS = env_float("WECHATPAY_TIMEOUT_SECONDS", 5, minimum=0.1)
# 委托代扣 (docs/interfaces.md §8): the APIv2 key signs its APIv2 calls (pay and sign, end a contract) and
# notifications; the template (plan_id) is WeChat Pay's, made in the merchant platform.
WECHATPAY_V2_KEY = env_str("WECHATPAY_V2_KEY")
WECHATPAY_V2_KEY_FILE = env_str("WECHATPAY_V2_KEY_FILE")
WECHATPAY_PAPAY_PLAN_ID = env_str("WECHATPAY_PAPAY_PLAN_ID", "" if PRODUCTION else "12535")
# APIv2's spbill_create_ip of a NATIVE order: the address of the server that places it.
WECHATPAY_SPBILL_CREATE_IP = env_str("WECHATPAY_SPBILL_CREATE_IP", "127.0.0.1")

# Alipay, precreate (QR) payments, RSA2.
ALIPAY_ADAPTER = env_str("ALIPAY_ADAPTER", "simulator")
ALIPAY_GATEWAY = env_str("ALIPAY_GATEWAY", "https://openapi.alipay.com/gateway.do")
ALIPAY_APP_ID = env_str("ALIPAY_APP_ID", "" if PRODUCTION else "2021000000000001")
ALIPAY_SELLER_ID = env_str("ALIPAY_SELLER_ID", "" if PRODUCTION else "2088000000000001")
ALIPAY_APP_PRIVATE_KEY = env_str("ALIPAY_APP_PRIVATE_KEY")
ALIPAY_APP_PRIVATE_KEY_FILE = env_str("ALIPAY_APP_PRIVATE_KEY_FILE")
ALIPAY_PUBLIC_KEY = env_str("ALIPAY_PUBLIC_KEY")
ALIPAY_PUBLIC_KEY_FILE = env_str("ALIPAY_PUBLIC_KEY_FILE")
ALIPAY_TIMEOUT_SECONDS = env_float("ALIPAY_TIMEOUT_SECONDS", 5, minimum=0.1)
# 周期扣款 (docs/interfaces.md §8): the signing scene agreed with Alipay for the product.
ALIPAY_CYCLE_SIGN_SCENE = env_str("ALIPAY_CYCLE_SIGN_SCENE", "INDUSTRY|DIGITAL_MEDIA")

# Payment notifications older or newer than this are refused (replays).
NOTIFICATION_MAX_SKEW_SECONDS = env_int("NOTIFICATION_MAX_SKEW_SECONDS", 300, minimum=1)

# The SMS gateway: confirmations out (MT), replies in (MO) on /sms/inbound/.
SMS_ADAPTER = env_str("SMS_ADAPTER", "simulator")
SMS_GATEWAY_URL = env_url("SMS_GATEWAY_URL", "" if PRODUCTION else f"{PUBLIC_BASE_URL}/sandbox/sms/api")
SMS_GATEWAY_TOKEN = env_str("SMS_GATEWAY_TOKEN", "" if PRODUCTION else "sandbox-sms-token")
SMS_WEBHOOK_SECRET = env_str("SMS_WEBHOOK_SECRET")
SMS_WEBHOOK_SECRET_FILE = env_str("SMS_WEBHOOK_SECRET_FILE")
# While the gateway switches secrets, the other one (the next or the previous): a reply signed with either is
# accepted (docs/operations.md, "Rotating keys and secrets").
SMS_WEBHOOK_SECRET_PREVIOUS = env_str("SMS_WEBHOOK_SECRET_PREVIOUS")
SMS_WEBHOOK_SECRET_PREVIOUS_FILE = env_str("SMS_WEBHOOK_SECRET_PREVIOUS_FILE")
SMS_TIMEOUT_SECONDS = env_float("SMS_TIMEOUT_SECONDS", 5, minimum=0.1)

# Abuse limits. The sandbox allows an integrator's test run (docs/interfaces.md §7).
SMS_CONFIRMATIONS_PER_NUMBER_PER_HOUR = env_int(
    "SMS_CONFIRMATIONS_PER_NUMBER_PER_HOUR", 30 if SANDBOX else 5, minimum=1
)
SMS_CONFIRMATIONS_PER_TV_ACCOUNT_PER_HOUR = env_int(
    "SMS_CONFIRMATIONS_PER_TV_ACCOUNT_PER_HOUR", 30 if SANDBOX else 5, minimum=1
)
SMS_CONFIRMATIONS_PER_CLIENT_PER_MINUTE = env_int(
    "SMS_CONFIRMATIONS_PER_CLIENT_PER_MINUTE", 600 if SANDBOX else 120, minimum=1
)
EPG_ORDERS_PER_CLIENT_PER_MINUTE = env_int("EPG_ORDERS_PER_CLIENT_PER_MINUTE", 1200 if SANDBOX else 300, minimum=1)
# How often a TV page that waits for its order asks about it (/tv/): how soon the screen moves on, against
# a request per waiting set-top box at this rate (twice as long after a failed ask).
TV_POLL_MILLISECONDS = env_int("TV_POLL_MILLISECONDS", 1500, minimum=200)

# The CRM: marketing activities of cash sales; single sign-on of clerks.
CRM_ADAPTER = env_str("CRM_ADAPTER", "simulator")
CRM_URL = env_url("CRM_URL", "" if PRODUCTION else f"{PUBLIC_BASE_URL}/sandbox/crm/api")
CRM_API_TOKEN = env_str("CRM_API_TOKEN", "" if PRODUCTION else "sandbox-crm-token")
CRM_TIMEOUT_SECONDS = env_float("CRM_TIMEOUT_SECONDS", 5, minimum=0.1)
CRM_ACTIVITY_DEADLINE_SECONDS = env_int("CRM_ACTIVITY_DEADLINE_SECONDS", 120, minimum=1)
# Single sign-on tickets: RS256 JWTs signed by the CRM (docs/interfaces.md §5).
CRM_SSO_PUBLIC_KEY = env_str("CRM_SSO_PUBLIC_KEY")
CRM_SSO_PUBLIC_KEY_FILE = env_str("CRM_SSO_PUBLIC_KEY_FILE")
# While the CRM switches keys, the other one (the next or the previous): a ticket signed with either is accepted.
CRM_SSO_PUBLIC_KEY_PREVIOUS = env_str("CRM_SSO_PUBLIC_KEY_PREVIOUS")
CRM_SSO_PUBLIC_KEY_PREVIOUS_FILE = env_str("CRM_SSO_PUBLIC_KEY_PREVIOUS_FILE")
CRM_SSO_ISSUER = env_str("CRM_SSO_ISSUER", "crm")
CRM_SSO_AUDIENCE = env_str("CRM_SSO_AUDIENCE", "ipvas")
CRM_SSO_MAX_TICKET_SECONDS = env_int("CRM_SSO_MAX_TICKET_SECONDS", 120, minimum=1)
# How long a clerk's session opened by a ticket lasts (a shift); the CRM opens the pages with a new ticket.
CRM_SESSION_SECONDS = env_int("CRM_SESSION_SECONDS", 12 * 3600, minimum=60)
# Origins allowed to frame the clerk pages (Content-Security-Policy: frame-ancestors).
CRM_FRAME_ORIGINS = env_list("CRM_FRAME_ORIGINS", [])

# In the sandbox, simulated providers deliver notifications to this base URL
# over HTTP; empty: in process, through the same URL routing and views.
SANDBOX_CALLBACK_BASE_URL = env_str("SANDBOX_CALLBACK_BASE_URL")

# Each outside system's implementation is named by a dotted path (adapters/resolve.py);
# the short names of the table below are accepted too. Production refuses a simulator.
_ADAPTER_NAMES = {
    "SMP_ADAPTER": {"simulator": "sandbox.simulators.smp.SimulatedSmp", "http": "adapters.smp.http.HttpSmpClient"},
    "WECHATPAY_ADAPTER": {
        "simulator": "sandbox.simulators.providers.SimulatedWechatPay",
        "sdk": "adapters.wechatpay.client.WechatPayClient",
    },
    "ALIPAY_ADAPTER": {
        "simulator": "sandbox.simulators.providers.SimulatedAlipay",
        "sdk": "adapters.alipay.client.AlipayClient",
    },
    "SMS_ADAPTER": {
        "simulator": "sandbox.simulators.sms.SimulatedSmsGateway",
        "http": "adapters.sms.http.HttpSmsGateway",
    },
    "CRM_ADAPTER": {"simulator": "sandbox.simulators.crm.SimulatedCrm", "http": "adapters.crm.http.HttpCrmClient"},
}


def _adapter(name: str, value: str) -> str:
    path = _ADAPTER_NAMES[name].get(value, value)
    if "." not in path:
        raise ImproperlyConfigured(
            f"{name} must be a dotted path or one of {sorted(_ADAPTER_NAMES[name])}, not {value!r}"
        )
    if PRODUCTION and path.startswith("sandbox."):
        raise ImproperlyConfigured(f"{name}={value} is a simulator, refused when IPVAS_PRODUCTION=1.")
    return path


SMP_ADAPTER = _adapter("SMP_ADAPTER", SMP_ADAPTER)
WECHATPAY_ADAPTER = _adapter("WECHATPAY_ADAPTER", WECHATPAY_ADAPTER)
ALIPAY_ADAPTER = _adapter("ALIPAY_ADAPTER", ALIPAY_ADAPTER)
SMS_ADAPTER = _adapter("SMS_ADAPTER", SMS_ADAPTER)
CRM_ADAPTER = _adapter("CRM_ADAPTER", CRM_ADAPTER)
# The HTTP clients' addresses: outside production they default to the sandbox's served simulators; in
# production one must be given (a client would otherwise call a URL that is not there).
for _name, _path, _url_name, _url in (
    ("SMP_ADAPTER", SMP_ADAPTER, "SMP_URL", SMP_URL),
    ("SMS_ADAPTER", SMS_ADAPTER, "SMS_GATEWAY_URL", SMS_GATEWAY_URL),
    ("CRM_ADAPTER", CRM_ADAPTER, "CRM_URL", CRM_URL),
):
    if _path == _ADAPTER_NAMES[_name]["http"] and not _url:
        raise ImproperlyConfigured(f"{_url_name} must be set when {_name}=http.")

# The partners' keys and ids: a key file named but unreadable, or a key given that is not of its kind, refuses any
# start; production refuses to start without what its real clients sign and verify with (ipvas/keycheck.py),
# rather than failing the first payment.
keycheck.check_given()
if PRODUCTION:
    if WECHATPAY_ADAPTER == _ADAPTER_NAMES["WECHATPAY_ADAPTER"]["sdk"]:
        for _name in ("WECHATPAY_MCHID", "WECHATPAY_APPID", "WECHATPAY_MERCHANT_SERIAL_NO"):
            keycheck.require_set(_name, globals()[_name])
        keycheck.require_set("WECHATPAY_PLATFORM_PUBLIC_KEY_ID", WECHATPAY_PLATFORM_PUBLIC_KEY_ID)
        keycheck.require_key("WECHATPAY_MERCHANT_PRIVATE_KEY")
        keycheck.require_public_key_by_id(
            "WECHATPAY_PLATFORM_PUBLIC_KEYS", "WECHATPAY_PLATFORM_PUBLIC_KEY", WECHATPAY_PLATFORM_PUBLIC_KEY_ID
        )
        keycheck.require_secret("WECHATPAY_APIV3_KEY", length=32)
    if ALIPAY_ADAPTER == _ADAPTER_NAMES["ALIPAY_ADAPTER"]["sdk"]:
        keycheck.require_set("ALIPAY_APP_ID", ALIPAY_APP_ID)
        # Our partner id (2088…): a notification or a statement of another merchant is refused by it; unset, both
        # checks were skipped.
        keycheck.require_set("ALIPAY_SELLER_ID", ALIPAY_SELLER_ID)
        keycheck.require_key("ALIPAY_APP_PRIVATE_KEY")
        keycheck.require_key("ALIPAY_PUBLIC_KEY")
    # The clerks' sign-in and the customers' SMS replies verify these whatever the adapters.
    keycheck.require_key("CRM_SSO_PUBLIC_KEY")
    keycheck.require_secret("SMS_WEBHOOK_SECRET")
    # The CRM's other key and the gateway's other secret, accepted beside them while the partner switches, are
    # optional; when given they are checked above (check_given), as in any set-up.

# --- logging and metrics ------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").strip().upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}.")
# "json" (one object per line, for log shippers) or "plain"; JSON by default in production. Anything else is
# refused: a log shipper fed plain lines by a typo would drop them.
LOG_FORMAT = env_str("LOG_FORMAT", "json" if PRODUCTION else "plain").strip().lower()
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'json' or 'plain', not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "ipvas.logs.ContextFilter"},
        "redact": {"()": "ipvas.logs.RedactingFilter"},
        # Beat's relay and sweeps only when they did something (ipvas/logs.py).
        "quiet_periodic": {"()": "ipvas.logs.QuietPeriodicTasksFilter"},
        "client_refusals": {"()": "ipvas.logs.ClientRefusalsFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact", "client_refusals", "context", "quiet_periodic"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # runserver's request lines (dev.py up): Django's defaults give them a handler of their own, which wrote
        # a request's query string (an SSO ticket, a mobile number searched for) unredacted and not as JSON.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
# The benchmarks' baseline endpoint /bench/bare/ (bench/README.md); never in production.
BENCH_ENDPOINTS = env_bool("IPVAS_BENCH", False) and not PRODUCTION
# /metrics/ answers only with "Authorization: Bearer <METRICS_TOKEN>" when it is set; in production
# without it, /metrics/ answers 404 (and `check --deploy` warns).
METRICS_TOKEN = env_str("METRICS_TOKEN")
# Orders per status on /metrics/ cost a GROUP BY over every order: made at most this often.
METRICS_ORDERS_MAX_AGE_SECONDS = env_int("METRICS_ORDERS_MAX_AGE_SECONDS", 60, minimum=1)

SITE_NAME = _("IPTV value-added services")
