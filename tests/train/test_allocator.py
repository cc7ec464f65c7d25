import sys

import pytest

from graphlearn.train import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_keep_freed_memory_sets_glibc_thresholds(monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert allocator.keep_freed_memory() is True


def test_user_malloc_settings_are_left_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert allocator.keep_freed_memory() is False


@pytest.mark.parametrize("value", ["0", "false", "No", "off"])
def test_env_switch_turns_it_off(monkeypatch, value):
    monkeypatch.setenv(allocator.ENV, value)
    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(1) or True)
    assert allocator.keep_freed_memory_from_env() is False and not calls
    monkeypatch.setenv(allocator.ENV, "1")
    assert allocator.keep_freed_memory_from_env() is True and calls == [1]


def test_off_linux_it_does_nothing(monkeypatch):
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False
