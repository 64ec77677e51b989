"""Unexpected errors under /api/ answer JSON, also with DEBUG on."""

import logging

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, JsonResponse

logger = logging.getLogger("django.request")

# What Django turns into a 4xx answer itself (through the JSON handlers in labsite/urls.py).
CLIENT_ERRORS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation)


class ApiErrorsAsJson:
    """With DEBUG on, Django answers a view's unexpected exception with its HTML debug page, not
    handler500; a script or the page's fetch() reading /api/ would get HTML it cannot parse. This
    answers them as handler500 does with DEBUG off, and logs the traceback as Django would."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> JsonResponse | None:
        if not request.path.startswith("/api/") or isinstance(exception, CLIENT_ERRORS):
            return None
        logger.error(
            "Internal Server Error: %s",
            request.path,
            exc_info=(type(exception), exception, exception.__traceback__),
            extra={"status_code": 500, "request": request},
        )
        return JsonResponse({"detail": "the server failed on this request; the error is logged"}, status=500)
