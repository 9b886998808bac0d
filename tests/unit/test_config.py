"""params.yaml validation: clear errors naming the key, frozen values, shrinking by dotted keys."""

import pytest
from pydantic import ValidationError

from modelyard.config import ConfigError, Params, Settings, load_params


def test_repo_params_load(real_params):
    assert real_params.data.labels == ("negative", "neutral", "positive")
    assert real_params.model.backbone == "minilm"
    assert real_params.promotion.mode == "auto"


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  epochs: 1\n  learnig_rate: 0.1\n")
    with pytest.raises(ConfigError) as error:
        load_params(path)
    assert "train.learnig_rate: unknown key" in str(error.value)
    assert str(path) in str(error.value)


def test_unknown_section_is_named(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("trian:\n  epochs: 1\n")
    with pytest.raises(ConfigError, match="trian: unknown key"):
        load_params(path)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("train:\n  epochs: 0\n", "train.epochs"),
        ("train:\n  learning_rate: lots\n", "train.learning_rate"),
        ("gate:\n  min_accuracy: 1.5\n", "gate.min_accuracy"),
        ("gate:\n  primary_metric: auc\n", "gate.primary_metric"),
        ("data:\n  labels: [a, a]\n", "data"),
        ("data:\n  test_size: 0.5\n  val_size: 0.45\n", "data"),
        ("model:\n  name: 'has spaces'\n", "model.name"),
        ("promotion:\n  mode: yolo\n", "promotion.mode"),
    ],
)
def test_bad_values_are_named(tmp_path, text, where):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_params(path)
    assert f"  {where}" in str(error.value)


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    with pytest.raises(ConfigError, match="no such params file"):
        load_params(tmp_path / "absent.yaml")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_params(scalar)


def test_empty_file_means_defaults(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("")
    assert load_params(path) == Params()


def test_frozen_and_updated(real_params):
    with pytest.raises(ValidationError):
        real_params.train.epochs = 5  # type: ignore[misc]
    shrunk = real_params.updated({"train.epochs": 1, "model.backbone": "tiny"})
    assert (shrunk.train.epochs, shrunk.model.backbone) == (1, "tiny")
    assert real_params.train.epochs != 1 or real_params.model.backbone != "tiny"
    with pytest.raises(ConfigError, match="train.epochs: Input should be greater than or equal"):
        real_params.updated({"train.epochs": -1})
    with pytest.raises(ConfigError, match="train.nonsense: unknown key"):
        real_params.updated({"train.nonsense": 1})
    with pytest.raises(ConfigError, match="override nope.x: unknown key 'nope'"):
        real_params.updated({"nope.x": 1})


def test_digest_tracks_every_param(real_params):
    assert real_params.digest() == real_params.updated({}).digest()
    assert real_params.digest() != real_params.updated({"train.seed": 1}).digest()


def test_settings_resolve_tracking_uri(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings(home=tmp_path)
    assert settings.resolved_tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert Settings(home=tmp_path).resolved_tracking_uri() == "http://mlflow:5000"
    monkeypatch.setenv("MODELYARD_TRACKING_URI", "sqlite:///x.db")
    assert Settings().resolved_tracking_uri() == "sqlite:///x.db"


def test_artifact_root_only_for_the_embedded_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert Settings(home=tmp_path).artifact_root() == (tmp_path / "mlruns").resolve().as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert Settings(home=tmp_path).artifact_root() is None


@pytest.mark.parametrize(
    ("given", "cores"),
    [("6,7", (6, 7)), ("4-7", (4, 5, 6, 7)), (" 0, 4-5,4 ", (0, 4, 5)), ("", ())],
)
def test_shadow_cpus_read_as_taskset_writes_them(given, cores, monkeypatch):
    monkeypatch.setenv("MODELYARD_SHADOW_CPUS", given)
    assert Settings().shadow_cpus == cores


@pytest.mark.parametrize("given", ["a", "7-4", "1,-2", "3-"])
def test_a_shadow_cpus_that_is_not_a_core_list_is_refused_naming_the_part(given, monkeypatch):
    monkeypatch.setenv("MODELYARD_SHADOW_CPUS", given)
    with pytest.raises(ValidationError, match="shadow_cpus") as raised:
        Settings()
    assert "not a core number or a range like 4-7" in str(raised.value)
