"""Print the N-th command of the README's opening code block (1-based)."""

import pathlib
import sys

n = int(sys.argv[1])
text = pathlib.Path(__file__).resolve().parent.parent.joinpath("README.md").read_text(encoding="utf-8")
block = text.split("```", 2)[1]
commands = [ln.strip() for ln in block.splitlines()[1:] if ln.strip() and not ln.strip().startswith("#")]
print(commands[n - 1])
