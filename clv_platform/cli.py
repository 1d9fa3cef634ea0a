"""The `clv` command: thin wrappers over clv_platform.lib, with progress bars on long work.

Each stage owns one section below; keep commands thin and put the work in lib/.
"""

import csv
import io
import os
import re
import sys
from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Customer-lifetime-value platform: data, pipeline, models, serving."""
    from clv_platform.lib.settings import SettingsError, get_settings

    try:
        get_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _writable_settings():
    """The settings, with the data folder created (commands that write into it); a one-line error otherwise."""
    from clv_platform.lib.settings import SettingsError, get_settings

    settings = get_settings()
    try:
        settings.ensure_data_dir()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    return settings


@cli.group()
def bench() -> None:
    """Benchmarks that print ratios measured side by side in one run."""


def _benchmark(name: str):
    """benchmarks/bench_<name>.py (beside the package in the repo checkout)."""
    import importlib
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(f"benchmarks.bench_{name}")


# --- data: generate / import-history / import-cdnow -------------------------------------------------------------


def _data_out_dir(out: str | None):
    return Path(out).expanduser().resolve() if out else _writable_settings().landing_dir


@cli.command("generate")
@click.option("--customers", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option("--start", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="First day (YYYY-MM-DD). Default: today - DAYS, so the last file is yesterday's.")
@click.option("--days", type=click.IntRange(min=1), default=730, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Default: <CLV_DATA_DIR>/landing.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--clean", is_flag=True, help="Delete existing transactions_* and ground-truth files in OUT first.")
def generate_command(customers, start, days, seed, out, fmt, clean) -> None:
    """Simulate demo customers (BG/NBD x Gamma-Gamma) and write one landing file per day + ground_truth.json."""
    from clv_platform.lib import generator

    out_dir = _data_out_dir(out)
    s = generator.generate(out_dir, customers=customers, start=start.date() if start else None, days=days,
                           seed=seed, fmt=fmt, progress=True, clean=clean)
    click.echo(f"{s.customers:,} customers, {s.orders:,} orders, {s.lines:,} lines "
               f"({s.return_lines:,} return lines), {s.start}..{s.end}: {s.files} files in {s.out_dir}")
    click.echo(f"{s.seconds:.1f} s, {s.customers_per_s:,.0f} customers/s; ground truth: {s.ground_truth}")
    stale = [p for p in out_dir.glob("transactions_*") if not s.start <= p.name[13:23] <= s.end]
    if stale:
        click.echo(f"note: {len(stale)} other landing files in {out_dir} (use --clean to remove them)", err=True)


@cli.command("import-history")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Default: <CLV_DATA_DIR>/landing.")
@click.option("--replace", is_flag=True, help="Overwrite daily files of the export's days that exist already.")
def import_history_command(file, out, replace) -> None:
    """Split a history export (one CSV or Parquet of many days, landing columns) into daily landing files."""
    from clv_platform.lib import history_import
    from clv_platform.lib.settings import get_settings

    try:
        s = history_import.import_history(file, _data_out_dir(out), replace=replace)
    except history_import.HistoryImportError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{s.source}: {s.rows_read:,} rows read = {s.rows_written:,} written to daily files + "
               f"{s.rows_unassigned:,} set aside (order_ts without a readable day, or after today) "
               f"({s.seconds:.1f} s)")
    if s.start is None:
        click.echo("no row has a readable order_ts day up to today: no daily file written")
    else:
        click.echo(f"{s.files:,} daily files {s.start}..{s.end} in {s.out_dir} ({s.empty_days:,} day(s) without "
                   "orders got a header-only file)")
    if s.replaced:
        fewer = {n: (b, a) for n, (b, a) in s.replaced.items() if b is None or a < b}
        click.echo(f"replaced {len(s.replaced):,} daily file(s); the old ones are kept in {s.replaced_dir}")
        if fewer:
            click.echo(f"warning: {len(fewer):,} replaced day(s) now hold fewer rows than before: " + ", ".join(
                f"{n} {'?' if b is None else f'{b:,}'} -> {a:,}" for n, (b, a) in list(fewer.items())[:5])
                + (" ..." if len(fewer) > 5 else "") + ". A day's file is replaced whole: import an export "
                "holding all of that day's rows, or copy rows back from the old file", err=True)
    if s.ignored_columns:
        click.echo(f"ignored column(s) that are not landing columns: {', '.join(s.ignored_columns)}")
    for what, rows in s.rewritten.items():
        click.echo(f"rewritten: {what}: {rows:,} row(s)")
    for warning in s.warnings:
        click.echo(f"warning: {warning}", err=True)
    if s.unassigned_file:
        click.echo(f"rows set aside (line, reason, row): {s.unassigned_file}", err=True)
    first = get_settings().partitions_start
    if s.start is not None and str(s.start) < first:
        click.echo(f"note: the export starts on {s.start}, before the first daily partition {first}: "
                   f"set CLV_PARTITIONS_START={s.start} so those days load", err=True)
    if s.start is not None:
        click.echo(f"next: `clv validate {s.out_dir}` says what the loader will quarantine and why, without "
                   "loading; then the landing sensor picks the files up (make dev), or `clv materialize ingest` "
                   "loads them")
    if s.rows_unassigned:
        sys.exit(1)


@cli.command("import-cdnow")
@click.option("--sample", is_flag=True, help="The 1/10 sample (2,357 customers) instead of all 23,570.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Default: <CLV_DATA_DIR>/landing.")
def import_cdnow_command(sample, out) -> None:
    """Write the CDNOW data shipped with lifetimes as landing files (1997-01-01..1998-06-30)."""
    from clv_platform.lib import cdnow

    s = cdnow.import_cdnow(_data_out_dir(out), sample=sample, progress=True)
    click.echo(f"{s.source}: {s.records:,} records, {s.customers:,} customers, ${s.total_dollars}, "
               f"{s.start}..{s.end}: {s.files} files in {s.out_dir}")
    click.echo(f"kept {s.zero_dollar_records} records with $0.00 and {s.zero_cd_records} with 0 CDs "
               f"(quantity 1); {s.same_day_extra_records} same-day repeat records")
    from clv_platform.lib.settings import get_settings

    if get_settings().partitions_start > str(s.start):
        click.echo(f"hint: CDNOW starts on {s.start}, before the first daily partition "
                   f"{get_settings().partitions_start}: set CLV_PARTITIONS_START={s.start} before loading it.")


@bench.command("ingest")
@click.option("--customers", type=click.IntRange(min=1), default=1_000_000, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=730, show_default=True)
@click.option("--no-backfill", is_flag=True, help="Only the generator.")
def bench_ingest_command(customers, days, no_backfill) -> None:
    """Generator customers/s and lines, then backfill rows/s of the same files (if bench_backfill exists)."""
    r = _benchmark("ingest").run(customers=customers, days=days, backfill=not no_backfill)
    click.echo(f"generator: {r['customers']:,} customers over {r['days']} days -> {r['orders']:,} orders, "
               f"{r['lines']:,} lines, {r['bytes_written'] / 1e6:,.0f} MB in {r['generate_seconds']:.1f} s "
               f"({r['cpus']} CPUs)")
    click.echo(f"  generator customers/s: {r['generator_customers_per_s']:,.0f}   "
               f"lines/s: {r['generator_lines_per_s']:,.0f}")
    if "backfill_rows_per_s" in r:
        click.echo(f"backfill:  {r['backfill_rows_per_s']:,.0f} rows/s ({r['backfill_seconds']:.1f} s)")
        if isinstance(r.get("backfill"), dict):
            click.echo("  " + ", ".join(f"{k} {v:,.2f}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in r["backfill"].items()))
        click.echo(f"  ratio generator lines/s : backfill rows/s = {r['generate_to_backfill_ratio']:.2f}")
    else:
        click.echo(f"backfill:  {r['backfill']}")

# --- ingestion + validation: validate ---------------------------------------------------------


@cli.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--examples", default=10, show_default=True, help="Rejected rows to show (one file).")
def validate_command(paths: tuple[str, ...], examples: int) -> None:
    """Validate landing files without loading them: one FILE in detail, or several files / a folder of
    daily files as one line each plus totals. Exit 1 if any file (or any of its rows) would be rejected."""
    from pathlib import Path

    from clv_platform.lib import ingest, landing
    from clv_platform.lib.settings import get_settings

    files, misnamed = [], []
    for path in map(Path, paths):
        if not path.exists():     # before the name check: a mistyped folder is not a "wrong file name"
            raise click.ClickException(f"{path}: no such file or folder")
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if ingest.schema.LANDING_FILE_RE.match(p.name))
            # as `clv status` lists them (an impossible date matches the pattern: checked, and refused, above)
            misnamed += [path / name for name in landing.misnamed_files(path)
                         if not ingest.schema.LANDING_FILE_RE.match(name)]
            if not found and not misnamed:
                raise click.ClickException(f"{path}: no transactions_YYYY-MM-DD.csv|parquet files in this folder")
            files += found
        else:
            files.append(path)
    try:
        vocabularies = get_settings().vocabularies()
    except ingest.schema.VocabularyFileError as exc:
        raise click.ClickException(str(exc)) from None
    ok = True
    if len(files) == 1:
        ok = _validate_one(ingest.check_file(files[0], examples=examples, vocabularies=vocabularies))
    elif files:
        import duckdb

        with duckdb.connect() as con:      # one in-memory database for all: half the time per small file
            ok = _validate_many([ingest.check_file(f, examples=0, vocabularies=vocabularies, con=con) for f in
                                 _with_progress(files)], vocabularies.source)
    for path in misnamed:
        click.echo(f"NOT LOADED {path}: not a landing file name (transactions_YYYY-MM-DD.csv or .parquet); no "
                   "partition loads it")
    if misnamed:
        click.echo(f"RESULT: {len(misnamed):,} file(s) no partition loads")
    if not ok or misnamed:
        sys.exit(1)


def _with_progress(files):
    from tqdm.auto import tqdm

    return tqdm(files, desc="validating", unit="file", disable=len(files) < 50, leave=False)


def _validate_one(report) -> bool:
    from clv_platform.lib import ingest

    click.echo(f"file:      {report.file}")
    click.echo(f"partition: {report.partition_date or '-'}")
    click.echo(f"vocabularies: {report.vocabularies}")
    if report.error:
        click.echo(f"REJECTED (file-level): {report.error}")
        return False
    click.echo(f"rows:      {report.rows_read:,} read, {report.rows_valid:,} valid, "
               f"{report.rows_rejected:,} would be quarantined")
    _echo_reasons(report.reason_counts, report.unknown_values)
    if report.examples:
        click.echo("examples (line: reasons | row):")
        for ex in report.examples:
            row = io.StringIO()       # as the file holds it: a value with a comma or a quote is quoted
            csv.writer(row, lineterminator="").writerow(
                ["" if ex[c] is None else str(ex[c]) for c in ingest.schema.LANDING_COLUMNS])
            shown = _visible(row.getvalue())
            click.echo(f"  {ex['source_line']}: {ex['reasons']} | {shown}")
    click.echo("note: returns of earlier days' orders, and lines already loaded from another day's file, are checked "
               "against the warehouse only when loaded")
    if not report.ok:
        click.echo("RESULT: rows would be quarantined")
        return False
    click.echo("RESULT: OK")
    return True


def _echo_reasons(reason_counts: dict[str, int], unknown_values: dict[str, dict[str, int]]) -> None:
    """Rows per reason code with what it means, then the values found outside each vocabulary."""
    from clv_platform.lib import ingest

    for code, n in reason_counts.items():
        click.echo(f"  {code:<32} {n:>9,}  {ingest.REASONS.get(code, '')}")
    for column, values in unknown_values.items():
        listed = ", ".join(f"{_visible(str(v)) if v else '(empty)'} ({n:,})" for v, n in values.items())
        click.echo(f"  {column} values not in the vocabulary: {listed}")


def _visible(text: str) -> str:
    """Control, invisible and non-ASCII space characters as escapes: a tab or line break stays visible, a terminal
    escape inert, and a no-break or zero-width space is not taken for a space or for nothing."""
    import unicodedata

    def escape(m):
        c = m.group()
        if unicodedata.category(c) not in ("Cc", "Cf", "Zs", "Zl", "Zp"):
            return c
        return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"

    return re.sub(r"[^\x20-\x7e]", escape, text)


def _validate_many(reports, vocabularies: str) -> bool:
    """One line per file that would lose rows (or be rejected), then totals, reasons and unknown values."""
    from collections import Counter


    reasons, unknown = Counter(), {}
    for r in reports:
        reasons.update(r.reason_counts)
        for column, values in r.unknown_values.items():
            unknown.setdefault(column, Counter()).update(values)
        if r.error:
            click.echo(f"REJECTED  {r.file}: {r.error}")
        elif r.rows_rejected:
            top = max(r.reason_counts, key=r.reason_counts.get)
            click.echo(f"rows      {r.file}: {r.rows_rejected:,} of {r.rows_read:,} would be quarantined "
                       f"(mostly {top})")
    read = sum(r.rows_read for r in reports)
    rejected = sum(r.rows_rejected for r in reports)
    failed = [r for r in reports if r.error]
    click.echo(f"files:     {len(reports):,} ({len(failed):,} rejected as a whole); vocabularies: {vocabularies}")
    click.echo(f"rows:      {read:,} read, {read - rejected:,} valid, {rejected:,} would be quarantined")
    _echo_reasons(dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
                  {column: dict(values.most_common(10)) for column, values in unknown.items()})
    ok = not failed and not rejected
    click.echo("RESULT: OK" if ok else "RESULT: files or rows would be rejected")
    return ok


@bench.command("validate")
@click.option("--rows", type=click.IntRange(min=1000), default=1_000_000, show_default=True)
def bench_validate_command(rows: int) -> None:
    """Quarantine + GX suite on ROWS synthetic landing rows (goal: 1M rows <= 3 s on 2 cores)."""
    r = _benchmark("validate").run(rows=rows)
    click.echo(f"validate {r['rows']:,} rows ({r['file_mb']:.0f} MB CSV, {r['rows_rejected']:,} quarantined, "
               f"{r['cpus']} CPUs); best of 2")
    click.echo(f"  check_file (file checks + row rules, no writes) {r['check_file_s']:6.2f} s")
    click.echo(f"  load_partition (quarantine + all writes)        {r['load_partition_s']:6.2f} s")
    click.echo(f"  GX suite + SQL checks on the partition          {r['gx_suite_s']:6.2f} s")
    click.echo(f"  quarantine + GX                                 {r['quarantine_plus_gx_s']:6.2f} s "
               f"= {r['rows_per_s']:,.0f} rows/s (goal <= 3 s)")
    click.echo(f"  validate only (check_file + GX)                 {r['validate_only_s']:6.2f} s")
    click.echo(f"  (GX import + context, once per process          {r['gx_import_and_context_s']:6.2f} s)")
    click.echo(f"  process CPU s (all threads): check_file {r['cpu_check_file_s']:.2f}, load_partition "
               f"{r['cpu_load_partition_s']:.2f}, GX {r['cpu_gx_suite_s']:.2f}; "
               f"load average before the run {r['load_average_1min']:.1f} (others' work on the machine inflates wall times)")

# --- features + BTYD: backtest ------------------------------------------------------------------


def _check_writable_folder(folder: Path, option: str) -> None:
    """Fail before long work when its output could not be written (probed with a temporary file)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise click.BadParameter(f"cannot write into {folder} ({exc.strerror or exc})", param_hint=option) from None


