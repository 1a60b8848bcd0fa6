"""Every ``confide`` command the README and docs/ show exists and answers ``--help``
through the installed entry point (``.venv/bin/confide``), so a doc that names a
command or an option that does not exist, or a command left unmounted, fails here."""

from __future__ import annotations

import tomllib

import pytest
import typer.main

from confide.cli import app

from .._entry_point import run_confide
from ._docs import REPO, Mention, documented, mentions, resolve

ROOT = typer.main.get_command(app)
DOCUMENTED = documented(ROOT)
PATHS = sorted({r.path for r in DOCUMENTED if r.error is None})


def test_every_command_and_option_the_docs_show_exists() -> None:
    errors = [f"{r.mention.where}: {r.error}" for r in DOCUMENTED if r.error is not None]
    assert not errors, "\n".join(errors)


def test_the_docs_show_the_commands_users_start_with() -> None:
    # The extraction itself must keep finding what the README advertises.
    for path in [("serve",), ("demo",), ("encrypt",), ("decrypt",), ("attest",),
                 ("user", "login"), ("task", "invoke"), ("enclave-info", "sign")]:
        assert path in PATHS, f"no doc shows `confide {' '.join(path)}`"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "confide")
def test_documented_command_answers_help_through_the_entry_point(path: tuple[str, ...]) -> None:
    proc = run_confide(*path, "--help", timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Usage: confide {' '.join(path)}".rstrip() in proc.stdout
    assert "Traceback" not in proc.stderr


def test_entry_point_is_the_cli_package() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"confide": "confide.cli:main"}


def test_an_unmounted_command_answers_no_such_command_through_the_entry_point() -> None:
    proc = run_confide("frobnicate", "--help", timeout=60)
    assert proc.returncode == 1 and "No such command" in proc.stderr  # 1: usage (docs/cli.md)


# -- the extraction catches wrong docs ------------------------------------------
def _errors(markdown: str) -> list[str]:
    return [r.error or "" for m in mentions(markdown, "doc.md")
            for r in resolve(ROOT, m) if r.error is not None]


def test_doc_naming_a_command_that_does_not_exist_is_reported() -> None:
    assert _errors("Run `confide frobnicate -d x`.") == ["`confide frobnicate`: no such command"]
    assert _errors("```bash\n.venv/bin/confide user logon alice\n```") == [
        "`confide user logon`: no such command"]


def test_doc_naming_an_option_that_does_not_exist_is_reported() -> None:
    assert _errors("`confide encrypt --algo aes-gcm-128 -k … -i f -o f.enc`") == [
        "`confide encrypt` has no option --algo"]


def test_each_alternative_of_a_doc_is_checked() -> None:
    assert _errors("`confide task create|approve|launch …`") == [
        "`confide task launch`: no such command"]


def test_prose_and_python_blocks_are_not_commands() -> None:
    text = ("confide frobnicates in prose.\n```python\n# confide frobnicate\n```\n"
            "```bash\nmake demo   # installs confide in .venv\n```\n"
            "`confide.client` and `confide-data` are not commands.")
    assert list(mentions(text, "doc.md")) == []


def test_arguments_and_placeholders_after_a_command_are_not_subcommands() -> None:
    found = [resolve(ROOT, m) for m in mentions(
        "`confide user login alice -d confide-data` and `confide attest HOST:PORT -d DIR` "
        "and `confide function register …`", "doc.md")]
    assert [[(r.path, r.error) for r in rs] for rs in found] == [
        [(("user", "login"), None)], [(("attest",), None)], [(("function", "register"), None)]]
    words = ("user", "login", "alice", "-d", "confide-data")
    assert found[0][0].mention == Mention("doc.md:1", words)
