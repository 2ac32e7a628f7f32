"""Networks: the kind and the service fields, their checks, the pure plan, the executor."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from paid.controllers.converging import converge
from paid.runtime.fake import FakeRuntime
from paid.state import labels
from paid.state.actual import ActualContainer
from paid.state.desired import DesiredState
from paid.state.networks import (
    ActualNetwork,
    DesiredNetwork,
    Member,
    NetworkActionKind,
    NetworkSpec,
    network_plan,
)
from paid.storage.documents import to_documents
from paid.storage.loading import load_directory
from paid.storage.store import Store
from tests.unit.builders import FAST, desired, desired_service

IMAGE = "localhost/app:1"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "state")


def _write(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "app.yaml"
    path.write_text(textwrap.dedent(text))
    return path


APP = """\
    apiVersion: paid/v1
    kind: Network
    metadata: {name: backend}
    spec: {subnet: 10.89.7.0/24}
    ---
    apiVersion: paid/v1
    kind: Service
    metadata: {name: db}
    spec:
      image: localhost/app:1
      rollout: {minReadySeconds: 0}
      networks: [{name: backend, aliases: [database]}]
    ---
    apiVersion: paid/v1
    kind: Service
    metadata: {name: web}
    spec:
      image: localhost/app:1
      rollout: {minReadySeconds: 0}
      networks: [backend, paid]
    ---
    apiVersion: paid/v1
    kind: Service
    metadata: {name: proxy}
    spec: {image: localhost/app:1, rollout: {minReadySeconds: 0}}
    """


def test_services_join_declared_networks_or_the_default_one(tmp_path: Path) -> None:
    """A service naming no network is on `paid`; both networks are desired; names resolve."""
    state = load_directory(_write(tmp_path / "d", APP).parent).desired

    assert state is not None
    assert {"backend", "paid"} == set(state.networks)
    assert "10.89.7.0/24" == state.networks["backend"].spec.subnet
    assert ["paid"] == [a.name for a in state.services["proxy"].spec.networks]  # type: ignore[index]
    assert [("backend", ["database"])] == [
        (a.name, a.aliases)
        for a in state.services["db"].spec.networks  # type: ignore[index]
    ]
    assert "networks" in state.services["proxy"].shape  # type: ignore[index]


def test_the_default_network_is_named_by_the_option(tmp_path: Path) -> None:
    """--default-network moves every service that names none, and so changes its hash."""
    directory = _write(tmp_path / "d", APP.replace("[backend, paid]", "[backend]")).parent
    default = load_directory(directory).desired
    other = load_directory(directory, default_network="apps").desired

    assert default is not None
    assert other is not None
    assert {"backend", "apps"} == set(other.networks)
    proxy = "proxy"
    assert default.services[proxy].spec_hash != other.services[proxy].spec_hash  # type: ignore[index]


def test_a_snapshot_rebuilds_the_same_hashes_networks_included(tmp_path: Path) -> None:
    """The store's snapshot (to_documents) carries networks and resolved memberships."""
    from paid.storage.documents import from_documents  # noqa: PLC0415

    state = load_directory(_write(tmp_path / "d", APP).parent).desired
    assert state is not None

    rebuilt = from_documents(to_documents(state), origin="store").desired

    assert rebuilt is not None
    assert {n: s.spec_hash for n, s in state.services.items()} == {
        n: s.spec_hash for n, s in rebuilt.services.items()
    }
    assert {n: x.spec_hash for n, x in state.networks.items()} == {
        n: x.spec_hash for n, x in rebuilt.networks.items()
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "kind: Service\nmetadata: {name: web}\nspec:\n  image: localhost/app:1\n"
            "  networks: [bakend]\n",
            "6: spec.networks[0]: no network named 'bakend'",
        ),
        (
            "kind: Network\nmetadata: {name: backend}\nspec: {subnet: 10.89.7.0/33}\n",
            "4: spec.subnet: subnet '10.89.7.0/33' is not a CIDR",
        ),
        (
            "kind: Network\nmetadata: {name: backend}\nspec: {subnet: 10.89.7.1/24}\n",
            "4: spec.subnet: subnet '10.89.7.1/24' is not a CIDR",
        ),
        (
            "kind: Network\nmetadata: {name: podman}\n",
            "3: metadata.name: 'podman' is one of Podman's own network names",
        ),
        (
            "kind: Network\nmetadata: {name: backend}\nspec: {dns: true, mtu: 9000}\n",
            "4: spec.mtu: unknown field",
        ),
        (
            "kind: Service\nmetadata: {name: web}\nspec:\n  image: localhost/app:1\n"
            "  hostNetwork: true\n  ports: ['8080:80']\n",
            "4: spec: hostNetwork: the container listens on the host's ports itself",
        ),
        (
            "kind: Service\nmetadata: {name: web}\nspec:\n  image: localhost/app:1\n"
            "  networks: [{name: paid, aliases: [Not_A_Label]}]\n",
            "6: spec.networks[0].aliases: alias 'Not_A_Label' is not a DNS label",
        ),
        (
            "kind: Service\nmetadata: {name: web}\nspec:\n  image: localhost/app:1\n"
            "  networks: [paid, paid]\n",
            "4: spec: networks: a network is named twice",
        ),
    ],
)
def test_bad_networks_are_file_line_field_errors(tmp_path: Path, text: str, expected: str) -> None:
    """Each mistake names its file, line and field; nothing loads."""
    path = tmp_path / "d" / "x.yaml"
    path.parent.mkdir()
    path.write_text("apiVersion: paid/v1\n" + text)

    result = load_directory(path.parent)

    assert result.desired is None
    assert any(str(e).startswith(f"{path}:{expected}") for e in result.errors), result.errors


