"""Shared fixtures for the whole suite."""

import os

import pytest


@pytest.fixture(scope="module", autouse=True)
def _restore_mlflow_env():
    """MlflowResource points the process's MLflow at its store (MLFLOW_* env vars) when a test materialises
    through it: restore them after every test module so no module sees another's store."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    yield
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        del os.environ[key]
    os.environ.update(saved)
