"""Networks on the suite's real Podman (netavark, aardvark-dns): DNS, isolation, prune, conflicts.

Every check is made from inside the containers (busybox nslookup, wget,
ping) or with the podman command, never from what paid says.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from paid.cli import main
from paid.runtime.base import ContainerRequest, RequestRejected
from paid.runtime.podman import PodmanRuntime
from paid.state.networks import NetworkSpec
from tests.harness import (
    IMAGE,
    MUTATING_EVENTS,
    PodmanService,
    free_port,
    service_doc,
    write_services,
)

HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]


def paid(podman: PodmanService, state_dir: Path, *args: str) -> int:
    return main([*args[:1], "--podman-url", podman.url, "--state-dir", str(state_dir), *args[1:]])


def network_doc(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "paid/v1", "kind": "Network", "metadata": {"name": name}, "spec": spec}


def app(directory: Path, *, extra: tuple[dict[str, Any], ...] = ()) -> None:
    """db on backend only (alias `database`); api on backend and the default; proxy default only."""
    write_services(
        directory,
        network_doc("backend", subnet="10.89.77.0/24"),
        service_doc("db", command=HTTPD, networks=[{"name": "backend", "aliases": ["database"]}]),
        service_doc("api", command=HTTPD, networks=["backend", "paid"]),
        service_doc("proxy", command=HTTPD),
        *extra,
    )


def sh(podman: PodmanService, container: str, script: str) -> tuple[int, str]:
    """Run ``script`` in ``container``: its exit code and output."""
    result = podman.podman("exec", container, "sh", "-c", f"{script} 2>&1; echo rc=$?", check=False)
    body, _, code = result.rstrip().rpartition("rc=")
    return int(code or 1), body


def resolve(podman: PodmanService, container: str, name: str) -> str | None:
    """The address ``name`` has for ``container``, asked of its first nameserver (aardvark-dns).

    The bare name, as glibc and musl end up asking: busybox's nslookup
    only tries ``name.dns.podman``, which aardvark-dns 1.4 answers only
    for the network of the nameserver asked.
    """
    server = "$(awk '/^nameserver/ {print $2; exit}' /etc/resolv.conf)"
    code, said = sh(podman, container, f"nslookup {name} {server}")
    answers = [line.split()[-1] for line in said.splitlines() if line.startswith("Address: ")]
    return answers[-1] if code == 0 and answers else None


def fetch(podman: PodmanService, container: str, host: str) -> tuple[int, str]:
    """GET / on port 8080 of ``host``: its exit code and body.

    With busybox's nc and resolver: static busybox's wget crashes in
    glibc's name service code on this image.
    """
    address = host if host[0].isdigit() else resolve(podman, container, host)
    if address is None:
        return 1, f"{host}: no address"
    request = r"printf 'GET / HTTP/1.0\r\n\r\n'"
    code, said = sh(podman, container, f"{request} | nc -w 3 {address} 8080")
    head, _, body = said.partition("\r\n\r\n")
    return (code if " 200 " in head else code or 1), body


def networks(podman: PodmanService) -> dict[str, dict[str, Any]]:
    listed = json.loads(podman.podman("network", "ls", "--format", "json"))
    return {n["name"]: n for n in listed}


def test_services_reach_each_other_by_name_and_alias_and_not_across_networks(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: Any
) -> None:
    """DNS on the default network, on a declared one and via an alias; backend stays apart."""
    app(desired_dir)
    capsys.readouterr()
    assert 2 == paid(podman, state_dir, "plan", str(desired_dir), "--output", "json")
    planned = json.loads(capsys.readouterr().out)["networks"]
    assert [("create", "backend"), ("create", "paid")] == [
        (n["action"], n["network"]) for n in planned
    ]
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))

    code, page = fetch(podman, "api", "db")
    assert (0, "<h1>paid test</h1>") == (code, page.strip())
    assert 0 == fetch(podman, "api", "database")[0]  # the alias
    assert 0 == fetch(podman, "proxy", "api")[0]  # the default network, by name
    assert resolve(podman, "proxy", "db") is None  # db is on backend only: no name on paid
    db_ip = podman.inspect("db")["NetworkSettings"]["Networks"]["backend"]["IPAddress"]
    assert db_ip.startswith("10.89.77.")
    assert fetch(podman, "proxy", db_ip)[0] != 0  # nor a route to its address
    found = networks(podman)
    assert {"true"} == {found[n]["labels"]["paid.managed"] for n in ("backend", "paid")}
    assert found["paid"]["dns_enabled"]
    assert found["backend"]["dns_enabled"]


def test_a_second_apply_touches_no_network_and_no_container(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """Idempotence with networks: Podman's events log shows nothing at all."""
    app(desired_dir)
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    mark = podman.event_mark()

    assert 0 == paid(podman, state_dir, "plan", str(desired_dir))
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))

    assert [] == [e for e in podman.container_events_since(mark) if e[0] in MUTATING_EVENTS]
    assert [] == podman.network_events_since(mark)


