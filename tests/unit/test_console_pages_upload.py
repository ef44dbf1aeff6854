"""pages.py's multipart reader and header helpers: a file's bytes exactly as sent, the limits, the policies."""

from __future__ import annotations

import os

import pytest

from chalicelib.console import pages
from chalicelib.errors import ApiError

TYPE = "multipart/form-data; boundary=XyZ"


def body(*parts: bytes) -> bytes:
    return b"".join(b"--XyZ\r\n" + p + b"\r\n" for p in parts) + b"--XyZ--\r\n"


def field(name: str, value: bytes) -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value


def file(name: str, filename: str, data: bytes, kind: str = "image/png") -> bytes:
    return (f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\nContent-Type: {kind}\r\n\r\n'
            .encode() + data)


@pytest.mark.parametrize("data", [b"", b"\r\n--XyY\r\n\r\r\n\n", bytes(range(256)) * 4, os.urandom(50_000)])
def test_a_files_bytes_come_back_exactly_with_the_text_fields(data: bytes) -> None:
    form, files = pages._multipart(TYPE, body(field("csrf", "tok é".encode()), file("file", "лого.png", data)))
    assert form == {"csrf": "tok é"}
    assert files["file"] == pages.Upload("лого.png", "image/png", data)


def test_no_file_chosen_is_no_file_and_the_limits_hold() -> None:
    form, files = pages._multipart(TYPE, body(field("csrf", b"t"), file("file", "", b"", "application/octet-stream")))
    assert form == {"csrf": "t"} and files == {}
    with pytest.raises(pages._TooLarge):
        pages._multipart(TYPE, b"x" * (pages.MAX_UPLOAD_BYTES + 1))
    too_many = body(*(file(f"f{i}", "a.png", b"1") for i in range(pages.MAX_UPLOAD_FILES + 1)))
    for content_type, raw in (("multipart/form-data", body(field("a", b"1"))), (TYPE, too_many),
                              (TYPE, body(field("a", b"\xff\xfe")))):
        with pytest.raises(ApiError) as refused:
            pages._multipart(content_type, raw)
        assert refused.value.status == 400


def test_one_directive_is_added_or_replaced_and_the_rest_of_the_policy_stays() -> None:
    policy = pages.csp(frame_src="'none'", img_src="'self'")
    assert "frame-src 'none'" in policy and "img-src 'self'" in policy and "img-src 'self' data:" not in policy
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    framed = pages.framed("<p>x</p>")
    assert framed.headers["Content-Security-Policy"] == pages.FRAMED_CSP and "sandbox" in pages.FRAMED_CSP
    assert framed.headers["X-Frame-Options"] == "SAMEORIGIN" and "script" not in pages.FRAMED_CSP
