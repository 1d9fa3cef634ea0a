"""MLflow model registry helpers: register with alias `staging`, gated promotion to `production`, rollback, load.

Registry stages are deprecated in MLflow 3; we use aliases on the registered models:

* ``staging``              the newest registered version (set by ``register``)
* ``production``           what serving scores with (moved only by ``promote`` / ``rollback``)
* ``previous_production``  the version ``rollback`` would go back to

The registered-model tag ``production_history`` is the rollback stack: a JSON list of versions (newest last),
popped by ``rollback``. The tag ``production_events`` is the append-only log of every move of ``production``
(last 50): a JSON list of {at, event ("promote", "force-promote", "rollback"), from, to}. Each promoted version
also gets tags ``promoted_at``, ``promotion_metric``, ``promotion_metric_value``, ``promotion_forced`` and
``promoted_over``; a version rolled back out of production gets ``rolled_back_at``, and the gate does not
promote it again without ``force``.

Every function takes an optional ``tracking_uri``; the default is ``get_settings().mlflow_uri`` (an absolute
SQLite path under the data dir). No dagster import here.
"""

import dataclasses
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from clv_platform.lib.settings import get_settings

STAGING = "staging"
PRODUCTION = "production"
PREVIOUS_PRODUCTION = "previous_production"
HISTORY_TAG = "production_history"
HISTORY_LIMIT = 100
EVENTS_TAG = "production_events"
EVENTS_LIMIT = 50
EVENTS_MAX_CHARS = 5000  # MLflow's registered-model tag values are VARCHAR(5000)
ROLLED_BACK_TAG = "rolled_back_at"
REFUSED_TAG = "promotion_refused"    # on a version the gate refused: "<time>: <why>"
# Production's figure on the staging version's own held-out customers, measured when the staging version was
# trained (metric `<metric>` + suffix in its run; the version tag says which production version it was)
SAME_CUSTOMERS_SUFFIX = "_production_same_customers"
COMPARED_TAG = "compared_with_production"
# On a CLV version whose held-out customers were chosen by a hash of the id (training.held_out), the same at every
# retrain: only then did it learn from none of the next version's held-out customers. Versions trained before the
# tag have none: from before the hash (a random split per run), or from just after it.
HELD_OUT_TAG, HELD_OUT_BY_ID_HASH = "held_out_by", "customer_id_hash"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    metric: str
    higher_is_better: bool = True
    # A staging metric not above this is never promoted without --force, even with no production yet: a CLV
    # model whose held-out normalized Gini is <= 0 ranks customers no better than a constant.
    floor: float | None = None
    # The model whose predictions this one was fitted on (a version tag `<fitted_on>_version` says which
    # version): promoted only while that version is production, so production never pairs mismatched models.
    fitted_on: str | None = None


# What `clv promote clv|segment` means (in this order: the CLV model's decision comes first).
MODELS: dict[str, ModelSpec] = {
    "clv": ModelSpec("clv_model", "holdout_normalized_gini", True, floor=0.0),
    "segment": ModelSpec("segment_model", "stability_weighted_silhouette", True, fitted_on="clv_model"),
}


def promote_spec(spec: ModelSpec, force: bool = False, tracking_uri: str | None = None) -> "PromotionResult":
    """`promote` with a model's gate settings (`clv promote`, promotion_job, the first `clv run`)."""
    return promote(spec.name, spec.metric, spec.higher_is_better, force=force, tracking_uri=tracking_uri,
                   floor=spec.floor, fitted_on=spec.fitted_on)


class RegistryError(RuntimeError):
    """Something the registry cannot do (no staging version, nothing to roll back to, ...)."""


def _uri(tracking_uri: str | None) -> str:
    return tracking_uri or get_settings().mlflow_uri


