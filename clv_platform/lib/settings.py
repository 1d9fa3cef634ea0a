"""Where things live. Everything is rooted at CLV_DATA_DIR (default ./data), always as absolute paths."""

import os
from dataclasses import dataclass
from pathlib import Path

from clv_platform.lib.schema import DEFAULT_VOCABULARIES, Vocabularies, load_vocabularies


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    partitions_start: str

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def mlflow_db(self) -> Path:
        return self.data_dir / "mlflow.db"

    @property
    def mlflow_uri(self) -> str:
        # MLflow 3 wants an absolute SQLite URI; its default depends on the working directory.
        return f"sqlite:///{self.mlflow_db}"

    @property
    def mlflow_artifact_root(self) -> Path:
        return self.data_dir / "mlartifacts"

    @property
    def snapshot_root(self) -> Path:
        # CLV_SNAPSHOT_ROOT points readers (API, dashboard) at another snapshot root, e.g. in tests.
        override = os.environ.get("CLV_SNAPSHOT_ROOT")
        return Path(override).expanduser().resolve() if override else self.data_dir / "serving"

    @property
    def vocabularies_path(self) -> Path:
        # CLV_VOCABULARIES names the file; otherwise data/vocabularies.toml, used when it exists.
        override = os.environ.get("CLV_VOCABULARIES")
        return Path(override).expanduser().resolve() if override else self.data_dir / "vocabularies.toml"

    def vocabularies(self) -> Vocabularies:
        """The allowed channels, countries and categories: from the vocabularies file if there is one (a file
        named by CLV_VOCABULARIES must exist), else the built-in defaults. VocabularyFileError if unusable."""
        path = self.vocabularies_path
        if path.exists() or os.environ.get("CLV_VOCABULARIES"):
            return load_vocabularies(path)
        return DEFAULT_VOCABULARIES


def get_settings() -> Settings:
    data_dir = Path(os.environ.get("CLV_DATA_DIR", "data")).expanduser().resolve()
    return Settings(
        data_dir=data_dir,
        # First daily partition of raw/transactions. CDNOW needs CLV_PARTITIONS_START=1997-01-01.
        partitions_start=os.environ.get("CLV_PARTITIONS_START", "2020-01-01"),
    )
