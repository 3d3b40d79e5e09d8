"""Vector index: ids are DB ids, add/remove/search, atomic persistence, model change, HNSW tombstones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from knowledge_base import vector_index
from knowledge_base.vector_index import FLAT, HNSW, VectorIndex

DIM = 16


def unit(rows: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(rows, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make(tmp_path: Path, name: str = "passages") -> VectorIndex:
    return VectorIndex(name, model="test-model", dim=DIM, directory=tmp_path)


def test_search_returns_db_ids_best_first(tmp_path: Path) -> None:
    index = make(tmp_path)
    vecs = unit(20)
    index.add(list(range(100, 120)), vecs)
    assert len(index) == 20 and index.ids() == set(range(100, 120))
    hits = index.search(vecs[[3, 7]], k=3)
    assert [h[0][0] for h in hits] == [103, 107]
    assert hits[0][0][1] == pytest.approx(1.0, abs=1e-5)
    assert hits[0][0][1] >= hits[0][1][1] >= hits[0][2][1]


def test_add_replaces_existing_ids_and_remove_ignores_unknown(tmp_path: Path) -> None:
    index = make(tmp_path)
    vecs = unit(3)
    index.add([1, 2], vecs[:2])
    index.add([2], vecs[2:3])  # id 2 gets a new vector, not a second one
    assert len(index) == 2
    assert index.search(vecs[2:3], 1)[0][0][0] == 2
    assert index.remove([2, 99]) == 1
    assert index.ids() == {1}


def test_bad_input_is_refused_without_changing_the_index(tmp_path: Path) -> None:
    index = make(tmp_path)
    index.add([1], unit(1))
    with pytest.raises(ValueError, match="16-d"):
        index.add([2], np.ones((1, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="duplicate"):
        index.add([3, 3], unit(2))
    assert index.ids() == {1}


def test_empty_index_and_k_larger_than_size(tmp_path: Path) -> None:
    index = make(tmp_path)
    assert index.search(unit(2), 5) == [[], []]
    index.add([1, 2], unit(2))
    assert len(index.search(unit(1, seed=3), 10)[0]) == 2


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    index = make(tmp_path)
    vecs = unit(10)
    index.add(list(range(10)), vecs)
    index.remove([4])
    index.save()
    manifest = json.loads((tmp_path / "passages.json").read_text())
    assert manifest["model"] == "test-model" and manifest["dim"] == DIM and manifest["count"] == 9
    assert not list(tmp_path.glob("*.tmp"))
    loaded = VectorIndex.load("passages", model="test-model", dim=DIM, directory=tmp_path)
    assert loaded.reset_reason is None
    assert loaded.ids() == set(range(10)) - {4}
    assert loaded.search(vecs[5:6], 1)[0][0][0] == 5
    np.testing.assert_allclose(loaded.vectors([7]), vecs[7:8])


def test_model_change_is_detected(tmp_path: Path) -> None:
    index = make(tmp_path)
    index.add([1], unit(1))
    index.save()
    other = VectorIndex.load("passages", model="another-model", dim=DIM, directory=tmp_path)
    assert len(other) == 0 and "another-model" in (other.reset_reason or "")
    assert VectorIndex.load("verdicts", model="test-model", dim=DIM, directory=tmp_path).reset_reason


def test_corrupt_file_starts_empty_instead_of_crashing(tmp_path: Path) -> None:
    index = make(tmp_path)
    index.add([1], unit(1))
    index.save()
    (tmp_path / "passages.faiss").write_bytes(b"not a faiss index")
    loaded = VectorIndex.load("passages", model="test-model", dim=DIM, directory=tmp_path)
    assert len(loaded) == 0 and "unreadable" in (loaded.reset_reason or "")


def test_large_index_switches_to_hnsw_with_tombstones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vector_index, "HNSW_MIN_VECTORS", 50)
    index = make(tmp_path)
    vecs = unit(200, seed=1)
    index.add(list(range(40)), vecs[:40])
    assert index.kind == FLAT
    index.add(list(range(40, 200)), vecs[40:])
    assert index.kind == HNSW and len(index) == 200
    assert index.search(vecs[150:151], 1)[0][0][0] == 150

    index.remove([150, 151])  # tombstoned, never returned
    assert 150 not in {i for i, _ in index.search(vecs[150:151], 5)[0]}
    assert len(index) == 198 and 150 not in index.ids()
    index.save()
    loaded = VectorIndex.load("passages", model="test-model", dim=DIM, directory=tmp_path)
    assert loaded.kind == HNSW and loaded.ids() == set(range(200)) - {150, 151}

    loaded.add([150], vecs[150:151])  # re-adding a tombstoned id compacts first
    assert loaded.search(vecs[150:151], 1)[0][0][0] == 150
    loaded.remove(list(range(100)))  # many tombstones: compacted away
    assert loaded.ids() == set(range(100, 200)) - {151}
    assert loaded.search(vecs[120:121], 1)[0][0][0] == 120


def test_load_trusts_the_index_file_over_a_manifest_from_another_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes may save at once: index from one, manifest from the other."""
    monkeypatch.setattr(vector_index, "HNSW_MIN_VECTORS", 50)
    index = make(tmp_path)
    vecs = unit(80, seed=2)
    index.add(list(range(80)), vecs)
    index.remove([3])
    index.save()
    manifest_path = tmp_path / "passages.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.update(kind=FLAT, count=70, tombstones=[5, 6])  # written by a process with other contents
    manifest_path.write_text(json.dumps(manifest))
    loaded = VectorIndex.load("passages", model="test-model", dim=DIM, directory=tmp_path)
    assert loaded.kind == HNSW
    assert {5, 6} <= loaded.ids()  # foreign tombstones ignored
    assert loaded.search(vecs[5:6], 1)[0][0][0] == 5
