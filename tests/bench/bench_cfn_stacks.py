"""Benchmark: biomage.iac.cfn_stacks against the original system's method, on the same emulator.

For N generated template variants (N = 10, 50, 200) it measures, against a moto server it starts
itself:
- ours: one `ansible-playbook` run of a play calling biomage.iac.cfn_stacks with all N stacks
  (deploy), then the same run again with nothing to change (re-check); wall time includes
  ansible-playbook's own start-up; API calls come from the module's client-side count;
- baseline: one `aws cloudformation deploy --no-fail-on-empty-changeset` process per template
  (awscli from the virtualenv, --endpoint-url), one after the other, as the original CI did; API
  calls are counted from `--debug` output on a sample of templates.
At N=200 the baseline is sampled (BASELINE_SAMPLE templates) and extrapolated per template; the
table says so. Targets (exit status 1 when one is missed):
- 50 unchanged stacks re-checked in under 10 s;
- at most 2 API calls per unchanged stack;
- at least 5x faster than the baseline for the re-check of 50 stacks.

`--repeat N [--size S] [--deploy-method direct|change_set]` measures soundness instead (issue 15:
one 200-stack deploy in seven left stacks CREATE_PENDING on the emulator): N times, on a fresh
emulator each time, deploy S (default 200) stacks and re-check them; a run passes when the deploy
creates S, the re-check finds S unchanged and every stack is CREATE_COMPLETE. Exit status 1 unless
N runs in N pass.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tools"))

from devstack import Stack  # noqa: E402
from devstack.core import temporary_env  # noqa: E402

BIN = Path(sys.executable).parent
SIZES = (10, 50, 200)
BASELINE_SAMPLE = 20  # templates actually deployed with the baseline method when N is larger
DEBUG_SAMPLE = 3  # baseline runs repeated with --debug to count their API calls
TARGET_RECHECK_SECONDS = 10.0
TARGET_CALLS_PER_STACK = 2.0
TARGET_SPEEDUP = 5.0
OPERATION = re.compile(r"Making request for OperationModel\(name=(\w+)\)")

PLAY = """---
- name: Benchmark biomage.iac.cfn_stacks
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Converge the generated stacks
      biomage.iac.cfn_stacks:
        environment: development
        group: "{{ bench_group }}"
        stacks: "{{ bench_stacks }}"
        deploy_method: "{{ bench_deploy_method | default('direct') }}"
"""


def template(index: int) -> str:
    return f"""---
AWSTemplateFormatVersion: "2010-09-09"
Description: Generated benchmark variant {index}
Parameters:
  Environment:
    Type: String
    AllowedValues: [development, staging, production]
Resources:
  DeadLetterQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName:
        Fn::Sub: "bench-{index}-${{Environment}}-dlq"
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName:
        Fn::Sub: "bench-{index}-${{Environment}}"
      VisibilityTimeout: {30 + index % 60}
      RedrivePolicy:
        deadLetterTargetArn:
          Fn::GetAtt: [DeadLetterQueue, Arn]
        maxReceiveCount: 5
Outputs:
  QueueUrl:
    Value:
      Ref: Queue
    Export:
      Name:
        Fn::Sub: "${{AWS::StackName}}-QueueUrl"
