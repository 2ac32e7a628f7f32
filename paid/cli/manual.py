"""What ``paid COMMAND --help`` says: a description and examples for every command.

Kept together, as a manual page is, and attached to the parser by
``describe``; ``tests/unit/test_cli.py`` checks that no command lacks them.
Exit codes are part of each description: scripts gate on them.
"""

from __future__ import annotations

import argparse
import textwrap

WIDTH = 78

PAGES: dict[str, tuple[str, list[str]]] = {
    "validate": (
        "Check a desired state (a directory, one file, or - for stdin) without touching "
        "Podman: syntax, fields, references between services, host paths and secret files. "
        "Every problem is reported as file:line: field: message.\n\n"
        "exit codes: 0 valid, 1 not",
        [
            "paid validate",
            "paid validate --offline -o json desired-state",
            "cat web.yaml | paid validate -",
        ],
    ),
    "plan": (
        "Show what `paid apply` would do, computed by the same reconciler from one look at "
        "Podman and the store. Changes nothing.\n\n"
        "exit codes: 0 the host is as desired, 2 apply would change something or a change is "
        "held back (a pin, a quarantine, a mass prune), 1 error",
        ["paid plan", "paid plan -o json desired-state | jq .actions"],
    ),
    "apply": (
        "Converge the host once and exit: pre-flight, then create, recreate, start and remove "
        "through the health gate, rolling back what fails it. Beside a running daemon on the "
        "same directory, the work is handed to the daemon.\n\n"
        "exit codes: 0 converged, 1 not (or error); with --dry-run, as plan",
        ["paid apply", "paid apply --dry-run", "paid apply --wait --wait-timeout 300"],
    ),
    "preflight": (
        "Check that this host can run the desired state before anything is changed: Podman, "
        "images and registries, ports, disk, secrets, volumes, rootless limits.\n\n"
        "exit codes: 0 no FAIL (WARNs allowed), 1 a FAIL",
        ["paid preflight", "paid preflight -o json"],
    ),
    "schema": (
        "Print the JSON Schema of desired-state documents, with a description on every field, "
        "for editors (yaml-language-server) and CI (check-jsonschema).",
        ["paid schema > paid.schema.json"],
    ),
    "update": (
        "Check the registries for new digests of the services that follow a tag "
        "(imageUpdate), and roll them out through the health gate.\n\n"
        "exit codes: 0 up to date or updated, 1 an update failed",
        ["paid update --check", "paid update"],
    ),
    "images prune": (
        "Remove images paid pulled or built that no revision it may roll back to still needs.",
        ["paid images prune --dry-run", "paid images prune"],
    ),
    "status": (
        "What runs against what is desired: phase, readiness, revision, ports, age and "
        "restarts per service. Asks a running daemon first, else looks itself.\n\n"
        "exit codes: 0 every service as desired, 2 some are not (pending, stopped, drifted, "
        "quarantined, pinned, rolling out, backing off), 1 the desired state is invalid or "
        "Podman cannot be reached",
        ["paid status", "paid status -o json | jq '.services[] | select(.phase != \"Running\")'"],
    ),
    "history": (
        "The revisions of a service, newest last: outcome, reason, image and digest, git "
        "commit, time.",
        ["paid history web", "paid history web -o json"],
    ),
    "rollback": (
        "Go back to an earlier revision of a service through the health gate, and stay there "
        "(pinned) until the desired state changes or `paid rollout retry`.\n\n"
        "exit codes: 0 rolled back, 1 not",
        ["paid rollback web", "paid rollback web --to-revision 3", "paid rollback web --pin-only"],
    ),
    "rollout retry": (
        "Let a quarantined revision of a service be rolled out again (after fixing what "
        "failed outside the desired state, a database, a secret).",
        ["paid rollout retry web"],
    ),
    "logs": (
        "Print what a service's container wrote, stdout to stdout and stderr to stderr. With "
        "--follow, keep printing, and go on with the next container when paid replaces or "
        "restarts it (a heal, a rollout).",
        ["paid logs web --tail 50", "paid logs web -f --since 10m"],
    ),
    "exec": (
        "Run a command in a service's running container, through Podman's own client "
        "(podman --url ... exec), with a terminal when stdin is one. The exit code is the "
        "command's.",
        ["paid exec db -- psql -U app", "paid exec -T web -- cat /etc/hostname"],
    ),
    "run": (
        "The daemon: watch the desired state and Podman, and converge for ever; serves "
        "/healthz, /readyz, /status and /metrics on --listen. Meant to run under systemd.",
        ["paid run", "paid run --listen 127.0.0.1:9707 --watch-interval 30 /srv/desired-state"],
    ),
    "notify": (
        "Notifications: the Notifier documents of the desired state say which events (a "
        "rollback, a quarantine, a service down ...) go to which targets; `paid run` sends "
        "them. `paid notify test` checks the targets now.",
        ["paid notify test", "paid notify test -o json desired-state"],
    ),
    "notify test": (
        "Send a test message to each target of each Notifier in the desired state, with the "
        "URL read from its file (urlFile, urlEncrypted) as the daemon reads it, and show which "
        "answered. The URLs are never printed.\n\n"
        "exit codes: 0 every target took it, 1 one did not (or error)",
        ["paid notify test", "paid notify test --deadline 3 desired-state"],
    ),
    "secret": (
        "Secrets that live in git, encrypted with age: make this host's key, encrypt a value "
        "to it, and name the file in a service (secretEnv: {DB_PASSWORD: {encrypted: "
        "secrets/db-password.age}}). paid decrypts it with --age-identity (PAID_AGE_IDENTITY).",
        [
            "paid secret keygen -o /etc/paid/age.key",
            "printf %s hunter2 | paid secret encrypt -r age1... -o secrets/db-password.age -",
        ],
    ),
    "secret keygen": (
        "Make an age identity (0600; an existing file is never overwritten) and print its "
        "public key: the recipient to encrypt this host's secrets to.\n\n"
        "exit codes: 0 written, 1 not",
        ["paid secret keygen -o /etc/paid/age.key"],
    ),
    "secret encrypt": (
        "Encrypt FILE (or - for stdin) to one or more age public keys, armored, into -o or "
        "FILE.age. Re-encrypting the same value does not roll a service out; a new value does."
        "\n\nexit codes: 0 written, 1 not",
        [
            "paid secret encrypt -r age1... db-password",
            "printf %s hunter2 | paid secret encrypt -r age1... -r age1... -o db.age -",
        ],
    ),
    "backup run": (
        "Back up a service's volumes (named and data volumes) now, or every service with a "
        "backup section (--all): each is paused or stopped as that section says, archived, "
        "checked and restarted.",
        ["paid backup run --all", "paid backup run db"],
    ),
    "backup list": (
        "The backups kept, newest first, per service.",
        ["paid backup list", "paid backup list -o json"],
    ),
    "backup verify": (
        "Read every kept backup through and check it against its recorded checksum.",
        ["paid backup verify"],
    ),
    "restore": (
        "Restore a service's volumes from a backup (the latest by default): the service is "
        "stopped, its volumes replaced, and it is started and checked for readiness.",
        ["paid restore db", "paid restore db --backup 20261204T101500Z-db"],
    ),
    "slo": (
        "Availability, error budget and burn rates per service, against the objectives of "
        "their slo sections, from the readiness record the daemon keeps.",
        ["paid slo", "paid slo --slo-default 99.5 -o json"],
    ),
    "postmortem": (
        "A Markdown incident report for a time window, its timeline filled in from the "
        "journal: rollouts, rollbacks, restarts, probes, backups.",
        ["paid postmortem --since 2h", "paid postmortem --service web --file incident.md"],
    ),
    "chaos": (
        "Break things on purpose (kill, stop, pause or remove a managed container) and check "
        "that the running daemon heals each within the deadline.\n\n"
        "exit codes: 0 every break healed in time, 1 not",
        ["paid chaos --rounds 5", "paid chaos --service web --action kill -o json"],
    ),
    "import compose": (
        "Translate a compose file (and its overrides) into paid's desired state, one file "
        "per service: ports, volumes, healthchecks, depends_on, build, networks. What cannot "
        "be translated is listed with its line, and nothing is written unless --partial.",
        [
            "paid import compose compose.yaml",
            "paid import compose -o ds compose.yaml compose.prod.yaml",
        ],
    ),
    "import quadlet": (
        "Translate a directory of Quadlet units (.container, .network, .volume, with their "
        ".d drop-ins) as Quadlet reads them: systemd quoting and specifiers, every key with a "
        "paid field; the rest is listed with its line.",
        [
            "paid import quadlet ~/.config/containers/systemd",
            "paid import quadlet --partial units/",
        ],
    ),
    "files": (
        "List the files installed with paid, print where one is, or write a copy. A unit "
        "written with --to runs this paid (ExecStart=) and points at the installed README "
        "(Documentation=).",
        [
            "paid files",
            "paid files paid-rules.yml",
            "paid files paid-user.service --to ~/.config/systemd/user/paid.service",
        ],
    ),
    "completion": (
        "Print a completion script: commands, options, option values, service names (read "
        "from the desired state) and directories.",
        [
            "paid completion bash > /etc/bash_completion.d/paid",
            "paid completion fish > ~/.config/fish/completions/paid.fish",
        ],
    ),
    "export kube": (
        "Translate the desired state into Kubernetes manifests: Deployments (or Pods for "
        "podman kube play), Services, PersistentVolumeClaims, ConfigMaps, NetworkPolicies.",
        ["paid export kube -o app.yaml", "paid export kube --pods | podman kube play -"],
    ),
}


def describe(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Set every (sub)command's description and examples from ``PAGES``."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            full = f"{path}{name}"
            page = PAGES.get(full)
            if page is not None:
                text, examples = page
                sub.description = "\n\n".join(
                    textwrap.fill(paragraph, WIDTH) for paragraph in text.split("\n\n")
                )
                sub.epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
            describe(sub, f"{full} ")
