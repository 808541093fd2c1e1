"""playbooks/ci.yml against the session's local stack (moto + the GitHub stand-in): one OIDC role stack per
repository with a .ci.yaml, Actions variables, idempotence, honest check/diff, orphans and pruning, validation
before change, legacy secret clean-up after the variable is in place, and no token in the output."""

from __future__ import annotations

import ast
import base64
import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from nacl.public import PublicKey, SealedBox

from tests.lib import aws
from tests.lib.ansible_run import PlaybookResult, run_playbook

pytestmark = pytest.mark.slow
PLAYBOOK = "playbooks/ci.yml"
OWNER = "biomage-org"
ACCOUNT = "123456789012"
SEED = json.loads((Path(__file__).resolve().parents[2] / "tools/devstack/github_seed.json").read_text())
CI_FILES = {r["name"]: r["files"][".ci.yaml"] for r in SEED if ".ci.yaml" in r["files"]}
STACKS = ["biomage-ci-api", "biomage-ci-ui", "biomage-ci-worker"]
SUMMARY_LINE = re.compile(r"^\s+- '?(biomage-ci-\S+) (\w+) (\S+?)'?$", re.MULTILINE)
# tests of this module run in file order on the session stack; test_molecule.py (ci_privileges
# scenario) runs after this module and expects the seed's state, which every test restores


def token(env: dict[str, str]) -> str:
    return Path(env["GITHUB_TOKEN_FILE"]).read_text().strip()


def github(env: dict[str, str], method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        env["GITHUB_API_URL"] + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token(env)}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def set_file(env: dict[str, str], repo: str, text: str | None) -> None:
    """Push (or delete, with None) the repository's .ci.yaml on its default branch."""
    path = f"/_standin/files/{OWNER}/{repo}/.ci.yaml"
    status = github(env, "DELETE", path)[0] if text is None else github(env, "PUT", path, {"content": text})[0]
    assert status in (200, 204, 404)


def variable(env: dict[str, str], repo: str, name: str) -> str | None:
    status, body = github(env, "GET", f"/repos/{OWNER}/{repo}/actions/variables/{name}")
    return body["value"] if status == 200 else None


def secret_names(env: dict[str, str], repo: str) -> set[str]:
    return {s["name"] for s in github(env, "GET", f"/repos/{OWNER}/{repo}/actions/secrets")[1]["secrets"]}


def put_secret(env: dict[str, str], repo: str, name: str, value: str) -> None:
    public = github(env, "GET", f"/repos/{OWNER}/{repo}/actions/secrets/public-key")[1]
    sealed = SealedBox(PublicKey(base64.b64decode(public["key"]))).encrypt(value.encode())
    body = {"encrypted_value": base64.b64encode(sealed).decode(), "key_id": public["key_id"]}
    assert github(env, "PUT", f"/repos/{OWNER}/{repo}/actions/secrets/{name}", body)[0] in (201, 204)


def run(env: dict[str, str], **kwargs: Any) -> PlaybookResult:
    return run_playbook(PLAYBOOK, env=env, **kwargs)


def actions(result: PlaybookResult) -> dict[str, str]:
    return {m[1]: m[2] for m in SUMMARY_LINE.finditer(result.stdout)}


def live_stacks(devstack: dict[str, str]) -> dict[str, dict]:
    cfn = aws.client(devstack, "cloudformation")
    return {
        s["StackName"]: s
        for s in aws.all_stacks(cfn)
        if s["StackName"].startswith("biomage-ci-") and s["StackStatus"] != "DELETE_COMPLETE"
    }


def template_of(devstack: dict[str, str], stack: str) -> str:
    body = aws.client(devstack, "cloudformation").get_template(StackName=stack)["TemplateBody"]
    return body if isinstance(body, str) else json.dumps(body)


def restore_seed(env: dict[str, str]) -> None:
    for repo in ("api", "ui", "worker"):
        set_file(env, repo, CI_FILES[repo])
    for repo in ("iac", "pipeline"):
        set_file(env, repo, None)