def configure(tracking_uri: str | None = None) -> str:
    """Point MLflow's fluent API (tracking and registry) at ``tracking_uri``; returns it."""
    import mlflow

    uri = _uri(tracking_uri)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def client(tracking_uri: str | None = None):
    from mlflow import MlflowClient

    uri = _uri(tracking_uri)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(name: str, artifact_root: str | Path, tracking_uri: str | None = None) -> str:
    """Id of experiment ``name``, created with its artifacts under ``artifact_root/<name>`` if missing."""
    c = client(tracking_uri)
    experiment = c.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            c.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    location = Path(artifact_root).resolve() / name
    location.mkdir(parents=True, exist_ok=True)
    try:
        return c.create_experiment(name, artifact_location=location.as_uri())
    except Exception:  # created concurrently by another process
        experiment = c.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


EXPERIMENT = "clv_platform"   # the MLflow experiment of every platform run
# Where MLflow's SQLite store keeps absolute artifact paths (MLflow 3).
ARTIFACT_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                    ("model_versions", "storage_location"), ("logged_models", "artifact_location"))


def follow_moved_data_dir(name: str, artifact_root: str | Path, tracking_uri: str | None = None) -> str | None:
    """MLflow stores absolute artifact paths, so a data dir moved or copied elsewhere still points at the old
    place: models no longer load ("No such artifact") and new runs write outside the data dir. When experiment
    `name` keeps its artifacts elsewhere than ``artifact_root/name`` and that folder is here (the artifacts came
    along), every stored artifact path is rewritten from the old root to this one. Returns what it did (None:
    nothing to do); RegistryError when the artifacts are not here."""
    import sqlite3

    uri = _uri(tracking_uri)
    experiment = client(uri).get_experiment_by_name(name) if uri.startswith("sqlite:///") else None
    if experiment is None:
        return None
    here_dir = Path(artifact_root).resolve() / name
    here, there = here_dir.as_uri(), experiment.artifact_location
    if there == here:
        return None
    if not (there.startswith("file://") and there.endswith(f"/{name}") and here_dir.is_dir()):
        raise RegistryError(f"the MLflow store {uri} keeps experiment {name}'s artifacts at {there}, and {here_dir} "
                            "does not hold them: move or copy the data dir with its mlartifacts folder")
    old_root, new_root = there.removesuffix(f"/{name}"), here.removesuffix(f"/{name}")
    with sqlite3.connect(uri.removeprefix("sqlite:///")) as con:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        moved = sum(con.execute(
            f"UPDATE {table} SET {column} = ? || substr({column}, ?) WHERE substr({column}, 1, ?) = ?",
            (new_root, len(old_root) + 1, len(old_root) + 1, old_root + "/")).rowcount
            for table, column in ARTIFACT_COLUMNS if table in tables)
    return f"the data dir moved: {moved} MLflow artifact path(s) now point under {new_root} instead of {old_root}"


# -- register -----------------------------------------------------------------------------------------


def register(
    run_id: str,
    artifact_path: str,
    name: str,
    *,
    model_uri: str | None = None,
    tags: dict[str, Any] | None = None,
    tracking_uri: str | None = None,
) -> str:
    """Register the model logged in run ``run_id`` under ``artifact_path`` (MLflow 3: the ``name`` given to
    ``log_model``) as a new version of ``name``, point alias ``staging`` at it, return the version.

    ``model_uri`` (e.g. ``ModelInfo.model_uri``) overrides the ``runs:/<run_id>/<artifact_path>`` URI.
    """
    import mlflow

    configure(tracking_uri)
    c = client(tracking_uri)
    uri = model_uri or f"runs:/{run_id}/{artifact_path}"
    # (register_model creates the registered model on first use, and copes with one created concurrently)
    mv = mlflow.register_model(uri, name, tags={k: str(v) for k, v in (tags or {}).items()} or None)
    if run_id and mv.run_id and mv.run_id != run_id:
        raise RegistryError(f"registered {uri} but the version's run is {mv.run_id}, not {run_id}")
    c.set_registered_model_alias(name, STAGING, mv.version)
    return str(mv.version)


# -- metrics ------------------------------------------------------------------------------------------


