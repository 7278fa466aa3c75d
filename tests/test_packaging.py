"""The wheel carries models/, parameters/, the example protocols, hypothesis specs and the
calibration's fitted intervals inside the package."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_loads_model_from_another_directory(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(wheels)],
        check=True,
        capture_output=True,
    )
    wheel = next(wheels.glob("mhimmune-*.whl"))
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    code = (
        "import mhimmune, mhimmune.core.resources as r; m = mhimmune.load_model(verbose=False); "
        "print(mhimmune.__file__); print(r.resource_dir('models')); print(r.resource_dir('protocols')); "
        "print(r.resource_dir('specs')); print((r.resource_dir('parameters') / 'cohort.tsv').is_file()); "
        "print(m.size()['species']); "
        "from mhimmune.studies.fit_uncertainty import load_fit_intervals as f; print(len(f()))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    work = tmp_path / "elsewhere"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.split()
    pkg_file, models_dir, protocols_dir, specs_dir, cohort_table, n_species, n_fits = out
    assert pkg_file.startswith(str(target))
    assert models_dir.startswith(str(target)) and protocols_dir.startswith(str(target))
    assert specs_dir.startswith(str(target)) and cohort_table == "True"
    assert int(n_species) > 40
    assert int(n_fits) >= 5  # the calibration's fitted intervals ship with the package
