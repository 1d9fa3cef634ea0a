"""Registry with a real MLflow store in a temporary SQLite: register, gated promotion, --force, rollback, load."""

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.dummy import DummyRegressor

from clv_platform.cli import cli
from clv_platform.lib import registry, status
from clv_platform.lib.settings import get_settings
from clv_platform_tests.lib.mlflow_store import new_store

CLV = registry.MODELS["clv"]
SEGMENT = registry.MODELS["segment"]


class Scale:
    def __init__(self, k: float):
        self.k = k

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"predicted_clv": df["x"] * self.k}, index=df.index)


class ScalePyfunc(mlflow.pyfunc.PythonModel):
    """Like ClvPyfuncModel: the domain object is `self.model` after load_context."""

    def __init__(self, k: float):
        self.k = k

    def load_context(self, context):
        self.model = Scale(self.k)

    def predict(self, context, model_input, params=None):
        return self.model.predict(pd.DataFrame(model_input))


def _log(uri: str, root: Path, metric: str, value: float, k: float, sklearn: bool = False) -> str:
    registry.configure(uri)
    experiment_id = registry.ensure_experiment("tests", root / "mlartifacts", uri)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metric(metric, value)
        if sklearn:
            model = DummyRegressor(strategy="constant", constant=k).fit([[0.0]], [k])
            mlflow.sklearn.log_model(model, name="model", pip_requirements=[])
        else:
            mlflow.pyfunc.log_model(name="model", python_model=ScalePyfunc(k), pip_requirements=[])
    return run.info.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    return new_store(root), root


def test_promotion_gate_force_and_rollback(store, monkeypatch):
    uri, root = store
    monkeypatch.setenv("CLV_DATA_DIR", str(root))  # the CLI uses get_settings().mlflow_uri == uri
    runner = CliRunner()

    # First version: no production yet -> promoted.
    v1 = registry.register(_log(uri, root, CLV.metric, 0.60, 1.0), "model", CLV.name, tracking_uri=uri)
    assert v1 == "1" and registry.alias_version(CLV.name, "staging", uri) == "1"
    first = registry.promote(CLV.name, CLV.metric, tracking_uri=uri)
    assert first.promoted and first.production_version is None and "no production version yet" in first.message
    assert registry.alias_version(CLV.name, "production", uri) == "1"

    # A worse model: refused, both figures reported, production unchanged; the CLI exits non-zero.
    v2 = registry.register(_log(uri, root, CLV.metric, 0.55, 2.0), "model", CLV.name, tracking_uri=uri)
    refused = registry.promote(CLV.name, CLV.metric, tracking_uri=uri)
    assert not refused.promoted
    assert (refused.staging_metric, refused.production_metric) == (0.55, 0.60)
    assert "0.5500" in refused.message and "0.6000" in refused.message
    out = runner.invoke(cli, ["promote", "clv"])
    assert out.exit_code == 1, out.output
    assert "v2: 0.5500" in out.output and "v1: 0.6000" in out.output and "refused" in out.output
    assert "clv materialize score" not in out.output                 # nothing moved: nothing to rescore
    assert registry.alias_version(CLV.name, "production", uri) == "1"

    # --force promotes it anyway; the snapshot scored with v1 lags until rescored, and the command says so.
    from clv_platform.lib import snapshot

    snapshot.publish(root / "serving", {"customer_scores": pd.DataFrame({"customer_id": ["a"]})},
                     {"model_versions": {CLV.name: "1"}})
    out = runner.invoke(cli, ["promote", "clv", "--force"])
    assert out.exit_code == 0, out.output
    assert "the snapshot is scored with clv_model v1: `clv materialize score` rescores with v2" in out.output
    assert registry.alias_version(CLV.name, "production", uri) == v2
    assert registry.alias_version(CLV.name, "previous_production", uri) == v1
    tags = registry.client(uri).get_model_version(CLV.name, v2).tags
    assert tags["promotion_forced"] == "true" and tags["promoted_over"] == "1"

    # Rollback: back to v1.
    out = runner.invoke(cli, ["rollback", "clv"])
    assert out.exit_code == 0, out.output
    assert "v2 -> v1" in out.output and "clv materialize score" not in out.output   # the snapshot has v1
    assert registry.alias_version(CLV.name, "production", uri) == "1"
    assert registry.history(CLV.name, uri) == ["1"]

    # A better model is accepted over v1 (with the snapshot's manifest damaged: no rescore hint, no traceback).
    (snapshot.current_snapshot_dir(root / "serving") / "manifest.json").write_text("{")
    v3 = registry.register(_log(uri, root, CLV.metric, 0.65, 3.0), "model", CLV.name, tracking_uri=uri)
    out = runner.invoke(cli, ["promote", "clv"])
    assert out.exit_code == 0 and "clv materialize score" not in out.output, out.output
    assert "v3: 0.6500" in out.output and "v1: 0.6000" in out.output
    assert registry.alias_version(CLV.name, "production", uri) == v3
    assert registry.history(CLV.name, uri) == ["1", "3"]

    # Promoting the same version again is a no-op, not an error.
    again = runner.invoke(cli, ["promote", "clv"])
    assert again.exit_code == 0 and "already production" in again.output

    # load() by alias gives the production model with .predict(df), native object and version.
    model = registry.load(CLV.name, "production", tracking_uri=uri)
    assert model.version == v3 and isinstance(model.native, Scale)
    pred = model.predict(pd.DataFrame({"x": [1, 2], "extra": ["a", "b"]}, index=[10, 11]))
    assert list(pred["predicted_clv"]) == [3.0, 6.0] and list(pred.index) == [10, 11]

    out = runner.invoke(cli, ["models"])
    assert out.exit_code == 0, out.output
    assert "production           v3" in out.output and "holdout_normalized_gini = 0.6500" in out.output

    # Roll back twice: the second has nothing left to go back to.
    assert registry.rollback(CLV.name, uri).to_version == "1"
    with pytest.raises(registry.RegistryError, match="nothing to roll back to"):
        registry.rollback(CLV.name, uri)
    out = runner.invoke(cli, ["rollback", "clv"])
    assert out.exit_code != 0 and "nothing to roll back to" in out.output
    # `clv models` shows every move, oldest first, and marks the rolled-back version
    out = runner.invoke(cli, ["models"]).output
    assert "production log (last 5 of 5, oldest first)" in out, out
    assert "rollback       v2 -> v1" in out and "rollback       v3 -> v1" in out


