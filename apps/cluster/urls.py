from django.urls import path

from . import views

urlpatterns = [
    path("", views.clusters, name="cluster-admin"),
    path("<slug:name>/down/", views.down, name="cluster-down"),
    path("<slug:name>/<slug:node>/fault/", views.fault, name="cluster-fault"),
]