def test_overlapping_subnets_are_refused(tmp_path: Path) -> None:
    """Two declared networks cannot share addresses."""
    doc = "apiVersion: paid/v1\nkind: Network\nmetadata: {{name: {}}}\nspec: {{subnet: {}}}\n"
    (tmp_path / "a.yaml").write_text(doc.format("one", "10.89.0.0/16"))
    (tmp_path / "b.yaml").write_text(doc.format("two", "10.89.7.0/24"))

    result = load_directory(tmp_path)

    assert result.desired is None
    assert ["spec.subnet: 10.89.7.0/24 overlaps network 'one' (10.89.0.0/16)"] == [
        f"{e.field}: {e.message}" for e in result.errors
    ]


# -- the pure plan ---------------------------------------------------------------

BACKEND = DesiredNetwork("backend", NetworkSpec())
MINE = {labels.MANAGED: "true", labels.SPEC_HASH: BACKEND.spec_hash}


def _kinds(*args: object, **kwargs: object) -> list[tuple[str, str]]:
    return [(str(a.kind), a.network) for a in network_plan(*args, **kwargs)]  # type: ignore[arg-type]


def test_plan_creates_what_is_missing_and_leaves_what_matches() -> None:
    """Missing: create. Present with the same hash: nothing."""
    assert [("create", "backend")] == _kinds({"backend": BACKEND}, [], {})
    assert [] == _kinds({"backend": BACKEND}, [ActualNetwork("n1", "backend", MINE)], {})


def test_plan_recreates_a_changed_network_unless_a_stranger_is_on_it() -> None:
    """A spec change recreates paid's network, never with an unmanaged container on it."""
    old = ActualNetwork("n1", "backend", {**MINE, labels.SPEC_HASH: "old"})
    ours = {"backend": [Member("c1", "db", managed=True)]}
    theirs = {"backend": [Member("c1", "db", managed=True), Member("c2", "x", managed=False)]}

    assert [("recreate", "backend")] == _kinds({"backend": BACKEND}, [old], ours)
    assert [("conflict", "backend")] == _kinds({"backend": BACKEND}, [old], theirs)


def test_plan_never_touches_a_network_that_is_not_paids() -> None:
    """An unmanaged network on a desired name is a conflict; an unmanaged extra is ignored."""
    strangers = [ActualNetwork("n1", "backend"), ActualNetwork("n2", "theirs")]
    assert [("conflict", "backend")] == _kinds({"backend": BACKEND}, strangers, {})


def test_plan_removes_pauls_unused_networks_only_when_pruning() -> None:
    """Paid's undesired network goes once nothing is on it, and only with prune on."""
    old = ActualNetwork("n1", "old", MINE)
    in_use = {"old": [Member("c1", "db", managed=True)]}

    assert [("remove", "old")] == _kinds({}, [old], {})
    assert [] == _kinds({}, [old], in_use)
    assert [] == _kinds({}, [old], {}, prune=False)


def test_another_instances_network_is_a_conflict() -> None:
    """paid.instance=other: as good as unmanaged here."""
    theirs = ActualNetwork("n1", "backend", {**MINE, labels.INSTANCE: "other"}).seen_by("default")
    assert [NetworkActionKind.CONFLICT] == [
        a.kind for a in network_plan({"backend": BACKEND}, [theirs], {})
    ]


# -- the executor, through paid apply's driver on the fake ------------------------


