"""The release step (tools/release.py, biomage.iac.flux_release) against the local stack's GitHub
stand-in and AWS emulator: the IRSA role ARN read from CloudFormation, writes as the GitHub App,
concurrent releases into one repository without a lost or duplicated commit, each failure class
named with file, field and fix, sandboxes added and removed, check mode, and no secret in any output."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from devstack import Stack

from tests.lib import aws
from tests.lib.ansible_run import REPO_ROOT, ansible_env, run_playbook
from tests.lib.github import OWNER, call, commit_files
from tests.lib.releases import irsa_template

pytestmark = pytest.mark.slow
EXAMPLE = REPO_ROOT / "docs/examples/ui.flux.ci"
ACCOUNT = "123456789012"
REGISTRY = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"
DOMAIN = "scp-staging.biomage.test"
REPO = "releases-target"  # a repository of the stand-in holding releases/ only


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    stack = Stack(tmp_path_factory.mktemp("release-step"), ["moto", "github"])
    stack_env = stack.up()
    try:
        full = ansible_env(stack_env)
        status, body = call(full, "POST", "/_standin/repos", {"owner": OWNER, "name": REPO, "files": {
            "releases/staging/README.md": "written by the services' CI\n"}})  # fmt: skip
        assert status == 201, body
        cfn = aws.client(full, "cloudformation")
        for app in ("ui", "api", "worker"):
            for environment in ("staging", "production"):
                cfn.create_stack(
                    StackName=f"biomage-irsa-{app}-role-{environment}",
                    TemplateBody=irsa_template(app, environment),
                    Capabilities=["CAPABILITY_NAMED_IAM"],
                )
        yield full
    finally:
        stack.down()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("service") / ".flux.ci"
    path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def app_template(directory: Path, app: str) -> Path:
    """The example template for another app (its release name and image repository)."""
    namespace, release = yaml.safe_load_all(EXAMPLE.read_text(encoding="utf-8"))
    release["spec"]["releaseName"] = app
    release["spec"]["values"]["image"]["repository"] = app
    path = directory / f"{app}.flux.ci"
    path.write_text(yaml.safe_dump_all([namespace, release], sort_keys=False), encoding="utf-8")
    return path


def release(
    env: dict[str, str],
    *args: str,
    template: Path | None = None,
    commit: str = "a" * 40,
    app: str = "ui",
    environment: str = "staging",
    ref: str = "master",
) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable, str(REPO_ROOT / "tools/release.py"), "--app", app, "--environment", environment,
        "--ref", ref, "--commit", commit, "--ci-repo", f"{OWNER}/{app}", "--repo", REPO,
        "--domain", DOMAIN, "--template", str(template or EXAMPLE), *args,
    ]  # fmt: skip
    run_env = {"GITHUB_TOKEN": "must-not-be-used", **env}
    return subprocess.run(argv, env=run_env, capture_output=True, text=True, check=False, timeout=300)


def log(env: dict[str, str], path: str | None = None) -> list[dict[str, str]]:
    status, body = call(env, "GET", f"/_standin/log/{OWNER}/{REPO}" + (f"?path={path}" if path else ""))
    assert status == 200, body
    return body


def read(env: dict[str, str], path: str) -> str | None:
    status, body = call(env, "GET", f"/repos/{OWNER}/{REPO}/contents/{path}")
    if status == 404:
        return None
    return base64.b64decode(body["content"]).decode()


def secrets_of(env: dict[str, str]) -> list[str]:
    key = Path(env["GITHUB_APP_PRIVATE_KEY_FILE"]).read_text()
    body_lines = [line for line in key.splitlines() if line and not line.startswith("-----")]
    return [Path(env["GITHUB_TOKEN_FILE"]).read_text().strip(), *body_lines[:3], "ghs_"]


def assert_no_secret(env: dict[str, str], *outputs: str) -> None:
    for secret in secrets_of(env):
        for output in outputs:
            assert secret not in output


def test_release_reads_the_role_arn_and_writes_as_the_app(env: dict[str, str], template: Path) -> None:
    done = release(env, template=template)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["action"] == "create" and result["path"] == "releases/staging/ui.yaml"
    assert result["role_arn"] == f"arn:aws:iam::{ACCOUNT}:role/biomage-ui-staging-eu-west-1"
    written = list(yaml.safe_load_all(read(env, "releases/staging/ui.yaml")))
    values = written[1]["spec"]["values"]
    assert values["serviceAccount"]["iamRole"] == result["role_arn"]
    assert values["image"] == {"registry": REGISTRY, "repository": "ui", "tag": "master-aaaaaaa"}
    assert values["kubernetes"]["env"] == "staging" and written[0]["metadata"]["name"] == "ui-master"
    assert "FILLED_IN_BY_CI" not in read(env, "releases/staging/ui.yaml")
    head = log(env, "releases/staging/ui.yaml")[0]
    assert head["author"] == "biomage-release[bot]" and head["sha"] == result["commit"]

    again = release(env, template=template)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["action"] == "unchanged"
    assert log(env, "releases/staging/ui.yaml")[0]["sha"] == head["sha"]  # no commit
    assert_no_secret(env, done.stdout, done.stderr, again.stdout, again.stderr)


def test_check_mode_shows_the_diff_and_pushes_nothing(env: dict[str, str], template: Path) -> None:
    before = log(env)[0]["sha"]
    planned = release(env, "--check", template=template, commit="b" * 40)
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["action"] == "update"
    assert "-    tag: master-aaaaaaa\n+    tag: master-bbbbbbb" in planned.stderr.replace("      ", "    ")
    assert log(env)[0]["sha"] == before


def test_each_failure_class_names_file_field_and_fix(env: dict[str, str], tmp_path: Path) -> None:
    namespace, base = yaml.safe_load_all(EXAMPLE.read_text(encoding="utf-8"))

    def broken(change: Any) -> Path:
        doc = json.loads(json.dumps(base))
        change(doc)
        path = tmp_path / f"t{len(list(tmp_path.iterdir()))}.flux.ci"
        path.write_text(yaml.safe_dump_all([namespace, doc], sort_keys=False), encoding="utf-8")
        return path

    cases = {
        # bad schema: a field the HelmRelease CRD does not have
        "spec.intervl": (lambda d: d["spec"].update(intervl="5m"), "did you mean"),
        # unknown value key of charts/nodejs
        "spec.values.ingress.subdomian": (lambda d: d["spec"]["values"]["ingress"].update(subdomian="x"), "Fix:"),
        # missing chart
        "spec.chart.spec.chart": (lambda d: d["spec"]["chart"]["spec"].update(chart="./charts/nope"), "Fix:"),
        # a placeholder the CI does not know
        "spec.values.extra": (lambda d: d["spec"]["values"].update(extra="FILLED_IN_BY_CI"), "FILLED_IN_BY_CI"),
    }
    before = log(env)[0]["sha"]
    for field, (change, words) in cases.items():
        done = release(env, template=broken(change))
        assert done.returncode == 1, (field, done.stdout)
        assert "releases/staging/ui.yaml" in done.stderr and field in done.stderr and "Fix:" in done.stderr, done.stderr
        assert words in done.stderr, (field, done.stderr)
    # the wrong environment's role ARN
    wrong = release(env, "--role-arn", f"arn:aws:iam::{ACCOUNT}:role/biomage-ui-production-eu-west-1")
    assert wrong.returncode == 1
    assert "spec.values.serviceAccount.iamRole" in wrong.stderr and "biomage-irsa-ui-role-staging" in wrong.stderr
    # no IRSA stack for the app
    missing = release(env, app="nostack")
    assert missing.returncode == 1 and "biomage-irsa-nostack-role-staging does not exist" in missing.stderr
    assert "Fix:" in missing.stderr
    assert log(env)[0]["sha"] == before  # nothing was written


def test_a_sandbox_is_added_then_removed(env: dict[str, str], template: Path) -> None:
    added = release(env, "--sandbox", "feat-x", template=template, ref="feat-x")
    assert added.returncode == 0, added.stderr
    text = read(env, "releases/staging/ui-feat-x.yaml")
    assert text is not None
    docs = list(yaml.safe_load_all(text))
    assert (
        docs[0]["metadata"]["name"] == "ui-feat-x" and docs[1]["spec"]["values"]["ingress"]["subdomain"] == "ui-feat-x"
    )
    removed = release(env, "--sandbox", "feat-x", "--state", "absent", ref="feat-x")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["action"] == "delete"
    assert read(env, "releases/staging/ui-feat-x.yaml") is None
    again = release(env, "--sandbox", "feat-x", "--state", "absent", ref="feat-x")
    assert json.loads(again.stdout)["action"] == "unchanged"
    refused = release(env, "--state", "absent")
    assert refused.returncode == 1 and "state absent removes a sandbox's release" in refused.stderr


def test_concurrent_releases_land_exactly_once(env: dict[str, str], tmp_path: Path) -> None:
    """20 apps and 5 releases of one app at once: every change lands once, none is lost, and the
    same app's file holds the last of its commits."""
    before = {c["sha"] for c in log(env)}
    apps = [f"svc{n:02d}" for n in range(20)]
    templates = {app: app_template(tmp_path, app) for app in [*apps, "hot"]}
    role = f"arn:aws:iam::{ACCOUNT}:role/biomage-{{app}}-staging-eu-west-1"
    jobs = [(app, "c" * 40) for app in apps] + [("hot", f"{n}" * 40) for n in range(1, 6)]

    def one(job: tuple[str, str]) -> subprocess.CompletedProcess[str]:
        app, commit = job
        return release(env, "--role-arn", role.format(app=app), "--image-registry", REGISTRY,
                       template=templates[app], app=app, commit=commit)  # fmt: skip

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(one, jobs))
    for (app, _commit), done in zip(jobs, results, strict=True):
        assert done.returncode == 0, (app, done.stderr)
    outcomes = [json.loads(done.stdout) for done in results]
    new = [c for c in log(env) if c["sha"] not in before]
    made = [o["commit"] for o in outcomes if o["commit"]]
    # every commit a step reports is on main, once; main has no other new commit
    assert sorted(c["sha"] for c in new) == sorted(made)
    assert len(set(made)) == len(made)
    for app in apps:
        assert [c["subject"] for c in log(env, f"releases/staging/{app}.yaml")] == [
            f"Release {app} master-ccccccc to staging ({OWNER}/{app}@cccccccccccc)"
        ]
        assert "tag: master-ccccccc" in read(env, f"releases/staging/{app}.yaml")
    hot = log(env, "releases/staging/hot.yaml")
    assert len(hot) == 5  # five different tags: five commits, none lost
    last_tag = hot[0]["subject"].split()[2]
    assert f"tag: {last_tag}\n" in read(env, "releases/staging/hot.yaml")
    hot_outcomes = [o for (app, _c), o in zip(jobs, outcomes, strict=True) if app == "hot"]
    assert sorted(o["commit"] for o in hot_outcomes) == sorted(c["sha"] for c in hot)
    assert all(c["author"] == "biomage-release[bot]" for c in new)


