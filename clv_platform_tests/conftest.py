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


@pytest.fixture(scope="session", autouse=True)
def _default_vocabularies(tmp_path_factory):
    """Every test (and process it starts) sees the built-in vocabularies, even when the checkout's data dir has
    a vocabularies.toml of its own: an empty file keeps every default. Tests of other vocabularies set
    CLV_VOCABULARIES themselves (monkeypatch) or pass Vocabularies explicitly."""
    path = tmp_path_factory.mktemp("vocabularies") / "vocabularies.toml"
    path.write_text("# empty: the built-in defaults\n")
    saved = os.environ.get("CLV_VOCABULARIES")
    os.environ["CLV_VOCABULARIES"] = str(path)
    yield
    if saved is None:
        os.environ.pop("CLV_VOCABULARIES", None)
    else:
        os.environ["CLV_VOCABULARIES"] = saved


@pytest.fixture(scope="session", autouse=True)
def _no_feed_age_check():
    """Tests load days of 2024 (and CDNOW's of 1997): `clv status` would ask about the feed's age in each one.
    The test of that check sets CLV_FEED_STALE_DAYS itself."""
    saved = os.environ.get("CLV_FEED_STALE_DAYS")
    os.environ["CLV_FEED_STALE_DAYS"] = "0"
    yield
    if saved is None:
        os.environ.pop("CLV_FEED_STALE_DAYS", None)
    else:
        os.environ["CLV_FEED_STALE_DAYS"] = saved


@pytest.fixture(scope="session", autouse=True)
def _open_api():
    """The API tests call without a token unless they set one: a CLV_API_TOKEN of the shell is put aside."""
    saved = os.environ.pop("CLV_API_TOKEN", None)
    yield
    if saved is not None:
        os.environ["CLV_API_TOKEN"] = saved


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Streamlit's AppTest runs a page as `sys.modules["__main__"]` and leaves it there: a later test that starts
    a process with the spawn method would then run that page in the child. Put the real __main__ back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main
