"""Benchmark: what converging costs, paid against podman-compose (and Ansible).

Run by hand (``.venv/bin/python -m bench.reconcile``); needs root and
Podman, and a tools venv (``--tools-venv``, default ``.venv-bench``) made
with ``python3 -m venv .venv-bench && .venv-bench/bin/pip install '.[bench]'``:
paid as users install it, podman-compose and ansible.

Everything runs on one private Podman (the test harness's), the same
image, and each tool's containers are present while the others run. Runs
are interleaved (paid, compose, paid, compose, ...) so drift in the
machine's load hits all alike. What is measured is what a user types:

1. **No-op**, whole process: ``paid apply`` (its default pre-flight
   included), ``podman-compose up -d``, optionally an Ansible playbook,
   each with its N services already converged.
2. **Cold**, whole process: from none of the tool's containers to all N
   running: ``paid apply`` (4 workers, the default) and ``podman-compose
   up -d``. paid's gates use ``minReadySeconds: 0`` here (compose has no
   gate at all).
3. **In process**: what ``paid apply`` runs after loading — the reconciler
   under its workers (``converge``) — on a converged host, against one bare
   list call (HTTP GET + JSON decode), with the API calls it makes.

Prints tables and writes its section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.report import write_section
from bench.tools import tools_venv
from paid.controllers import wiring
from paid.controllers.converging import converge
from paid.controllers.reconciling import FULL
from paid.controllers.wiring import Mode
from paid.controllers.worlds import Wants
from paid.runtime.podman import PodmanRuntime
from paid.state.desired import DesiredState
from paid.storage.loading import load_directory
from paid.storage.store import Store
from tests.harness import IMAGE, PodmanService, service_doc, write_services

ROOT = Path(__file__).resolve().parent.parent


# paid's default network, declared with room for 4093 containers: without a
# subnet Podman gives a network a /24, and paid refuses more than 253 on it.
DEFAULT_NETWORK = {
    "apiVersion": "paid/v1",
    "kind": "Network",
    "metadata": {"name": "paid"},
    "spec": {"subnet": "10.90.0.0/20"},
}


def _paid_documents(names: list[str], *, bake: bool = False) -> list[dict[str, object]]:
    """paid's services; ``bake``: with the default ``minReadySeconds`` (10 s), as users write."""
    docs = [service_doc(name) for name in names]
    if not bake:
        return [DEFAULT_NETWORK, *docs]
    for doc in docs:
        spec = doc["spec"]
        assert isinstance(spec, dict)
        spec.pop("rollout", None)
    # Another paid instance (``--instance baked``), on its own default network.
    network = {**DEFAULT_NETWORK, "metadata": {"name": "paid-baked"}}
    return [{**network, "spec": {"subnet": "10.91.0.0/20"}}, *docs]


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


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


def _names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(n)]


@dataclass
class Tool:
    """One tool's N services: how to converge them, and how to remove them all."""

    label: str
    converge: list[str]
    env: dict[str, str]
    names: list[str]
    state: Path | None = None  # paid's store: a cold run starts without one (a first deploy)

    def run(self) -> float:
        return _timed(lambda: _run(self.converge, self.env))


def _paid(podman: PodmanService, work: Path, n: int, tools: Path) -> Tool:
    """``paid`` as users install it (``pip install .`` into the tools venv, no test extras)."""
    names = _names("p", n)
    desired = work / f"paid-{n}"
    write_services(desired, *_paid_documents(names))
    env = {**os.environ, "PAID_PODMAN_URL": podman.url, "PAID_STATE_DIR": str(work / "state")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: byte-compiled
    argv = [str(tools / "paid"), "apply", str(desired), "--log-format", "json"]
    return Tool("paid apply", argv, env, names, state=work / "state")


def _paid_baked(podman: PodmanService, work: Path, n: int, tools: Path) -> Tool:
    """``paid apply`` of services that keep the default 10 s bake: a user's first deploy."""
    names = _names("b", n)
    desired = work / f"paid-baked-{n}"
    write_services(desired, *_paid_documents(names, bake=True))
    env = {**os.environ, "PAID_PODMAN_URL": podman.url, "PAID_STATE_DIR": str(work / "state-b")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    argv = [str(tools / "paid"), "apply", str(desired), "--log-format", "json"]
    argv += ["--instance", "baked"]
    return Tool("paid apply, default 10 s bake", argv, env, names, state=work / "state-b")


def _compose(podman: PodmanService, work: Path, n: int, tools: Path) -> Tool:
    names = _names("c", n)
    compose = work / f"compose-{n}.yml"
    services = {
        name: {"image": IMAGE, "command": ["sleep", "3600"], "container_name": name}
        for name in names
    }
    compose.write_text(yaml.safe_dump({"services": services}))
    argv = [str(tools / "podman-compose"), "-f", str(compose), "-p", f"bench{n}", "up", "-d"]
    return Tool("podman-compose up -d", argv, _storage_env(podman), names)


def _ansible(podman: PodmanService, work: Path, n: int, tools: Path) -> Tool:
    env = _storage_env(podman)
    names = _names("a", n)
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
                "loop": names,
            }
        ],
    }
    playbook.write_text(yaml.safe_dump([play]))
    env["ANSIBLE_PYTHON_INTERPRETER"] = str(tools / "python")
    env["ANSIBLE_LOCALHOST_WARNING"] = "false"
    env["ANSIBLE_INVENTORY_UNPARSED_WARNING"] = "false"
    argv = [str(tools / "ansible-playbook"), "-i", "localhost,", str(playbook)]
    return Tool("ansible podman_container", argv, env, names)


