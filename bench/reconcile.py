"""Benchmark: what a no-op converge costs, paid against the anchors.

Run by hand (``.venv/bin/python -m bench.reconcile``); needs root and
Podman, and a tools venv (``--tools-venv``, default ``.venv-bench``) made
with ``python3 -m venv .venv-bench && .venv-bench/bin/pip install '.[bench]'``:
paid as users install it, podman-compose and ansible.

Two parts, on one private Podman (the test harness's), same images:

1. Whole process, no-op: with N services already converged, the wall time
   of ``paid apply``, ``podman-compose up -d`` and an Ansible playbook of
   ``containers.podman.podman_container`` tasks, each on its own containers.
2. In process: one no-op reconcile pass (list + diff) against one bare
   list call (HTTP GET + JSON decode), with the API calls a pass makes.

Prints a table and writes its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bench.report import write_section
from paid.controllers.services import ServiceController
from paid.runtime.podman import PodmanRuntime
from paid.state.loading import load_directory
from paid.state.store import Store
from tests.harness import IMAGE, PodmanService, service_doc, write_services

ROOT = Path(__file__).resolve().parent.parent


def _time(fn: Callable[[], object], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _run(argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, check=False)
    if result.returncode != 0:
        raise SystemExit(
            f"{argv[0]} failed: {result.stdout.decode()[-2000:]}{result.stderr.decode()[-2000:]}"
        )


def _storage_env(podman: PodmanService) -> dict[str, str]:
    """Make the podman CLI (used by compose and Ansible) see the bench's storage."""
    conf = podman.base / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{podman.base / "root"}"\n'
        f'runroot = "{podman.base / "runroot"}"\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CONTAINER_HOST", "DOCKER_HOST")}
    env["CONTAINERS_STORAGE_CONF"] = str(conf)
    env["CONTAINERS_CONF"] = str(podman.base / "containers.conf")
    return env


def _names(n: int) -> list[str]:
    return [f"svc{i:03d}" for i in range(n)]


def bench_paid(podman: PodmanService, work: Path, n: int, reps: int, tools: Path) -> list[float]:
    """``paid`` as users install it (``pip install .`` into the tools venv, no test extras)."""
    desired = work / f"paid-{n}"
    write_services(desired, *(service_doc(name) for name in _names(n)))
    env = {**os.environ, "PAID_PODMAN_URL": podman.url, "PAID_STATE_DIR": str(work / "state")}
    argv = [str(tools / "paid"), "apply", str(desired), "--log-format", "json"]
    _run(argv, env)
    return _time(lambda: _run(argv, env), reps)


def bench_compose(podman: PodmanService, work: Path, n: int, reps: int, tools: Path) -> list[float]:
    compose = work / f"compose-{n}.yml"
    services = {
        name: {"image": IMAGE, "command": ["sleep", "3600"], "container_name": name}
        for name in _names(n)
    }
    compose.write_text(yaml.safe_dump({"services": services}))
    env = _storage_env(podman)
    argv = [str(tools / "podman-compose"), "-f", str(compose), "-p", f"bench{n}", "up", "-d"]
    _run(argv, env)
    return _time(lambda: _run(argv, env), reps)


def bench_ansible(podman: PodmanService, work: Path, n: int, reps: int, tools: Path) -> list[float]:
    env = _storage_env(podman)
    playbook = work / f"ansible-{n}.yml"
    play = {
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "environment": {
            "CONTAINERS_STORAGE_CONF": env["CONTAINERS_STORAGE_CONF"],
            "CONTAINERS_CONF": env["CONTAINERS_CONF"],
        },
        "tasks": [
            {
                "name": "services",
                "containers.podman.podman_container": {
                    "name": "{{ item }}",
                    "image": IMAGE,
                    "command": ["sleep", "3600"],
                    "state": "started",
                },
                "loop": _names(n),
            }
        ],
    }
    playbook.write_text(yaml.safe_dump([play]))
    env["ANSIBLE_PYTHON_INTERPRETER"] = str(tools / "python")
    env["ANSIBLE_LOCALHOST_WARNING"] = "false"
    env["ANSIBLE_INVENTORY_UNPARSED_WARNING"] = "false"
    argv = [str(tools / "ansible-playbook"), "-i", "localhost,", str(playbook)]
    _run(argv, env)
    return _time(lambda: _run(argv, env), reps)


