"""Preparing: everything a container needs, made present before anything is stopped.

Host paths checked against ``--allow-host-path`` (resolved now, so a
symlink planted since validation is caught), config copies, networks
(there and paid's), the image (built, pulled or kept as
``imagePullPolicy`` says; a rollback runs the image it ran, by ID), the
Podman secrets, and the named volumes that keep what an image declares
as a ``VOLUME``. A failure here leaves a running old container as it was.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import structlog

from paid.controllers.journal import Journal
from paid.runtime.base import (
    BuildRequest,
    ContainerRequest,
    ImageUnavailable,
    RequestRejected,
    Runtime,
)
from paid.state import labels
from paid.state.configs import ConfigError
from paid.state.data_volumes import (
    CONTAINER_LABEL,
    data_volume_labels,
    data_volume_name,
    unmounted,
)
from paid.state.secrets import SecretUnavailable
from paid.state.specs import PullPolicy, ServiceSpec, VolumeMount
from paid.storage.config_files import ConfigStore
from paid.storage.paths import within
from paid.storage.secret_files import SecretSource

log = structlog.get_logger("paid.services")


@dataclass
class Preparer:
    runtime: Runtime
    journal: Journal
    secrets: SecretSource | None = None  # where secretEnv files are read
    allowed_host_paths: tuple[str, ...] = ()  # --allow-host-path, checked again at create
    configs: ConfigStore | None = None  # where configs' copies are kept (the state dir)

    def prepare(self, request: ContainerRequest, *, heal: bool = False) -> None:
        """Check the host paths, make the image and the secrets present: nothing else yet.

        Raises ``RuntimeFailure`` or ``SecretUnavailable``; either leaves a
        running old container as it was.
        """
        for volume in request.volumes:
            if volume.is_host_path and not within(volume.source, self.allowed_host_paths):
                # Resolved now, right before the create: a symlink planted
                # since validation (/srv/etc-link -> /etc) is caught here.
                raise RequestRejected(
                    f"host path {volume.source} is not under an allowed prefix "
                    f"({', '.join(self.allowed_host_paths) or 'none configured'})"
                )
        for config in request.configs:
            if self.configs is None:
                raise RequestRejected("configs need a state directory to keep their copies")
            try:
                self.configs.ensure(config.content)
            except (ConfigError, OSError) as err:
                raise RequestRejected(str(err)) from err
        if request.networks:
            self._check_networks(request)
        self.ensure_image(request, heal=heal)
        if not request.secrets:
            return
        if self.secrets is None:
            raise SecretUnavailable("secretEnv needs a secrets directory (--secrets-dir)")
        present = self.runtime.list_secrets()
        for mount in request.secrets:
            if mount.podman_name not in present:
                self.runtime.create_secret(mount.podman_name, self.secrets.value_for(mount))

    def declared_volumes(self, request: ContainerRequest, spec: ServiceSpec) -> tuple[str, ...]:
        """The paths the image declares as ``VOLUME`` that the spec does not mount."""
        image = self.runtime.inspect_image(request.image)
        return tuple(unmounted(image.volumes if image else (), spec))

    def with_data_volumes(self, request: ContainerRequest, spec: ServiceSpec) -> ContainerRequest:
        image = self.runtime.inspect_image(request.image)
        paths = unmounted(image.volumes if image else (), spec)
        if not paths:
            return request
        service = request.labels[labels.SERVICE]
        mounts: list[VolumeMount] = []
        for path in paths:
            name = data_volume_name(service, path)
            wanted = data_volume_labels(service, path)
            found = self.runtime.volume_labels(name)
            if found is None:
                self.runtime.create_volume(name, labels=wanted)
                self.journal.record(
                    "data_volume_created",
                    f"{service}: volume {name} keeps {path} (declared by the image) across heals",
                    service=service,
                    volume=name,
                    path=path,
                )
            elif any(found.get(k) != v for k, v in wanted.items()):
                raise RequestRejected(
                    f"volume {name} exists and is not paid's data volume for {service} {path}: "
                    "left alone; remove or rename it, or mount a volume of your own there"
                )
            mounts.append(VolumeMount(source=name, destination=path))
        return dataclasses.replace(
            request,
            volumes=(*request.volumes, *mounts),
            labels={**request.labels, CONTAINER_LABEL: ",".join(m.source for m in mounts)},
        )

    def ensure_image(self, request: ContainerRequest, *, heal: bool = False) -> None:
        """The image there as ``imagePullPolicy`` says: pulled if absent, always, or never.

        A revision brought back (a rollback, a pin, a quarantine's last good
        one) runs the image it ran, by ID; a tag that moved since is not it.
        """
        if request.build is not None:
            if not self.runtime.image_present(request.image):
                self._build(request.build, service=request.labels[labels.SERVICE])
            return
        if request.exact_image:
            if not self.runtime.image_present(request.image):
                raise ImageUnavailable(
                    request.image,
                    "the image this revision ran is no longer on this host (its tag may "
                    "point elsewhere now)",
                    reason="absent",
                )
            return
        if request.pull_policy == PullPolicy.ALWAYS:
            try:
                self.runtime.pull_image(request.image, always=True)
            except ImageUnavailable as err:
                # A registry that does not answer costs a heal nothing: the same revision
                # runs again from the image on this host. New revisions still need it.
                if not heal or err.reason != "unreachable":
                    raise
                if not self.runtime.image_present(request.image):
                    raise
                name = request.labels.get(labels.SERVICE, request.name)
                log.warning("pull_skipped_for_heal", service=name, image=request.image)
                self.journal.record(
                    "pull_skipped",
                    f"{name}: {err}; healed from the image on this host",
                    service=name,
                )
        else:
            present_or_pulled(self.runtime, request.image, request.pull_policy)

    def _build(self, build: BuildRequest, *, service: str) -> None:
        """Build the image, its output journalled; a failure touches nothing (raised)."""
        self.journal.record(
            "image_build_started", f"{service}: building {build.tag}", service=service
        )
        try:
            lines = self.runtime.build_image(build)
        except ImageUnavailable as err:
            self.journal.record(
                "image_build_failed", f"{service}: {err}", service=service, tag=build.tag
            )
            raise
        self.journal.record(
            "image_built",
            f"{service}: built {build.tag}",
            service=service,
            tag=build.tag,
            last_lines=lines[-20:],
        )

    def _check_networks(self, request: ContainerRequest) -> None:
        """Every network the container joins is there and paid's (one list call)."""
        found = {n.name: n for n in self.runtime.list_networks()}
        for name in request.networks:
            network = found.get(name)
            if network is None:
                raise RequestRejected(f"network {name} does not exist (yet)")
            if not network.managed:
                raise RequestRejected(
                    f"network {name} ({network.id[:12]}) is not paid's: "
                    "the container is not put on it"
                )


def present_or_pulled(runtime: Runtime, image: str, policy: PullPolicy | str) -> str:
    """``IfNotPresent`` and ``Never``: the image there, pulled if absent and allowed.

    Returns "present" or "pulled"; raises ``ImageUnavailable``. The one
    place this rule lives: a create's preparation and pre-flight both call it.
    """
    if runtime.image_present(image):
        return "present"
    if PullPolicy(policy) is PullPolicy.NEVER:
        raise ImageUnavailable(
            image, "imagePullPolicy is Never, and it is not here", reason="absent"
        )
    runtime.pull_image(image)
    return "pulled"
