"""The leaderboard: Markdown tables of evaluated exports, and RESULTS.md / RESULTS.json (made by zoo.evaluate --all)."""

from __future__ import annotations

import json
import os
import time



def _config_text(config):
    return " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in config.items()
                    if not k.startswith("inpaint_"))


def _fmt(value, digits=2):
    return "" if value is None else f"{value:.{digits}f}"


def _method(likelihood):
    text = likelihood["method"]
    if "log_z" in likelihood:
        low, high = likelihood["log_z_3_sigma"]
        text += f"; log Z = {likelihood['log_z']:.2f} (±3σ: {low:.2f} to {high:.2f})"
    if "exact_log_z" in likelihood:
        text += f"; exact log Z = {likelihood['exact_log_z']:.2f}"
    return text


def _raise_cell(likelihood):
    """RAISE's negative log-likelihood on its subset, with AIS's on the same images beside it."""
    r = likelihood.get("raise")
    if not r:
        return ""
    return (f"{r['nll_nats']:.2f} ± {r['standard_error']:.2f} (AIS on the same {r['images']:,} images: "
            f"{r['ais_nll_nats']:.2f})")


FEATURES_NOTE = (
    "Fréchet distance, KID (unbiased, cubic polynomial kernel, mean of 100 subsets of 1,000) and precision/recall "
    "(k-NN manifolds, k = 3; Kynkäänniemi et al. 2019) are computed on the 128 penultimate features of the zoo's "
    "frozen MNIST classifier, not on Inception's: they compare with each other, not with FID numbers of other papers. "
    "The real row compares training images with the test images.")


def _absent(row, part):
    """The cell of a part an export lacks: "not exported" (no signature for it), or the damage that stopped it."""
    return row[part]["missing"] if "damaged" in row else "not exported"


def _hist(counts):
    return " ".join(f"{100 * c / max(sum(counts), 1):.0f}" for c in counts)


def sample_cells(s):
    """The Samples table's figures of one set of images (KID and precision/recall blank in rows made before them)."""
    kid = f"{s['kid']:.4f} ± {s['kid_standard_error']:.4f}" if "kid" in s else ""
    return " | ".join([_fmt(s["classifier_score"]), _fmt(s["frechet_distance"]), kid, _fmt(s.get("precision"), 3),
                       _fmt(s.get("recall"), 3), _fmt(s["nearest_train_distance"]), _hist(s["class_histogram"])])


def export_name(path):
    """An export's name on the leaderboard: run/version, the last two parts of its path."""
    return os.path.join(*path.rstrip("/").split(os.sep)[-2:])


