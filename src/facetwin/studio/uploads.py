"""Receiving uploaded files: a multipart body streamed by python-multipart straight into the project.

Nothing is spooled to the system's temporary folder: each file part is written to a hidden temporary
file in ``.studio/uploads`` as it arrives, and the whole body is refused (and every part deleted) past
the byte limit.
"""

from __future__ import annotations

from pathlib import Path

from python_multipart import FormParser
from python_multipart.multipart import File, parse_options_header
from starlette.requests import Request

from facetwin.errors import FacetwinError
from facetwin.studio.intake import TooLarge, safe_upload_name

MAX_PARTS = 16


async def receive_files(request: Request, folder: Path, limit: int) -> list[tuple[str, Path]]:
    """The files of a multipart/form-data request as (name the client gave, hidden file written in
    ``folder``). Raises TooLarge past ``limit`` bytes, FacetwinError for a malformed body or a file that
    is not media by its name; nothing is left behind either way."""
    folder.mkdir(parents=True, exist_ok=True)
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    files: list[File] = []

    def on_file(file: File) -> None:
        files.append(file)

    config = {"UPLOAD_DIR": str(folder), "UPLOAD_DELETE_TMP": False, "MAX_MEMORY_FILE_SIZE": 0, "MAX_BODY_SIZE": float(limit)}
    parser = FormParser(content_type.decode("latin-1"), None, on_file, boundary=params.get(b"boundary"), config=config)
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise TooLarge(f"upload larger than the limit ({limit / 2**20:.0f} MiB)")
            parser.write(chunk)
            if len(files) > MAX_PARTS:
                raise FacetwinError(f"at most {MAX_PARTS} files at once")
        parser.finalize()
        result = []
        for file in files:
            name = (file.file_name or b"").decode("utf-8", "replace")
            safe_upload_name(name)  # raises for a file that is not media by its suffix
            if file.actual_file_name is None:  # an empty part never reached the disk
                raise FacetwinError(f"{name!r}: empty file")
            result.append((name, Path(file.actual_file_name.decode())))
        return result
    except Exception as exc:
        for file in files:
            file.close()
            if file.actual_file_name:
                Path(file.actual_file_name.decode()).unlink(missing_ok=True)
        if isinstance(exc, FacetwinError):
            raise
        raise FacetwinError(f"malformed upload ({exc})") from exc
    finally:
        for file in files:
            file.close()
