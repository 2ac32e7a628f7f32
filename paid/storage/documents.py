"""A desired state as plain documents and back: what revisions and snapshots store.

``to_document`` writes a service as the store keeps it (networks resolved,
env files merged, config digests beside the spec); ``from_documents``
rebuilds a desired state from such documents, to roll back to a revision
or to run the last-known-good state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from paid.state.builds import BuildContext
from paid.state.configs import ConfigContent
from paid.state.desired import DesiredService, DesiredState
from paid.state.networks import DEFAULT_NETWORK, DesiredNetwork, NetworkDocument
from paid.state.notifiers import DesiredNotifier, NotifierDocument
from paid.state.reading import LoadError
from paid.state.secrets import SecretUnavailable, file_secret_key
from paid.state.shapes import canonical_json
from paid.state.specs import ServiceDocument, ServiceName
from paid.storage.secret_files import SecretSource


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A valid ``desired`` state, or the errors that prevent one."""

    desired: DesiredState | None
    errors: tuple[LoadError, ...] = ()
    files: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.desired is not None


def desired_service(
    parsed: ServiceDocument,
    *,
    source: str,
    secrets: SecretSource | None,
    offline: bool = False,
    default_network: str = DEFAULT_NETWORK,
    configs: tuple[ConfigContent, ...] = (),
    build: BuildContext | None = None,
) -> DesiredService:
    fingerprints: dict[str, str] = {}
    entries = [(key, e) for key, e in parsed.spec.secret_env.items()]
    entries += [(file_secret_key(m.path), m) for m in parsed.spec.secrets]
    for key, entry in entries:
        if offline:
            # What the repository can tell: an age file's shape, without its key.
            if entry.is_encrypted and secrets is not None:
                secrets.check(entry.source)
            continue
        if secrets is None:
            raise SecretUnavailable(f"{entry.source}: no secrets directory is configured here")
        fingerprints[key] = secrets.read(entry.source, encrypted=entry.is_encrypted)[1]
    return DesiredService.of(
        parsed,
        source=source,
        secret_fingerprints=fingerprints,
        default_network=default_network,
        configs=configs,
        build=build,
    )


CONFIG_DIGESTS = "configDigests"  # beside spec in a stored document: the content it ran


def to_document(service: DesiredService) -> dict[str, Any]:
    """One service as a plain document, for its revision and the snapshot.

    Networks are resolved and env files merged into ``env``; the digests
    of its configs ride along, so the revision rebuilds with the content
    it ran (kept in the state directory), not the checkout's.
    """
    document: dict[str, Any] = {
        "apiVersion": "paid/v1",
        "kind": "Service",
        "metadata": {"name": service.name, "labels": dict(service.labels)},
        "spec": service.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    if service.configs:
        document[CONFIG_DIGESTS] = {c.target: c.digest for c in service.configs}
    return document


def to_documents(desired: DesiredState) -> list[dict[str, Any]]:
    """The desired state as plain documents, for the store's snapshot: services, networks,
    notifiers."""
    return (
        [to_document(svc) for svc in desired]
        + [desired.networks[name].to_document() for name in sorted(desired.networks)]
        + [desired.notifiers[name].to_document() for name in sorted(desired.notifiers)]
    )


def digest(documents: list[dict[str, Any]]) -> str:
    return hashlib.sha256(canonical_json(documents)).hexdigest()


def from_documents(
    documents: Iterable[Any],
    *,
    origin: str,
    secrets: SecretSource | None = None,
    default_network: str = DEFAULT_NETWORK,
) -> LoadResult:
    """Rebuild a desired state from ``to_documents`` output (a store snapshot).

    Secrets are not versioned (paid never keeps their values): a rebuilt
    revision uses the secret files as they are now.
    """
    services: dict[ServiceName, DesiredService] = {}
    networks: dict[str, DesiredNetwork] = {}
    notifiers: dict[str, DesiredNotifier] = {}
    errors: list[LoadError] = []
    for i, raw in enumerate(documents):
        if isinstance(raw, dict) and raw.get("kind") == "Notifier":
            try:
                notifier = NotifierDocument.model_validate(raw)
            except ValidationError as err:
                errors.append(LoadError(origin, 0, f"documents[{i}]", str(err.errors()[0]["msg"])))
                continue
            notifiers[notifier.metadata.name] = DesiredNotifier(
                notifier.metadata.name, notifier.spec, origin, notifier.metadata.labels
            )
            continue
        if isinstance(raw, dict) and raw.get("kind") == "Network":
            try:
                network = NetworkDocument.model_validate(raw)
            except ValidationError as err:
                errors.append(LoadError(origin, 0, f"documents[{i}]", str(err.errors()[0]["msg"])))
                continue
            networks[network.metadata.name] = DesiredNetwork(
                network.metadata.name, network.spec, network.metadata.labels, origin
            )
            continue
        digests = raw.get(CONFIG_DIGESTS) or {} if isinstance(raw, dict) else {}
        body = {k: v for k, v in raw.items() if k != CONFIG_DIGESTS} if digests else raw
        try:
            parsed = ServiceDocument.model_validate(body)
        except ValidationError as err:
            errors.append(LoadError(origin, 0, f"documents[{i}]", str(err.errors()[0]["msg"])))
            continue
        kept = tuple(
            ConfigContent(c.target, str(digests.get(c.target, "")), c.file_mode)
            for c in parsed.spec.configs
        )
        try:
            service = desired_service(
                parsed,
                source=origin,
                secrets=secrets,
                default_network=default_network,
                configs=kept,
            )
        except SecretUnavailable as err:
            errors.append(LoadError(origin, 0, f"documents[{i}].spec.secretEnv", str(err)))
            continue
        services[service.name] = service
    if errors:
        return LoadResult(None, tuple(errors))
    return LoadResult(
        DesiredState.of(services, networks, default_network=default_network, notifiers=notifiers)
    )
