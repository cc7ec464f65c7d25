import pytest

from graphlearn.errors import GraphLearnError, InvalidArgumentError, UnknownNameError
from graphlearn.registry import Registry, normalize_name


def test_lookup_ignores_case_and_separators():
    reg = Registry("model")
    reg.register("gatv2", 1, aliases=("gat-v2-alias",))
    assert reg.get("GATv2") == 1
    assert reg.get("gat_v2") == 1
    assert reg.get("GAT-V2-ALIAS") == 1
    assert reg.canonical("Gat-V2-Alias") == "gatv2"
    assert reg.names() == ["gatv2"]
    assert "G_A_T_V_2" in reg
    assert normalize_name("FB15k-237") == "fb15k237"


def test_miss_lists_sorted_choices_and_suggests():
    reg = Registry("dataset", hint="run `graphlearn datasets list`")
    for name in ("cora", "citeseer", "pubmed"):
        reg.register(name, name)
    with pytest.raises(UnknownNameError) as info:
        reg.get("coar")
    msg = str(info.value)
    assert "unknown dataset 'coar'" in msg
    assert "Did you mean 'cora'?" in msg
    assert "Choices: citeseer, cora, pubmed" in msg
    assert "graphlearn datasets list" in msg
    assert isinstance(info.value, KeyError) and isinstance(info.value, GraphLearnError)


def test_duplicate_registration_is_an_error():
    reg = Registry("model")
    reg.register("a", 1)
    reg.register("a", 1)  # re-registering the same object is harmless
    with pytest.raises(InvalidArgumentError, match="already registered"):
        reg.register("A", 2)


def test_decorator_and_build():
    reg = Registry("model")

    @reg.register("double")
    def double(x):
        return 2 * x

    assert reg.build("double", 4) == 8
    assert list(reg.items()) == [("double", double)]