@pytest.fixture(scope="module")
def applied(stack_ansible_env: dict[str, str], devstack: dict[str, str]) -> PlaybookResult:
    env = stack_ansible_env
    assert live_stacks(devstack) == {}, "this module expects a session stack without CI stacks"
    plan = run(env, check=True, diff=True).assert_ok()
    assert plan.total("changed") >= 3  # OIDC provider, stacks, variables
    assert set(actions(plan).items()) == {(s, "create") for s in STACKS}
    assert live_stacks(devstack) == {} and variable(env, "ui", "AWS_ROLE_ARN") is None, "check mode changed nothing"
    iam = aws.client(devstack, "iam")
    providers = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    assert not [p for p in providers if p["Arn"].endswith("/token.actions.githubusercontent.com")]
    return run(env).assert_ok()


def test_first_run_creates_one_role_stack_per_repository_with_a_ci_yaml(
    applied: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str]
) -> None:
    assert set(actions(applied).items()) == {(s, "create") for s in STACKS}
    stacks = live_stacks(devstack)
    assert sorted(stacks) == STACKS, "pipeline and iac have no .ci.yaml, so no stack"
    iam = aws.client(devstack, "iam")
    (provider,) = [
        p
        for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
        if p["Arn"].endswith("/token.actions.githubusercontent.com")
    ]
    assert provider["Arn"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=provider["Arn"])["ClientIDList"] == [
        "sts.amazonaws.com"
    ]
    for repo in ("api", "ui", "worker"):
        stack = stacks[f"biomage-ci-{repo}"]
        tags = {t["Key"]: t["Value"] for t in stack["Tags"]}
        assert tags["biomage:group"] == "ci" and tags["biomage:template"] == f"github.com/{OWNER}/{repo}/.ci.yaml"
        role_arn = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["RoleArn"]
        role = iam.get_role(RoleName=role_arn.rsplit("/", 1)[1])["Role"]
        assert role["Path"] == "/biomage/ci/" and role["MaxSessionDuration"] == 3600
        (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Federated": provider["Arn"]}
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Condition"] == {
            "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": [f"repo:{OWNER}/{repo}:ref:refs/heads/main"],
            }
        }
        policy = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="ecr-push")["PolicyDocument"]
        if isinstance(policy, str):  # moto 5 stores a CloudFormation inline policy as the Python repr of a dict
            policy = ast.literal_eval(policy)
        assert policy["Statement"][0]["Resource"] == f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/{repo}"
        assert variable(stack_ansible_env, repo, "AWS_ROLE_ARN") == role_arn
        assert variable(stack_ansible_env, repo, "AWS_REGION") == "eu-west-1"
    assert variable(stack_ansible_env, "pipeline", "AWS_ROLE_ARN") is None


def test_a_second_run_and_check_mode_after_apply_change_nothing(
    applied: PlaybookResult, stack_ansible_env: dict[str, str]
) -> None:
    again = run(stack_ansible_env).assert_ok()
    assert again.total("changed") == 0
    assert set(actions(again).values()) == {"unchanged"}
    check = run(stack_ansible_env, check=True, diff=True).assert_ok()
    assert check.total("changed") == 0


def test_a_changed_ci_yaml_shows_its_policy_diff_in_check_mode_and_changes_nothing(
    applied: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str]
) -> None:
    before = template_of(devstack, "biomage-ci-ui")
    arn = variable(stack_ansible_env, "ui", "AWS_ROLE_ARN")
    new_file = CI_FILES["ui"].replace("ecr:PutImage,", "ecr:PutImage, ecr:BatchGetImage,")
    new_repo_file = CI_FILES["ui"].replace("repository/ui", "repository/pipeline")
    try:
        set_file(stack_ansible_env, "ui", new_file)
        set_file(stack_ansible_env, "pipeline", new_repo_file)
        plan = run(stack_ansible_env, check=True, diff=True).assert_ok()
        assert actions(plan) == {
            "biomage-ci-api": "unchanged",
            "biomage-ci-ui": "update",
            "biomage-ci-worker": "unchanged",
            "biomage-ci-pipeline": "create",
        }
        assert re.search(r'^\+\s+"ecr:BatchGetImage",?$', plan.stdout, re.MULTILINE), plan.stdout[-4000:]
        assert "repo:biomage-org/pipeline:ref:refs/heads/main" in plan.stdout
        assert "variable pipeline AWS_ROLE_ARN create" in plan.stdout
        assert "variable ui AWS_ROLE_ARN unchanged" in plan.stdout
        assert template_of(devstack, "biomage-ci-ui") == before
        assert "biomage-ci-pipeline" not in live_stacks(devstack)
        assert variable(stack_ansible_env, "pipeline", "AWS_ROLE_ARN") is None
        assert variable(stack_ansible_env, "ui", "AWS_ROLE_ARN") == arn
    finally:
        restore_seed(stack_ansible_env)
    assert run(stack_ansible_env, check=True).assert_ok().total("changed") == 0


