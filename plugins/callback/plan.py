# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: plan
type: aggregate
short_description: One plan across every role, as terminal text, Markdown and JSON
version_added: 0.2.0
description:
  - Collects what every task will change (check mode) or changed, in the plan shape of
    C(plugins/module_utils/plan.py) (kind, name, action, reason), and ends the run with a table per
    role and a summary line, C(Plan) with the number of resources to create, update, replace and
    delete (in a real run C(Applied) with what was done). Replacements and deletions are marked.
  - Modules of this collection report their entries (C(plan) in their result); for other modules the
    entry is derived from the result (kubernetes.core objects by kind, name and method; any other
    changed task by its module and name).
  - Usable beside the default output (C(callbacks_enabled = biomage.iac.plan)) or as the stdout
    callback (C(stdout_callback = biomage.iac.plan)), which prints the default output as well.
  - The Markdown is appended to E(GITHUB_STEP_SUMMARY) when set, and written to O(markdown_file);
    the JSON to O(json_file). Under ansible-runner (AWX jobs), unset files default to C(plan.md) and
    C(plan.json) in the job's artifacts folder (E(AWX_ISOLATED_DATA_DIR)).
  - No value of any variable, parameter, key or token is ever part of it.
  - Findings of the support calendar (C(support) in a result, see M(biomage.iac.support_check)) that are not
    C(ok) are listed under C(Support) after the plan (versions near or past their end of support).
extends_documentation_fragment:
  - default_callback
  - result_format_callback
requirements:
  - enable it in callbacks_enabled, or set it as the stdout callback
