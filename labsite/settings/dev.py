"""Development on one machine: `make run`, `make test`, `manage.py` after `make services`."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
# Loopback-only development server; never used by the production settings.
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-not-secret-4c1f9e0b7a2d48e6b35f0c9d8e7a6b5c4d3e2f1a")
