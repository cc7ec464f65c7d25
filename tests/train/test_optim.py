"""Optimiser parameter groups: model hook, config patterns, first match wins, typo errors."""

import pytest
import torch

from graphlearn.errors import ConfigError
from graphlearn.models.omega import OmegaGCN
from graphlearn.train.config import resolve_config
from graphlearn.train.optim import build_optimizer, parameter_groups


def _options(groups):
    return {name: {k: v for k, v in g.items() if k not in ("params", "names")}
            for g in groups for name in g["names"]}


def test_no_weight_decay_hook_exempts_omega_only():
    model = OmegaGCN(5, 3, hidden_channels=4, num_layers=2)
    options = _options(parameter_groups(model))
    assert options["convs.0.conv.omega"] == {"weight_decay": 0.0}
    assert options["convs.1.conv.omega"] == {"weight_decay": 0.0}
    assert options["open.weight"] == {}
    assert options["convs.0.lin.weight"] == {}


def test_patterns_set_options_and_first_match_wins():
    model = OmegaGCN(5, 3, hidden_channels=4, num_layers=2)
    groups = parameter_groups(model, {"convs.*.lin.weight": {"lr": 1e-4},
                                      "convs.*": {"lr": 0.5},
                                      "close.*": {"weight_decay": 0.0}})
    options = _options(groups)
    assert options["convs.1.lin.weight"] == {"lr": 1e-4}
    # the omega keeps its hook exemption and takes the second pattern's lr
    assert options["convs.0.conv.omega"] == {"weight_decay": 0.0, "lr": 0.5}
    assert options["close.bias"] == {"weight_decay": 0.0}
    assert options["open.weight"] == {}
    # every trainable parameter is in exactly one group
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())


def test_optimizer_uses_the_groups():
    model = OmegaGCN(5, 3, hidden_channels=4, num_layers=2)
    opt = build_optimizer(model, "adam", 0.01, 5e-4, {"convs.*.lin.weight": {"lr": 1e-4}})
    by_param = {id(p): g for g in opt.param_groups for p in g["params"]}
    assert by_param[id(model.convs[0].lin.weight)]["lr"] == 1e-4
    assert by_param[id(model.convs[0].lin.weight)]["weight_decay"] == 5e-4
    assert by_param[id(model.open.weight)]["lr"] == 0.01
    assert by_param[id(model.convs[0].conv.omega)]["weight_decay"] == 0.0


def test_pattern_matching_nothing_is_a_config_error_with_close_names():
    model = OmegaGCN(5, 3, hidden_channels=4, num_layers=2)
    with pytest.raises(ConfigError, match="match no parameter.*convs.0.lin.weight"):
        parameter_groups(model, {"convs.*.lin.weigth": {"lr": 1e-4}})


def test_unknown_optimizer_and_config_validation():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ConfigError, match="not supported"):
        build_optimizer(model, "lamb", 0.1, 0.0)
    cfg = resolve_config(None, {"optim.param_groups": {"w*": {"lr": 0.1}}})
    assert cfg.optim.param_groups == {"w*": {"lr": 0.1}}
    with pytest.raises(ConfigError, match="param_groups"):
        resolve_config(None, {"optim.param_groups": {"w*": {"momentum": 0.9}}})


def test_adam_uses_the_fused_step_on_cpu_and_matches_the_default():
    torch.manual_seed(0)
    model = OmegaGCN(5, 3, hidden_channels=4, num_layers=2, dropout=0.0)
    reference = OmegaGCN(5, 3, hidden_channels=4, num_layers=2, dropout=0.0)
    reference.load_state_dict(model.state_dict())
    opt = build_optimizer(model, "adam", 0.01, 5e-4)
    assert all(g["fused"] for g in opt.param_groups)
    ref_opt = torch.optim.Adam(
        [{"params": [p for n, p in reference.named_parameters() if not n.endswith("omega")]},
         {"params": reference.omegas, "weight_decay": 0.0}], lr=0.01, weight_decay=5e-4)
    x = torch.randn(6, 5)
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    for _ in range(3):
        for m, o in ((model, opt), (reference, ref_opt)):
            o.zero_grad()
            m(x, edge_index).square().sum().backward()
            o.step()
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not build_optimizer(model, "sgd", 0.01, 0.0).defaults.get("fused")


def test_adagrad_is_available_for_kbc_style_training():
    """ComplEx-N3 (Lacroix et al., 2018) trains with Adagrad: ``optim.name: adagrad``."""
    model = torch.nn.Linear(3, 2)
    opt = build_optimizer(model, "adagrad", 0.1, 0.0)
    assert isinstance(opt, torch.optim.Adagrad) and opt.defaults["lr"] == 0.1
    assert resolve_config(None, {"optim.name": "adagrad"}).optim.name == "adagrad"


def test_lr_decay_adds_an_exponential_schedule_per_epoch():
    from graphlearn.train.optim import build_optimization

    model = torch.nn.Linear(3, 2)
    assert isinstance(build_optimization(model, "adam", 0.01, 0.0), torch.optim.Adam)
    out = build_optimization(model, "adam", 0.01, 0.0, lr_decay=0.9)
    schedule = out["lr_scheduler"]["scheduler"]
    assert out["lr_scheduler"]["interval"] == "epoch" and schedule.optimizer is out["optimizer"]
    for _ in range(2):
        out["optimizer"].step()
        schedule.step()
    assert out["optimizer"].param_groups[0]["lr"] == pytest.approx(0.01 * 0.81)
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError, match="optim.lr_decay"):
            build_optimization(model, "adam", 0.01, 0.0, lr_decay=bad)


def test_config_names_exactly_the_optimizers_build_optimizer_knows():
    """``OptimSection.name`` (config validation without torch) and ``OPTIMIZERS`` list the
    same names, so a name added to one cannot be missing from the other."""
    from typing import get_args

    from graphlearn.train.config import OptimSection
    from graphlearn.train.optim import OPTIMIZERS

    assert set(get_args(OptimSection.model_fields["name"].annotation)) == set(OPTIMIZERS)
