"""The create import calls over HTTP: the multipart body and its one file part, the query
parameters the spec documents, the file's size limit; the job itself is the queue's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from marketo_provider.testing import spec
from marketo_provider.testing.credentials import authorize, note_body_secrets
from marketo_provider.testing.envelope import envelope_ok
from marketo_provider.testing.errors import TOO_LARGE_PAGE, HTTPError, SandboxError
from marketo_provider.testing.parameters import check_query, path_int
from marketo_provider.testing.spec import ImportTarget, ObjectType

if TYPE_CHECKING:
    from marketo_provider.testing.backend import MarketoBackend

# Form fields parsed from a multipart body other than the file itself are small; a bigger one is
# not a parameter anyone documents.
_MAX_FIELD_BYTES = 1024 * 1024


async def create_request(
    backend: MarketoBackend, request: Request, kind: ObjectType, path_params: dict[str, str]
) -> Response:
    target = _target(kind, path_params)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise SandboxError("612")
    try:
        form = await request.form(max_part_size=_MAX_FIELD_BYTES)
    except HTTPError:
        raise  # the body passed its limit as it streamed in
    except Exception:
        raise SandboxError("613") from None
    try:
        return await _create_from_form(backend, request, target, form)
    finally:
        await form.close()  # spooled upload files


async def _create_from_form(
    backend: MarketoBackend, request: Request, target: ImportTarget, form: FormData
) -> Response:
    kind = target.object_type
    names = [name for name, _ in form.multi_items()]
    note_body_secrets(request, names)
    await authorize(backend, request, set(names))
    # The spec's one form part is the file; parameters belong in the query string (the
    # curl examples that send them as form fields do not follow the spec), so any other part
    # is refused rather than read.
    others = sorted({n for n in names if n != spec.FILE_PART})
    if others:
        raise SandboxError(
            "1003",
            f"Unknown multipart field(s): {', '.join(others)}; send parameters in the query string "
            f"and the file as the one part named '{spec.FILE_PART}'",
        )
    if names.count(spec.FILE_PART) > 1:
        raise SandboxError("1003", f"More than one '{spec.FILE_PART}' part")
    upload = form.get(spec.FILE_PART)
    if not isinstance(upload, UploadFile):
        raise SandboxError("1003", f"File is required: send it as the multipart field '{spec.FILE_PART}'")
    if not upload.filename:
        # The spec's "type": "file" part is a file upload, which carries a filename; a bare
        # form value is not one. The part's own content type is not documented: any is taken.
        raise SandboxError("1003", f"The '{spec.FILE_PART}' part has no filename")
    params = check_query(request.query_params.multi_items(), spec.CREATE_PARAMETERS[kind])
    size = upload.size if upload.size is not None else len(await upload.read())
    call = request.scope.get("marketo_call")
    if call is not None:
        call.upload_bytes, call.content_type = size, upload.content_type
    if size > backend.config.max_file_bytes:
        raise HTTPError(413, TOO_LARGE_PAGE)
    await upload.seek(0)
    content = await upload.read()
    job = await run_in_threadpool(backend.create_import, target, params, content, upload.filename)
    if call is not None:
        call.batch_id = job.batch_id
    return JSONResponse(envelope_ok([job.create_entry()]))


def _target(kind: ObjectType, path_params: dict[str, str]) -> ImportTarget:
    if kind is ObjectType.PROGRAM_MEMBERS:
        # The spec types programId as a string; it is a program's id all the same, so a value
        # that is not a whole number is refused (1003) rather than looked up.
        return ImportTarget(kind, program_id=path_int("programId", path_params["programId"]))
    return ImportTarget(kind, custom_object_name=path_params.get("apiName"))


__all__ = ["create_request"]
