"""``facetwin studio``: bind, print the URL (with the token when one is needed), serve until Ctrl-C."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from pathlib import Path

from facetwin.errors import FacetwinError
from facetwin.studio.app import Settings, create_app
from facetwin.studio.security import is_loopback


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one. Raises FacetwinError when it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise FacetwinError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from exc
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def serve(project_dir: Path, host: str = "127.0.0.1", port: int = 8765, say: Callable[[str], None] = print,
          token: str | None = None) -> None:
    """Run the studio for ``project_dir`` until interrupted. On a non-loopback ``host`` a token is made (or
    ``token`` used), printed inside the URL, and required on every request."""
    import uvicorn

    if not is_loopback(host):
        token = token or secrets.token_urlsafe(24)
    else:
        token = None
    app = create_app(Settings(project_dir, host, token))
    sock = bind(host, port)
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    say(f"facetwin studio: project {Path(project_dir).resolve()}")
    if token:
        say(f"facetwin studio: listening beyond this machine; every request needs the token: {token}")
        say(f"facetwin studio: open {url}?token={token}")
    else:
        say(f"facetwin studio: open {url}")
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3, access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