def bench_in_process(podman: PodmanService, work: Path, n: int, reps: int) -> dict[str, float]:
    desired_dir = work / f"inproc-{n}"
    write_services(desired_dir, *(service_doc(name) for name in _names(n)))
    env = {**os.environ, "PAID_PODMAN_URL": podman.url, "PAID_STATE_DIR": str(work / "state")}
    _run([str(ROOT / ".venv" / "bin" / "paid"), "apply", str(desired_dir)], env)
    desired = load_directory(desired_dir).desired
    assert desired is not None
    runtime = PodmanRuntime(podman.url)
    api = runtime._client.api  # the bare call: the same HTTP client, no paid code

    def bare_list() -> object:
        response = api.get("/containers/json", params={"all": "true"})
        return response.json()

    with Store.open(work / "state") as store:
        controller = ServiceController(runtime=runtime, journal=store)
        # interleave the two so drift in machine load hits both alike
        list_times: list[float] = []
        pass_times: list[float] = []
        for _ in range(reps):
            list_times += _time(bare_list, 1)
            pass_times += _time(lambda: controller.reconcile(desired), 1)
        runtime.requests.clear()
        report = controller.reconcile(desired)
        assert report.results == (), report.results
    calls = sum(runtime.requests.values())
    mutating = runtime.mutating_requests
    runtime.close()
    return {
        "list": statistics.median(list_times),
        "pass": statistics.median(pass_times),
        "calls": calls,
        "mutating": mutating,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tools-venv", type=Path, default=ROOT / ".venv-bench")
    parser.add_argument("--reps", type=int, default=3, help="whole-process repetitions")
    parser.add_argument("--pass-reps", type=int, default=30, help="in-process repetitions")
    parser.add_argument("--sizes", default="20,50")
    parser.add_argument("--pass-sizes", default="20,100,500")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    tools = args.tools_venv / "bin"

    base = Path(tempfile.mkdtemp(prefix="paid-bench-"))
    podman = PodmanService.start(base)
    rows_tools: list[str] = []
    rows_pass: list[str] = []
    try:
        podman.build_images()
        work = base / "work"
        work.mkdir()
        for n in [int(x) for x in args.sizes.split(",")]:
            results = {}
            for label, fn in (
                ("paid apply", bench_paid),
                ("podman-compose up -d", bench_compose),
                ("ansible podman_container", bench_ansible),
            ):
                podman.clean()
                print(f"N={n}: {label} ...", file=sys.stderr, flush=True)
                results[label] = statistics.median(fn(podman, work, n, args.reps, tools))
            paid_s = results["paid apply"]
            for label, seconds in results.items():
                ratio = "1.0×" if label == "paid apply" else f"{seconds / paid_s:.1f}× paid"
                rows_tools.append(f"| {n} | {label} | {seconds:.2f} s | {ratio} |")
        for n in [int(x) for x in args.pass_sizes.split(",")]:
            podman.clean()
            print(f"N={n}: in-process pass ...", file=sys.stderr, flush=True)
            r = bench_in_process(podman, work, n, args.pass_reps)
            rows_pass.append(
                f"| {n} | {r['list'] * 1000:.1f} ms | {r['pass'] * 1000:.1f} ms | "
                f"{r['pass'] / r['list']:.2f}× | {r['calls']:.0f} | {r['mutating']:.0f} |"
            )
    finally:
        podman.stop()

    section = "\n".join(
        [
            "### No-op converge, whole process (median of "
            f"{args.reps} runs after a converging run)",
            "",
            "| N | tool | wall time | relative |",
            "|---|---|---|---|",
            *rows_tools,
            "",
            f"### One no-op reconcile pass in process (median of {args.pass_reps}, interleaved)",
            "",
            "| N | bare list call | paid pass (list + diff) | pass / list "
            "| API calls per pass | mutating |",
            "|---|---|---|---|---|---|",
            *rows_pass,
        ]
    )
    print(section)
    if not args.no_write:
        write_section("reconcile", "No-op converge (`bench/reconcile.py`)", section)


if __name__ == "__main__":
    main()
