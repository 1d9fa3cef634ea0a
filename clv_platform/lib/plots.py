"""matplotlib for the PNG plots logged to MLflow and shown in the Dagster UI: headless (Agg), one way to save.

matplotlib itself is imported on the first pyplot() call, so importing this module costs nothing."""

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path, dpi: int = 90) -> Path:
    """Lay out, write `fig` as PNG to `path` (creating its folder), close it; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
