"""The long-running controller: ``paid run``.

``manager`` owns the lifecycle (load, schedule, workers, shutdown);
``queue`` holds reconcile requests; ``sources`` turns Podman events and
desired-state changes into requests; ``http`` serves metrics and health;
``systemd`` speaks sd_notify.
"""
