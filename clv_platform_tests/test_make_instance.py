"""`make instance` (behind every make target): the instance's dagster.yaml follows ours unless someone edited its
settings, and an upgrade from the days when DAGSTER_HOME was always ./.dagster_home does not silently start an
empty instance next to a data dir elsewhere. Run on a copy of the Makefile in a temporary folder."""

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OURS = (REPO / "clv_platform" / "dagster.yaml").read_text()
EARLIER = [  # clv_platform/dagster.yaml at e62d3bd, and dagster.yaml at ac31dec
    "# The Dagster instance settings: copied into $DAGSTER_HOME by `make` (Makefile target `instance`), or written "
    "there\n# by the first `clv` command that finds none (orchestrate.instance).\ntelemetry:\n  enabled: false\n"
    "concurrency:\n  runs:\n    max_concurrent_runs: 1   # DuckDB allows one writing process\n",
    "# Copied into $DAGSTER_HOME by `make` (see Makefile target `instance`).\ntelemetry:\n  enabled: false\n"
    "run_queue:\n  max_concurrent_runs: 1   # DuckDB allows one writing process\nconcurrency:\n  runs:\n"
    "    max_concurrent_runs: 1\nrun_coordinator:\n  module: dagster.core.run_coordinator\n"
    "  class: QueuedRunCoordinator\n",
]


def _checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "clv_platform").mkdir(parents=True)
    shutil.copy(REPO / "Makefile", repo / "Makefile")
    shutil.copy(REPO / "clv_platform" / "dagster.yaml", repo / "clv_platform" / "dagster.yaml")
    for name in ("requirements.lock", "pyproject.toml"):
        (repo / name).write_text("")
    return repo


def _instance(repo: Path, **env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CLV_DATA_DIR", "DAGSTER_HOME")} | env
    return subprocess.run(["make", "-s", "-C", str(repo), "instance"], env=env, capture_output=True, text=True,
                          timeout=60)


def test_an_edited_dagster_yaml_is_kept_and_an_unedited_one_follows_ours(tmp_path):
    repo, home = _checkout(tmp_path), tmp_path / "home"
    env = {"CLV_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(home)}
    assert _instance(repo, **env).returncode == 0
    assert (home / "dagster.yaml").read_text() == OURS

    # an install of an earlier version, holding an earlier version's settings (written by `cp -u`, never edited,
    # no record of what was copied): ours, without a word
    for earlier in EARLIER:
        (home / ".dagster.yaml.shipped").unlink()
        (home / "dagster.yaml").write_text(earlier)
        result = _instance(repo, **env)
        assert result.returncode == 0 and result.stderr == ""
        assert (home / "dagster.yaml").read_text() == OURS

    # edited settings survive every later make (cp -u used to overwrite them after a pull) ...
    edited = OURS + "run_retries:\n  enabled: true\n"
    (home / "dagster.yaml").write_text(edited)
    (repo / "clv_platform" / "dagster.yaml").touch()
    assert _instance(repo, **env).stderr == ""
    assert (home / "dagster.yaml").read_text() == edited
    # ... a change of our comments says nothing, a change of our settings is named once, with how to take ours
    (repo / "clv_platform" / "dagster.yaml").write_text(OURS + "# a new comment\n")
    assert _instance(repo, **env).stderr == ""
    (repo / "clv_platform" / "dagster.yaml").write_text(OURS + "run_monitoring:\n  enabled: true\n")
    first, second = _instance(repo, **env), _instance(repo, **env)
    assert first.returncode == 0 and "kept your edited" in first.stderr and "take ours: cp " in first.stderr
    assert second.stderr == ""
    assert (home / "dagster.yaml").read_text() == edited


def test_an_instance_left_in_the_checkout_is_not_replaced_by_an_empty_one(tmp_path):
    repo = _checkout(tmp_path)
    old = repo / ".dagster_home"                  # where DAGSTER_HOME always was before, for every data dir
    old.mkdir()
    (old / "dagster.yaml").write_text(OURS)
    assert _instance(repo).returncode == 0 and (repo / "data").is_dir()   # the checkout's data dir: as before
    data = tmp_path / "srv" / "data"              # the team's data dir, outside the checkout
    result = _instance(repo, CLV_DATA_DIR=str(data))
    assert result.returncode != 0
    assert f"mv {old} {data.parent / '.dagster_home'}" in result.stderr
    assert not (data.parent / ".dagster_home").exists()

    (data.parent / ".dagster_home").mkdir(parents=True)    # "start an empty one", as the message says
    assert _instance(repo, CLV_DATA_DIR=str(data)).returncode == 0
    assert (data.parent / ".dagster_home" / ".data_dir").read_text().strip() == str(data)


def test_an_instance_made_now_belongs_to_its_data_dir_and_refuses_no_other(tmp_path):
    repo = _checkout(tmp_path)
    assert _instance(repo, CLV_DATA_DIR=str(repo / "data_cdnow")).returncode == 0   # ./.dagster_home, recorded
    assert (repo / ".dagster_home" / ".data_dir").read_text().strip() == str(repo / "data_cdnow")
    other = tmp_path / "srv2" / "data"
    assert _instance(repo, CLV_DATA_DIR=str(other)).returncode == 0
    assert (other.parent / ".dagster_home" / "dagster.yaml").exists()
