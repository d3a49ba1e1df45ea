"""Editing the checkout during a run must not change what the run traces (zoo/sources.py)."""

import os
import shutil
import subprocess
import sys

from conftest import REPO

# In a copy of the package: import it, then delete as many lines from the top of models/base.py as stand between
# seed_pair's definition and step_seed's (an edit above them, as a developer or a git pull makes during a run). Then
# trace seed_pair for the first time: converted from the file as it is now, it would be step_seed's body.
SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
import tensorflow as tf
from zoo.models import base

lines = open(base.__file__).readlines()
shift = base.step_seed.__code__.co_firstlineno - base.seed_pair.__code__.co_firstlineno
with open(base.__file__, "w") as f:
    f.writelines(lines[shift:])


@tf.function
def traced():
    return base.seed_pair(7, 3)


print(traced().numpy().tolist())
"""


def test_a_run_traces_the_code_it_imported_after_its_files_are_edited(tmp_path):
    shutil.copytree(os.path.join(REPO, "zoo"), tmp_path / "zoo", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "edit_during_run.py").write_text(SCRIPT)  # a file: AutoGraph needs the traced function's source
    output = subprocess.run([sys.executable, str(tmp_path / "edit_during_run.py"), str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert output.returncode == 0, output.stderr[-3000:]
    assert output.stdout.strip().splitlines()[-1] == "[7, 3]"


def test_a_reloaded_module_is_pinned_as_reloaded(tmp_path):
    shutil.copytree(os.path.join(REPO, "zoo"), tmp_path / "zoo", ignore=shutil.ignore_patterns("__pycache__"))
    script = tmp_path / "reload.py"
    script.write_text("""
import importlib, inspect, sys
sys.path.insert(0, sys.argv[1])
from zoo import metrics
path = metrics.__file__
with open(path, "a") as f:
    f.write("\\n\\ndef added_after_import():\\n    return 1\\n")
importlib.reload(metrics)
print(inspect.getsource(metrics.added_after_import).split("(")[0])
""")
    output = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert output.returncode == 0, output.stderr[-3000:]
    assert output.stdout.strip().splitlines()[-1] == "def added_after_import"