def test_segment_model_sklearn_flavour_and_missing_staging(store):
    uri, root = store
    with pytest.raises(registry.RegistryError, match="no 'staging' version"):
        registry.promote("nothing_here", SEGMENT.metric, tracking_uri=uri)
    v1 = registry.register(_log(uri, root, SEGMENT.metric, 0.40, 7.0, sklearn=True), "model", SEGMENT.name,
                           tracking_uri=uri)
    assert registry.promote(SEGMENT.name, SEGMENT.metric, tracking_uri=uri).promoted
    model = registry.load(SEGMENT.name, tracking_uri=uri)
    assert model.version == v1 and model.native is None
    assert list(model.predict(pd.DataFrame({"a": [1.0, 2.0]})).iloc[:, 0]) == [7.0, 7.0]
    # Lower-is-better metrics are supported too: 0.45 > 0.40 is worse then.
    registry.register(_log(uri, root, SEGMENT.metric, 0.45, 8.0, sklearn=True), "model", SEGMENT.name,
                      tracking_uri=uri)
    assert not registry.promote(SEGMENT.name, SEGMENT.metric, higher_is_better=False, tracking_uri=uri).promoted
    assert registry.promote(SEGMENT.name, SEGMENT.metric, tracking_uri=uri).promoted
    with pytest.raises(registry.RegistryError, match="has no alias"):
        registry.load(SEGMENT.name, "nope", tracking_uri=uri)


