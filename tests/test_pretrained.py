"""The pretrained registry: every shipped file is the one the registry names, loads offline into a model whose verbs
work, exports the serving contract, and a missing, truncated or changed file or an unknown name is one clear error.
(The figures of every entry against its card: `python -m zoo.pretrained verify`, a CI step of its own.)"""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from conftest import run_python, run_zoo, tiny_data
from zoo import pretrained, train
from zoo.models.vae import VAEConfig


def test_every_entry_has_its_files_its_hash_and_a_card_and_the_registry_stays_under_60_mb():
    assert pretrained.list() == list(pretrained.REGISTRY)
    # at least one per family, and every model a README headline quotes
    assert set(pretrained.list()) >= {"rbm_centered", "rbm_tempering", "dbn_hinton2006", "vae_iwae", "vae_2d",
                                      "conv_vae", "gan_mlp", "dcgan", "dae"}
    total = 0
    for name in pretrained.list():
        card = pretrained.card(name)
        path = pretrained.weights_path(name)
        assert card["file"]["sha256"] == pretrained.REGISTRY[name] == pretrained.sha256(path)
        assert card["file"]["bytes"] == os.path.getsize(path)
        assert card["name"] == name and card["training"]["command"].startswith("python -m zoo.")
        assert card["training"]["commit"] and card["seed"] is not None and card["file"]["parameters"] > 0
        assert "figures" in card and "check" in card, f"{name} is not measured: python -m zoo.pretrained measure"
        total += os.path.getsize(path)
    assert total < 60 * 2 ** 20


def test_figures_measured_again_are_held_to_the_card_within_the_tolerance():
    recorded = pretrained.card("vae_iwae")["figures"]
    assert pretrained.compare(recorded, recorded) == []
    moved = json.loads(json.dumps(recorded))
    moved["likelihood"]["nll_nats"] += 1.5  # beyond 1 nat + one standard error (0.23)
    moved["samples"]["classifier_score"] -= 0.1  # within 0.15
    moved["reconstruction"]["mse"] *= 1.5
    problems = pretrained.compare(moved, recorded)
    assert len(problems) == 2 and problems[0].startswith("NLL 86.64 nats, card 85.14")
    assert problems[1].startswith("reconstruction error")


def test_a_conditional_entrys_label_accuracy_and_test_error_are_held_to_the_card_and_headlined():
    recorded = {"samples": {"classifier_score": 9.5, "frechet_distance": 3.0, "label_accuracy": 0.99},
                "classification": {"test_error": 0.015},
                "likelihood": {"nll_nats": 81.6, "standard_error": 0.2, "method": "importance-weighted bound of "
                               "log p(x|y), k=5000"}}
    assert pretrained.compare(recorded, recorded) == []
    moved = json.loads(json.dumps(recorded))
    moved["samples"]["label_accuracy"] = 0.95
    moved["classification"]["test_error"] = 0.03  # within 0.02
    assert pretrained.compare(moved, recorded) == ["label accuracy 0.950, card 0.990"]
    moved["classification"]["test_error"] = 0.05
    assert pretrained.compare(moved, recorded)[1] == "test error 0.0500, card 0.0150"
    assert pretrained.headline({"figures": recorded}) == ("test -log p(x|y) 81.60 nats; score 9.50, FD 3.00; label "
                                                          "accuracy 99.0%; test error 1.50%")


def test_the_registry_table_of_the_docs_is_the_cards():
    with open(os.path.join(os.path.dirname(__file__), "..", "docs", "pretrained.md")) as f:
        docs = f.read()
    assert pretrained.registry_table() in docs, "docs/pretrained.md: paste `python -m zoo.pretrained list --markdown`"


