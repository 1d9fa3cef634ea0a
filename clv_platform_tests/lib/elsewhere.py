"""Run Python code as someone else's environment would: this interpreter and its packages, but no clv_platform
(neither the editable install's finder and path hook nor the repository on sys.path)."""

import subprocess
import sys
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[2])
PRELUDE = f"""
import sys
sys.meta_path = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
sys.path = [p for p in sys.path if p not in ("", {REPO!r}) and "editable" not in p]
try:
    import clv_platform
    raise SystemExit("clv_platform is still importable")
except ImportError:
    pass
"""


def run_without_clv_platform(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PRELUDE + code], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
