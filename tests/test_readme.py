"""The README's examples work as written.

Every ```python block of README.md runs, in order, in one namespace from the repository
root (the blocks build on each other: ``model`` and ``plan`` of the first are used later).
Every ``mhimmune ...`` line of the other code blocks parses with the command line's own
parser (nothing is run); make targets are not run.
"""

import re
import shlex
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from mhimmune.cli import build_parser
from mhimmune.studies.sensitivity import SampleSizeWarning

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def blocks(lang=None):
    """(language, text) of every fenced block, or only those of *lang*."""
    found = [(m.group(1), m.group(2)) for m in FENCE.finditer(README.read_text())]
    return [b for b in found if lang is None or b[0] == lang]


def command_lines():
    """Every line of a non-Python block that starts with ``mhimmune``, comment removed."""
    lines = []
    for lang, text in blocks():
        if lang == "python":
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("mhimmune "):
                lines.append(line)
    return lines


def concrete(line):
    """One concrete argument list of a synopsis line: optional groups ``[...]`` kept,
    ``a|b`` alternatives as their first, ``...`` repeats dropped."""
    tokens = []
    for tok in shlex.split(line.replace("[", " ").replace("]", " "))[1:]:
        if tok == "...":
            continue
        tokens.append(tok.split("|", 1)[0] if "|" in tok and "=" not in tok else tok)
    return tokens


def test_the_readme_has_examples_to_check():
    assert len(blocks("python")) >= 3
    assert len(command_lines()) >= 8


@pytest.mark.parametrize("line", command_lines())
def test_every_command_line_shown_parses(line):
    parser = build_parser()
    args = concrete(line)
    try:
        parser.parse_args(args)
    except SystemExit as e:  # argparse exits with 2 on an unknown option or argument
        pytest.fail(f"{line!r} does not parse as {args} (exit {e.code})")
    with pytest.raises(SystemExit) as e:  # and the sub-command has help
        parser.parse_args([args[0], "--help"])
    assert e.value.code == 0


def test_python_blocks_run_as_written_in_one_namespace(monkeypatch, capsys):
    """Every README Python block runs as written, in order (at least three blocks; the
    quick start defines ``model`` and ``plan``)."""
    assert len(blocks("python")) >= 3
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    namespace: dict = {"__name__": "readme"}
    try:
        for k, (_, code) in enumerate(blocks("python")):
            with warnings.catch_warnings():
                # the README's Sobol example is a quick preview on purpose and says so
                warnings.simplefilter("ignore", SampleSizeWarning)
                exec(compile(code, f"README.md python block {k + 1}", "exec"), namespace)
    finally:
        executor = namespace.get("executor")
        if executor is not None:
            executor.close()
        plt.close("all")
    assert "model" in namespace and "plan" in namespace
