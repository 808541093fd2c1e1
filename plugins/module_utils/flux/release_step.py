# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release step of a service's CI: fill its ``.flux.ci`` template, check the result, and write
``releases/<env>/<app>.yaml`` (a sandbox: ``releases/staging/<app>-<sandbox>.yaml``) into the IaC
repository through GitHub's contents API, as the release GitHub App.

Writes are optimistic: each carries the blob ``sha`` the step read, so a write that raced another
one is refused by GitHub (409, or 422 when the file appeared meanwhile) instead of overwriting it;
the step then reads the new head and tries again (bounded, with jittered backoff). Each file is one
commit on top of whatever landed before, so nobody's change is lost, and content that is already
there makes no commit. Used by the ``biomage.iac.flux_release`` module and ``tools/release.py``.

Every file it writes holds, besides the template's Namespace and HelmRelease, the ServiceAccount
``release-deployer`` of the release namespace and its RoleBinding to the platform's ClusterRole
``biomage-release-deployer`` (:func:`.lockdown.with_deployer`): helm-controller installs the release
as that account (Flux's multi-tenancy lockdown, docs/tenants.md).
"""

from __future__ import annotations

import difflib
import random
import re
import time
from dataclasses import dataclass

from ansible_collections.biomage.iac.plugins.module_utils import aws, safe_yaml
from ansible_collections.biomage.iac.plugins.module_utils import plan as plan_entries
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError
from ansible_collections.biomage.iac.plugins.module_utils.flux import lockdown, releases
from ansible_collections.biomage.iac.plugins.module_utils.flux.documents import ReleaseError
from ansible_collections.biomage.iac.plugins.module_utils.github.client import GitHubError

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - reported by safe_yaml
    HAS_YAML = False

PLACEHOLDER = releases.PLACEHOLDER
ENVIRONMENTS = releases.ENVIRONMENTS
SANDBOX_ENVIRONMENT = "staging"
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
CI_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$")
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
HEADER = (
    "# Written by the release step of {ci_repo} (biomage.iac.flux_release) from its .flux.ci.\n"
    "# Do not edit: the next release overwrites it (docs/releases.md).\n"
)
CONFLICT_STATUSES = (409, 422)
DEFAULT_ATTEMPTS = 10
BACKOFF_BASE = 0.2
BACKOFF_CAP = 5.0


class ReleaseStepError(BiomageError):
    """The release step cannot run, or its release does not pass the checks."""


def irsa_stack_name(app, environment):
    """The IRSA stack whose ``RoleArn`` output is the app's role in ``environment`` (roles/irsa)."""
    return f"biomage-irsa-{app}-role-{environment}"


@dataclass
class Release:
    """Everything the CI knows about one release."""

    app: str
    environment: str
    ref: str
    commit: str
    ci_repo: str
    image_tag: str = None
    image_registry: str = None
    role_arn: str = None
    domain: str = None
    sandbox: str = None

    def check(self):
        problems = []
        if not NAME.match(self.app or "") or len(self.app) > 40:
            problems.append(("app", f"{self.app!r} is not a DNS label of at most 40 characters", "e.g. ui"))
        if self.environment not in ENVIRONMENTS:
            problems.append(("environment", f"{self.environment!r} is not one of {', '.join(ENVIRONMENTS)}", None))
        if self.sandbox is not None:
            if not NAME.match(self.sandbox) or len(self.app) + 1 + len(self.sandbox) > 63:
                problems.append(("sandbox", f"{self.sandbox!r} is not a DNS label (with the app, 63 at most)", None))
            if self.environment != SANDBOX_ENVIRONMENT:
                problems.append(("sandbox", f"sandboxes live in {SANDBOX_ENVIRONMENT}, not {self.environment}", None))
        if not REF.match(self.ref or ""):
            problems.append(("ref", f"{self.ref!r} is not a git ref name", "the branch, e.g. master"))
        if not COMMIT.match(self.commit or ""):
            problems.append(("commit", f"{self.commit!r} is not a commit sha", "GITHUB_SHA"))
        if not CI_REPO.match(self.ci_repo or ""):
            problems.append(("ci_repo", f"{self.ci_repo!r} is not owner/name", "GITHUB_REPOSITORY"))
        if problems:
            raise ReleaseStepError(
                "the release step's inputs are wrong: "
                + "; ".join(f"{name}: {what}" + (f" ({fix})" if fix else "") for name, what, fix in problems)
                + ".",
                fix="pass the CI's values (docs/releases.md, the release step).",
            )

    @property
    def name(self):
        """The release's name: its Namespace and HelmRelease (``ui-master``, ``ui-<sandbox>``)."""
        return f"{self.app}-{self.sandbox or _ref_label(self.ref)}"

    @property
    def path(self):
        if self.sandbox:
            return f"releases/{SANDBOX_ENVIRONMENT}/{self.app}-{self.sandbox}.yaml"
        return f"releases/{self.environment}/{self.app}.yaml"

    @property
    def tag(self):
        return self.image_tag or f"{_ref_label(self.ref)}-{self.commit[:7]}"

    @property
    def subdomain(self):
        return f"{self.app}-{self.sandbox}" if self.sandbox else self.app


def _ref_label(ref):
    """A ref as a DNS label part: ``feature/x`` -> ``feature-x``."""
    return re.sub(r"[^a-z0-9-]+", "-", ref.lower()).strip("-")[:40] or "ref"


# --- filling the template --------------------------------------------------------------------


def _set(node, keys, value, filled):
    """Set ``node[keys...]`` to ``value`` where it says FILLED_IN_BY_CI; record the field."""
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return
    if node.get(keys[-1]) == PLACEHOLDER and value is not None:
        node[keys[-1]] = value
        filled.append(".".join(keys))


def fill(template_text, release, source=".flux.ci"):
    """The documents of ``template_text`` with every CI field filled in (``filled``: the fields set).
    A FILLED_IN_BY_CI value the step does not know stays, and the checks name it."""
    documents = [d for d in safe_yaml.load_all(template_text, source) if d is not None]
    if not documents:
        raise ReleaseStepError(f"{source} holds no object.", fix="see docs/examples/ui.flux.ci")
    filled = []
    for doc in documents:
        if not isinstance(doc, dict):
            continue
        kind = doc.get("kind")
        if kind == "Namespace":
            _set(doc, ("metadata", "name"), release.name, filled)
            _set(doc, ("metadata", "labels", "sandboxId"), release.sandbox or release.ref, filled)
            continue
        _set(doc, ("metadata", "name"), release.name, filled)
        _set(doc, ("metadata", "namespace"), release.name, filled)
        _set(doc, ("metadata", "annotations", "biomage.net/ci-repo"), release.ci_repo, filled)
        _set(doc, ("metadata", "annotations", "biomage.net/ci-sha"), release.commit, filled)
        if kind != "HelmRelease":
            continue
        values = ("spec", "values")
        _set(doc, (*values, "biomageCi", "repo"), release.ci_repo, filled)
        _set(doc, (*values, "biomageCi", "ref"), release.sandbox or release.ref, filled)
        _set(doc, (*values, "biomageCi", "sandboxId"), release.sandbox, filled)
        _set(doc, (*values, "image", "registry"), release.image_registry, filled)
        _set(doc, (*values, "image", "tag"), release.tag, filled)
        _set(doc, (*values, "kubernetes", "env"), release.environment, filled)
        _set(doc, (*values, "serviceAccount", "iamRole"), release.role_arn, filled)
        _set(doc, (*values, "ingress", "domainName"), release.domain, filled)
        _set(doc, (*values, "ingress", "subdomain"), release.subdomain, filled)
    return documents, filled


def render(documents, release):
    body = yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False, explicit_start=True)
    return HEADER.format(ci_repo=release.ci_repo) + body


