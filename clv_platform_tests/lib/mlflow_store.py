"""Fresh MLflow SQLite stores for tests, copied from one migrated template (creating the schema costs seconds)."""

import atexit
import shutil
import sqlite3
import tempfile
from pathlib import Path

_template: Path | None = None


def new_store(directory: Path) -> str:
    """Put an empty, fully migrated MLflow database at ``directory/mlflow.db``; return its absolute URI."""
    global _template
    if _template is None or not _template.exists():
        from mlflow import MlflowClient

        tmp = Path(tempfile.mkdtemp(prefix="clv-mlflow-template-"))
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # one per test session, gone when it ends
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()  # runs the migrations
        _template = tmp / "mlflow.db"
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "mlflow.db"
    src, dst = sqlite3.connect(_template), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return f"sqlite:///{target}"


__all__ = ["new_store"]
