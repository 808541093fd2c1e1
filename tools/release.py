"""The release step for a service's CI, without Ansible: the same code as biomage.iac.flux_release.

    python tools/release.py --app ui --environment staging --ref master --commit "$GITHUB_SHA" \\
        --ci-repo "$GITHUB_REPOSITORY" --template .flux.ci --domain scp-staging.biomage.net
    python tools/release.py ... --sandbox my-feature            # releases/staging/ui-my-feature.yaml
    python tools/release.py ... --sandbox my-feature --state absent
    python tools/release.py ... --check                         # print the diff, push nothing

Identity: the release GitHub App only, from the environment: GITHUB_APP_ID,
GITHUB_APP_INSTALLATION_ID and GITHUB_APP_PRIVATE_KEY_FILE (or GITHUB_APP_PRIVATE_KEY, the PEM text);
a personal token is never used. AWS (the IRSA stack's RoleArn output, the ECR registry of the
account) through the usual AWS environment (the CI's OIDC role), unless --role-arn and
--image-registry are given. The result is printed as JSON on stdout (``--check``: the diff first);
errors on stderr with their fix. Exit status 0 on success, 1 on failure, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.biomage.iac.plugins.module_utils import aws  # noqa: E402
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError  # noqa: E402
from ansible_collections.biomage.iac.plugins.module_utils.flux import release_step  # noqa: E402
from ansible_collections.biomage.iac.plugins.module_utils.github import client as github  # noqa: E402


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="release.py", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--app", required=True)
    parser.add_argument("--environment", required=True, choices=release_step.ENVIRONMENTS)
    parser.add_argument("--ref", required=True, help="the branch released (GITHUB_REF_NAME)")
    parser.add_argument("--commit", required=True, help="the commit released (GITHUB_SHA)")
    parser.add_argument("--ci-repo", required=True, help="the service repository, owner/name (GITHUB_REPOSITORY)")
    parser.add_argument("--sandbox", help="a staging sandbox: releases/staging/<app>-<sandbox>.yaml")
    parser.add_argument("--state", choices=("present", "absent"), default="present")
    parser.add_argument("--template", type=Path, default=Path(".flux.ci"))
    parser.add_argument("--image-tag", help="default: <ref>-<commit[:7]>")
    parser.add_argument("--image-registry", help="default: <account>.dkr.ecr.<region>.amazonaws.com")
    parser.add_argument("--role-arn", help="default: the RoleArn output of stack biomage-irsa-<app>-role-<env>")
    parser.add_argument("--domain", help="the environment's domain (ingress.domainName)")
    parser.add_argument("--owner", default=os.environ.get("BIOMAGE_GITHUB_OWNER", "biomage-org"))
    parser.add_argument("--repo", default="iac", help="the repository holding releases/")
    parser.add_argument("--checkout", type=Path, default=REPO_ROOT, help="the IaC checkout (charts/, tools/crds)")
    parser.add_argument("--api-url", default=os.environ.get("GITHUB_API_URL", github.DEFAULT_API_URL))
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    parser.add_argument("--attempts", type=int, default=release_step.DEFAULT_ATTEMPTS)
    parser.add_argument("--check", action="store_true", help="show the diff, push nothing")
    return parser.parse_args(argv)


def app_auth() -> github.AppAuth:
    params = {
        "app_id": os.environ.get("GITHUB_APP_ID"),
        "app_installation_id": int(os.environ["GITHUB_APP_INSTALLATION_ID"])
        if os.environ.get("GITHUB_APP_INSTALLATION_ID", "").isdigit()
        else None,
        "app_private_key": os.environ.get("GITHUB_APP_PRIVATE_KEY"),
        "app_private_key_path": os.environ.get("GITHUB_APP_PRIVATE_KEY_FILE"),
    }
    auth = github.app_auth_from_params(params)
    if auth is None:
        raise github.GitHubError(
            "no GitHub App credentials: the release step writes as the release GitHub App only.",
            fix="set GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID and GITHUB_APP_PRIVATE_KEY_FILE "
            "(the kit's workflow does: docs/releases.md)",
        )
    return auth


def run(args: argparse.Namespace) -> dict:
    release = release_step.Release(
        app=args.app,
        environment=args.environment,
        ref=args.ref,
        commit=args.commit,
        ci_repo=args.ci_repo,
        image_tag=args.image_tag,
        image_registry=args.image_registry,
        role_arn=args.role_arn,
        domain=args.domain,
        sandbox=args.sandbox,
    )
    release.check()
    template = ""
    if args.state == "present":
        try:
            template = args.template.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise release_step.ReleaseStepError(
                f"cannot read the template {args.template}: {exc}.",
                fix="run the step in the service's checkout, or give --template",
            ) from exc
        settings = {"region": args.region, "endpoint_url": args.endpoint_url}
        if release.role_arn is None:
            cfn = aws.make_client("cloudformation", settings)
            release.role_arn = release_step.role_arn_from_stack(cfn, settings, release.app, release.environment)
        if release.image_registry is None:
            release.image_registry = release_step.registry_of_account(aws.make_client("sts", settings), settings)
    client = github.GitHubClient(args.api_url, app=app_auth()).for_repo(args.owner, args.repo)
    return release_step.run(
        client,
        args.owner,
        args.repo,
        release,
        template,
        args.checkout,
        state=args.state,
        check_mode=args.check,
        attempts=args.attempts,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        result = run(args)
    except BiomageError as exc:
        print(f"release: {exc}", file=sys.stderr)
        for finding in exc.details.get("findings") or []:
            print(
                f"  {finding['path']}: {finding['field']}: {finding['message']} Fix: {finding['fix']}", file=sys.stderr
            )
        return 1
    if args.check and result["unified_diff"]:
        print(result["unified_diff"], file=sys.stderr)
    for bulky in ("diff", "release", "unified_diff"):
        result.pop(bulky, None)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
