"""Checkpoint folders of resumable runs: a manifest, the design and parquet chunks.

A :class:`CheckpointStore` writes each finished chunk atomically as
``chunks/chunk-FIRST-LAST.parquet`` next to ``design.parquet`` and ``manifest.json``
(design hash, output names); a run killed half-way is resumed by loading the chunks on
disk and computing only the missing runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mhimmune.core.errors import MhimmuneError
from mhimmune.core.io import atomic_path
from mhimmune.runs.results import STATUS_OK

__all__ = ["CheckpointStore", "FORMAT_VERSION", "write_parquet"]

#: version of the checkpoint folder layout
FORMAT_VERSION = 1


class CheckpointStore:
    """Checkpoint folder: manifest.json, design.parquet, chunks/chunk-FIRST-LAST.parquet.

    Parameters
    ----------
    out
        The folder (created if needed).
    design_hash
        Identity of design and evaluator; a folder holding another raises.
    design
        The design, written once as ``design.parquet``.
    resume
        Continue the results in *out*; without it a folder holding results raises.
    meta
        Extra manifest entries (factor, output and trajectory names).
    """

    def __init__(self, out: Path, design_hash: str, design: pd.DataFrame, resume: bool, meta: dict):
        self.out = Path(out)
        self.chunks = self.out / "chunks"
        manifest = self.out / "manifest.json"
        if manifest.is_file():
            old = json.loads(manifest.read_text())
            if not resume:
                raise MhimmuneError(
                    f"{self.out} already holds ensemble results; pass resume=True "
                    f"(--resume) to continue them, or choose another folder"
                )
            if old.get("design_hash") != design_hash:
                raise MhimmuneError(
                    f"{self.out} holds results of a different design or model "
                    f"(hash {old.get('design_hash')} != {design_hash}); choose "
                    f"another folder to start a new run"
                )
            self.manifest = old
        else:
            if self.chunks.is_dir() and any(self.chunks.glob("chunk-*.parquet")):
                raise MhimmuneError(
                    f"{self.out}/chunks holds files without a manifest; choose another folder"
                )
            self.manifest = {
                "format": FORMAT_VERSION,
                "design_hash": design_hash,
                "n_runs": len(design),
                **meta,
            }
            self.chunks.mkdir(parents=True, exist_ok=True)
            write_parquet(design.reset_index(drop=True), self.out / "design.parquet")
            self.write_manifest()
        self.chunks.mkdir(parents=True, exist_ok=True)
        for stale in self.chunks.glob(".chunk-*"):  # temporary files of a killed writer
            stale.unlink(missing_ok=True)

    def write_manifest(self) -> None:
        """Write ``manifest.json`` atomically."""
        with atomic_path(self.out / "manifest.json") as tmp:
            tmp.write_text(json.dumps(self.manifest, indent=1, default=str))

    def load(self) -> list[pd.DataFrame]:
        """The chunk tables on disk, in file-name order."""
        frames = []
        for f in sorted(self.chunks.glob("chunk-*.parquet")):
            frames.append(pd.read_parquet(f))
        return frames

    def finished(self, n: int, retry_failed: bool = False) -> tuple[list[pd.DataFrame], np.ndarray]:
        """Chunk tables of the runs 0..n-1 on disk (each run once) and the mask of those runs.

        With *retry_failed*, runs stored as failed count as not finished.
        """
        done = np.zeros(n, dtype=bool)
        frames = []
        for frame in self.load():
            frame = frame[(frame["run"] >= 0) & (frame["run"] < n)]
            if retry_failed:
                frame = frame[frame["status"] == STATUS_OK]
            frame = frame[~done[frame["run"].to_numpy()]]
            frame = frame.drop_duplicates("run")
            done[frame["run"].to_numpy()] = True
            frames.append(frame)
        return frames, done

    def save(self, frame: pd.DataFrame) -> None:
        """Write one chunk table (rows of consecutive runs of one chunk)."""
        first, last = int(frame["run"].iloc[0]), int(frame["run"].iloc[-1])
        write_parquet(frame, self.chunks / f"chunk-{first:09d}-{last:09d}.parquet")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write *frame* to *path* atomically (no index)."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
