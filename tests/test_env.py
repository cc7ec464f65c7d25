import pytest

from graphlearn.env import env_flag


@pytest.mark.parametrize(("value", "expected"), [
    ("1", True), (" TRUE ", True), ("yes", True), ("On", True),
    ("0", False), ("false", False), (" No", False), ("OFF", False),
    ("", None), ("maybe", None), ("2", None)])
def test_env_flag_reads_on_off_and_leaves_the_rest_to_the_caller(monkeypatch, value, expected):
    monkeypatch.setenv("GRAPHLEARN_TEST_FLAG", value)
    assert env_flag("GRAPHLEARN_TEST_FLAG") is expected
    monkeypatch.delenv("GRAPHLEARN_TEST_FLAG")
    assert env_flag("GRAPHLEARN_TEST_FLAG") is None