def format_tables(rows, ceiling):
    """Markdown tables: samples, reconstructions, inpainting, likelihood; the real-data row first."""
    lines = []
    name = lambda row: export_name(row["export"])  # noqa: E731

    lines += ["### Samples", "",
              "| export | kind | config | train s | classifier score ↑ | Fréchet distance ↓ | KID ↓ | precision ↑ | "
              "recall ↑ | nearest training image | class histogram (% of 0..9) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines.append("| real test images | | | | " + sample_cells(ceiling["samples"]) + " |")
    for row in rows:
        head = f"| {name(row)} | {row['kind']} | {_config_text(row['config'])} | {_fmt(row['train_seconds'], 0)} |"
        lines.append(head + (f" {_absent(row, 'samples')}" + " |" * 7 if "missing" in row["samples"] else
                             " " + sample_cells(row["samples"]) + " |"))
    lines += ["", FEATURES_NOTE]

    lines += ["", "### Reconstructions of the test set", "",
              "| export | cross-entropy (nats/image) ↓ | squared error per pixel ↓ | classifier accuracy ↑ |",
              "|---|---|---|---|"]
    r = ceiling["reconstruction"]
    lines.append(f"| identity (the images themselves) | {_fmt(r['bce_nats'], 1)} | 0 | {r['accuracy']:.2%} |")
    for row in rows:
        r = row["reconstruction"]
        lines.append(f"| {name(row)} | {_absent(row, 'reconstruction')} | | |" if "missing" in r else
                     f"| {name(row)} | {_fmt(r['bce_nats'], 1)} | {_fmt(r['mse'], 4)} | {r['accuracy']:.2%} |")

    fractions = list(ceiling["inpainting"])
    lines += ["", "### Inpainting of the test set (squared error on the missing pixels ↓, classifier accuracy ↑)", "",
              "| export | " + " | ".join(f"{f} missing: error | accuracy" for f in fractions) + " |",
              "|---|" + "---|---|" * len(fractions)]
    for label, key in (("original images (ceiling)", "original"), ("fill with mean training image", "mean_image"),
                       ("fill with zeros", "zeros")):
        cells = [f"{_fmt(ceiling['inpainting'][f][key]['mse'], 4)} | {ceiling['inpainting'][f][key]['accuracy']:.2%}"
                 for f in fractions]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for row in rows:
        i = row["inpainting"]
        lines.append(f"| {name(row)} | {_absent(row, 'inpainting')} |" + " |" * (2 * len(fractions) - 1)
                     if "missing" in i else
                     f"| {name(row)} | " + " | ".join(f"{_fmt(i[f]['mse'], 4)} | {i[f]['accuracy']:.2%}"
                                                      for f in fractions) + " |")

    conditional = [row for row in rows if "label_accuracy" in row["samples"] or
                   "test_error" in row.get("classification", {})]
    if conditional:
        lines += ["", "### Class-conditional models", "",
                  "Samples of each requested class (as many of each), judged by the frozen classifier: label accuracy "
                  "is its agreement with the requested class; the Fréchet distance of each class's samples is to the "
                  "test images of that class. Test error: the model's own classification of the test images.", "",
                  "| export | label accuracy ↑ | lowest class's accuracy "
                  "| per-class Fréchet distance ↓ (best to worst) | test error ↓ |", "|---|---|---|---|---|"]
        for row in conditional:
            samples, classified = row["samples"], row.get("classification", {})
            cells = ["", "", ""]
            if "label_accuracy" in samples:
                classes = samples["per_class"].values()
                distances = [c["frechet_distance"] for c in classes if c["frechet_distance"] is not None]
                cells = [f"{samples['label_accuracy']:.2%}", f"{min(c['label_accuracy'] for c in classes):.1%}",
                         f"{min(distances):.2f} to {max(distances):.2f}" if distances else ""]
            error = f"{classified['test_error']:.2%}" if "test_error" in classified else ""
            lines.append(f"| {name(row)} | " + " | ".join(cells + [error]) + " |")

    lines += ["", "### Test log-likelihood", "",
              "| export | negative log-likelihood (nats) ↓ | conservative estimate (RAISE) | method | binarization |",
              "|---|---|---|---|---|"]
    for row in rows:
        li = row["likelihood"]
        lines.append(f"| {name(row)} | {li['missing']} | | | |" if "missing" in li else
                     f"| {name(row)} | {li['nll_nats']:.2f} ± {li['standard_error']:.2f} | {_raise_cell(li)} | "
                     f"{_method(li)} | {li['binarization']} |")
    sha = ceiling.get("classifier_sha256")
    lines += ["", "Classifier (zoo/classifier.py"
                  + (f", the shipped weights with SHA-256 `{sha}`" if sha else ", trained on this machine")
                  + f") test accuracy: {ceiling['classifier_test_accuracy']:.2%}. "
                  "Nearest training image: mean Euclidean distance in pixel space ([0, 1] pixels)."]
    return "\n".join(lines)


CARDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")  # the pretrained registry's cards


def shipped_table(rows, cards=CARDS):
    """The pretrained registry's entries beside the leaderboard rows they retrain: the rows of the same run name
    and config as the entry's card (on the fields the row records: a row made before a field existed has its
    default), with the card's figures, measured on the shipped file, next to the row's."""
    try:
        names = sorted(n[:-len(".json")] for n in os.listdir(cards) if n.endswith(".json"))
    except OSError:
        return []
    lines = ["", "### Shipped models", "",
             "The pretrained registry ([docs/pretrained.md](docs/pretrained.md)): each entry retrains the command of "
             "the row beside it, and its card holds the figures measured on the shipped file with these settings "
             "(`python -m zoo.pretrained evaluate NAME` recomputes them).", "",
             "| pretrained | the row it retrains | test NLL (nats) ↓: shipped (row) | samples: shipped (row) "
             "| reconstruction error ↓: shipped (row) |", "|---|---|---|---|---|"]
    for name in names:
        with open(os.path.join(cards, f"{name}.json")) as f:
            card = json.load(f)
        run = os.path.dirname(export_name(card["training"]["source_export"]))
        same = [row for row in rows if os.path.dirname(export_name(row["export"])) == run
                and all(card["config"].get(k) == v for k, v in json.loads(json.dumps(row["config"])).items())]
        row = same[-1] if same else {}
        where = export_name(row["export"]) if row else "(not on the leaderboard)"
        nll = _shipped_and_row(card.get("figures", {}), row, "likelihood", lambda li: f"{li['nll_nats']:.2f}")
        samples = _shipped_and_row(card.get("figures", {}), row, "samples",
                                   lambda s: f"{s['classifier_score']:.2f} / {s['frechet_distance']:.2f}")
        mse = _shipped_and_row(card.get("figures", {}), row, "reconstruction", lambda r: f"{r['mse']:.4f}")
        lines.append(f"| `{name}` | {where} | {nll} | {samples} | {mse} |")
    return lines


def _shipped_and_row(figures, row, part, text):
    """A card's figure, then the leaderboard row's in brackets."""
    if part not in figures:
        return ""
    recorded = row.get(part, {})
    return text(figures[part]) + (f" ({text(recorded)})" if recorded and "missing" not in recorded else "")


def write_results(rows, ceiling, out_dir, config):
    os.makedirs(out_dir, exist_ok=True)
    header = ["# Results", "",
              f"Made by `python -m zoo.evaluate --all` on {time.strftime('%Y-%m-%d')} "
              f"({config.num_samples} samples per export, {len(rows) and config.test_images} test images, "
              f"seed {config.seed}). Every figure comes from the exported SavedModels' signatures.", "", ""]
    text = "\n".join(header) + format_tables(rows, ceiling) + "\n" + "\n".join(shipped_table(rows)) + "\n"
    with open(os.path.join(out_dir, "RESULTS.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "RESULTS.json"), "w") as f:
        json.dump({"config": config.__dict__, "real_data": ceiling, "exports": rows}, f, indent=2, default=str)
    return text


def earlier_results(path, config):
    """({export path: row}, real-data figures) of a RESULTS.json written with the same settings (or before some of
    them existed); ({}, None) if there is none or its settings differ (its figures would not compare)."""
    try:
        with open(path) as f:
            recorded = json.load(f)
    except (OSError, ValueError):
        return {}, None
    current = json.loads(json.dumps(config.__dict__))
    # A setting the record lacks was added to the evaluator since; rows it would change are brought up to date.
    if {k: v for k, v in current.items() if k in recorded.get("config", {})} != recorded.get("config"):
        print(f"{path} was made with other settings ({recorded.get('config')}): evaluating everything", flush=True)
        return {}, None
    return {row["export"]: row for row in recorded["exports"]}, recorded["real_data"]


def with_absent_exports(rows, earlier):
    """rows, plus the recorded rows (earlier: {export path: row}) of exports that are no longer on this machine,
    sorted by export. Exports are not in git, so a fresh checkout updating RESULTS.json keeps the figures of
    exports made on other machines instead of dropping them."""
    evaluated = {row["export"] for row in rows}
    gone = [row for path, row in earlier.items() if path not in evaluated and not os.path.exists(path)]
    if gone:
        print(f"Keeping the rows of {len(gone)} exports that are not on this machine: "
              f"{', '.join(row['export'] for row in gone)}", flush=True)
    return sorted(rows + gone, key=lambda row: row["export"])
