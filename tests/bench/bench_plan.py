"""Benchmark (issue 16): the plan of an unchanged development environment.

On a local stack it starts itself, converges `playbooks/site.yml` once, then measures:
- the plan: `site.yml --check --diff`, wall time, median of RUNS (and the number of tasks it ran);
- the same plan with `ansible_connection=ansible.builtin.local`: every module run a new Python, without
  the inventories' fork server (biomage.iac.forkserver), run after each plan run;
- the engine's floor: a play of as many no-op tasks (`ansible.builtin.debug`, no module transfer);
- the API calls alone: the reads a plan makes, in one Python process with one client per API (STS
  caller identity, DescribeStacks and GetTemplate of every stack, the Kubernetes objects of the
  ingress, cert-manager and Flux namespaces), an approximation of the plan's own API floor.
Target (issue 16): the plan's median at or under 15 s. Exit status 1 when it is missed.
BIOMAGE_BENCH_RUNS overrides RUNS (3).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tools"))
sys.path.insert(0, str(REPO_ROOT))

from devstack import Stack  # noqa: E402
from devstack.components import DEFAULT_COMPONENTS  # noqa: E402

from tests.lib.ansible_run import ansible_env  # noqa: E402
from tests.lib.aws import all_stacks  # noqa: E402

BIN = Path(sys.executable).parent
RUNS = int(os.environ.get("BIOMAGE_BENCH_RUNS", "3"))
TARGET_SECONDS = 15.0
NAMESPACES = ("traefik", "cert-manager", "flux-system")


def playbook(env: dict[str, str], *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ansible-playbook {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return took, done.stdout


def noop_play(tasks: int) -> str:
    lines = ["---", "- name: No-op tasks", "  hosts: localhost", "  connection: local", "  gather_facts: false",
             "  tasks:"]  # fmt: skip
    for index in range(tasks):
        lines += [
            f"    - name: No-op {index}",
            "      ansible.builtin.debug:",
            "        msg: noop",
            "        verbosity: 4",
        ]
    return "\n".join(lines) + "\n"


def api_reads(stack_env: dict[str, str]) -> tuple[float, int]:
    """Seconds and number of calls for the plan's reads, one client per API, in this process."""
    import boto3  # noqa: PLC0415 - measured, imported after the stack is up
    from kubernetes import client, config  # noqa: PLC0415

    os.environ.update({k: v for k, v in stack_env.items() if k.startswith("AWS_")})
    started = time.perf_counter()
    calls = 0
    session = boto3.session.Session(region_name=stack_env.get("AWS_REGION", "eu-west-1"))
    endpoint = stack_env.get("AWS_ENDPOINT_URL") or None
    session.client("sts", endpoint_url=endpoint).get_caller_identity()
    cfn = session.client("cloudformation", endpoint_url=endpoint)
    stacks = all_stacks(cfn)
    calls += 2
    for item in stacks:
        cfn.get_template(StackName=item["StackName"])
        calls += 1
    api = config.new_client_from_config(config_file=stack_env["KUBECONFIG"])
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    for namespace in NAMESPACES:
        core.list_namespaced_config_map(namespace)
        core.list_namespaced_service(namespace)
        core.list_namespaced_secret(namespace)
        apps.list_namespaced_deployment(namespace)
        calls += 4
    return time.perf_counter() - started, calls


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        stack = Stack(Path(tmp) / "stack", list(DEFAULT_COMPONENTS))
        stack.stop_with_owner()  # an interrupted benchmark leaves no server behind
        stack_env = stack.up()
        try:
            env = ansible_env(stack_env)
            playbook(env, "playbooks/site.yml")  # converge once: the plan is of an unchanged environment
            plans, locals_, tasks = [], [], 0
            for _run in range(RUNS):  # each run beside one with ansible.builtin.local, on the same machine load
                took, out = playbook(env, "playbooks/site.yml", "--check", "--diff")
                plans.append(took)
                tasks = out.count("\nTASK [")
                local = ("-e", "ansible_connection=ansible.builtin.local")
                locals_.append(playbook(env, "playbooks/site.yml", "--check", "--diff", *local)[0])
            play = Path(tmp) / "noop.yml"
            play.write_text(noop_play(tasks))
            floors = [playbook(env, "-i", "localhost,", str(play))[0] for _run in range(RUNS)]
            reads = [api_reads(stack_env) for _run in range(RUNS)]
        finally:
            stack.down()
    median = statistics.median(plans)
    verdict = "met" if median <= TARGET_SECONDS else "MISSED"
    print(f"site.yml --check --diff of an unchanged development environment, {tasks} tasks, median of {RUNS}")
    print(f"{'measure':<52} {'measured':>10} {'target':>10}  result")
    print(f"{'the plan (site.yml --check --diff)':<52} {median:>9.2f}s {TARGET_SECONDS:>9.1f}s  {verdict}")
    print(f"{'the same plan without the fork server (local)':<52} {statistics.median(locals_):>9.2f}s {'':>10}")
    print(f"{f'the engine floor ({tasks} no-op tasks)':<52} {statistics.median(floors):>9.2f}s {'':>10}")
    label = f"the plan's API reads alone ({reads[0][1]} calls, one process)"
    print(f"{label:<52} {statistics.median(r[0] for r in reads):>9.2f}s {'':>10}")
    return 0 if median <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
