"""The three-party flow through ``confide console``, in a real browser (Debian's chromium).

A ``confide serve`` runs; admin registers acme, alice and bob with the CLI, each
logged in under a profile of its own. Each party then runs ``confide -p NAME
console``: alice uploads her input and registers her output in her console;
bob, alice and acme each approve on the review page; alice starts the task,
sees it finish and downloads her output there. The screenshots it takes are the
ones docs/cli.md and README.md show (set CONFIDE_UPDATE_SCREENSHOTS=1 to
refresh docs/images/).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._entry_point import CONFIDE
from tests.platform._server import Server

from ._docs import REPO
from .test_readme_cli import cli_env

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
IMAGES = REPO / "docs" / "images"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.is_file(),
                       reason="/usr/bin/chromium is missing: apt-get install chromium "
                              "(scripts/bootstrap.sh dev installs it)"),
]

SETUP = """
set -euo pipefail
echo teaclave | confide -p admin user login admin -d confide-data --password-stdin
echo pw-acme | confide -p admin user register acme FunctionOwner --password-stdin
echo pw-alice | confide -p admin user register alice DataOwner --attribute bank-a --password-stdin
echo pw-bob | confide -p admin user register bob DataOwner --attribute bank-b --password-stdin
echo pw-acme | confide -p acme user login acme -d confide-data --password-stdin
echo pw-alice | confide -p alice user login alice -d confide-data --password-stdin
echo pw-bob | confide -p bob user login bob -d confide-data --password-stdin
confide -p acme function register builtin-private-join-and-compute \
  --executor-type builtin --private --allow bank-a --allow bank-b --argument num_user \
  --input input_data0 --input input_data1 --output output_data0 --output output_data1 > fid
