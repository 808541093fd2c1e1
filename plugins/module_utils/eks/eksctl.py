# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small, strict runner for the eksctl CLI.

* Every command is an argument list (never a shell string).
* Reads use eksctl's JSON output (``-o json``) and are parsed here; a missing cluster is recognised
  by eksctl's exit status plus the ResourceNotFoundException it reports, never by grepping logs of a
  mutating command.
* Every command the collection runs has a named method here (reads, eksctl's plan mode and
  writes); callers never build an argument list themselves.
* Mutating commands are refused in check mode: the planner must never issue one, and this runner
  enforces it as a second line of defence.
* One exception type, :class:`~.errors.EksError`, carries a message written for the operator (what failed and
  the fix); the module turns it into ``fail_json`` in one place.
* Credentials are never printed: values of secret AWS variables are redacted from any text that may
  reach a message.
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.biomage.iac.plugins.module_utils.eks.errors import EksError

# access entries, update-authentication-mode, migrate-to-access-entry; the first release with Kubernetes 1.36
# assets (CoreDNS 1.36 defaults, docs/eks-cluster.md "eksctl")
MIN_EKSCTL_VERSION = "0.230.0"

SECRET_ENV_VARS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
REDACTED = "********"

_CREDENTIAL_MARKERS = (
    "ExpiredToken",
    "RequestExpired",
    "security token included in the request is expired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "NoCredentialProviders",
    "no valid credential sources",
    "failed to refresh cached credentials",
    "failed to retrieve credentials",
    "get identity: get credentials",
    "the SSO session has expired",
)
_NOT_FOUND_MARKERS = ("ResourceNotFoundException", "No cluster found for name")
_SECRET_ASSIGNMENT = re.compile(r"(?i)(aws_secret_access_key|aws_session_token)(\s*[=:]\s*)\S+")
_VERSION_TEXT = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def parse_version(text):
    """``(major, minor, patch)`` of a version string such as ``0.215.0`` or ``v0.215.0-rc.1``."""
    match = _VERSION_TEXT.search(text or "")
    if not match:
        return None
    return tuple(int(part) for part in match.groups())


def redact(text, secrets=None):
    """``text`` with secret values and ``key = value`` secret assignments masked."""
    if not text:
        return text
    values = secrets if secrets is not None else secret_values()
    for value in values:
        text = text.replace(value, REDACTED)
    return _SECRET_ASSIGNMENT.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)


def secret_values(environ=None):
    """The values of secret AWS variables in ``environ`` (long enough to be worth masking)."""
    env = os.environ if environ is None else environ
    return [env[name] for name in SECRET_ENV_VARS if len(env.get(name) or "") >= 8]


def _tail(text, lines=15):
    return "\n".join((text or "").strip().splitlines()[-lines:])


