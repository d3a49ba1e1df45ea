"""Damaged exports: truncated or missing variables, a truncated Keras file. Reading one is a one-line error naming
the export and the damage; the evaluator evaluates the others, marks the damaged row and exits non-zero; the
listing checks every export's files."""

import glob
import os
import shutil

import pytest

from conftest import run_zoo
from zoo import export
from zoo.models.vae import VAE, VAEConfig


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Three versions of one tiny VAE's export: 1 sound, 2 with a truncated variables file, 3 with no variables/."""
    root = tmp_path_factory.mktemp("damaged") / "exports"
    model = VAE(VAEConfig(latent_dim=2, hidden=(8,)), seed=0)
    model.compile()
    paths = [export.export_model(model, str(root), "vae", {"kind": "vae"}) for _ in range(3)]
    data_file = glob.glob(os.path.join(paths[1], "variables", "variables.data-*"))[0]
    with open(data_file, "r+b") as f:
        f.truncate(os.path.getsize(data_file) // 2)
    shutil.rmtree(os.path.join(paths[2], "variables"))
    return root, paths


def test_reading_a_damaged_export_is_one_line_naming_it_and_the_damage(exports):
    _, (sound, truncated, no_variables) = exports
    assert export.check_export(sound) is None and export.Export(sound).has("sample")
    for path, damage in ((truncated, "variables/ does not read"), (no_variables, "variables/ is missing")):
        with pytest.raises(export.ExportDamaged) as error:
            export.Export(path)
        message = str(error.value)
        assert message.startswith(f"{path} is damaged: {damage}") and "\n" not in message, message


def test_the_leaderboard_evaluates_the_sound_exports_and_marks_the_damaged_ones(exports, tmp_path):
    root, (sound, truncated, no_variables) = exports
    done = run_zoo("zoo.evaluate", "--all", str(root), "--out", str(tmp_path), "--num-samples", "100",
                   "--test-images", "100", "--iw-samples", "10")
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "2 damaged export(s)" in done.stderr
    results = (tmp_path / "RESULTS.md").read_text()
    sound_row = next(line for line in results.splitlines() if line.startswith(f"| {os.path.join('vae', '1')} |"))
    assert "damaged" not in sound_row and "not exported" not in sound_row
    assert "| vae/2 | vae |" in results and "damaged: variables/ does not read" in results
    assert "damaged: variables/ is missing" in results

    listed = run_zoo("zoo.export", "--list", str(root))
    assert listed.returncode == 1 and "Traceback" not in listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert lines["vae/1"].endswith("read") and "DAMAGED: variables/ does not read" in lines["vae/2"]
    assert "DAMAGED: variables/ is missing" in lines["vae/3"]
    unchecked = run_zoo("zoo.export", "--list", str(root), "--no-check")
    assert unchecked.returncode == 0 and unchecked.stdout.count("not checked") == 3


def test_a_truncated_keras_file_is_named_as_damaged_not_missing(exports, tmp_path):
    _, (sound, *_) = exports
    copy = tmp_path / "copy"
    shutil.copytree(sound, copy)
    keras_file = copy / export.KERAS_FILE
    with open(keras_file, "r+b") as f:
        f.truncate(os.path.getsize(keras_file) // 3)
    with pytest.raises(export.ExportDamaged, match="is damaged: it is not a complete .keras file"):
        export.load_model(str(copy))
    done = run_zoo("zoo.export", "--from", str(copy), "--set", "inpaint_steps=4", "--export-dir", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "is damaged: it is not a complete .keras file" in done.stderr and "File not found" not in done.stderr
