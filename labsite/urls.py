from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.urls import Resolver404, include, path, re_path, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from apps.runs.urls import api_urlpatterns, lab_urlpatterns

# Error pages. A script or the page's fetch() reading /api/... gets JSON whatever went wrong; the
# rest of the site keeps Django's HTML pages.


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


# It changes nothing and tells nothing private: a script with a wrong address (or no account yet)
# learns that, rather than failing CSRF or being sent to the HTML login page.
@csrf_exempt
@login_not_required
def api_not_found(request, exception=None):
    """Any /api/ address no endpoint answers, also with DEBUG on (where handler404 is not used)."""
    detail = f"no API endpoint at {request.path}"
    if not request.path.endswith("/"):
        try:
            if resolve(request.path_info + "/").func is not api_not_found:
                detail += f"; the address ends with a slash: {request.path}/"
        except Resolver404:
            pass
    return JsonResponse({"detail": detail}, status=404)


def page_not_found(request, exception):
    return api_not_found(request) if _is_api(request) else defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return JsonResponse({"detail": "the server failed on this request; the error is logged"}, status=500)
    return defaults.server_error(request)


def bad_request(request, exception):
    if _is_api(request):
        too_big = isinstance(exception, RequestDataTooBig)
        detail = "the request body is too large" if too_big else "the request was refused as malformed or unsafe"
        return JsonResponse({"detail": detail}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if _is_api(request):
        return JsonResponse({"detail": "you may not do this"}, status=403)
    return defaults.permission_denied(request, exception)


handler400 = bad_request
handler403 = permission_denied
handler404 = page_not_found
handler500 = server_error

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/clusters/", include("apps.cluster.urls")),
    path("admin/", admin.site.urls),
    *lab_urlpatterns(),
    path("api/", include(api_urlpatterns)),
    path("", include("apps.dashboard.urls")),
    path("", include("apps.runs.urls")),
    path("", include("apps.classroom.urls")),
    # Last, so every real endpoint above (the labs' own under /api/ among them) is tried first.
    re_path(r"^api/", api_not_found),
]
