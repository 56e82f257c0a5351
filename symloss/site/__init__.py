"""The documentation site generator (issue #10).

    python -m symloss.site --build          # pages + figures into build/docs-site/, then mkdocs build --strict

writes ``build/docs-site/mkdocs.yml`` and ``build/docs-site/docs/``: the hand-written pages of ``docs/``, one
page per catalog loss (distribution and links, derivation, verdicts with reasons, plots of the loss and its
gradient, the generated NumPy and PyTorch code, the torch built-in it equals), the "which loss for my data?"
comparison, and the tutorials of ``docs/tutorials/`` run and rendered.  ``--build`` then runs
``mkdocs build --strict`` into ``build/docs-site/site/``.  Needs the ``docs`` extra (mkdocs-material,
mkdocstrings[python], matplotlib, scikit-learn).
"""

from __future__ import annotations

from .build import DEFAULT_OUT, TEST_SUBSET, BuildResult, build_site, mkdocs_build, select_entries

__all__ = ["build_site", "mkdocs_build", "select_entries", "BuildResult", "DEFAULT_OUT", "TEST_SUBSET"]
