"""POST /api/mapreduce/uploads/ (a text file to use as MapReduce input) and GET (the user's own)."""

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from rest_framework import status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from . import uploads

# Room for the multipart boundaries and headers around the file itself.
ENVELOPE = 64 * 1024


def _too_big(size):
    return Response(
        {"file": [f"the file is {uploads.human_size(size)}; the limit is {uploads.human_size(uploads.limit())}"]},
        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )


@api_view(["GET", "POST"])
@parser_classes([MultiPartParser, FormParser])
def upload_list(request):
    if request.method == "GET":
        return Response({"uploads": uploads.list_for(request.user), "limit": uploads.limit(), "quota": uploads.QUOTA})
    # Refused before the body is read, so an oversized file is not streamed to disk for nothing.
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > uploads.limit() + ENVELOPE:
        return _too_big(length)
    try:
        files = request.FILES
    except (RequestDataTooBig, TooManyFieldsSent, ParseError) as exc:
        return Response({"file": [f"the upload could not be read: {exc}"]}, status=status.HTTP_400_BAD_REQUEST)
    uploaded = files.get("file")
    if uploaded is None:
        return Response({"file": ['no file was sent (send it as the multipart field "file")']}, status=400)
    if uploaded.size > uploads.limit():
        return _too_big(uploaded.size)
    data = uploaded.read(uploads.limit() + 1)
    try:
        info = uploads.save(request.user, uploaded.name, data)
    except ValueError as exc:
        return Response({"file": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
    return Response(info, status=status.HTTP_201_CREATED)
