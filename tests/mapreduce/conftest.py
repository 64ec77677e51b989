"""The MapReduce tests' own fixtures; the MapReduce workers they share with the browser tests are
in tests/conftest.py."""

import pytest


@pytest.fixture(autouse=True)
def _data_folder(settings, tmp_path):
    """Uploads and kept outputs of a test in a folder of its own."""
    settings.DISTLAB_UPLOAD_DIR = tmp_path / "data"
