"""Project files over the API: list, read, write (atomically, never leaving the project
invalid), delete — and no path, however written, reaches outside the project or its
hidden files, for any role."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import unquote

import pytest

from treadle.store.access import Role

FILES = "/api/v1/files"
CONTENT = "/api/v1/files/content"
OUTSIDE_TEXT = "OUTSIDE-SECRET-3b9e"
DOTENV_SECRET = "dotenv-secret-5a1f"
LEAKS = (OUTSIDE_TEXT, DOTENV_SECRET, "root:x:0:0")


@pytest.fixture
def outside(server, tmp_path) -> Path:
    """A folder beside the project, and links into it (and to .env) from inside."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text(OUTSIDE_TEXT + "\n")
    root = server.project.root
    server.project.write(".env", f"DB_PASSWORD={DOTENV_SECRET}\n")
    os.symlink(folder, root / "link_out")
    os.symlink(folder / "secret.txt", root / "link_file")
    os.symlink(root / ".env", root / "env_link")
    os.symlink(root / ".treadle", root / "state_link")
    return folder


def _tree(top: Path) -> dict[str, object]:
    """Every file, folder and link under ``top`` (the metadata database left out: the
    audit trail writes to it), with file contents."""
    found: dict[str, object] = {}
    for folder, folders, files in os.walk(top):
        for name in folders + files:
            path = Path(folder) / name
            key = str(path.relative_to(top))
            if key.startswith("project/.treadle/treadle.db") or "__pycache__" in key:
                continue
            if path.is_symlink():
                found[key] = ("link", os.readlink(path))
            elif path.is_file():
                found[key] = path.read_bytes()
            else:
                found[key] = "folder"
    return found


def _audit(server, action: str) -> list[dict]:
    return server.client(Role.ADMIN).get("/api/v1/audit", params={"action": action}).json()


# -- paths that must not work --------------------------------------------------------------

# (id, the path, whether it goes into the URL as it is: the server decodes it once)
ATTACKS = [
    ("parent", "../outside/secret.txt", False),
    ("parent-passwd", "../../../../../../etc/passwd", False),
    ("absolute", "/etc/passwd", False),
    ("absolute-outside", "{outside}/secret.txt", False),
    ("encoded-once", "..%2f..%2fetc%2fpasswd", True),
    ("encoded-once-outside", "..%2foutside%2fsecret.txt", True),
    ("encoded-twice", "%252e%252e%252foutside%252fsecret.txt", True),
    ("encoded-twice-bare", "%252e%252e%252f", True),
    ("backslashes", "data\\..\\..\\outside\\secret.txt", False),
    ("windows-drive", "C:\\Windows\\x", False),
    ("windows-drive-slash", "C:/Windows/x", False),
    ("up-from-inside", "pipelines/../../outside/secret.txt", False),
    ("dot-then-up", "./../outside/secret.txt", False),
    ("nul-byte", "pipelines/etl/pipeline.yaml\x00.txt", False),
    ("nul-encoded", "treadle.yaml%00", True),
    ("link-to-outside-folder", "link_out/secret.txt", False),
    ("link-to-outside-file", "link_file", False),
    ("link-to-outside-new-file", "link_out/new.txt", False),
    ("metadata-db", ".treadle/treadle.db", False),
    ("state-folder", ".treadle", False),
    ("dotenv", ".env", False),
    ("link-to-dotenv", "env_link", False),
    ("link-into-state", "state_link/treadle.db", False),
    ("git", ".git/config", False),
]
ROLES = [Role.VIEWER, Role.EDITOR, Role.ADMIN]
ATTACK_PATHS = [attack[1:] for attack in ATTACKS]
ATTACK_IDS = [attack[0] for attack in ATTACKS]


def _send(client, method: str, url: str, path: str, raw: bool):
    """``path`` as a query parameter: as it is in the URL (``raw``: the server decodes
    it once), or encoded once by the client."""
    if raw:
        return client.request(method, f"{url}?path={path}")
    return client.request(method, url, params={"path": path})


