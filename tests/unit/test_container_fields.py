"""The container fields of a service: validated with file:line errors, mapped once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paid.controllers.requests import container_options
from paid.state.specs import ServiceSpec, parse_memory
from paid.storage.loading import load_directory
from tests.harness import service_doc, write_services


@pytest.mark.parametrize(
    ("field", "value", "where", "words"),
    [
        pytest.param("user", "root;rm", "spec.user", "is not 'name'", id="user"),
        pytest.param("workingDir", "relative", "spec.workingDir", "absolute path", id="workdir"),
        pytest.param("hostname", "no_underscores", "spec.hostname", "not a host name",
                     id="hostname"),
        pytest.param("tmpfs", ["/tmp/../etc"], "spec.tmpfs[0].path", "without '..'", id="tmpfs"),
        pytest.param("capabilities", {"add": ["CAP_BOGUS"]}, "spec.capabilities.add[0]",
                     "not a Linux capability", id="capability"),
        pytest.param("ulimits", {"nofiles": 5}, "spec.ulimits", "not a ulimit", id="ulimit-name"),
        pytest.param("ulimits", {"nofile": {"soft": 9, "hard": 5}}, "spec.ulimits.nofile",
                     "above the hard limit", id="ulimit-order"),
        pytest.param("sysctls", {"bad key": "1"}, "spec.sysctls", "not a sysctl name",
                     id="sysctl"),
        pytest.param("extraHosts", ["nocolon"], "spec.extraHosts[0]", "not 'name:ip'",
                     id="extra-host"),
        pytest.param("dns", {"servers": ["dns.example"]}, "spec.dns.servers",
                     "not an IP address", id="dns-server"),
        pytest.param("securityOpt", ["seccomp-ish"], "spec.securityOpt", "security option",
                     id="security-opt"),
        pytest.param("devices", ["/etc/shadow"], "spec.devices", "not a path under /dev",
                     id="device-path"),
        pytest.param("devices", ["/dev/fuse"], "spec.devices[0]", "see --allow-device",
                     id="device-not-allowed"),
        pytest.param("logging", {"driver": "syslog"}, "spec.logging.driver", "Input should be",
                     id="log-driver"),
        pytest.param("pidsLimit", 0, "spec.pidsLimit", "greater than or equal to 1",
                     id="pids-limit"),
        pytest.param("userns", "sideways", "spec.userns", "one of auto", id="userns"),
    ],
)  # fmt: skip
def test_each_bad_field_is_a_located_error(
    tmp_path: Path, field: str, value: Any, where: str, words: str
) -> None:
    """Every field is checked at validation, with its line and path."""
    write_services(tmp_path, service_doc("app", **{field: value}))

    result = load_directory(tmp_path)

    assert result.desired is None
    assert any(e.field == where and words in e.message for e in result.errors), result.errors
    assert all(e.line > 0 for e in result.errors)


def test_fields_reach_the_container_request(tmp_path: Path) -> None:
    """What the YAML says is what the runtime is asked for."""
    write_services(
        tmp_path,
        service_doc(
            "app",
            user="1000:1000",
            tmpfs=["/tmp", {"path": "/run", "size": "64Mi", "mode": "0700", "uid": 1000}],
            capabilities={"drop": ["all"], "add": ["cap_net_bind_service"]},
            ulimits={"nofile": 1024, "nproc": {"soft": 10, "hard": 20}},
            logging={"driver": "k8s-file", "maxSize": "5Mi"},
            devices=["/dev/fuse"],
        ),
    )
    desired = load_directory(tmp_path, allowed_devices=["/dev/fuse"]).desired
    assert desired is not None

    options = container_options(desired.services["app"].spec)  # type: ignore[index]

    assert "1000:1000" == options.user
    tmpfs = [(t.path, t.size, t.mode, t.uid) for t in options.tmpfs]
    assert [("/tmp", None, "1777", None), ("/run", 64 * 1024**2, "0700", 1000)] == tmpfs
    assert (("NET_BIND_SERVICE",), ("ALL",)) == (tuple(options.cap_add), tuple(options.cap_drop))
    assert {"nofile": (1024, 1024), "nproc": (10, 20)} == dict(options.ulimits)
    assert ("k8s-file", 5 * 1024**2) == (options.log_driver, options.log_max_size)
    assert ("/dev/fuse",) == tuple(options.devices)


def test_logs_default_to_a_bounded_k8s_file() -> None:
    """No logging section: 10Mi, not Podman's unbounded default."""
    options = container_options(ServiceSpec(image="localhost/app:1"))

    assert ("k8s-file", 10 * 1024**2) == (options.log_driver, options.log_max_size)


def test_unset_fields_leave_the_hash_of_older_specs_alone() -> None:
    """A spec that uses none of the new fields has the shape it had before they existed."""
    shape = ServiceSpec(image="localhost/app:1").container_shape()

    assert not set(shape) & ServiceSpec.ADDED_FIELDS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("512m", 512 * 1024**2, id="docker-lowercase-is-binary"),
        pytest.param("1g", 1024**3, id="g"),
        pytest.param("512Mi", 512 * 1024**2, id="kubernetes-binary"),
        pytest.param("512M", 512 * 1000**2, id="kubernetes-decimal"),
    ],
)
def test_sizes(text: str, expected: int) -> None:
    """512m means MiB, as in Docker and Podman; M without i stays decimal, as in Kubernetes."""
    assert expected == parse_memory(text)
