# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress of long waits, for the ``biomage.iac.progress`` callback.

A module cannot print while it runs. The callback gives every task a progress file (its path in the
environment variable ``BIOMAGE_PROGRESS_FILE``, inherited by modules run on the control node) and
prints, at least every 30 seconds while a task runs, its elapsed time and the file's last line. A
module reports its latest status with :func:`report` (a no-op when no callback listens), and runs a
long command with :func:`run_logged`, which keeps the command's whole log in a file and reports its
last line as it goes.
"""

from __future__ import annotations

import os
import sys
import time

ENV = "BIOMAGE_PROGRESS_FILE"
MAX_LINE = 300


def enabled():
    """True when a callback listens (the task has a progress file)."""
    return bool(os.environ.get(ENV))


def elapsed(seconds):
    """``45s``, ``4m30s``."""
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def report(message):
    """Append ``message`` (one line) to the task's progress file, when there is one."""
    target = os.environ.get(ENV)
    if not target:
        return
    line = " ".join(str(message).split())[:MAX_LINE]
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%H:%M:%S')} {line}\n")
    except OSError:
        pass  # progress is a courtesy: never a reason to fail


# The program run_logged runs its command under (as ``python -c``, arguments: log path, then the command).
# A module runs commands only through ``run_command``, which returns the output at the end; this small
# relay lets the command's stderr (where eksctl logs) reach the log file and the progress file line by
# line while it runs, and passes stdout and stderr on unchanged. Values listed in BIOMAGE_PROGRESS_MASK
# (one per line) are masked in the log and the progress lines.
_RELAY = """
import os, subprocess, sys, time
log_path, argv = sys.argv[1], sys.argv[2:]
secrets = [value for value in os.environ.pop("BIOMAGE_PROGRESS_MASK", "").split("\\n") if value]
progress = os.environ.get("BIOMAGE_PROGRESS_FILE")
def mask(text):
    for secret in secrets:
        text = text.replace(secret, "********")
    return text
with open(log_path, "a", encoding="utf-8") as log:
    log.write("$ " + mask(" ".join(argv)) + "\\n")
    log.flush()
    try:
        proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    except OSError as exc:
        log.write(f"cannot run: {exc}\\n")
        sys.stderr.write(str(exc))
        sys.exit(127)
    for line in proc.stderr:
        sys.stderr.write(line)
        sys.stderr.flush()
        log.write(mask(line))
        log.flush()
        if line.strip() and progress:
            try:
                with open(progress, "a", encoding="utf-8") as handle:
                    handle.write(time.strftime("%H:%M:%S ") + " ".join(mask(line).split())[:MAX_LINE] + "\\n")
            except OSError:
                pass
    rc = proc.wait()
    log.write(f"exit status {rc}\\n")
sys.exit(rc)
""".replace("MAX_LINE", str(MAX_LINE))


def run_logged(module, argv, log_path, secrets=()):
    """Run ``argv`` through ``module.run_command``; return its ``(rc, stdout, stderr)``. Every stderr line
    (where eksctl logs) is appended to ``log_path`` and reported as progress as it comes; ``secrets`` are
    masked in both."""
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    # the first progress line (the callback names the log at the task's end of a task that reported progress)
    report(f"{os.path.basename(argv[0])} started, its log is {log_path}")
    mask = "\n".join(secret for secret in secrets if secret)
    return module.run_command(
        [sys.executable, "-c", _RELAY, log_path, *argv],
        check_rc=False,
        environ_update={"BIOMAGE_PROGRESS_MASK": mask},
        expand_user_and_vars=False,
    )
