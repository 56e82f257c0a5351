"""The command line: output, JSON, exit codes (0 ok, 1 user error in one line, 2 usage)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from symloss.cli import main


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "symloss", *argv], capture_output=True, text=True, timeout=300)


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "Normal" in out and "Poisson" in out and "rate=log" in out


def test_list_json(capsys):
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) >= 30 and {"name", "params", "support"} <= set(rows[0])


def test_derive_text(capsys):
    assert main(["derive", "poisson", "--link", "rate=log"]) == 0
    out = capsys.readouterr().out
    assert "log_rate" in out and "Poisson NLL" in out and "Gradient" in out


def test_derive_json(capsys):
    assert main(["derive", "normal", "--fixed", "scale=1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["known_as"]["key"] == "mse" and data["known_as"]["factor"] == "1/2"
    assert data["inputs"] == ["loc"]


def test_derive_prior(capsys):
    assert main(["derive", "normal", "--fixed", "scale=sigma", "--prior", "weights=normal"]) == 0
    out = capsys.readouterr().out
    assert "λ = sigma**2/tau**2" in out


def test_fixed_bare_name_keeps_symbol(capsys):
    assert main(["derive", "normal", "--fixed", "scale", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fixed"] == {"scale": "scale"}


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["derive", "poison"], "did you mean 'Poisson'"),
        (["derive", "normal", "--fixed", "scale=-2"], "outside its domain"),
        (["derive", "normal", "--link", "loc=log"], "does not fit"),
        (["derive", "normal", "--link", "scale"], "unknown link 'scale'"),
        (["derive", "normal", "--link", "loc=log,scale"], "NAME=VALUE"),
        (["derive", "normal", "--wrt", "mu"], "choose one of: loc, scale"),
        (["derive", "normal", "--wrt", "sclae"], "did you mean 'scale'"),
    ],
)
def test_user_errors_exit_1_in_one_line(argv, fragment, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_usage_error_exits_2():
    proc = run("derive")
    assert proc.returncode == 2
    assert "usage" in proc.stderr


def test_process_exit_code_and_no_traceback():
    proc = run("derive", "nonsense")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("symloss: error:")


def test_readme_main_job_runs(tmp_path, monkeypatch, capsys):
    """The README's first command (after the install) runs and writes the code and the LaTeX."""
    import pathlib
    import shlex

    readme = pathlib.Path(__file__).resolve().parent.parent / "README.md"
    block = readme.read_text(encoding="utf-8").split("```", 2)[1]
    first = [ln for ln in block.splitlines()[1:] if ln.strip()][0]
    job = first.split("&&", 1)[1].strip()
    argv = shlex.split(job)
    assert argv[0] == "symloss"
    monkeypatch.chdir(tmp_path)
    assert main(argv[1:]) == 0
    out = capsys.readouterr().out
    assert "Poisson NLL" in out and "convex" in out
    assert (tmp_path / "symloss-demo" / "poisson_loss.py").exists()
    assert "\\documentclass" in (tmp_path / "symloss-demo" / "poisson_loss.tex").read_text()


def test_derive_without_target_does_not_import_torch():
    """The cold start of `symloss derive` (benchmarked, target ≤ 3 s) must not pay for importing torch:
    the code generation printers, which import SymPy's PyTorch printer and so torch, load only when used."""
    import subprocess
    import sys

    code = ("import sys, contextlib, io\n"
            "from symloss.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    rc = main(['derive', 'poisson', '--link', 'rate=log'])\n"
            "assert rc == 0, rc\n"
            "heavy = sorted(m for m in ('torch', 'jax', 'triton') if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
