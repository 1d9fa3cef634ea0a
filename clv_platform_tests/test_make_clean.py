"""`make clean` deletes the data dir and the Dagster instance in use, and refuses a folder that is not ours."""

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _clean(data_dir: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLV_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(home)}
    return subprocess.run(["make", "-s", "-C", str(REPO), "clean"], env=env, capture_output=True, text=True,
                          timeout=60)


def test_make_clean_deletes_the_data_dir_in_use_and_refuses_a_foreign_folder(tmp_path):
    data, home = tmp_path / "data_cdnow", tmp_path / ".dagster_home_cdnow"
    (data / "landing").mkdir(parents=True)
    (data / "warehouse.duckdb").write_text("")
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    other = tmp_path / "data"                  # another data dir next to it: not touched
    other.mkdir()
    (other / "warehouse.duckdb").write_text("")
    result = _clean(data, home)
    assert result.returncode == 0, result.stderr
    assert not data.exists() and not home.exists() and (other / "warehouse.duckdb").exists()

    # a mistyped CLV_DATA_DIR naming a folder of something else: refused, nothing deleted
    foreign = tmp_path / "home_of_someone"
    (foreign / "thesis").mkdir(parents=True)
    result = _clean(foreign, tmp_path / "none")
    assert result.returncode != 0 and "does not look like a clv_platform data dir" in result.stderr
    assert (foreign / "thesis").exists()
