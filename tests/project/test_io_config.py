from __future__ import annotations

import os

import pytest

from treadle.errors import UserInputError
from treadle.project.io_config import load_io_config, read_dotenv


def test_env_var_from_the_environment(project, monkeypatch):
    monkeypatch.setenv("TREADLE_TEST_HOST", "db.example.com")
    project.write(
        "io_config.yaml",
        """
        version: 0.1.1
        default:
          DUCKDB_DATABASE: .treadle/warehouse.duckdb
        dev:
          POSTGRES_HOST: "{{ env_var('TREADLE_TEST_HOST') }}"
          POSTGRES_PORT: {{ env_var('TREADLE_TEST_PORT', 5432) }}
        """,
    )
    config = load_io_config(project.root)
    assert config.names == ("default", "dev")
    assert config.profile("dev") == {"POSTGRES_HOST": "db.example.com", "POSTGRES_PORT": 5432}
    assert config.profile() == {"DUCKDB_DATABASE": ".treadle/warehouse.duckdb"}


def test_env_var_falls_back_to_dotenv(project, monkeypatch):
    monkeypatch.delenv("TREADLE_TEST_USER", raising=False)
    monkeypatch.delenv("TREADLE_TEST_PASSWORD", raising=False)
    monkeypatch.setenv("TREADLE_TEST_DB", "from_environment")
    project.write(
        ".env",
        """
        # a comment
        TREADLE_TEST_USER=alice
        export TREADLE_TEST_PASSWORD="p#ss word"
        TREADLE_TEST_DB=from_dotenv
        """,
    )
    project.write(
        "io_config.yaml",
        """
        dev:
          USER: "{{ env_var('TREADLE_TEST_USER') }}"
          PASSWORD: "{{ env_var('TREADLE_TEST_PASSWORD') }}"
          DB: "{{ env_var('TREADLE_TEST_DB') }}"
        """,
    )
    profile = load_io_config(project.root).profile("dev")
    assert profile == {"USER": "alice", "PASSWORD": "p#ss word", "DB": "from_environment"}


def test_read_dotenv_forms(tmp_path):
    file = tmp_path / ".env"
    file.write_text("A=1\n\n# B=2\nC='single'\nD = spaced # note\nnot a pair\nE=\n")
    assert read_dotenv(file) == {"A": "1", "C": "single", "D": "spaced", "E": ""}
    assert read_dotenv(tmp_path / "missing") == {}


def test_missing_env_var_names_it_and_its_line(project, monkeypatch):
    monkeypatch.delenv("TREADLE_TEST_MISSING", raising=False)
    project.write(
        "io_config.yaml",
        """
        version: 0.1.1
        default:
          DUCKDB_DATABASE: x.duckdb
          HOST: "{{ env_var('TREADLE_TEST_MISSING') }}"
        """,
    )
    with pytest.raises(UserInputError) as info:
        load_io_config(project.root).profile("default")
    error = info.value
    assert "TREADLE_TEST_MISSING" in error.message
    assert (error.path, error.line) == ("io_config.yaml", 4)
    assert ".env" in error.hint


def test_variables_come_from_the_run(project):
    project.write(
        "io_config.yaml",
        """
        default:
          SCHEMA: "{{ variables('schema') }}"
          LIMIT: {{ variables('limit') }}
          FALLBACK: {{ variables('other', 'none') }}
        """,
    )
    profile = load_io_config(project.root, {"schema": "raw", "limit": 10}).profile("default")
    assert profile == {"SCHEMA": "raw", "LIMIT": 10, "FALLBACK": "none"}


def test_missing_variable_names_it_and_its_line(project):
    project.write("io_config.yaml", "default:\n  A: 1\n  B: \"{{ variables('schema') }}\"\n")
    config = load_io_config(project.root, {"schemas": "x"})
    with pytest.raises(UserInputError) as info:
        config.profile("default")
    assert "schema" in info.value.message
    assert info.value.line == 3
    assert "schemas" in info.value.hint  # did you mean


def test_undefined_name_in_template(project):
    project.write("io_config.yaml", "dev:\n  A: 1\n  B: '{{ nope }}'\n")
    with pytest.raises(UserInputError, match="nope") as info:
        load_io_config(project.root)
    assert info.value.line == 3


def test_template_syntax_error(project):
    project.write("io_config.yaml", "dev:\n  A: '{{ env_var('X' }}'\n")
    with pytest.raises(UserInputError) as info:
        load_io_config(project.root)
    assert (info.value.path, info.value.line) == ("io_config.yaml", 2)


