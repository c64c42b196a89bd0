"""Uploads: the file as a seekable stream of a known size, sent as a multipart body without
reading it whole, its progress logged at each quarter."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from requests_toolbelt import MultipartEncoder, MultipartEncoderMonitor

from marketo_provider.api import MarketoError, MarketoValueError
from marketo_provider.api.protocol import Upload

_PROGRESS_STEP_BYTES = 1024 * 1024


class SizedUpload:
    """A file object whose size is given rather than measured: requests-toolbelt measures a stream
    it cannot stat by other means, e.g. by copying an ``io.BytesIO`` whole (``getvalue``). Its
    encoder keeps reading while ``len()`` (the bytes still to send) is above zero."""

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self._stream = stream
        self._left = size

    def __len__(self) -> int:
        return self._left

    def read(self, n: int | None = -1) -> bytes:
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._stream.read(want)
        if want and not data:
            raise MarketoError(
                f"the upload ended {self._left:,} bytes early; was the file changed while sending?"
            )
        self._left -= len(data)
        return data


@contextmanager
def open_upload(file: str | os.PathLike[str] | IO[bytes]) -> Iterator[tuple[IO[bytes], int, str]]:
    """The upload as a seekable binary stream, its size, and a default file name."""
    if isinstance(file, str | os.PathLike):
        path = os.fspath(file)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise MarketoValueError(f"cannot read import file {path!r}: {exc.strerror or exc}") from None
        with handle:
            yield handle, os.fstat(handle.fileno()).st_size, os.path.basename(path)
        return
    if isinstance(file, bytes | bytearray) or not hasattr(file, "read"):
        raise MarketoValueError("file must be a path or a binary file object opened for reading")
    if not (hasattr(file, "seekable") and file.seekable()):
        raise MarketoValueError("the import file object must be seekable (a file on disk or io.BytesIO)")
    start = file.tell()
    size = file.seek(0, os.SEEK_END) - start
    file.seek(start)
    yield file, size, os.path.basename(str(getattr(file, "name", "") or "import.csv"))


def multipart(upload: Upload, log: Any) -> MultipartEncoderMonitor:
    """The upload as the multipart part ``file``, read as it is sent; its progress goes to ``log``."""
    encoder = MultipartEncoder(
        fields={"file": (upload.filename, SizedUpload(upload.open(), upload.size), upload.content_type)}
    )
    return MultipartEncoderMonitor(encoder, _progress_logger(log, upload.filename, upload.size, encoder.len))


def _progress_logger(
    log: Any, name: str, size: int, encoded: int
) -> Callable[[MultipartEncoderMonitor], None]:
    """Logs the upload of a file of ``size`` bytes (``encoded`` with its multipart framing) at
    each quarter, the last line when every byte is sent; files under 2 MiB are not reported."""
    framing = encoded - size
    quarters = [0]

    def report(monitor: MultipartEncoderMonitor) -> None:
        if size < 2 * _PROGRESS_STEP_BYTES:
            return
        sent = size if monitor.bytes_read >= encoded else min(size, max(0, monitor.bytes_read - framing))
        quarter = 4 * sent // size
        if quarter > quarters[0]:
            quarters[0] = quarter
            log.info("Uploading %s: %d%% (%s of %s bytes)", name, 25 * quarter, f"{sent:,}", f"{size:,}")

    return report