options:
  markdown_file:
    description: Write the plan as Markdown to this file.
    type: path
    env:
      - name: BIOMAGE_PLAN_MARKDOWN
    ini:
      - section: callback_plan
        key: markdown_file
  json_file:
    description: Write the plan as JSON to this file.
    type: path
    env:
      - name: BIOMAGE_PLAN_JSON
    ini:
      - section: callback_plan
        key: json_file
  plan_file:
    description:
      - In a check run, write the plan file here (the JSON plan plus the fingerprint of the inputs and
        live stacks reported by C(biomage.iac.plan_fingerprint), and the planned CloudFormation change
        sets); an apply given it (C(-e biomage_plan_in=<file>)) refuses when anything changed since.
      - The extra variable C(biomage_plan_out) does the same.
    type: path
    env:
      - name: BIOMAGE_PLAN_OUT
    ini:
      - section: callback_plan
        key: plan_file
  title:
    description: The heading of the Markdown plan (for example the environment's name).
    type: str
    default: Plan
    env:
      - name: BIOMAGE_PLAN_TITLE
"""

import json
import os

from ansible import constants as C
from ansible import context
from ansible.plugins.callback.default import CallbackModule as DefaultCallback
from ansible_collections.biomage.iac.plugins.module_utils import plan as plan_shape
from ansible_collections.biomage.iac.plugins.plugin_utils import kube_objects

K8S_MODULES = ("kubernetes.core.k8s", "k8s")
HELM_MODULES = ("kubernetes.core.helm", "helm")
# Helm release arguments are templated task args; only names and versions are read from them
STANDOUT = ("replace", "delete")
MY_NAMES = ("biomage.iac.plan", "plan")


class CallbackModule(DefaultCallback):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "biomage.iac.plan"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.entries = []
        self.support = {}
        self._check_mode = False
        self._fingerprint = None
        self._change_sets = {}
        self._plan_out = None
        # beside another stdout callback, this one prints only the plan at the end
        if C.DEFAULT_STDOUT_CALLBACK not in MY_NAMES:
            # only what the default callback itself prints: the base class's methods print nothing, and
            # overriding its deprecated ones (v2_on_any) would warn on every run
            for method in vars(DefaultCallback):
                if method.startswith("v2_") and method not in (
                    "v2_runner_on_ok",
                    "v2_runner_item_on_ok",
                    "v2_runner_on_failed",
                    "v2_playbook_on_start",
                    "v2_playbook_on_play_start",
                    "v2_playbook_on_stats",
                ):
                    setattr(self, method, _quiet)
            self._print_default = False
        else:
            self._print_default = True

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)

    # -- collection ------------------------------------------------------------------------------
    def v2_playbook_on_start(self, playbook):
        self._check_mode = bool(context.CLIARGS.get("check"))
        if self._print_default:
            super().v2_playbook_on_start(playbook)

    def v2_playbook_on_play_start(self, play):
        manager = play.get_variable_manager()
        extra = getattr(manager, "extra_vars", None) or {}
        if extra.get("biomage_plan_out"):
            self._plan_out = str(extra["biomage_plan_out"])
        if self._print_default:
            super().v2_playbook_on_play_start(play)

    def v2_runner_on_ok(self, result):
        self._collect(result._task, result._result)
        if self._print_default:
            super().v2_runner_on_ok(result)

    def v2_runner_item_on_ok(self, result):
        self._collect(result._task, result._result)
        if self._print_default:
            super().v2_runner_item_on_ok(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._collect_support(result._result)
        if self._print_default:
            super().v2_runner_on_failed(result, ignore_errors=ignore_errors)

    def _collect_support(self, res):
        for item in support_findings(res):
            self.support[item["product"]] = item

    def _collect(self, task, res):
        self._collect_support(res)
        if isinstance(res.get("plan_fingerprint"), dict) and self._fingerprint is None:
            self._fingerprint = res["plan_fingerprint"]  # the first one: taken before any change
        if isinstance(res.get("planned_change_sets"), dict):
            self._change_sets.update(
                {str(k): dict(v) if isinstance(v, dict) else str(v) for k, v in res["planned_change_sets"].items()}
            )
        if res.get("results") is not None and isinstance(res.get("results"), list):
            return  # a loop: its items were collected one by one
        role = task._role.get_name() if task._role else "(playbook)"
        args = (res.get("invocation") or {}).get("module_args") or task.args  # templated ones first
        found = derive(task.resolved_action or task.action, task.get_name(), res, args)
        self.entries += [{**item, "role": role} for item in found]

    # -- output ------------------------------------------------------------------------------------
    def v2_playbook_on_stats(self, stats):
        if self._print_default:
            super().v2_playbook_on_stats(stats)
        applied = not self._check_mode
        text = render_text(self.entries, applied)
        support = list(self.support.values())
        if support:
            text += "\n" + render_support_text(support)
        self._display.banner("PLAN")
        for line in text.splitlines():
            color = C.COLOR_CHANGED if line.lstrip().startswith(("! ", "!")) else None
            self._display.display(line, color=color)
        markdown = render_markdown(self.entries, applied, self.get_option("title")) + render_support_markdown(support)
        markdown_file, json_file = self.get_option("markdown_file"), self.get_option("json_file")
        artifacts = os.environ.get("AWX_ISOLATED_DATA_DIR")  # ansible-runner's artifacts folder of this job
        if artifacts and os.path.isdir(artifacts):
            markdown_file = markdown_file or os.path.join(artifacts, "plan.md")
            json_file = json_file or os.path.join(artifacts, "plan.json")
        targets = [os.environ.get("GITHUB_STEP_SUMMARY"), markdown_file]
        for target in filter(None, targets):
            with open(target, "a", encoding="utf-8") as handle:
                handle.write(markdown)
        if json_file:
            with open(json_file, "w", encoding="utf-8") as handle:
                json.dump({**render_json(self.entries, applied), "support": support}, handle, indent=2, sort_keys=True)
                handle.write("\n")
        self._write_plan_file(applied)

    def _write_plan_file(self, applied):
        target = self.get_option("plan_file") or self._plan_out
        if not target:
            return
        if applied:
            self._display.warning(f"plan file {target} not written: only a check run (--check) makes a plan.")
            return
        if self._fingerprint is None:
            self._display.warning(
                f"plan file {target} not written: no task reported a fingerprint (biomage.iac.preflight runs "
                "biomage.iac.plan_fingerprint; was it skipped with --tags?)."
            )
            return
        data = render_plan_file(self.entries, self._fingerprint, self._change_sets)
        with open(target, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        self._display.display(f"Plan file written to {target}: apply it with -e biomage_plan_in={target}")


def _quiet(*_args, **_kwargs):
    return None


def support_findings(res):
    """The support-calendar findings of a result that need attention (status warning or expired)."""
    found = res.get("support")
    if not isinstance(found, list):
        return []
    return [
        {key: item.get(key) for key in ("product", "version", "status", "end", "accepted", "message")}
        for item in found
        if isinstance(item, dict)
        and item.get("status") in ("warning", "expired")
        and isinstance(item.get("product"), str)
    ]


def _support_label(item):
    return "expired (accepted)" if item["status"] == "expired" and item.get("accepted") else item["status"]


def render_support_text(support):
    lines = ["Support:"]
    for item in support:
        mark = "!" if item["status"] == "expired" else " "
        lines.append(f"  {mark} {_support_label(item):<18} {item['message']}")
    return "\n".join(lines)


def render_support_markdown(support):
    if not support:
        return ""
    out = ["#### Support", "", "| product | version | status | end | note |", "| --- | --- | --- | --- | --- |"]
    for item in support:
        cells = [item["product"], f"`{item['version']}`", _support_label(item), item.get("end") or "", item["message"]]
        out.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |")
    return "\n".join([*out, "", ""])


def derive(action, task_name, res, args=None):
    """The plan entries of one task result (``args``: the task's arguments, for Helm releases)."""
    for key in ("plan", "plan_entries"):
        reported = res.get(key)
        if isinstance(reported, list):
            return [dict(item) for item in reported if plan_shape.is_entry(item)]
    if not res.get("changed"):
        return []
    if action in K8S_MODULES or action.endswith(".k8s"):
        nested = (res.get("result") or {}).get("results")
        if isinstance(nested, list):  # several objects in one definition
            return [kube_objects.plan_entry(one, task_name) for one in nested if one.get("changed")]
        return [kube_objects.plan_entry(res, task_name)]
    if action in HELM_MODULES or action.endswith(".helm"):
        return _helm_entry(res, task_name, args or {})
    return [plan_shape.entry(action.split(".")[-1], task_name, "update", "the task reports a change")]


def _helm_entry(res, task_name, args):
    """kubernetes.core.helm returns ``status`` (the release as installed: none before a first install) and
    ``command``; the command is never shown (it may name values)."""
    name = args.get("release_name") or args.get("name") or task_name
    namespace = args.get("release_namespace") or args.get("namespace")
    shown = f"{namespace}/{name}" if namespace else str(name)
    chart = args.get("chart_ref") or args.get("chart") or ""
    version = args.get("chart_version") or ""
    if args.get("release_state", args.get("state")) == "absent":
        return [plan_shape.entry("Helm release", shown, "delete", "release_state=absent")]
    status = res.get("status") or {}
    if not status or str(status.get("status", "")).startswith("uninstall"):
        return [plan_shape.entry("Helm release", shown, "create", f"install {chart} {version}".strip())]
    installed = status.get("chart", "")
    reason = f"{installed} -> {version}" if version and version not in installed else "values changed"
    return [plan_shape.entry("Helm release", shown, "update", reason)]


def _by_role(entries):
    roles = {}
    for item in entries:
        roles.setdefault(item["role"], []).append(item)
    return roles


def render_text(entries, applied):
    lines = []
    for role, items in _by_role(entries).items():
        shown = [i for i in items if i["action"] != "unchanged"]
        if not shown:
            continue
        lines.append(f"{role}:")
        for item in shown:
            mark = "!" if item["action"] in STANDOUT else " "
            reason = f" ({item['reason']})" if item.get("reason") else ""
            lines.append(f"  {mark} {item['action']:<9} {item['kind']} {item['name']}{reason}")
    lines.append(plan_shape.summary_line(entries, applied=applied))
    return "\n".join(lines)


def render_markdown(entries, applied, title):
    out = [f"### {title}", ""]
    shown = [i for i in entries if i["action"] != "unchanged"]
    if shown:
        out += ["| role | action | kind | name | reason |", "| --- | --- | --- | --- | --- |"]
        for item in shown:
            action = f"**{item['action']}**" if item["action"] in STANDOUT else item["action"]
            cells = [item["role"], action, item["kind"], f"`{item['name']}`", item.get("reason", "")]
            out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        out.append("")
    else:
        out += ["No changes.", ""]
    out += [f"**{plan_shape.summary_line(entries, applied=applied)}**", ""]
    return "\n".join(out)


def render_plan_file(entries, fingerprint, change_sets):
    """The plan file: the JSON plan, the fingerprint of its inputs and live state, the planned change sets."""
    return {**render_json(entries, False), "fingerprint": fingerprint, "change_sets": dict(change_sets)}


def render_json(entries, applied):
    return {
        "mode": "applied" if applied else "plan",
        "summary": plan_shape.summary_line(entries, applied=applied),
        "counts": plan_shape.counts(entries),
        "changes": [dict(item) for item in entries if item["action"] != "unchanged"],
    }