def check(documents, release, checkout, template_label=".flux.ci"):
    """Raise ReleaseStepError naming every finding (file, field, fix) of the filled release."""
    try:
        checker = releases.ReleaseChecker(checkout)
    except ReleaseError as exc:
        raise ReleaseStepError(
            f"cannot check the release: {exc}",
            fix="give checkout: a checkout of the IaC repository (charts/ and tools/crds/generated)",
        ) from exc
    label = f"{release.path} (from {release.ci_repo}'s {template_label})"
    report = checker.check_documents(documents, release.environment, label)
    errors = report.errors
    if errors:
        raise ReleaseStepError(
            f"the release does not pass the checks ({len(errors)} finding(s)): " + " | ".join(map(str, errors)),
            fix="each finding names its field and fix; change .flux.ci or the step's inputs, not releases/",
            findings=[finding.as_dict() for finding in errors],
        )
    return [finding.as_dict() for finding in report.findings]


# --- the role ARN ------------------------------------------------------------------------------


def role_arn_from_stack(cfn, settings, app, environment):
    """The ``RoleArn`` output of the app's IRSA stack in ``environment`` (a CloudFormation client)."""
    stack = irsa_stack_name(app, environment)
    try:
        with aws.aws_errors(settings, f"read the outputs of stack {stack}", needs="cloudformation:DescribeStacks"):
            stacks = cfn.describe_stacks(StackName=stack)["Stacks"]
    except aws.AwsError as exc:
        if exc.details.get("error_code") == "ValidationError" and "does not exist" in str(exc):
            raise ReleaseStepError(
                f"stack {stack} does not exist: {app} has no IRSA role in {environment}.",
                fix=f"add {app} to the irsa role's apps and converge {environment} (playbooks/site.yml), "
                "or give role_arn",
            ) from exc
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in (stacks[0].get("Outputs") or [])} if stacks else {}
    if "RoleArn" not in outputs:
        raise ReleaseStepError(
            f"stack {stack} has no RoleArn output.",
            fix=f"converge {environment} with this collection's cf/irsa-*-role.yaml templates",
        )
    return outputs["RoleArn"]