"""


def json_report(stdout: str) -> dict:
    """The json callback's report: the collection's progress and plan callbacks (ansible.cfg) print
    their lines to the same stdout, before and after it."""
    start = 0 if stdout.startswith("{") else stdout.index("\n{") + 1
    return json.JSONDecoder().raw_decode(stdout, start)[0]


def run_ours(
    work: Path, env: dict[str, str], size: int, files: list[Path], method: str = "direct"
) -> tuple[float, int, dict]:
    variables = {
        "bench_group": f"bench-{size}",
        "bench_deploy_method": method,
        "bench_stacks": [
            {
                "name": f"bench-ours-{size}-{i}",
                "template": str(path),
                "template_label": f"bench/{path.name}",
                "parameters": {"Environment": "development"},
            }
            for i, path in enumerate(files)
        ],
    }
    (work / "vars.json").write_text(json.dumps(variables))
    argv = [str(BIN / "ansible-playbook"), str(work / "play.yml"), "-i", "localhost,", "-e", f"@{work / 'vars.json'}"]
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    try:
        result = next(iter(json_report(proc.stdout)["plays"][0]["tasks"][0]["hosts"].values()))
    except (ValueError, LookupError, StopIteration):
        result = {}
    if proc.returncode != 0:
        # the module's message and the failed stacks, not the tail of a long per-stack result
        failed = [f"{s['name']}: {s['error']}" for s in result.get("stacks", []) if s.get("error")]
        detail = "\n".join([str(result.get("msg", "")), *failed]) if result else proc.stdout[-4000:]
        raise SystemExit(f"ansible-playbook failed (N={size}):\n{detail}\n{proc.stderr[-2000:]}")
    return elapsed, int(result["api_calls"]["total"]), result["summary"]


def baseline_argv(env: dict[str, str], name: str, path: Path, debug: bool) -> list[str]:
    argv = [
        str(BIN / "aws"),
        "cloudformation",
        "deploy",
        "--stack-name",
        name,
        "--template-file",
        str(path),
        "--parameter-overrides",
        "Environment=development",
        "--no-fail-on-empty-changeset",
        "--endpoint-url",
        env["AWS_ENDPOINT_URL"],
    ]
    return [*argv, "--debug"] if debug else argv


def run_baseline(env: dict[str, str], size: int, files: list[Path], phase: str) -> tuple[float, float, int]:
    """(seconds for all N, extrapolated when sampled; API calls per stack; templates measured)."""
    measured = files[: min(len(files), BASELINE_SAMPLE if size > 50 else len(files))]
    started = time.perf_counter()
    for i, path in enumerate(measured):
        proc = subprocess.run(
            baseline_argv(env, f"bench-base-{size}-{i}", path, False),
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        # moto refuses an empty change set with "No updates are to be performed." where AWS creates a
        # FAILED one that --no-fail-on-empty-changeset accepts: both mean "unchanged"
        if proc.returncode != 0 and "No updates are to be performed" not in proc.stderr:
            raise SystemExit(f"aws cloudformation deploy ({phase}) failed:\n{proc.stderr[-2000:]}")
    elapsed = time.perf_counter() - started
    total = elapsed * len(files) / len(measured)
    # the API calls of the same operation, counted on a few more runs with --debug: deploy of fresh
    # stacks for the deploy phase, re-deploy of the sampled (now unchanged) stacks for the re-check
    calls = []
    for i in range(DEBUG_SAMPLE):
        name = f"bench-base-{size}-debug-{i}" if phase == "deploy" else f"bench-base-{size}-{i}"
        proc = subprocess.run(
            baseline_argv(env, name, measured[i], True), env=env, capture_output=True, text=True, check=False
        )
        calls.append(len(OPERATION.findall(proc.stderr)))
    return total, sum(calls) / len(calls), len(measured)


def generate(folder: Path, size: int) -> list[Path]:
    folder.mkdir()
    files = []
    for i in range(size):
        path = folder / f"variant-{i:03d}.yaml"
        path.write_text(template(i))
        files.append(path)
    return files


def playbook_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        **stack_env,
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_NOCOLOR": "1",
        "PYTHONWARNINGS": "ignore",
    }


def stack_statuses(env: dict[str, str]) -> dict[str, int]:
    """How many stacks the emulator holds in each status (ListStacks pages through all of them)."""
    import boto3  # noqa: PLC0415 - only the repeat mode reads the emulator directly

    counts: dict[str, int] = {}
    with temporary_env(env):  # the stack's profile and endpoint
        cfn = boto3.client("cloudformation", endpoint_url=env["AWS_ENDPOINT_URL"])
        for page in cfn.get_paginator("list_stacks").paginate():
            for summary in page["StackSummaries"]:
                counts[summary["StackStatus"]] = counts.get(summary["StackStatus"], 0) + 1
    return counts


def repeat(runs: int, size: int, method: str) -> int:
    """`runs` deploys of `size` stacks, each on a fresh emulator; 0 when every one converged."""
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-cfn-repeat-") as tmp:
        work = Path(tmp)
        (work / "play.yml").write_text(PLAY)
        files = generate(work / f"templates-{size}", size)
        for run in range(1, runs + 1):
            stack = Stack(work / f"devstack-{run}", ["moto"])
            env = playbook_env(stack.up())
            try:
                started = time.perf_counter()
                try:
                    _s, _c, deploy = run_ours(work, env, size, files, method)
                    _s, _c, recheck = run_ours(work, env, size, files, method)
                    statuses = stack_statuses(env)
                    ok = deploy == {"create": size} and recheck == {"unchanged": size}
                    ok = ok and statuses == {"CREATE_COMPLETE": size}
                    detail = f"deploy {deploy}, re-check {recheck}, stacks {statuses}"
                except SystemExit as exc:  # run_ours's failure: the module's message
                    ok, detail = False, str(exc)[:2000]
                elapsed = time.perf_counter() - started
                if not ok:  # the emulator's side of it: its last traceback
                    log = stack.ctx.log_file("moto").read_text(encoding="utf-8", errors="replace")
                    start = log.rfind("Traceback (most recent call last)")
                    detail += "\nemulator log:\n" + (log[start : start + 6000] if start >= 0 else log[-3000:])
            finally:
                stack.down()
            results.append(ok)
            print(f"run {run:>2}/{runs}: {'PASS' if ok else 'FAIL'} {elapsed:6.1f} s  {detail}", flush=True)
    print(
        f"\n{sum(results)} runs in {runs} passed (N={size} stacks, deploy_method {method}, deploy + re-check, "
        "fresh emulator each run)"
    )
    return 0 if all(results) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=0, help="soundness mode: this many deploys (see above)")
    parser.add_argument("--size", type=int, default=200, help="stacks per deploy in --repeat mode")
    parser.add_argument("--deploy-method", choices=("direct", "change_set"), default="direct", help="in --repeat mode")
    args = parser.parse_args()
    if args.repeat:
        return repeat(args.repeat, args.size, args.deploy_method)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-cfn-") as tmp:
        work = Path(tmp)
        stack = Stack(work / "devstack", ["moto"])
        stack_env = stack.up()
        try:
            env = playbook_env(stack_env)
            (work / "play.yml").write_text(PLAY)
            for size in SIZES:
                files = generate(work / f"templates-{size}", size)
                deploy_s, deploy_calls, deploy_summary = run_ours(work, env, size, files)
                recheck_s, recheck_calls, recheck_summary = run_ours(work, env, size, files)
                if deploy_summary != {"create": size} or recheck_summary != {"unchanged": size}:
                    raise SystemExit(f"unexpected plan: deploy {deploy_summary}, re-check {recheck_summary}")
                base_deploy_s, base_deploy_calls, sampled = run_baseline(env, size, files, "deploy")
                base_recheck_s, base_recheck_calls, _sampled = run_baseline(env, size, files, "re-check")
                note = "" if sampled == size else f"baseline extrapolated from {sampled} of {size}"
                rows.append(("deploy", size, deploy_s, deploy_calls / size, base_deploy_s, base_deploy_calls, note))
                rows.append(
                    ("re-check", size, recheck_s, recheck_calls / size, base_recheck_s, base_recheck_calls, note)
                )
                print(f"  N={size} done", file=sys.stderr, flush=True)
        finally:
            stack.down()

    print("cfn_stacks (one ansible-playbook run) vs `aws cloudformation deploy` per template, same moto server")
    columns = ("ours s", 10), ("calls/stack", 13), ("baseline s", 12), ("calls/stack", 13), ("speedup", 9)
    header = f"{'phase':<9}{'N':>5}" + "".join(f"{name:>{width}}" for name, width in columns) + "  note"
    print(header)
    print("-" * len(header))
    for phase, size, ours, ours_calls, base, base_calls, note in rows:
        numbers = f"{ours:>10.2f}{ours_calls:>13.2f}{base:>12.2f}{base_calls:>13.2f}{base / ours:>8.1f}x"
        print(f"{phase:<9}{size:>5}{numbers}  {note}")

    recheck = {size: (ours, calls, base) for phase, size, ours, calls, base, _b, _n in rows if phase == "re-check"}
    checks = [
        (
            f"re-check of 50 unchanged stacks < {TARGET_RECHECK_SECONDS:.0f} s",
            f"{recheck[50][0]:.2f} s",
            recheck[50][0] < TARGET_RECHECK_SECONDS,
        ),
        (
            f"API calls per unchanged stack <= {TARGET_CALLS_PER_STACK:.0f}",
            ", ".join(f"N={n}: {v[1]:.2f}" for n, v in sorted(recheck.items())),
            all(v[1] <= TARGET_CALLS_PER_STACK for v in recheck.values()),
        ),
        (
            f"re-check of 50 stacks >= {TARGET_SPEEDUP:.0f}x faster than the baseline",
            f"{recheck[50][2] / recheck[50][0]:.1f}x",
            recheck[50][2] / recheck[50][0] >= TARGET_SPEEDUP,
        ),
    ]
    print("\ntarget".ljust(60) + "measured".ljust(40) + "result")
    for name, measured, ok in checks:
        print(f"{name:<59}{measured:<40}{'PASS' if ok else 'MISS'}")
    print(
        "\nours: wall time of `ansible-playbook` (start-up included), API calls counted by the module's client."
        "\nbaseline: one awscli process per template, API calls from --debug on a sample; on moto an unchanged"
        "\nre-deploy ends at CreateChangeSet (refused: no updates), on AWS it also waits on DescribeChangeSet."
    )
    return 0 if all(ok for _n, _m, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