def test_an_invalid_ci_yaml_fails_before_any_change_naming_repository_and_field(
    applied: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str]
) -> None:
    before = template_of(devstack, "biomage-ci-ui")
    bad = CI_FILES["api"].replace(
        "Action: [ecr:BatchCheckLayerAvailability", "Action: ['*:*', ecr:BatchCheckLayerAvailability"
    )
    try:
        set_file(stack_ansible_env, "ui", CI_FILES["ui"].replace("ecr:PutImage,", "ecr:PutImage, ecr:BatchGetImage,"))
        set_file(stack_ansible_env, "api", bad)
        set_file(stack_ansible_env, "pipeline", "ci-policies:\n  - PolicyName: x\n")
        result = run(stack_ansible_env)
        assert result.returncode != 0
        assert "biomage-org/api:.ci.yaml: ci-policies[0].PolicyDocument.Statement[0].Action" in result.output
        assert "*:*" in result.output and "names every action of every service" in result.output
        assert "biomage-org/pipeline:.ci.yaml: ci-policies[0].PolicyDocument: missing" in result.output
        assert "Fix: list the actions CI needs" in result.output
        assert result.total("changed") == 0
        assert template_of(devstack, "biomage-ci-ui") == before, "the valid change was not applied either"
    finally:
        restore_seed(stack_ansible_env)


def test_a_removed_ci_yaml_leaves_an_orphan_until_pruned(
    applied: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str]
) -> None:
    try:
        set_file(stack_ansible_env, "worker", None)
        kept = run(stack_ansible_env).assert_ok()
        assert kept.total("changed") == 0
        assert "orphans: biomage-ci-worker (kept" in kept.stdout
        assert "biomage-ci-worker" in live_stacks(devstack)
        assert variable(stack_ansible_env, "worker", "AWS_ROLE_ARN") is not None

        plan = run(stack_ansible_env, check=True, extra_vars={"ci_privileges_prune": True}).assert_ok()
        assert actions(plan)["biomage-ci-worker"] == "delete"
        assert "biomage-ci-worker" in live_stacks(devstack)

        pruned = run(stack_ansible_env, extra_vars={"ci_privileges_prune": True}).assert_ok()
        assert actions(pruned)["biomage-ci-worker"] == "delete"
        assert sorted(live_stacks(devstack)) == ["biomage-ci-api", "biomage-ci-ui"]
        assert variable(stack_ansible_env, "worker", "AWS_ROLE_ARN") is None
        assert variable(stack_ansible_env, "worker", "AWS_REGION") is None
        assert "variable worker AWS_ROLE_ARN delete" in pruned.stdout
        assert deleted_role_variables(stack_ansible_env, devstack) == {}, "no variable names the deleted role"
    finally:
        restore_seed(stack_ansible_env)
    back = run(stack_ansible_env).assert_ok()
    assert actions(back)["biomage-ci-worker"] == "create"
    assert sorted(live_stacks(devstack)) == STACKS
    assert variable(
        stack_ansible_env,
        "worker",
        "AWS_ROLE_ARN",
    ) == next(
        o["OutputValue"] for o in live_stacks(devstack)["biomage-ci-worker"]["Outputs"] if o["OutputKey"] == "RoleArn"
    )


