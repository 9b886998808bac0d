"""Entry file for MLflow's models-from-code logging of the ModelYard pyfunc model."""

from mlflow.models import set_model

from modelyard.registry.pyfunc import TextClassifierModel

set_model(TextClassifierModel())
