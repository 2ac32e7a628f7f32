"""The command line's index: each command, the module that makes it, and its line of help.

``paid --version`` and ``paid --help`` read only this, and a command loads
only its own module (and what that imports), so no command pays for the
others' imports. ``tests/unit/test_cli.py`` checks it against the modules.
"""

from __future__ import annotations

from typing import Final

# command -> (module under paid.cli, the help `paid --help` shows for it)
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "validate": ("validating", "check a desired-state directory (0 valid, 1 not)"),
    "plan": ("desired", "show what apply would do (0 nothing, 2 changes, 1 error)"),
    "apply": ("desired", "converge once and exit (0 converged, 1 not)"),
    "preflight": ("desired", "check that this host can run the desired state (1 on any FAIL)"),
    "schema": ("validating", "print the JSON Schema of desired-state files (for editors and CI)"),
    "update": (
        "images",
        "roll out services whose tag moved in the registry (imageUpdate); --check: list them "
        "(2 if any moved, 0 if none, 1 if a registry did not answer)",
    ),
    "images": ("images", "images paid ran"),
    "status": ("revisions", "what runs, against what is desired"),
    "history": ("revisions", "the revisions of a service, with outcomes"),
    "rollback": (
        "revisions",
        "go back to an earlier revision through the health gate, and stay there",
    ),
    "rollout": ("revisions", "manage rollouts"),
    "logs": ("containers", "what a service's container wrote (stdout and stderr)"),
    "exec": ("containers", "run a command in a service's container"),
    "run": ("daemon", "the daemon: keep the host converged"),
    "backup": ("backups", "back up services' named volumes"),
    "restore": (
        "backups",
        "put a backup back: verify, stop, replace the volumes, start, wait until ready",
    ),
    "slo": ("reports", "availability, error budget and burn rates per service"),
    "postmortem": (
        "reports",
        "a Markdown incident report, its timeline filled in from the journal",
    ),
    "chaos": ("chaos", "break managed services under the running daemon; time each recovery"),
    "import": ("migrate", "translate compose or Quadlet files into paid's"),
    "export": ("migrate", "translate paid's desired state for another engine"),
    "files": ("files", "where the units, alert rules, dashboard and schema paid ships are"),
    "notify": ("notify", "notifications: send a test message"),
    "secret": ("secrets", "encrypt secrets for the repository (age)"),
    "completion": ("completion", "print a shell completion script"),
}
