#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: environment_lock
short_description: Take, release, read or break the lock that lets one run change an environment
version_added: 0.1.0
description:
  - One DynamoDB item per environment in the environment's own account (table C(biomage-iac-locks)
    by default, created on first use) says which run may change it; it is only written with
    conditional writes, so two runs never both hold it.
  - The holder is named (run id, who with their AWS identity and CI/AWX job, host, playbook, since when)
    and holds a lease. C(state=acquired) tries once and returns C(acquired=false) with the holder when
    another run holds the lock (the role C(biomage.iac.preflight) waits with retries or fails at once);
    a lock whose lease expired, or whose holder's process is gone from this host, is taken over.
  - On success it starts a detached renewer on the controller that extends the lease every
    O(lease_seconds)/3 seconds while the C(ansible-playbook) process lives and releases the lock
    within a second when that process ends, however it ends (SIGKILL included). If the controller
    itself dies, the lease expires after O(lease_seconds).
  - C(state=broken) removes the lock whoever holds it, with a reason, and logs the break in the
    table (item C(<environment>#break#<time>)).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - biomage.iac.aws_client
  - biomage.iac.attributes
author:
  - Biomage platform team (@biomage-org)
attributes:
  check_mode:
    support: full
    details:
      - Reads the lock and the table and reports what would happen; writes nothing and starts no renewer.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Acquiring a lock this run holds already renews it; releasing a free lock changes nothing.
options:
  environment:
    description: The environment whose lock this is (C(biomage_environment)).
    type: str
    required: true
  state:
    description:
      - C(acquired) takes the lock (one try), C(released) releases it if this run holds it,
        C(current) only reads it, C(broken) removes it whoever holds it (needs O(reason)).
    type: str
    choices: [acquired, released, current, broken]
    default: acquired
  table:
    description: The DynamoDB table of the locks (created when missing, except in check mode and by C(current)).
    type: str
    default: biomage-iac-locks
  lease_seconds:
    description: How long a holder keeps the lock without renewing it.
    type: int
    default: 300
  renew:
    description: Start the renewer after acquiring (false leaves the lease to run out unless released).
    type: bool
    default: true
  aws_identity:
    description: The caller's AWS identity (ARN), recorded in the holder.
    type: str
  playbook:
    description:
      - The playbook recorded in the holder (default the playbook files of the C(ansible-playbook) command line).
    type: str
  watch_pid:
    description:
      - The process whose life the lock follows (default the C(ansible-playbook) process this module runs under,
        found among its ancestors).
    type: int
  reason:
    description: Why the lock is broken (C(state=broken)); logged with the holder it removed.
    type: str
"""

EXAMPLES = r"""
- name: Take the environment lock (one try)
  biomage.iac.environment_lock:
    environment: staging
    aws_identity: "{{ preflight_caller.arn }}"
  register: lock

- name: Break a lock left by a run that cannot finish
  biomage.iac.environment_lock:
    environment: staging
    state: broken
    reason: "CI runner lost; checked with the on-call"
"""

RETURN = r"""
acquired:
  description: Whether this run holds the lock after the call (C(state=acquired)).
  returned: always
  type: bool
outcome:
  description: C(acquired), C(renewed), C(held) (by another run), C(released), C(free), C(broken) or C(would_acquire).
  returned: always
  type: str
holder:
  description: The holder after the call (run_id, who, host, pid, playbook, since, expires), or null when free.
  returned: always
  type: dict
holder_text:
  description: The holder in one line, for messages.
  returned: always
  type: str
run_id:
  description: This run's id (host:pid:start of its ansible-playbook process).
  returned: always
  type: str
table_created:
  description: Whether the lock table was created by this call.
  returned: always
  type: bool
renewer_pid:
  description: The pid of the renewer started by this call (0 when none).
  returned: always
  type: int
break_log:
  description: The break record written (C(state=broken)).
  returned: when state is broken
  type: dict
"""

import os
import time

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.biomage.iac.plugins.module_utils.aws import (
    AWS_CLIENT_ARGUMENT_SPEC,
    make_client,
    module_client,
    module_settings,
)
from ansible_collections.biomage.iac.plugins.module_utils.errors import BiomageError, fail
from ansible_collections.biomage.iac.plugins.module_utils.lock import environment_lock as lock


def _renewer_client_factory(module, settings):
    """A function building a DynamoDB client in the renewer (after the fork) with this module's settings."""
    params = module.params
    renewer_settings = dict(settings, connect_timeout=5.0, read_timeout=10.0, max_attempts=2)
    renewer_settings["profile"] = params.get("profile")
    keys = {
        "AWS_ACCESS_KEY_ID": params.get("access_key"),
        "AWS_SECRET_ACCESS_KEY": params.get("secret_key"),
        "AWS_SESSION_TOKEN": params.get("session_token"),
    }

    def new_client():
        for name, value in keys.items():
            if value:
                os.environ[name] = value
        return make_client("dynamodb", renewer_settings)

    return new_client, renewer_settings


def main():
    spec = dict(
        environment=dict(type="str", required=True),
        state=dict(type="str", choices=["acquired", "released", "current", "broken"], default="acquired"),
        table=dict(type="str", default=lock.DEFAULT_TABLE),
        lease_seconds=dict(type="int", default=300),
        renew=dict(type="bool", default=True),
        aws_identity=dict(type="str"),
        playbook=dict(type="str"),
        watch_pid=dict(type="int"),
        reason=dict(type="str"),
    )
    spec.update(AWS_CLIENT_ARGUMENT_SPEC)
    module = AnsibleAWSModule(
        argument_spec=spec, supports_check_mode=True, required_if=[("state", "broken", ["reason"])]
    )
    params = module.params
    environment, table, state = params["environment"], params["table"], params["state"]
    lease = params["lease_seconds"]
    result = dict(changed=False, acquired=False, holder=None, holder_text="", table_created=False, renewer_pid=0)
    try:
        if lease < 30:
            raise lock.LockError(f"lease_seconds={lease} is too short.", fix="use 30 seconds or more.")
        client, settings = module_client(module, "dynamodb"), module_settings(module)
        pid, start, argv = lock.find_playbook_process()
        if params["watch_pid"]:
            pid, start = params["watch_pid"], lock.process_start(params["watch_pid"])
        holder = lock.describe_holder(params["aws_identity"], params["playbook"], pid, start, argv)
        result["run_id"] = holder["run_id"]
        if state == "current":
            current = None
            if not lock.ensure_table(client, settings, table, check_mode=True):
                current = lock.read(client, settings, table, environment)
            result.update(outcome="held" if current else "free", holder=current)
        elif state == "released":
            current = (
                lock.read(client, settings, table, environment)
                if not lock.ensure_table(client, settings, table, check_mode=True)
                else None
            )
            mine = bool(current) and current.get("run_id") == holder["run_id"]
            if mine and not module.check_mode:
                lock.release(client, settings, table, environment, holder["run_id"])
            result.update(outcome="released" if mine else "free", holder=None if mine else current, changed=mine)
        elif state == "broken":
            if module.check_mode:
                current = lock.read(client, settings, table, environment)
                result.update(outcome="broken", holder=current, changed=bool(current))
            else:
                removed, log = lock.break_lock(
                    client, settings, table, environment, params["reason"], holder["who"] + " on " + holder["host"]
                )
                result.update(outcome="broken", holder=removed, changed=True, break_log=log)
                module.warn(f"environment lock of {environment} broken: {log['removed']}; reason: {log['reason']}")
        else:
            result["table_created"] = lock.ensure_table(client, settings, table, check_mode=module.check_mode)
            if module.check_mode:
                current = None if result["table_created"] else lock.read(client, settings, table, environment)
                free = not current or current.get("expires", 0) <= time.time() or current["run_id"] == holder["run_id"]
                result.update(outcome="would_acquire" if free else "held", holder=current, acquired=free)
            else:
                outcome, current = lock.acquire(client, settings, table, environment, holder, lease)
                result.update(outcome=outcome, holder=current, acquired=outcome != "held")
                result["changed"] = result["table_created"]
                renewer_alive = (
                    outcome == "renewed"
                    and current.get("host") == holder["host"]
                    and lock.process_alive(current.get("renewer_pid"))
                )
                if outcome != "held" and params["renew"] and pid and not renewer_alive:
                    new_client, renewer_settings = _renewer_client_factory(module, settings)
                    run_id = holder["run_id"]

                    def run():
                        lock.renew_loop(new_client, renewer_settings, table, environment, run_id, lease, pid, start)

                    result["renewer_pid"] = lock.spawn_renewer(run)
                    lock.set_renewer(client, settings, table, environment, run_id, result["renewer_pid"])
                elif outcome != "held" and not pid:
                    module.warn(
                        "no ansible-playbook process found above this module: the environment lock is not renewed "
                        f"and expires after {lease} s unless released."
                    )
        if result["holder"]:
            result["holder_text"] = lock.holder_text(result["holder"])
    except BiomageError as exc:
        fail(module, exc, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
