# Copyright: Biomage platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The modules a play will run, and their AnsiballZ payloads built ahead of their tasks.

ansible-core builds a module's payload (its module_utils found by parsing every imported file, then
zipped) in the task's worker, the first time the module runs in a playbook run, and keeps it in the
run's local temporary folder (``<local_tmp>/ansiballz_cache``) for the next tasks of that module. A
plan runs about ten distinct modules, each build 0.1 to 0.4 s on the task's critical path.

Here the modules a play names are found before it starts (its roles' task files, following the
includes that name a literal file or role), and a background process builds their payloads with
ansible-core's own ``modify_module``, in the order the play first uses them, into a folder of its own,
then moves each finished cache file into place. A worker that gets there first builds the module as
it always did (the background process never holds the lock a worker waits on), so this only ever
gives a head start: no task waits for it, and a module it missed or failed on is built as before.
"""

from __future__ import annotations

import ast
import glob
import hashlib
import os
import signal
import sys
import time
from pathlib import Path

from ansible import constants as C
from ansible.module_utils.common.text.converters import to_bytes
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.mod_args import ModuleArgsParser
from ansible.plugins.loader import module_loader
from ansible.utils.collection_loader._collection_finder import _get_collection_role_path
from ansible_collections.biomage.iac.plugins.plugin_utils import kube_objects

INCLUDE_TASKS = {"include_tasks", "import_tasks"}
INCLUDE_ROLES = {"include_role", "import_role"}
BLOCK_KEYS = ("block", "rescue", "always")
# the collection's action plugins that run another module on the host, and that module
RUNS_MODULE = {"biomage.iac.k8s_apply": kube_objects.MODULE}
BUDGET_SECONDS = 120  # the background process ends by then whatever it has left to build


def _short(action):
    return action.rsplit(".", 1)[-1] if action.startswith(("ansible.builtin.", "ansible.legacy.")) else action


def _literal(value):
    return isinstance(value, str) and value and "{{" not in value and "{%" not in value


def _load_tasks(path, loader):
    try:
        data = loader.load_from_file(str(path))
    except Exception:  # a file the play would fail on: its task reports it, not this
        return []
    return data if isinstance(data, list) else []


class PlayScan:
    """Walks task files in the order a play runs them and lists the modules they name.

    ``resolve_role(name)`` gives a role's folder (or None); ``parse(task)`` gives a task's action and
    arguments (ansible-core's ``ModuleArgsParser`` in :func:`play_modules`)."""

    def __init__(self, loader, parse, resolve_role):
        self.loader = loader
        self.parse = parse
        self.resolve_role = resolve_role
        self.modules = []
        self._files = set()

    def role(self, role_path, tasks_from="main"):
        tasks = Path(role_path) / "tasks"
        for suffix in ("", ".yml", ".yaml"):
            candidate = tasks / f"{tasks_from}{suffix}"
            if candidate.is_file():
                self.file(candidate)
                break
        # files included under a templated name: after the ones followed, in name order
        if tasks.is_dir():
            for other in sorted(tasks.glob("*.y*ml")):
                self.file(other)

    def file(self, path):
        path = Path(path).resolve()
        if path in self._files:
            return
        self._files.add(path)
        self.tasks(_load_tasks(path, self.loader), path.parent)

    def tasks(self, tasks, folder):
        for task in tasks or []:
            if not isinstance(task, dict):
                continue
            if any(key in task for key in BLOCK_KEYS):
                for key in BLOCK_KEYS:
                    self.tasks(task.get(key), folder)
                continue
            try:
                action, args = self.parse(task)
            except Exception:  # noqa: S112 (not a task this scan understands: the play reports it)
                continue
            self.action(action, args or {}, folder)

    def action(self, action, args, folder):
        """One task: an include is followed when it names a literal file or role, a module is listed."""
        short = _short(action)
        if short in INCLUDE_TASKS:
            name = args.get("file") or args.get("_raw_params")
            if _literal(name) and folder is not None:
                self.file(Path(folder) / name)
        elif short in INCLUDE_ROLES:
            name = args.get("name")
            role_path = self.resolve_role(name) if _literal(name) else None
            if role_path:
                tasks_from = args.get("tasks_from")
                self.role(role_path, tasks_from if _literal(tasks_from) else "main")
        else:
            module = RUNS_MODULE.get(action, action)
            if module not in self.modules:
                self.modules.append(module)


def _walk_blocks(scan, blocks, folder):
    for block in blocks or []:
        for key in BLOCK_KEYS:
            items = getattr(block, key, None)
            if items is None:  # a task
                scan.action(block.action, dict(block.args or {}), folder)
                break
            _walk_blocks(scan, items, folder)


def play_modules(play):
    """The modules ``play`` (a loaded ``Play``) names, in the order it first runs them."""
    collections = list(play.collections or [])
    basedir = play.get_loader().get_basedir() if play.get_loader() else None

    def parse(task):
        action, args, _delegate_to = ModuleArgsParser(task, collection_list=collections).parse(
            skip_action_validation=True
        )
        return action, args

    def resolve_role(name):
        found = _get_collection_role_path(name, collections)
        if found:
            return found[1]
        for base in [basedir and os.path.join(basedir, "roles"), *C.DEFAULT_ROLES_PATH]:
            if base and os.path.isdir(os.path.join(base, name, "tasks")):
                return os.path.join(base, name)
        return None

    scan = PlayScan(DataLoader(), parse, resolve_role)
    _walk_blocks(scan, play.pre_tasks, basedir)
    for role in play.get_roles():
        for dependency in role.get_all_dependencies():
            scan.role(dependency.get_role_path())
        scan.role(role.get_role_path())
    for blocks in (play.tasks, play.post_tasks, play.handlers):
        _walk_blocks(scan, blocks, basedir)
    return scan.modules


def find_module(collections):
    """``find(name)``: the module's FQCN and file, or None."""

    def find(name):
        context = module_loader.find_plugin_with_context(name, collection_list=collections)
        if not context.resolved or not context.plugin_resolved_path:
            return None
        return context.resolved_fqcn, context.plugin_resolved_path

    return find


def cache_name(fqcn):
    """The start of the file name ansible-core gives a module's cached payload (its Python name)."""
    if fqcn.count(".") < 2:
        return fqcn
    namespace, collection, name = fqcn.split(".", 2)
    if (namespace, collection) in {("ansible", "builtin"), ("ansible", "legacy")}:
        return f"ansible.modules.{name}"
    return f"ansible_collections.{namespace}.{collection}.plugins.modules.{name}"


def runs_code(path):
    """Whether a module file holds code to run: documentation-only files stand for action plugins
    that never run a module (ansible.builtin.set_fact, assert, debug, ...)."""
    try:
        tree = ast.parse(Path(path).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return False
    return any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) for node in tree.body)


