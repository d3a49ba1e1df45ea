import dataclasses
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_python, run_zoo, tiny_data
from zoo import export, runs, train
from zoo.models.base import seed_pair
from zoo.models.vae import VAEConfig

# Runs in a fresh process that imports nothing from zoo: checks every signature of an export against the contract.
CHECK_EXPORT = r"""
import json, sys
import numpy as np
import tensorflow as tf

path, latent_dim = sys.argv[1], int(sys.argv[2])
model = tf.saved_model.load(path)
assert not any(name == "zoo" or name.startswith("zoo.") for name in sys.modules), "zoo was imported"
sig = model.signatures
assert sorted(sig) == ["decode", "encode", "generate", "inpaint", "reconstruct", "sample",
                       "serving_default"], sorted(sig)

def inputs(name):
    return {k: (v.dtype.name, v.shape.as_list()) for k, v in sig[name].structured_input_signature[1].items()}

def outputs(name):
    return {k: (v.dtype.name, v.shape.as_list()) for k, v in sig[name].structured_outputs.items()}

images_spec = ("float32", [None, 28, 28, 1])
assert inputs("sample") == {"num_samples": ("int32", []), "seed": ("int32", [])}, inputs("sample")
assert inputs("serving_default") == inputs("sample") and outputs("serving_default") == outputs("sample")
assert outputs("sample") == {"images": images_spec}, outputs("sample")
assert inputs("reconstruct") == {"images": images_spec} and outputs("reconstruct") == {"images": images_spec}
assert inputs("encode") == {"images": images_spec}
assert outputs("encode") == {"latent": ("float32", [None, latent_dim]), "log_var": ("float32", [None, latent_dim])}
assert inputs("decode") == {"latent": ("float32", [None, latent_dim])} and outputs("decode") == {"images": images_spec}
assert inputs("inpaint") == {"images": images_spec, "mask": images_spec, "seed": ("int32", [])}, inputs("inpaint")
assert outputs("inpaint") == {"images": images_spec}

def sample(n, seed, key="sample"):
    return sig[key](num_samples=tf.constant(n), seed=tf.constant(seed))["images"].numpy()

a, b, c = sample(6, 1), sample(6, 1), sample(6, 2)
assert a.shape == (6, 28, 28, 1) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
assert np.array_equal(a, b), "same seed, different samples"
assert not np.allclose(a, c), "different seeds, same samples"
assert np.array_equal(sample(6, 1, "serving_default"), a)

rng = np.random.default_rng(0)
images = (rng.random((5, 28, 28, 1)) < 0.3).astype(np.float32)
recon = sig["reconstruct"](images=tf.constant(images))["images"].numpy()
assert recon.shape == (5, 28, 28, 1) and 0 <= recon.min() and recon.max() <= 1
code = sig["encode"](images=tf.constant(images))
assert code["latent"].shape == (5, latent_dim) and code["log_var"].shape == (5, latent_dim)
decoded = sig["decode"](latent=code["latent"])["images"].numpy()
assert np.allclose(decoded, recon, atol=1e-6), "decode(encode(x)) != reconstruct(x)"

mask = (rng.random((5, 28, 28, 1)) < 0.5).astype(np.float32)
def inpaint(seed):
    return sig["inpaint"](images=tf.constant(images), mask=tf.constant(mask), seed=tf.constant(seed))["images"].numpy()
filled = inpaint(7)
observed = mask == 1
assert np.array_equal(filled[observed], images[observed]), "inpaint changed observed pixels"
assert 0 <= filled.min() and filled.max() <= 1 and np.array_equal(filled, inpaint(7))
assert not np.array_equal(filled[~observed], inpaint(8)[~observed])

generated = sig["generate"](seeds=tf.constant([1, 2]))["images"].numpy()
assert generated.shape == (2, 28, 28, 1) and np.allclose(generated[0], sample(1, 1)[0], atol=1e-6)

card = json.load(open(f"{path}/assets/model_card.json"))
try:  # TF Serving's warm-up file: each request runs against its signature
    from tensorflow_serving.apis import prediction_log_pb2
except ImportError:
    assert card["warmup_requests"] == 0
else:
    replayed = set()
    for record in tf.data.TFRecordDataset(f"{path}/assets.extra/tf_serving_warmup_requests"):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        sig[request.model_spec.signature_name](**inputs)
        replayed.add(request.model_spec.signature_name)
    assert replayed == set(sig) - {"serving_default"} and card["warmup_requests"] == len(replayed), replayed
print(json.dumps({"ok": True, "card": card}))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny VAE trained for two epochs through zoo.train.train and exported."""
    root = tmp_path_factory.mktemp("run")
    config = train.TrainConfig(epochs=2, logdir=str(root / "logs"), export_dir=str(root / "exports"))
    result = train.train("vae", VAEConfig(latent_dim=3, hidden=(32,)), tiny_data(), config, verbose=0)
    return result, root


