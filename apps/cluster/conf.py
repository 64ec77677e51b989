"""The supervisor as the settings describe it: nodes under DISTLAB_NODES_DIR, at most
DISTLAB_DEDICATED_NODE_CAP dedicated nodes at once."""

import os
from pathlib import Path

from django.conf import settings

from .supervisor import Supervisor

DEFAULT_CAP = 12


def nodes_dir():
    configured = getattr(settings, "DISTLAB_NODES_DIR", None) or os.environ.get("DISTLAB_NODES_DIR")
    path = Path(configured) if configured else Path(os.environ.get("DISTLAB_VAR", ".var")) / "nodes"
    # Relative to the project, not to wherever the command was started (as bin/services does).
    return path if path.is_absolute() else Path(settings.BASE_DIR) / path


def supervisor(**options):
    return Supervisor(nodes_dir(), getattr(settings, "DISTLAB_DEDICATED_NODE_CAP", DEFAULT_CAP), **options)
