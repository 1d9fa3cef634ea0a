"""Hold a DuckDB file's lock from another process, as a run writing the warehouse does."""

import subprocess
import sys
from contextlib import contextmanager

_HOLDER = "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(float(sys.argv[2]))"


@contextmanager
def hold_lock(database, seconds: float = 60.0):
    """A child process opens `database` read-write (holding its lock) for the block, or for `seconds` if
    that is shorter."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(database), str(seconds)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()