def test_export_loads_in_a_fresh_process_with_every_signature(trained):
    result, _ = trained
    assert result.export_path.endswith(os.path.join("exports", "vae", "1"))
    done = run_python(CHECK_EXPORT, result.export_path, "3")
    assert done.returncode == 0, done.stderr[-3000:]
    card = json.loads(done.stdout.strip().splitlines()[-1])["card"]
    assert card["kind"] == "vae" and card["config"]["latent_dim"] == 3 and card["data"]["dataset"] == "mnist"
    assert card["steps"] == 2 * 6 and card["epochs"] == 2
    assert card["final_metrics"]["val_loss"] == pytest.approx(result.history["val_loss"][-1])
    assert card["signatures"] == ["sample", "generate", "reconstruct", "encode", "decode", "inpaint"]


def test_saved_model_cli_lists_the_signatures(trained):
    result, _ = trained
    cli = shutil.which("saved_model_cli", path=os.path.dirname(sys.executable)) or shutil.which("saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", result.export_path, "--tag_set", "serve"],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for key in ("sample", "reconstruct", "encode", "decode", "inpaint", "serving_default"):
        assert f'"{key}"' in shown.stdout
    detail = subprocess.run([cli, "show", "--dir", result.export_path, "--tag_set", "serve",
                             "--signature_def", "inpaint"], capture_output=True, text=True, timeout=120)
    for name in ("inputs['images']", "inputs['mask']", "inputs['seed']", "outputs['images']"):
        assert name in detail.stdout


def test_new_exports_never_overwrite_and_leave_no_temporary_folders(trained, monkeypatch):
    result, root = trained
    model, export_dir = result.model, str(root / "exports")
    second = export.export_model(model, export_dir, "vae", {"kind": "vae"})
    assert second.endswith(os.path.join("vae", "2")) and os.path.exists(result.export_path)

    def broken_write_out(self, path, **kwargs):
        os.makedirs(path, exist_ok=True)
        raise OSError("disk full")

    archive_class = type(keras.export.ExportArchive())  # the backend's subclass, which does the writing
    monkeypatch.setattr(archive_class, "write_out", broken_write_out)
    with pytest.raises(runs.StorageError, match="disk full"):  # one line naming the folder and what to do
        export.export_model(model, export_dir, "vae", {"kind": "vae"})
    assert sorted(os.listdir(os.path.join(export_dir, "vae"))) == ["1", "2"]


def test_export_listing(trained, capsys):
    _, root = trained
    listed = run_zoo("zoo.export", "--list", str(root / "exports"))  # the command, as a user runs it
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "vae/1" in listed.stdout and "sample generate reconstruct encode decode inpaint" in listed.stdout
    assert "val_loss=" in listed.stdout
    with pytest.raises(SystemExit) as missing:
        export.main(["--list", str(root / "nowhere")])
    assert missing.value.code == 2 and "is not a folder" in capsys.readouterr().err


