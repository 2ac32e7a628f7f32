"""The one module that talks to image registries: what a tag's digest is now.

An update check asks the registry, never Podman: a ``HEAD`` of the tag's
manifest (the distribution API, ``/v2/<name>/manifests/<tag>``) answers
with its digest and downloads nothing. It honours what Podman honours:

- **credentials** from the containers-auth.json file ``podman login``
  writes (``--authfile``, ``REGISTRY_AUTH_FILE``, then Podman's default
  places), answering Basic and Bearer (token) challenges. The file is read
  again for each request, so a ``podman login`` needs no restart. What it
  holds never reaches a log, a message or the store.
- **registries.conf** (``CONTAINERS_REGISTRIES_CONF``, else
  ``/etc/containers/registries.conf`` and ``registries.conf.d``): a
  registry's ``location`` (a rewrite of its ``prefix``), ``insecure``
  (plain HTTP, or TLS without verification) and ``blocked``. Mirrors are
  not asked: a check asks the registry the tag belongs to.

Failures are ``ImageUnavailable`` with the reasons pulls have:
``not_found``, ``unauthorized`` or ``unreachable`` (transient).

A registry is a dependency that can fail in any way, so each one is
bulkheaded:

- every request has a **total deadline** (``deadline``, not a per-read
  timeout: a registry that sends its headers a byte a second is cut off),
  runs in a thread of its own that is abandoned, never waited for, when
  the deadline passes, so a stalled registry never holds a reconcile, a
  start-up or SIGTERM;
- answers are **bounded**: at most ``MAX_BODY`` bytes of a manifest or a
  token, ``MAX_REDIRECTS`` redirects; anything else is a clear failure;
- each registry host has its **own breaker**: after ``fail_max`` answers
  in a row that say the host is unreachable, it is not asked again for
  ``reset_timeout`` seconds (Podman's breaker never hears of it);
- a digest is taken only from ``Docker-Content-Digest`` or computed from a
  body whose type is a manifest, never from an HTML page;
- **credentials** go only over https (or to a registry registries.conf
  marks insecure), and to a token realm only on https and on the
  registry's own site (``auth.docker.io`` for ``registry-1.docker.io``);
  any other realm is asked anonymously.
"""

from __future__ import annotations

import base64
import hashlib
import platform
import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from paid.runtime.base import ImageUnavailable
from paid.runtime.outbound import (
    MAX_REDIRECTS,
    Abandoned,
    Breakers,
    bounded,
    brief,
    within,
)
from paid.runtime.registry_config import (
    AuthFile,
    ConfigFileError,
    Credentials,
    RegistriesConf,
)
from paid.state.images import DEFAULT_REGISTRY, is_digest, parse_reference

