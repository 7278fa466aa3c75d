"""Catalogue of magnetic heating agents (``parameters/agents.tsv``).

Each agent carries a measured SAR with the field it was measured at, and/or an
intrinsic loss power ILP = SAR/(H² f). Within linear response the SAR at another
field follows from the ILP: SAR = ILP · H² · f.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import pandas as pd

from .errors import ProtocolError
from .resources import resource_dir


@dataclass(frozen=True)
class Agent:
    """A heating agent of the catalogue; all numbers in the units their names give."""

    name: str
    description: str
    ilp_nH_m2_per_kg: float
    sar_w_per_g: float
    field_kA_per_m: float
    freq_kHz: float
    source: str

    def sar_at(self, field_kA_per_m: float, freq_kHz: float) -> float:
        """SAR in W/g at another field, scaled through the ILP (linear response)."""
        # ILP [nH m²/kg] · H² [A²/m²] · f [Hz] = W/kg; /1000 -> W/g
        return self.ilp_nH_m2_per_kg * 1e-9 * (field_kA_per_m * 1e3) ** 2 * freq_kHz * 1e3 / 1e3


@cache
def _table() -> pd.DataFrame:
    df = pd.read_csv(resource_dir("parameters") / "agents.tsv", sep="\t", comment=None)
    return df.set_index("agent", drop=False)


def agent_names() -> list[str]:
    """Names of all agents in the catalogue."""
    return list(_table().index)


def get_agent(name: str) -> Agent:
    """Look up an agent by name; unknown names raise :class:`ProtocolError`."""
    df = _table()
    if name not in df.index:
        raise ProtocolError(f"agent: unknown agent {name!r}; known agents: {', '.join(df.index)}")
    row = df.loc[name]
    ilp = float(row["ilp_nH_m2_per_kg"])
    sar, h, f = float(row["sar_w_per_g"]), float(row["field_kA_per_m"]), float(row["freq_kHz"])
    if math.isnan(ilp):
        ilp = sar / ((h * 1e3) ** 2 * f * 1e3) * 1e3 / 1e-9
    return Agent(name=name, description=str(row["description"]), ilp_nH_m2_per_kg=ilp,
                 sar_w_per_g=sar, field_kA_per_m=h, freq_kHz=f, source=str(row["source"]))
