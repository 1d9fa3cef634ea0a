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

STAGES = {
    "ingest": "load every landing file (one ranged run of ingestion_job)",
    "features": "features/customer_features as of the latest day",
    "train": "training_job: features, BTYD, CLV and segment models (registered as `staging`)",
    "score": "scoring_job: score every customer with the production models and publish the snapshot",
}


@cli.command("materialize")
@click.argument("stage", type=click.Choice(list(STAGES)))
def materialize_command(stage: str) -> None:
    """Materialise one stage of the pipeline through Dagster (runs show in the Dagster UI)."""
    from clv_platform import orchestrate

    click.echo(f"{stage}: {STAGES[stage]}")
    try:
        if stage == "ingest":
            start, end = orchestrate.ingest_landing()
            click.echo(f"ingested partitions {start}..{end}")
        elif stage == "features":
            orchestrate.run_job("training_job", asset_keys=[("features", "customer_features")])
        elif stage == "train":
            orchestrate.run_job("training_job")
        else:
            orchestrate.run_job("scoring_job")
    except orchestrate.JobFailed as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(orchestrate.summary_text())


@cli.command("run")
@click.option("--customers", default=20_000, show_default=True, help="Demo customers when no landing files exist.")
@click.option("--days", default=730, show_default=True, help="Demo history length in days.")
@click.option("--seed", default=42, show_default=True)
def run_command(customers: int, days: int, seed: int) -> None:
    """The main job end to end: demo data (if none), ingest, validate, features, BTYD, train, promote on the
    first run, score, publish. Prints the model metrics, segment sizes and where to look next."""
    from clv_platform import orchestrate

    try:
        orchestrate.run_pipeline(customers=customers, days=days, seed=seed, echo=click.echo)
    except orchestrate.JobFailed as exc:
        raise click.ClickException(str(exc)) from exc


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
