"""The test suite: the dev settings, with the control Redis data in databases of its own, so a test
run never empties a development broker or channel layer."""

from .base import _redis_db
from .dev import *  # noqa: F403
from .dev import REDIS_URL

CELERY_BROKER_URL = _redis_db(REDIS_URL, 10)
CONTROL_REDIS_URL = _redis_db(REDIS_URL, 12)
for _layer in CHANNEL_LAYERS.values():  # noqa: F405
    _layer["CONFIG"]["hosts"] = [{**_layer["CONFIG"]["hosts"][0], "address": _redis_db(REDIS_URL, 11)}]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
DISTLAB_HEARTBEAT_TIMEOUT = 10