def test_a_container_repository_is_declared_pushable_and_kept_when_the_stack_goes(
    applied: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str]
) -> None:
    ecr = aws.client(devstack, "ecr")
    try:
        set_file(stack_ansible_env, "pipeline", "container-repository: true\n")
        created = run(stack_ansible_env).assert_ok()
        assert actions(created)["biomage-ci-pipeline"] == "create"
        (repository,) = ecr.describe_repositories(repositoryNames=["pipeline"])["repositories"]
        assert repository["imageTagMutability"] == "IMMUTABLE"
        # (scan on push is asserted on the template: moto drops CloudFormation's ScanOnPush spelling)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in live_stacks(devstack)["biomage-ci-pipeline"]["Outputs"]}
        assert outputs["RepositoryUri"] == repository["repositoryUri"]
        iam = aws.client(devstack, "iam")
        role = outputs["RoleArn"].rsplit("/", 1)[-1]
        policy = iam.get_role_policy(RoleName=role, PolicyName="container-repository-push")["PolicyDocument"]
        text = policy if isinstance(policy, str) else json.dumps(policy)
        assert repository["repositoryArn"] in text and "ecr:PutImage" in text
        assert run(stack_ansible_env).assert_ok().total("changed") == 0

        set_file(stack_ansible_env, "pipeline", None)
        pruned = run(stack_ansible_env, extra_vars={"ci_privileges_prune": True}).assert_ok()
        assert actions(pruned)["biomage-ci-pipeline"] == "delete"
        assert "biomage-ci-pipeline" not in live_stacks(devstack)
        # DeletionPolicy Retain: the images outlive the .ci.yaml
        assert ecr.describe_repositories(repositoryNames=["pipeline"])["repositories"]
    finally:
        restore_seed(stack_ansible_env)
        run(stack_ansible_env, extra_vars={"ci_privileges_prune": True}).assert_ok()
        ecr.delete_repository(repositoryName="pipeline", force=True)


def test_legacy_secrets_are_removed_only_when_asked_and_only_after_the_role_variable(
    applied: PlaybookResult, stack_ansible_env: dict[str, str]
) -> None:
    env = stack_ansible_env
    legacy = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    for repo in ("api", "ui", "worker", "pipeline"):
        for name in legacy:
            put_secret(env, repo, name, "legacy-value")
    put_secret(env, "ui", "OPERATOR_GITHUB_TOKEN", "ghp-legacy")
    put_secret(env, "ui", "UNRELATED", "keep-me")
    remove = {
        "ci_privileges_legacy_secrets_remove": True,
        "ci_privileges_legacy_token_secrets": ["OPERATOR_GITHUB_TOKEN"],
    }

    assert run(env).assert_ok().total("changed") == 0
    assert legacy <= secret_names(env, "ui"), "nothing is removed without the option"

    broken = run(env, extra_vars={**remove, "ci_privileges_role_variable": "GITHUB_NOT_ALLOWED"})
    assert broken.returncode != 0 and "variable name 'GITHUB_NOT_ALLOWED' is invalid" in broken.output
    assert legacy <= secret_names(env, "api"), "no secret is removed when the role variable could not be set"

    plan = run(env, check=True, diff=True, extra_vars=remove).assert_ok()
    assert plan.total("changed") == 1
    assert "secret ui OPERATOR_GITHUB_TOKEN delete" in plan.stdout
    assert "secret api AWS_SECRET_ACCESS_KEY delete" in plan.stdout
    assert legacy | {"OPERATOR_GITHUB_TOKEN"} <= secret_names(env, "ui")

    done = run(env, extra_vars=remove).assert_ok()
    assert done.total("changed") == 1
    assert secret_names(env, "ui") == {"UNRELATED"}
    assert secret_names(env, "api") == set() and secret_names(env, "worker") == set()
    assert secret_names(env, "pipeline") == legacy, "repositories without CI privileges are not touched"
    assert variable(env, "ui", "AWS_ROLE_ARN"), "the role variable is in place"
    assert run(env, extra_vars=remove).assert_ok().total("changed") == 0


def test_the_token_never_reaches_the_output(applied: PlaybookResult, stack_ansible_env: dict[str, str]) -> None:
    secret = token(stack_ansible_env)
    verbose = run(stack_ansible_env, check=True, diff=True, args=["-vvv"]).assert_ok()
    assert "ci_repos_info" in verbose.output and "github_actions_variable" in verbose.output
    assert secret not in verbose.output
    try:
        set_file(stack_ansible_env, "ui", "ci-policies: [\n")
        failed = run(stack_ansible_env, args=["-vvv"])
        assert failed.returncode != 0 and "biomage-org/ui:.ci.yaml: not valid YAML" in failed.output
        assert secret not in failed.output
    finally:
        restore_seed(stack_ansible_env)