def test_a_rolled_back_version_is_not_promoted_again_and_every_move_is_logged(tmp_path, monkeypatch):
    uri = new_store(tmp_path)
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    for value in (0.60, 0.65):
        registry.register(_log(uri, tmp_path, CLV.metric, value, value), "model", CLV.name, tracking_uri=uri)
        assert registry.promote(CLV.name, CLV.metric, tracking_uri=uri).promoted
    assert registry.rollback(CLV.name, uri).to_version == "1"

    # v2 is still staging and better than v1, but it was rolled back: the gate refuses it, --force does not.
    refused = registry.promote(CLV.name, CLV.metric, tracking_uri=uri)
    assert not refused.promoted and "staging v2 was rolled back out of production at" in refused.message
    assert "--force" in refused.message and "new training run" in refused.message
    out = CliRunner().invoke(cli, ["promote", "clv"])
    assert out.exit_code == 1 and "v2 was rolled back" in out.output
    assert registry.alias_version(CLV.name, "production", uri) == "1"
    assert registry.promote(CLV.name, CLV.metric, force=True, tracking_uri=uri).promoted
    assert registry.rollback(CLV.name, uri).to_version == "1"

    # The rollback stack is back to ["1"], but the event log keeps every move.
    info = registry.status(CLV.name, uri)
    assert info["history"] == ["1"] and set(info["rolled_back"]) == {"2"}
    assert [(e["event"], e["from"], e["to"]) for e in info["events"]] == [
        ("promote", None, "1"), ("promote", "1", "2"), ("rollback", "2", "1"), ("force-promote", "1", "2"),
        ("rollback", "2", "1")]
    assert registry.events(CLV.name, uri) == info["events"]
    assert registry.format_event(info["events"][0]).endswith("promote        - -> v1")
    assert registry.format_event(info["events"][2]).endswith("rollback       v2 -> v1")

    # A new training run's version goes through the gate as usual.
    registry.register(_log(uri, tmp_path, CLV.metric, 0.61, 0.61), "model", CLV.name, tracking_uri=uri)
    assert registry.promote(CLV.name, CLV.metric, tracking_uri=uri).promoted
    assert registry.events(CLV.name, uri)[-1]["event"] == "promote"


def test_registry_edits_in_the_mlflow_ui_do_not_fool_the_gate_or_break_rollback(tmp_path):
    """Someone deletes the `production` alias, or an old version, by hand in the MLflow UI."""
    uri = new_store(tmp_path)
    for value in (0.60, 0.65, 0.70):
        registry.register(_log(uri, tmp_path, CLV.metric, value, value), "model", CLV.name, tracking_uri=uri)
        assert registry.promote(CLV.name, CLV.metric, tracking_uri=uri).promoted
    assert registry.rollback(CLV.name, uri).to_version == "2"          # v3 rolled back, staging still
    c = registry.client(uri)
    c.delete_registered_model_alias(CLV.name, "production")
    refused = registry.promote(CLV.name, CLV.metric, tracking_uri=uri)
    assert not refused.promoted and "staging v3 was rolled back" in refused.message
    assert registry.alias_version(CLV.name, "production", uri) is None

    # production moved by hand to the rolled-back v3: the gate and the log never saw it; status and models say so
    assert registry.status(CLV.name, uri)["unlogged_move"] is None
    c.set_registered_model_alias(CLV.name, "production", "3")
    assert registry.status(CLV.name, uri)["unlogged_move"].startswith(
        "production is v3, but the last logged move put v2 there: it was moved outside `clv promote`/`clv rollback`")
    c.set_registered_model_alias(CLV.name, "production", "2")
    assert registry.status(CLV.name, uri)["unlogged_move"] is None
    c.delete_model_version(CLV.name, "1")                                # the version to roll back to
    with pytest.raises(registry.RegistryError, match=r"nothing to roll back to \(the other versions that were "
                                                     r"production: deleted from the registry: v1; rolled back: v3\)"):
        registry.rollback(CLV.name, uri)


def test_a_moved_data_dir_takes_its_mlflow_artifacts_along(tmp_path):
    """MLflow stores absolute artifact paths: after the data dir moves, they are rewritten to the new place."""
    import shutil

    old = tmp_path / "old" / "data"
    uri = new_store(old)
    registry.register(_log(uri, old, CLV.metric, 0.6, 3.0), "model", CLV.name, tracking_uri=uri)
    assert registry.follow_moved_data_dir("tests", old / "mlartifacts", uri) is None          # in place
    new = tmp_path / "new" / "data"
    shutil.copytree(old, new)
    shutil.rmtree(old)
    new_uri = f"sqlite:///{new / 'mlflow.db'}"
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="No such artifact"):        # before: the old place is gone
        registry.load(CLV.name, "staging", tracking_uri=new_uri).predict(pd.DataFrame({"x": [1.0]}))
    moved = registry.follow_moved_data_dir("tests", new / "mlartifacts", new_uri)
    assert moved.startswith("the data dir moved: ") and f"under {(new / 'mlartifacts').as_uri()} instead of" in moved
    assert list(registry.load(CLV.name, "staging", tracking_uri=new_uri).predict(
        pd.DataFrame({"x": [1.0]})).iloc[:, 0]) == [3.0]
    run_id = _log(new_uri, new, CLV.metric, 0.7, 4.0)                     # a new run writes under the new place
    assert registry.client(new_uri).get_run(run_id).info.artifact_uri.startswith((new / "mlartifacts").as_uri())
    assert registry.follow_moved_data_dir("tests", new / "mlartifacts", new_uri) is None

    shutil.rmtree(new / "mlartifacts")
    elsewhere = tmp_path / "third"
    with pytest.raises(registry.RegistryError, match="does not hold them: move or copy the data dir with its "
                                                     "mlartifacts folder"):
        registry.follow_moved_data_dir("tests", elsewhere / "mlartifacts", new_uri)