printf 'id2 : 5\\nid3 : 7\\n' > b.txt
confide -p bob file upload b.txt > b_in
confide -p bob file new-output --name b-out.txt > b_out
"""


class ConsoleProcess:
    """``confide -p NAME console`` in a subprocess; its printed login URL."""

    def __init__(self, profile: str, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([str(CONFIDE), "-p", profile, "console"], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        lines = [self.proc.stdout.readline() for _ in range(3)]
        m = re.search(r"(http://127\.0\.0\.1:(\d+))/login\?token=\S+", "".join(lines))
        if m is None:
            self.stop()
            raise AssertionError(f"no console URL: {lines} {self.proc.stderr}")
        self.login_url, self.base, self.port = m.group(0), m.group(1), int(m.group(2))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    server = Server(tmp_path / "confide-data").start()
    env = cli_env(server, tmp_path / "home")
    try:
        proc = subprocess.run(["bash", "-c", SETUP], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        yield tmp_path, env
    finally:
        server.stop()


def confide(cwd: Path, env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([str(CONFIDE), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_three_parties_approve_run_and_download_through_their_consoles(
        world: tuple[Path, dict[str, str]]) -> None:
    from playwright.sync_api import expect, sync_playwright

    cwd, env = world
    shots = cwd / "shots"
    shots.mkdir()
    consoles = {name: ConsoleProcess(name, cwd, env) for name in ("alice", "bob", "acme")}
    try:
        # Without the secret, nothing: the console is only its user's.
        bare = httpx.get(consoles["alice"].base + "/files")
        assert bare.status_code == 403
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            pages = {}
            for name, c in consoles.items():
                context = browser.new_context(viewport={"width": 1100, "height": 560},
                                              accept_downloads=True)
                page = context.new_page()
                page.goto(c.login_url)
                assert page.url == c.base + "/", page.url  # the token left the address bar
                expect(page.locator("#me")).to_have_text(name)
                pages[name] = page

            # alice encrypts and uploads her input in her console, with progress.
            alice = pages["alice"]
            (cwd / "a.txt").write_text("id1 : 10\nid2 : 20\n")
            alice.goto(consoles["alice"].base + "/files")
            alice.set_input_files("#upload-file", str(cwd / "a.txt"))
            alice.click("#upload")
            expect(alice.locator("#upload-status")).to_contain_text("Uploaded a.txt as input-")
            a_in = alice.locator("#upload-status").get_attribute("data-data-id")
            assert a_in is not None and a_in.startswith("input-")
            alice.wait_for_url(consoles["alice"].base + "/files")
            alice.fill("#output-name", "a-out.txt")
            alice.click("#new-output")
            expect(alice.locator(".notice")).to_have_text("A new output was registered.")
            a_out = alice.locator('#files tr[data-kind="output"]').get_attribute("data-id")
            assert a_out is not None and a_out.startswith("output-")
            alice.screenshot(path=str(shots / "console-files.png"), full_page=True)

            # alice creates the task and each bank assigns its data (the CLI: the console
            # reviews and decides; it does not compose tasks).
            fid = (cwd / "fid").read_text().strip()
            tid = confide(cwd, env, "-p", "alice", "task", "create", fid, "--executor",
                          "builtin", "--arguments", '{"num_user": 2}',
                          "--input-owner", "input_data0=alice", "--input-owner",
                          "input_data1=bob", "--output-owner", "output_data0=alice",
                          "--output-owner", "output_data1=bob")
            confide(cwd, env, "-p", "alice", "task", "assign", tid,
                    f"--input=input_data0={a_in}", f"--output=output_data0={a_out}")
            confide(cwd, env, "-p", "bob", "task", "assign", tid,
                    f"--input=input_data1={(cwd / 'b_in').read_text().strip()}",
                    f"--output=output_data1={(cwd / 'b_out').read_text().strip()}")

            # bob finds it awaiting his approval, reviews it, approves.
            bob = pages["bob"]
            bob.goto(consoles["bob"].base + "/")
            bob.click(f"#pending a[href='/tasks/{tid}']")
            expect(bob.locator("#function-owner")).to_have_text("acme")
            expect(bob.locator("#code-hash")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
            expect(bob.locator("#arguments")).to_contain_text('"num_user": 2')
            expect(bob.locator("#data")).to_contain_text(a_in)
            bob.screenshot(path=str(shots / "console-review.png"), full_page=True)
            bob.click("#approve")
            expect(bob.locator(".notice")).to_have_text("You approved the task.")
            expect(bob.locator("#approve")).to_be_disabled()

            for name in ("alice", "acme"):
                page = pages[name]
                page.goto(f"{consoles[name].base}/tasks/{tid}")
                page.click("#approve")
                expect(page.locator(".notice")).to_have_text("You approved the task.")

            # alice watches her tasks (live state) and starts it from its page.
            alice.goto(consoles["alice"].base + "/tasks")
            row = alice.locator(f'#tasks tr[data-task="{tid}"]')
            expect(row.locator('[data-field="status"]')).to_have_text("Approved")
            alice.goto(f"{consoles['alice'].base}/tasks/{tid}")
            alice.click("#invoke")
            expect(alice.locator(".notice")).to_have_text("The task was started.")
            # The page polls the state and shows the result once the task ends.
            expect(alice.locator("#state")).to_have_text("Finished", timeout=60_000)
            expect(alice.locator("#result")).to_contain_text("Result:", timeout=10_000)
            alice.goto(consoles["alice"].base + "/tasks")
            expect(row.locator('[data-field="status"]')).to_have_text("Finished")
            alice.screenshot(path=str(shots / "console-tasks.png"))

            # Each bank downloads its own output: verified and decrypted in its console.
            alice.goto(f"{consoles['alice'].base}/tasks/{tid}")
            with alice.expect_download() as got:
                alice.click(f"a.download[href='/files/{a_out}/download']")
            assert Path(got.value.path()).read_text() == "id2, 25\n"
            assert got.value.suggested_filename == "a-out.txt"
            bob.goto(consoles["bob"].base + "/files")
            with bob.expect_download() as got:
                bob.click('#files tr[data-kind="output"] a.download')
            assert Path(got.value.path()).read_text() == "id2, 25\n"

            # The audit log is the platform administrator's: alice is told so.
            alice.goto(consoles["alice"].base + "/audit?q=task")
            expect(alice.locator("#audit-refused")).to_contain_text("administrators only")
            # ... and shown, verified, her own entries: those of the task she took part in.
            alice.goto(f"{consoles['alice'].base}/audit?task={tid}")
            expect(alice.locator("#audit-tree-head")).to_contain_text("Verified against")
            expect(alice.locator("#participant-audit")).to_contain_text("invoke_task")
            expect(alice.locator("#participant-audit")).to_contain_text(tid)
            expect(alice.locator("#participant-audit")).to_contain_text("Z")  # RFC 3339 UTC
            alice.screenshot(path=str(shots / "console-audit.png"))
            browser.close()
    finally:
        for c in consoles.values():
            c.stop()
    # The console's upload is the profile's: the CLI finds its key.
    assert a_in in confide(cwd, env, "-p", "alice", "file", "keys")
    for shot in shots.iterdir():
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("CONFIDE_UPDATE_SCREENSHOTS") == "1":
            IMAGES.mkdir(exist_ok=True)
            shutil.copyfile(shot, IMAGES / shot.name)
