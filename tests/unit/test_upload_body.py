"""The multipart body the hook streams: exact bytes, read in bounded pieces, never measured by copy."""

from __future__ import annotations

import io

import pytest
from requests_toolbelt import MultipartEncoder

from marketo_provider.api import MarketoError
from marketo_provider.hooks.uploads import SizedUpload


class NoCopy(io.BytesIO):
    def getvalue(self) -> bytes:  # the encoder must not measure the stream this way
        raise AssertionError("the upload was copied to measure it")


def encode(upload: SizedUpload, piece: int) -> bytes:
    encoder = MultipartEncoder(fields={"file": ("a.csv", upload, "text/csv")})
    out = bytearray()
    while chunk := encoder.read(piece):
        out += chunk
    assert len(out) == encoder.len
    return bytes(out)


@pytest.mark.parametrize("piece", [1, 7, 8192, -1])
def test_body_holds_exactly_the_part_from_the_stream_position(piece: int) -> None:
    stream = NoCopy(b"skip|email\na@example.com\n")
    stream.seek(5)
    body = encode(SizedUpload(stream, 20), piece)
    assert b"\r\n\r\nemail\na@example.com\n\r\n--" in body
    assert b"skip" not in body


def test_a_stream_shorter_than_announced_is_an_error_not_a_hang() -> None:
    with pytest.raises(MarketoError, match="20 bytes early"):
        encode(SizedUpload(NoCopy(b""), 20), 8192)
