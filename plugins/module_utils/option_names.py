# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Messages that name what an operator sets.

A module's error may name one of its options ("set recreate_rollback_complete: true"), but an
operator running a playbook sets a role variable (``aws_resources_recreate_rollback_complete``).
A role passes its module the variables behind the options (``option_variables``) and the module
rewrites its error with :func:`name_variables` before failing.
"""

from __future__ import annotations

import re


def _rewrite(text, patterns):
    if not isinstance(text, str):
        return text
    for pattern, variable in patterns:
        text = pattern.sub(variable, text)
    return text


def _pattern(option):
    """An option's name where it is meant as the option: an identifier with an underscore anywhere,
    a plain word ("prune") only as a setting (``prune: true``, ``prune=false``), never in prose."""
    name = rf"(?<![\w.]){re.escape(option)}(?!\w)"
    if "_" not in option:
        name += r"(?=\s*[:=]\s*(?:true|false|yes|no)\b)"
    return re.compile(name)


def name_variables(exc, option_variables):
    """``exc`` with every option of ``option_variables`` named by its variable (message, fix, problems)."""
    patterns = [
        (_pattern(option), variable)
        for option, variable in sorted((option_variables or {}).items(), key=lambda pair: -len(pair[0]))
        if option and variable and option != variable
    ]
    if not patterns:
        return exc
    if hasattr(exc, "message"):
        exc.message = _rewrite(exc.message, patterns)
        exc.args = (exc.message, *exc.args[1:])
    if getattr(exc, "fix", None):
        exc.fix = _rewrite(exc.fix, patterns)
    if isinstance(getattr(exc, "problems", None), list):
        exc.problems[:] = [_rewrite(problem, patterns) for problem in exc.problems]
    details = getattr(exc, "details", None)
    if isinstance(details, dict) and isinstance(details.get("problems"), list):
        details["problems"] = [_rewrite(problem, patterns) for problem in details["problems"]]
    return exc
