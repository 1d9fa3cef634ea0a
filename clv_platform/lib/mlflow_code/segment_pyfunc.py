"""MLflow model code (models-from-code) for `segment_model`: MLflow runs this file when it logs or loads the
model, instead of unpickling a Python object. The model itself is the saved SegmentModel directory, artifact
`segment_model`. Never imported by the platform (it calls `set_model` at import): `segmentation.log_to_mlflow`
passes its path."""

import mlflow
import pandas as pd

from clv_platform.lib.segmentation import SegmentModel


class SegmentPyfuncModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.model = SegmentModel.load(context.artifacts["segment_model"])

    def predict(self, context, model_input, params=None):
        return self.model.predict(pd.DataFrame(model_input))


mlflow.models.set_model(SegmentPyfuncModel())