def test_an_inventory_that_does_not_own_ci_privileges_stops_before_any_call(stack_ansible_env: dict[str, str]) -> None:
    result = run_playbook(
        "playbooks/ci.yml",
        "inventories/staging",
        env={**stack_ansible_env, "GITHUB_TOKEN": "not-used"},
        extra_vars={"biomage_aws_endpoint_url": "http://127.0.0.1:9"},
        timeout=300,
    )
    assert result.returncode != 0
    assert "inventories/staging does not converge CI privileges (ci_privileges_owner: false)" in result.output
    assert "Fix: run playbooks/ci.yml with the inventory that sets ci_privileges_owner: true" in result.output
    assert "TASK [biomage.iac.preflight" not in result.stdout


def deleted_role_variables(env: dict[str, str], devstack: dict[str, str]) -> dict[str, str]:
    """Every repository whose role variable names a CI role that does not exist: {repo: arn}."""
    iam = aws.client(devstack, "iam")
    existing = {r["Arn"] for r in iam.list_roles(PathPrefix="/biomage/ci/")["Roles"]}
    named = {repo: variable(env, repo, "AWS_ROLE_ARN") for repo in ("api", "ui", "worker", "pipeline", "iac")}
    return {repo: arn for repo, arn in named.items() if arn and arn not in existing}


def test_a_prune_that_stops_after_deleting_the_stack_leaves_no_variable_naming_the_deleted_role(
    applied: PlaybookResult, stack_ansible_env: dict[str, str], devstack: dict[str, str]
) -> None:
    env = stack_ansible_env
    fault = {"method": "DELETE", "path": f"/repos/{OWNER}/worker/actions/variables/AWS_ROLE_ARN", "status": 500}
    try:
        set_file(env, "worker", None)
        assert github(env, "POST", "/_standin/faults", {**fault, "count": 0})[0] == 201
        stopped = run(env, extra_vars={"ci_privileges_prune": "true"})
        assert stopped.returncode != 0
        assert "biomage-ci-worker" not in live_stacks(devstack), "the stack was deleted before the failure"
        output = " ".join(stopped.output.split())
        assert "Read back: deleting the variable AWS_ROLE_ARN of biomage-org/worker did not take effect" in output
        assert "Changed by this run before the failure: stack biomage-ci-worker (delete)" in output
        assert "A re-run reads the stacks and the repositories' settings back" in output
        assert "removes variables that name a deleted role" in output
        assert deleted_role_variables(env, devstack).keys() == {"worker"}
        assert github(env, "DELETE", "/_standin/faults")[0] in (200, 204)

        # the orphan is gone, so only the variable tells of it: kept and reported without prune
        kept = run(env).assert_ok()
        assert kept.total("changed") == 0
        assert "variables naming a deleted role: worker (kept: run with -e ci_privileges_prune=true" in kept.stdout
        plan = run(env, check=True, extra_vars={"ci_privileges_prune": "true"}).assert_ok()
        assert "variable worker AWS_ROLE_ARN delete" in plan.stdout
        assert deleted_role_variables(env, devstack).keys() == {"worker"}

        pruned = run(env, extra_vars={"ci_privileges_prune": "true"}).assert_ok()
        assert "variable worker AWS_ROLE_ARN delete" in pruned.stdout
        assert "variables naming a deleted role: worker (removed)" in pruned.stdout
        assert deleted_role_variables(env, devstack) == {}
        assert variable(env, "worker", "AWS_ROLE_ARN") is None and variable(env, "worker", "AWS_REGION") is None
        assert variable(env, "ui", "AWS_ROLE_ARN"), "the variables of existing roles are kept"
        again = run(env, extra_vars={"ci_privileges_prune": "true"}).assert_ok()
        assert again.total("changed") == 0
    finally:
        github(env, "DELETE", "/_standin/faults")
        restore_seed(env)
    back = run(env).assert_ok()
    assert actions(back)["biomage-ci-worker"] == "create"
    assert deleted_role_variables(env, devstack) == {}
