import os


def clean_environ() -> dict:
    """This process's environment minus what in-process tests may have set (MLflow URIs, data dirs), so a
    subprocess finds only the store and data dir its test gives it."""
    leaked = ("MLFLOW_", "CLV_", "DAGSTER_HOME")
    return {k: v for k, v in os.environ.items() if not k.startswith(leaked)}
