"""Settings shared by every environment. Every endpoint comes from the environment, so web servers
and Celery workers can run on many hosts against external MySQL, Redis and ZooKeeper."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "channels",
    "apps.runs",
    "apps.cluster",
    "apps.diagnostics",
    "apps.transactions",
    "apps.locks",
    "apps.mapreduce",
    "apps.sync",
    "apps.cache",
    "apps.classroom",
    "apps.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "labsite.middleware.ApiErrorsAsJson",
]

ROOT_URLCONF = "labsite.urls"
ASGI_APPLICATION = "labsite.asgi.application"
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

# The control database: users, runs, events. Labs never connect to it (they use LAB_* below).
DATABASES = {
    "default": env.db("DATABASE_URL", default="mysql://distlab:distlab@127.0.0.1:3307/distlab"),
}
DATABASES["default"].setdefault("OPTIONS", {})["charset"] = "utf8mb4"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
if DATABASES["default"].get("HOST") in LOOPBACK:
    # No TLS over loopback: PyMySQL otherwise builds a TLS context (loading the CA store, ~40 ms of
    # CPU) for every new connection, and Django opens one per request and per consumer call.
    DATABASES["default"]["OPTIONS"].setdefault("ssl_disabled", True)
DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Control Redis: database 0 is the Celery broker, 1 the channel layer, 2 run control and heartbeats.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6380/0")


def _redis_db(url, db):
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{db}"


CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=_redis_db(REDIS_URL, 0))
CONTROL_REDIS_URL = env.str("CONTROL_REDIS_URL", default=_redis_db(REDIS_URL, 2))
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # The layer waits for messages with a 5 s blocking pop; a socket timeout of 5 s (redis-py's
            # default) would cut off the viewers of a quiet run, so it must be longer.
            # redis-py's pool of 100 connections errors rather than waits when a class of sockets
            # closes at once (each leaving its groups); the server takes thousands.
            "hosts": [
                {
                    "address": env.str("CHANNEL_LAYER_URL", default=_redis_db(REDIS_URL, 1)),
                    "socket_timeout": 15,
                    "max_connections": 1000,
                }
            ],
            # A fast run can outpace a slow viewer; the consumer fills any gap from the database.
            "capacity": 1000,
            "expiry": 30,
        },
    },
}
# A presenter's view frames travel on a layer of their own (the same Redis, another prefix): each
# web process reads a layer's messages one queue at a time, in order, so on the default layer a
# step would wait behind every batch of the run queued for the followers before it.
CHANNEL_LAYERS["presentations"] = {
    "BACKEND": CHANNEL_LAYERS["default"]["BACKEND"],
    "CONFIG": {**CHANNEL_LAYERS["default"]["CONFIG"], "prefix": "asgi-presentations"},
}

# The shared lab nodes the protocols run against.
LAB_MARIADB_URL = env.str("LAB_MARIADB_URL", default="mysql://lab:lab@127.0.0.1:3307/")
LAB_REDIS_URL = env.str("LAB_REDIS_URL", default="redis://127.0.0.1:6381/0")
# The account that makes and drops kept runs' read-only logins (CREATE USER, SELECT on run% with
# GRANT OPTION; nothing on the control database). Never handed to an engine. Empty: `keeper` with
# password `keeper` on the lab MariaDB's host and port, as bin/services creates it.
LAB_MARIADB_KEEPER_URL = env.str("LAB_MARIADB_KEEPER_URL", default="")
LAB_ZK_HOSTS = env.str("LAB_ZK_HOSTS", default="127.0.0.1:2182")

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# What one user may start, and how long and how much one run may do.
DISTLAB_RUN_QUOTA = env.int("DISTLAB_RUN_QUOTA", default=3)
# The largest text file a user may upload as MapReduce input, in bytes.
DISTLAB_UPLOAD_LIMIT = env.int("DISTLAB_UPLOAD_LIMIT", default=20 * 1024 * 1024)
# The largest exported run a user may import, in bytes.
DISTLAB_IMPORT_LIMIT = env.int("DISTLAB_IMPORT_LIMIT", default=200 * 1024 * 1024)
DISTLAB_RUN_TIME_LIMIT = env.int("DISTLAB_RUN_TIME_LIMIT", default=120)
DISTLAB_RUN_EVENT_LIMIT = env.int("DISTLAB_RUN_EVENT_LIMIT", default=250_000)
# Dedicated nodes (apps.cluster): where their data lives, and how many may run at once.
DISTLAB_VAR = BASE_DIR / env.str("DISTLAB_VAR", default=".var")  # relative paths are from the project
DISTLAB_NODES_DIR = BASE_DIR / env.str("DISTLAB_NODES_DIR", default=str(DISTLAB_VAR / "nodes"))
# Files users upload as MapReduce input. The web server writes them and the worker running the job
# reads them: with web servers and workers on several hosts, this must be shared storage.
DISTLAB_UPLOAD_DIR = BASE_DIR / env.str("DISTLAB_UPLOAD_DIR", default=str(DISTLAB_VAR / "uploads"))
DISTLAB_DEDICATED_NODE_CAP = env.int("DISTLAB_DEDICATED_NODE_CAP", default=12)
# Where the server binaries are looked for (default: PATH and the sbin folders), and ZooKeeper's jar.
DISTLAB_NODE_PATH = env.str("DISTLAB_NODE_PATH", default=None)
DISTLAB_ZOOKEEPER_JAR = env.str("DISTLAB_ZOOKEEPER_JAR", default=None)
# A running run whose worker has not beaten its heart for this long is marked failed.
DISTLAB_HEARTBEAT_TIMEOUT = env.int("DISTLAB_HEARTBEAT_TIMEOUT", default=10)
# A presentation whose presenter has not moved the view for this long (seconds) is ended.
DISTLAB_PRESENTATION_IDLE = env.int("DISTLAB_PRESENTATION_IDLE", default=2 * 3600)

CELERY_TASK_TIME_LIMIT = DISTLAB_RUN_TIME_LIMIT + 60
CELERY_BEAT_SCHEDULE = {
    "reap-stale-runs": {"task": "apps.runs.tasks.reap_stale_runs", "schedule": 5.0},
    # Kept data past its 24 hours, or whose owner pressed Drop data (apps/runs/kept.py).
    "drop-expired-data": {"task": "apps.runs.tasks.drop_expired_data", "schedule": 60.0},
    # Presentations whose presenter has not moved the view for DISTLAB_PRESENTATION_IDLE seconds.
    "end-idle-presentations": {"task": "apps.classroom.tasks.end_idle_presentations", "schedule": 300.0},
}

REST_FRAMEWORK = {
    # Token first, so an anonymous script gets 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "apps.runs.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "apps.dashboard.finders.PlotlyFinder",  # vendor/plotly-<version>/plotly.min.js, from the plotly package
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}
