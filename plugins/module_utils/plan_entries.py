# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan entries (:mod:`.plan`) of the modules that converge EKS, Flux's deploy key and GitHub settings.

Each function turns what a module already decided into entries: kind, name, action, reason. Only
names and public facts (fingerprints of public keys, versions) are used, never values.
"""

from __future__ import annotations

from ansible_collections.biomage.iac.plugins.module_utils.plan import entry

# -- eksctl_cluster ---------------------------------------------------------------------------------


def _names(items):
    return [item["name"] if isinstance(item, dict) else str(item) for item in items or []]


def eksctl_entries(name, actions):
    """Entries of an eksctl_cluster plan dict (the module's ``plan`` result)."""
    out = []
    cluster = actions.get("cluster", "unchanged")
    if actions.get("state") == "absent":
        if cluster == "delete":
            out.append(entry("EKS cluster", name, "delete", "state=absent"))
        return out
    if cluster == "create":
        out.append(entry("EKS cluster", name, "create", "the cluster does not exist"))
    steps = actions.get("version_steps") or []
    if steps:
        out.append(entry("EKS cluster", name, "update", f"Kubernetes upgrade to {' -> '.join(steps)}"))
    auth = actions.get("authentication_mode_steps") or []
    if auth:
        out.append(entry("EKS cluster", name, "update", f"authentication mode -> {auth[-1]}"))
    if actions.get("oidc_provider", "unchanged") != "unchanged":
        out.append(entry("EKS OIDC provider", name, "create", "associate the IAM OIDC provider"))
    addons = actions.get("addons") or {}
    for item in addons.get("create") or []:
        out.append(entry("EKS add-on", item["name"], "create", f"version {item.get('version', 'default')}"))
    for item in addons.get("update") or []:
        out.append(entry("EKS add-on", item["name"], "update", f"{item.get('from')} -> {item.get('to')}"))
    groups = actions.get("nodegroups") or {}
    for group in _names(groups.get("create")):
        out.append(entry("EKS node group", group, "create", "new in the cluster config"))
    for group in _names(groups.get("scale")):
        out.append(entry("EKS node group", group, "update", "scaling changed"))
    for item in groups.get("upgrade") or []:
        reason = f"Kubernetes {item.get('from')} -> {item.get('to')}" if isinstance(item, dict) else "upgrade"
        out.append(entry("EKS node group", _names([item])[0], "update", reason))
    for item in groups.get("roll") or []:
        reason = "immutable settings changed: a new group replaces it"
        if isinstance(item, dict) and item.get("replacement"):
            fields = ", ".join(str(f) for f in item.get("fields") or [])[:80]
            reason = f"{fields or 'immutable settings'} changed: {item['replacement']} replaces it"
        out.append(entry("EKS node group", _names([item])[0], "replace", reason))
    for group in _names(groups.get("delete")):
        out.append(entry("EKS node group", group, "delete", "not in the cluster config"))
    fargate = actions.get("fargate_profiles") or {}
    for profile in _names(fargate.get("create")):
        out.append(entry("EKS Fargate profile", profile, "create", "new in the cluster config"))
    for profile in _names(fargate.get("delete")):
        out.append(entry("EKS Fargate profile", profile, "delete", "not in the cluster config"))
    access = actions.get("access_entries") or {}
    for verb, action in (("add", "create"), ("update", "update"), ("remove", "delete")):
        for principal in access.get(verb) or []:
            arn = principal.get("principalARN", "") if isinstance(principal, dict) else str(principal)
            out.append(entry("EKS access entry", arn, action, "cluster admins/users list"))
    return out


# -- flux_deploy_key / github_deploy_key ----------------------------------------------------------


def flux_key_entries(owner, repo, title, namespace, secret_name, steps):
    """Entries of a flux_deploy_key plan (:class:`flux.credentials.Plan`)."""
    out = []
    reason = "; ".join(steps.reasons)
    first = "the Secret does not exist" in steps.reasons
    if steps.generate:
        action = "create" if first else "rotate"
        out.append(entry("GitHub deploy key", f"{owner}/{repo} {title}", action, reason or "new key pair"))
    elif steps.register:
        out.append(entry("GitHub deploy key", f"{owner}/{repo} {title}", "create", reason))
    if steps.write_secret:
        action = "create" if first else ("rotate" if steps.generate else "update")
        out.append(entry("Kubernetes Secret", f"{namespace}/{secret_name}", action, reason))
    for key in steps.delete:
        shown = f"{owner}/{repo} {key.get('title')}"
        out.append(entry("GitHub deploy key", shown, "delete", "replaced by the new key"))
    return out


def deploy_key_entries(owner, repo, title, steps):
    """Entries of a github_deploy_key plan (``{"add", "delete", "keep"}``)."""
    out = []
    if steps.get("add"):
        action = "rotate" if steps.get("delete") else "create"
        out.append(entry("GitHub deploy key", f"{owner}/{repo} {title}", action, "the wanted key is not registered"))
    for key in steps.get("delete") or []:
        reason = "replaced by the new key" if steps.get("add") else "not the wanted key"
        out.append(entry("GitHub deploy key", f"{owner}/{repo} {key.get('title')}", "delete", reason))
    return out


# -- GitHub Actions settings, OIDC provider --------------------------------------------------------


def actions_setting_entry(kind, owner, repo, name, action):
    """The entry of a github_actions_variable / github_actions_secret run (the value is never part of it)."""
    reasons = {
        "create": "not set",
        "update": "value differs" if kind == "GitHub Actions variable" else "value written (never read back)",
        "delete": "state=absent",
        "unchanged": "",
    }
    return [entry(kind, f"{owner}/{repo} {name}", action, reasons.get(action, ""))]


def oidc_provider_entries(url, steps):
    """Entries of a github_oidc_provider run (``[(operation, argument)]``)."""
    if not steps:
        return [entry("IAM OIDC provider", url, "unchanged")]
    if steps[0][0] == "create":
        return [entry("IAM OIDC provider", url, "create", "no provider for GitHub Actions")]
    return [entry("IAM OIDC provider", url, "update", ", ".join(op.replace("_", " ") for op, _arg in steps))]