TIMEOUT = 10.0  # seconds for each request of a check, all of it: headers, body, redirects
TAGS_PER_PAGE = 1000
MAX_TAG_PAGES = 20  # 20,000 tags at most: a repository with more is refused, not read for ever
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryClient:
    """Asks registries what a tag's digest is; ``ImageUnavailable`` says why it cannot."""

    def __init__(
        self,
        *,
        auth: AuthFile | None = None,
        registries: RegistriesConf | None = None,
        timeout: float = TIMEOUT,
        fail_max: int = 3,
        reset_timeout: float = 60.0,
    ) -> None:
        self.auth = auth or AuthFile()
        self._registries = registries
        self.timeout = timeout  # the deadline of each request, start to last byte
        self.breakers = Breakers(fail_max, reset_timeout)
        self.requests = 0  # every HTTP request made, for tests and benchmarks

    @property
    def registries(self) -> RegistriesConf:
        if self._registries is None:
            self._registries = RegistriesConf.load()
        return self._registries

    def close(self) -> None:
        """Nothing to close: each request has its own connection (see ``within``)."""

    def digest(self, image: str) -> str:
        """The digest ``image``'s tag points at now (a digest reference is its own answer)."""
        ref = parse_reference(image)
        if ref.digest is not None:
            return ref.digest
        where = self._locate(image)
        path = f"/v2/{where.repository}/manifests/{ref.tag}"
        answer = self._call(image, where, "HEAD", path, MANIFEST_TYPES)
        digest = answer.headers.get("Docker-Content-Digest", "")
        if is_digest(digest):
            return digest
        # A registry that does not say: the digest is that of the manifest's bytes, if
        # what it sends is a manifest (an HTML page from a proxy is not).
        body = self._call(image, where, "GET", path, MANIFEST_TYPES)
        _manifest_type(image, body)
        return "sha256:" + hashlib.sha256(body.content).hexdigest()

    def tags(self, image: str) -> list[str]:
        """Every tag of ``image``'s repository (the distribution API's tag list, paged)."""
        where = self._locate(image)
        path: str | None = f"/v2/{where.repository}/tags/list?n={TAGS_PER_PAGE}"
        found: list[str] = []
        for _ in range(MAX_TAG_PAGES):
            if path is None:
                return found
            answer = self._call(image, where, "GET", path, "application/json")
            try:
                listed = answer.json().get("tags") or []
            except (ValueError, AttributeError):
                raise ImageUnavailable(image, "the tag list is not JSON", reason="failed") from None
            if not isinstance(listed, list):
                raise ImageUnavailable(image, "the tag list is not a list", reason="failed")
            found.extend(t for t in listed if isinstance(t, str))
            path = _next_page(answer.headers.get("Link", ""))
        if path is not None:
            raise ImageUnavailable(
                image,
                f"more than {MAX_TAG_PAGES * TAGS_PER_PAGE} tags: refused",
                reason="failed",
            )
        return found

    def created(self, image: str, digest: str) -> float | None:
        """When the image ``digest`` says it was made (its config's ``created``), if it says.

        An index (a multi-platform image) is read for this host's platform.
        """
        where = self._locate(image)
        manifest = self._json(image, where, f"/v2/{where.repository}/manifests/{digest}")
        entries = manifest.get("manifests")
        if isinstance(entries, list):
            chosen = _platform_entry(entries)
            if chosen is None:
                return None
            path = f"/v2/{where.repository}/manifests/{chosen}"
            manifest = self._json(image, where, path)
        config = manifest.get("config")
        blob = config.get("digest") if isinstance(config, dict) else None
        if not isinstance(blob, str) or not is_digest(blob):
            return None
        made = self._json(image, where, f"/v2/{where.repository}/blobs/{blob}").get("created")
        return _timestamp(made) if isinstance(made, str) else None

    def _json(self, image: str, where: _Where, path: str) -> dict[str, Any]:
        answer = self._call(image, where, "GET", path, MANIFEST_TYPES + ", application/json")
        try:
            value = answer.json()
        except ValueError:
            raise ImageUnavailable(image, f"{path}: not JSON", reason="failed") from None
        return value if isinstance(value, dict) else {}

    def _locate(self, image: str) -> _Where:
        ref = parse_reference(image)
        try:
            entry = self.registries.entry(ref.name)
            credentials = self.auth.lookup(image)
        except ConfigFileError as err:
            raise ImageUnavailable(image, str(err), reason="failed") from err
        if entry.blocked:
            raise ImageUnavailable(image, "registries.conf blocks this registry", reason="failed")
        host = ref.registry if entry.location == entry.prefix else entry.location.split("/")[0]
        repository = ref.name.replace(entry.prefix, entry.location, 1).split("/", 1)[1]
        host = "registry-1.docker.io" if host == DEFAULT_REGISTRY else host
        return _Where(host, repository, credentials, entry.insecure)

    def _call(
        self, image: str, where: _Where, method: str, path: str, accept: str
    ) -> requests.Response:
        """One request to ``where``'s host, through its breaker; a 2xx answer or why not."""
        breaker = self.breakers.of(where.host)
        if not breaker.allows():
            raise ImageUnavailable(
                image,
                f"{where.host} failed {breaker.failures} times in a row: not asked again for "
                f"{breaker.reset_timeout:g} s",
                reason="unreachable",
            )
        try:
            answer = self._ask_host(image, where, method, path, accept)
        except ImageUnavailable as err:
            breaker.record(reachable=err.reason != "unreachable")
            raise
        breaker.record(reachable=True)
        return answer

    def _ask_host(
        self, image: str, where: _Where, method: str, path: str, accept: str
    ) -> requests.Response:
        host = where.host
        schemes = ("https", "http") if where.insecure else ("https",)
        last: Exception | None = None
        for scheme in schemes:
            url = f"{scheme}://{host}{path}"
            try:
                return self._ask(
                    image,
                    method,
                    url,
                    accept,
                    credentials=where.credentials,
                    insecure=where.insecure,
                )
            except (requests.ConnectionError, requests.Timeout) as err:
                last = err  # an insecure registry may speak plain HTTP: try that
            except Abandoned as err:
                raise ImageUnavailable(
                    image, f"{host} did not answer within {self.timeout:g} s", reason="unreachable"
                ) from err
            except requests.TooManyRedirects as err:
                raise ImageUnavailable(
                    image, f"{host} redirected more than {MAX_REDIRECTS} times", reason="failed"
                ) from err
            except requests.RequestException as err:
                raise ImageUnavailable(
                    image, f"{host} answered badly: {brief(err)}", reason="failed"
                ) from err
        raise ImageUnavailable(
            image, f"no answer from {host}: {brief(last)}", reason="unreachable"
        ) from last

    def _ask(
        self,
        image: str,
        method: str,
        url: str,
        accept: str,
        *,
        credentials: Credentials | None,
        insecure: bool,
    ) -> requests.Response:
        headers = {"Accept": accept}
        if url.startswith("http://") and not insecure:
            credentials = None  # never a password in clear text to a registry not marked so
        response = self._request(method, url, headers, insecure)
        if response.status_code == 401:
            authorization = self._authorize(image, response, credentials, insecure)
            if authorization is None:
                raise ImageUnavailable(
                    image, "the registry wants credentials and has none that it accepts",
                    reason="unauthorized",
                )  # fmt: skip
            headers["Authorization"] = authorization
            response = self._request(method, url, headers, insecure)
        status = response.status_code
        if status in (401, 403):
            raise ImageUnavailable(image, f"HTTP {status} from the registry", reason="unauthorized")
        if status == 404:
            what = "manifest" if "/manifests/" in url else "repository or blob"
            raise ImageUnavailable(image, f"{what} unknown (HTTP 404)", reason="not_found")
        if status == 429 or status >= 500:
            raise ImageUnavailable(image, f"HTTP {status} from the registry", reason="unreachable")
        if status >= 300:
            raise ImageUnavailable(image, f"HTTP {status} from the registry", reason="failed")
        return response

    def _authorize(
        self,
        image: str,
        challenge: requests.Response,
        credentials: Credentials | None,
        insecure: bool,
    ) -> str | None:
        """The Authorization header that answers a 401's challenge (Basic or Bearer)."""
        header = challenge.headers.get("WWW-Authenticate", "")
        scheme = header.split(" ", 1)[0].lower()
        if scheme == "basic":
            if credentials is None:
                return None
            pair = f"{credentials.username}:{credentials.password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        if scheme != "bearer":
            return None
        params = dict(_CHALLENGE.findall(header))
        realm = params.pop("realm", "")
        if not realm.startswith(("https://", "http://")):
            return None
        if "scope" not in params:
            params["scope"] = f"repository:{parse_reference(image).repository}:pull"
        registry_url = challenge.request.url if challenge.request is not None else None
        if credentials is not None and not _may_get_credentials(realm, registry_url, insecure):
            credentials = None  # asked anonymously: the realm is not the registry's to know
        auth = (credentials.username, credentials.password) if credentials else None
        self.requests += 1
        try:
            answer = within(
                self.timeout,
                lambda session: bounded(
                    session.get(
                        realm,
                        params=params,
                        auth=auth,
                        timeout=self.timeout,
                        verify=not insecure,
                        stream=True,
                    )
                ),
            )
        except (requests.ConnectionError, requests.Timeout, Abandoned) as err:
            raise ImageUnavailable(
                image, f"the token service does not answer: {brief(err)}", reason="unreachable"
            ) from err
        except requests.RequestException as err:
            raise ImageUnavailable(
                image, f"the token service answered badly: {brief(err)}", reason="failed"
            ) from err
        if answer.status_code in (401, 403):
            return None
        try:
            document = answer.json()
            token = document.get("token") or document.get("access_token")
        except (ValueError, AttributeError):
            token = None
        return f"Bearer {token}" if isinstance(token, str) and token else None

    def _request(
        self, method: str, url: str, headers: dict[str, str], insecure: bool
    ) -> requests.Response:
        self.requests += 1

        def exchange(session: requests.Session) -> requests.Response:
            with warnings.catch_warnings():
                if insecure:  # registries.conf says so: no warning per request
                    warnings.simplefilter("ignore")
                return bounded(
                    session.request(
                        method,
                        url,
                        headers=headers,
                        timeout=self.timeout,
                        verify=not insecure,
                        allow_redirects=True,
                        stream=True,
                    )
                )

        return within(self.timeout, exchange)


