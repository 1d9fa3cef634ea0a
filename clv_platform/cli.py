"""The `clv` command: thin wrappers over clv_platform.lib, with progress bars on long work.

Each stage owns one section below; keep commands thin and put the work in lib/.
"""

import sys

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Customer-lifetime-value platform: data, pipeline, models, serving."""


@cli.group()
def bench() -> None:
    """Benchmarks that print ratios measured side by side in one run."""


# --- data: generate / import-cdnow -------------------------------------------------------------

# --- ingestion + validation: validate ---------------------------------------------------------

# --- features + BTYD: backtest ------------------------------------------------------------------

# --- models + registry: promote / rollback -------------------------------------------------------

# --- pipeline: run / materialize ----------------------------------------------------------------


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