class EksctlRunner:
    """Runs eksctl through ``run_command(argv) -> (rc, stdout, stderr)`` and records every argv.

    ``binary`` is the resolved eksctl path (``None`` when it was not found). ``region`` is added to
    every command that talks to AWS.
    """

    def __init__(self, run_command, binary, region, check_mode=False, secrets=None):
        self._run_command = run_command
        self.binary = binary
        self.region = region
        self.check_mode = check_mode
        self.secrets = list(secrets) if secrets is not None else secret_values()
        self.calls = []
        self.version = None

    # -- plumbing --------------------------------------------------------------------------------
    def _run(self, args, mutating):
        if self.binary is None:
            raise EksError(
                f"eksctl was not found on PATH. Fix: install eksctl {MIN_EKSCTL_VERSION} or newer and put it on PATH, "
                "or set the module option eksctl_path (role variable eks_cluster_eksctl_path).",
                kind="eksctl",
            )
        if mutating and self.check_mode:
            raise EksError(
                "internal error: refusing to run the mutating command `eksctl {}` in check mode".format(" ".join(args)),
                kind="internal",
            )
        argv = [self.binary, *list(args)]
        self.calls.append({"argv": argv, "mutating": mutating})
        try:
            rc, out, err = self._run_command(argv)
        except OSError as exc:
            raise EksError(
                f"cannot run {self.binary}: {exc}. "
                f"Fix: install eksctl {MIN_EKSCTL_VERSION} or newer, or correct eksctl_path.",
                kind="eksctl",
            ) from exc
        return rc, out or "", err or ""

    def _failure(self, args, rc, out, err):
        """The EksError for a failed command, classified from what eksctl reported."""
        text = redact(err + "\n" + out, self.secrets)
        command = "eksctl " + " ".join(args)
        if any(marker in text for marker in _CREDENTIAL_MARKERS):
            return EksError(
                f"AWS rejected the credentials used by `{command}` (expired or missing): {_tail(text, 3)}\n"
                "Fix: log in again (aws sso login, a fresh AWS_PROFILE session or AWX credential) and re-run.",
                kind="credentials",
                rc=rc,
            )
        if any(marker in text for marker in _NOT_FOUND_MARKERS):
            return EksError(f"`{command}` found nothing: {_tail(text, 3)}", kind="not_found", rc=rc)
        return EksError(
            f"`{command}` failed (exit {rc}). Last lines of its output:\n{_tail(text)}",
            kind="failed",
            rc=rc,
        )

    def query(self, args):
        """Run a read-only command with ``-o json`` and return the parsed JSON."""
        args = [*list(args), "-o", "json"]
        rc, out, err = self._run(args, mutating=False)
        if rc != 0:
            raise self._failure(args, rc, out, err)
        return parse_json_output(out, "eksctl " + " ".join(args))

    def plan_only(self, args):
        """Run a command in eksctl's own plan mode (no ``--approve``); return its combined output."""
        rc, out, err = self._run(args, mutating=False)
        if rc != 0:
            raise self._failure(args, rc, out, err)
        return redact(out + "\n" + err, self.secrets)

    def mutate(self, args):
        """Run a command that changes infrastructure; raise EksError when it fails."""
        rc, out, err = self._run(args, mutating=True)
        if rc != 0:
            raise self._failure(args, rc, out, err)
        return redact(out + "\n" + err, self.secrets)

    # -- version ---------------------------------------------------------------------------------
    def check_version(self, minimum=MIN_EKSCTL_VERSION):
        """Fail unless eksctl is at least ``minimum``; return the version info (JSON when available)."""
        rc, out, err = self._run(["version", "-o", "json"], mutating=False)
        info = None
        if rc == 0:
            try:
                info = json.loads(out)
            except ValueError:
                info = None
        if isinstance(info, dict):
            text = info.get("Version") or ""
        else:
            # very old releases have no -o json: ask for the plain version
            rc, out, err = self._run(["version"], mutating=False)
            if rc != 0:
                raise EksError(
                    f"`eksctl version` failed (exit {rc}): {_tail(redact(err or out, self.secrets), 3)}. "
                    f"Fix: install eksctl {minimum} or newer.",
                    kind="eksctl",
                )
            text = out.strip()
            info = {"Version": text}
        found = parse_version(text)
        if found is None:
            raise EksError(
                f"cannot read the eksctl version from {text!r}. Fix: install eksctl {minimum} or newer.",
                kind="eksctl",
            )
        if found < parse_version(minimum):
            raise EksError(
                "eksctl {} is too old: this collection needs {} or newer (access entries, authentication mode "
                "migration, current Kubernetes versions). Fix: upgrade eksctl.".format(
                    ".".join(map(str, found)), minimum
                ),
                kind="eksctl",
            )
        self.version = info
        return info

    def supported_kubernetes_versions(self):
        """Kubernetes versions this eksctl supports (empty when it did not say)."""
        return list((self.version or {}).get("EKSServerSupportedVersions") or [])

    # -- reads -----------------------------------------------------------------------------------
    def _on(self, cluster, *args):
        """``args`` followed by the cluster and region flags."""
        return [*args, "--cluster", cluster, "--region", self.region]

    def get_cluster(self, name):
        """The EKS cluster object (PascalCase keys), or None when eksctl reports it does not exist."""
        try:
            result = self.query(["get", "cluster", "--name", name, "--region", self.region])
        except EksError as exc:
            if exc.kind == "not_found":
                return None
            raise
        if isinstance(result, list):
            return result[0] if result else None
        return result

    def get_nodegroups(self, cluster):
        return _as_list(self.query(self._on(cluster, "get", "nodegroup")))

    def get_nodegroup(self, cluster, name):
        found = _as_list(self.query([*self._on(cluster, "get", "nodegroup"), "--name", name]))
        return found[0] if found else None

    def describe_stacks(self, cluster):
        return _as_list(self.query(self._on(cluster, "utils", "describe-stacks")))

    def get_addons(self, cluster):
        return _as_list(self.query(self._on(cluster, "get", "addon")))

    def get_fargate_profiles(self, cluster):
        return _as_list(self.query(self._on(cluster, "get", "fargateprofile")))

    def get_access_entries(self, cluster):
        return _as_list(self.query(self._on(cluster, "get", "accessentry")))

    def oidc_provider_associated(self, cluster):
        """True when the IAM OIDC provider exists (eksctl's plan mode; no JSON is offered for this).

        eksctl logs either that the provider "is already associated" or, in plan mode, that it
        "would create" one. Any other output fails: guessing would plan an association on every run.
        """
        args = self._on(cluster, "utils", "associate-iam-oidc-provider")
        text = self.plan_only(args)
        if "is already associated" in text:
            return True
        if "would create IAM Open ID Connect provider" in text:
            return False
        tail = " | ".join(line.strip() for line in text.strip().splitlines()[-3:])
        raise EksError(
            f"`eksctl {' '.join(args)}` (plan mode) said neither that the IAM OIDC provider is associated nor "
            f"that it would create one: {tail[:400]!r}. Fix: use the pinned eksctl (meta/tool-versions.env; "
            "tools/install-eksctl.sh); if a newer eksctl words this differently, update "
            "oidc_provider_associated in plugins/module_utils/eks/eksctl.py.",
            kind="eksctl",
        )

    # -- the cluster -----------------------------------------------------------------------------
    def create_cluster(self, config_file):
        """Create the cluster (and everything its config lists); the kubeconfig is written separately."""
        return self.mutate(["create", "cluster", "--config-file", config_file, "--write-kubeconfig=false"])

    def upgrade_cluster(self, name, version):
        """Move the control plane to ``version`` (one minor version above the live one)."""
        return self.mutate(
            ["upgrade", "cluster", "--name", name, "--region", self.region, "--version", version, "--approve"]
        )

    def delete_cluster(self, name):
        return self.mutate(["delete", "cluster", "--name", name, "--region", self.region, "--wait"])

    def write_kubeconfig(self, cluster, path):
        return self.mutate([*self._on(cluster, "utils", "write-kubeconfig"), "--kubeconfig", path])

    def associate_oidc_provider(self, cluster):
        return self.mutate([*self._on(cluster, "utils", "associate-iam-oidc-provider"), "--approve"])

    def migrate_to_access_entry(self, cluster, mode):
        """Move the authentication mode forward to ``mode`` (aws-auth mappings become access entries)."""
        return self.mutate(
            [*self._on(cluster, "utils", "migrate-to-access-entry"), "--target-authentication-mode", mode, "--approve"]
        )

    # -- add-ons ---------------------------------------------------------------------------------
    def create_addon(self, cluster, name, version=None, force=False):
        """Install an add-on (``version`` None: EKS's default); ``force`` overwrites conflicting fields."""
        args = [*self._on(cluster, "create", "addon"), "--name", name]
        if version:
            args += ["--version", version]
        if force:
            args.append("--force")
        return self.mutate([*args, "--wait"])

    def update_addon(self, cluster, name, version):
        return self.mutate([*self._on(cluster, "update", "addon"), "--name", name, "--version", version, "--wait"])

    # -- access entries and Fargate profiles -----------------------------------------------------
    def create_access_entries(self, config_file):
        """Create the access entries a ClusterConfig file lists."""
        return self.mutate(["create", "accessentry", "--config-file", config_file])

    def delete_access_entry(self, cluster, principal_arn):
        return self.mutate([*self._on(cluster, "delete", "accessentry"), "--principal-arn", principal_arn])

    def create_fargate_profiles(self, config_file):
        """Create the Fargate profiles a ClusterConfig file lists."""
        return self.mutate(["create", "fargateprofile", "--config-file", config_file])

    def delete_fargate_profile(self, cluster, name):
        return self.mutate([*self._on(cluster, "delete", "fargateprofile"), "--name", name, "--wait"])

    # -- node groups -----------------------------------------------------------------------------
    def create_nodegroups(self, config_file, names):
        """Create the node groups ``names`` of a ClusterConfig file (the others are left alone)."""
        return self.mutate(["create", "nodegroup", "--config-file", config_file, "--include", ",".join(names)])

    def upgrade_nodegroup(self, cluster, name, version):
        return self.mutate(
            [*self._on(cluster, "upgrade", "nodegroup"), "--name", name, "--kubernetes-version", version]
        )

    def scale_nodegroup(self, cluster, name, sizes):
        """Resize a node group in place; ``sizes`` holds ``minSize``, ``maxSize`` and ``desiredCapacity``."""
        return self.mutate(
            [
                *self._on(cluster, "scale", "nodegroup"),
                "--name",
                name,
                "--nodes",
                str(sizes["desiredCapacity"]),
                "--nodes-min",
                str(sizes["minSize"]),
                "--nodes-max",
                str(sizes["maxSize"]),
            ]
        )

    def drain_nodegroup(self, cluster, name):
        return self.mutate([*self._on(cluster, "drain", "nodegroup"), "--name", name, "--approve"])

    def delete_missing_nodegroups(self, config_file):
        """Delete the node groups that a ClusterConfig file no longer lists, and wait."""
        return self.mutate(
            ["delete", "nodegroup", "--config-file", config_file, "--only-missing", "--approve", "--wait"]
        )


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def parse_json_output(text, command):
    """Parse eksctl's JSON output; eksctl prints ``null`` for an empty list."""
    try:
        return json.loads(text) if text.strip() else None
    except ValueError as exc:
        raise EksError(
            f"`{command}` did not print JSON ({exc}). First characters: {text[:200]!r}. Fix: check the eksctl version.",
            kind="failed",
        ) from exc
