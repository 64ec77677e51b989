from django.urls import path

from . import api, views

api_urlpatterns = [
    path("labs/", api.labs, name="api-labs"),
    path("runs/", api.runs, name="api-runs"),
    path("runs/<int:run_id>/", api.run_detail, name="api-run"),
    path("runs/<int:run_id>/events/", api.run_events, name="api-run-events"),
    path("runs/<int:run_id>/control/", api.run_control, name="api-run-control"),
]

urlpatterns = [
    path("runs/", views.run_list, name="run-list"),
    path("runs/compare/", views.run_compare, name="run-compare"),
    path("runs/<int:run_id>/", views.run_page, name="run-page"),
    path("labs/<slug:lab>/", views.lab_page, name="lab-page"),
]
