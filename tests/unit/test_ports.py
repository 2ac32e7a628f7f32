"""Published ports: every form users write, parsed once into PortMappings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from paid.state.specs import ServiceSpec


def _ports(*written: str) -> list[str]:
    return [str(p) for p in ServiceSpec(image="localhost/app:1", ports=list(written)).ports]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param(["8080:80"], ["0.0.0.0:8080:80/tcp"], id="host-container"),
        pytest.param(["8080:80/udp"], ["0.0.0.0:8080:80/udp"], id="udp"),
        pytest.param(["127.0.0.1:8080:80"], ["127.0.0.1:8080:80/tcp"], id="ip"),
        pytest.param(["[::]:8080:80"], ["[::]:8080:80/tcp"], id="ipv6-any"),
        pytest.param(["[::1]:8080:80"], ["[::1]:8080:80/tcp"], id="ipv6-loopback"),
        pytest.param(
            ["8000-8002:9000-9002/udp"],
            ["0.0.0.0:8000:9000/udp", "0.0.0.0:8001:9001/udp", "0.0.0.0:8002:9002/udp"],
            id="range",
        ),
        pytest.param(
            ["127.0.0.1:8000-8001:80-81"],
            ["127.0.0.1:8000:80/tcp", "127.0.0.1:8001:81/tcp"],
            id="range-with-ip",
        ),
    ],
)
def test_each_form_becomes_its_mappings(written: list[str], expected: list[str]) -> None:
    """Each form is the mappings `podman run -p` would make of it."""
    assert expected == _ports(*written)


@pytest.mark.parametrize(
    ("written", "message"),
    [
        pytest.param("8000-8002:9000", "same length", id="range-to-one-port"),
        pytest.param("8000-8002:9000-9001", "same length", id="ranges-differ"),
        pytest.param("8002-8000:9002-9000", "low to high", id="backwards"),
        pytest.param("1-5000:1-5000", "1024 ports at most", id="huge"),
        pytest.param("65000-65537:65000-65537", "65535", id="beyond-65535"),
    ],
)
def test_bad_ranges_are_refused_by_name(written: str, message: str) -> None:
    """A range that is not a declared set of ports is refused, saying why."""
    with pytest.raises(ValidationError, match=message):
        _ports(written)
