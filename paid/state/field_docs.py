"""What each field of a desired-state document means, as editors show it on hover.

``paid.state.schema`` puts these on the JSON Schema's properties; a test
fails when a property has none. A key is ``Model.field`` (the schema's
``$defs`` name, the YAML spelling) or, for a field that means the same
wherever it appears, the field alone.
"""

from __future__ import annotations

from typing import Final

FIELD_DOCS: Final[dict[str, str]] = {
    # Documents
    "apiVersion": "Always paid/v1.",
    "kind": "Service (a container paid keeps running), Network or Notifier.",
    "ServiceDocument.metadata": "The service's name (its container's and DNS name) and labels.",
    "NetworkDocument.metadata": "The network's name and labels.",
    "ServiceDocument.spec": "What the container is and how paid runs, checks and rolls it out.",
    "NetworkDocument.spec": "The network's subnet, DNS and isolation.",
    "Metadata.name": "1-63 lowercase letters, digits or '-': the container's name and DNS name.",
    "NetworkMetadata.name": "The Podman network's name.",
    "NotifierDocument.metadata": "The notifier's name (in metrics: notifier/file) and labels.",
    "NotifierDocument.spec": "Which events, of which services, go to which targets.",
    "NotifierMetadata.name": "1-63 lowercase letters, digits or '-'.",
    "labels": "Labels of your own, put on the container or network (paid's own are paid.*).",
    # Image
    "image": "The image to run, pinned by a version tag or a digest (or followed: imageUpdate).",
    "imagePullPolicy": "When to pull: IfNotPresent (default for pinned), Always, or Never.",
    "imageUpdate": "Follow the tag in its registry: each new digest is rolled out through the "
    "health gate, and rolled back if it fails.",
    "policy": "registry: follow the tag's digest in its registry; semver: the highest version "
    "of the repository in range.",
    "range": "semver: the versions to follow, npm's syntax (>=1.4 <2, ~1.4, ^1.4, 1.4.x).",
    "minimumAge": "Roll a new digest out only once it was published this long ago (72h, 3d, "
    "30m, or seconds): a supply-chain cooldown.",
    "build": "Build the image from a context in the repository, as compose's build:.",
    "context": "The build context, a directory relative to this file.",
    "containerfile": "The Containerfile or Dockerfile, relative to the context.",
    "Build.args": "Build arguments (--build-arg).",
    "Build.target": "The stage of a multi-stage build to stop at.",
    # Process
    "ServiceSpec.command": "Replaces the image's entrypoint (Kubernetes' command).",
    "ServiceSpec.args": "Replaces the image's command: the entrypoint's arguments (as Kubernetes).",
    "env": "Environment variables, NAME: value.",
    "envFiles": "Files of NAME=value lines, relative to this file, read at load.",
    "secretEnv": "Environment variables whose values come from files of the secrets directory "
    "or from age-encrypted files of the repository, never written into the desired state.",
    "secrets": "Files of the secrets directory mounted into the container (read-only).",
    "SecretFile.file": "The file, relative to the secrets directory.",
    "SecretFileMount.file": "The file, relative to the secrets directory.",
    "SecretFile.encrypted": "Instead of file: an age-encrypted file in the repository, relative "
    "to the desired-state directory, decrypted with --age-identity (paid secret encrypt).",
    "SecretFileMount.encrypted": "Instead of file: an age-encrypted file in the repository, "
    "relative to the desired-state directory, decrypted with --age-identity.",
    "SecretFileMount.target": "Where it appears in the container (default /run/secrets/NAME).",
    "uid": "Owner's user ID inside the container.",
    "gid": "Owner's group ID inside the container.",
    "SecretFileMount.mode": "File mode, octal (default 0444).",
    "ConfigMount.mode": "File mode, octal (default 0444).",
    "TmpfsMount.mode": "Directory mode, octal (default 1777).",
    "user": "The user the process runs as: a name, UID, or UID:GID.",
    "groupAdd": "Supplementary groups.",
    "workingDir": "The process's working directory.",
    "hostname": "The container's hostname (default: the service's name).",
    "timezone": "The container's time zone (local, or an IANA name).",
    "init": "Run a tiny init as PID 1 that reaps zombies and forwards signals.",
    "stopSignal": "The signal that asks the process to stop (default the image's, else SIGTERM).",
    "terminationGracePeriodSeconds": "Seconds between the stop signal and SIGKILL (default 10).",
    "enabled": "false: stop the service but keep its container and data.",
    # Ports and networks
    "ports": "Ports published on the host, [ip:]host:container[/tcp|udp].",
    "Canary.ports": "Host ports the canary publishes while it runs beside the service.",
    "hostIp": "The host address to bind (default every address).",
    "hostPort": "The port on the host.",
    "containerPort": "The port inside the container.",
    "protocol": "tcp (default) or udp.",
    "networks": "Networks it joins, with DNS: other services reach it by its name (default the "
    "paid network).",
    "Attachment.name": "The network's name.",
    "aliases": "More DNS names on this network.",
    "ipv4Address": "A fixed IPv4 address, inside the network's declared subnet.",
    "ipv6Address": "A fixed IPv6 address, inside the network's declared subnet.",
    "hostNetwork": "Use the host's network stack (no networks, no port publishing).",
    "ServiceSpec.dns": "DNS servers, search domains and options for the container.",
    "NetworkSpec.dns": "Whether the network resolves its containers' names (default true).",
    "servers": "DNS server addresses.",
    "search": "DNS search domains.",
    "options": "resolv.conf options (ndots:2 ...).",
    "extraHosts": "Extra /etc/hosts entries, name:ip.",
    "subnet": "The network's subnet (CIDR); without one, Podman picks a /24.",
    "internal": "No route out of the network: its containers reach only each other.",
    # Storage
    "volumes": "Named volumes (name:/path) or allowed host paths (/host:/path), [:ro].",
    "VolumeMount.source": "A named volume, or an absolute host path (see --allow-host-path).",
    "destination": "Where it is mounted in the container.",
    "readOnly": "Mount it read-only.",
    "configs": "Files or directories of the repository mounted read-only into the container.",
    "ConfigMount.source": "The file or directory, relative to this file.",
    "ConfigMount.target": "Where it appears in the container.",
    "tmpfs": "In-memory file systems: a path, or {path, size, mode, uid, gid}.",
    "TmpfsMount.path": "Where it is mounted.",
    "size": "Its size limit (512Mi, 1G ...).",
    "readOnlyRootFilesystem": "Make the image's file system read-only.",
    # Limits and security
    "resources": "CPU and memory limits.",
    "memory": "Memory limit (256Mi, 1G ...): the container is killed beyond it.",
    "cpus": "CPU limit in cores (0.5, 2, or 500m).",
    "pidsLimit": "The most processes the container may have.",
    "shmSize": "Size of /dev/shm.",
    "ulimits": "Resource limits (nofile, nproc ...): a number, or {soft, hard}.",
    "soft": "The soft limit.",
    "hard": "The hard limit.",
    "sysctls": "Namespaced kernel parameters, NAME: value.",
    "capabilities": "Linux capabilities to add or drop.",
    "add": "Capabilities to add (NET_BIND_SERVICE ...).",
    "drop": "Capabilities to drop (ALL, then add back what it needs).",
    "privileged": "Give the container every capability and device: avoid.",
    "noNewPrivileges": "The process cannot gain privileges (setuid binaries do not elevate).",
    "securityOpt": "label=, apparmor=, seccomp=, mask= or unmask= options.",
    "devices": "Host devices passed in (allowed by --allow-device).",
    "userns": "User namespace mode: auto, host, keep-id or nomap.",
    "annotations": "OCI annotations on the container.",
    "logging": "Where its logs go, and how big they may grow (bounded by default).",
    "driver": "k8s-file (default), journald, or none.",
    "maxSize": "Log size before rotation (default 10Mi).",
    # Dependencies and health
    "dependsOn": "Services started, and ready, before this one.",
    "restartPolicy": "Always (default), OnFailure or Never: what paid does when it exits.",
    "livenessProbe": "Restart the container when this fails.",
    "readinessProbe": "Ready when this passes: the health gate of rollouts and dependents.",
    "startupProbe": "Other probes wait until this passes once.",
    "exec": "Run a command in the container: exit 0 passes.",
    "ExecAction.command": "The command and its arguments (no shell unless you call one).",
    "httpGet": "An HTTP GET: any 2xx or 3xx passes.",
    "tcpSocket": "A TCP connection: connecting passes.",
    "host": "The address to probe (default the container's).",
    "port": "The port to probe.",
    "HttpGetAction.path": "The path to request (default /).",
    "scheme": "HTTP (default) or HTTPS.",
    "initialDelaySeconds": "Seconds after start before the first probe.",
    "periodSeconds": "Seconds between probes (default 10).",
    "timeoutSeconds": "Seconds a probe may take (default 1).",
    "successThreshold": "Passes in a row to count as passing (default 1).",
    "failureThreshold": "Failures in a row to count as failing (default 3).",
    "startPeriodSeconds": "Failures in this many seconds after start do not count.",
    # Rollouts
    "rollout": "How a new revision replaces the running one, and when it is judged good.",
    "strategy": (
        "Recreate (default: stop the old, start the new), StartFirst (the new beside the old "
        "under the service's names; the old goes once the new is ready) or Canary."
    ),
    "minReadySeconds": "Seconds a new revision must stay ready before it counts as rolled out.",
    "progressDeadlineSeconds": "Seconds a new revision has to become ready before it fails.",
    "autoRollback": "Go back to the last good revision when a rollout fails (default true).",
    "canary": "The canary that runs beside the service before it is promoted.",
    "durationSeconds": "How long the canary must stay ready before promotion.",
    "intervalSeconds": "How often each analysis query is evaluated while the canary runs.",
    "analysis": (
        "Prometheus queries the canary is judged by: one value out of bounds ends it; "
        "a Prometheus that does not answer keeps it from promotion."
    ),
    "prometheus": "The Prometheus server's URL (http:// or https://).",
    "query": "A PromQL expression; each value it returns must keep the bounds.",
    "max": "The largest value the query may return.",
    "min": "The smallest value the query may return.",
    "drainSeconds": (
        "StartFirst: seconds the old copy keeps serving once the new one is ready (default 5)."
    ),
    "sharedVolumes": "StartFirst: two copies may use the service's volumes at once.",
    "revisionHistoryLimit": "Revisions kept for rollback (default 10).",
    # Backups and objectives
    "backup": "Scheduled backups of the service's volumes, and one before each rollout.",
    "schedule": "When: a cron expression.",
    "keep": "How many backups are kept.",
    "consistency": "pause (default), stop or none: how the service is held while archived.",
    "beforeRollout": "Back up before every rollout of a new revision.",
    "slo": "An availability objective, measured from readiness.",
    "availability": "The objective, a percentage (99.9).",
    "windowDays": "The rolling window it is measured over, in days.",
    # Notifiers
    "NotifierSpec.events": "Which events it hears (none: all): rollout_failed, rolled_back, "
    "quarantined, image_updated, image_update_rolled_back, service_down, slo_burn, "
    "desired_state_invalid, daemon_lost, backup_failed.",
    "NotifierSpec.services": "Which services' events (none: every service's).",
    "matchLabels": "Services whose labels include all of these.",
    "targets": "Where messages go: each a file holding one Apprise URL.",
    "urlFile": "A file of the secrets directory holding one Apprise URL (slack://, ntfy://, "
    "json:// ...).",
    "urlEncrypted": "An age-encrypted file of the repository holding one Apprise URL.",
    "downForSeconds": "service_down: how long a service is not ready before it is reported "
    "(default 60).",
}