def _version(uri: str, root: Path, spec, value: float, fitted_on: str | None = None) -> str:
    """A registered version of `spec`'s model with its metric `value` (a segment model: fitted on clv_model v
    `fitted_on`)."""
    tags = {"clv_model_version": fitted_on} if fitted_on else None
    return registry.register(_log(uri, root, spec.metric, value, value), "model", spec.name, tags=tags,
                             tracking_uri=uri)


def test_a_segment_model_is_promoted_only_next_to_the_clv_model_it_was_fitted_on(tmp_path, monkeypatch):
    """The segment model's inputs include predicted CLV: production must not pair it with another CLV version."""
    uri = new_store(tmp_path)
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    segment = registry.MODELS["segment"]

    def version(spec, value, fitted_on=None):
        return _version(uri, tmp_path, spec, value, fitted_on)

    version(CLV, 0.60)
    version(segment, 0.30, fitted_on="1")
    assert registry.promote_spec(CLV, tracking_uri=uri).promoted
    assert registry.promote_spec(segment, tracking_uri=uri).promoted          # the pair v1 + v1
    version(CLV, 0.50)                                                          # v2: worse, refused
    version(segment, 0.40, fitted_on="2")                                       # better, but fitted on clv v2
    assert not registry.promote_spec(CLV, tracking_uri=uri).promoted
    refused = registry.promote_spec(segment, tracking_uri=uri)
    assert not refused.promoted and "staging v2 was fitted on clv_model v2's predictions, and production " \
        "clv_model is v1: promote clv_model v2 first, or train again" in refused.message
    out = CliRunner().invoke(cli, ["promote", "segment"])
    assert out.exit_code == 1 and "fitted on clv_model v2" in out.output
    out = CliRunner().invoke(cli, ["promote", "clv", "--force"])                # its CLV model goes first...
    assert out.exit_code == 0 and "next: production segment_model v1 was fitted on clv_model v1's predictions, " \
        "but production clv_model is v2: scoring pairs them meanwhile; `clv promote segment` (staging v2 was " \
        "fitted on it)" in out.output, out.output
    assert registry.pairing_problems(uri)
    out = CliRunner().invoke(cli, ["promote", "segment"])                        # ...then
    assert out.exit_code == 0 and "`clv materialize history` rewrites its last six months with v2" in out.output
    assert registry.pairing_problems(uri) == []

    # Rolling the CLV model back takes the segment model fitted on it along (alone, it left v1 + v2 in production)
    out = CliRunner().invoke(cli, ["rollback", "clv"])
    assert out.exit_code == 0, out.output
    assert "rolled back clv_model: production v2 -> v1" in out.output
    assert "rolled back segment_model: production v2 -> v1 (fitted on clv_model v2, which left production)" in out.output
    assert [registry.alias_version(m, "production", uri) for m in ("clv_model", "segment_model")] == ["1", "1"]
    assert registry.pairing_problems(uri) == [] and "attention" not in out.output

    # Moved by hand (or a pair with no earlier match): status, `clv models` and the run summary say so.
    registry.client(uri).set_registered_model_alias(CLV.name, "production", "2")
    (problem,) = registry.pairing_problems(uri)
    assert problem.startswith("production segment_model v1 was fitted on clv_model v1's predictions, but production "
                              "clv_model is v2")
    assert problem in status.collect(get_settings()).attention
    assert f"attention: {problem}" in CliRunner().invoke(cli, ["models"]).output
    from clv_platform import orchestrate

    lines = orchestrate.waiting_model_lines(uri)
    assert f"attention   {problem}" in lines
    # a rolled-back staging version waits for a reason the summary now gives (it used to invite `clv promote`)
    assert any(line.startswith("waiting     segment_model v2 is staging") and "was rolled back out of production"
               in line for line in lines), lines