def test_a_push_landing_meanwhile_is_kept(env: dict[str, str], template: Path) -> None:
    """A commit by someone else between the step's read and write: the step retries on it."""
    other = commit_files(env, {"releases/staging/README.md": "changed by a person\n"}, repo=REPO)
    done = release(env, template=template, commit="d" * 40)
    assert done.returncode == 0, done.stderr
    assert read(env, "releases/staging/README.md") == "changed by a person\n"
    assert other in [c["sha"] for c in log(env)]


def test_the_playbook_runs_the_same_step(env: dict[str, str], template: Path) -> None:
    extra = {
        "release_app": "ui", "release_environment": "staging", "release_ref": "master",
        "release_commit": "e" * 40, "release_ci_repo": f"{OWNER}/ui", "release_template": str(template),
        "release_domain": DOMAIN, "release_repo": REPO,
    }  # fmt: skip
    planned = run_playbook("playbooks/release.yml", "localhost,", env=env, check=True, diff=True, extra_vars=extra)
    planned.assert_ok()
    assert "+    tag: master-eeeeeee" in planned.stdout.replace("      ", "    ")
    assert "master-eeeeeee" not in (read(env, "releases/staging/ui.yaml") or "")
    applied = run_playbook("playbooks/release.yml", "localhost,", env=env, extra_vars=extra).assert_ok()
    assert re.search(r"releases/staging/ui.yaml: (create|update) \(commit", applied.stdout)
    assert "tag: master-eeeeeee" in read(env, "releases/staging/ui.yaml")
    assert_no_secret(env, planned.stdout, applied.stdout)


def test_a_personal_token_is_not_an_identity(env: dict[str, str], template: Path) -> None:
    without_app = {k: v for k, v in env.items() if not k.startswith("GITHUB_APP_")}
    token = Path(env["GITHUB_TOKEN_FILE"]).read_text().strip()
    done = release({**without_app, "GITHUB_TOKEN": token}, template=template, commit="f" * 40)
    assert done.returncode == 1 and "release GitHub App only" in done.stderr
    assert token not in done.stderr + done.stdout
    assert os.environ.get("GITHUB_APP_PRIVATE_KEY") is None