@pytest.mark.parametrize(("path", "raw"), ATTACK_PATHS, ids=ATTACK_IDS)
def test_no_path_reads_outside_the_project_or_its_hidden_files(server, outside, path, raw) -> None:
    path = path.replace("{outside}", str(outside))
    for role in ROLES:
        client = server.client(role)
        for url in (CONTENT, FILES):
            answer = _send(client, "GET", url, path, raw)
            assert answer.status_code == 403, (role, url, answer.status_code, answer.text)
            assert not any(leak in answer.text for leak in LEAKS)


@pytest.mark.parametrize(("path", "raw"), ATTACK_PATHS, ids=ATTACK_IDS)
def test_no_path_writes_or_deletes_outside_the_project_or_its_hidden_files(
    server, outside, tmp_path, path, raw
) -> None:
    path = path.replace("{outside}", str(outside))
    bodies = [path, unquote(path)] if raw else [path]  # JSON: the server decodes nothing
    before = _tree(tmp_path)
    for role in ROLES:
        client = server.client(role)
        for body_path in bodies:
            written = client.put(CONTENT, json={"path": body_path, "text": "owned\n"})
            assert written.status_code == 403, (role, body_path, written.text)
        deleted = _send(client, "DELETE", FILES, path, raw)
        assert deleted.status_code == 403, (role, deleted.text)
    assert _tree(tmp_path) == before
    assert (outside / "secret.txt").read_text() == OUTSIDE_TEXT + "\n"
    assert not Path("/x").exists() and not Path("/etc/passwd").read_text().startswith("owned")
    assert _audit(server, "file.*") == []


def test_a_refusal_says_why(server, outside) -> None:
    answer = server.client(Role.ADMIN).get(CONTENT, params={"path": "../outside/secret.txt"})
    assert answer.status_code == 403
    body = answer.json()
    assert body["error"] == "PathRefused" and "go up" in body["hint"]
    link = server.client(Role.ADMIN).get(CONTENT, params={"path": "env_link"}).json()
    assert "hidden" in link["hint"]


def test_a_folder_link_pointing_outside_is_not_listed(server, outside) -> None:
    names = [e["name"] for e in server.client(Role.VIEWER).get(FILES).json()["entries"]]
    for hidden in ("link_out", "link_file", "env_link", "state_link", ".env", ".treadle"):
        assert hidden not in names


# -- listing -------------------------------------------------------------------------------


def test_list_the_project_folder(server) -> None:
    server.project.write(".gitignore", ".treadle/\n")
    os.symlink(server.project.root / "data_loaders/load.py", server.project.root / "alias.py")
    answer = server.client(Role.VIEWER).get(FILES)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["path"] == ""
    entries = {e["name"]: e for e in body["entries"]}
    assert [e["name"] for e in body["entries"]][:3] == ["data_loaders", "pipelines", "transformers"]
    assert entries["pipelines"]["kind"] == "folder" and entries["pipelines"]["size"] is None
    assert entries["treadle.yaml"]["kind"] == "file"
    assert entries["treadle.yaml"]["size"] == len("name: test_project\n")
    assert entries["treadle.yaml"]["modified"].endswith("Z")
    assert ".gitignore" in entries and "alias.py" in entries  # a link inside is fine
    assert ".treadle" not in entries


def test_list_a_subfolder(server) -> None:
    answer = server.client(Role.VIEWER).get(FILES, params={"path": "pipelines/etl"})
    assert answer.status_code == 200
    assert answer.json() == {
        "path": "pipelines/etl",
        "entries": [
            {
                "name": "pipeline.yaml",
                "path": "pipelines/etl/pipeline.yaml",
                "kind": "file",
                "size": (server.project.root / "pipelines/etl/pipeline.yaml").stat().st_size,
                "modified": answer.json()["entries"][0]["modified"],
            }
        ],
    }