def test_a_rollback_with_nothing_left_names_the_versions_rolled_back(tmp_path):
    uri = new_store(tmp_path)
    for value in (0.6, 0.7, 0.8):
        registry.register(_log(uri, tmp_path, CLV.metric, value, value), "model", CLV.name, tracking_uri=uri)
        registry.promote_spec(CLV, force=True, tracking_uri=uri)
        if value > 0.6:
            registry.rollback(CLV.name, uri)
    with pytest.raises(registry.RegistryError, match=r"clv_model v1 is the earliest production version left to go "
                       r"back to: nothing to roll back to \(the other versions that were production: rolled "
                       r"back: v2, v3\)"):
        registry.rollback(CLV.name, uri)


def test_loading_from_a_data_dir_without_a_store_says_so_and_creates_nothing(tmp_path):
    missing = tmp_path / "elsewhere" / "mlflow.db"
    with pytest.raises(registry.RegistryError, match=f"no MLflow store at {missing}: train first, or set CLV_DATA_DIR"):
        registry.load(CLV.name, tracking_uri=f"sqlite:///{missing}")
    assert not missing.parent.exists()


def test_the_production_event_log_keeps_the_last_50_events(tmp_path):
    uri = new_store(tmp_path)
    c = registry.client(uri)
    c.create_registered_model("m")
    for i in range(55):
        registry._log_event(c, "m", "promote", str(i), str(i + 1), "2024-03-20T12:00:00+00:00")
    log = registry.events("m", uri)
    assert len(log) == registry.EVENTS_LIMIT and log[0]["from"] == "5" and log[-1]["to"] == "55"


def test_a_model_no_better_than_a_constant_is_never_promoted_without_force(tmp_path):
    uri = new_store(tmp_path)
    name = "constant_check"
    # The first version ranks no better than a constant (Gini 0): refused even with no production yet.
    registry.register(_log(uri, tmp_path, CLV.metric, 0.0, 1.0), "model", name, tracking_uri=uri)
    refused = registry.promote(name, CLV.metric, tracking_uri=uri, floor=CLV.floor)
    assert not refused.promoted and "no better than a constant" in refused.message, refused.message
    assert registry.alias_version(name, "production", uri) is None
    forced = registry.promote(name, CLV.metric, tracking_uri=uri, floor=CLV.floor, force=True)
    assert forced.promoted
    # A NaN figure (stored as no figure): refused as staging; as production, the refusal says to use --force.
    registry.register(_log(uri, tmp_path, CLV.metric, float("nan"), 2.0), "model", name, tracking_uri=uri)
    assert "has no metric" in registry.promote(name, CLV.metric, tracking_uri=uri, floor=CLV.floor).message
    registry.promote(name, CLV.metric, tracking_uri=uri, floor=CLV.floor, force=True)
    registry.register(_log(uri, tmp_path, CLV.metric, 0.3, 3.0), "model", name, tracking_uri=uri)
    blocked = registry.promote(name, CLV.metric, tracking_uri=uri, floor=CLV.floor)
    assert not blocked.promoted and "production v2 has no metric" in blocked.message and "--force" in blocked.message


def test_the_run_summary_names_a_trained_version_that_is_not_production(tmp_path):
    """The summary's metrics table is the snapshot's (production's): a retrain the gate refused looked like
    production's figures. It now names the waiting version with both figures and the command that uses it."""
    from clv_platform import orchestrate

    uri = new_store(tmp_path)
    registry.register(_log(uri, tmp_path, CLV.metric, 0.56, 1.0), "model", CLV.name, tracking_uri=uri)
    assert registry.promote_spec(CLV, tracking_uri=uri).promoted
    assert orchestrate.waiting_model_lines(uri) == []                  # staging is production: nothing waits
    registry.register(_log(uri, tmp_path, CLV.metric, 0.69, 2.0), "model", CLV.name, tracking_uri=uri)
    (line,) = orchestrate.waiting_model_lines(uri)
    assert line.startswith("waiting     clv_model v2 is staging, not production: holdout_normalized_gini 0.6900 "
                           "vs production v1 0.5600; `clv promote clv`"), line


