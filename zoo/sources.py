"""The zoo's source files as the running process imported them, for AutoGraph.

AutoGraph converts a Python function to a graph the first time a `tf.function` traces it, which can be hours into a
run (an epoch-end sample, the export), and it reads the function's source from the file on disk at that moment:
TensorFlow 2.21 re-reads the whole file for every conversion (`inspect_utils._fix_linecache_record` compares a module
name with a module object, so it always calls `linecache.updatecache`). Edit the checkout during a run, or `git pull`,
and a later trace converts whatever lines now stand at the function's old line numbers: a crash, or silently another
function's graph (a DBN run crashes at its first fine-tuning epoch when one function is converted from another's
lines).

So each zoo module's file is read when the module is imported, and linecache serves those lines for it from then
on, to AutoGraph and to tracebacks alike: both see the code the process runs.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import linecache
import os
import sys

_pinned = {}  # path -> linecache entry (size, None, lines, path); mtime None: linecache.checkcache leaves it alone
_updatecache = linecache.updatecache


def pin(path, again=True):
    """Keep path's current lines in linecache for the rest of the process (again=False: unless already pinned)."""
    if path and path.endswith(".py") and (again or path not in _pinned) and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
        _pinned[path] = (sum(len(line) for line in lines), None, lines, path)
        linecache.cache[path] = _pinned[path]


def _updatecache_pinned(filename, module_globals=None):
    """linecache.updatecache, except that a pinned file is not read again."""
    if filename in _pinned:
        linecache.cache[filename] = _pinned[filename]
        return _pinned[filename][2]
    return _updatecache(filename, module_globals)


class _PinOnImport(importlib.abc.MetaPathFinder):
    """Pins each zoo module's source file just before the import system reads it (again on a reload)."""

    def find_spec(self, name, path, target=None):
        if not name.startswith("zoo."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None:
            pin(spec.origin)
        return spec


def pin_zoo_sources():
    """Pin the zoo package's own file and every zoo module imported from now on (idempotent)."""
    linecache.updatecache = _updatecache_pinned
    if not any(isinstance(finder, _PinOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PinOnImport())
    for module in list(sys.modules.values()):  # the package itself, and anything imported before this ran
        if (getattr(module, "__name__", "") or "").split(".")[0] == "zoo":
            pin(getattr(module, "__file__", None), again=False)
