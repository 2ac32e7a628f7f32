"""``paid export kube``: the desired state as Kubernetes manifests, for a cluster or kube play.

Per service a ``Deployment`` (one replica, ``Recreate``: paid's
stop-first rollout) and a ``Service`` of its name, so others reach it by
name as on paid's networks: with its ports when it publishes some,
headless (``clusterIP: None``, DNS straight to the pod) when it does not;
each network alias is one more Service of that name; per named volume a
``PersistentVolumeClaim``; per config a ``ConfigMap``. Secrets are
referenced by name (``paid-<file>``, key ``value``), never exported.
Networks have no Kubernetes equivalent: each becomes a ``NetworkPolicy``
letting in only pods on the same network (paid isolates every network),
and a published port gets a policy of its own letting anyone in.
What cannot be said in Kubernetes is listed in ``skipped``.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from paid.state.desired import DesiredService, DesiredState
from paid.state.specs import ServiceSpec, VolumeMount
from paid.state.steering import Probe

NAME_LABEL = "app.kubernetes.io/name"
NETWORK_LABEL = "paid.network/{}"
HEADER = """\
# Exported by paid from its desired state. Apply with kubectl, or run on one
# host with `podman kube play`. Networks have no Kubernetes equivalent: each
# paid network is a NetworkPolicy letting in only pods on that network, and a
# published port has a policy letting anyone in. Secrets are referenced, never
# exported: create each one first, e.g.
#   kubectl create secret generic paid-db-password --from-file=value=/etc/paid/secrets/db-password
"""


@dataclass
class Manifests:
    objects: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def text(self) -> str:
        return HEADER + yaml.safe_dump_all(self.objects, sort_keys=False)


def _dns_name(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63] or "x"


def export(desired: DesiredState, *, pods: bool = False) -> Manifests:
    """Every service, volume, config and network of ``desired`` as Kubernetes objects.

    ``pods``: a bare Pod per service, named as the service, instead of a
    Deployment. For ``podman kube play`` on one host: Podman (4.3) gives a
    Deployment's pod a generated name and ignores Services, so only a Pod
    named as the service is found by that name on a network with DNS.
    """
    manifests = Manifests()
    volumes: set[str] = set()
    for service in desired:
        _service(service, manifests, volumes, pods=pods)
    for name in sorted(volumes):
        manifests.objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": name},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},  # paid's volumes have no size
                },
            }
        )
    for name in sorted(desired.networks):
        manifests.objects.append(_network_policy(name))
    return manifests


def _container(service: DesiredService) -> dict[str, Any]:
    """The container's own fields: image, command, env, ports, resources, probes."""
    spec, name = service.spec, service.name
    container: dict[str, Any] = {"name": name, "image": spec.image}
    if spec.command is not None:
        container["command"] = list(spec.command)
    if spec.args is not None:
        container["args"] = list(spec.args)
    elif spec.command is not None:
        container["args"] = []
    env = [{"name": k, "value": v} for k, v in sorted(spec.env.items())]
    env += [{"name": f"{k}_FILE", "value": f"/run/secrets/{k}"} for k in sorted(spec.secret_env)]
    if env:
        container["env"] = env
    if spec.working_dir:
        container["workingDir"] = spec.working_dir
    if spec.ports:
        container["ports"] = [
            {
                "containerPort": p.container_port,
                "hostPort": p.host_port,
                **({"hostIP": p.host_ip} if p.host_ip not in ("0.0.0.0", "::") else {}),  # noqa: S104
                "protocol": str(p.protocol).upper(),
            }
            for p in spec.ports
        ]
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    for kind in ("liveness", "readiness", "startup"):
        probe = getattr(spec, f"{kind}_probe")
        if probe is not None:
            container[f"{kind}Probe"] = _probe(probe)
    graced = [
        p for p in (spec.readiness_probe, spec.liveness_probe) if p and p.start_period_seconds
    ]
    if graced and spec.startup_probe is None:
        # Kubernetes' idiom for a start period: a startup probe with that much more patience.
        first = graced[0]
        extra = -(-first.start_period_seconds // first.period_seconds)
        container["startupProbe"] = {
            **_probe(first),
            "failureThreshold": first.failure_threshold + extra,
            "successThreshold": 1,
        }
    return container


def _service(
    service: DesiredService, manifests: Manifests, claims: set[str], *, pods: bool
) -> None:
    spec, name = service.spec, service.name
    container = _container(service)
    security = _security(spec, name, manifests)
    if security:
        container["securityContext"] = security
    mounts, volumes = _mounts(service, manifests, claims)
    if mounts:
        container["volumeMounts"] = mounts
    pod: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": spec.termination_grace_period_seconds,
    }
    if volumes:
        pod["volumes"] = volumes
    _pod_fields(spec, name, pod, manifests)
    labels = {**service.labels, NAME_LABEL: name}
    pod_labels: dict[str, str] = {NAME_LABEL: str(name)}
    pod_labels.update({NETWORK_LABEL.format(a.name): "true" for a in spec.networks})
    template_metadata: dict[str, Any] = {"labels": pod_labels}
    if spec.annotations:
        template_metadata["annotations"] = dict(spec.annotations)
    if pods:
        if spec.enabled:
            metadata = {**template_metadata, "name": name}
            pod_object = {"restartPolicy": "Always", **pod}
            manifests.objects.append(
                {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_object}
            )
    else:
        manifests.objects.append(_deployment(name, labels, template_metadata, pod, spec))
    manifests.objects.append(_kube_service(name, name, spec))
    for alias in sorted({a for attachment in spec.networks for a in attachment.aliases}):
        if alias != name:
            manifests.objects.append(_kube_service(_dns_name(alias), name, spec))
    if spec.ports:
        manifests.objects.append(_published_policy(name, spec))
    _skips(spec, name, manifests)


