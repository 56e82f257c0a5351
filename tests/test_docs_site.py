"""The documentation site (issue #10): the tutorials run, the page generator writes the loss pages, the
comparison page and the figures (byte-reproducibly), and ``mkdocs build --strict`` passes on the result.

The site is built once per session into a temporary folder, for the documented subset
``symloss.site.TEST_SUBSET`` of the catalog (a one-input loss, a two-input loss with a convexity plot, a data
input, a keyword constant, a class axis, torch built-ins) to keep this file within a few minutes on two
cores.  ``SYMLOSS_DOCS_FULL=1`` builds every catalog loss instead, as ``python -m symloss.site --build`` does.

The docs tools are in the ``test`` extra: if they are missing these tests fail, they do not skip.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("[0-9]*.py"))
FULL = os.environ.get("SYMLOSS_DOCS_FULL") == "1"


def test_docs_tools_are_installed():
    for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "matplotlib", "sklearn",
                 "yaml"):
        importlib.import_module(name)  # ImportError fails the test: the docs tools are in the test extra


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    for name in ("mkdocs", "matplotlib", "sklearn"):
        importlib.import_module(name)
    from symloss.site import TEST_SUBSET, build_site

    out = tmp_path_factory.mktemp("docs-site")
    return build_site(out, only=None if FULL else TEST_SUBSET, budget=1.0, jobs=2 if FULL else 1,
                      tutorial_timeout=240, build=True)


def test_tutorials_exist():
    names = [p.stem for p in TUTORIALS]
    assert len(names) == 4, names
    for script in TUTORIALS:
        text = script.read_text(encoding="utf-8")
        assert text.startswith('"""'), f"{script.name} needs a docstring (the page title and introduction)"
        assert "# %%" in text


def test_each_tutorial_ran(site):
    # build_site ran each script in a subprocess (MPLBACKEND=Agg, a timeout) and raised if one failed
    assert [run.script.name for run in site.tutorials] == [p.name for p in TUTORIALS]
    for run in site.tutorials:
        assert run.stdout.strip(), run.script.name
    by_name = {run.script.stem: run for run in site.tutorials}
    train = next(run for stem, run in by_name.items() if "train" in stem)
    assert [f.name for f in train.figures] == ["count_regression.png"]
    assert "matches torch.nn.functional.poisson_nll_loss: True" in train.stdout
    latex = next(run for stem, run in by_name.items() if "latex" in stem)
    assert "\\begin{align*}" in latex.stdout


def test_tutorial_pages(site):
    docs = site.out / "docs" / "tutorials"
    for script in TUTORIALS:
        page = (docs / f"{script.stem}.md").read_text(encoding="utf-8")
        assert page.startswith("# ") and "```python" in page and "## Output" in page
        assert (site.html / "tutorials" / script.stem / "index.html").is_file()
    train = next(p for p in TUTORIALS if "train" in p.stem)
    assert f"![count_regression]({train.stem}/count_regression.png)" in (docs / f"{train.stem}.md").read_text()


def test_loss_pages(site):
    from symloss.site import TEST_SUBSET

    names = [p.name for p in site.pages]
    if not FULL:
        assert names == [n for n in names if n in TEST_SUBSET] and set(names) == set(TEST_SUBSET)
    docs = site.out / "docs" / "losses"
    for page in site.pages:
        text = (docs / f"{page.name}.md").read_text(encoding="utf-8")
        for section in ("### Derivation", "### Properties", "## Plots", "## Generated code", "## Torch built-in"):
            assert section in text, (page.name, section)
        assert "| convex |" in text  # the verdict table, with reasons
        assert page.figures and all((docs / f).is_file() for f in page.figures), page.name
        assert (site.html / "losses" / page.name / "index.html").is_file()
        if not page.skipped:
            assert '=== "NumPy"' in text and '=== "PyTorch"' in text
    by_name = {p.name: p for p in site.pages}
    assert "figures/gaussian_nll-convexity.svg" in by_name["gaussian_nll"].figures  # two trained inputs
    assert "torch.nn.functional.poisson_nll_loss" in by_name["poisson_log_rate"].known_as
    assert by_name["mse"].statuses["convex"] == "proved"
    index = (docs / "index.md").read_text(encoding="utf-8")
    assert all(f"]({n}.md)" in index for n in names)


def test_comparison_page_covers_the_registry(site):
    from symloss import registry

    text = (site.out / "docs" / "comparison.md").read_text(encoding="utf-8")
    for name in registry.names():
        assert f"| {registry.get(name).name} |" in text, name
    assert "(losses/poisson_log_rate.md)" in text
    assert (site.html / "comparison" / "index.html").is_file()


def test_reports_are_copied_or_stubbed(site):
    for name in ("benchmarks.md", "accuracy.md"):
        built = (site.out / "docs" / name).read_text(encoding="utf-8")
        source = ROOT / "docs" / name
        if source.is_file():
            assert built == source.read_text(encoding="utf-8")
        else:
            assert "has not been generated yet" in built
        assert (site.html / name.removesuffix(".md") / "index.html").is_file()


def test_nav_and_api_reference(site):
    import yaml

    config = yaml.safe_load((site.out / "mkdocs.yml").read_text(encoding="utf-8"))
    flat = str(config["nav"])
    assert "GENERATED_LOSSES" not in flat and "TUTORIALS" not in flat
    for page in ("benchmarks.md", "accuracy.md", "comparison.md", "api.md", "losses/mse.md"):
        assert page in flat, page
    api = (site.html / "api" / "index.html").read_text(encoding="utf-8")
    assert "analyze" in api and "derive" in api and "to_latex" in api


def test_figures_are_byte_reproducible(tmp_path):
    import symloss
    from symloss.codegen.catalog import derive_entry
    from symloss.site import plots, select_entries

    loss = derive_entry(select_entries(["gaussian_nll"])[0])
    module = symloss.load(loss, target="numpy")
    outputs = []
    for run in ("a", "b"):
        setup = plots.plot_setup(loss, module)
        curves = plots.loss_curves_figure(loss, setup, tmp_path / run / "loss.svg")
        contour = plots.convexity_figure(loss, setup, tmp_path / run / "convexity.svg", convex_status="disproved")
        png = plots.loss_curves_figure(loss, setup, tmp_path / run / "loss.png")
        outputs.append([p.read_bytes() for p in (curves, contour, png)])
    assert outputs[0] == outputs[1]
    assert b"Date" not in outputs[0][0] and b"hashsalt" not in outputs[0][0]


def test_generator_refuses_foreign_folders_and_unknown_names(tmp_path):
    from symloss.errors import SymlossError
    from symloss.site import build_site

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(SymlossError, match="refusing"):
        build_site(foreign, only=["mse"], tutorials=False)
    assert (foreign / "keep.txt").read_text() == "mine"
    with pytest.raises(SymlossError, match="not in the catalog"):
        build_site(tmp_path / "new", only=["no_such_loss"], tutorials=False)
