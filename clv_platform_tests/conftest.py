"""Shared fixtures for the whole suite."""

import os
import sys

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


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Streamlit's AppTest runs a page as `sys.modules["__main__"]` and leaves it there: a later test that starts
    a process with the spawn method would then run that page in the child. Put the real __main__ back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main
