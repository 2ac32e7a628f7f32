"""How a service becomes a Podman container: the one translation, pure.

``container_request`` turns a desired service (a revision of it) into
the ``ContainerRequest`` the runtime creates: its labels (ownership,
revision, spec hash), mounts, secrets and options. The executor, rollouts
and canaries all create through it.
"""

from __future__ import annotations

import os

from paid.runtime.base import (
    BuildRequest,
    ConfigBind,
    ContainerOptions,
    ContainerRequest,
)
from paid.state import labels
from paid.state.actual import ActualContainer
from paid.state.container_fields import Logging
from paid.state.desired import DesiredService, DesiredState
from paid.state.images import parse_reference
from paid.state.secrets import (
    SecretMount,
    file_secret_key,
    file_secret_name,
    podman_secret_name,
)
from paid.state.shapes import canonical_json
from paid.state.specs import ServiceSpec, VolumeMount
from paid.storage.config_files import ConfigStore


def _resolved(volume: VolumeMount) -> VolumeMount:
    """A host path as it resolves now (symlinks followed): what is checked is what is mounted."""
    if not volume.is_host_path:
        return volume
    return volume.model_copy(update={"source": os.path.realpath(volume.source)})


def secret_mounts(service: DesiredService) -> tuple[SecretMount, ...]:
    """The Podman secrets a container of ``service`` mounts, by name and fingerprint."""
    fingerprints = service.secret_fingerprints
    as_env = tuple(
        SecretMount(
            env=key,
            file=entry.source,
            encrypted=entry.is_encrypted,
            fingerprint=fingerprints[key],
            podman_name=podman_secret_name(service.name, key, fingerprints[key]),
        )
        for key, entry in sorted(service.spec.secret_env.items())
    )
    as_files = tuple(
        SecretMount(
            env=None,
            file=m.source,
            encrypted=m.is_encrypted,
            fingerprint=fingerprints[file_secret_key(m.path)],
            podman_name=file_secret_name(
                service.name, m.path, fingerprints[file_secret_key(m.path)]
            ),
            path=m.path,
            uid=m.uid,
            gid=m.gid,
            mode=int(m.mode, 8),
        )
        for m in service.spec.secrets
    )
    return as_env + as_files


def uses_secrets(desired: DesiredState, containers: list[ActualContainer]) -> bool:
    """Whether any desired service or running container has secrets (else: no list call)."""
    return any(s.spec.secret_env or s.spec.secrets for s in desired) or any(
        labels.SECRETS in c.labels for c in containers
    )


def runs_beside(spec: ServiceSpec) -> bool:
    """Two copies can run at once: no host port, host network or fixed address, which one
    container holds at a time (a heal beside the dead copy, a canary's promotion)."""
    return not (spec.ports or spec.host_network or any(a.addresses for a in spec.networks))


def container_request(
    service: DesiredService,
    *,
    revision: int,
    canary: bool = False,
    beside: bool = False,
    configs: ConfigStore | None = None,
) -> ContainerRequest:
    """The Podman container for one revision of a service, labels included.

    ``command`` and ``args`` follow Kubernetes: ``command`` replaces the
    image's entrypoint, ``args`` its default arguments; a ``command``
    without ``args`` runs with no image arguments at all.
    """
    spec = service.spec
    owned = {
        labels.MANAGED: "true",
        labels.SERVICE: service.name,
        labels.SPEC_HASH: service.spec_hash,
        labels.REVISION: str(revision),
        labels.SPEC: canonical_json(service.shape).decode(),
    }
    secrets = secret_mounts(service)
    if secrets:
        owned[labels.SECRETS] = ",".join(s.podman_name for s in secrets)
    name: str = service.name
    ports = tuple(spec.ports)
    if canary:
        owned[labels.CANARY] = "true"
        name = labels.canary_name(service.name)
        ports = tuple(spec.rollout.canary.ports) if spec.rollout.canary else ()
    networks = {a.name: tuple(a.aliases) for a in spec.networks}
    if beside or (canary and not spec.ports and not spec.host_network):
        # StartFirst's new copy, or the canary of a service without host ports:
        # it answers to the service's name beside the old copy, taking real traffic.
        name = name if canary else labels.next_name(service.name)
        networks = {n: (service.name, *aliases) for n, aliases in networks.items()}
    args = spec.args if spec.args is not None else ([] if spec.command is not None else None)
    image, exact, policy = spec.image, False, str(spec.pull_policy)
    if service.image_digest is not None:
        # A digest is one image for ever: pulled once, whatever the tag says now.
        image, policy = parse_reference(spec.image).by_digest(service.image_digest), "IfNotPresent"
    elif service.image_id is not None:
        image, exact = service.image_id, True
    return ContainerRequest(
        name=name,
        image=image,
        exact_image=exact,
        labels={**service.labels, **owned},
        entrypoint=spec.command,
        command=args,
        env={**spec.env, **{f"{s.env}_FILE": s.target for s in secrets if s.env}},
        ports=ports,
        volumes=tuple(_resolved(v) for v in spec.volumes),
        memory_bytes=spec.resources.memory,
        cpus=spec.resources.cpus,
        stop_signal=spec.stop_signal,
        stop_timeout=spec.termination_grace_period_seconds,
        init=spec.init,
        secrets=secrets,
        options=container_options(spec),
        networks=networks,
        # A canary runs beside its service: a fixed address is the service's alone.
        addresses={}
        if canary or beside
        else {a.name: a.addresses for a in spec.networks if a.addresses},
        host_network=spec.host_network,
        configs=tuple(
            ConfigBind(c, str(configs.path(c.digest)) if configs else "") for c in service.configs
        ),
        pull_policy=policy,
        build=None if service.build is None else _build_request(service),
    )


def _build_request(service: DesiredService) -> BuildRequest:
    build = service.build
    assert build is not None  # noqa: S101 -- the caller checks
    return BuildRequest(
        context=str(build.path),
        containerfile=build.containerfile,
        tag=service.spec.image,
        args=dict(build.args),
        target=build.target,
    )


def container_options(spec: ServiceSpec) -> ContainerOptions:
    """The spec's container fields as the runtime takes them; logs bounded by default."""
    logging = spec.logging or Logging()
    return ContainerOptions(
        user=spec.user,
        group_add=tuple(spec.group_add),
        working_dir=spec.working_dir,
        hostname=spec.hostname,
        read_only=spec.read_only_root_filesystem,
        tmpfs=tuple(spec.tmpfs),
        cap_add=tuple(spec.capabilities.add) if spec.capabilities else (),
        cap_drop=tuple(spec.capabilities.drop) if spec.capabilities else (),
        privileged=spec.privileged,
        no_new_privileges=spec.no_new_privileges,
        security_opt=tuple(spec.security_opt),
        devices=tuple(spec.devices),
        ulimits={name: (u.soft, u.hard) for name, u in spec.ulimits.items()},
        sysctls=dict(spec.sysctls),
        shm_size=spec.shm_size,
        pids_limit=spec.pids_limit,
        log_driver=str(logging.driver),
        log_max_size=logging.max_size if logging.driver == "k8s-file" else None,
        extra_hosts=tuple(spec.extra_hosts),
        dns_servers=tuple(spec.dns.servers) if spec.dns else (),
        dns_search=tuple(spec.dns.search) if spec.dns else (),
        dns_options=tuple(spec.dns.options) if spec.dns else (),
        userns=spec.userns,
        timezone=spec.timezone,
        annotations=dict(spec.annotations),
    )
