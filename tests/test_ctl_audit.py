"""smartcronctl train and model take their defaults from --config / --user, as the other
commands that read the daemon's state do."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from click.testing import CliRunner

from smartcron.cli.ctl import main


def config_file(tmp_path: Path, **extra: str) -> Path:
    conf = tmp_path / "smartcron.toml"
    lines = [f'state_dir = "{tmp_path / "state"}"', f'run_dir = "{tmp_path / "run"}"']
    lines += [f'{key} = "{value}"' for key, value in extra.items()]
    conf.write_text("\n".join(lines) + "\n")
    return conf


def test_train_defaults_to_the_configurations_history_and_model_dir(tmp_path, monkeypatch):
    seen = {}

    def fake_train(history, out, **kw):
        seen.update(history=str(history), out=str(out))
        return SimpleNamespace(card={"fake": True}, out=out)

    monkeypatch.setattr("smartcron.ai.train.train", fake_train)
    conf = config_file(tmp_path, model_dir=str(tmp_path / "mymodels"))
    result = CliRunner().invoke(main, ["train", "--config", str(conf), "--user", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"fake": True}
    assert seen == {
        "history": str(tmp_path / "state" / "history.db"),
        "out": str(tmp_path / "mymodels"),
    }


def test_train_without_a_history_names_the_configurations_database(tmp_path):
    conf = config_file(tmp_path)
    result = CliRunner().invoke(main, ["train", "--config", str(conf), "--user"])
    assert result.exit_code == 1
    assert f"{tmp_path / 'state' / 'history.db'}: no history database" in result.output


def test_model_defaults_to_the_configurations_model_dir(tmp_path):
    conf = config_file(tmp_path)
    result = CliRunner().invoke(main, ["model", "--config", str(conf), "--user", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["dir"] == str(tmp_path / "state" / "models") and not data["accepted"]
