"""The studio is safe by default: it serves only the project folder, binds beyond the machine only with a
token, refuses cross-origin changes, foreign Host headers and oversized uploads. Against the real
``facetwin studio`` command, over real HTTP with the raw paths an attacker would send."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import cv2
import pytest
from studio_server import InProcessStudio, StudioProcess

from facetwin.errors import FacetwinError
from facetwin.studio.app import Settings, create_app
from facetwin.studio.project import PathRefused, Project

SECRET = "facetwin-studio-test-secret-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A project, a secret file beside it (outside), and links inside the project that lead to it."""
    root = tmp_path_factory.mktemp("studio_safety")
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    project = Project.open(root / "project").root
    (project / "media" / "notes.txt").write_text("inside the project")
    os.symlink(outside, project / "media" / "link_dir")
    os.symlink(outside / "secret.txt", project / "media" / "link_file.txt")
    os.symlink(outside / "secret.txt", project / "outputs" / "swap.mp4")
    return {"root": root, "project": project, "secret": outside / "secret.txt"}


@pytest.fixture(scope="module")
def studio(layout: dict[str, Path]):
    with StudioProcess(layout["project"]) as server:
        yield server


def test_a_file_inside_the_project_is_served(studio: StudioProcess) -> None:
    reply = studio.get("/files/media/notes.txt")
    assert reply.status == 200 and reply.body == b"inside the project"


@pytest.mark.parametrize("path", [
    "/files/../outside/secret.txt",
    "/files/media/../../outside/secret.txt",
    "/files/%2e%2e/outside/secret.txt",
    "/files/%2E%2E%2Foutside%2Fsecret.txt",
    "/files/media/%2e%2e/%2e%2e/outside/secret.txt",
    "/files/..%2f..%2foutside%2fsecret.txt",
    "/files/media/link_dir/secret.txt",
    "/files/media/link_file.txt",
    "/files/outputs/swap.mp4",
    "/files/.studio/studio.db",
    "/facesets/..%2f..%2foutside/grid",
    "/facesets/x/thumb/..%2f..%2f..%2foutside%2fsecret.txt",
    "/merge/original.jpg?media=../outside/secret.txt&frame=0",
    "/merge/original.jpg?media=media/link_file.txt&frame=0",
])  # fmt: skip
def test_escapes_are_refused_and_read_nothing(studio: StudioProcess, path: str) -> None:
    reply = studio.get(path)
    assert 400 <= reply.status < 500, (path, reply.status, reply.body[:200])
    assert SECRET.encode() not in reply.body


def test_absolute_paths_are_refused(studio: StudioProcess, layout: dict[str, Path]) -> None:
    secret = layout["secret"]
    for path in (f"/files/{secret}", f"/files/{str(secret).replace('/', '%2F')}", "/files//etc/passwd", "/files/~/secret"):
        reply = studio.get(path)
        assert 400 <= reply.status < 500, (path, reply.status)
        assert SECRET.encode() not in reply.body and b"root:" not in reply.body


def test_forms_refuse_paths_outside(studio: StudioProcess, layout: dict[str, Path]) -> None:
    for path in ("../outside/secret.txt", str(layout["secret"]), "media/link_file.txt", "media/%2e%2e/%2e%2e/outside/secret.txt"):
        reply = studio.post_form("/media/add", {"path": path})
        assert 400 <= reply.status < 500, (path, reply.status)
        assert SECRET.encode() not in reply.body
    reply = studio.post_form("/jobs/extract", [("media", "../outside/secret.txt"), ("faceset", "x")])
    assert reply.status == 403 or reply.status == 400
    assert studio.get("/api/jobs").json() == [], "no job was queued for a path outside the project"


def test_a_foreign_host_header_is_refused(studio: StudioProcess) -> None:
    """DNS rebinding: a page elsewhere that resolves its own name to 127.0.0.1 gets nothing."""
    reply = studio.get("/", headers={"Host": f"attacker.example:{studio.port}"})
    assert reply.status == 400
    assert studio.get("/").status == 200