def reuse_parsed_sources(module_common):
    """In this process only, parse each file a payload holds once for all the payloads it builds.

    ansible-core parses every file of a payload into a syntax tree (to find its imports) for each module it
    builds: the dozens of files of ``ansible.module_utils.basic`` and of a collection's module_utils again
    for every module of a play, most of the background process's work. A tree depends only on the file's
    text (and the name its errors give), so it is kept under those; ansible-core only reads the trees. The
    payloads hold the same files as without it."""
    original = module_common._compile_module_ast
    parsed = {}

    def parse(module_name, source_code):
        key = (module_name, hashlib.sha256(to_bytes(source_code)).digest())
        tree = parsed.get(key)
        if tree is None:
            tree = parsed[key] = original(module_name, source_code)
        return tree

    module_common._compile_module_ast = parse


def build(modules, local_tmp, compression, find, make, templar):
    """Builds each module's payload into a private copy of ansible-core's cache folder, then moves
    the finished file into ``<local_tmp>/ansiballz_cache`` unless a worker has put one there first.
    ``find`` is :func:`find_module`'s, ``make`` ansible-core's ``modify_module``. Runs in the background
    process; returns the FQCNs built."""
    target = Path(local_tmp) / "ansiballz_cache"
    private = Path(local_tmp) / f"ansiballz_ahead-{os.getpid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    # this process's own copy of the constant: ansible-core writes its cache under it
    C.DEFAULT_LOCAL_TMP = str(private)
    task_vars = {"ansible_python_interpreter": sys.executable, "ansible_playbook_python": sys.executable}
    deadline = time.monotonic() + BUDGET_SECONDS
    built = []
    for name in modules:
        if time.monotonic() > deadline:
            break
        found = find(name)
        if found is None or not runs_code(found[1]):
            continue
        fqcn, path = found
        if glob.glob(glob.escape(str(target / cache_name(fqcn))) + "-*"):
            continue  # built earlier in this run (an earlier play, or a task)
        try:
            make(
                module_name=fqcn.rsplit(".", 1)[-1],
                module_path=path,
                module_args={},
                templar=templar,
                task_vars=dict(task_vars),
                module_compression=compression,
                remote_is_local=True,
            )
        except Exception:  # noqa: S112 (its task builds it and reports what is wrong)
            continue
        target.mkdir(mode=0o700, exist_ok=True)
        for done in (private / "ansiballz_cache").glob("*"):
            if not done.name.endswith((".lock", "-part")) and not (target / done.name).exists():
                done.rename(target / done.name)
        built.append(fqcn)
    return built


def start(work):
    """Runs ``work()`` in a forked background process (returns its pid, or None where fork is not
    available). The process leaves with ``os._exit``: the playbook's exit handlers (which remove the
    local temporary folder) stay the playbook's."""
    if not hasattr(os, "fork"):
        return None
    pid = os.fork()
    if pid:
        return pid
    status = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the playbook's; it stops this process
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
        work()
    except BaseException:  # a head start only: nothing to report
        status = 1
    finally:
        os._exit(status)


def stop(pids):
    """Ends the background processes still running and reaps them all."""
    for pid in pids:
        try:
            if os.waitpid(pid, os.WNOHANG) == (0, 0):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        except (ChildProcessError, ProcessLookupError):
            pass
