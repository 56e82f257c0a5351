"""Export the derivation as LaTeX for a paper

Every loss symloss derives can be written up: the likelihood, each step of the derivation, the gradient, the
classic loss it equals and the table of property verdicts.  `symloss.to_latex` returns LaTeX (a fragment to
`\\input`, or a standalone document); `symloss.to_markdown` the same with `$$` blocks for MathJax, which is
what the loss pages of this site show.
"""

# %% [markdown]
# ## A fragment for your paper
#
# The fragment needs only `\usepackage{amsmath,amssymb}`.  `notation` maps input names to your paper's
# symbols; `analysis=False` leaves out the verdict table.

# %%
import os
import tempfile
from pathlib import Path

import symloss

loss = symloss.derive("poisson", link="canonical")
fragment = symloss.to_latex(loss, notation={"log_rate": r"\eta"}, analysis=False)
print(fragment)

# %% [markdown]
# ## A standalone document
#
# `standalone=True` gives a complete `article` that compiles with `pdflatex`; with a report (or by default,
# under a time budget) it ends with the verdict table.  `batch=True` also writes the mean over a batch and its
# gradient.  `symloss.write_latex` writes the file atomically and refuses to overwrite it without
# `force=True`.

# %%
out = Path(os.environ.get("SYMLOSS_TUTORIAL_OUT") or Path(tempfile.gettempdir()) / "symloss-tutorials")
out.mkdir(parents=True, exist_ok=True)

gaussian = symloss.derive("normal", link={"scale": "variance"})
report = symloss.analyze(gaussian, budget=5)
path = symloss.write_latex(gaussian, out / "gaussian_nll.tex", report=report, batch=True, force=True)
document = path.read_text(encoding="utf-8")
print(path.name, f"({len(document.splitlines())} lines)")
print("\n".join(document.splitlines()[:12]))
print("...")
print("\\end{document}" in document)

# %% [markdown]
# ## The same as Markdown
#
# For a README, a notebook or a website: `$$ … $$` blocks that MathJax and KaTeX render.

# %%
print(symloss.to_markdown(symloss.derive("normal", fixed={"scale": 1}), analysis=False))

# %% [markdown]
# On the command line, `symloss derive poisson --link rate=log --latex poisson.tex` writes the same standalone
# document.