def test_listing_a_file_or_nothing(server) -> None:
    viewer = server.client(Role.VIEWER)
    assert viewer.get(FILES, params={"path": "treadle.yaml"}).status_code == 422
    assert viewer.get(FILES, params={"path": "nope"}).status_code == 404
    assert server.anonymous().get(FILES).status_code == 401


# -- reading -------------------------------------------------------------------------------


def test_read_a_file(server) -> None:
    answer = server.client(Role.VIEWER).get(CONTENT, params={"path": "pipelines/etl/pipeline.yaml"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = (server.project.root / "pipelines/etl/pipeline.yaml").read_text()
    assert body["text"] == expected and body["size"] == len(expected.encode())
    assert body["path"] == "pipelines/etl/pipeline.yaml"


def test_viewers_see_known_secrets_masked_editors_do_not(server) -> None:
    server.project.write(".env", f"DB_PASSWORD={DOTENV_SECRET}\n")
    server.project.write("notes.txt", f"the password is {DOTENV_SECRET}\n")
    viewer = server.client(Role.VIEWER).get(CONTENT, params={"path": "notes.txt"}).json()
    assert viewer["text"] == "the password is ***\n" and viewer["masked"] is True
    editor = server.client(Role.EDITOR).get(CONTENT, params={"path": "notes.txt"}).json()
    assert DOTENV_SECRET in editor["text"] and editor["masked"] is False


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text"),
        (b"caf\xe9", "not UTF-8 text"),
        (b"x" * (1024 * 1024 + 1), "over 1 MB"),
    ],
    ids=["binary", "latin-1", "too-large"],
)
def test_binary_or_large_files_are_422(server, content, words) -> None:
    (server.project.root / "data.bin").write_bytes(content)
    answer = server.client(Role.VIEWER).get(CONTENT, params={"path": "data.bin"})
    assert answer.status_code == 422
    assert words in answer.json()["message"]


def test_reading_a_folder_nothing_or_no_path(server) -> None:
    viewer = server.client(Role.VIEWER)
    assert viewer.get(CONTENT, params={"path": "pipelines"}).status_code == 422
    assert viewer.get(CONTENT, params={"path": "nope.py"}).status_code == 404
    assert viewer.get(CONTENT).status_code == 422
    assert viewer.get(CONTENT, params={"path": ""}).status_code == 422


def test_a_special_file_is_not_opened(server) -> None:
    os.mkfifo(server.project.root / "pipe")
    answer = server.client(Role.VIEWER).get(CONTENT, params={"path": "pipe"})
    assert answer.status_code == 422


# -- writing -------------------------------------------------------------------------------


