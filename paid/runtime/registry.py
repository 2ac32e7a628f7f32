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
import re
import warnings
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
        path = f"/v2/{repository}/manifests/{ref.tag}"
        breaker = self.breakers.of(host)
        if not breaker.allows():
            raise ImageUnavailable(
                image,
                f"{host} failed {breaker.failures} times in a row: not asked again for "
                f"{breaker.reset_timeout:g} s",
                reason="unreachable",
            )
        try:
            digest = self._ask_host(image, host, path, credentials, entry.insecure)
        except ImageUnavailable as err:
            breaker.record(reachable=err.reason != "unreachable")
            raise
        breaker.record(reachable=True)
        return digest

    def _ask_host(
        self, image: str, host: str, path: str, credentials: Credentials | None, insecure: bool
    ) -> str:
        schemes = ("https", "http") if insecure else ("https",)
        last: Exception | None = None
        for scheme in schemes:
            try:
                return self._ask(image, f"{scheme}://{host}{path}", credentials, insecure)
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

    def _ask(self, image: str, url: str, credentials: Credentials | None, insecure: bool) -> str:
        headers = {"Accept": MANIFEST_TYPES}
        if url.startswith("http://") and not insecure:
            credentials = None  # never a password in clear text to a registry not marked so
        response = self._request("HEAD", url, headers, insecure)
        if response.status_code == 401:
            authorization = self._authorize(image, response, credentials, insecure)
            if authorization is None:
                raise ImageUnavailable(
                    image, "the registry wants credentials and has none that it accepts",
                    reason="unauthorized",
                )  # fmt: skip
            headers["Authorization"] = authorization
            response = self._request("HEAD", url, headers, insecure)
        status = response.status_code
        if status in (401, 403):
            raise ImageUnavailable(image, f"HTTP {status} from the registry", reason="unauthorized")
        if status == 404:
            raise ImageUnavailable(image, "manifest unknown (HTTP 404)", reason="not_found")
        if status == 429 or status >= 500:
            raise ImageUnavailable(image, f"HTTP {status} from the registry", reason="unreachable")
        if status >= 400:
            raise ImageUnavailable(image, f"HTTP {status} from the registry", reason="failed")
        digest = response.headers.get("Docker-Content-Digest", "")
        if is_digest(digest):
            return digest
        # A registry that does not say: the digest is that of the manifest's bytes, if
        # what it sends is a manifest (an HTML page from a proxy is not).
        body = self._request("GET", url, headers, insecure)
        if body.status_code != 200:
            raise ImageUnavailable(image, f"HTTP {body.status_code} from the registry")
        kind = body.headers.get("Content-Type", "").split(";", 1)[0].strip()
        if kind not in MANIFEST_TYPES.split(", "):
            raise ImageUnavailable(
                image,
                f"the registry answered {kind or 'no content type'}, not a manifest, and "
                "no Docker-Content-Digest",
                reason="failed",
            )
        return "sha256:" + hashlib.sha256(body.content).hexdigest()

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
