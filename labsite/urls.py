from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.runs.urls import api_urlpatterns

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/clusters/", include("apps.cluster.urls")),
    path("admin/", admin.site.urls),
    path("api/mapreduce/", include("apps.mapreduce.urls")),
    path("api/", include(api_urlpatterns)),
    path("", include("apps.dashboard.urls")),
    path("", include("apps.runs.urls")),
]