@cli.command("backtest")
@click.option("--dataset", type=click.Choice(["cdnow", "cdnow-sample", "warehouse"]), default="cdnow",
              show_default=True)
@click.option("--cutoff", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="End of calibration. Default: 1997-09-30 for CDNOW, latest day - horizon for the warehouse.")
@click.option("--horizon-days", type=click.IntRange(min=1), default=None,
              help="Holdout length. Default: 273 (39 weeks) for CDNOW; for the warehouse 365, or half the history "
                   "when it is shorter (as training).")
@click.option("--folds", type=click.IntRange(min=1), default=5, show_default=True,
              help="K-fold CV over customers (1 = fit and predict on every customer: BTYD only, since the CLV "
                   "model learns from the holdout and needs held-out customers).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Per-customer rows (.parquet or .csv).")
@click.option("--no-pareto", is_flag=True, help="Skip the Pareto/NBD comparison.")
def backtest_command(dataset, cutoff, horizon_days, folds, seed, out, no_pareto) -> None:
    """Fader-Hardie-Lee backtest: K-fold over customers, one JSON object (params + holdout metrics) on stdout."""
    import json

    from tqdm import tqdm

    from clv_platform.lib import backtest, btyd, warehouse

    if out and not out.lower().endswith((".parquet", ".pq", ".csv")):
        raise click.BadParameter("must end in .parquet or .csv", param_hint="--out")
    if out:
        _check_writable_folder(Path(out).expanduser().resolve().parent, "--out")
    try:
        cal, cut, horizon = backtest.load_calibration_holdout(dataset, cutoff.date() if cutoff else None,
                                                              horizon_days)
    except (FileNotFoundError, ValueError, warehouse.WarehouseBusyError) as exc:
        raise click.ClickException(str(exc)) from exc
    # The CLV model is trained on the holdout spend: evaluated on the customers it learnt from (folds=1), its
    # figures would be in-sample (they looked better than out of fold) and are not computed.
    in_sample = folds == 1
    if in_sample:
        click.echo("--folds 1: the CLV model is left out (it learns from the holdout spend, so it needs held-out "
                   "customers: --folds 2 or more); BTYD is fitted and scored on every customer", err=True)
    try:
        with tqdm(total=folds, desc="folds", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
            result, rows = backtest.run_backtest(cal, horizon, folds=folds, seed=seed,
                                                 fold_models=[] if in_sample else backtest.default_fold_models(),
                                                 include_pareto=not no_pareto, progress=bar.update)
    except (ValueError, btyd.BtydFitError) as exc:     # e.g. too few customers or buyers at this cutoff
        raise click.ClickException(f"backtest at cutoff {cut} failed: {exc}") from exc
    result = {"dataset": dataset, "cutoff": cut.isoformat(), **result}
    if out:
        result["out"] = str(backtest.write_rows(rows, out))
    click.echo(json.dumps(backtest.jsonable(result)))


@bench.command("fit")
@click.option("--customers", type=click.IntRange(min=1000), default=1_000_000, show_default=True)
@click.option("--skip-plain", is_flag=True, help="Only our compressed fit (the plain fit takes a while).")
def bench_fit_command(customers, skip_plain) -> None:
    """BG/NBD + Gamma-Gamma on compressed rows vs a plain BetaGeoFitter().fit on every row."""
    module = _benchmark("btyd")
    click.echo(module.format_fit(module.run_fit(customers=customers, plain=not skip_plain, progress=click.echo)))


@bench.command("predict")
@click.option("--customers", type=click.IntRange(min=1000), default=1_000_000, show_default=True)
def bench_predict_command(customers) -> None:
    """btyd.predict customers/s (P(alive), 30/90/365-day purchases, order value, discounted CLV)."""
    module = _benchmark("btyd")
    click.echo(module.format_predict(module.run_predict(customers=customers)))


@bench.command("features")
@click.option("--customers", type=click.IntRange(min=1000), default=1_000_000, show_default=True)
@click.option("--lines", type=click.IntRange(min=10_000), default=10_000_000, show_default=True)
@click.option("--subset-customers", type=click.IntRange(min=100), default=100_000, show_default=True,
              help="lifetimes is always timed on this many customers' lines too.")
@click.option("--lifetimes-full", type=click.Choice(["auto", "yes", "no"]), default="auto", show_default=True,
              help="Time lifetimes on every line: auto = when its estimate from the subset is <= 3 minutes.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object too.")
def bench_features_command(customers, lines, subset_customers, lifetimes_full, as_json) -> None:
    """customer_features (DuckDB, all columns) vs lifetimes summary_data_from_transaction_data, same data."""
    import json

    module = _benchmark("features")
    result = module.run(customers=customers, lines=lines, subset_customers=min(subset_customers, customers),
                        lifetimes_full=lifetimes_full, progress=lambda msg: click.echo(msg, err=True))
    click.echo(module.format_result(result))
    if as_json:
        click.echo(json.dumps(result))


# --- models + registry: promote / rollback -------------------------------------------------------


def _rescore_hint(name: str, version: str | None) -> None:
    """Say to rescore when the published snapshot was scored with another version than production now is
    (promotion_job in Dagster makes the rescore sensor rescore; a move from the command line does not)."""
    from clv_platform.lib import snapshot
    from clv_platform.lib.settings import get_settings

    try:
        manifest = snapshot.read_snapshot(snapshot.current_snapshot_dir(get_settings().snapshot_root)).manifest
    except (snapshot.SnapshotNotFoundError, snapshot.SnapshotUnreadableError):
        return
    scored = manifest.get("model_versions", {}).get(name)
    if scored is not None and str(scored) != str(version):
        click.echo(f"the snapshot is scored with {name} v{scored}: `clv materialize score` rescores with v{version}")


@cli.command("promote")
@click.argument("model", type=click.Choice(["clv", "segment"]))
@click.option("--force", is_flag=True, help="Promote even if staging is worse than production.")
def promote_command(model: str, force: bool) -> None:
    """Move `production` to the `staging` version if it is at least as good on the held-out metric."""
    from clv_platform.lib import registry

    spec = registry.MODELS[model]
    try:
        result = registry.promote_spec(spec, force=force)
    except registry.RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{spec.metric}:")
    click.echo(f"  staging     v{result.staging_version}: {registry.format_metric(result.staging_metric)}")
    production = f"v{result.production_version}: {registry.format_metric(result.production_metric)}"
    click.echo(f"  production  {production if result.production_version else 'none'}")
    click.echo(result.message)
    if result.promoted:
        for problem in registry.pairing_problems():     # the segment model fitted on the new CLV model comes next
            click.echo(f"next: {problem}")
        _rescore_hint(spec.name, result.staging_version)
        if model == "segment" and result.production_version:
            click.echo(f"the monthly segment history keeps the segments of the versions that wrote it: `clv "
                       f"materialize history` rewrites its last six months with v{result.staging_version} (then "
                       "`clv materialize score` publishes it)")
    already = result.production_version == result.staging_version
    if not result.promoted and not already:
        sys.exit(1)


@cli.command("models")
def models_command() -> None:
    """Registered models: which version is production / staging, their held-out metric, promotion history."""
    from clv_platform.lib import registry

    for spec in registry.MODELS.values():
        info = registry.status(spec.name)
        if not info["registered"]:
            click.echo(f"{spec.name}: not registered yet (train first)")
            continue
        click.echo(f"{spec.name}: latest v{info['latest_version']}")
        production = info["aliases"].get(registry.PRODUCTION)
        for alias, version in sorted(info["aliases"].items()):
            value = registry.version_metric(spec.name, version, spec.metric)
            rolled = info["rolled_back"].get(version) if version != production else None
            note = f"  (rolled back {registry.format_time(rolled)})" if rolled else ""
            click.echo(f"  {alias:<20} v{version:<4} {spec.metric} = {registry.format_metric(value)}{note}")
        if info["unlogged_move"]:
            click.echo(f"  note: {info['unlogged_move']}")
        for problem in registry.pairing_problems() if spec.fitted_on else ():
            click.echo(f"  attention: {problem}")
        if info["events"]:
            shown = info["events"][-10:]
            click.echo(f"  production log (last {len(shown)} of {len(info['events'])}, oldest first):")
            for event in shown:
                click.echo(f"    {registry.format_event(event)}")


def _dagster_notes() -> list[str]:
    """What the Dagster instance ($DAGSTER_HOME) says needs a look: runs whose `clv` process was killed (they
    block the daemon's queue), and switched-on sensors or schedules whose latest tick failed."""
    from clv_platform import orchestrate

    if not (orchestrate.home() / "dagster.yaml").exists():
        return []
    inst = orchestrate.instance()
    return [f"run {run.run_id[:8]} ({run.job_name}) still says STARTED, but the clv process that ran it "
            f"(pid {run.tags[orchestrate.PID_TAG]}) is gone: the daemon starts no queued run meanwhile; the next "
            "`clv materialize ...` or `clv run` marks it failed (or Terminate it in the Dagster UI, forced)"
            for run in orchestrate.abandoned_runs(inst)] + [
        f"{kind} {name}: its latest tick failed ({when:%Y-%m-%d %H:%M} UTC): {error} (Dagster UI: Automation)"
        for kind, name, when, error in orchestrate.failing_instigators(inst)]


@cli.command("status")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object (the same facts, for monitoring): `attention` lists what needs a look.")
def status_command(as_json: bool) -> None:
    """Where the platform stands: landing files, loads and quarantine, validation, models, snapshot; exit 1
    when something needs a look (listed under `attention`)."""
    from clv_platform.lib import registry, status
    from clv_platform.lib.settings import get_settings

    st = status.collect(get_settings())
    st.attention += _dagster_notes()
    if as_json:
        click.echo(status.to_json(st))
        sys.exit(1 if st.attention else 0)
    click.echo(f"data dir      {st.data_dir}   (vocabularies: {st.vocabularies})")
    lf = st.landing
    span = f"{lf['first']}..{lf['last']}" if lf["files"] else "-"
    click.echo(f"landing       {lf['files']:,} daily files {span} in {lf['dir']}"
               + (f"; {lf['not_loaded']:,} not loaded yet" if lf.get("not_loaded") is not None else "")
               + (f"; {lf['out_of_range']:,} dated outside the partitions" if lf.get("out_of_range") else ""))
    wh = st.warehouse
    if wh.get("state") != "ok":
        click.echo(f"warehouse     {wh['state']}")
    else:
        share = wh["rows_quarantined"] / wh["rows_read"] if wh["rows_read"] else 0.0
        click.echo(f"warehouse     {wh['partitions']:,} partitions {wh['first']}..{wh['last']} loaded, last load "
                   f"{wh['last_load']:%Y-%m-%d %H:%M}")
        click.echo(f"              {wh['rows_read']:,} rows read = {wh['rows_loaded']:,} loaded + "
                   f"{wh['rows_quarantined']:,} quarantined ({'< 0.01%' if 0 < share < 0.0001 else f'{share:.2%}'})")
        checked = f"{wh['last_validation']:%Y-%m-%d %H:%M}" if wh["last_validation"] else "never"
        click.echo(f"validation    last {checked}; {wh['failing_expectations']:,} failing result(s)")
    if st.accepted_quarantine:
        shown = "; ".join(f"{a['partition_date']} {a.get('rows_rejected', '?')} of {a.get('rows_read', '?')} rows "
                          f"({a.get('reason', '')})" for a in st.accepted_quarantine[-3:])
        click.echo(f"accepted      {len(st.accepted_quarantine):,} day(s) used despite their quarantined share "
                   f"(clv accept-quarantine): {shown}{' ...' if len(st.accepted_quarantine) > 3 else ''}")
    for name, info in st.models.items():
        if not info.get("registered"):
            click.echo(f"{name:<13} not registered yet")
            continue
        parts = [f"{alias} v{v} ({info['metric']} {registry.format_metric(info['metrics'].get(alias))})"
                 for alias, v in sorted(info["aliases"].items()) if alias in info["metrics"]]
        click.echo(f"{name:<13} " + ("; ".join(parts) or "no alias") + f"; latest v{info['latest_version']}")
        if info.get("note"):
            click.echo(f"              {info['note']}")
    sn = st.snapshot
    if not sn["published"]:
        click.echo(f"snapshot      none yet under {sn['root']}")
    elif sn.get("unreadable"):
        click.echo(f"snapshot      UNREADABLE under {sn['root']}: {sn['unreadable']}")
    else:
        age = f"{sn['age_hours']:.1f} h ago" if sn["age_hours"] is not None else "age unknown"
        click.echo(f"snapshot      {sn['id']} as of {sn['as_of']}, published {age}, {sn['customers']:,} customers, "
                   + ", ".join(f"{k} v{v}" for k, v in sn["model_versions"].items()))
        if sn["newer_kept"]:
            click.echo(f"              an earlier snapshot served again (`clv snapshot use`): {len(sn['newer_kept'])} "
                       f"newer one(s) kept, the newest {sn['newer_kept'][-1]} (`clv snapshot list`)")
        if sn["psi"]:
            name, value = max(sn["psi"].items(), key=lambda kv: kv[1])
            click.echo(f"              since the previous scoring: largest PSI {value:.3f} ({name})")
    if st.attention:
        click.echo("attention:")
        for item in st.attention:
            click.echo(f"  - {item}")
        sys.exit(1)
    click.echo("all clear")


@cli.command("rollback")
@click.argument("model", type=click.Choice(["clv", "segment"]))
def rollback_command(model: str) -> None:
    """Put `production` back on the previous production version."""
    from clv_platform.lib import registry

    try:
        results = registry.rollback_with_dependents(registry.MODELS[model].name)
    except registry.RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    for result in results:
        click.echo(result.message + ("" if result is results[0] else
                                     f" (fitted on {results[0].name} v{results[0].from_version}, which left "
                                     "production)"))
    for problem in registry.pairing_problems():
        click.echo(f"attention: {problem}")
    for result in results:
        _rescore_hint(result.name, result.to_version)


# --- serving: snapshot list / use ------------------------------------------------------------------


@cli.group("snapshot")
def snapshot_group() -> None:
    """The published snapshots the API and dashboard read: list the kept ones, serve an earlier one again."""


@snapshot_group.command("list")
def snapshot_list_command() -> None:
    """The kept snapshots, oldest first; `*` marks the one served now."""
    from clv_platform.lib import snapshot
    from clv_platform.lib.settings import get_settings

    root = get_settings().snapshot_root
    current = snapshot.current_snapshot_id(root)
    kept = snapshot.list_snapshots(root)
    if not kept:
        click.echo(f"no snapshot published yet under {root}: `clv materialize score` publishes one")
        return
    click.echo(f"{len(kept)} snapshot(s) kept under {root}, oldest first (`*`: served now):")
    for snapshot_id in kept:
        mark = "*" if snapshot_id == current else " "
        try:
            snap = snapshot.read_snapshot(Path(root) / snapshot.SNAPSHOTS / snapshot_id)
            snap.check_tables()
        except (snapshot.SnapshotNotFoundError, snapshot.SnapshotUnreadableError) as exc:
            click.echo(f"{mark} {snapshot_id}  UNREADABLE: {exc}")
            continue
        versions = ", ".join(f"{k} v{v}" for k, v in snap.model_versions.items()) or "no model versions"
        customers = snap.manifest.get("row_counts", {}).get("customer_scores")
        count = f"{customers:,} customers, " if customers is not None else ""
        click.echo(f"{mark} {snapshot_id}  as of {snap.as_of_date}, published "
                   f"{str(snap.manifest.get('published_at'))[:19]} UTC, {count}{versions}")
    if current is not None and current not in kept:
        click.echo(f"the pointer names {current}, which is not kept any more: `clv snapshot use ID` or "
                   "`clv materialize score`")


@snapshot_group.command("use")
@click.argument("snapshot_id")
def snapshot_use_command(snapshot_id: str) -> None:
    """Serve the kept snapshot SNAPSHOT_ID again (atomic swap; the API and dashboard follow at their next request).
    The next scoring publishes a new snapshot and serves that: pause rescoring to keep this one."""
    from clv_platform.lib import snapshot
    from clv_platform.lib.settings import get_settings

    root = get_settings().snapshot_root
    before = snapshot.current_snapshot_id(root)
    try:
        chosen = snapshot.use(root, snapshot_id)
    except (snapshot.SnapshotNotFoundError, snapshot.SnapshotUnreadableError) as exc:
        raise click.ClickException(str(exc)) from None
    if before == snapshot_id:
        click.echo(f"{snapshot_id} is already the snapshot served")
        return
    click.echo(f"serving {snapshot_id} (as of {chosen.as_of_date}) instead of {before or 'none'}")
    click.echo("the next scoring (`clv materialize score`, or rescore_after_ingestion_sensor after a load or a "
               "promotion) publishes a new snapshot and serves it: switch that sensor off in the Dagster UI "
               "(Automation) to keep serving this one")


# --- pipeline: run / materialize ----------------------------------------------------------------

STAGES = {
    "ingest": "load the landing files' days (one ranged run of ingestion_job; with --new, one per stretch of "
              "consecutive days)",
    "features": "features/customer_features as of the latest day",
    "train": "training_job: features, BTYD, CLV and segment models (registered as `staging`)",
    "history": "segment_history_job: the last six month-ends of serving/segment_history with the production "
               "models (rebuilds a lost history; `score` then publishes it)",
    "score": "scoring_job: score every customer with the production models and publish the snapshot",
}


def _require_transactions() -> None:
    """One line instead of a failed Dagster run when there is nothing to compute from yet."""
    import duckdb

    from clv_platform.lib import warehouse
    from clv_platform.lib.settings import get_settings

    path = get_settings().warehouse_path
    first = "load transactions first: `clv materialize ingest` (or `make run` for the demo)"
    if not path.exists():
        raise click.ClickException(f"no warehouse at {path} yet: {first}")
    from clv_platform import orchestrate

    try:        # says that it waits, and for whom; one line if the holder does not let go
        orchestrate.wait_for_warehouse(echo=lambda line: click.echo(line, err=True))
        con = warehouse.connect(path, read_only=True, wait_seconds=60)
    except (orchestrate.JobFailed, warehouse.WarehouseBusyError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        (rows,) = con.execute("SELECT count(*) FROM staging.transactions").fetchall()[0]
    except duckdb.Error:
        rows = 0
    finally:
        con.close()
    if not rows:
        raise click.ClickException(f"staging.transactions in {path} is empty: {first}")


@cli.command("accept-quarantine")
@click.argument("day", type=click.DateTime(["%Y-%m-%d"]))
@click.option("--reason", required=True, help="Why the day's other rows may be used (kept with the acceptance).")
def accept_quarantine_command(day, reason: str) -> None:
    """Use a loaded DAY whose quarantined share fails its blocking check (more than CLV_MAX_QUARANTINE_SHARE of
    its file's rows quarantined): its quarantined rows stay quarantined, with their reasons, and its other rows
    are used. Holds for the file loaded now only: a new delivery of the day is checked afresh. Kept, with the
    reason, in <data dir>/accepted_quarantine.json; the day is then loaded and checked again (a Dagster run)."""
    from clv_platform import orchestrate
    from clv_platform.lib import quarantine_acceptance, validation, warehouse
    from clv_platform.lib.landing import list_landing_files, sha256_of

    settings = _writable_settings()
    day = day.date()
    if not settings.warehouse_path.exists():
        raise click.ClickException(f"no warehouse at {settings.warehouse_path} yet: nothing is loaded")
    try:        # (a run writing the warehouse: wait for it, saying so, then give up in one line)
        orchestrate.wait_for_warehouse(echo=lambda text: click.echo(text, err=True))
        con = warehouse.connect(settings.warehouse_path, read_only=True, wait_seconds=60)
    except (orchestrate.JobFailed, warehouse.WarehouseBusyError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        row = con.execute("SELECT source_file, sha256, rows_read, rows_rejected FROM raw.load_audit "
                          "WHERE partition_date = ?", [day]).fetchone()
    finally:
        con.close()
    if row is None:
        raise click.ClickException(f"{day} is not loaded: load it first (`clv materialize ingest --from {day} --to "
                                   f"{day}`), then accept what its checks report")
    source, sha, read, rejected = row
    current = next((f.path for f in list_landing_files(settings.landing_dir) if f.day == day), None)
    if current is None or sha256_of(current) != sha:
        raise click.ClickException(
            f"{day}: the landing file {'is gone' if current is None else 'changed'} since {Path(source).name} was "
            f"loaded: load the day again first (`clv materialize ingest --from {day} --to {day}`) and look at what "
            "its checks report; an acceptance holds for the file that is loaded")
    share, limit = rejected / read if read else 0.0, settings.max_quarantine_share
    if not validation.share_too_high(read, rejected, limit):
        click.echo(f"{day}: {rejected:,} of {read:,} rows quarantined ({share:.1%}), within the limit of {limit:.0%}: "
                   "nothing to accept")
        return
    try:
        quarantine_acceptance.accept(settings.data_dir, day, sha, source, read, rejected, reason)
    except (ValueError, quarantine_acceptance.AcceptanceFileError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{day}: accepted {rejected:,} of {read:,} rows quarantined ({share:.1%} > {limit:.0%}) in "
               f"{Path(source).name} ({quarantine_acceptance.path(settings.data_dir)}); checking the day again")
    try:
        orchestrate.ingest_range(day, day)
    except orchestrate.JobFailed as exc:
        raise click.ClickException(f"{exc}\n(the acceptance covers the quarantined share only)") from exc
    click.echo(f"{day} passes its checks: the next scoring uses its {read - rejected:,} loaded rows "
               "(`clv materialize score`, or the rescore sensor after this load)")


@cli.command("materialize")
@click.argument("stage", type=click.Choice(list(STAGES)))
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="ingest: first day to load (default: the first landing file's).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="ingest: last day to load (default: the last landing file's).")
@click.option("--new", "new_only", is_flag=True,
              help="ingest: only the days whose landing file is not loaded yet or changed since it was loaded "
                   "(one run per stretch of consecutive days).")
def materialize_command(stage: str, start, end, new_only: bool) -> None:
    """Materialise one stage of the pipeline through Dagster (runs show in the Dagster UI).

    ingest loads every landing file's day as one run, or the days chosen by --from/--to/--new (`clv status`
    lists the files not loaded yet)."""
    from clv_platform import orchestrate
    from clv_platform.lib.warehouse import WarehouseBusyError

    if stage != "ingest" and (start or end or new_only):
        raise click.UsageError("--from, --to and --new choose the days of `ingest` only")
    if start and end and start > end:
        raise click.BadParameter(f"--from {start.date()} is after --to {end.date()}", param_hint="--from")
    _writable_settings()
    click.echo(f"{stage}: {STAGES[stage]}")
    if stage != "ingest":
        _require_transactions()
    try:
        if stage == "ingest":
            ranges = orchestrate.ingest_landing(start and start.date(), end and end.date(), new_only=new_only,
                                                echo=lambda text: click.echo(text, err=True))
            if not ranges:
                click.echo("nothing to load: " + ("every landing file is loaded already, unchanged" if new_only
                                                  else "no landing file in the chosen days"))
                return
            click.echo("ingested partitions " + ", ".join(f"{a}..{b}" for a, b in ranges))
        elif stage == "features":
            orchestrate.run_job("training_job", asset_keys=[("features", "customer_features")])
        elif stage == "train":
            orchestrate.run_job("training_job")
        elif stage == "history":
            orchestrate.run_segment_history(orchestrate.latest_loaded_day())
        else:
            orchestrate.run_job("scoring_job")
    except (orchestrate.JobFailed, WarehouseBusyError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(orchestrate.summary_text())


@cli.command("run")
@click.option("--customers", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="Demo customers when no landing files exist.")
@click.option("--days", type=click.IntRange(min=1), default=730, show_default=True,
              help="Demo history length in days.")
@click.option("--seed", default=42, show_default=True)
def run_command(customers: int, days: int, seed: int) -> None:
    """The main job end to end: demo data (if none), ingest, validate, features, BTYD, train, promote on the
    first run, score, publish. Prints the model metrics, segment sizes and where to look next."""
    from clv_platform import orchestrate

    _writable_settings()
    try:
        orchestrate.run_pipeline(customers=customers, days=days, seed=seed, echo=click.echo)
    except orchestrate.JobFailed as exc:
        raise click.ClickException(str(exc)) from exc


@bench.command("score")
@click.option("--customers", type=click.IntRange(min=1000), default=1_000_000, show_default=True)
@click.option("--data", type=click.Choice(["generator", "uniform"]), default="generator", show_default=True,
              help="BG/NBD-simulated customers (as the demo), or the features benchmark's uniform 10M lines.")
@click.option("--lines", type=click.IntRange(min=10_000), default=10_000_000, show_default=True,
              help="Order lines of the uniform data.")
def bench_score_command(customers: int, data: str, lines: int) -> None:
    """Scoring end to end (features -> BTYD -> LightGBM -> segment), stage by stage (goal: 1M in <= 10 s)."""
    module = _benchmark("score")
    click.echo(module.format_result(module.run(customers=customers, lines=lines, data=data)))


@bench.command("all")
@click.pass_context
def bench_all_command(ctx: click.Context) -> None:
    """Every benchmark at its default size, one after the other (`make bench`; about 15 minutes)."""
    for name in ("ingest", "validate", "features", "fit", "predict", "score"):
        click.echo(f"\n== clv bench {name} ==")
        ctx.invoke(bench.commands[name])


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
        _exit_after_success()


def _exit_after_success() -> None:
    """Exit 0 without the interpreter's teardown once a command has finished and committed its work.

    Native thread pools (DuckDB, Arrow, OpenMP) can abort the process while Python finalises
    ("terminate called without an active exception", duckdb/duckdb#13904): seen once in `clv run` after
    the summary was printed, which turned a finished run into exit code -6. Failures still exit normally."""
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