def test_a_membership_change_rolls_the_service_out(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: Any
) -> None:
    """proxy joins backend: the plan names it, the rollout replaces it, then it resolves db."""
    app(desired_dir)
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    before = podman.inspect("proxy")["Id"]
    docs = list(yaml.safe_load_all((desired_dir / "services.yaml").read_text()))
    docs[3]["spec"]["networks"] = ["paid", "backend"]
    (desired_dir / "services.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    capsys.readouterr()

    assert 2 == paid(podman, state_dir, "plan", str(desired_dir))
    planned = capsys.readouterr().out
    assert "proxy" in planned
    assert "spec.networks" in planned

    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    assert before != podman.inspect("proxy")["Id"]
    assert 0 == fetch(podman, "proxy", "db")[0]


def test_networks_are_pruned_and_a_strangers_network_is_a_conflict(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: Any
) -> None:
    """Dropped backend goes with its services; a hand-made `cache` network is never touched."""
    app(desired_dir)
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    podman.podman("network", "create", "cache")
    theirs = networks(podman)["cache"]["id"]
    write_services(
        desired_dir,
        network_doc("cache"),
        service_doc("proxy", command=HTTPD),
        service_doc("redis", command=HTTPD, networks=["cache"]),
    )
    mark = podman.event_mark()
    capsys.readouterr()

    assert 1 == paid(podman, state_dir, "apply", "--allow-mass-prune", str(desired_dir))
    said = capsys.readouterr()
    assert "cache" in said.out + said.err
    assert "not paid's" in said.out + said.err
    assert theirs == networks(podman)["cache"]["id"]  # left as it was
    assert "redis" not in {n for _, n in podman.container_events_since(mark)}
    assert 1 == paid(podman, state_dir, "apply", str(desired_dir))  # the dbs are gone now
    assert "backend" not in networks(podman)  # pruned once nothing was on it
    assert {"proxy"} == {c["Names"][0] for c in podman.containers()}


def test_bad_network_input_is_refused_before_anything_is_touched(
    podman: PodmanService, desired_dir: Path, state_dir: Path, capsys: Any
) -> None:
    """Unknown network, bad CIDR, hostNetwork with ports: file:line errors, no event at all."""
    write_services(
        desired_dir,
        network_doc("backend", subnet="10.89.7.0/33"),
        service_doc("web", networks=["bakend"]),
        service_doc("agent", hostNetwork=True, ports=["8080:80"]),
    )
    mark = podman.event_mark()
    capsys.readouterr()

    assert 1 == paid(podman, state_dir, "apply", str(desired_dir))

    errors = capsys.readouterr().err
    assert "services.yaml:" in errors
    assert "no network named 'bakend'" in errors
    assert "did you mean 'backend'" in errors
    assert "is not a CIDR" in errors
    assert "hostNetwork" in errors
    assert [] == podman.events()[mark:]
    assert "backend" not in networks(podman)


def test_host_network_service_listens_on_the_host(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """hostNetwork: the container shares the host's network namespace; its probe uses loopback."""
    port = free_port()
    write_services(
        desired_dir,
        service_doc(
            "agent",
            command=["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"],
            hostNetwork=True,
            readinessProbe={"httpGet": {"path": "/", "port": port}, "periodSeconds": 1},
        ),
    )

    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))

    assert "host" == podman.inspect("agent")["HostConfig"]["NetworkMode"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
        assert b"paid test" in answer.read()


def test_a_changed_network_is_recreated_and_its_members_reconnected(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """A new subnet: the network is replaced; db keeps its container, now on the new subnet,
    and its alias still resolves from api."""
    app(desired_dir)
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    db_before, net_before = podman.inspect("db")["Id"], networks(podman)["backend"]["id"]
    text = (desired_dir / "services.yaml").read_text()
    (desired_dir / "services.yaml").write_text(text.replace("10.89.77.0/24", "10.89.78.0/24"))

    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))

    assert net_before != networks(podman)["backend"]["id"]
    assert db_before == podman.inspect("db")["Id"]  # reconnected, not replaced
    address = podman.inspect("db")["NetworkSettings"]["Networks"]["backend"]["IPAddress"]
    assert address.startswith("10.89.78.")
    assert address == resolve(podman, "api", "database")