def _deployment(
    name: str,
    labels: dict[str, str],
    template_metadata: dict[str, Any],
    pod: dict[str, Any],
    spec: ServiceSpec,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1 if spec.enabled else 0,
            "strategy": {"type": "Recreate"},  # paid's rollout is stop-first too
            "selector": {"matchLabels": {NAME_LABEL: name}},
            "template": {"metadata": template_metadata, "spec": pod},
        },
    }


def _probe(probe: Probe) -> dict[str, Any]:
    """A probe as Kubernetes spells it (it has no start period: see the startup probe)."""
    return probe.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude={"start_period_seconds"}
    )


def _resources(spec: ServiceSpec) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if spec.resources.memory is not None:
        limits["memory"] = str(spec.resources.memory)
    if spec.resources.cpus is not None:
        limits["cpu"] = f"{round(spec.resources.cpus * 1000)}m"
    return {"limits": limits} if limits else {}


def _security(spec: ServiceSpec, name: str, manifests: Manifests) -> dict[str, Any]:
    security: dict[str, Any] = {}
    if spec.user is not None:
        uid, _, gid = spec.user.partition(":")
        if uid.isdigit() and (not gid or gid.isdigit()):
            security["runAsUser"] = int(uid)
            if gid:
                security["runAsGroup"] = int(gid)
        else:
            manifests.skipped.append(f"{name}: user {spec.user!r} (Kubernetes takes numeric ids)")
    if spec.capabilities is not None:
        security["capabilities"] = {
            k: list(v)
            for k, v in (("add", spec.capabilities.add), ("drop", spec.capabilities.drop))
            if v
        }
    if spec.read_only_root_filesystem:
        security["readOnlyRootFilesystem"] = True
    if spec.privileged:
        security["privileged"] = True
    if spec.no_new_privileges:
        security["allowPrivilegeEscalation"] = False
    return security


