"""The registry client against a hostile registry on loopback: it can neither stall nor sink paid.

A small HTTP server plays each misbehaviour: headers a byte at a time, a
body without end, a redirect loop, an HTML page, a token realm elsewhere.
Each ends in a clear ``ImageUnavailable`` within the client's deadline, and
credentials go only where they may.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from paid.runtime.base import ImageUnavailable
from paid.runtime.outbound import MAX_BODY
from paid.runtime.registry import RegistryClient, _may_get_credentials
from paid.runtime.registry_config import AuthFile, RegistriesConf, RegistryEntry

DIGEST = "sha256:" + "ab" * 32
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class Hostile(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.mode = "good"
        self.seen: list[tuple[str, str, str | None]] = []  # method, path, Authorization
        self.stop = threading.Event()
        self.realm = ""

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Hostile

    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, *, body: bool) -> None:
        server = self.server
        server.seen.append((self.command, self.path, self.headers.get("Authorization")))
        mode = server.mode
        if self.path.startswith("/token"):
            self._send(200, {"Content-Type": "application/json"}, b'{"token": "t0k"}', body)
        elif mode == "slow-headers":
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"." * 1000:
                if server.stop.is_set():
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)
        elif mode == "endless-body" and body:
            self.send_response(200)
            self.send_header("Content-Type", MANIFEST)
            self.end_headers()
            chunk = b"x" * 65536
            while not server.stop.is_set():
                try:
                    self.wfile.write(chunk)
                except OSError:
                    return
        elif mode == "endless-body":
            self._send(200, {"Content-Type": MANIFEST}, b"", body)
        elif mode == "redirect-loop":
            self._send(302, {"Location": self.path}, b"", body)
        elif mode == "html":
            self._send(200, {"Content-Type": "text/html"}, b"<html>hello</html>", body)
        elif mode == "bearer" and self.headers.get("Authorization", "") != "Bearer t0k":
            challenge = f'Bearer realm="{server.realm}",service="registry"'
            self._send(401, {"WWW-Authenticate": challenge}, b"", body)
        else:
            self._send(200, {"Docker-Content-Digest": DIGEST}, b"", body)

    def _send(self, status: int, headers: dict[str, str], data: bytes, body: bool) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)


@pytest.fixture
def registry() -> Iterator[Hostile]:
    server = Hostile()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()


def _client(registry: Hostile, tmp_path: Path, *, timeout: float = 1.0) -> RegistryClient:
    auth = tmp_path / "auth.json"
    secret = base64.b64encode(b"alice:s3cret").decode()
    auth.write_text(json.dumps({"auths": {registry.host: {"auth": secret}}}))
    conf = RegistriesConf([RegistryEntry(registry.host, registry.host, insecure=True)])
    return RegistryClient(auth=AuthFile(auth), registries=conf, timeout=timeout)


def _image(registry: Hostile) -> str:
    return f"{registry.host}/app:1"


def test_a_good_registry_answers_its_digest(registry: Hostile, tmp_path: Path) -> None:
    """The baseline: a HEAD with Docker-Content-Digest is the answer."""
    assert DIGEST == _client(registry, tmp_path).digest(_image(registry))


@pytest.mark.parametrize(
    ("mode", "reason", "words"),
    [
        pytest.param("slow-headers", "unreachable", "did not answer within", id="slow-headers"),
        pytest.param("endless-body", "failed", f"larger than {MAX_BODY} bytes", id="endless"),
        pytest.param("redirect-loop", "failed", "redirected more than 5 times", id="redirects"),
        pytest.param("html", "failed", "text/html, not a manifest", id="html-no-digest"),
    ],
)
def test_each_misbehaviour_is_a_clear_failure(
    registry: Hostile, tmp_path: Path, mode: str, reason: str, words: str
) -> None:
    """Headers a byte at a time, an endless body, a redirect loop, an HTML page: named, bounded."""
    registry.mode = mode
    with pytest.raises(ImageUnavailable) as raised:
        _client(registry, tmp_path).digest(_image(registry))
    assert reason == raised.value.reason
    assert words in str(raised.value)


def test_a_stalled_host_is_not_asked_again_until_its_breaker_resets(
    registry: Hostile, tmp_path: Path
) -> None:
    """Three deadlines missed in a row open that host's breaker: the fourth check asks nothing."""
    registry.mode = "slow-headers"
    client = _client(registry, tmp_path, timeout=0.3)
    for _ in range(3):
        with pytest.raises(ImageUnavailable, match="did not answer"):
            client.digest(_image(registry))
    asked = len(registry.seen)

    with pytest.raises(ImageUnavailable, match="not asked again") as raised:
        client.digest(_image(registry))

    assert "unreachable" == raised.value.reason
    assert asked == len(registry.seen)