def test_a_container_disconnected_by_hand_is_replaced(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """Membership is part of the spec: `podman network disconnect` is drift, and healed."""
    app(desired_dir)
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))
    before = podman.inspect("proxy")["Id"]
    podman.podman("network", "disconnect", "paid", "proxy")

    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))

    assert before != podman.inspect("proxy")["Id"]
    assert {"paid"} == set(podman.inspect("proxy")["NetworkSettings"]["Networks"])
    assert 0 == fetch(podman, "proxy", "api")[0]


def test_a_full_network_is_a_rejection_not_an_outage(podman: PodmanService) -> None:
    """Podman's IPAM error (a 500) is RequestRejected: not transient, never the breaker's."""
    runtime = PodmanRuntime(podman.url)
    try:
        runtime.create_network("tiny", NetworkSpec(subnet="10.89.79.0/30"), {})
        runtime.create_container(
            ContainerRequest(name="one", image=IMAGE, labels={}, command=["sleep", "60"],
                             networks={"tiny": ()})
        )  # fmt: skip
        runtime.start_container("one")
        runtime.create_container(
            ContainerRequest(name="two", image=IMAGE, labels={}, command=["sleep", "60"],
                             networks={"tiny": ()})
        )  # fmt: skip
        with pytest.raises(RequestRejected) as refused:
            runtime.start_container("two")
        assert not refused.value.transient
        assert "no free address" in str(refused.value)
    finally:
        runtime.close()


def test_a_fixed_address_is_the_container_s_and_reached_by_it(
    podman: PodmanService, desired_dir: Path, state_dir: Path
) -> None:
    """ipv4Address (compose's ipv4_address): the container has it, a peer reaches it there."""
    write_services(
        desired_dir,
        network_doc("backend", subnet="10.89.78.0/24"),
        service_doc(
            "dns", command=HTTPD, networks=[{"name": "backend", "ipv4Address": "10.89.78.53"}]
        ),
        service_doc("client", networks=["backend"]),
    )
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))

    networks = podman.inspect("dns")["NetworkSettings"]["Networks"]
    assert "10.89.78.53" == networks["backend"]["IPAddress"]
    code, body = sh(podman, "client", "wget -q -O - http://10.89.78.53:8080/")
    assert 0 == code, body
    assert "paid test" in body
    assert 0 == paid(podman, state_dir, "apply", str(desired_dir))  # converged: nothing to do
    assert (
        "10.89.78.53"
        == podman.inspect("dns")["NetworkSettings"]["Networks"]["backend"]["IPAddress"]
    )
