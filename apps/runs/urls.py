from django.urls import include, path

from . import api, views
from .registry import LABS

api_urlpatterns = [
    path("labs/", api.labs, name="api-labs"),
    path("runs/", api.runs, name="api-runs"),
    path("runs/<int:run_id>/", api.run_detail, name="api-run"),
    path("runs/<int:run_id>/events/", api.run_events, name="api-run-events"),
    path("runs/<int:run_id>/control/", api.run_control, name="api-run-control"),
    path("runs/<int:run_id>/drop/", api.run_drop, name="api-run-drop"),
    path("runs/<int:run_id>/export/", api.run_export, name="api-run-export"),
    path("runs/import/", api.run_import, name="api-run-import"),
]


def lab_urlpatterns():
    """What each lab adds to the site (its `Lab.urls` module), at the root, in registry order."""
    return [path("", include(lab.urls)) for lab in LABS.values() if lab.urls]


urlpatterns = [
    path("runs/", views.run_list, name="run-list"),
    path("runs/compare/", views.run_compare, name="run-compare"),
    path("runs/import/", views.run_import, name="run-import"),
    path("runs/<int:run_id>/", views.run_page, name="run-page"),
    path("labs/<slug:lab>/", views.lab_page, name="lab-page"),
]
