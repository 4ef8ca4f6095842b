"""Exporters: TF Serving SavedModels and TFLite files of a trained model's sampling and likelihood graphs.

- `export_savedmodel(model, base, name, version)` writes `base/name/version/`
  with the signatures `serving_default` (= `sample`), `sample`,
  `sample_with_temperature`, `log_prob` and `complete` (`signatures.ServingGraphs`).
- `export_tflite(model, path)` writes one `.tflite` file with the signatures
  `sample` and `log_prob`, in TFLite builtin ops only.

Installed as `keras_pixelcnn.export`. May import everything in the library (sampling, likelihood,
data, models, ...); only `cli/` imports it.
"""

from keras_pixelcnn.export.savedmodel import SAVEDMODEL_SIGNATURES, export_savedmodel
from keras_pixelcnn.export.signatures import ServingGraphs
from keras_pixelcnn.export.tflite import TFLITE_SIGNATURES, export_tflite

__all__ = ["SAVEDMODEL_SIGNATURES", "TFLITE_SIGNATURES", "ServingGraphs", "export_savedmodel", "export_tflite"]
