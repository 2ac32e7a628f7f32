"""The labels by which paid recognises what it owns.

They are the contract with whatever else runs on the host: a container
without ``paid.managed=true`` is never stopped, changed or removed.
"""

from typing import Final

MANAGED: Final = "paid.managed"
SERVICE: Final = "paid.service"
SPEC_HASH: Final = "paid.spec-hash"
REVISION: Final = "paid.revision"
# The normalized container shape as JSON; lets a plan say *which* fields
# drifted without any inspect call or store lookup.
SPEC: Final = "paid.spec"

# The Podman secrets a container uses, comma-separated: the ones no
# container names are removed.
SECRETS: Final = "paid.secrets"

# The canary of a rollout, beside the old container: "<service>-canary".
CANARY: Final = "paid.canary"
CANARY_SUFFIX: Final = "-canary"

# A container renamed aside during a rollout: "<service>.paid-prev". A dot
# cannot occur in a service name, so this never collides with one.
ASIDE_SUFFIX: Final = ".paid-prev"
# A StartFirst rollout's new copy, beside the old until it is ready: "<service>.paid-next".
NEXT_SUFFIX: Final = ".paid-next"

# Which desired state a container belongs to (``--instance``): a paid only
# changes, removes or prunes its own instance's containers. Containers made
# before instances existed carry none and belong to the default one.
INSTANCE: Final = "paid.instance"
# The state directory (resolved) whose paid made the container: two state directories
# claiming one instance on one Podman would undo each other's work, so it is refused.
STATE_DIR: Final = "paid.state-dir"
DEFAULT_INSTANCE: Final = "default"


def aside_name(service: str) -> str:
    """The name a rollout keeps the old container under while the new one starts."""
    return service + ASIDE_SUFFIX


def next_name(service: str) -> str:
    """The name a StartFirst rollout starts the new copy under, beside the old."""
    return service + NEXT_SUFFIX


def canary_name(service: str) -> str:
    """The name of a service's canary."""
    return service + CANARY_SUFFIX
