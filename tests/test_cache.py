"""Cold start: compiled models are cached by content, compiling says so in one line, and
``mhimmune cache clear`` empties the cache."""

import shutil
import sys

import numpy as np
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


def test_native_build_computes_bitwise_what_a_generic_build_does(tmp_path, monkeypatch):
    """The C backend's host-CPU build (-march=native, contraction off) integrates a model
    to the same bits as a generic -O3 build, under another cache key (host CPU and flags
    are part of it)."""
    from mhimmune.core import compile as comp

    if comp.backend() != "c":
        pytest.skip("the C backend is not in use")
    assert "-ffp-contract=off" in comp.C_FLAGS
    monkeypatch.setenv("MHIMMUNE_CACHE_DIR", str(tmp_path))
    models = {}
    for name, native in (("native", comp.C_NATIVE_FLAGS), ("generic", ())):
        monkeypatch.setattr(comp, "C_NATIVE_FLAGS", native)
        models[name] = mh.load_model(links=LINK, standalone=True, verbose=False)
    assert len(entries(tmp_path)) == 2
    out = {}
    for name, m in models.items():
        c = m.compiled
        p = m.parameter_vector({})
        y0 = np.asarray(c.init(p), dtype=float)
        y0[0] += 1.0  # a dose in the first state, so that the segment has work to do
        tout = np.linspace(0.0, 500.0, 11)
        Y, _y_end, code, stats, _h = c.integrate(
            y0, 0.0, 500.0, tout, p, 1e-8, 1e-12, 0.0, 100_000, 0.0
        )
        assert code == 0 and stats[0] > 10
        out[name] = Y
    assert np.array_equal(out["native"], out["generic"])


def test_host_cpu_is_part_of_the_c_cache_key(monkeypatch):
    """Two hosts with different CPUs never share a C build: the key changes with host_cpu()."""
    from types import SimpleNamespace

    from mhimmune.core import compile as comp

    model = mh.load_model(links=LINK, standalone=True, verbose=False)
    b = SimpleNamespace(model=model.pysb, boluses=model.boluses)
    key = comp.structure_key(b, "c")
    monkeypatch.setattr(comp, "host_cpu", lambda: "another cpu")
    assert comp.structure_key(b, "c") != key
    assert comp.structure_key(b, "numba") == comp.structure_key(b, "numba")


def test_the_full_models_native_build_has_no_fused_multiply_add():
    """The host-CPU build of the bundled model contains no fused multiply-add instruction
    (x86: ``vfmadd``, ``vfmsub``, ``vfmaddsub``, ``vfmsubadd``, ``vfnmadd``...), so it
    rounds like a generic build: GCC 12 emitted ``vfmsubadd`` from its straight-line
    vectoriser in the Jacobian despite ``-ffp-contract=off`` until FMA and AVX-512 were
    switched off for native x86 builds."""
    import platform
    import subprocess

    from mhimmune.core import compile as comp

    objdump = shutil.which("objdump")
    if comp.backend() != "c" or objdump is None:
        pytest.skip("needs the C backend and objdump")
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the instruction check is for x86")
    assert {"-mno-fma", "-mno-avx512f"} <= set(comp.C_NATIVE_FLAGS)
    library = mh.load_model(verbose=False).compiled.module.path
    text = subprocess.run([objdump, "-d", str(library)], capture_output=True, text=True).stdout
    fused = [line for line in text.splitlines() if "\tvfm" in line or "\tvfnm" in line]
    assert "integrate_schedule" in text and fused == []
