from django.urls import path

from . import api

urlpatterns = [
    path("api/mapreduce/uploads/", api.upload_list, name="api-mapreduce-uploads"),
    path("api/runs/<int:pk>/output/", api.run_output, name="api-mapreduce-output"),
]
