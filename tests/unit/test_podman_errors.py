"""Podman's answers, translated into paid's error types by the one module that talks to it."""

from __future__ import annotations

import pytest
import requests
from podman import errors as podman_errors

from paid.runtime.base import NameInUse, ObjectFault, RequestRejected, RuntimeFailure
from paid.runtime.podman_errors import translated


def _answer(status: int, explanation: str) -> podman_errors.APIError:
    response = requests.Response()
    response.status_code = status
    return podman_errors.APIError("refused", response=response, explanation=explanation)


@pytest.mark.parametrize(
    ("status", "explanation", "expected", "transient"),
    [
        pytest.param(
            500,
            'creating container storage: the container name "web" is already in use by 3f2a. '
            "You have to remove that container to be able to reuse that name: that name is "
            "already in use",
            NameInUse,
            False,
            id="create-name-taken",
        ),
        pytest.param(
            409,
            "renaming container 3f2a: name web already in use, cannot rename container",
            NameInUse,
            False,
            id="rename-name-taken",
        ),
        pytest.param(
            500,
            "cannot listen on the TCP port: listen tcp4 127.0.0.1:8080: bind: "
            "address already in use",
            RequestRejected,
            False,
            id="host-port-taken",
        ),
        pytest.param(
            500,
            "can only kill running containers. 3f2a is in state created: container state improper",
            RequestRejected,
            False,
            id="not-running",
        ),
        pytest.param(
            500,
            'getting container from store "3f2a": container not known',
            ObjectFault,
            False,
            id="one-container-broken",
        ),
        pytest.param(
            500,
            "runc: runc create failed: unable to start container process: error setting "
            "rlimit type 6: operation not permitted: OCI permission denied",
            ObjectFault,
            False,
            id="one-container-refused-by-runc",
        ),
        pytest.param(500, "database is locked", RuntimeFailure, True, id="server-trouble"),
    ],
)
def test_answers_become_the_right_error(
    status: int, explanation: str, expected: type[Exception], transient: bool
) -> None:
    """A taken name is NameInUse; a taken port or a bad state is a refusal, never retried."""
    with pytest.raises(RuntimeFailure) as raised, translated("start web"):
        raise _answer(status, explanation)

    assert expected is type(raised.value)
    assert transient == raised.value.transient
