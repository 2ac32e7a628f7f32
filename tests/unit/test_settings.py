"""Where paid looks when nobody says: root's places, or a rootless user's own."""

from __future__ import annotations

import pytest

from paid import settings


@pytest.mark.parametrize(
    ("uid", "env", "expected"),
    [
        pytest.param(0, {}, "/etc/paid/secrets", id="root"),
        pytest.param(1000, {"XDG_CONFIG_HOME": "/home/u/.config"}, "/home/u/.config/paid/secrets",
                     id="rootless"),
    ],
)  # fmt: skip
def test_the_secrets_directory_is_the_user_s(uid: int, env: dict[str, str], expected: str) -> None:
    """A rootless user's secrets live in their configuration directory, not under /etc."""
    assert expected == settings.default_secrets_dir(env, uid=uid)


@pytest.mark.parametrize(
    ("uid", "env", "expected"),
    [
        pytest.param(0, {}, "unix:///run/podman/podman.sock", id="root"),
        pytest.param(1000, {"XDG_RUNTIME_DIR": "/run/user/1000"},
                     "unix:///run/user/1000/podman/podman.sock", id="rootless"),
        pytest.param(1000, {"CONTAINER_HOST": "unix:///x.sock"}, "unix:///x.sock", id="told"),
    ],
)  # fmt: skip
def test_the_podman_socket_is_the_user_s(uid: int, env: dict[str, str], expected: str) -> None:
    """Root's socket as root, the user's rootless socket otherwise, CONTAINER_HOST above both."""
    assert expected == settings.default_podman_url(env, uid=uid)
