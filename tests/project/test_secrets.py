"""The encrypted secret store: `treadle secrets`, `{{ secret('x') }}`, masking."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from treadle.errors import UserInputError
from treadle.project.io_config import load_io_config
from treadle.project.secrets import SECRETS_FILE, SecretStore

TREADLE = [sys.executable, "-m", "treadle.cli"]


@pytest.fixture(autouse=True)
def _key_outside_the_project(tmp_path, monkeypatch):
    monkeypatch.delenv("TREADLE_SECRET_KEY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def treadle(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TREADLE, *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_set_list_delete_with_the_cli_never_shows_the_value(project, tmp_path) -> None:
    done = treadle(
        "secrets", "set", "pg_password", "--project", str(project.root), stdin="s3cr3t-value\n"
    )
    assert done.returncode == 0, done.stderr
    assert "s3cr3t-value" not in done.stdout
    stored = (project.root / SECRETS_FILE).read_text()
    assert "s3cr3t-value" not in stored and "pg_password" in stored
    assert oct(os.stat(project.root / SECRETS_FILE).st_mode)[-3:] == "600"
    key = tmp_path / "config" / "treadle" / "secret.key"
    assert key.is_file() and oct(key.stat().st_mode)[-3:] == "600"
    listed = treadle("secrets", "list", "--project", str(project.root), "--json")
    assert [r["name"] for r in json.loads(listed.stdout)] == ["pg_password"]
    assert "s3cr3t-value" not in listed.stdout
    assert (
        treadle("secrets", "delete", "pg_password", "--project", str(project.root)).returncode == 0
    )
    assert SecretStore(project.root).names() == []
    wrong = treadle("secrets", "delete", "pg_pasword", "--project", str(project.root))
    assert wrong.returncode == 2


def test_io_config_reads_a_secret(project) -> None:
    SecretStore(project.root).set("pg_password", "hunter2-secret")
    project.write("io_config.yaml", "dev:\n  POSTGRES_PASSWORD: \"{{ secret('pg_password') }}\"\n")
    assert load_io_config(project.root).profile("dev") == {"POSTGRES_PASSWORD": "hunter2-secret"}


def test_a_missing_secret_names_itself_and_its_line(project) -> None:
    project.write("io_config.yaml", "default: {}\ndev:\n  P: \"{{ secret('nope') }}\"\n")
    config = load_io_config(project.root)
    assert config.profile("default") == {}
    with pytest.raises(UserInputError, match="secret 'nope' is not set") as info:
        config.profile("dev")
    assert info.value.line == 3 and "treadle secrets set nope" in info.value.hint


def test_another_key_cannot_read_it(project, monkeypatch) -> None:
    SecretStore(project.root).set("token", "abc-123-secret")
    from cryptography.fernet import Fernet

    monkeypatch.setenv("TREADLE_SECRET_KEY", Fernet.generate_key().decode())
    with pytest.raises(UserInputError, match="cannot be decrypted"):
        SecretStore(project.root).get("token")


def test_secret_values_are_masked_in_block_logs(project) -> None:
    from treadle.engine.api import run_pipeline

    SecretStore(project.root).set("api_thing", "very-hidden-9876")
    project.block(
        "custom",
        "talk",
        "from treadle import custom\n\n@custom\ndef talk():\n    print('using very-hidden-9876')\n",
    )
    project.pipeline("p", "blocks:\n  - {name: talk, type: custom}\n")
    result = run_pipeline(project.root, "p")
    log = (project.root / ".treadle/logs" / result.run_id / "talk.log").read_text()
    assert "very-hidden-9876" not in log and "using ***" in log


def test_bad_names_are_refused(project) -> None:
    with pytest.raises(UserInputError, match="not a valid secret name"):
        SecretStore(project.root).set("../x", "v")


def test_a_run_that_decrypts_a_secret_leaves_an_audit_event_with_its_name_only(project) -> None:
    import treadle
    from treadle.project import load_project
    from treadle.scheduler.history import history
    from treadle.store.audit import AuditStore

    SecretStore(project.root).set("api_key", "s3cr3t-value-123")
    project.write("io_config.yaml", "vendor:\n  API_KEY: \"{{ secret('api_key') }}\"\n")
    project.block(
        "data_loaders",
        "load",
        """
        from treadle import data_loader
        from treadle.io.base import read_profile

        @data_loader
        def load():
            return len(read_profile("vendor")[1]["API_KEY"])
        """,
    )
    project.pipeline("p", "blocks:\n  - {name: load, type: data_loader}\n")
    result = treadle.run_pipeline(project.root, "p")
    assert result.ok, result.blocks["load"].error
    assert result.output("load") == len("s3cr3t-value-123")
    with history(load_project(project.root)) as store:
        events = AuditStore(store).events(action="secret.read")
    assert [(e.action, e.target, e.origin) for e in events] == [("secret.read", "api_key", "run")]
    assert events[0].actor == f"run {result.run_id}" and events[0].detail["block"] == "load"
    assert "s3cr3t-value-123" not in str(events[0].to_dict())
