# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: progress
type: aggregate
short_description: A progress line at least every 30 seconds while a task runs
version_added: 0.2.0
description:
  - While a task runs longer than O(interval) seconds, prints every O(interval) seconds a line with
    the task, the elapsed time and its latest status, so no wait is silent (eksctl, CloudFormation
    stack operations, Helm and Kubernetes waits, the load balancer's hostname, Flux readiness).
  - The latest status is the last line the module appended to its progress file (modules of this
    collection do, through C(plugins/module_utils/progress.py); the file's path is in the
    environment variable C(BIOMAGE_PROGRESS_FILE) of modules run on the control node), or, for a
    task retried with C(until), the attempt and what the last attempt returned.
  - A result carrying C(progress_log) (the whole log of a long command, such as eksctl's) is named
    when the task ends.
requirements:
  - enable it in callbacks_enabled (this repository's ansible.cfg does)
options:
  interval:
    description: Seconds between two progress lines of a running task (and before the first).
    type: float
    default: 30
    env:
      - name: BIOMAGE_PROGRESS_INTERVAL
    ini:
      - section: callback_progress
        key: interval
"""

import atexit
import os
import shutil
import tempfile
import threading
import time

from ansible.plugins.callback import CallbackBase

ENV = "BIOMAGE_PROGRESS_FILE"
STATUS_KEYS = ("status", "msg", "phase", "reason")


def elapsed(seconds):
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def last_line(path):
    """The last non-empty line of ``path`` (reads at most its last 4 KiB)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            lines = [line for line in handle.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def retry_status(result):
    """``attempt 3/60`` and the last attempt's status, from a retried task's result (never values)."""
    res = result._result
    text = f"attempt {res.get('attempts', '?')}/{res.get('retries', '?')}"
    for key in STATUS_KEYS:
        value = res.get(key)
        if isinstance(value, str) and value:
            return f"{text}: {key} {' '.join(value.split())[:120]}"
    return text


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "biomage.iac.progress"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._task = None
        self._started = 0.0
        self._last_print = 0.0
        self._status = ""
        self._file = None
        self._dir = None
        self._stop = threading.Event()
        self._thread = None

    # -- task lifecycle (main process) -------------------------------------------------------------
    def _begin(self, task):
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="biomage-progress-")
            # also when the run ends without its summary (Ctrl-C, an error of the engine)
            atexit.register(shutil.rmtree, self._dir, ignore_errors=True)
            self._thread = threading.Thread(target=self._tick, name="biomage-progress", daemon=True)
            self._thread.start()
        with self._lock:
            self._task = task.get_name()
            self._started = self._last_print = time.monotonic()
            self._status = ""
            self._file = os.path.join(self._dir, f"{task._uuid}.log")
            open(self._file, "w").close()
            # modules forked after this callback (the workers of this task) inherit it
            os.environ[ENV] = self._file

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._begin(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._begin(task)

    def v2_runner_retry(self, result):
        with self._lock:
            self._status = retry_status(result)

    def _end(self, result):
        # the task is done (with several hosts, the first one to finish ends its progress lines)
        with self._lock:
            self._task, progress_file = None, self._file
        try:
            wrote = os.path.getsize(progress_file) > 0
        except (OSError, TypeError):
            wrote = False
        if not wrote:
            return  # no progress line: no long command's log (reading the result would copy it, large or not)
        log = result._result.get("progress_log")
        if isinstance(log, str) and log:
            self._display.display(f"  {result._task.get_name()}: full log in {log}")

    def v2_runner_on_ok(self, result):
        self._end(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._end(result)

    def v2_runner_on_skipped(self, result):
        self._end(result)

    def v2_runner_on_unreachable(self, result):
        self._end(result)

    def v2_playbook_on_stats(self, stats):
        self._stop.set()
        with self._lock:
            self._task = None
        os.environ.pop(ENV, None)
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    # -- the ticker (a thread of the main process) ---------------------------------------------------
    def _tick(self):
        interval = float(self.get_option("interval"))
        while not self._stop.wait(min(1.0, interval / 4)):
            with self._lock:
                if self._task is None or time.monotonic() - self._last_print < interval:
                    continue
                now = time.monotonic()
                self._last_print = now
                status = last_line(self._file) if self._file else ""
                status = status or self._status or "no status reported yet"
                line = f"[progress] {self._task}: {elapsed(now - self._started)} elapsed; {status}"
            self._display.display(line)