def test_a_realm_on_the_registry_s_host_gets_the_credentials(
    registry: Hostile, tmp_path: Path
) -> None:
    """The token protocol as it is meant: the registry's own realm is sent the user."""
    registry.mode = "bearer"
    registry.realm = f"http://{registry.host}/token"

    assert DIGEST == _client(registry, tmp_path).digest(_image(registry))

    token_requests = [auth for _, path, auth in registry.seen if path.startswith("/token")]
    expected = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert [expected] == token_requests


def test_a_realm_on_another_host_is_asked_anonymously(registry: Hostile, tmp_path: Path) -> None:
    """A 401 naming a realm elsewhere gets no password: the token is asked for without one."""
    registry.mode = "bearer"
    registry.realm = f"http://localhost:{registry.server_address[1]}/token"  # another host name

    assert DIGEST == _client(registry, tmp_path).digest(_image(registry))

    assert [None] == [auth for _, path, auth in registry.seen if path.startswith("/token")]


@pytest.mark.parametrize(
    ("realm", "registry_url", "insecure", "allowed"),
    [
        pytest.param("https://auth.docker.io/token", "https://registry-1.docker.io/v2/x", False,
                     True, id="docker-hub-same-site"),
        pytest.param("http://auth.docker.io/token", "https://registry-1.docker.io/v2/x", False,
                     False, id="downgraded-to-http"),
        pytest.param("http://reg.local/token", "https://reg.local/v2/x", True, False,
                     id="insecure-registry-but-spoke-https"),
        pytest.param("http://reg.local/token", "http://reg.local/v2/x", True, True,
                     id="insecure-registry-on-http"),
        pytest.param("https://evil.example/token", "https://reg.example.org/v2/x", False, False,
                     id="another-site"),
    ],
)  # fmt: skip
def test_which_realms_may_get_credentials(
    realm: str, registry_url: str, insecure: bool, allowed: bool
) -> None:
    """https only (http only for an insecure registry spoken to over http), same site only."""
    assert allowed == _may_get_credentials(realm, registry_url, insecure)


def test_import_pin_writes_the_digest_a_moving_tag_names_now(
    registry: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`paid import compose --pin`: an untagged image becomes name@digest, the tag in a comment."""
    import yaml  # noqa: PLC0415

    from paid.cli import main  # noqa: PLC0415

    conf = tmp_path / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n')
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    compose = tmp_path / "compose.yaml"
    compose.write_text(f"services:\n  web:\n    image: {registry.host}/app\n")
    out = tmp_path / "out"

    assert 0 == main(["import", "compose", str(compose), "--pin", "-o", str(out)])

    text = (out / "web.yaml").read_text()
    spec = yaml.safe_load(text)["spec"]
    assert {"image": f"{registry.host}/app@{DIGEST}"} == spec
    assert f"{registry.host}/app pinned to the digest it named at import: {DIGEST}" in text


def test_import_pin_without_an_answer_is_a_problem_not_a_guess(
    registry: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry that answers HTML: the import fails for that file, nothing is written."""
    from paid.cli import main  # noqa: PLC0415

    registry.mode = "html"
    conf = tmp_path / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n')
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    compose = tmp_path / "compose.yaml"
    compose.write_text(f"services:\n  web:\n    image: {registry.host}/app\n")

    assert 1 == main(["import", "compose", str(compose), "--pin", "-o", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
