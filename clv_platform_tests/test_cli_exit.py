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
