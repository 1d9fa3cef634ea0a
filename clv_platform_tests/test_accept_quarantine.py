"""`clv accept-quarantine DAY --reason ...`: one understood bad day no longer stops everything downstream, without
raising the quarantine share for every day; refused with a reason when there is nothing (or not that) to accept."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

HEADER = "order_id,line_number,customer_id,order_ts,category,quantity,unit_price,channel,country,original_order_id"


def test_accept_quarantine_from_the_command_line(tmp_path):
    data, home = tmp_path / "data", tmp_path / "home"
    landing = data / "landing"
    landing.mkdir(parents=True)
    home.mkdir()
    shutil.copy(Path(__file__).parents[1] / "clv_platform" / "dagster.yaml", home / "dagster.yaml")
    rows = [f"O{i},1,C{i},2024-03-02T10:00:00,books,1,10.00,web,US," for i in range(27)]
    rows += [f"X{i},1,C{i},2024-03-02T10:00:00,books,0,10.00,web,US," for i in range(3)]     # zero_quantity: 10%
    (landing / "transactions_2024-03-02.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    (landing / "transactions_2024-03-01.csv").write_text(HEADER + "\nP1,1,C1,2024-03-01T10:00:00,books,1,10.00,web,US,\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "CLV_DATA_DIR": str(data)}

    def clv(*args):
        return subprocess.run([sys.executable, "-m", "clv_platform.cli", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300, env=env)

    not_loaded = clv("accept-quarantine", "2024-03-02", "--reason", "x")
    assert not_loaded.returncode == 1 and "no warehouse" in not_loaded.stderr
    assert clv("materialize", "ingest").returncode == 1                 # 3 of 30 quarantined > 5 %: blocked
    within = clv("accept-quarantine", "2024-03-01", "--reason", "x")
    assert within.returncode == 0 and "within the limit of 5%: nothing to accept" in within.stdout
    assert clv("accept-quarantine", "2024-03-02", "--reason", " ").returncode == 1       # a reason is required

    accepted = clv("accept-quarantine", "2024-03-02", "--reason", "the till export of that day doubled lines")
    assert accepted.returncode == 0, accepted.stderr
    assert "accepted 3 of 30 rows quarantined (10.0% > 5%)" in accepted.stdout
    assert "2024-03-02 passes its checks: the next scoring uses its 27 loaded rows" in accepted.stdout
    status = clv("status")
    assert ("accepted      1 day(s) used despite their quarantined share (clv accept-quarantine): 2024-03-02 3 of "
            "30 rows (the till export of that day doubled lines)") in status.stdout
    assert "have not passed the blocking checks" not in status.stdout

    (landing / "transactions_2024-03-02.csv").write_text("\n".join([HEADER, *rows, rows[0].replace("O0", "O99")]) + "\n")
    changed = clv("accept-quarantine", "2024-03-02", "--reason", "x")
    assert changed.returncode == 1 and "the landing file changed since transactions_2024-03-02.csv was loaded" in (
        changed.stderr)
