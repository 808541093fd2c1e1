# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run per environment: a lock kept in the environment's own AWS account.

The lock is one DynamoDB item per environment (table ``biomage-iac-locks`` by default, created on
first use, pay-per-request) written with conditional writes, so two runs can never both hold it:

* **holder**: ``run_id`` (host, pid and start time of the ``ansible-playbook`` process), who
  (local user, AWS identity, CI/AWX job when known), host, playbook, since when.
* **lease**: ``expires`` (epoch seconds). A holder renews it; anyone may take a lock whose lease
  has expired, so a holder that died with its machine blocks others for one lease at most.
* **renewer**: acquiring starts a detached process on the controller that watches the
  ``ansible-playbook`` process. While it lives, the renewer extends the lease every lease/3 seconds;
  when it exits (normally, failed, or killed with SIGKILL) the renewer releases the lock within a
  second and ends. A holder whose process is gone from *this* host is taken over at once.
* **break**: an operator removes a lock by hand with a reason; the break is logged in the table
  (item ``<environment>#break#<time>``) with the holder it removed.

Only calls with a condition change the item, so a renewer whose lock was broken or taken over can
never write over the new holder.
"""

from __future__ import annotations

import getpass
import os
import socket
import time

from ansible_collections.biomage.iac.plugins.module_utils.aws import (
    AwsError,
    BotoCoreError,
    ClientError,
    aws_error,
    is_error_code,
)

DEFAULT_TABLE = "biomage-iac-locks"
KEY = "lock_id"
# environment variables that say which CI or AWX job a run belongs to (recorded in the holder)
JOB_VARIABLES = ("GITHUB_REPOSITORY", "GITHUB_RUN_ID", "GITHUB_ACTOR", "AWX_JOB_ID", "JOB_ID", "CI_JOB_ID")


class LockError(AwsError):
    """The environment lock cannot be used or is held by another run."""


def utc_iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


# ---------------------------------------------------------------------------------------------
# processes


def _proc_stat(pid):
    """(state, parent pid, start time in clock ticks) of ``pid`` from /proc, or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def _proc_argv(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [part.decode("utf-8", "replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


def process_start(pid):
    stat = _proc_stat(pid)
    return stat[2] if stat else None


def process_alive(pid, start=None):
    """True while ``pid`` runs (not a zombie) and, when ``start`` is given, is the same process."""
    if not pid:
        return False
    stat = _proc_stat(pid)
    if stat is None:
        if os.path.isdir("/proc/self"):
            return False
        try:  # no /proc (macOS): signal 0 tells whether the pid exists
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if stat[0] in ("Z", "X"):
        return False
    return start is None or stat[2] == start


def _is_playbook(argv):
    return any(os.path.basename(part) == "ansible-playbook" for part in argv[:2])


def find_playbook_process(pid=None):
    """The outermost ``ansible-playbook`` process among the ancestors of this process (Linux /proc).

    Ansible's workers are forks of the ``ansible-playbook`` process (same command line), so the
    walk continues upwards while the parent is an ``ansible-playbook`` too. A module run by the
    connection ``biomage.iac.forkserver`` is a child of its fork server, not of the task's worker: the
    walk starts from the worker it names (``BIOMAGE_FORKSERVER_CALLER``). Returns
    ``(pid, start, argv)`` or ``(None, None, [])`` when there is none (or no /proc).
    """
    caller = os.environ.get("BIOMAGE_FORKSERVER_CALLER", "")
    current = pid or (int(caller) if caller.isdigit() else 0) or os.getppid()
    found = (None, None, [])
    seen = 0
    while current and current > 1 and seen < 64:
        seen += 1
        stat = _proc_stat(current)
        if stat is None:
            break
        argv = _proc_argv(current)
        if _is_playbook(argv):
            found = (current, stat[2], argv)
        elif found[0] is not None:
            break
        current = stat[1]
    return found


def playbooks_of(argv):
    return [part for part in argv[1:] if part.endswith((".yml", ".yaml")) and not part.startswith("-")]


def describe_holder(aws_identity=None, playbook=None, pid=None, pid_start=None, argv=None, env=None):
    """The holder record of this run (everything except the lease)."""
    env = os.environ if env is None else env
    host = socket.gethostname()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    jobs = {name: env[name] for name in JOB_VARIABLES if env.get(name)}
    who = user + (f" ({aws_identity})" if aws_identity else "")
    if jobs:
        who += " " + " ".join(f"{name}={value}" for name, value in sorted(jobs.items()))
    playbook = playbook or " ".join(playbooks_of(argv or [])) or "?"
    run_id = f"{host}:{pid}:{pid_start}" if pid else f"{host}:{os.getpid()}:{time.time():.0f}"
    return {
        "run_id": run_id,
        "who": who,
        "host": host,
        "pid": pid or 0,
        "pid_start": pid_start or 0,
        "playbook": playbook,
    }


def holder_text(holder, now=None):
    """One line naming a holder, for messages."""
    now = time.time() if now is None else now
    expires = int(holder.get("expires", 0))
    left = f"{expires - int(now)} s left" if expires > now else "expired"
    return (
        f"run {holder.get('run_id')} by {holder.get('who')} on {holder.get('host')} "
        f"(playbook {holder.get('playbook')}), since {holder.get('since')}, "
        f"lease until {utc_iso(expires)} ({left})"
    )


# ---------------------------------------------------------------------------------------------
# DynamoDB


def _from_item(item):
    if not item:
        return None
    out = {}
    for name, value in item.items():
        if "N" in value:
            out[name] = int(float(value["N"]))
        elif "S" in value:
            out[name] = value["S"]
    return out


def _to_item(record):
    item = {}
    for name, value in record.items():
        if isinstance(value, bool) or value is None:
            continue
        item[name] = {"N": str(int(value))} if isinstance(value, (int, float)) else {"S": str(value)}
    return item


def ensure_table(client, settings, table, check_mode=False, wait_seconds=60):
    """Create the lock table when it is missing (pay-per-request). True when it was (or would be) created."""
    try:
        client.describe_table(TableName=table)
        return False
    except (BotoCoreError, ClientError) as exc:
        if not is_error_code(exc, "ResourceNotFoundException"):
            raise _error(exc, settings, f"read the lock table {table}") from exc
    if check_mode:
        return True
    try:
        client.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": "ManagedBy", "Value": "biomage.iac"}],
        )
    except (BotoCoreError, ClientError) as exc:
        if not is_error_code(exc, "ResourceInUseException"):  # another run created it meanwhile
            raise _error(exc, settings, f"create the lock table {table}") from exc
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            status = client.describe_table(TableName=table)["Table"].get("TableStatus")
        except (BotoCoreError, ClientError) as exc:
            raise _error(exc, settings, f"read the lock table {table}") from exc
        if status == "ACTIVE":
            return True
        time.sleep(1)
    raise LockError(f"the lock table {table} did not become ACTIVE within {wait_seconds} s.", fix="run again.")


def _error(exc, settings, action):
    return aws_error(exc, settings, action, needs="the DynamoDB lock table (dynamodb:*Item, CreateTable)")


def read(client, settings, table, environment):
    """The current holder of ``environment``'s lock (a dict) or None."""
    try:
        response = client.get_item(TableName=table, Key={KEY: {"S": environment}}, ConsistentRead=True)
    except (BotoCoreError, ClientError) as exc:
        raise _error(exc, settings, f"read the lock of {environment}") from exc
    return _from_item(response.get("Item"))


def _stale_here(holder, host):
    """A holder whose process is gone from this host (it died without releasing)."""
    if holder.get("host") != host or not holder.get("pid"):
        return False
    return not process_alive(holder["pid"], holder.get("pid_start"))


def acquire(client, settings, table, environment, holder, lease_seconds, now=None):
    """Try once to take the lock for ``holder``. Returns ``(outcome, current)``.

    ``outcome`` is ``"acquired"`` (it was free, expired, or its holder's process is gone from this
    host), ``"renewed"`` (this run held it already: site.yml's second play) or ``"held"`` (another
    run holds it; ``current`` names that run).
    """
    now = time.time() if now is None else now
    current = read(client, settings, table, environment)
    if current and current.get("run_id") == holder["run_id"]:
        if renew(client, settings, table, environment, holder["run_id"], lease_seconds, now=now):
            current["expires"] = int(now + lease_seconds)
            return "renewed", current
        current = read(client, settings, table, environment)
    if current and current.get("expires", 0) > now and not _stale_here(current, holder["host"]):
        return "held", current
    record = dict(holder, environment=environment, since=utc_iso(now), expires=int(now + lease_seconds))
    record["lease_seconds"] = int(lease_seconds)
    if current:
        record["took_over"] = holder_text(current, now)
    item = _to_item(record)
    item[KEY] = {"S": environment}
    kwargs = {"TableName": table, "Item": item}
    if current:  # compare and swap: only over the very holder we read
        kwargs["ConditionExpression"] = "run_id = :seen"
        kwargs["ExpressionAttributeValues"] = {":seen": {"S": current["run_id"]}}
    else:
        kwargs["ConditionExpression"] = f"attribute_not_exists({KEY})"
    try:
        client.put_item(**kwargs)
    except (BotoCoreError, ClientError) as exc:
        if is_error_code(exc, "ConditionalCheckFailedException"):
            return "held", read(client, settings, table, environment) or current
        raise _error(exc, settings, f"take the lock of {environment}") from exc
    return "acquired", record


def renew(client, settings, table, environment, run_id, lease_seconds, now=None):
    """Extend the lease of ``run_id``; False when it no longer holds the lock."""
    now = time.time() if now is None else now
    try:
        client.update_item(
            TableName=table,
            Key={KEY: {"S": environment}},
            UpdateExpression="SET expires = :expires, renewed = :renewed",
            ConditionExpression="run_id = :me",
            ExpressionAttributeValues={
                ":me": {"S": run_id},
                ":expires": {"N": str(int(now + lease_seconds))},
                ":renewed": {"S": utc_iso(now)},
            },
        )
    except (BotoCoreError, ClientError) as exc:
        if is_error_code(exc, "ConditionalCheckFailedException"):
            return False
        raise _error(exc, settings, f"renew the lock of {environment}") from exc
    return True


def set_renewer(client, settings, table, environment, run_id, renewer_pid):
    try:
        client.update_item(
            TableName=table,
            Key={KEY: {"S": environment}},
            UpdateExpression="SET renewer_pid = :pid",
            ConditionExpression="run_id = :me",
            ExpressionAttributeValues={":me": {"S": run_id}, ":pid": {"N": str(int(renewer_pid))}},
        )
    except (BotoCoreError, ClientError) as exc:
        if not is_error_code(exc, "ConditionalCheckFailedException"):
            raise _error(exc, settings, f"record the lock renewer of {environment}") from exc


def release(client, settings, table, environment, run_id):
    """Release the lock if ``run_id`` holds it. True when it did."""
    try:
        client.delete_item(
            TableName=table,
            Key={KEY: {"S": environment}},
            ConditionExpression="run_id = :me",
            ExpressionAttributeValues={":me": {"S": run_id}},
        )
    except (BotoCoreError, ClientError) as exc:
        if is_error_code(exc, "ConditionalCheckFailedException"):
            return False
        raise _error(exc, settings, f"release the lock of {environment}") from exc
    return True


def break_lock(client, settings, table, environment, reason, by, now=None):
    """Remove the lock whoever holds it, and log the break. Returns the removed holder (or None)."""
    now = time.time() if now is None else now
    if not reason or not reason.strip():
        raise LockError("breaking a lock needs a reason.", fix="pass -e preflight_lock_break_reason='<why>'.")
    current = read(client, settings, table, environment)
    log = {
        "environment": environment,
        "broken_by": by,
        "reason": reason.strip(),
        "at": utc_iso(now),
        "removed": holder_text(current, now) if current else "nothing (the lock was free)",
    }
    item = _to_item(log)
    item[KEY] = {"S": f"{environment}#break#{utc_iso(now)}#{os.getpid()}"}
    try:
        client.put_item(TableName=table, Item=item)
        if current:
            client.delete_item(
                TableName=table,
                Key={KEY: {"S": environment}},
                ConditionExpression="run_id = :seen",
                ExpressionAttributeValues={":seen": {"S": current["run_id"]}},
            )
    except (BotoCoreError, ClientError) as exc:
        if is_error_code(exc, "ConditionalCheckFailedException"):
            raise LockError(
                f"the lock of {environment} changed hands while it was being broken; nothing was removed.",
                fix="read the new holder (playbooks/unlock.yml without a reason) and decide again.",
            ) from exc
        raise _error(exc, settings, f"break the lock of {environment}") from exc
    return current, log


# ---------------------------------------------------------------------------------------------
# the renewer


def renew_loop(new_client, settings, table, environment, run_id, lease_seconds, watch_pid, watch_start, poll=0.5):
    """Keep ``run_id``'s lease while ``watch_pid`` lives; release the lock when it is gone.

    Returns why it ended: ``"released"``, ``"lost"`` (broken or taken over) or ``"unreachable"``.
    """
    client = new_client()
    interval = max(1.0, lease_seconds / 3.0)
    next_renewal = time.monotonic() + interval
    failures_since = None
    while True:
        if not process_alive(watch_pid, watch_start):
            for _attempt in range(5):
                try:
                    release(client, settings, table, environment, run_id)
                    return "released"
                except AwsError:
                    time.sleep(2)
            return "unreachable"
        if time.monotonic() >= next_renewal:
            try:
                if not renew(client, settings, table, environment, run_id, lease_seconds):
                    return "lost"
                failures_since = None
                next_renewal = time.monotonic() + interval
            except AwsError:
                failures_since = failures_since or time.monotonic()
                next_renewal = time.monotonic() + 2
                if time.monotonic() - failures_since > lease_seconds:
                    return "unreachable"  # the lease has run out anyway: stop trying
        time.sleep(poll)


def spawn_renewer(run):
    """Run ``run()`` in a detached grandchild process (own session, stdio on /dev/null); returns its pid.

    The module's process exits right after; the grandchild never returns into the module's code
    (it ends with ``os._exit``), so Ansible's clean-up of the module's files does not run twice.
    """
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # child: new session, fork the renewer, report its pid, exit
        try:
            os.close(read_end)
            os.setsid()
            grandchild = os.fork()
            if grandchild == 0:
                os.close(write_end)
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.closerange(3, 1024)
                code = 0
                try:
                    run()
                except BaseException:  # a renewer ends quietly: the lease covers it
                    code = 1
                os._exit(code)
            os.write(write_end, str(grandchild).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    with os.fdopen(read_end, "rb") as handle:
        data = handle.read().decode() or "0"
    return int(data)
