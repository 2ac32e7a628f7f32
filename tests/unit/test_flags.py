"""Feature flags files, and disabled services in the diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from paid.state.diffing import diff
from paid.storage.flags import Flags, FlagsError, load_flags
from tests.unit.builders import desired, desired_service, running


def test_absent_flags_stay_on(tmp_path: Path) -> None:
    """Only what the file says changes; camelCase as in the desired state."""
    (tmp_path / "flags.yaml").write_text("prune: false\nautoRollback: false\n")

    flags = load_flags(tmp_path / "flags.yaml")

    assert Flags(prune=False, auto_rollback=False) == flags
    assert flags.event_watch


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "prune: maybe\n", "prune: Input should be a valid boolean", id="not-a-boolean"
        ),
        pytest.param("prnue: false\n", "prnue: Extra inputs are not permitted", id="typo"),
        pytest.param("- prune\n", "a flags file is a mapping", id="not-a-mapping"),
        pytest.param("prune: [\n", "invalid YAML", id="broken-yaml"),
    ],
)
def test_bad_flags_files_are_refused_with_the_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    """A bad file is an error naming the file and the field, never a half-read set of flags."""
    (tmp_path / "flags.yaml").write_text(text)

    with pytest.raises(FlagsError, match=message):
        load_flags(tmp_path / "flags.yaml")


def test_disabled_service_is_stopped_and_kept() -> None:
    """enabled: false stops a running container; a stopped or missing one is left as it is."""
    on = desired_service("web")
    off = desired_service("web", enabled=False)

    stop = diff(desired(off), [running(on)])
    stays = diff(desired(off), [running(on, state="exited", exit_code=137)])
    absent = diff(desired(off), [])

    assert [("stop", "disabled (enabled: false)")] == [
        (str(a.kind), a.reason) for a in stop.actions
    ]
    assert (stays.actions, absent.actions) == ((), ())
    assert on.spec_hash == off.spec_hash  # not a new revision
