"""The documentation as a user reads it: every relative link resolves inside the repository, the README stays short,
and its Python example runs as written."""

import glob
import os
import re
import shutil

from conftest import REPO, run_python

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def documents():
    return [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))


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