def _may_get_credentials(realm: str, registry_url: str | None, insecure: bool) -> bool:
    """Whether a token realm may be sent the registry's user and password.

    Only on https (plain http only when the registry itself is marked
    insecure and spoke it), and only on the registry's own site: its host,
    or a host of the same parent domain (Docker Hub's realm is
    ``auth.docker.io`` for ``registry-1.docker.io``).
    """
    target = urlsplit(realm)
    origin = urlsplit(registry_url or "")
    if target.scheme != "https" and not (insecure and origin.scheme == "http"):
        return False
    return _site(target.hostname or "") == _site(origin.hostname or "")


def _site(host: str) -> str:
    """``registry-1.docker.io`` -> ``docker.io``; an address or a one-label host is itself."""
    if not host or host.replace(".", "").isdigit() or ":" in host or "." not in host:
        return host
    return ".".join(host.split(".")[-2:])


@dataclass(frozen=True, slots=True)
class _Where:
    """Where an image's repository is asked: its host and path there, and how."""

    host: str
    repository: str
    credentials: Credentials | None
    insecure: bool


def _manifest_type(image: str, answer: requests.Response) -> None:
    kind = answer.headers.get("Content-Type", "").split(";", 1)[0].strip()
    if kind not in MANIFEST_TYPES.split(", "):
        raise ImageUnavailable(
            image,
            f"the registry answered {kind or 'no content type'}, not a manifest, and "
            "no Docker-Content-Digest",
            reason="failed",
        )


def _next_page(link: str) -> str | None:
    """The path of the next page of a tag list (``Link: </v2/...>; rel="next"``), if any."""
    found = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', link)
    if found is None:
        return None
    target = urlsplit(found[1])
    if not target.path.startswith("/v2/"):
        return None
    return target.path + (f"?{target.query}" if target.query else "")


def _platform_entry(entries: list[Any]) -> str | None:
    """The digest of an index's manifest for this host's platform (linux/amd64 ...)."""
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(
        platform.machine(), platform.machine()
    )
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        where = entry.get("platform") or {}
        digest = entry.get("digest")
        if (
            where.get("os") == "linux"
            and where.get("architecture") == arch
            and is_digest(str(digest))
        ):
            return str(digest)
    return None


def _timestamp(text: str) -> float | None:
    """An RFC 3339 time (``2026-12-04T10:00:00.123456789Z``) as Unix time."""
    found = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if found is None:
        return None
    zone = "+00:00" if found[3] == "Z" else found[3]
    try:
        return datetime.fromisoformat(found[1] + zone).timestamp()
    except ValueError:
        return None
