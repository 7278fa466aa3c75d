"""Particle-load classes of treated tumour cells, used by the model links in ``models/``.

Particles spread unevenly through a treated tumour, so its cells fall into regions of
low, middle and high particle concentration. The classes are the nodes of a 3-point
Gauss-Hermite quadrature of a log-normal relative load with mean 1: :data:`CELL_CLASSES`
names them, :data:`CLASS_WEIGHTS` gives their fractions and :func:`class_load` the
relative load of each as a sympy expression of the log-normal width.
"""

from __future__ import annotations

import sympy

__all__ = ["CELL_CLASSES", "CLASS_WEIGHTS", "CLASS_Z", "class_load"]

#: particle-load classes of treated tumour cells (regions of low, middle, high particle
#: concentration): 3-point Gauss-Hermite quadrature of a log-normal load with mean 1.
CELL_CLASSES = ("low", "mid", "high")
#: fraction of treated cells in each class (the quadrature weights)
CLASS_WEIGHTS = (1 / 6, 2 / 3, 1 / 6)
#: standard-normal quadrature node of each class
CLASS_Z = (-(3**0.5), 0.0, 3**0.5)


def class_load(cls: str, sigma):
    """Relative particle load exp(σ z - σ²/2) of class *cls* for log-normal width *sigma*.

    Parameters
    ----------
    cls
        One of :data:`CELL_CLASSES`.
    sigma
        Log-normal width of the particle load (dimensionless; a sympy expression or float).
    """
    z = CLASS_Z[CELL_CLASSES.index(cls)]
    return sympy.exp(sigma * z - sigma**2 / 2)
