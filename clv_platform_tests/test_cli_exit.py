"""`clv` exit codes: 0 with all output flushed on success (main() skips the interpreter teardown then), the
command's own code on failure."""

import subprocess
import sys


def _clv(*args, cwd):
    return subprocess.run([sys.executable, "-m", "clv_platform.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_success_exits_0_with_its_output(tmp_path):
    good = tmp_path / "transactions_2024-03-10.csv"
    good.write_text("order_id,line_number,customer_id,order_ts,category,quantity,unit_price,channel,country,"
                    "original_order_id\nO1,1,C1,2024-03-10T09:00:00,books,2,12.5,web,US,\n")
    result = _clv("validate", str(good), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(good) in result.stdout and "rows" in result.stdout


def test_failures_keep_their_exit_code(tmp_path):
    bad = tmp_path / "orders.csv"
    bad.write_text("x\n")
    result = _clv("validate", str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert "wrong file name" in result.stdout
    assert _clv("no-such-command", cwd=tmp_path).returncode == 2
    # a path that is not there is named as such, not taken for a misnamed file
    for missing in ("nope.csv", "no_folder/", "transactions_2024-03-10.csv.missing"):
        result = _clv("validate", str(tmp_path / missing), cwd=tmp_path)
        assert result.returncode == 1 and "no such file or folder" in result.stderr, result.stderr
    # out-of-range demo sizes are usage errors, not a traceback from the generator
    result = _clv("run", "--customers", "0", cwd=tmp_path)
    assert result.returncode == 2 and "x>=1" in result.stderr and "Traceback" not in result.stderr


def test_unusable_settings_and_an_empty_warehouse_are_one_line_errors(tmp_path):
    import os

    def run(*args, **env):
        return subprocess.run([sys.executable, "-m", "clv_platform.cli", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300, env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home"),
                                                           "CLV_DATA_DIR": str(tmp_path / "data"), **env})

    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = [
        (("status",), {"CLV_PARTITIONS_START": "1997-1-1"}, "CLV_PARTITIONS_START='1997-1-1' is not a date YYYY-MM-DD"),
        (("materialize", "ingest", "--new"), {"CLV_PARTITIONS_START": "garbage"}, "'garbage' is not a date"),
        (("generate", "--customers", "10", "--days", "2"), {"CLV_DATA_DIR": str(a_file)}, "is a file, not a folder"),
        (("materialize", "train"), {"CLV_DATA_DIR": str(a_file / "data")}, "cannot be created or written"),
        (("materialize", "train"), {}, "no warehouse at"),
    ]
    for args, env, message in cases:
        result = run(*args, **env)
        assert result.returncode == 1 and message in result.stderr, (args, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, args


def test_a_failed_run_shows_its_cause_without_stack_traces(tmp_path):
    """A failed `clv materialize` run: Dagster's console lines keep the error and leave the stack trace to the
    run in the Dagster UI, and the closing line gives the file and the problem, without Dagster's class path."""
    import os
    import shutil
    from pathlib import Path

    landing = tmp_path / "data" / "landing"
    landing.mkdir(parents=True)
    (landing / "transactions_2024-03-01.csv").write_text(
        "order_id,line_number,customer_id,order_ts,category,quantity,unit_price,channel,country,"
        "original_order_id\nO1,1,C1,2024-03-01T10:00:00,books,1,10.00,web,US,\n")
    (landing / "transactions_2024-03-02.csv").write_text("order_id;line_number\nO2;1\n")
    (tmp_path / "home").mkdir()
    shutil.copy(Path(__file__).parents[1] / "clv_platform" / "dagster.yaml", tmp_path / "home" / "dagster.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "clv_platform.cli", "materialize", "ingest"], cwd=tmp_path, capture_output=True,
        text=True, timeout=300, env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home"),
                                     "CLV_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 1, result.stderr
    assert "Stack Trace" not in result.stderr and 'File "' not in result.stderr, result.stderr
    assert "Warning" not in result.stderr, result.stderr                # (dagster-mlflow's beta warning)
    assert "(stack trace: the run in the Dagster UI)" in result.stderr
    closing = result.stderr.strip().splitlines()[-2:]
    assert closing[0].startswith("Error: ingestion_job failed (run "), closing
    assert closing[1] == (f"  transactions_ingestion: 1 of 2 landing file(s) rejected: "
                          f"{landing / 'transactions_2024-03-02.csv'}: wrong delimiter: the header is "
                          "semicolon-separated; expected commas"), closing
