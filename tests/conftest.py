"""Shared fixtures: the full model is compiled once per test session."""

import warnings

import pytest

import mhimmune as mh
from mhimmune.core.resources import resource_dir
from mhimmune.mh.field_safety import HfWarning


@pytest.fixture(scope="session")
def model():
    return mh.load_model(verbose=False)


def load_protocol(name: str) -> mh.Protocol:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        return mh.Protocol.from_toml(resource_dir("protocols") / f"{name}.toml")


@pytest.fixture(scope="session")
def demo_results(model):
    return {
        name: mh.simulate(model, load_protocol(name))
        for name in ("untreated", "mh", "anti_pdl1", "mh_plus_pdl1")
    }
