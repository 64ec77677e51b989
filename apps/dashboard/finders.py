"""Plotly's JS as a static file like any other: found by `runserver`/daphne in development,
collected by `collectstatic` for the front web server, under a path that names its version.

The bundle ships inside the pinned `plotly` package (no 4 MB copy in the repository). A finder for
that one file, rather than its folder in STATICFILES_DIRS, because the folder also holds Plotly's
widget bundle, datasets and templates, which have no business on the web server.
"""

from collections.abc import Iterator
from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

BUNDLE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PREFIX = f"vendor/plotly-{plotly.__version__}"
STATIC_PATH = f"{PREFIX}/{BUNDLE.name}"  # what templates pass to {% static %}


class PlotlyFinder(BaseFinder):
    def check(self, **kwargs) -> list[Error]:
        if BUNDLE.is_file():
            return []
        return [Error(f"Plotly's bundle is missing: {BUNDLE}", hint="reinstall the requirements", id="dashboard.E001")]

    def find(self, path: str, find_all: bool = False, **kwargs) -> str | list[str]:
        if path != STATIC_PATH or not BUNDLE.is_file():
            return []  # "not found", as Django's own finders say it whatever find_all is
        return [str(BUNDLE)] if find_all else str(BUNDLE)

    def list(self, ignore_patterns) -> Iterator[tuple[str, FileSystemStorage]]:
        storage = FileSystemStorage(location=BUNDLE.parent)
        storage.prefix = PREFIX  # collectstatic files it under this folder, as STATICFILES_DIRS prefixes do
        yield BUNDLE.name, storage
