"""MLflow, used the way its UI expects: one run per retrain, the dataset as a run input whose
digest is the DVC hash, the model in the pyfunc flavour with a signature, registry versions with
lineage tags, and aliases (not the deprecated stages) for `staging` and `production`.

Every call names its run id explicitly: MLflow's "active run" is per thread, and Prefect runs
tasks in other threads.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from modelyard.config import Settings
from modelyard.lineage_key import RecordedVersion
from modelyard.tags import LINEAGE_KEY, MODEL_ALIASES, PRODUCTION, RUNTIME, RUNTIME_CUDA, STAGING

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from modelyard.registry.pyfunc import TextClassifierModel


@dataclass(frozen=True)
class InputDataset:
    """A run's dataset input as MLflow's UI shows it (`modelyard.registry.tracking` builds it)."""

    name: str
    digest: str
    source_uri: str
    rows: int
    elements: int
    schema: list[dict[str, str]]
    tags: dict[str, str]
    source_type: str = "local"


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: str
    run_id: str | None
    tags: dict[str, str]
    aliases: list[str]


_FLUENT = threading.Lock()
_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def _fluent_uris(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (log_model, load_model) at `uri` for one call only.

    Those functions read process-wide URIs, and setting them also exports MLFLOW_TRACKING_URI /
    MLFLOW_REGISTRY_URI; left set, one flow's store would silently become the default of the next
    flow in the same process (a worker). The lock keeps two threads from interleaving.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_state
    from mlflow.tracking._tracking_service import utils as tracking_state

    with _FLUENT:
        saved = (tracking_state._tracking_uri, registry_state._registry_uri)
        saved_env = {name: os.environ.get(name) for name in _URI_VARIABLES}
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield
        finally:
            tracking_state._tracking_uri, registry_state._registry_uri = saved
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@contextmanager
def _initialising(uri: str) -> Iterator[None]:
    """Hold the store's init lock, where it has one (an embedded SQLite store)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    from modelyard.store.lock import file_lock

    database = Path(uri.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(database.with_name(f"{database.name}.locks") / "init.lock"):
        yield


def open_client(uri: str) -> MlflowClient:
    """An MlflowClient on `uri` (tracking and registry), its stores opened.

    MLflow creates and migrates a fresh SQLite store on first use; two processes starting
    together (two retrains, or a retrain and `models approve`) would both migrate it and one
    would fail half-way. Opening both stores under one lock per database keeps that from
    happening, and leaves later calls nothing to migrate.
    """
    from mlflow import MlflowClient

    with _initialising(uri):
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    return client


class MlflowRegistry:
    @classmethod
    def from_settings(cls, settings: Settings) -> MlflowRegistry:
        """The registry this environment points at (`MLFLOW_TRACKING_URI`, or the embedded
        default), in its experiment."""
        return cls(settings.resolved_tracking_uri(), settings.experiment, settings.artifact_root())

    def __init__(
        self, tracking_uri: str, experiment: str, artifact_root: str | None = None
    ) -> None:
        self.tracking_uri = tracking_uri
        self.client = open_client(tracking_uri)
        # Another process may create it meanwhile: _experiment takes that into account.
        self.experiment_id = self._experiment(experiment, artifact_root)

    def _experiment(self, name: str, artifact_root: str | None) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self.client.create_experiment(name, artifact_location=artifact_root))
        except MlflowException:  # created by another process meanwhile
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    # -- runs ---------------------------------------------------------------------------------
    def start_run(self, run_name: str, tags: Mapping[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=dict(tags))
        return str(run.info.run_id)

    def reopen_run(self, run_id: str) -> bool:
        """Mark an unfinished run (killed or failed) RUNNING again, to carry on in it; False when
        it is gone or already finished."""
        from mlflow.exceptions import MlflowException

        try:
            status = self.client.get_run(run_id).info.status
        except MlflowException:
            return False
        if status == "FINISHED":
            return False
        self.client.update_run(run_id, status="RUNNING")
        return True

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(key, str(value)[:6000]) for key, value in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float], step: int | None = None
    ) -> None:
        self.log_metric_steps(run_id, [(step or 0, metrics)])

    def log_metric_steps(
        self, run_id: str, steps: Sequence[tuple[int, Mapping[str, float]]]
    ) -> None:
        """Metrics of several steps in one request (MLflow takes up to 1,000 per batch)."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [
            Metric(key, float(value), now, step)
            for step, metrics in steps
            for key, value in metrics.items()
        ]
        for start in range(0, len(batch), 1000):
            self.client.log_batch(run_id, metrics=batch[start : start + 1000])

    def set_run_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.client.log_text(run_id, text, path)

    def log_dict(self, run_id: str, data: Mapping[str, Any], path: str) -> None:
        self.client.log_dict(run_id, dict(data), path)

    def log_artifacts(self, run_id: str, local_dir: Path, path: str) -> None:
        self.client.log_artifacts(run_id, str(local_dir), path)

    def download_artifact(self, run_id: str, path: str, into: Path) -> Path:
        """One artifact of a run, copied under `into`; its local path."""
        return Path(self.client.download_artifacts(run_id, path, str(into)))

    def versions_trained_on(self, dataset_md5: str) -> list[tuple[str, str, list[str]]]:
        """(model name, version, aliases) of every registered version whose lineage names this
        dataset hash."""
        found = self.client.search_model_versions(f"tags.dataset_md5 = '{dataset_md5}'")
        # Search results carry no aliases: they live on the registered model.
        aliases: dict[tuple[str, str], list[str]] = {}
        for name in {v.name for v in found}:
            for alias, number in self.client.get_registered_model(name).aliases.items():
                aliases.setdefault((name, str(number)), []).append(alias)
        return sorted(
            (
                (v.name, str(v.version), sorted(aliases.get((v.name, str(v.version)), [])))
                for v in found
            ),
            key=lambda item: (item[0], int(item[1])),
        )

    def versions_with_lineage_key(self, name: str, key: str) -> list[RecordedVersion]:
        """Every version of `name` whose `lineage_key` tag is `key`, with when it was registered
        and whether its retrain's run ended FINISHED."""
        from datetime import UTC, datetime

        from mlflow.exceptions import MlflowException

        try:
            found = self.client.search_model_versions(
                f"name = '{name}' and tags.{LINEAGE_KEY} = '{key}'"
            )
        except MlflowException:  # no such model yet
            return []
        return [
            RecordedVersion(
                str(v.version),
                datetime.fromtimestamp(v.creation_timestamp / 1000, tz=UTC),
                dict(v.tags),
                self._run_finished(v.run_id),
            )
            for v in found
        ]

    def _run_finished(self, run_id: str | None) -> bool:
        """Did the run end FINISHED? False for a run that is gone (deleted by retention)."""
        from mlflow.exceptions import MlflowException

        try:
            return run_id is not None and self.client.get_run(run_id).info.status == "FINISHED"
        except MlflowException:
            return False

    def log_figure(self, run_id: str, figure: Any, path: str) -> None:
        import matplotlib.pyplot as plt

        self.client.log_figure(run_id, figure, path)
        plt.close(figure)

    def log_dataset(self, run_id: str, dataset: InputDataset) -> None:
        """One dataset input of the run: its name (`NAME@V/train`), the digest of its rows, its
        row count (the profile MLflow shows), a source that resolves, its split as context."""
        import json

        from mlflow.entities import Dataset, DatasetInput, InputTag

        entity = Dataset(
            name=dataset.name,
            digest=dataset.digest,
            source_type=dataset.source_type,
            source=json.dumps({"uri": dataset.source_uri}),
            schema=json.dumps({"mlflow_colspec": dataset.schema}),
            profile=json.dumps({"num_rows": dataset.rows, "num_elements": dataset.elements}),
        )
        tags = [InputTag(key, value) for key, value in dataset.tags.items()]
        self.client.log_inputs(run_id, datasets=[DatasetInput(entity, tags)])

    def describe_experiment(self, description: str) -> None:
        """The experiment's description (the note MLflow's UI shows above its runs), unless it
        has one: a person's own words are kept."""
        from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

        if not self.client.get_experiment(self.experiment_id).tags.get(MLFLOW_RUN_NOTE):
            self.client.set_experiment_tag(self.experiment_id, MLFLOW_RUN_NOTE, description)

    def list_artifacts(self, run_id: str, path: str) -> list[str]:
        """The paths of a run's artifacts under `path` (none when there is no such folder)."""
        return [entry.path for entry in self.client.list_artifacts(run_id, path)]

    # -- models -------------------------------------------------------------------------------
    def log_model(
        self,
        run_id: str,
        model_dir: Path,
        input_example: pd.DataFrame,
        output_example: pd.DataFrame,
        text_column: str = "text",
    ) -> str:
        """Log the model in the pyfunc flavour (safetensors weights inside); return its URI.
        `text_column`: the training data's text column, which the model reads besides `text`
        (the signature's input is one unnamed string column, so a list of texts passes too)."""
        import mlflow
        import mlflow.pyfunc
        from mlflow.models import ModelSignature, infer_signature
        from mlflow.types import ColSpec, DataType, Schema

        from modelyard.registry import pyfunc
        from modelyard.registry.pyfunc import MODEL_DIR_ARTIFACT, TEXT_COLUMN

        entry = Path(pyfunc.__file__).with_name("pyfunc_entry.py")
        signature = ModelSignature(
            inputs=Schema([ColSpec(DataType.string)]),
            outputs=infer_signature(input_example, output_example).outputs,
        )
        with _fluent_uris(self.tracking_uri), mlflow.start_run(run_id=run_id):
            # "Models from code": the model file is stored as source, not as a pickle.
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(entry),
                artifacts={MODEL_DIR_ARTIFACT: str(model_dir)},
                # The runtime keys are empty (the choice recorded with the model, or eager);
                # declared so that a load may set them (MLflow overrides only declared keys).
                model_config={TEXT_COLUMN: text_column, RUNTIME: "", RUNTIME_CUDA: ""},
                signature=signature,
                input_example=input_example,
                pip_requirements=_requirements(),
            )
        # Leaving `start_run` marked the run FINISHED; the retrain is not finished (and a re-run
        # after a crash from here on must find it unfinished to resume it).
        self.client.update_run(run_id, status="RUNNING")
        return str(info.model_uri)

    def register(self, model_uri: str, name: str, run_id: str, tags: Mapping[str, str]) -> str:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(name)
        # A `models:/m-…` source is resolved through the process-wide tracking URI.
        with _fluent_uris(self.tracking_uri):
            # A tracking server wants the logged model's id with a `models:/m-…` source (the
            # embedded store resolves it either way).
            model_id = (
                model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
            )
            version = self.client.create_model_version(
                name,
                source=model_uri,
                run_id=run_id,
                tags={k: str(v) for k, v in tags.items()},
                model_id=model_id,
            )
        if model_id is not None:
            self.link_logged_model(model_id, name, str(version.version))
        return str(version.version)

    def link_logged_model(self, model_id: str, name: str, version: str) -> None:
        """Name `version` on its logged model (MLflow's `mlflow.modelVersions` tag), so the
        logged model's page links to the version instead of saying "Not registered"."""
        import json

        from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

        found = self.client.get_logged_model(model_id).tags.get(MLFLOW_MODEL_VERSIONS)
        versions = json.loads(found) if found else []
        entry = {"name": name, "version": version}
        if entry not in versions:
            self.client.set_logged_model_tags(
                model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([*versions, entry])}
            )

    def describe_model(self, name: str, description: str) -> None:
        """The registered model's description, unless it has one (a person's is kept)."""
        if not self.client.get_registered_model(name).description:
            self.client.update_registered_model(name, description=description)

    def describe_version(self, name: str, version: str, description: str) -> None:
        """The version's description (markdown: MLflow's version page renders it)."""
        self.client.update_model_version(name, version, description=description)

    def set_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, version, key, str(value))

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Move `alias` to `version`, and list every alias of the model in its `aliases` tag
        (MLflow's list of models shows one alias per version and hides `production` behind
        `staging`'s "+1"; its Tags column shows them all)."""
        self.client.set_registered_model_alias(name, alias, version)
        aliases = self.client.get_registered_model(name).aliases
        self.client.set_registered_model_tag(name, MODEL_ALIASES, aliases_text(aliases))

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove `alias` from the model (a no-op when it names no version), and list the
        aliases left in the model's `aliases` tag."""
        if self.alias_version(name, alias) is not None:
            self.client.delete_registered_model_alias(name, alias)
        aliases = self.client.get_registered_model(name).aliases
        self.client.set_registered_model_tag(name, MODEL_ALIASES, aliases_text(aliases))

    def has_model(self, name: str) -> bool:
        """Is `name` a registered model?"""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            return False
        return True

    def alias_version(self, name: str, alias: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def models(self) -> list[tuple[str, dict[str, str], int]]:
        """(name, {alias: version}, number of versions) of every registered model."""
        found = []
        for model in self.client.search_registered_models():
            versions = self.client.search_model_versions(f"name='{model.name}'")
            found.append((model.name, {a: str(v) for a, v in model.aliases.items()}, len(versions)))
        return sorted(found)

    def run_params(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.params)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client.get_run(run_id).data.metrics)

    def run_tags(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.tags)

    def metric_by_step(self, run_id: str, key: str) -> dict[int, float]:
        """The last value logged at each step of a metric (MLflow keeps every value)."""
        history = sorted(
            self.client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp)
        )
        return {m.step: m.value for m in history}

    def version_info(self, name: str, version: str) -> ModelVersionInfo:
        found = self.client.get_model_version(name, version)
        return ModelVersionInfo(
            name=name,
            version=str(found.version),
            run_id=found.run_id,
            tags=dict(found.tags),
            aliases=list(found.aliases),
        )

    def version_for_run(self, name: str, run_id: str) -> str | None:
        """The version already registered from this MLflow run, if any: a re-run of a killed
        retrain finds it instead of registering the same model twice."""
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
        except MlflowException:
            return None
        return str(min(int(v.version) for v in found)) if found else None

    def load_classifier(
        self,
        name: str,
        alias: str | None = None,
        version: str | None = None,
        runtime: str | None = None,
    ) -> Any:
        """The model behind `models:/<name>@<alias>` (or `/<version>`) exactly as the pyfunc
        flavour loads it (`runtime`: another than the version's tag names, e.g. `eager`)."""
        return self.load_pyfunc(name, alias, version, runtime).classifier

    def load_pyfunc(
        self,
        name: str,
        alias: str | None = None,
        version: str | None = None,
        runtime: str | None = None,
    ) -> TextClassifierModel:
        """The pyfunc model behind `models:/<name>@<alias>` (or `/<version>`): its classifier,
        answering with the runtime the version's `runtime` tags name (or `runtime`: the gate
        scores the PyTorch model a candidate was judged as, `eager`), and the text column it
        was trained on."""

        import mlflow.pyfunc

        if version is None:
            version = str(self.client.get_model_version_by_alias(name, alias).version)
        uri = f"models:/{name}/{version}"
        tags = self.client.get_model_version(name, version).tags
        # Only a version registered with an export carries the tags (and declares the keys);
        # one without answers eager whatever is asked.
        runtimes = {key: runtime or tags[key] for key in (RUNTIME, RUNTIME_CUDA) if tags.get(key)}
        with (
            _fluent_uris(self.tracking_uri),
            tempfile.TemporaryDirectory() as scratch,
            warnings.catch_warnings(),
        ):
            # MLflow's advice to add type hints to `predict`: our signature is logged explicitly.
            warnings.filterwarnings("ignore", message=r".*Add type hints to the `predict`")
            model = mlflow.pyfunc.load_model(uri, dst_path=scratch, model_config=runtimes or None)
            loaded: TextClassifierModel = model.unwrap_python_model()
            return loaded


def _requirements() -> list[str]:
    from importlib.metadata import version

    packages = ("mlflow", "torch", "transformers", "tokenizers", "safetensors", "pandas", "numpy")
    return [f"{name}=={version(name).split('+')[0]}" for name in packages]


def aliases_text(aliases: Mapping[str, Any]) -> str:
    """Every alias with its version, `production` first (`@production v3 · @staging v4`)."""
    order = sorted(aliases, key=lambda alias: (alias != PRODUCTION, alias != STAGING, alias))
    return " · ".join(f"@{alias} v{aliases[alias]}" for alias in order)
