"""Cold start: compiled models are cached by content, compiling says so in one line, and
``mhimmune cache clear`` empties the cache."""

import shutil
import sys

import pytest

import mhimmune as mh
from mhimmune.cli import main
from mhimmune.core.compile import cache_dir, clear_cache
from mhimmune.core.resources import resource_dir

LINK = ["pharmacokinetics"]  # a small link: compiles in seconds


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """An empty cache folder for this module, and the model compiled into it once."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MHIMMUNE_CACHE_DIR", str(folder))
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            first = mh.load_model(links=LINK, standalone=True, verbose=True)
        yield folder, first, err.getvalue()


def entries(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("model_"))


def test_first_load_compiles_with_one_line_then_loads_silently(cache, capsys):
    folder, first, stderr = cache
    lines = stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("mhimmune: compiling model")
        and str(folder) in lines[0]
    )
    assert entries(folder) == [f"model_{first.compiled.key}"]
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp_")]  # written atomically
    again = mh.load_model(links=LINK, standalone=True, verbose=True)
    assert capsys.readouterr().err == ""
    assert again.compiled.key == first.compiled.key


def test_new_parameter_values_reuse_the_compiled_model(cache, tmp_path, capsys):
    """The cache is keyed by the model's structure: editing numbers in the parameter
    tables changes the values, not the key, and compiles nothing."""
    folder, first, _ = cache
    tables = tmp_path / "parameters"
    shutil.copytree(resource_dir("parameters") / "model", tables)
    name = first.parameter_names[0]
    tsv = next(p for p in tables.glob("*.tsv") if f"\n{name}\t" in p.read_text())
    rows = tsv.read_text().splitlines()
    for i, row in enumerate(rows):
        cells = row.split("\t")
        if cells[0] == name:
            cells[1] = repr(2 * float(cells[1]) if float(cells[1]) else 1.0)
            rows[i] = "\t".join(cells)
    tsv.write_text("\n".join(rows) + "\n")
    edited = mh.load_model(links=LINK, parameters=tables, standalone=True, verbose=True)
    assert capsys.readouterr().err == ""
    assert edited.compiled.key == first.compiled.key and entries(folder) == [
        f"model_{first.compiled.key}"
    ]
    i = edited.compiled.parameters.index(name)
    assert edited.parameter_vector()[i] != first.parameter_vector()[i]


@pytest.mark.slow
def test_corrupt_cache_entry_is_rebuilt(cache):
    folder, first, _ = cache
    meta = folder / f"model_{first.compiled.key}" / "meta.json"
    meta.write_text("{not json")
    sys.modules.pop(f"mhgen_{first.compiled.key}", None)
    again = mh.load_model(links=LINK, standalone=True, verbose=False)
    assert again.compiled.species == first.compiled.species
    assert meta.read_text().startswith("{")


def test_cache_dir_and_clear_commands(cache, capsys):
    folder, _, _ = cache
    assert main(["cache", "dir"]) == 0
    assert capsys.readouterr().out.strip() == str(cache_dir()) == str(folder)
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.startswith(f"removed 1 compiled model(s) from {folder}")
    assert entries(folder) == []
    assert clear_cache() == 0
