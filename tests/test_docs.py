"""The documentation as a user reads it: every relative link resolves inside the repository, the README stays short,
and its Python example runs as written."""

import glob
import os
import re
import shutil

from conftest import REPO, run_python

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def documents():
    return ([os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))
            + sorted(glob.glob(os.path.join(REPO, "docs", "notes", "*.md"))))


def anchors(path):
    """GitHub's heading slugs of a Markdown file: lower case, punctuation dropped, spaces to hyphens."""
    with open(path) as f:
        headings = [line.lstrip("#").strip() for line in f if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_every_relative_link_resolves_inside_the_repository():
    assert len(documents()) >= 10  # README and the docs pages
    broken = []
    for document in documents():
        with open(document) as f:
            text = re.sub(r"```.*?```", "", f.read(), flags=re.S)  # links in code blocks are not links
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(document), path)) if path else document
            inside = os.path.commonpath([resolved, REPO]) == REPO
            if not inside or not os.path.exists(resolved) or (anchor and anchor not in anchors(resolved)):
                broken.append(f"{os.path.relpath(document, REPO)}: {target}")
    assert not broken, broken


def test_the_readme_fits_on_a_few_screens():
    assert os.path.getsize(os.path.join(REPO, "README.md")) <= 12 * 1024


def test_the_readmes_python_example_runs(tmp_path):
    from zoo import train
    from zoo.models.vae import VAEConfig

    train.train("vae", VAEConfig(hidden=(16,)), train.data_config_for("vae", limit=200, validation_size=100),
                train.TrainConfig(epochs=1, logdir=str(tmp_path / "logs"), export_dir=str(tmp_path / "exports")),
                verbose=0)
    with open(os.path.join(REPO, "README.md")) as f:
        example = re.search(r"```python\n(.*?)```", f.read(), flags=re.S).group(1)
    shutil.rmtree(tmp_path / "logs")
    check = "\nassert images.shape == (16, 28, 28, 1)"
    done = run_python(f"import os; os.chdir({str(tmp_path)!r})\n" + example + check, env={"PYTHONPATH": REPO})
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "vae.keras").exists()


def test_the_family_pages_are_references_a_user_reads_in_minutes():
    """Each family page stays a manual (the model, how to train it, its verbs, its figures); the studies behind the
    figures live in docs/notes/, one per file, each saying when, at which commit and with which command."""
    for family in ("rbm", "dbn", "vae", "gan", "dae"):
        with open(os.path.join(REPO, "docs", f"{family}.md")) as f:
            assert len(f.read().splitlines()) <= 200, family
    notes = glob.glob(os.path.join(REPO, "docs", "notes", "*.md"))
    assert notes
    for note in notes:
        assert re.match(r"\d{4}-\d{2}-\d{2}-", os.path.basename(note)), note
        with open(note) as f:
            head = f.read(600)
        assert "Measured" in head and "commit" in head, note
