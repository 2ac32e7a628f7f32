"""What Podman's failures mean, as paid's RuntimeFailure family.

No podman-py or requests exception leaves the runtime: each is translated
here into a RuntimeFailure that says whether Podman is away (the
breaker counts it), one object is at fault (it does not), a name is taken,
or a request was refused, with Podman's own words kept.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import requests
from podman import errors as podman_errors

from paid.runtime.base import (
    ContainerMissing,
    ImageUnavailable,
    NameInUse,
    ObjectFault,
    RequestRejected,
    RuntimeFailure,
    RuntimeUnavailable,
)
from paid.runtime.ssh import CONNECT_TIMEOUT


def operation(path: str) -> str:
    """``/v5.8.0/libpod/containers/web/start?x=1`` -> ``containers/start``: few, fixed labels."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if parts and parts[0].startswith("v") and parts[0][1:2].isdigit():
        parts = parts[1:]
    if parts and parts[0] == "libpod":
        parts = parts[1:]
    if not parts:
        return "/"
    if len(parts) >= 3:
        return f"{parts[0]}/{parts[-1]}"
    if len(parts) == 2 and parts[1] not in ("json", "create", "pull"):
        return f"{parts[0]}/item"
    return "/".join(parts)


# "the container name "x" is already in use by ..." (create), "name x already in use" (rename);
# never "address already in use", which is a host port.
NAME_IN_USE = re.compile(r'name "?[^"\s]*"? (is )?already in use')


# A 500 about one object, not Podman failing: the breaker must not count them
# (one broken container opened it for every service).
ONE_OBJECT = (
    "container not known",
    "no such object",
    "no such volume",
    "getting container from store",
    "OCI runtime error",
    "OCI runtime attempted to invoke a command that was not found",
    "crun:",
    "runc:",
    "error setting rlimit",
    "is being used",
    "in use by",
)


@contextlib.contextmanager
def translated(what: str, *, image: str | None = None) -> Iterator[None]:
    try:
        yield
    except RuntimeFailure:
        raise
    except podman_errors.ImageNotFound as err:
        raise ImageUnavailable(image or "?", explain(err)) from err
    except podman_errors.NotFound as err:
        raise ContainerMissing(f"{what}: {explain(err)}") from err
    except podman_errors.APIError as err:
        status = err.response.status_code if err.response is not None else None
        detail = explain(err)
        if status is None:
            cause = transport_cause(err)
            raise RuntimeUnavailable(f"{what}: Podman is unreachable ({cause or detail})") from err
        if image is not None and "image not known" in detail:
            raise ImageUnavailable(image, detail) from err
        if NAME_IN_USE.search(detail):  # Podman 4.3 answers 500, not 409, for this
            raise NameInUse(f"{what}: {detail}") from err
        if "address already in use" in detail:  # a host port: an answer, not an outage
            raise RequestRejected(f"{what}: a host port is taken: {detail}") from err
        if "invalid config provided" in detail:  # 500 for a spec Podman refuses: an answer
            raise RequestRejected(f"{what}: {detail}") from err
        if "container state improper" in detail:  # 500 for "not running": an answer too
            raise RequestRejected(f"{what}: {detail}") from err
        if "IPAM error" in detail or "failed to find free IP" in detail:  # 500, but an answer
            raise RequestRejected(
                f"{what}: the network has no free address left ({detail}); "
                "declare it with a larger spec.subnet"
            ) from err
        if "network is being used" in detail:  # 500: a network with containers on it
            raise RequestRejected(f"{what}: {detail}") from err
        if "unable to find network" in detail and what.startswith("create "):
            raise RequestRejected(f"{what}: {detail}") from err  # 404, but no container is missing
        if status == 404:
            raise ContainerMissing(f"{what}: {detail}") from err
        if status in (400, 409, 422):
            raise RequestRejected(f"{what}: {detail}") from err
        if "no such container" in detail or "does not exist in database" in detail:
            raise ContainerMissing(f"{what}: {detail}") from err  # 500, but simply gone
        if any(words in detail for words in ONE_OBJECT):
            raise ObjectFault(f"{what}: {detail}") from err
        failure = RuntimeFailure(f"{what}: Podman answered {status}: {detail}")
        failure.transient = status >= 500 and "image not known" not in detail
        raise failure from err
    except (requests.ConnectionError, requests.Timeout, ConnectionError) as err:
        raise RuntimeUnavailable(f"{what}: Podman is unreachable ({err})") from err
    except podman_errors.PodmanError as err:
        raise RuntimeFailure(f"{what}: {err}") from err
    except requests.RequestException as err:
        raise RuntimeUnavailable(f"{what}: {err}") from err


def explain_body(response: Any) -> str:
    try:
        return str(response.json().get("message") or response.text).strip()
    except ValueError:
        return str(response.text).strip()


def transport_cause(err: Exception) -> str | None:
    """Why the connection failed, in the words of the OS or of requests: not "GET failed"."""
    cause = err.__cause__
    if isinstance(cause, requests.ConnectTimeout):
        return f"no answer within {CONNECT_TIMEOUT:g} s"
    if isinstance(cause, requests.ReadTimeout):
        return "it accepted the connection but did not answer in time"
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return str(cause.strerror)
        cause = cause.__cause__ or cause.__context__
    return None


def explain(err: Exception) -> str:
    explanation = getattr(err, "explanation", None)
    return str(explanation or err).strip()