def registry_of_account(sts, settings):
    """``<account>.dkr.ecr.<region>.amazonaws.com`` of the caller's account."""
    with aws.aws_errors(settings, "read the caller's account", needs="sts:GetCallerIdentity"):
        account = sts.get_caller_identity()["Account"]
    return f"{account}.dkr.ecr.{settings['region']}.amazonaws.com"


# --- writing ------------------------------------------------------------------------------------


def diff(path, before, after):
    return {
        "before": before or "",
        "after": after or "",
        "before_header": f"{path} (in the repository)" if before is not None else "(no file)",
        "after_header": f"{path} (the release)" if after is not None else "(removed)",
    }


def unified_diff(path, before, after):
    lines = difflib.unified_diff(
        (before or "").splitlines(keepends=True),
        (after or "").splitlines(keepends=True),
        fromfile=f"a/{path}" if before is not None else "/dev/null",
        tofile=f"b/{path}" if after is not None else "/dev/null",
    )
    return "".join(lines)


def _is_conflict(exc):
    if exc.status == 409:
        return True
    # 422: the file appeared (or vanished) since it was read, so "sha" is missing or wrong
    return exc.status == 422 and "sha" in str(exc).lower()


def write(client, owner, repo, path, text, message, check_mode=False, attempts=DEFAULT_ATTEMPTS, sleep=None, rng=None):
    """Converge ``path`` to ``text`` (None: absent) on the default branch.

    Returns ``(action, before, commit, conflicts)``: action create/update/delete/unchanged, the
    content found last, the new commit (None when none was made) and the conflicts met.
    """
    sleep = sleep or time.sleep
    rng = rng or random.SystemRandom()
    conflicts = 0
    for attempt in range(attempts):
        found = client.get_file_with_sha(owner, repo, path)
        before, sha = found if found is not None else (None, None)
        if text is None:
            action = "unchanged" if before is None else "delete"
        elif before == text:
            action = "unchanged"
        else:
            action = "create" if before is None else "update"
        if action == "unchanged" or check_mode:
            return action, before, None, conflicts
        try:
            if action == "delete":
                commit = client.delete_file(owner, repo, path, message, sha)
            else:
                commit = client.put_file(owner, repo, path, text, message, sha=sha)
            return action, before, commit, conflicts
        except GitHubError as exc:
            raced = _is_conflict(exc) or (action == "delete" and exc.status == 404)
            if not raced:
                raise
            conflicts += 1
            if attempt + 1 < attempts:
                # full jitter: concurrent steps spread out instead of colliding again
                sleep(rng.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
    raise ReleaseStepError(
        f"{path} changed under the release step {conflicts} times in a row: gave up.",
        fix="run the step again (other releases of this file keep landing); nothing was overwritten",
        conflicts=conflicts,
    )


def commit_message(release, action):
    verb = {"delete": "Remove", "create": "Add"}.get(action, "Release")
    where = f"sandbox {release.sandbox}" if release.sandbox else release.environment
    if action == "delete":
        return f"{verb} {release.app} from {where} ({release.ci_repo})"
    return f"{verb} {release.app} {release.tag} to {where} ({release.ci_repo}@{release.commit[:12]})"


def run(
    client,
    owner,
    repo,
    release,
    template_text,
    checkout,
    state="present",
    check_mode=False,
    attempts=DEFAULT_ATTEMPTS,
    sleep=None,
):
    """The whole step; a dict result (``changed``, ``action``, ``path``, ``commit``, ``plan``, ...)."""
    release.check()
    if state == "absent" and not release.sandbox:
        raise ReleaseStepError(
            f"state absent removes a sandbox's release; {release.path} is {release.app}'s {release.environment} "
            "release.",
            fix="give sandbox (releases of an environment are removed by a reviewed change to this repository)",
        )
    text, findings, filled = None, [], []
    if state == "present":
        documents, filled = fill(template_text, release)
        # helm-controller's account of the release namespace and its RoleBinding (docs/tenants.md): the platform's,
        # added to every release file so that the services' templates need not change
        documents = lockdown.with_deployer(documents)
        findings = check(documents, release, checkout)
        text = render(documents, release)
    planned = "delete" if state == "absent" else "update"
    action, before, commit, conflicts = write(
        client, owner, repo, release.path, text, commit_message(release, planned), check_mode, attempts, sleep
    )
    reason = {
        "create": f"new release {release.tag}",
        "update": f"release {release.tag}",
        "delete": "sandbox removed",
        "unchanged": "already released",
    }[action]
    return {
        "changed": action != "unchanged",
        "action": action,
        "path": release.path,
        "name": release.name,
        "image_tag": release.tag if state == "present" else None,
        "role_arn": release.role_arn,
        "commit": commit,
        "conflicts": conflicts,
        "filled": filled,
        "notices": [f for f in findings if f["severity"] != "error"],
        "release": text,
        "diff": diff(release.path, before, text if action != "unchanged" else before),
        "unified_diff": unified_diff(release.path, before, text) if action != "unchanged" else "",
        "plan": [plan_entries.entry("release file", release.path, action, reason)] if action != "unchanged" else [],
    }