def _state(tmp_path: Path, text: str = APP) -> DesiredState:
    state = load_directory(_write(tmp_path / "d", text).parent).desired
    assert state is not None
    return state


def test_apply_makes_networks_first_then_containers_on_them(tmp_path: Path, store: Store) -> None:
    """Networks exist, labelled as paid's, before any container is created on them."""
    runtime = FakeRuntime(images={IMAGE})

    report = converge(_state(tmp_path), runtime=runtime, store=store, timings=FAST)

    assert report.converged, report
    assert [("create", "backend", None), ("create", "paid", None)] == [
        (str(n.action.kind), n.action.network, n.error) for n in report.networks
    ]  # what `paid apply` reports
    creates = [op for op, _ in runtime.calls if op in ("create", "create_network")]
    assert ["create_network", "create_network"] == creates[:2]
    assert {"backend", "paid"} == set(runtime.networks)
    assert {"true"} == {n.labels[labels.MANAGED] for n in runtime.networks.values()}
    assert ("backend", "paid") == runtime.containers["web"].networks
    assert ("database",) == runtime.aliases[("backend", runtime.containers["db"].id)]


def test_a_second_apply_mutates_nothing_networks_included(tmp_path: Path, store: Store) -> None:
    """Idempotence: no network or container call changes anything on a converged host."""
    runtime = FakeRuntime(images={IMAGE})
    converge(_state(tmp_path), runtime=runtime, store=store, timings=FAST)
    runtime.calls.clear()

    report = converge(_state(tmp_path), runtime=runtime, store=store, timings=FAST)

    assert report.converged
    assert [] == runtime.mutating_calls
    assert 1 == runtime.calls.count(("list_networks", ""))


def test_a_network_held_by_a_stranger_is_reported_and_its_services_not_created(
    tmp_path: Path, store: Store
) -> None:
    """An unmanaged `backend`: left alone, and no container is put on it."""
    runtime = FakeRuntime(images={IMAGE})
    runtime.add_network("backend")

    report = converge(_state(tmp_path), runtime=runtime, store=store, timings=FAST)

    assert not report.converged
    assert ["conflict"] == [str(n.action.kind) for n in report.networks if n.error]
    assert "backend" in runtime.networks
    assert not runtime.networks["backend"].managed
    assert "db" not in runtime.containers
    assert "web" not in runtime.containers
    assert "proxy" in runtime.containers  # on the default network only: unaffected
    assert ("create_network", "backend") not in runtime.calls


def test_a_changed_network_is_recreated_and_its_members_reconnected(
    tmp_path: Path, store: Store
) -> None:
    """A new subnet: paid's members are disconnected, the network replaced, then reconnected."""
    runtime = FakeRuntime(images={IMAGE})
    converge(_state(tmp_path), runtime=runtime, store=store, timings=FAST)
    db_id, old_id = runtime.containers["db"].id, runtime.networks["backend"].id

    changed = APP.replace("10.89.7.0/24", "10.89.8.0/24")
    report = converge(_state(tmp_path, changed), runtime=runtime, store=store, timings=FAST)

    assert report.converged, report
    assert runtime.networks["backend"].id != old_id
    assert "10.89.8.0/24" == runtime.network_specs["backend"].subnet
    assert db_id == runtime.containers["db"].id  # the container stayed
    assert "backend" in (runtime.containers["db"].networks or ())
    assert ("database",) == runtime.aliases[("backend", db_id)]


def test_an_undesired_network_goes_once_its_containers_are_gone(
    tmp_path: Path, store: Store
) -> None:
    """Dropping backend and its services: one apply prunes the services, then the network."""
    runtime = FakeRuntime(images={IMAGE})
    converge(_state(tmp_path), runtime=runtime, store=store, timings=FAST)
    only_proxy = APP.rsplit("---", maxsplit=1)[-1]

    report = converge(
        _state(tmp_path, only_proxy),
        runtime=runtime,
        store=store,
        timings=FAST,
        allow_mass_prune=True,
    )

    assert report.converged, report
    assert {"proxy"} == set(runtime.containers)
    assert {"paid"} == set(runtime.networks)


def test_membership_changed_behind_pauls_back_is_drift(store: Store) -> None:
    """A container disconnected by hand is replaced: its membership is part of its spec."""
    runtime = FakeRuntime(images={IMAGE})
    state = desired(desired_service("web", image=IMAGE, rollout={"minReadySeconds": 0}))
    converge(state, runtime=runtime, store=store, timings=FAST)
    before = runtime.containers["web"].id
    runtime.disconnect_network("paid", "web")

    report = converge(state, runtime=runtime, store=store, timings=FAST)

    assert report.converged, report
    assert before != runtime.containers["web"].id
    assert ("paid",) == runtime.containers["web"].networks