def test_a_change_from_another_origin_is_refused(studio: StudioProcess) -> None:
    reply = studio.post_form("/media/add", {"path": "media/notes.txt"}, headers={"Origin": "http://attacker.example"})
    assert reply.status == 403
    reply = studio.post_form("/jobs/extract", {"media": "media/notes.txt", "faceset": "x"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert reply.status == 403


def test_uploads_over_the_limit_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    """Refused by the declared length before anything is read, and mid-stream when no length is declared."""
    settings = Settings(tmp_path / "p", max_upload_bytes=100_000, run_jobs=False)
    boundary = "----facetwin"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.mp4"\r\n\r\n'.encode()
    body = head + b"\0" * 300_000 + f"\r\n--{boundary}--\r\n".encode()
    kind = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    with InProcessStudio(settings) as server:
        declared = server.request("POST", "/media/upload", body, kind)
        assert declared.status == 413
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 8192]), body[i:i + 8192]) for i in range(0, len(body), 8192))
        streamed = server.request("POST", "/media/upload", chunks + b"0\r\n\r\n", {**kind, "Transfer-Encoding": "chunked"})
        assert streamed.status == 413
        small = head + b"\0" * 1000 + f"\r\n--{boundary}--\r\n".encode()
        assert server.request("POST", "/media/upload", small, kind).status == 200, "under the limit it is read (and gated)"
    project = tmp_path / "p"
    assert not list((project / "media").iterdir()), "an unreadable upload is not kept"
    assert not list((project / ".studio" / "uploads").iterdir()), "nothing left half-way"


def test_an_upload_that_is_not_media_is_refused(studio: StudioProcess, layout: dict[str, Path]) -> None:
    boundary = "----facetwin"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="../../evil.sh"\r\n\r\n'
            f"echo hi\r\n--{boundary}--\r\n").encode()  # fmt: skip
    reply = studio.request("POST", "/media/upload", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert reply.status == 400
    assert not (layout["root"] / "evil.sh").exists() and not list(layout["project"].rglob("evil.sh"))


def test_an_upload_passes_the_content_gate_into_media(studio: StudioProcess, layout: dict[str, Path], short_clips: dict[str, Path]) -> None:
    frame = cv2.imencode(".png", cv2.imread(str(_first_frame(short_clips["a"], layout["root"]))))[1].tobytes()
    boundary = "----facetwin"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="franck face.png"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + frame + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
    reply = studio.request("POST", "/media/upload", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert reply.status == 200, reply.body
    assert b"passed the content gate" in reply.body
    assert (layout["project"] / "media" / "franck_face.png").read_bytes() == frame
    assert not list((layout["project"] / ".studio" / "uploads").iterdir()), "nothing left half-way"


def _first_frame(clip: Path, folder: Path) -> Path:
    from conftest import save_frame

    path = folder / "first_frame.png"
    save_frame(clip, 0, path)
    return path


@pytest.mark.slow  # over 4 s: keeps make check under two minutes
def test_a_non_loopback_bind_needs_the_token(tmp_path: Path) -> None:
    with pytest.raises(FacetwinError, match="token"):
        create_app(Settings(tmp_path / "p", host="0.0.0.0", token=None))
    with StudioProcess(tmp_path / "p", host="0.0.0.0") as server:
        assert server.token, "the server printed a token"
        assert any("token" in line for line in server.lines)
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "facetwin_studio_token=wrong"}):
            reply = server.get("/", headers=headers)
            assert reply.status == 401, headers
            assert b"facetwin studio" not in reply.body
        assert server.get("/api/jobs").status == 401
        assert server.get("/files/media").status == 401
        assert server.get("/", headers={"Authorization": f"Bearer {server.token}"}).status == 200
        opened = server.get(f"/?token={server.token}")
        assert opened.status == 303 and opened.headers["location"] == "/"
        cookie = opened.headers["set-cookie"].split(";")[0]
        assert "HttpOnly" in opened.headers["set-cookie"]
        assert server.get("/jobs", headers={"Cookie": cookie}).status == 200


def test_project_paths_are_checked_before_use(tmp_path: Path) -> None:
    project = Project.open(tmp_path / "p")
    assert project.resolve("media/a.mp4") == project.root / "media" / "a.mp4"
    for bad in ("", "/etc/passwd", "../x", "media/../../x", "a\x00b", "~/x", "media\\..\\x"):
        with pytest.raises(PathRefused):
            project.resolve(bad)
