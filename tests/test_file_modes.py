"""Result files written atomically get the mode the process umask gives a new file
(``0o666 & ~umask``), not the private ``0o600`` of a temporary file, so colleagues
sharing a group or a results folder can read them."""

import os
import stat

import matplotlib
import pandas as pd
import pytest

from mhimmune.core import io

matplotlib.use("Agg")


@pytest.fixture
def umask():
    old = os.umask(0o022)
    try:
        yield lambda m: os.umask(m)
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_file_mode_follows_umask(umask):
    assert io.file_mode() == 0o644
    umask(0o027)
    assert io.file_mode() == 0o640
    umask(0o002)
    assert io.file_mode() == 0o664


def test_atomic_writers_follow_umask_022(tmp_path, umask):
    import matplotlib.pyplot as plt

    csv = io.write_csv(pd.DataFrame({"a": [1, 2]}), tmp_path / "t.csv", index=False)
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    png = io.save_figure(fig, tmp_path / "f.png")
    plt.close(fig)
    with io.atomic_path(tmp_path / "sub" / "p.parquet") as tmp:
        pd.DataFrame({"a": [1.0]}).to_parquet(tmp, index=False)
    with io.atomic_path(tmp_path / "m.md") as tmp:
        tmp.write_text("# x\n")
    for path in (csv, png, tmp_path / "sub" / "p.parquet", tmp_path / "m.md"):
        assert _mode(path) == 0o644, path
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary file left behind


def test_atomic_path_follows_stricter_umask(tmp_path, umask):
    umask(0o077)
    with io.atomic_path(tmp_path / "private.toml") as tmp:
        tmp.write_text("a = 1\n")
    assert _mode(tmp_path / "private.toml") == 0o600


def test_validation_report_files_follow_umask(tmp_path, umask):
    from mhimmune.studies import validation

    umask(0o027)
    validation._atomic_text(tmp_path / "r.md", "x")
    assert _mode(tmp_path / "r.md") == 0o640