def _forget(podman: PodmanService, tool: Tool) -> None:
    """Before a cold run: none of the tool's containers, and (paid) no store: a first deploy."""
    _remove(podman, tool.names)
    if tool.state is not None:
        shutil.rmtree(tool.state, ignore_errors=True)


def _remove(podman: PodmanService, names: list[str]) -> None:
    for start in range(0, len(names), 100):
        podman.podman("rm", "--force", "--time", "0", *names[start : start + 100])


def interleaved(tools: list[Tool], reps: int, before: Callable[[Tool], None]) -> dict[str, float]:
    """Median wall time per tool, its runs interleaved with the others'."""
    times: dict[str, list[float]] = {t.label: [] for t in tools}
    for _ in range(reps):
        for tool in tools:
            before(tool)
            times[tool.label].append(tool.run())
    return {label: statistics.median(ts) for label, ts in times.items()}


def bench_in_process(podman: PodmanService, work: Path, n: int, reps: int) -> dict[str, float]:
    desired_dir = work / f"inproc-{n}"
    write_services(desired_dir, *_paid_documents(_names("i", n)))
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
        list_times: list[float] = []
        pass_times: list[float] = []
        for _ in range(reps):
            list_times.append(_timed(bare_list))
            pass_times.append(_timed(lambda: converge(desired, runtime=runtime, store=store)))
        runtime.requests.clear()
        report = converge(desired, runtime=runtime, store=store)
        assert ([], {}) == (report.results, report.rollouts), report
        calls = sum(runtime.requests.values())
        mutating = runtime.mutating_requests
        daemon_time, daemon_calls = _daemon_passes(runtime, store, desired, reps)
    runtime.close()
    return {
        "list": statistics.median(list_times),
        "pass": statistics.median(pass_times),
        "calls": calls,
        "mutating": mutating,
        "daemon": daemon_time,
        "daemon_calls": daemon_calls,
    }


def _daemon_passes(
    runtime: PodmanRuntime, store: Store, desired: DesiredState, reps: int
) -> tuple[float, float]:
    """A long-lived reconciler's full pass (what `paid run` does every resync): time, calls."""
    reconciler = wiring.build(runtime, store, Wants(desired=lambda: desired), mode=Mode.DAEMON)
    try:

        def one_pass() -> None:
            world = reconciler.observe(FULL)
            assert world is not None
            result = reconciler.reconcile(FULL, world)
            assert not result.enqueue, result

        one_pass()  # the first lists the networks; later ones need not
        times, calls = [], []
        for _ in range(reps):
            runtime.requests.clear()
            times.append(_timed(one_pass))
            calls.append(sum(runtime.requests.values()))
        return statistics.median(times), statistics.median(calls)
    finally:
        reconciler.close()


def _bare_list_seconds(podman: PodmanService, reps: int = 5) -> float:
    runtime = PodmanRuntime(podman.url)
    api = runtime._client.api
    try:
        return statistics.median(
            _timed(lambda: api.get("/containers/json", params={"all": "true"}).json())
            for _ in range(reps)
        )
    finally:
        runtime.close()


