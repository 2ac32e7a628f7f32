"""Which image VOLUMEs get a data volume of paid's, and what it is called (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from paid.controllers.backups import BackupController
from paid.controllers.requests import container_request
from paid.controllers.services import ServiceController
from paid.runtime.base import ContainerRequest, RequestRejected
from paid.runtime.fake import FakeRuntime
from paid.state.data_volumes import data_volume_name, unmounted
from paid.state.desired import DesiredService
from paid.state.specs import ServiceSpec
from paid.storage.store import Store
from tests.unit.builders import desired_service


@pytest.mark.parametrize(
    ("declared", "spec", "expected"),
    [
        pytest.param(["/var/lib/mysql"], {}, ["/var/lib/mysql"], id="nothing-mounted"),
        pytest.param(["/data"], {"volumes": ["mine:/data"]}, [], id="spec-mounts-it"),
        pytest.param(["/data/sub"], {"volumes": ["mine:/data"]}, [], id="spec-mounts-above"),
        pytest.param(["/data"], {"volumes": ["mine:/data/sub"]}, ["/data"], id="below-is-not"),
        pytest.param(["/tmp"], {"tmpfs": ["/tmp"]}, [], id="tmpfs-there"),
        pytest.param(["/b", "/a/", "/b"], {}, ["/a", "/b"], id="sorted-normalised-once"),
        pytest.param(["relative", "/x\0y"], {}, [], id="not-paths"),
    ],
)
def test_unmounted_paths(declared: list[str], spec: dict[str, object], expected: list[str]) -> None:
    """A declared path gets a data volume only when the spec mounts nothing at or above it."""
    assert expected == unmounted(declared, ServiceSpec(image="localhost/db:1", **spec))


def test_names_are_per_service_and_path_and_readable() -> None:
    """One name per (service, path); the path stays readable; look-alike paths differ."""
    name = data_volume_name("db", "/var/lib/mysql")
    assert name.startswith("db-data-var-lib-mysql-")
    assert name == data_volume_name("db", "/var/lib/mysql")
    assert name != data_volume_name("db2", "/var/lib/mysql")
    assert data_volume_name("db", "/a-b") != data_volume_name("db", "/a/b")


def _controller(runtime: FakeRuntime, tmp_path: Path) -> ServiceController:
    return ServiceController(runtime=runtime, journal=Store.open(tmp_path))


def test_create_mounts_a_labelled_volume_and_reuses_it(tmp_path: Path) -> None:
    """The first create makes the volume, labelled paid's; the next one mounts the same one."""
    runtime = FakeRuntime(images={"localhost/db:1"})
    runtime.image_volumes["localhost/db:1"] = ("/data",)
    controller = _controller(runtime, tmp_path)
    spec = ServiceSpec(image="localhost/db:1")
    request = ContainerRequest(name="db", image="localhost/db:1", labels={"paid.service": "db"})

    controller.create(request, spec)
    runtime.containers.pop("db")
    controller.create(request, spec)

    name = data_volume_name("db", "/data")
    assert [name] == list(runtime.volumes)
    assert "/data" == runtime.volume_label_sets[name]["paid.volume-path"]
    assert [(name, "/data")] == [(v.source, v.destination) for v in runtime.requests["db"].volumes]


def test_a_volume_of_someone_else_s_is_refused(tmp_path: Path) -> None:
    """A volume under the name that paid did not make for this service is never mounted."""
    runtime = FakeRuntime(images={"localhost/db:1"})
    runtime.image_volumes["localhost/db:1"] = ("/data",)
    runtime.create_volume(data_volume_name("db", "/data"))  # no labels: a stranger's
    request = ContainerRequest(name="db", image="localhost/db:1", labels={"paid.service": "db"})

    with pytest.raises(RequestRejected, match="is not paid's data volume"):
        _controller(runtime, tmp_path).create(request, ServiceSpec(image="localhost/db:1"))
    assert "db" not in runtime.containers


def _db_with_a_data_volume(tmp_path: Path) -> tuple[FakeRuntime, DesiredService, str, Path]:
    """A fake host where db's image declares `VOLUME /data`, and paid's volume for it."""
    runtime = FakeRuntime(images={"localhost/db:1"})
    runtime.add_network("paid")
    runtime.image_volumes["localhost/db:1"] = ("/data",)
    service = desired_service("db", image="localhost/db:1", backup={"keep": 3})
    name = data_volume_name("db", "/data")
    data = tmp_path / "volumes" / name / "_data"
    data.mkdir(parents=True)
    runtime.volumes[name] = str(data)
    runtime.volume_label_sets[name] = {
        "paid.managed": "true", "paid.service": "db", "paid.volume-path": "/data"
    }  # fmt: skip
    return runtime, service, name, data


def test_a_backup_holds_the_image_s_data_volume_and_restores_it(tmp_path: Path) -> None:
    """No volume in the spec, `VOLUME /data` in the image: backed up, restored, by name."""
    runtime, service, name, data = _db_with_a_data_volume(tmp_path)
    with Store.open(tmp_path / "state") as store:
        services = ServiceController(runtime=runtime, journal=store)
        services.create(container_request(service, revision=1), service.spec)
        runtime.start_container("db")
        controller = BackupController(
            runtime=runtime, store=store, services=services, directory=tmp_path / "backups"
        )
        (data / "table").write_text("rows v1\n")
        record = controller.backup(service, reason="test")
        (data / "table").write_text("rows v2, broken\n")

        controller.restore(service, record.id)

    assert [name] == [v.volume for v in record.volumes]
    assert "rows v1\n" == (data / "table").read_text()


def test_backup_and_restore_act_on_the_container_by_its_id(tmp_path: Path) -> None:
    """Pause, stop and start name the ID of the container checked as paid's, never its name."""
    runtime, service, _, _ = _db_with_a_data_volume(tmp_path)
    with Store.open(tmp_path / "state") as store:
        services = ServiceController(runtime=runtime, journal=store)
        container_id = services.create(container_request(service, revision=1), service.spec)
        runtime.start_container(container_id)
        controller = BackupController(
            runtime=runtime, store=store, services=services, directory=tmp_path / "backups"
        )
        runtime.calls.clear()
        record = controller.backup(service, reason="test")
        controller.restore(service, record.id)

    touched = [
        (op, arg) for op, arg in runtime.calls if op in ("pause", "unpause", "stop", "start")
    ]
    assert touched  # the backup paused it; the restore stopped and started it
    assert {container_id} == {arg for _, arg in touched}