@pytest.mark.parametrize("name", sorted(pretrained.REGISTRY))
def test_every_entry_loads_offline_with_every_verb_of_its_kind(name):
    model = pretrained.load(name)
    card = pretrained.card(name)
    assert list(model.SIGNATURES) == card["signatures"] and model.KIND == card["kind"]
    images = np.zeros((2, 28, 28, 1), np.float32)
    if "sample" in model.SIGNATURES:
        first = np.asarray(model.generate(np.array([3, 4], np.int32)))
        assert first.shape == (2, 28, 28, 1) and 0 <= first.min() and first.max() <= 1
        np.testing.assert_array_equal(first, model.generate(np.array([3, 4], np.int32)))  # the seed fixes them
    if "reconstruct" in model.SIGNATURES:
        assert model.reconstruct(images).shape == (2, 28, 28, 1)
    if "inpaint" in model.SIGNATURES:
        assert model.inpaint(images, np.ones_like(images), 0).shape == (2, 28, 28, 1)


@pytest.fixture
def copy_of_the_weights(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    shutil.copytree(pretrained.WEIGHTS, folder)
    monkeypatch.setattr(pretrained, "WEIGHTS", str(folder))
    return folder


def test_a_missing_truncated_or_changed_file_and_an_unknown_name_are_one_line_errors(copy_of_the_weights):
    name = "vae_2d"
    path = copy_of_the_weights / f"{name}.npz"
    expected = pretrained.REGISTRY[name]
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(pretrained.PretrainedError, match=f"{path} has SHA-256 .*, expected {expected}: the file is "
                                                         "truncated or changed"):
        pretrained.load(name)
    path.unlink()
    with pytest.raises(pretrained.PretrainedError, match=f"{path} is missing \\(expected SHA-256 {expected}\\)"):
        pretrained.load(name)
    with pytest.raises(pretrained.PretrainedError, match="no pretrained model 'vae_3d'; the registry has rbm_centered"):
        pretrained.load("vae_3d")
    for verb in (["show", "vae_3d"], ["export", "vae_3d"]):
        done = run_zoo("zoo.pretrained", *verb)
        assert done.returncode == 2 and "no pretrained model 'vae_3d'" in done.stderr
        assert "Traceback" not in done.stderr


def test_an_export_of_a_pretrained_model_serves_without_zoo_and_says_where_it_came_from(tmp_path):
    done = run_zoo("zoo.pretrained", "export", "vae_2d", "--export-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    path = tmp_path / "vae_2d" / "1"
    check = run_python(
        "import sys, json, tensorflow as tf\n"
        "assert 'zoo' not in sys.modules\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "x = m.signatures['sample'](num_samples=tf.constant(4), seed=tf.constant(0))['images']\n"
        "print(x.shape, json.load(open(sys.argv[1] + '/assets/model_card.json'))['pretrained'])\n", str(path))
    assert check.returncode == 0, check.stderr[-2000:]
    assert check.stdout.split() == ["(4,", "28,", "28,", "1)", "vae_2d"]
    card = json.loads((path / "assets" / "model_card.json").read_text())
    assert card["pretrained_sha256"] == pretrained.REGISTRY["vae_2d"] and card["kind"] == "vae"


def test_the_first_picture_shows_each_models_samples(tmp_path):
    out = pretrained.samples_picture(str(tmp_path / "zoo.png"), names=["vae_2d", "dae"], count=4)
    assert os.path.getsize(out) > 1000
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_results_md_marks_the_rows_the_registry_retrains_with_the_shipped_figures_beside_them():
    from zoo import leaderboard

    root = os.path.join(os.path.dirname(__file__), "..")
    with open(os.path.join(root, "RESULTS.json")) as f:
        rows = json.load(f)["exports"]
    table = leaderboard.shipped_table(rows)
    by_name = {line.split(" | ")[0].strip("| `"): line.split(" | ") for line in table if line.startswith("| `")}
    assert sorted(by_name) == sorted(pretrained.list())
    # rbm_tempering's run exported three times; the row it retrains is the one of its card's sampler settings
    assert by_name["rbm_tempering"][1] == "rbm_centered_ptq/3"
    assert by_name["vae_iwae"][2] == "85.14 (85.14)"
    with open(os.path.join(root, "RESULTS.md")) as f:
        assert "\n".join(table) in f.read(), "RESULTS.md: rerun python -m zoo.evaluate --all --update"


def test_pack_makes_an_entry_from_an_export_and_float16_halves_the_file(tmp_path, monkeypatch):
    from zoo.models.gan import GAN, GANConfig

    monkeypatch.setattr(pretrained, "WEIGHTS", str(tmp_path / "weights"))
    model = GAN(GANConfig(generator_hidden=(64,), discriminator_hidden=(32,)), seed=3)
    source = model.export(str(tmp_path / "exports" / "gan_tiny" / "1"), verbose=False)
    sizes = {}
    for name, half in (("tiny32", False), ("tiny16", True)):
        digest = pretrained.pack(source, name, "python -m zoo.train gan", commit="0" * 40, float16=half)
        monkeypatch.setitem(pretrained.REGISTRY, name, digest)
        card = pretrained.card(name)
        assert card["file"]["dtype"] == ("float16" if half else "float32") and card["seed"] == 3
        with np.load(pretrained.weights_path(name)) as arrays:
            assert {arrays[k].dtype for k in arrays.files} == {np.dtype(np.float16 if half else np.float32)}
        sizes[name] = card["file"]["bytes"]
        loaded = pretrained.load(name)
        assert all(v.dtype == "float32" for v in loaded.serving_weights())
        np.testing.assert_allclose(loaded.generate(np.arange(4, dtype=np.int32)),
                                   model.generate(np.arange(4, dtype=np.int32)), atol=0 if not half else 5e-3)
    assert sizes["tiny16"] < 0.6 * sizes["tiny32"]


def test_training_can_start_from_an_entry_or_an_export_and_its_card_says_so(tmp_path):
    """--init-from: a run of the entry's model and architecture starts at its weights (so its first epoch is already
    the entry's quality, where a fresh start is far off), and so does a run from an export; the export's card names
    where it started."""
    config = VAEConfig(**{k: tuple(v) if isinstance(v, list) else v
                          for k, v in pretrained.card("vae_2d")["config"].items()})
    config = dataclasses.replace(config, learning_rate=1e-6)  # one epoch barely moves the weights
    first_export = str(tmp_path / "exports" / "vae" / "1")
    results = {}
    for start in ("vae_2d", None, first_export):
        settings = train.TrainConfig(epochs=1, init_from=start, logdir=str(tmp_path / "logs"),
                                     run=os.path.basename(str(start)), export_dir=str(tmp_path / "exports"))
        results[start] = train.train("vae", config, tiny_data(), settings, verbose=0)
    from_entry, fresh, from_export = (r.history["val_loss"][-1] for r in results.values())
    assert from_entry < 170 < fresh and abs(from_export - from_entry) < 1  # about 154 and 544
    shipped = [v.numpy() for v in pretrained.load("vae_2d").serving_weights()]
    assert all(np.allclose(v.numpy(), a, atol=1e-3) for v, a in zip(results["vae_2d"].model.serving_weights(), shipped))
    cards = [train.export.read_card(results[start].export_path) for start in ("vae_2d", first_export)]
    assert cards[0]["init_from"]["entry"] == "vae_2d"
    assert cards[0]["init_from"]["sha256"] == pretrained.REGISTRY["vae_2d"]
    assert cards[1]["init_from"]["export"] == first_export and cards[1]["init_from"]["run_id"] == cards[0]["run_id"]


@pytest.mark.parametrize("argv, message", [
    (["vae", "--init-from", "no_such_entry"], "no pretrained model 'no_such_entry'; the registry has"),
    (["vae", "--init-from", "cvae"], "--init-from cvae is a cvae, not a vae; give an export or a pretrained entry"),
    (["vae", "--init-from", "/"], "--init-from / is a folder but not an export"),
    (["vae", "--init-from", "vae_2d", "--hidden", "16"], "its architecture differs from this run's"),
    (["gan", "--init-from", "gan_mlp"], "serves from part of its weights"),
    (["dbn", "--init-from", "dbn_hinton2006", "--fine-tune-epochs", "0"], "so the run is its fine-tuning alone"),
])
def test_an_entry_that_does_not_fit_the_run_is_a_clear_error_and_leaves_no_run_folder(argv, message, tmp_path):
    done = run_zoo("zoo.train", *argv, "--epochs", "1", "--limit", "200", "--validation-size", "100",
                   "--logdir", str(tmp_path / "logs"), "--export-dir", str(tmp_path / "exports"))
    assert done.returncode == 2 and message in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "logs").exists()