def _section(
    reps: int, pass_reps: int, rows_noop: list[str], rows_cold: list[str], rows_pass: list[str]
) -> str:
    return "\n".join(
        [
            "Each tool's containers are present while the others run; runs interleaved. "
            "`paid apply` is the default command: pre-flight included. paid's services are on "
            "its default network `paid` (DNS on), declared with a /20: a network without a "
            "subnet holds 253 containers. compose's are on its project network.",
            "",
            f"### No-op, whole process (median of {reps}, after a converging run)",
            "",
            "| N | tool | wall time | relative | one bare list call (all containers) "
            "| × the list call |",
            "|---|---|---|---|---|---|",
            *rows_noop,
            "",
            "### Cold, whole process: none of the tool's containers to all running",
            "",
            "Each paid run starts without its store, as a first deploy does: every "
            "service goes through the health gate. `paid apply` rows use "
            "`minReadySeconds: 0` (compose has no gate); the `default 10 s bake` row keeps "
            "paid's default, which is what a user's first `paid apply` pays: every service "
            "judged ready for 10 s before it counts as deployed.",
            "",
            "| N | tool | wall time | relative | runs (median) |",
            "|---|---|---|---|---|",
            *rows_cold,
            "",
            f"### The reconciler in process on a converged host (median of {pass_reps}, "
            "interleaved with the bare call)",
            "",
            "| N | bare list call | `converge` (what `paid apply` runs) | ratio "
            "| API calls | mutating | daemon full pass | its API calls |",
            "|---|---|---|---|---|---|---|---|",
            *rows_pass,
        ]
    )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tools-venv", type=Path, default=ROOT / ".venv-bench")
    parser.add_argument("--reps", type=int, default=3, help="whole-process repetitions")
    parser.add_argument("--pass-reps", type=int, default=30, help="in-process repetitions")
    parser.add_argument("--sizes", default="20,50", help="no-op sizes")
    parser.add_argument("--noop-paid-only", default="500", help="no-op sizes, paid alone")
    parser.add_argument("--cold-sizes", default="50", help="cold sizes, paid and compose")
    parser.add_argument("--cold-paid-only", default="500", help="cold sizes, paid alone")
    parser.add_argument("--pass-sizes", default="20,100,500")
    parser.add_argument("--with-ansible", action="store_true", help="add Ansible to the no-op")
    parser.add_argument("--no-write", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    bins = tools_venv(args.tools_venv) / "bin"
    sizes = [int(x) for x in args.sizes.split(",") if x]
    noop_alone = [int(x) for x in args.noop_paid_only.split(",") if x]
    cold = [int(x) for x in args.cold_sizes.split(",") if x]
    cold_alone = [int(x) for x in args.cold_paid_only.split(",") if x]
    pass_sizes = [int(x) for x in args.pass_sizes.split(",") if x]

    base = Path(tempfile.mkdtemp(prefix="paid-bench-"))
    podman = PodmanService.start(base)
    rows_noop: list[str] = []
    rows_cold: list[str] = []
    rows_pass: list[str] = []
    try:
        podman.build_images()
        work = base / "work"
        work.mkdir()
        for n, alone in [(n, False) for n in sizes] + [(n, True) for n in noop_alone]:
            podman.clean()
            makers = [_paid] if alone else [_paid, _compose]
            makers += [_ansible] if args.with_ansible and not alone else []
            tools = [make(podman, work, n, bins) for make in makers]
            for tool in tools:  # converge each once: every tool's containers are present
                tool.run()
            print(f"N={n}: no-op ...", file=sys.stderr, flush=True)
            medians = interleaved(tools, args.reps, before=lambda tool: None)
            listing = _bare_list_seconds(podman)
            paid_s = medians["paid apply"]
            for label, seconds in medians.items():
                ratio = "1.0×" if label == "paid apply" else f"{seconds / paid_s:.1f}× paid"
                rows_noop.append(
                    f"| {n} | {label} | {seconds:.2f} s | {ratio} | {listing * 1000:.0f} ms "
                    f"| {seconds / listing:.1f}× |"
                )
        for n, alone in [(n, False) for n in cold] + [(n, True) for n in cold_alone]:
            podman.clean()
            makers = [_paid] if alone else [_paid, _paid_baked, _compose]
            tools = [make(podman, work, n, bins) for make in makers]
            for tool in tools:
                tool.run()
            print(f"N={n}: cold ...", file=sys.stderr, flush=True)
            reps = 1 if alone else args.reps
            medians = interleaved(tools, reps, before=lambda tool: _forget(podman, tool))
            paid_s = medians["paid apply"]
            for label, seconds in medians.items():
                ratio = "1.0×" if label == "paid apply" else f"{seconds / paid_s:.1f}× paid"
                runs = f"{reps} run" + ("s" if reps > 1 else "")
                rows_cold.append(f"| {n} | {label} | {seconds:.1f} s | {ratio} | {runs} |")
        for n in pass_sizes:
            podman.clean()
            print(f"N={n}: in-process pass ...", file=sys.stderr, flush=True)
            r = bench_in_process(podman, work, n, args.pass_reps)
            rows_pass.append(
                f"| {n} | {r['list'] * 1000:.1f} ms | {r['pass'] * 1000:.1f} ms | "
                f"{r['pass'] / r['list']:.2f}× | {r['calls']:.0f} | {r['mutating']:.0f} | "
                f"{r['daemon'] * 1000:.1f} ms | {r['daemon_calls']:.0f} |"
            )
    finally:
        podman.stop()

    section = _section(args.reps, args.pass_reps, rows_noop, rows_cold, rows_pass)
    print(section)
    if not args.no_write:
        write_section("reconcile", "Converging (`bench/reconcile.py`)", section)


if __name__ == "__main__":
    main()
