import io
import os
import pickle
import pickletools
from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse as sp

from graphlearn.data.safe_pickle import PLANETOID_GLOBALS, _canonical, safe_load
from graphlearn.errors import DataFormatError, DataNotFoundError, UnsafeFileError

PLANETOID_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph")


class _RunsShell:
    """Unpickling this runs ``touch <marker>`` through os.system (if the loader lets it)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _CallsEval:
    def __reduce__(self):
        return eval, ("1 + 1",)


def _globals_of(data: bytes) -> set[tuple[str, str]]:
    out = set()
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("GLOBAL", "INST"):
            out.add(_canonical(*arg.split(" ", 1)))
    return out


def test_allowlist_is_exactly_what_the_planetoid_files_need(data_root):
    root = data_root("planetoid/cora/raw", "planetoid/citeseer/raw", "planetoid/pubmed/raw")
    needed = set()
    for folder in sorted((root / "planetoid").glob("*/raw")):
        for path in folder.glob("ind.*"):
            if not path.name.endswith("test.index"):
                needed |= _globals_of(path.read_bytes())
    assert needed == set(PLANETOID_GLOBALS)


def test_loads_real_planetoid_pickles(data_root):
    folder = data_root("planetoid/cora/raw") / "planetoid" / "cora" / "raw"
    x = safe_load(folder / "ind.cora.x")
    assert isinstance(x, sp.csr_matrix) and x.shape == (140, 1433)
    y = safe_load(folder / "ind.cora.y")
    assert isinstance(y, np.ndarray) and y.shape == (140, 7) and (y.sum(1) == 1).all()
    graph = safe_load(folder / "ind.cora.graph")
    assert isinstance(graph, defaultdict) and len(graph) == 2708
    with open(folder / "ind.cora.ally", "rb") as f:  # an open file works too
        assert safe_load(f).shape == (1708, 7)


def test_modern_numpy_and_scipy_spellings_map_onto_the_allowlist():
    arr = safe_load(io.BytesIO(pickle.dumps(np.arange(6.0).reshape(2, 3), protocol=4)))
    assert arr.shape == (2, 3) and arr[1, 2] == 5.0
    mat = safe_load(io.BytesIO(pickle.dumps(sp.csr_matrix(np.eye(3)), protocol=4)))
    assert isinstance(mat, sp.csr_matrix) and mat.nnz == 3


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_code_in_a_pickle_is_refused_and_never_runs(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "ind.cora.graph"
    path.write_bytes(pickle.dumps(_RunsShell(marker), protocol=protocol))
    with pytest.raises(UnsafeFileError) as info:
        safe_load(path)
    msg = str(info.value)
    assert str(path) in msg
    assert f"{os.system.__module__}.system" in msg  # posix.system on Linux
    assert "not trusted code" in msg
    assert not marker.exists()
    assert isinstance(info.value, pickle.UnpicklingError)


def test_builtins_beyond_list_are_refused():
    with pytest.raises(UnsafeFileError, match=r"(__builtin__|builtins)\.eval"):
        safe_load(io.BytesIO(pickle.dumps(_CallsEval(), protocol=2)))


def test_code_hidden_inside_an_object_array_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    arr = np.array([_RunsShell(marker), 1], dtype=object)
    with pytest.raises(UnsafeFileError):
        safe_load(io.BytesIO(pickle.dumps(arr, protocol=4)))
    assert not marker.exists()


def test_persistent_ids_are_refused():
    class WithPid(pickle.Pickler):
        def persistent_id(self, obj):
            return "ref" if obj == "secret" else None

    buf = io.BytesIO()
    WithPid(buf, protocol=2).dump(["secret"])
    buf.seek(0)
    with pytest.raises(UnsafeFileError, match="persistent id"):
        safe_load(buf)


def test_custom_allowlist():
    data = pickle.dumps(np.arange(3), protocol=4)
    with pytest.raises(UnsafeFileError, match="only admits none"):
        safe_load(io.BytesIO(data), allowed=frozenset())
    assert safe_load(io.BytesIO(pickle.dumps({"a": [1, 2]}, protocol=2)), allowed=frozenset()) == {
        "a": [1, 2]
    }


def test_truncated_pickle_is_a_format_error(tmp_path, data_root):
    src = data_root("planetoid/cora/raw") / "planetoid" / "cora" / "raw" / "ind.cora.allx"
    path = tmp_path / "ind.cora.allx"
    path.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(DataFormatError) as info:
        safe_load(path)
    assert str(path) in str(info.value) and "truncated or corrupt" in str(info.value)


@pytest.mark.parametrize("content", [b"", b"not a pickle at all\n", b"\x80\x02}q\x00(K\x01"])
def test_garbage_is_a_format_error(tmp_path, content):
    path = tmp_path / "ind.cora.y"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match="ind.cora.y"):
        safe_load(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        safe_load(tmp_path / "nope.pkl")
    with pytest.raises(DataFormatError, match="could not be opened"):
        safe_load(tmp_path)
