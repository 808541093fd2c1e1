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
import subprocess
import threading
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


def run_logged(argv, log_path, env=None, secrets=()):
    """Run ``argv``; return ``(rc, stdout, stderr)`` like ``run_command``. Every stderr line (where eksctl
    logs) is appended to ``log_path`` and reported as progress; ``secrets`` are masked in both."""

    def mask(text):
        for secret in secrets:
            if secret:
                text = text.replace(secret, "********")
        return text

    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {mask(' '.join(argv))}\n")
        log.flush()
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        except OSError as exc:
            log.write(f"cannot run: {exc}\n")
            return 127, "", str(exc)
        out_parts, err_parts = [], []
        reader = threading.Thread(target=lambda: out_parts.append(proc.stdout.read()), daemon=True)
        reader.start()
        for line in proc.stderr:
            err_parts.append(line)
            log.write(mask(line))
            log.flush()
            if line.strip():
                report(mask(line.strip()))
        rc = proc.wait()
        reader.join()
        log.write(f"exit status {rc}\n")
    return rc, "".join(out_parts), "".join(err_parts)
