"""MLflow model code (models-from-code) for `clv_model`: MLflow runs this file when it logs or loads the model,
instead of unpickling a Python object. The model itself is the saved ClvModel directory, artifact `clv_model`.
Never imported by the platform (it calls `set_model` at import): `clv_model.log_to_mlflow` passes its path."""

import mlflow
import pandas as pd

from clv_platform.lib.clv_model import ClvModel


class ClvPyfuncModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.model = ClvModel.load(context.artifacts["clv_model"])

    def predict(self, context, model_input, params=None):
        return self.model.predict(pd.DataFrame(model_input))


mlflow.models.set_model(ClvPyfuncModel())
