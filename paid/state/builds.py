"""``spec.build``: an image built from a directory of the desired-state tree.

The context is read and digested when the desired state is loaded, under
the same rules as configs (inside the tree, no devices or FIFOs, bounded),
and the digest of the context, the Containerfile's name, the arguments
and the target names the image: ``localhost/paid/<service>:<digest>``. So
an edit of the source is a new image, hence a new revision through the
health gate, and an unchanged context builds nothing (the tag is there).
The executor builds before anything is stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator

from paid.state.basics import Model

BUILT_REPOSITORY = "localhost/paid"
_CONTAINERFILES = ("Containerfile", "Dockerfile")


class Build(Model):
    """Where the image comes from: a context directory (relative to the YAML file)."""

    context: str = "."
    containerfile: str | None = None  # default: Containerfile, else Dockerfile, in the context
    args: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = Field(
        default_factory=dict
    )
    target: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")] | None = None

    @field_validator("context", "containerfile")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is not None and ("\0" in value or value.startswith("/")):
            raise ValueError(f"{value!r}: a path relative to the YAML file's directory")
        return value


@dataclass(frozen=True, slots=True)
class BuildContext:
    """A build as loaded: the context on this host, what to build, and its digest."""

    path: Path
    containerfile: str  # relative to the context
    args: tuple[tuple[str, str], ...]
    target: str | None
    digest: str

    def tag(self, service: str) -> str:
        return built_image(service, self.digest)


def built_image(service: str, digest: str) -> str:
    """The image a build of ``service`` with this digest makes."""
    return f"{BUILT_REPOSITORY}/{service}:{digest[:16]}"
