# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CI privileges (README "CI privileges"): every repository of an organisation whose ``.ci.yaml``
asks for AWS access gets one IAM role that only that repository's GitHub Actions runs can assume.

:func:`build` validates one file (``ci_config``) and renders its role's template (``ci_template``);
:func:`collect` does it for every repository of an organisation, read through the GitHub API, and
reports every problem of every repository at once, before anything is changed. No AWS calls here.
"""

from __future__ import annotations

from urllib.parse import quote

from ansible_collections.biomage.iac.plugins.module_utils.github.actions import normalise_name
from ansible_collections.biomage.iac.plugins.module_utils.github.ci_config import CI_FILE, CiConfigError, parse_file
from ansible_collections.biomage.iac.plugins.module_utils.github.ci_template import (
    check_rendered,
    dump,
    render,
    subjects,
    template_label,
)


def build(text, owner, repo, branches, environments=(), path=CI_FILE):
    """Validate one ``.ci.yaml`` and render its role: ``{policies, subjects, template, template_body}``."""
    parsed = parse_file(text, owner, repo, path)
    policies = parsed["policies"]
    claims = subjects(owner, repo, branches, environments)
    template = render(owner, repo, policies, claims, parsed["container_repository"])
    problems = check_rendered(template, owner, repo, path)
    if problems:
        raise CiConfigError(problems)
    return {
        "policies": policies,
        "container_repository": parsed["container_repository"],
        "subjects": claims,
        "template": template,
        "template_body": dump(template),
    }


def collect(client, owner, branches=(), environments=(), path=CI_FILE, include_archived=False, variables=()):
    """Every repository of ``owner`` with its CI privileges, validated; raise CiConfigError with every
    problem of every repository (before anything is changed anywhere).

    A repository without the file (404) has no CI privileges; one with it gets :func:`build`'s keys
    and ``template_label``. ``branches`` empty means the repository's default branch. A repository
    without the file also gets ``variables``: the value of each Actions variable named in
    ``variables`` (None when unset), so that settings left from a deleted role can be found.
    """
    variables = [normalise_name(variable, "variable") for variable in variables]
    repos = client.paginate("/orgs/{}/repos".format(quote(owner, safe="")))
    results, problems = [], []
    for entry in sorted(repos, key=lambda r: r["name"].lower()):
        name = entry["name"]
        item = {
            "name": name,
            "full_name": entry.get("full_name") or f"{owner}/{name}",
            "default_branch": entry.get("default_branch"),
            "archived": bool(entry.get("archived")),
            "has_ci": False,
        }
        results.append(item)
        if item["archived"] and not include_archived:
            item["skipped"] = "archived"
            continue
        text = client.get_file(owner, name, path)
        if text is None:
            if variables:
                item["variables"] = {
                    variable: (client.get_variable(owner, name, variable) or {}).get("value") for variable in variables
                }
            continue
        item["has_ci"] = True
        wanted = list(branches) or [item["default_branch"] or "main"]
        try:
            item.update(build(text, owner, name, wanted, environments, path))
        except CiConfigError as exc:
            problems.extend(exc.problems)
            continue
        item["template_label"] = template_label(owner, name, path)
    if problems:
        raise CiConfigError(problems)
    return results