def test_re_export_changes_a_sampling_setting_and_nothing_else(tmp_path, capsys):
    from zoo.models.gan import GAN, GANConfig
    model = GAN(GANConfig(latent_dim=4, generator_hidden=(16,), discriminator_hidden=(16,), ema_decay=0.9), seed=3)
    model.compile()
    source = export.export_model(model, str(tmp_path), "gan", {"kind": "gan", "run_id": "abc", "train_seconds": 5})
    done = run_zoo("zoo.export", "--from", source, "--set", "truncation=0.5", "--name", "gan_t",
                   "--export-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    path = str(tmp_path / "gan_t" / "1")
    card = export.read_card(path)
    assert card["config"]["truncation"] == 0.5 and card["sampling_changes"] == {"truncation": 0.5}
    assert card["re_exported_from"] == source and card["train_seconds"] == 5 and "run_id" not in card
    before, after = export.Export(source), export.Export(path)
    z = tf.random.stateless_normal([3, 4], [1, 2])
    np.testing.assert_allclose(after.signatures["decode"](latent=z)["images"].numpy(),  # the same weights
                               before.signatures["decode"](latent=z)["images"].numpy(), atol=1e-6)
    model.config = dataclasses.replace(model.config, truncation=0.5)  # and the new way of sampling
    np.testing.assert_allclose(after.samples(4, 9), model.sample(4, 9).numpy(), atol=1e-6)
    assert not np.allclose(before.samples(4, 9), after.samples(4, 9), atol=1e-4)
    for argv, message in [(["--set", "latent_dim=8"], "cannot change latent_dim after training"),
                          (["--set", "truncation=-1"], "truncation must be >= 0"),
                          (["--set", "truncation=nan"], "truncation must be a finite number"),
                          (["--set", "truncation=high"], "truncation takes a float"),
                          (["--set", "truncation"], "expected FIELD=VALUE"),
                          (["--name", str(tmp_path / "elsewhere")], "must be a folder name inside")]:
        with pytest.raises(SystemExit) as refused:
            export.main(["--from", source, "--export-dir", str(tmp_path), *argv])
        assert refused.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export.main(["--from", str(tmp_path / "nowhere")])
    assert "is not an export folder" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["gan", "gan_t"] and os.listdir(tmp_path / "gan_t") == ["1"]


def test_re_export_changes_the_rbms_sampler(tmp_path):
    from zoo.models.rbm import RBM, RBMConfig
    model = RBM(RBMConfig(hidden=8, sample_steps=5), seed=1)
    model.compile()
    source = export.export_model(model, str(tmp_path), "rbm", {"kind": "rbm"})
    path = export.re_export(source, str(tmp_path), "rbm_annealed", {"sampler": "annealed", "sample_steps": "20"})
    assert export.read_card(path)["sampling_changes"] == {"sampler": "annealed", "sample_steps": 20}
    model.config = dataclasses.replace(model.config, sampler="annealed", sample_steps=20)
    np.testing.assert_allclose(export.Export(path).samples(3, 4), model.sample(3, 4).numpy(), atol=1e-6)
    # Parallel tempering on another ladder, started at the persistent chains the model carries into its export.
    model = RBM(RBMConfig(hidden=8, negative_phase="pt", temperatures=3, chains=4, sample_steps=6), seed=1)
    model.compile()
    source = export.export_model(model, str(tmp_path), "rbm_pt", {"kind": "rbm"})
    changes = {"sampler": "tempering", "sample_start": "chains", "ladder": "quadratic", "lowest_beta": "0.5"}
    path = export.re_export(source, str(tmp_path), "rbm_pt_chains", changes)
    model.config = dataclasses.replace(model.config, sampler="tempering", sample_start="chains", ladder="quadratic",
                                       lowest_beta=0.5)
    np.testing.assert_allclose(export.Export(path).samples(6, 4), model.sample(6, 4).numpy(), atol=1e-6)
    # The chains themselves run on and recorded every 2 sweeps: 4 chains give 9 samples in 3 records.
    path = export.re_export(source, str(tmp_path), "rbm_pt_recorded", {**changes, "sample_every": "2"})
    recorded = export.Export(path).samples(9, 4)
    assert recorded.shape == (9, 28, 28, 1)
    expected = model.sample_visible(9, seed_pair(4, 0), 6, "tempering", from_chains=True, every=2)
    np.testing.assert_allclose(recorded, np.reshape(expected, (9, 28, 28, 1)), atol=1e-6)


def test_the_conv_vae_export_passes_the_same_contract_check(tmp_path):
    from zoo.models.vae import ConvVAE, ConvVAEConfig

    model = ConvVAE(ConvVAEConfig(latent_dim=3, hidden=(8,), filters=(4, 8)))
    path = export.export_model(model, str(tmp_path), "conv_vae", {"kind": "conv_vae"})
    done = run_python(CHECK_EXPORT, path, "3")
    assert done.returncode == 0, done.stderr[-3000:]