def test_write_a_new_file_making_its_folders(server) -> None:
    answer = server.client(Role.EDITOR).put(
        CONTENT, json={"path": "docs/notes/readme.md", "text": "héllo\n"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["created"] is True and body["size"] == len("héllo\n".encode())
    assert (server.project.root / "docs/notes/readme.md").read_text() == "héllo\n"
    [event] = _audit(server, "file.written")
    assert (event["actor"], event["target"]) == ("editor", "docs/notes/readme.md")
    assert event["detail"] == {"bytes": 7, "created": True}


def test_overwrite_atomically_keeping_the_mode(server) -> None:
    path = server.project.write("notes.txt", "old\n")
    path.chmod(0o640)
    answer = server.client(Role.EDITOR).put(CONTENT, json={"path": "notes.txt", "text": "new\n"})
    assert answer.status_code == 200 and answer.json()["created"] is False
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in server.project.root.iterdir() if ".tmp" in p.name) == []


def test_a_valid_change_to_a_pipeline_is_saved_and_the_scheduler_follows(server) -> None:
    text = "blocks:\n  - name: load\n    type: data_loader\n"
    answer = server.client(Role.EDITOR).put(
        CONTENT, json={"path": "pipelines/report/pipeline.yaml", "text": text}
    )
    assert answer.status_code == 200, answer.text
    assert "report" in server.scheduler.project.pipelines


@pytest.mark.parametrize(
    ("path", "text", "words"),
    [
        ("data_loaders/load.py", "def load(:\n", "syntax error"),
        ("data_loaders/load.py", "def load():\n    return 1\n", "data_loaders/load.py"),
        ("pipelines/etl/pipeline.yaml", "blocks:\n  - name: nope\n    type: data_loader\n", "nope"),
        ("pipelines/etl/pipeline.yaml", "blocks: [\n", "malformed YAML"),
        ("pipelines/etl/triggers.yaml", "triggers:\n  - name: x\n    schedule: nope\n", "nope"),
        ("pipelines/etl/triggers.yaml", "triggers:\n  - name: x\n    after: ghost\n", "ghost"),
        (
            "pipelines/new/pipeline.yaml",
            "blocks:\n  - name: ghost\n    type: transformer\n",
            "ghost",
        ),
        ("io_config.yaml", "default:\n  X: \"{{ env_var('A' }}\"\n", "io_config.yaml"),
    ],
    ids=[
        "block-syntax",
        "block-without-decorator",
        "pipeline-unknown-block",
        "pipeline-malformed",
        "triggers-bad-cron",
        "triggers-unknown-after",
        "new-pipeline-folder",
        "io-config-template",
    ],
)
def test_a_change_that_breaks_the_project_is_undone_with_the_problems(
    server, path, text, words
) -> None:
    root = server.project.root
    before = _tree(root.parent)
    answer = server.client(Role.EDITOR).put(CONTENT, json={"path": path, "text": text})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert "would become invalid" in body["message"] and words in body["message"]
    assert "left as it was" in body["hint"]
    assert _tree(root.parent) == before  # restored (or removed, with the folders it made)
    assert _audit(server, "file.written") == []


def test_an_already_invalid_project_may_still_be_edited(server) -> None:
    server.project.pipeline("broken", "blocks:\n  - name: ghost\n")
    editor = server.client(Role.EDITOR)
    fine = editor.put(CONTENT, json={"path": "pipelines/etl/pipeline.yaml", "text": "blocks:\n  - name: load\n    type: data_loader\n"})  # fmt: skip
    assert fine.status_code == 200, fine.text
    worse = editor.put(CONTENT, json={"path": "data_loaders/load.py", "text": "def (\n"})
    assert worse.status_code == 422


def test_a_broken_project_still_checks_triggers(server) -> None:
    server.project.pipeline("broken", "blocks:\n  - name: ghost\n")
    answer = server.client(Role.EDITOR).put(
        CONTENT,
        json={"path": "pipelines/etl/triggers.yaml", "text": "triggers:\n  - name: x\n"},
    )
    assert answer.status_code == 422 and "without a schedule" in answer.json()["message"]
    assert not (server.project.root / "pipelines/etl/triggers.yaml").exists()


def test_a_broken_file_written_again_must_come_out_valid(server) -> None:
    path = server.project.pipeline("broken", "blocks:\n  - name: ghost\n")
    editor = server.client(Role.EDITOR)
    still = editor.put(CONTENT, json={"path": "pipelines/broken/pipeline.yaml", "text": "blocks: 3\n"})  # fmt: skip
    assert still.status_code == 422
    assert path.read_text() == "blocks:\n  - name: ghost\n"
    fixed = editor.put(CONTENT, json={"path": "pipelines/broken/pipeline.yaml", "text": "blocks: []\n"})  # fmt: skip
    assert fixed.status_code == 200, fixed.text


def test_text_that_is_not_unicode_is_422(server) -> None:
    answer = server.client(Role.EDITOR).put(
        CONTENT,
        content=b'{"path": "notes.txt", "text": "a\\ud800b"}',
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert "not valid Unicode" in answer.json()["message"]
    assert not (server.project.root / "notes.txt").exists()


def test_treadle_yaml_is_for_admins(server) -> None:
    path = server.project.root / "treadle.yaml"
    change = {"path": "treadle.yaml", "text": "name: test_project\nauth: false\n"}
    answer = server.client(Role.EDITOR).put(CONTENT, json=change)
    assert answer.status_code == 403 and "admin" in answer.json()["message"]
    assert server.client(Role.EDITOR).delete(FILES, params={"path": "treadle.yaml"}).status_code == 403  # fmt: skip
    assert path.read_text() == "name: test_project\n"
    bad = server.client(Role.ADMIN).put(CONTENT, json={"path": "treadle.yaml", "text": "executor: nope\n"})  # fmt: skip
    assert bad.status_code == 422 and "executor" in bad.json()["message"]
    assert path.read_text() == "name: test_project\n"
    good = server.client(Role.ADMIN).put(CONTENT, json={"path": "treadle.yaml", "text": "name: renamed\n"})  # fmt: skip
    assert good.status_code == 200
    assert path.read_text() == "name: renamed\n"
    gone = server.client(Role.ADMIN).delete(FILES, params={"path": "treadle.yaml"})
    assert gone.status_code == 422 and "not a Treadle project" in gone.json()["message"]
    assert path.read_text() == "name: renamed\n"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"path": "pipelines", "text": "x"}, 422, "is a folder"),
        ({"path": "", "text": "x"}, 422, "not the project folder"),
        ({"path": "big.txt", "text": "x" * (1024 * 1024 + 1)}, 422, "over 1 MB"),
        ({"path": "treadle.yaml/x.txt", "text": "x"}, 422, "cannot change"),
        ({"path": "notes.txt"}, 422, "text"),
        ({"path": "notes.txt", "text": "x", "mode": 777}, 422, "mode"),
    ],
)
def test_bad_writes_are_4xx(server, body, status, words) -> None:
    answer = server.client(Role.EDITOR).put(CONTENT, json=body)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["message"]
    assert "/tmp" not in answer.text  # the server's own paths stay private
    assert not (server.project.root / "big.txt").exists()


