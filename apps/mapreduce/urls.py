from django.urls import path

from . import api

urlpatterns = [
    path("uploads/", api.upload_list, name="api-mapreduce-uploads"),
]
