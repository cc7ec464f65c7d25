import inspect
from pathlib import Path

import pytest
from graphlearn.kg.task import check_task_options

from graphlearn.errors import ConfigError
from graphlearn.models.registry import MODELS
from graphlearn.train.config import RunConfig, load_config, parse_assignment, resolve_config


def test_defaults_are_the_quickstart_run():
    cfg = resolve_config()
    assert cfg.dataset.name == "karate" and cfg.model.name == "gatv2"
    assert cfg.seed is None and cfg.trainer.max_epochs == 200


def test_overrides_shortcuts_and_dotted_keys():
    cfg = resolve_config(None, {"model": "gatv2", "dataset": "cora", "epochs": 7, "seed": 3,
                                "optim.lr": 0.01, "model.heads": 4,
                                "dataset.options.normalize_features": True})
    assert cfg.trainer.max_epochs == 7 and cfg.seed == 3 and cfg.optim.lr == 0.01
    assert cfg.model.hyperparameters() == {"heads": 4}
    assert cfg.dataset.options == {"normalize_features": True}


def test_unknown_key_names_the_key_and_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        resolve_config(None, {"trainer.max_epoch": 3})
    msg = str(info.value)
    assert "'trainer.max_epoch'" in msg and "max_epochs" in msg
    with pytest.raises(ConfigError, match="'optimizer' is not recognised; valid keys at the top level"):
        resolve_config({"optimizer": {"lr": 1}})


def test_bad_value_names_key_and_value():
    with pytest.raises(ConfigError) as info:
        resolve_config(None, {"optim.lr": -1})
    assert "'optim.lr'" in str(info.value) and "-1" in str(info.value)
    with pytest.raises(ConfigError, match="'trainer.max_epochs'"):
        resolve_config(None, {"epochs": "many"})
    with pytest.raises(ConfigError, match="'optim.name'"):
        resolve_config(None, {"optim.name": "lamb"})


def test_setting_inside_a_value_is_an_error():
    with pytest.raises(ConfigError, match="is a value, not a section"):
        resolve_config({"seed": 1}, {"seed.x": 1})


def test_yaml_file_roundtrip_and_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 1\nmodel:\n  name: gatv2\n  heads: 2\ntrainer:\n  max_epochs: 5\n")
    cfg = resolve_config(path, {"epochs": 9})
    assert cfg.seed == 1 and cfg.trainer.max_epochs == 9 and cfg.model.hyperparameters() == {"heads": 2}
    assert RunConfig.model_validate(cfg.to_dict()) == cfg

    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(scalar)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_parse_assignment():
    assert parse_assignment("optim.lr=0.01") == ("optim.lr", 0.01)
    assert parse_assignment("trainer.patience=null") == ("trainer.patience", None)
    assert parse_assignment("dataset.name=cora") == ("dataset.name", "cora")
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignment("optim.lr")
    with pytest.raises(ConfigError, match="malformed"):
        parse_assignment("optim..lr=1")


CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_configs_are_shipped():
    assert len(CONFIGS) >= 30


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_names_real_options(path):
    # a config edit (a new model key, a task option) must not wait for a long run to fail
    cfg = resolve_config(path)
    spec = MODELS.get(cfg.model.name)
    params = inspect.signature(spec.cls).parameters
    hyper = {k for k in cfg.model.model_dump() if k != "name"}
    assert hyper <= set(params), f"{path.name}: unknown model keys {sorted(hyper - set(params))}"
    if cfg.task:
        check_task_options(cfg.task)
