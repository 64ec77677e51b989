"""POST /api/mapreduce/uploads/ (a text file to use as MapReduce input) and GET (the user's own);
GET /api/runs/<id>/output/ (a MapReduce run's whole output, once its job is over)."""

from collections.abc import Iterator
from pathlib import Path

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.runs.models import Run

from . import uploads
from .engine.output import read_parts
from .engine.sizes import human_bytes
from .outputs import output_folder

# Room for the multipart boundaries and headers around the file itself.
ENVELOPE = 64 * 1024


def _too_big(size):
    return Response(
        {"file": [f"the file is {human_bytes(size)}; the limit is {human_bytes(uploads.limit())}"]},
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


# Lines are sent in blocks of about this many bytes: one write per line would be slow.
BLOCK = 64 * 1024


def _blocks(folder: Path) -> Iterator[bytes]:
    lines = read_parts(folder)
    try:
        block, size = [], 0
        for line in lines:
            data = line.encode("utf-8", "replace")
            block.append(data)
            size += len(data)
            if size >= BLOCK:
                yield b"".join(block)
                block, size = [], 0
        if block:
            yield b"".join(block)
    finally:
        lines.close()


@api_view(["GET"])
def run_output(request: Request, pk: int) -> StreamingHttpResponse | Response:
    """The job's output as `key<TAB>value` lines sorted by key, for the run's owner or staff (404
    for anyone else, so others' run ids are not confirmed)."""
    run = get_object_or_404(Run.visible_runs(request.user), pk=pk, lab="mapreduce")
    folder = output_folder(run.pk)
    if not folder.is_dir():
        return Response(
            {"detail": f"run {run.pk} has no output: it is kept when the job is over, and this run's is {run.status}"},
            status=status.HTTP_404_NOT_FOUND,
        )
    response = StreamingHttpResponse(_blocks(folder), content_type="text/tab-separated-values; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run{run.pk}-{run.scenario}-output.tsv"'
    return response
