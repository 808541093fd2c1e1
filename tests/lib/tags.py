"""Tags of playbooks/base.yml's roles, for tests that converge only part of it."""

from __future__ import annotations

# the roles that need a reachable cluster (and, for flux, the GitHub stand-in); each has its own
# playbook-level tests, so tests about the cluster itself or the foundation skip them
CLUSTER_ADDONS = ("ingress", "route53_dns", "ingress_nginx", "cert_manager", "flux")


def skip_tags(*tags: str) -> list[str]:
    """``--skip-tags`` arguments for the cluster add-ons plus ``tags``."""
    return ["--skip-tags", ",".join((*tags, *CLUSTER_ADDONS))]