def _clean(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def version_metric(name: str, version: str, metric: str, tracking_uri: str | None = None) -> float | None:
    """``metric`` of a model version: from the metrics of the run that produced it (else its logged model)."""
    c = client(tracking_uri)
    mv = c.get_model_version(name, str(version))
    if mv.run_id:
        value = c.get_run(mv.run_id).data.metrics.get(metric)
        if value is not None:
            return _clean(value)
    model_id = getattr(mv, "model_id", None)
    if model_id:
        try:
            for m in c.get_logged_model(model_id).metrics or []:
                if m.key == metric:
                    return _clean(m.value)
        except Exception:
            pass
    return None


def version_info(name: str, alias: str = PRODUCTION, tracking_uri: str | None = None) -> dict | None:
    """{version, run_id, metrics} of the version behind ``alias`` (run metrics), or None if there is none."""
    c = client(tracking_uri)
    try:
        mv = c.get_model_version_by_alias(name, alias)
    except Exception:
        return None
    metrics = {}
    if mv.run_id:
        metrics = {k: v for k, v in c.get_run(mv.run_id).data.metrics.items() if _clean(v) is not None}
    return {"version": str(mv.version), "run_id": mv.run_id, "metrics": metrics}


def alias_version(name: str, alias: str, tracking_uri: str | None = None) -> str | None:
    """Version the alias points to, or None (also when the model is not registered)."""
    c = client(tracking_uri)
    try:
        return str(c.get_model_version_by_alias(name, alias).version)
    except Exception:
        return None


def history(name: str, tracking_uri: str | None = None) -> list[str]:
    """Versions that have been production, oldest first (the last one is production, unless rolled back)."""
    c = client(tracking_uri)
    raw = c.get_registered_model(name).tags.get(HISTORY_TAG)
    return [str(v) for v in json.loads(raw)] if raw else []


def _set_history(c, name: str, versions: list[str]) -> None:
    c.set_registered_model_tag(name, HISTORY_TAG, json.dumps(versions[-HISTORY_LIMIT:]))


def _events(tags: dict) -> list[dict]:
    raw = tags.get(EVENTS_TAG)
    return json.loads(raw) if raw else []


def events(name: str, tracking_uri: str | None = None) -> list[dict]:
    """Moves of ``production``, oldest first: {at, event, from, to} (``from`` is None for the first promotion)."""
    return _events(client(tracking_uri).get_registered_model(name).tags)


def _log_event(c, name: str, event: str, from_version: str | None, to_version: str, at: str) -> None:
    log = [*_events(c.get_registered_model(name).tags), {"at": at, "event": event, "from": from_version,
                                                          "to": to_version}][-EVENTS_LIMIT:]
    raw = json.dumps(log, separators=(",", ":"))
    while len(raw) > EVENTS_MAX_CHARS:
        log = log[1:]
        raw = json.dumps(log, separators=(",", ":"))
    c.set_registered_model_tag(name, EVENTS_TAG, raw)


def format_time(iso: str | None) -> str:
    """``2024-03-20 12:06 UTC`` from an ISO timestamp (the registry's are UTC)."""
    if not iso:
        return "?"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_event(event: dict) -> str:
    """One line of the production log, e.g. ``2024-03-20 12:06 UTC  rollback       v2 -> v1``."""
    before = f"v{event['from']}" if event.get("from") else "-"
    return f"{format_time(event.get('at'))}  {event.get('event', '?'):<13}  {before} -> v{event.get('to')}"


def status(name: str, tracking_uri: str | None = None) -> dict:
    """Aliases, rollback stack (``history``), production event log (``events``), rolled-back versions
    ({version: rolled_back_at}) and latest version of a registered model (for the CLI and `clv status`)."""
    c = client(tracking_uri)
    try:
        rm = c.get_registered_model(name)
    except Exception:
        return {"name": name, "registered": False}
    versions = c.search_model_versions(f"name='{name}'")
    aliases = {alias: str(v) for alias, v in (rm.aliases or {}).items()}
    events = _events(rm.tags)
    production, logged = aliases.get(PRODUCTION), (events[-1]["to"] if events else None)
    unlogged = None     # `production` moved by hand (the MLflow UI): the gate and the log did not see it
    if production is not None and logged is not None and str(logged) != production:
        unlogged = (f"production is v{production}, but the last logged move put v{logged} there: it was moved "
                    "outside `clv promote`/"
                    "`clv rollback` (the MLflow UI?), without the gate and without a log entry")
    return {
        "name": name,
        "registered": True,
        "aliases": aliases,
        "history": json.loads(rm.tags.get(HISTORY_TAG, "[]")),
        "events": events,
        "unlogged_move": unlogged,
        "rolled_back": {str(v.version): v.tags[ROLLED_BACK_TAG] for v in versions if ROLLED_BACK_TAG in (v.tags or {})},
        "refused": {str(v.version): v.tags[REFUSED_TAG] for v in versions if REFUSED_TAG in (v.tags or {})},
        "latest_version": max((int(v.version) for v in versions), default=None),
    }


# -- promote / rollback -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromotionResult:
    name: str
    metric: str
    promoted: bool
    staging_version: str
    production_version: str | None  # before the promotion
    staging_metric: float | None
    production_metric: float | None
    forced: bool
    message: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def format_metric(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def gate_figures(name: str, metric: str, staging: str, production: str | None,
                 tracking_uri: str | None = None) -> tuple[float | None, float | None, str]:
    """(staging's figure, production's figure, how production's was measured) as the promotion gate compares
    them: production's figure on the staging run's held-out customers when that run measured it, else
    production's own (from its own held-out sample and data)."""
    s_val = version_metric(name, staging, metric, tracking_uri)
    p_val = version_metric(name, production, metric, tracking_uri) if production else None
    if production and client(tracking_uri).get_model_version(name, staging).tags.get(COMPARED_TAG) == production:
        same = version_metric(name, staging, metric + SAME_CUSTOMERS_SUFFIX, tracking_uri)
        if same is not None and math.isfinite(same):
            return s_val, same, f" on the same held-out customers (production's own evaluation: {format_metric(p_val)})"
    return s_val, p_val, ""


def promote(
    name: str,
    metric: str,
    higher_is_better: bool = True,
    force: bool = False,
    tracking_uri: str | None = None,
    floor: float | None = None,
    fitted_on: str | None = None,
) -> PromotionResult:
    """Move ``production`` to the ``staging`` version if its ``metric`` is at least as good as production's
    (or there is no production yet, or ``force``). Otherwise refuse: ``promoted=False`` with both figures.
    Refused without ``force`` as well: a version once rolled back out of production, and a staging metric
    that is NaN or not beyond ``floor``. A NaN production metric counts as missing.
    """
    c = client(tracking_uri)
    staging = alias_version(name, STAGING, tracking_uri)
    if staging is None:
        raise RegistryError(f"{name} has no '{STAGING}' version to promote (train and register one first)")
    production = alias_version(name, PRODUCTION, tracking_uri)
    staging_tags = c.get_model_version(name, staging).tags
    s_val, p_val, own = gate_figures(name, metric, staging, production, tracking_uri)
    figures = f"{metric}: staging v{staging} = {format_metric(s_val)}, production " + (
        f"v{production} = {format_metric(p_val)}{own}" if production else "none"
    )

    def result(promoted: bool, message: str) -> PromotionResult:
        return PromotionResult(name, metric, promoted, staging, production, s_val, p_val, force, message)

    if production == staging:
        return result(False, f"{name} v{staging} is already production ({figures})")

    unusable = s_val is not None and (not math.isfinite(s_val) or (
        floor is not None and (s_val <= floor if higher_is_better else s_val >= floor)))
    if p_val is not None and not math.isfinite(p_val):
        p_val = None
    if force:
        ok, why = True, "forced" if production else "no production version yet"
    elif unusable:
        ok, why = False, (f"staging v{staging}'s {metric} is {format_metric(s_val)}, not "
                          f"{'above' if higher_is_better else 'below'} {floor}: the model is no better than a "
                          "constant (too few customers to learn from?)" if math.isfinite(s_val)
                          else f"staging v{staging}'s {metric} is not a number")
    # (before "no production yet": a rolled-back version stays refused when someone deleted the alias by hand)
    elif rolled_back_at := staging_tags.get(ROLLED_BACK_TAG):
        ok, why = False, (f"staging v{staging} was rolled back out of production at {format_time(rolled_back_at)} "
                          "(--force promotes it again; a new training run registers a new staging version)")
    elif fitted_on and (on := staging_tags.get(f"{fitted_on}_version")) and (
            on != (paired := alias_version(fitted_on, PRODUCTION, tracking_uri))):
        ok, why = False, (f"staging v{staging} was fitted on {fitted_on} v{on}'s predictions, and production "
                          f"{fitted_on} is {'v' + paired if paired else 'not set'}: promote {fitted_on} v{on} "
                          "first, or train again (--force pairs them anyway)")
    elif production is None:
        ok, why = True, "no production version yet"
    elif fitted_on and (prod_on := _fitted_on_version(c, name, production, fitted_on)) and prod_on != (
            paired := alias_version(fitted_on, PRODUCTION, tracking_uri)) and staging_tags.get(
            f"{fitted_on}_version") == paired:
        # production's figure was measured on the inputs of a base version that is no longer production: it is
        # not what production delivers now, so one lucky early figure cannot hold back every retrain
        ok, why = True, (f"production v{production} was fitted on {fitted_on} v{prod_on}'s predictions, and "
                         f"{fitted_on} v{prod_on} is no longer production, while staging v{staging} was fitted on the "
                         f"production one, v{paired} (their figures are not compared: production's was measured on "
                         "inputs it no longer gets)")
    elif s_val is None:
        ok, why = False, f"staging v{staging} has no metric '{metric}'"
    elif p_val is None:
        ok, why = False, f"production v{production} has no metric '{metric}' to compare with (use --force)"
    else:
        better = s_val >= p_val if higher_is_better else s_val <= p_val
        direction = "higher" if higher_is_better else "lower"
        ok = better
        why = (
            f"staging is at least as good ({direction} is better)"
            if better
            else f"staging is worse than production ({direction} is better)"
        )
    if not ok:
        if s_val is not None:       # judged on its figure (not just missing one): remembered for `clv status`
            c.set_model_version_tag(name, staging, REFUSED_TAG,
                                    f"{datetime.now(UTC).isoformat(timespec='seconds')}: {why}; {figures}")
        return result(False, f"refused to promote {name}: {why}; {figures}")

    hist = history(name, tracking_uri)
    if production and (not hist or hist[-1] != production):
        hist.append(production)  # production set outside promote(): keep it so rollback can return to it
    hist.append(staging)
    c.set_registered_model_alias(name, PRODUCTION, staging)
    if production:
        c.set_registered_model_alias(name, PREVIOUS_PRODUCTION, production)
    _set_history(c, name, hist)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    forced = bool(force and production is not None)
    _log_event(c, name, "force-promote" if forced else "promote", production, staging, now)
    for key, value in {
        "promoted_at": now,
        "promotion_metric": metric,
        "promotion_metric_value": format_metric(s_val),
        "promotion_forced": str(forced).lower(),
        "promoted_over": production or "",
    }.items():
        c.set_model_version_tag(name, staging, key, value)
    return result(True, f"promoted {name} v{staging} to production ({why}); {figures}")


@dataclass(frozen=True)
class RollbackResult:
    name: str
    from_version: str
    to_version: str
    message: str


def _rollback_target(c, name: str, production: str, tracking_uri: str | None) -> tuple[list[str], list[str]]:
    """(the rollback history without production, ending at the version to go back to; versions skipped because
    they were deleted from the registry). The history is empty when there is nothing to go back to."""
    hist = history(name, tracking_uri)
    if not hist or hist[-1] != production:
        hist.append(production)
    hist.pop()
    gone = []
    while hist and not _version_exists(c, name, hist[-1]):    # deleted in the MLflow UI since
        gone.append(hist.pop())
    return hist, gone


def rollback(name: str, tracking_uri: str | None = None) -> RollbackResult:
    """Put ``production`` back on the version that was production before the current one."""
    c = client(tracking_uri)
    production = alias_version(name, PRODUCTION, tracking_uri)
    if production is None:
        raise RegistryError(f"{name} has no production version to roll back")
    hist, gone = _rollback_target(c, name, production, tracking_uri)
    if not hist:
        left = sorted({str(e["to"]) for e in events(name, tracking_uri)} - {production, *gone}, key=int)
        why = "; ".join([*([f"deleted from the registry: v{', v'.join(gone)}"] if gone else []),
                         *([f"rolled back: v{', v'.join(left)}"] if left else [])])
        raise RegistryError(f"{name} v{production} is the earliest production version left to go back to: nothing "
                            f"to roll back to" + (f" (the other versions that were production: {why})" if why else ""))
    target = hist[-1]
    c.set_registered_model_alias(name, PRODUCTION, target)
    if len(hist) >= 2:
        c.set_registered_model_alias(name, PREVIOUS_PRODUCTION, hist[-2])
    else:
        try:
            c.delete_registered_model_alias(name, PREVIOUS_PRODUCTION)
        except Exception:
            pass
    _set_history(c, name, hist)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    _log_event(c, name, "rollback", production, target, now)
    c.set_model_version_tag(name, production, ROLLED_BACK_TAG, now)
    skipped = f" (skipped v{', v'.join(gone)}: deleted from the registry)" if gone else ""
    return RollbackResult(name, production, target,
                          f"rolled back {name}: production v{production} -> v{target}{skipped}")


def rollback_with_dependents(name: str, tracking_uri: str | None = None) -> list[RollbackResult]:
    """`clv rollback`: roll ``name`` back, and each model fitted on it (MODELS' fitted_on) whose production
    version was fitted on the version that left, when its previous production version was fitted on the one
    that returns: rolled back alone, the CLV model left the segment model of the newer one in production, so the
    pair mismatched (pairing_problems says when it still does)."""
    results = [rollback(name, tracking_uri)]
    c = client(tracking_uri)
    for spec in MODELS.values():
        production = alias_version(spec.name, PRODUCTION, tracking_uri) if spec.fitted_on == name else None
        if production is None or _fitted_on(c, spec, production) != results[0].from_version:
            continue
        hist, _ = _rollback_target(c, spec.name, production, tracking_uri)
        # (a version registered before the `<fitted_on>_version` tag existed says nothing: it goes back too)
        if hist and (on := _fitted_on(c, spec, hist[-1])) in (results[0].to_version, None):
            result = rollback(spec.name, tracking_uri)
            results.append(result if on else dataclasses.replace(result, message=(
                f"{result.message} (v{result.to_version} does not record which {spec.fitted_on} version it was "
                "fitted on: it was registered before that tag)")))
    return results


def _fitted_on(c, spec: ModelSpec, version: str) -> str | None:
    """The version of spec.fitted_on whose predictions this version was fitted on (its version tag)."""
    return _fitted_on_version(c, spec.name, version, spec.fitted_on) if spec.fitted_on else None


def _fitted_on_version(c, name: str, version: str, fitted_on: str) -> str | None:
    return c.get_model_version(name, version).tags.get(f"{fitted_on}_version")


def pairing_problems(tracking_uri: str | None = None) -> list[str]:
    """Production versions fitted on another version of their base model than the one in production (a CLV
    model promoted, rolled back or moved by hand without its segment model), each with what to run."""
    c = client(tracking_uri)
    problems = []
    for key, spec in MODELS.items():
        production = alias_version(spec.name, PRODUCTION, tracking_uri) if spec.fitted_on else None
        base = alias_version(spec.fitted_on, PRODUCTION, tracking_uri) if production else None
        on = _fitted_on(c, spec, production) if base else None
        if on is None or on == base:
            continue
        staging = alias_version(spec.name, STAGING, tracking_uri)
        tags = c.get_model_version(spec.name, staging).tags if staging and staging != production else {}
        # rolled back (a refusal on its figure does not count now: production is mismatched, so the gate lets a
        # version fitted on the production base model through; nor does a refusal for the pairing itself)
        judged = ROLLED_BACK_TAG in tags
        if tags.get(f"{spec.fitted_on}_version") == base:
            fix = (f"staging v{staging} was fitted on it, but was rolled back out of production: `clv promote {key} "
                   "--force`, or train again (`clv materialize train`)" if judged else
                   f"`clv promote {key}` (staging v{staging} was fitted on it)")
        elif (hist := _rollback_target(c, spec.name, production, tracking_uri)[0]) and \
                _fitted_on(c, spec, hist[-1]) == base:
            fix = f"`clv rollback {key}` (back to v{hist[-1]}, fitted on it)"
        else:
            fix = "train again (`clv materialize train`), then promote"
        problems.append(f"production {spec.name} v{production} was fitted on {spec.fitted_on} v{on}'s predictions, "
                        f"but production {spec.fitted_on} is v{base}: scoring pairs them meanwhile; {fix}")
    return problems


def staging_note(key: str, info: dict) -> str | None:
    """Why a staging version that is not production waits, when the gate has judged it (rolled back, refused):
    from `status(name)`'s info; None when it simply waits for `clv promote`."""
    aliases = info.get("aliases", {})
    staging, production = aliases.get(STAGING), aliases.get(PRODUCTION)
    if not staging or staging == production:
        return None
    if rolled_back_at := info.get("rolled_back", {}).get(staging):
        return (f"staging v{staging} was rolled back out of production at {format_time(rolled_back_at)}: the gate "
                f"will not promote it again (a new training run registers a new staging version; `clv promote "
                f"{key} --force` overrides)")
    if refused := info.get("refused", {}).get(staging):
        when, _, why = refused.partition(": ")
        return f"the gate refused staging v{staging} at {format_time(when)}: {why} (`clv promote {key} --force` overrides)"
    return None


def _version_exists(c, name: str, version: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        c.get_model_version(name, version)
    except MlflowException:
        return False
    return True


# -- load ---------------------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A registered model version loaded for scoring.

    ``native`` is the domain object when the pyfunc wraps one (a PythonModel with a ``model`` attribute set
    in ``load_context``, like ``mlflow_code/saved_model_pyfunc.py``); ``predict`` then calls
    ``native.predict(df)`` directly (no MLflow schema enforcement: extra columns and integer dtypes are fine).
    Otherwise it calls the pyfunc with the columns of its signature, cast to the signature's types.
    """

    name: str
    alias: str | None
    version: str
    run_id: str | None
    pyfunc: Any
    native: Any = None

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        if self.native is not None and hasattr(self.native, "predict"):
            out = self.native.predict(df)
        else:
            out = self.pyfunc.predict(_conform(df, self.pyfunc))
        if isinstance(out, pd.Series):
            out = out.to_frame()
        if not isinstance(out, pd.DataFrame):
            out = pd.DataFrame(out)
        out.index = df.index
        return out


def _conform(df: pd.DataFrame, pyfunc) -> pd.DataFrame:
    schema = getattr(getattr(pyfunc, "metadata", None), "get_input_schema", lambda: None)()
    if schema is None or not schema.has_input_names():
        return df
    out = df[[c for c in schema.input_names() if c in df.columns]].copy()
    for spec in schema.inputs:
        dtype = getattr(getattr(spec, "type", None), "to_pandas", lambda: None)()
        if spec.name in out.columns and dtype is not None and pd.api.types.is_numeric_dtype(dtype):
            out[spec.name] = out[spec.name].astype(dtype)
    return out


def load(name: str, alias: str = PRODUCTION, tracking_uri: str | None = None, version: str | None = None):
    """Load ``models:/<name>@<alias>`` (or a given ``version``) as a LoadedModel with ``.predict(df)``."""
    import mlflow.pyfunc

    uri = _uri(tracking_uri)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        # (MLflow would create an empty store there, then find no model in it)
        raise RegistryError(f"no MLflow store at {uri.removeprefix('sqlite:///')}: train first, or set CLV_DATA_DIR "
                            "to the data dir that holds mlflow.db")
    configure(tracking_uri)
    c = client(tracking_uri)
    try:
        mv = c.get_model_version(name, str(version)) if version else c.get_model_version_by_alias(name, alias)
    except Exception as exc:
        what = f"version {version}" if version else f"alias '{alias}'"
        raise RegistryError(f"registered model {name} has no {what}: {exc}") from None
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}")
    native = None
    try:
        native = getattr(pyfunc.unwrap_python_model(), "model", None)
    except Exception:
        pass
    return LoadedModel(name, None if version else alias, str(mv.version), mv.run_id, pyfunc, native)


# -- models saved as a directory, logged as an MLflow pyfunc ------------------------------------------


MODEL_CODE = Path(__file__).with_name("mlflow_code") / "saved_model_pyfunc.py"


def log_model_dir(model, artifact_key: str, example: pd.DataFrame, packages: tuple[str, ...],
                  name: str, registered_model_name: str | None = None):
    """Log ``model`` (anything with ``save(dir)`` and ``predict(df)``) as an MLflow pyfunc in the active run:
    its saved directory as artifact ``artifact_key`` (a key of ``mlflow_code/saved_model_pyfunc.py``'s
    LOADERS), that file as the wrapper (models-from-code: MLflow runs it rather than unpickling an object), the
    `clv_platform` package as its code (so it loads where the platform is not installed), a signature from
    ``example`` (`model_signature`), and mlflow + ``packages`` pinned to the installed versions as its
    requirements (given explicitly: MLflow's own inference runs a slow subprocess). Returns the ModelInfo."""
    import shutil
    import tempfile
    from importlib.metadata import version

    import mlflow

    requirements = [f"{package}=={version(package)}" for package in ("mlflow", *packages)]

    example = example.head(200)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = model.save(Path(tmp) / artifact_key)
        package = Path(tmp) / "code" / "clv_platform"
        shutil.copytree(Path(__file__).parents[1], package, ignore=shutil.ignore_patterns("__pycache__"))
        return mlflow.pyfunc.log_model(
            name=name, python_model=str(MODEL_CODE), artifacts={artifact_key: str(model_dir)},
            code_paths=[str(package)], signature=model_signature(example, model.predict(example)),
            input_example=example.head(5), pip_requirements=requirements,
            registered_model_name=registered_model_name,
        )


def model_signature(example: pd.DataFrame, output: pd.DataFrame):
    """The signature of a model that takes ``example``'s columns: each one required (MLflow would call a
    column with a missing value optional, and the model then fails on its absence), integer columns as long
    (the warehouse's and snapshot's counts are int64 or smaller: MLflow widens those safely, while a double
    column refuses int64)."""
    import warnings

    from mlflow.models import infer_signature
    from mlflow.types.schema import ColSpec, DataType, Schema

    with warnings.catch_warnings():     # (MLflow's hint on integer columns: they are declared long on purpose)
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        signature = infer_signature(example, output)
    signature.inputs = Schema([
        ColSpec(DataType.long if col.type in (DataType.integer, DataType.long) else col.type, col.name, required=True)
        for col in signature.inputs.inputs])
    return signature


def model_dir_from_uri(model_uri: str, marker_file: str) -> Path:
    """The local directory (downloaded) holding ``marker_file`` among a logged model's artifacts."""
    import mlflow

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    hits = list(local.rglob(marker_file))
    if not hits:
        raise FileNotFoundError(f"{model_uri}: no {marker_file} among the model's artifacts")
    return hits[0].parent