def test_unknown_profile_lists_the_profiles(project):
    project.write("io_config.yaml", "version: 0.1.1\ndefault: {}\ndev: {}\nprod: {}\n")
    config = load_io_config(project.root)
    with pytest.raises(UserInputError) as info:
        config.profile("staging")
    assert "default, dev, prod" in info.value.message
    with pytest.raises(UserInputError) as info:
        config.profile("prd")
    assert "prod" in info.value.hint


def test_malformed_yaml_has_its_line(project):
    project.write("io_config.yaml", "default:\n  A: 1\n   B: [2\n")
    with pytest.raises(UserInputError, match="malformed YAML") as info:
        load_io_config(project.root)
    assert info.value.path == "io_config.yaml"
    assert info.value.line in (3, 4)


def test_yaml_errors_never_quote_a_secret_value(project, monkeypatch):
    monkeypatch.setenv("TREADLE_TEST_PW", "*hunter2")  # unquoted, YAML reads an alias
    project.write("io_config.yaml", "dev:\n  PASSWORD: {{ env_var('TREADLE_TEST_PW') }}\n")
    with pytest.raises(UserInputError) as info:
        load_io_config(project.root)
    assert "hunter2" not in str(info.value)
    assert info.value.line == 2


def test_profile_must_be_a_mapping(project):
    project.write("io_config.yaml", "version: 0.1.1\ndefault:\n  - a\n")
    with pytest.raises(UserInputError, match="default") as info:
        load_io_config(project.root)
    assert info.value.line == 2


def test_no_file_means_an_empty_default_profile(project):
    config = load_io_config(project.root)
    assert config.profile("default") == {}
    with pytest.raises(UserInputError, match="no io_config.yaml"):
        config.profile("dev")


def test_profile_returns_a_copy(project):
    project.write("io_config.yaml", "default:\n  A: 1\n")
    load_io_config(project.root).profile()["A"] = 2
    assert load_io_config(project.root).profile() == {"A": 1}


def test_cache_follows_the_file_the_environment_and_variables(project, monkeypatch):
    file = project.write("io_config.yaml", "default:\n  A: \"{{ env_var('TREADLE_TEST_A') }}\"\n")
    monkeypatch.setenv("TREADLE_TEST_A", "one")
    first = load_io_config(project.root)
    assert load_io_config(project.root) is first  # rendered once
    monkeypatch.setenv("TREADLE_TEST_A", "two")
    assert load_io_config(project.root).profile() == {"A": "two"}

    file.write_text("default:\n  B: \"{{ variables('b') }}\"\n")
    os.utime(file, ns=(1, 1))  # a new mtime even on a coarse clock
    assert load_io_config(project.root, {"b": 1}).profile() == {"B": "1"}
    assert load_io_config(project.root, {"b": 2}).profile() == {"B": "2"}


def test_dotenv_quoted_value_with_comment(tmp_path):
    file = tmp_path / ".env"
    file.write_text("A=\"x # y\" # note\nB='z'\n")
    assert read_dotenv(file) == {"A": "x # y", "B": "z"}


def test_bad_call_in_template_is_a_user_error(project):
    project.write("io_config.yaml", 'dev:\n  A: "{{ env_var() }}"\n')
    with pytest.raises(UserInputError, match="template error") as info:
        load_io_config(project.root)
    assert info.value.line == 2


def test_commented_out_profile_needs_no_env_vars(project, monkeypatch):
    monkeypatch.delenv("TREADLE_TEST_UNSET", raising=False)
    project.write(
        "io_config.yaml",
        """
        version: 0.1.1
        default:
          DUCKDB_DATABASE: .treadle/w.duckdb
        # dev:
        #   POSTGRES_HOST: "{{ env_var('TREADLE_TEST_UNSET') }}"
        """,
    )
    config = load_io_config(project.root)
    assert config.names == ("default",)
    assert config.profile("default") == {"DUCKDB_DATABASE": ".treadle/w.duckdb"}


def test_a_value_missing_in_one_profile_does_not_stop_the_others(project, monkeypatch):
    monkeypatch.delenv("PROD_PASSWORD", raising=False)
    project.write(
        "io_config.yaml",
        """
        default:
          DUCKDB_DATABASE: x.duckdb
        prod:
          POSTGRES_HOST: db.example.com
          POSTGRES_PASSWORD: "{{ env_var('PROD_PASSWORD') }}"
          POSTGRES_USER: "{{ variables('user') }}"
        """,
    )
    config = load_io_config(project.root)
    assert config.profile("default") == {"DUCKDB_DATABASE": "x.duckdb"}
    with pytest.raises(UserInputError) as info:
        config.profile("prod")
    messages = str(info.value)
    assert "PROD_PASSWORD" in messages and "'user'" in messages and "io_config.yaml:5" in messages
