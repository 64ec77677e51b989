"""The supervisor as the settings describe it: nodes under DISTLAB_NODES_DIR, at most
DISTLAB_DEDICATED_NODE_CAP dedicated nodes at once."""

from django.conf import settings

from .supervisor import Supervisor


def nodes_dir():
    return settings.DISTLAB_NODES_DIR


def supervisor(**options):
    options.setdefault("path", settings.DISTLAB_NODE_PATH)
    options.setdefault("zookeeper_jar", settings.DISTLAB_ZOOKEEPER_JAR)
    return Supervisor(settings.DISTLAB_NODES_DIR, settings.DISTLAB_DEDICATED_NODE_CAP, **options)