def test_viewers_and_anonymous_callers_may_not_write(server) -> None:
    change = {"path": "notes.txt", "text": "x"}
    assert server.client(Role.VIEWER).put(CONTENT, json=change).status_code == 403
    assert server.anonymous().put(CONTENT, json=change).status_code == 401
    assert not (server.project.root / "notes.txt").exists()


# -- deleting ------------------------------------------------------------------------------


def test_delete_a_file_and_an_empty_folder(server) -> None:
    server.project.write("docs/notes.md", "x\n")
    editor = server.client(Role.EDITOR)
    assert editor.delete(FILES, params={"path": "docs"}).status_code == 409
    assert editor.delete(FILES, params={"path": "docs/notes.md"}).status_code == 204
    assert editor.delete(FILES, params={"path": "docs"}).status_code == 204
    assert not (server.project.root / "docs").exists()
    assert editor.delete(FILES, params={"path": "docs/notes.md"}).status_code == 404
    assert [e["target"] for e in _audit(server, "file.deleted")] == ["docs", "docs/notes.md"]


def test_a_file_the_project_needs_is_not_deleted(server) -> None:
    path = server.project.root / "transformers/double.py"
    before = path.read_bytes()
    answer = server.client(Role.EDITOR).delete(FILES, params={"path": "transformers/double.py"})
    assert answer.status_code == 422
    assert "not deleted" in answer.json()["message"] and "double" in answer.json()["message"]
    assert path.read_bytes() == before
    assert _audit(server, "file.deleted") == []


def test_viewers_may_not_delete(server) -> None:
    server.project.write("notes.txt", "x\n")
    assert server.client(Role.VIEWER).delete(FILES, params={"path": "notes.txt"}).status_code == 403
    assert (server.project.root / "notes.txt").exists()
    assert server.client(Role.EDITOR).delete(FILES, params={"path": ""}).status_code == 422
