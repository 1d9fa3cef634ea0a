"""`make instance` (behind every make target): the instance's dagster.yaml follows ours unless someone edited its
settings, and an upgrade from the days when DAGSTER_HOME was always ./.dagster_home does not silently start an
empty instance next to a data dir elsewhere. Run on a copy of the Makefile in a temporary folder."""

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OURS = (REPO / "clv_platform" / "dagster.yaml").read_text()


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

    # an install of an earlier version: the same settings, other comments -> ours, without a word
    (home / ".dagster.yaml.shipped").unlink()
    (home / "dagster.yaml").write_text("# Copied into $DAGSTER_HOME by `make`\n"
                                       + "".join(line + "\n" for line in OURS.splitlines() if not line.startswith("#")))
    result = _instance(repo, **env)
    assert result.returncode == 0 and result.stderr == ""
    assert (home / "dagster.yaml").read_text() == OURS

    # edited settings survive every later make (cp -u used to overwrite them after a pull) ...
    edited = OURS + "run_retries:\n  enabled: true\n"
    (home / "dagster.yaml").write_text(edited)
    (repo / "clv_platform" / "dagster.yaml").touch()
    assert _instance(repo, **env).stderr == ""
    assert (home / "dagster.yaml").read_text() == edited
    # ... and a change of ours is named once
    (repo / "clv_platform" / "dagster.yaml").write_text(OURS + "# a new setting\n")
    first, second = _instance(repo, **env), _instance(repo, **env)
    assert first.returncode == 0 and "kept your edited" in first.stderr and "diff " in first.stderr
    assert second.stderr == ""
    assert (home / "dagster.yaml").read_text() == edited


def test_an_instance_left_in_the_checkout_is_not_replaced_by_an_empty_one(tmp_path):
    repo = _checkout(tmp_path)
    old = repo / ".dagster_home"                       # where DAGSTER_HOME always was before
    old.mkdir()
    (old / "dagster.yaml").write_text(OURS)
    data = tmp_path / "srv" / "data"                   # the team's data dir, outside the checkout
    result = _instance(repo, CLV_DATA_DIR=str(data))
    assert result.returncode != 0
    assert f"mv {old} {data.parent / '.dagster_home'}" in result.stderr
    assert not (data.parent / ".dagster_home").exists()

    (data.parent / ".dagster_home").mkdir(parents=True)    # "start an empty one", as the message says
    assert _instance(repo, CLV_DATA_DIR=str(data)).returncode == 0
    # the checkout's own data dir keeps using ./.dagster_home
    assert _instance(repo).returncode == 0 and (repo / "data").is_dir()
