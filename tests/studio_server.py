"""Starting the real ``facetwin studio`` for tests, and talking to it over HTTP (raw paths kept as given)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class StudioProcess:
    """``python -m facetwin studio PROJECT --port 0 [--host HOST]`` in a subprocess; ``url`` and ``token`` as printed."""

    project: Path
    host: str = "127.0.0.1"
    url: str = ""
    token: str | None = None
    lines: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 120) -> StudioProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "facetwin", "studio", str(self.project), "--port", "0", "--host", self.host],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        found = threading.Event()

        def read() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line.rstrip())
                match = re.search(r"open (http://\S+)", line)
                if match:
                    address = match.group(1)
                    self.url = address.split("?")[0]
                    self.token = address.split("token=")[1] if "token=" in address else None
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("studio did not start:\n" + "\n".join(self.lines))
        return self

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 120) -> Reply:
        """One request to 127.0.0.1 with ``path`` sent exactly as written (no normalising of ``..`` or ``%2e``)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            sent = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
            if body is not None and "Transfer-Encoding" not in sent:
                sent.setdefault("Content-Length", str(len(body)))
            for key, value in sent.items():
                connection.putheader(key, value)
            connection.endheaders(body)
            response = connection.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post_form(self, path: str, fields: dict[str, str] | list[tuple[str, str]], headers: dict[str, str] | None = None) -> Reply:
        from urllib.parse import urlencode

        return self.request("POST", path, urlencode(fields).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})  # fmt: skip

    def wait_for_job(self, job_id: int, states: set[str], timeout: float = 600, headers: dict[str, str] | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(f"/api/jobs/{job_id}", headers=headers).json()
            if job["state"] in states:
                return dict(job)
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} is {job['state']} after {timeout} s; log:\n{job.get('log')}")
            time.sleep(0.5)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> StudioProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip


class InProcessStudio(StudioProcess):
    """The studio app of ``create_app(settings)`` under uvicorn on a thread of this process (for settings the
    command line does not expose, such as a small upload limit)."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings.project_dir, settings.host)
        self.settings = settings
        self.server: Any = None
        self.thread: threading.Thread | None = None

    def start(self, timeout: float = 60) -> InProcessStudio:
        import uvicorn

        from facetwin.studio.app import create_app
        from facetwin.studio.server import bind

        sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        self.server = uvicorn.Server(uvicorn.Config(create_app(self.settings), log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("in-process studio did not start")
            time.sleep(0.05)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout)
