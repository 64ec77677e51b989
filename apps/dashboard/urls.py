from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/status/", views.status, name="api-status"),
    path("vendor/plotly-<str:version>.min.js", views.plotly_js, name="plotly-js"),
]