def test_host_network_service_joins_no_network(store: Store) -> None:
    """hostNetwork: no network is made for it and it is on none."""
    runtime = FakeRuntime(images={IMAGE})
    state = desired(
        desired_service("agent", image=IMAGE, hostNetwork=True, rollout={"minReadySeconds": 0})
    )

    report = converge(state, runtime=runtime, store=store, timings=FAST)

    assert report.converged, report
    assert {} == runtime.networks
    assert () == runtime.containers["agent"].networks
    assert runtime.requests["agent"].host_network


def test_a_member_listing_reports_who_is_on_a_network() -> None:
    """members_of reads the container listing's networks (no inspect)."""
    from paid.state.networks import members_of  # noqa: PLC0415

    listed = [
        ActualContainer(id="1", name="a", image=IMAGE, state="running", networks=("x", "y")),
        ActualContainer(id="2", name="b", image=IMAGE, state="running", networks=("y",)),
    ]
    assert {"x": ["a"], "y": ["a", "b"]} == {
        n: [m.name for m in ms] for n, ms in members_of(listed).items()
    }


def test_more_services_than_a_network_has_addresses_is_refused(tmp_path: Path) -> None:
    """300 services on the default network (a /24 from Podman) or on a declared /28: refused."""
    services = "".join(
        f"---\napiVersion: paid/v1\nkind: Service\nmetadata: {{name: s{i}}}\n"
        f"spec: {{image: localhost/app:1}}\n"
        for i in range(300)
    )
    (tmp_path / "many.yaml").write_text(services)

    crowded = load_directory(tmp_path)

    assert ["network 'paid': 300 containers on it, but a network without a subnet (a /24) has "
            "room for 253"] == [e.message.split(";")[0] for e in crowded.errors]  # fmt: skip
    (tmp_path / "net.yaml").write_text(
        "apiVersion: paid/v1\nkind: Network\nmetadata: {name: paid}\nspec: {subnet: 10.90.0.0/20}\n"
    )
    assert load_directory(tmp_path).ok  # the remedy the message names
    (tmp_path / "net.yaml").write_text(
        "apiVersion: paid/v1\nkind: Network\nmetadata: {name: paid}\nspec: {subnet: 10.90.0.0/28}\n"
    )
    (tiny,) = load_directory(tmp_path).errors
    assert (f"{tmp_path / 'net.yaml'}", 4, "spec.subnet") == (tiny.file, tiny.line, tiny.field)


@pytest.mark.parametrize(
    ("db_attachment", "web_attachment", "expected"),
    [
        pytest.param("{name: backend, ipv4Address: 10.89.7.10}", "backend", None, id="fine"),
        pytest.param(
            "{name: backend, ipv4Address: 10.89.8.10}",
            "backend",
            "spec.networks[0].ipv4Address: 10.89.8.10 is not in network 'backend'",
            id="outside-the-subnet",
        ),
        pytest.param(
            "{name: backend, ipv4Address: 10.89.7.1}",
            "backend",
            "is the network, gateway or broadcast address",
            id="the-gateway",
        ),
        pytest.param(
            "{name: backend, ipv4Address: 10.89.7.10}",
            "{name: backend, ipv4Address: 10.89.7.10}",
            "already service 'db''s",
            id="taken-twice",
        ),
        pytest.param(
            "{name: paid, ipv4Address: 10.88.0.10}",
            "backend",
            "a fixed address needs the network's subnet: declare 'paid'",
            id="undeclared-network",
        ),
        pytest.param(
            "{name: backend, ipv4Address: 'fd00::1'}",
            "backend",
            "is not an IPv4 address",
            id="wrong-family",
        ),
    ],
)
def test_fixed_addresses_are_checked_against_the_subnet(
    tmp_path: Path, db_attachment: str, web_attachment: str, expected: str | None
) -> None:
    """ipv4Address must be a host address of the declared subnet, and one service's."""
    text = APP.replace("[{name: backend, aliases: [database]}]", f"[{db_attachment}]").replace(
        "networks: [backend, paid]", f"networks: [{web_attachment}]"
    )
    result = load_directory(_write(tmp_path / "d", text).parent)

    messages = [f"{e.field}: {e.message}" for e in result.errors]
    if expected is None:
        assert [] == messages
    else:
        assert any(expected in m for m in messages), messages
