"""Where things live. Everything is rooted at CLV_DATA_DIR (default ./data), always as absolute paths."""

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from clv_platform.lib.schema import DEFAULT_VOCABULARIES, Vocabularies, load_vocabularies


class SettingsError(ValueError):
    """An environment setting that cannot be used; the message names the variable and what is wrong."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    partitions_start: str
    # A file with a larger share of its rows quarantined fails the blocking check (files of 20+ rows).
    max_quarantine_share: float = 0.05

    @property
    def feed_stale_days(self) -> int:
        """`clv status` asks for a look when the newest day of data is more than this many days before today (a
        daily export that stopped); 0 = never (a history that no longer grows, e.g. CDNOW). CLV_FEED_STALE_DAYS,
        default 3; read by status only, so a bad value stops nothing else (SettingsError when read)."""
        stale = os.environ.get("CLV_FEED_STALE_DAYS", "3")
        if not re.fullmatch(r"\d{1,5}", stale.strip()):
            raise SettingsError(f"CLV_FEED_STALE_DAYS={stale!r} is not a whole number of days (how old the newest day "
                                "of data may be before `clv status` asks for a look, e.g. 3; 0 = never)")
        return int(stale)

    @property
    def snapshots_kept(self) -> int:
        """How many published snapshots stay on disk for `clv snapshot use` (the current one always stays; each is
        the size of the scores and the history). CLV_SNAPSHOTS_KEPT, default 5; SettingsError when read."""
        kept = os.environ.get("CLV_SNAPSHOTS_KEPT", "5")
        if not re.fullmatch(r"\d{1,4}", kept.strip()) or int(kept) < 1:
            raise SettingsError(f"CLV_SNAPSHOTS_KEPT={kept!r} is not a whole number of snapshots from 1 (how many "
                                "published snapshots stay for `clv snapshot use`, e.g. 5)")
        return int(kept)

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
    def mlflow_store_exists(self) -> bool:
        """mlflow.db is there and not empty (MLflow would create its tables in an empty file, as in a new one)."""
        return self.mlflow_db.exists() and self.mlflow_db.stat().st_size > 0

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

    def ensure_data_dir(self) -> Path:
        """Create the data folder (for the commands that write into it); SettingsError naming it if impossible."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            (self.data_dir / "landing").mkdir(exist_ok=True)
        except OSError as exc:
            raise SettingsError(f"CLV_DATA_DIR={self.data_dir} cannot be created or written "
                                f"({exc.strerror or exc}): point it at a folder you can write to") from None
        return self.data_dir

    def vocabularies(self) -> Vocabularies:
        """The allowed channels, countries and categories: from the vocabularies file if there is one (a file
        named by CLV_VOCABULARIES must exist), else the built-in defaults. VocabularyFileError if unusable."""
        path = self.vocabularies_path
        if path.exists() or os.environ.get("CLV_VOCABULARIES"):
            return load_vocabularies(path)
        return DEFAULT_VOCABULARIES


def get_settings() -> Settings:
    """The settings from the environment; SettingsError for a value that cannot work."""
    data_dir = Path(os.environ.get("CLV_DATA_DIR", "data")).expanduser().resolve()
    if data_dir.exists() and not data_dir.is_dir():
        raise SettingsError(f"CLV_DATA_DIR={data_dir} is a file, not a folder")
    # First daily partition of raw/transactions. CDNOW needs CLV_PARTITIONS_START=1997-01-01.
    start = os.environ.get("CLV_PARTITIONS_START", "2020-01-01")
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", start):
            raise ValueError
        dt.date.fromisoformat(start)
    except ValueError:
        raise SettingsError(f"CLV_PARTITIONS_START={start!r} is not a date YYYY-MM-DD (the first daily partition, "
                            "e.g. 2020-01-01)") from None
    share = os.environ.get("CLV_MAX_QUARANTINE_SHARE", str(Settings.max_quarantine_share))
    try:
        max_share = float(share)
        if not 0 <= max_share <= 1:
            raise ValueError
    except ValueError:
        raise SettingsError(f"CLV_MAX_QUARANTINE_SHARE={share!r} is not a share between 0 and 1 (the largest share "
                            "of a file's rows that may be quarantined before the file fails its check, e.g. 0.05)"
                            ) from None
    return Settings(data_dir=data_dir, partitions_start=start, max_quarantine_share=max_share)