def _mounts(
    service: DesiredService, manifests: Manifests, claims: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    spec, name = service.spec, service.name
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    for volume in spec.volumes:
        mounts.append(_volume_mount(volume, volumes, claims))
    for i, tmpfs in enumerate(spec.tmpfs):
        empty: dict[str, Any] = {"medium": "Memory"}
        if tmpfs.size:
            empty["sizeLimit"] = str(tmpfs.size)
        volumes.append({"name": f"tmpfs-{i}", "emptyDir": empty})
        mounts.append({"name": f"tmpfs-{i}", "mountPath": tmpfs.path})
    for i, config in enumerate(spec.configs):
        content = service.configs[i] if i < len(service.configs) else None
        source = content.source if content is not None else None
        if source is None:
            manifests.skipped.append(f"{name}: config {config.target} (its content is unknown)")
            continue
        map_name = f"{name}-config-{i}"
        items = _config_map(map_name, source, manifests)
        reference: dict[str, Any] = {"name": map_name, "defaultMode": config.file_mode}
        entry = {"name": f"config-{i}", "configMap": reference}
        if source.is_file():
            mounts.append(
                {
                    "name": f"config-{i}",
                    "mountPath": config.target,
                    "subPath": items[0]["key"],
                    "readOnly": True,
                }
            )
        else:
            reference["items"] = items
            mounts.append({"name": f"config-{i}", "mountPath": config.target, "readOnly": True})
        volumes.append(entry)
    env = sorted(spec.secret_env.items())
    secrets = [(k, e.source, f"/run/secrets/{k}", 0o444) for k, e in env]
    secrets += [(m.path, m.source, m.path, int(m.mode, 8)) for m in spec.secrets]
    for i, (_, file, path, mode) in enumerate(secrets):
        secret = f"paid-{_dns_name(file)}"
        volumes.append(
            {"name": f"secret-{i}", "secret": {"secretName": secret, "defaultMode": mode}}
        )
        mounts.append(
            {"name": f"secret-{i}", "mountPath": path, "subPath": "value", "readOnly": True}
        )
    return mounts, volumes


def _volume_mount(
    volume: VolumeMount, volumes: list[dict[str, Any]], claims: set[str]
) -> dict[str, Any]:
    index = len(volumes)
    if volume.is_host_path:
        volumes.append({"name": f"host-{index}", "hostPath": {"path": volume.source}})
        return {
            "name": f"host-{index}",
            "mountPath": volume.destination,
            "readOnly": volume.read_only,
        }
    claim = _dns_name(volume.source)
    claims.add(claim)
    if not any(v.get("persistentVolumeClaim", {}).get("claimName") == claim for v in volumes):
        volumes.append({"name": claim, "persistentVolumeClaim": {"claimName": claim}})
    return {"name": claim, "mountPath": volume.destination, "readOnly": volume.read_only}


def _config_map(name: str, source: Path, manifests: Manifests) -> list[dict[str, str]]:
    """A ConfigMap of ``source``'s files; the items that lay them out again."""
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    items = []
    for path in files:
        relative = path.name if path == source else path.relative_to(source).as_posix()
        key = re.sub(r"[^-._a-zA-Z0-9]", "_", relative)
        raw = path.read_bytes()
        try:
            data[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(raw).decode()
        items.append({"key": key, "path": relative})
    config_map: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
    }
    if data:
        config_map["data"] = data
    if binary:
        config_map["binaryData"] = binary
    manifests.objects.append(config_map)
    return items


def _pod_fields(spec: ServiceSpec, name: str, pod: dict[str, Any], manifests: Manifests) -> None:
    if spec.host_network:
        pod["hostNetwork"] = True
    if spec.hostname:
        pod["hostname"] = spec.hostname
    if spec.extra_hosts:
        by_ip: dict[str, list[str]] = {}
        for entry in spec.extra_hosts:
            host, _, ip = str(entry).partition(":")
            by_ip.setdefault(ip, []).append(host)
        pod["hostAliases"] = [{"ip": ip, "hostnames": hosts} for ip, hosts in by_ip.items()]
    if spec.dns is not None:
        config: dict[str, Any] = {}
        if spec.dns.servers:
            config["nameservers"] = list(spec.dns.servers)
            pod["dnsPolicy"] = "None"
        if spec.dns.search:
            config["searches"] = list(spec.dns.search)
        if spec.dns.options:
            config["options"] = [
                {
                    "name": o.partition(":")[0],
                    **({"value": o.partition(":")[2]} if ":" in o else {}),
                }
                for o in spec.dns.options
            ]
        pod["dnsConfig"] = config
    security: dict[str, Any] = {}
    if spec.sysctls:
        security["sysctls"] = [{"name": k, "value": v} for k, v in spec.sysctls.items()]
    numeric = [int(g) for g in spec.group_add if g.isdigit()]
    if numeric:
        security["supplementalGroups"] = numeric
    for group in (g for g in spec.group_add if not g.isdigit()):
        manifests.skipped.append(f"{name}: groupAdd {group!r} (Kubernetes takes numeric ids)")
    if security:
        pod["securityContext"] = security
    if spec.shm_size:
        manifests.skipped.append(
            f"{name}: shmSize (mount an emptyDir of medium Memory on /dev/shm)"
        )


def _skips(spec: ServiceSpec, name: str, manifests: Manifests) -> None:
    if str(spec.restart_policy) != "Always":
        manifests.skipped.append(
            f"{name}: restartPolicy {spec.restart_policy} (a Deployment's pods always restart)"
        )
    for label, present in (
        ("devices", spec.devices),
        ("ulimits", spec.ulimits),
        ("pidsLimit", spec.pids_limit),
        ("securityOpt", spec.security_opt),
        ("userns", spec.userns),
        ("timezone", spec.timezone),
        ("logging", spec.logging),
        ("stopSignal", spec.stop_signal),
        ("init", spec.init),
        ("backup", spec.backup),
        ("slo", spec.slo),
        ("dependsOn", spec.depends_on),
        ("rollout", spec.rollout.strategy != "Recreate" or spec.rollout.min_ready_seconds != 10),
    ):
        if present:
            manifests.skipped.append(f"{name}: {label}")


def _kube_service(name: str, target: str, spec: ServiceSpec) -> dict[str, Any]:
    """The Service ``name`` in front of ``target``'s pod: its ports, or headless."""
    ports = _service_ports(spec)
    body: dict[str, Any] = {"selector": {NAME_LABEL: target}}
    if ports:
        body["ports"] = ports
    else:
        body["clusterIP"] = "None"  # headless: the name resolves to the pod, any port
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


def _service_ports(spec: ServiceSpec) -> list[dict[str, Any]]:
    seen: set[tuple[int, str]] = set()
    ports = []
    for port in spec.ports:
        key = (port.container_port, str(port.protocol).upper())
        if key in seen:
            continue
        seen.add(key)
        ports.append(
            {
                "name": f"{key[1].lower()}-{key[0]}",
                "port": key[0],
                "targetPort": key[0],
                "protocol": key[1],
            }
        )
    return ports


def _network_policy(network: str) -> dict[str, Any]:
    members = {"matchLabels": {NETWORK_LABEL.format(network): "true"}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"paid-network-{_dns_name(network)}"},
        "spec": {
            "podSelector": members,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": members}]}],
        },
    }


def _published_policy(name: str, spec: ServiceSpec) -> dict[str, Any]:
    ports = sorted({(p.container_port, str(p.protocol).upper()) for p in spec.ports})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"paid-published-{name}"},
        "spec": {
            "podSelector": {"matchLabels": {NAME_LABEL: name}},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"port": p, "protocol": proto} for p, proto in ports]}],
        },
    }
