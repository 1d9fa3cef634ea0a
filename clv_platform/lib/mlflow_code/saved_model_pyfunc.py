"""MLflow model code (models-from-code) for `clv_model` and `segment_model`: MLflow runs this file when it logs
or loads one of them, instead of unpickling a Python object. The model itself is a saved directory, the one
artifact of the logged model, named after the class that loads it. Never imported by the platform (it calls
`set_model` at import): `registry.log_model_dir` passes its path."""

import mlflow
import pandas as pd

from clv_platform.lib.clv_model import ClvModel
from clv_platform.lib.segmentation import SegmentModel

LOADERS = {"clv_model": ClvModel, "segment_model": SegmentModel}


class SavedModelPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        ((key, path),) = context.artifacts.items()
        self.model = LOADERS[key].load(path)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.model.predict(pd.DataFrame(model_input))


mlflow.models.set_model(SavedModelPyfunc())
