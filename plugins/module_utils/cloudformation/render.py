# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the results read: Ansible ``diff`` entries, the per-action summary, and resource change
entries (from a change set or from comparing two templates). ``NoEcho`` values are masked."""

from __future__ import annotations

import difflib
import json

from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.results import (
    ADOPT,
    CREATE,
    DELETE,
    RECREATE,
    stack_parameters,
    stack_tags,
)
from ansible_collections.biomage.iac.plugins.module_utils.cloudformation.template import (
    canonical,
    imports_of,
    names_match,
)

MASK = "****"


def diffs(results):
    """Ansible ``diff`` entries (template text, then parameters and tags) for changing stacks."""
    out = []
    for name in sorted(results):
        result = results[name]
        if result.changed:
            out.extend(_stack_diffs(name, result))
    return out


def _adopt_diffs(name, result):
    """An adoption changes the tags only: the tags before and after, and what the next run plans."""
    before = stack_tags(result.deployed)
    after = dict(before, **result.spec.tags)
    lines = [f"{name}: adopt (adds the tags; template and parameters stay as deployed)"]
    lines += [f"  pending for the next run: {p}" for p in result.pending]
    return [
        {
            "before_header": f"{name} tags (deployed, not created by biomage.iac)",
            "after_header": f"{name} tags (adopted)",
            "before": _render_tags(before),
            "after": _render_tags(after),
        },
        {"prepared": "\n".join(lines) + "\n"},
    ]


def _deployed_imports(result):
    """The imports of ``result`` that its deployed template makes already."""
    if not result.imports or result.deployed_template is None:
        return ()
    variables = dict(stack_parameters(result.deployed), **{"AWS::StackName": result.name})
    deployed = imports_of(result.deployed_template, variables)
    return [i for i in result.imports if any(names_match(pattern, i["name"]) for pattern in deployed)]


def _render_tags(tags):
    return "".join(f"{k}: {json.dumps(v)}\n" for k, v in sorted(tags.items()))


def _stack_diffs(name, result):
    if result.action == ADOPT:
        return _adopt_diffs(name, result)
    out = []
    spec = result.spec
    before_body = result.deployed_body or ""
    if result.action == DELETE:
        after_body, after_header = "", f"{name} (deleted)"
    else:
        after_body, after_header = spec.body, f"{name} ({spec.label})"
    if (
        result.action in (CREATE, RECREATE)
        or result.deployed_template is None
        or (canonical(result.deployed_template) != canonical(spec.template) if spec else True)
    ):
        out.append(
            {
                "before_header": f"{name} (deployed template)" if before_body else f"{name} (no stack)",
                "after_header": after_header,
                "before": before_body,
                "after": after_body,
            }
        )
    if result.changes:
        lines = [f"{name}: {result.action} ({', '.join(result.reasons) or 'see notes'})"]
        for change in result.changes:
            extra = f", replacement {change['replacement']}" if change.get("replacement") else ""
            lines.append(f"  {change['action']} {change['logical_id']} ({change['type']}{extra})")
        out.append({"prepared": "\n".join(lines) + "\n"})
    before_meta = _render_settings(
        stack_parameters(result.deployed),
        stack_tags(result.deployed),
        spec.noecho if spec else set(),
        _deployed_imports(result),
    )
    after_meta = (
        _render_settings(spec.parameters, spec.tags, spec.noecho, result.imports)
        if spec and result.action != DELETE
        else ""
    )
    if before_meta != after_meta:
        out.append(
            {
                "before_header": f"{name} parameters and tags (deployed)",
                "after_header": f"{name} parameters and tags (desired)",
                "before": before_meta,
                "after": after_meta,
            }
        )
    return out


def _render_settings(parameters, tags, noecho, imports=()):
    """Parameters, tags and the imported exports (name = value, from which stack) as diffable text.

    The deployed side lists those of them its template imports already (an export cannot change
    while a stack imports it), so only new imports show as a difference."""
    if not parameters and not tags:
        return ""
    lines = ["parameters:"]
    lines += [f"  {k}: {MASK if k in noecho else json.dumps(v)}" for k, v in sorted(parameters.items())]
    lines.append("tags:")
    lines += [f"  {k}: {json.dumps(v)}" for k, v in sorted(tags.items())]
    if imports:
        lines.append("imports:")
        lines += [f"  {i['name']}: {json.dumps(i['value'])} (stack {i['exporter']})" for i in imports]
    return "\n".join(lines) + "\n"


def summary(results):
    """Number of stacks per action (``failed`` for failures)."""
    counts = {}
    for result in results.values():
        key = "failed" if result.error else result.action
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def unified_diff(before, after, before_header, after_header):
    """A unified diff text (used by tests and the summary)."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(True), after.splitlines(True), fromfile=before_header, tofile=after_header, n=3
        )
    )


def change_of(change):
    """The change entry of one ``Changes`` item of DescribeChangeSet."""
    rc = change.get("ResourceChange") or {}
    out = {
        "action": rc.get("Action"),
        "logical_id": rc.get("LogicalResourceId"),
        "type": rc.get("ResourceType"),
    }
    if rc.get("Replacement"):
        out["replacement"] = rc["Replacement"]
    if rc.get("Scope"):
        out["scope"] = rc["Scope"]
    return out


def template_changes(before, after):
    """Resource-level differences between two parsed templates (used where no change set is made)."""
    old = (before or {}).get("Resources") or {}
    new = (after or {}).get("Resources") or {}
    changes = []
    for logical_id in sorted(set(old) | set(new)):
        if logical_id not in old:
            action = "Add"
        elif logical_id not in new:
            action = "Remove"
        elif canonical(old[logical_id]) != canonical(new[logical_id]):
            action = "Modify"
        else:
            continue
        rtype = (new.get(logical_id) or old.get(logical_id) or {}).get("Type", "?")
        changes.append({"action": action, "logical_id": logical_id, "type": rtype, "source": "template"})
    return changes


def exemptions_diff(exemptions):
    """An Ansible ``diff`` entry listing the template-rule findings the templates are exempt from, with
    their reasons (``rules.Exemption``), so that a reviewer of a plan sees every waiver."""
    lines = [f"Exemptions from the template rules ({len(exemptions)}):"]
    lines += [f"  {exemption}" for exemption in exemptions]
    return {"prepared": "\n".join(lines) + "\n"}
