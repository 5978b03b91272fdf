"""End to end: two people answer in headless Chromium, the server is killed with SIGKILL and restarted,
and nothing they answered is lost. The page's screenshots are saved as test artifacts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from semsim_metric.annotate.storage import Campaign
from tests.annotate_helpers import make_unannotated_dataset
from tests.helpers import chromium_path

ROOT = Path(__file__).resolve().parents[1]
#: where the screenshots go (CI keeps this folder as the run's artifacts)
ARTIFACTS = Path(os.environ.get("SEMSIM_TEST_ARTIFACTS", ROOT / "test-artifacts"))


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "playwright"], check=False, timeout=600)
        from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``semsim annotate serve`` in a subprocess of its own (so that SIGKILL kills the real server)."""

    def __init__(self, dataset: Path, campaign: Path, port: int) -> None:
        self.cmd = [
            sys.executable,
            "-m",
            "semsim_metric.cli",
            "annotate",
            "serve",
            str(dataset),
            "--campaign",
            str(campaign),
            "--port",
            str(port),
            "--votes-per-item",
            "2",
            "--originals",
        ]
        self.port = port
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited: {self.proc.stdout.read()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the server did not start within 120 s")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def _start(page, url: str, name: str) -> None:
    page.goto(url)
    page.fill("#name", name)
    page.click("#join-form button[type=submit]")
    page.wait_for_selector("#work:not([hidden])")
    page.wait_for_function(
        "() => document.getElementById('picture').complete && "
        "document.getElementById('picture').naturalWidth > 0"
    )


def _press(page, key: str, name: str, answered: int) -> None:
    page.keyboard.press(key)
    page.wait_for_function(
        f"() => document.getElementById('progress').textContent.startsWith('{name}: {answered} answered')"
    )
    page.wait_for_function("() => document.getElementById('picture').complete")


@pytest.mark.slow
def test_two_annotators_in_chromium_survive_a_killed_server(browser, tmp_path):
    from semsim_metric.data.sources import FASHION_MNIST_CLASSES

    dataset = make_unannotated_dataset(tmp_path / "to-annotate", originals_per_split=1)
    campaign_file = tmp_path / "campaign.sqlite"
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    server = Server(dataset, campaign_file, port)
    server.start()
    try:
        alice, bob = browser.new_page(viewport={"width": 1100, "height": 640}), browser.new_page()
        dialogs, console = [], []
        alice.on("console", lambda m: console.append(m.text))
        _start(alice, url, "alice")
        _start(bob, url, "bob")
        code = alice.inner_text("#resume-code")  # shown once, at join
        assert len(code) >= 20
        # the protocol's page: a large, pixelated image, every class with its key, and "cannot recognise"
        style = alice.evaluate(
            "(() => { const s = getComputedStyle(document.getElementById('picture'));"
            " return [s.imageRendering, s.width]; })()"
        )
        assert style == ["pixelated", "448px"]
        buttons = alice.locator("#answers button").all_inner_texts()
        assert len(buttons) == len(FASHION_MNIST_CLASSES) + 1 and buttons[1] == "2Trouser"
        assert buttons[-1] == "xI cannot recognise anything"
        for n, key in enumerate(["2", "x", "8"], start=1):  # Trouser, cannot recognise, Sneaker
            _press(alice, key, "alice", n)
        _press(bob, "1", "bob", 1)
        _press(bob, "x", "bob", 2)
        _press(bob, "u", "bob", 1)  # undo the last answer: that image is shown again
        _press(bob, "5", "bob", 2)  # Coat
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        alice.screenshot(path=str(ARTIFACTS / "annotate-app.png"))
        status = browser.new_page()
        status.goto(url + "status")
        status.wait_for_selector("#status table")
        status.screenshot(path=str(ARTIFACTS / "annotate-status.png"), full_page=True)
        assert "Fleiss' kappa" in status.inner_text("body")

        server.kill()  # SIGKILL: no shutdown handler runs
        before = Campaign(campaign_file).answers()
        assert [(a["annotator"], a["answer"]) for a in before] == [
            ("alice", 1),
            ("alice", -1),
            ("alice", 7),
            ("bob", 0),
            ("bob", 4),
        ]
        assert [r["answer"] for r in Campaign(campaign_file).retracted()] == [-1]
        server.start()

        # a restarted server resumes where each of them stopped: the browser is still signed in as alice
        alice.reload()
        alice.wait_for_function(
            "() => document.getElementById('progress').textContent.startsWith('alice: 3 answered')"
        )
        alice.wait_for_function("() => document.getElementById('picture').complete")
        _press(alice, "3", "alice", 4)  # Pullover
        after = Campaign(campaign_file).answers()
        assert after[:5] == before and (after[5]["annotator"], after[5]["answer"]) == ("alice", 2)
        assert (
            len({a["item_id"] for a in after if a["annotator"] == "alice"}) == 4
        )  # never the same image twice

        # another browser cannot take over the name; the resume code shown to alice can
        carol = browser.new_page()
        carol.goto(url)
        carol.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        carol.fill("#name", "Alice")
        carol.click("#join-form button[type=submit]")
        carol.wait_for_timeout(500)
        assert dialogs and "is taken" in dialogs[0]
        carol.click("summary")
        carol.fill("#resume", code)
        carol.click("#join-form button[type=submit]")
        carol.wait_for_function(
            "() => document.getElementById('progress').textContent.startsWith('alice: 4 answered')"
        )
        # the page ran under its Content-Security-Policy without a violation (the inline script is allowed by hash)
        assert not [m for m in console if "Content Security Policy" in m], console
    finally:
        server.stop()