def test_the_gate_compares_with_production_on_the_same_held_out_customers(tmp_path):
    """Each version's own figure comes from its own held-out sample; when the staging run scored the production
    model on its held-out customers, the gate compares those two figures (and says so)."""
    uri = new_store(tmp_path)

    def version(value, same=None, compared=None):
        run_id = _log(uri, tmp_path, CLV.metric, value, value)
        if same is not None:
            registry.client(uri).log_metric(run_id, CLV.metric + registry.SAME_CUSTOMERS_SUFFIX, same)
        tags = {registry.COMPARED_TAG: compared} if compared else None
        return registry.register(run_id, "model", CLV.name, tags=tags, tracking_uri=uri)

    version(0.60)
    assert registry.promote_spec(CLV, tracking_uri=uri).promoted
    version(0.55, same=0.50, compared="1")       # below production's own 0.60, above it on the same customers
    from clv_platform import orchestrate

    (line,) = orchestrate.waiting_model_lines(uri)   # the run summary quotes the figures the gate will compare
    assert "0.5500 vs production v1 0.5000 on the same held-out customers (production's own evaluation: 0.6000)" \
        in line
    result = registry.promote_spec(CLV, tracking_uri=uri)
    assert result.promoted and result.production_metric == 0.50
    assert "production v1 = 0.5000 on the same held-out customers (production's own evaluation: 0.6000)" \
        in result.message
    version(0.52, same=0.40, compared="1")       # measured against v1, but production is v2 now: its own figure
    refused = registry.promote_spec(CLV, tracking_uri=uri)
    assert not refused.promoted and refused.production_metric == 0.55 and "same held-out" not in refused.message


def test_the_pairing_advice_does_not_send_to_a_promotion_the_gate_refused(tmp_path, monkeypatch):
    uri = new_store(tmp_path)
    segment = registry.MODELS["segment"]

    def version(spec, value, fitted_on=None):
        return _version(uri, tmp_path, spec, value, fitted_on)

    version(CLV, 0.60)
    version(segment, 0.30, fitted_on="1")
    assert registry.promote_spec(CLV, tracking_uri=uri).promoted and registry.promote_spec(segment, tracking_uri=uri).promoted
    version(CLV, 0.70)
    version(segment, 0.20, fitted_on="2")                       # worse than production's 0.30
    assert registry.promote_spec(CLV, tracking_uri=uri).promoted
    (advice,) = registry.pairing_problems(uri)
    assert advice.endswith("`clv promote segment` (staging v2 was fitted on it)")
    # worse than production's figure, but that figure was measured on clv v1's predictions, no longer production's:
    # the gate does not compare them (a lucky early figure held back every retrain, and the mismatch stayed)
    result = registry.promote_spec(segment, tracking_uri=uri)
    assert result.promoted and "production v1 was fitted on clv_model v1's predictions, and clv_model v1 is no " \
        "longer production, while staging v2 was fitted on the production one, v2 (their figures are not " \
        "compared" in result.message
    assert registry.pairing_problems(uri) == []
    # rolled back out of production alone: mismatched again, and the gate refuses v2 from now on
    registry.rollback(segment.name, tracking_uri=uri)
    (advice,) = registry.pairing_problems(uri)
    assert advice.endswith("staging v2 was fitted on it, but was rolled back out of production: `clv promote segment "
                           "--force`, or train again (`clv materialize train`)")
    assert not registry.promote_spec(segment, tracking_uri=uri).promoted


def test_rolling_back_the_clv_model_takes_along_a_segment_model_from_before_the_pairing_tag(tmp_path, monkeypatch):
    """An upgrade: production segment v1 was registered before versions recorded the CLV version they were fitted
    on. Rolling the CLV model back from v2 must still take segment v2 (fitted on clv v2) back to v1."""
    uri = new_store(tmp_path)
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    segment = registry.MODELS["segment"]
    _version(uri, tmp_path, CLV, 0.60)
    _version(uri, tmp_path, segment, 0.30)                           # no clv_model_version tag
    assert registry.promote_spec(CLV, tracking_uri=uri).promoted and registry.promote_spec(segment, tracking_uri=uri).promoted
    _version(uri, tmp_path, CLV, 0.70)
    _version(uri, tmp_path, segment, 0.35, fitted_on="2")
    assert registry.promote_spec(CLV, tracking_uri=uri).promoted and registry.promote_spec(segment, tracking_uri=uri).promoted

    out = CliRunner().invoke(cli, ["rollback", "clv"])
    assert out.exit_code == 0, out.output
    assert [registry.alias_version(m, "production", uri) for m in ("clv_model", "segment_model")] == ["1", "1"]
    assert "rolled back segment_model: production v2 -> v1 (v1 does not record which clv_model version it was " \
        "fitted on" in out.output and "attention" not in out.output
