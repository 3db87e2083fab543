"""End to end in a real headless Chromium (Debian's, driven by Playwright; no browser download).

`jobrag ui` serves the app on 127.0.0.1 with the local SmolLM2 LLM over the UI test home (real MiniLM collections).
The test asks a question, waits for the streamed cited answer, opens a source, checks a hostile listing shows
literally (and runs nothing), switches the embedder, runs the A/B and Reports pages (waiting until both report charts have
drawn their bars), and saves screenshots and the measured page latencies under test-output/e2e/ (reported, never asserted).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path(os.environ.get("JOBRAG_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
OUT = Path(__file__).resolve().parents[2] / "test-output" / "e2e"
pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: `make browser` installs Debian's chromium")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(ui_home: Path, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("ui-server") / "server.log"
    env = {**os.environ, "JOBRAG_HOME": str(ui_home), "JOBRAG_LLM__MODE": "local"}
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "rag_app.cli", "ui", "--port", str(port)], env=env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise AssertionError(f"UI did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def assistant(page, index: int):
    return page.get_by_test_id("stChatMessage").filter(has=page.get_by_test_id("stChatMessageAvatarAssistant")).nth(index)


def ask(page, question: str, index: int, figures: dict, name: str) -> str:
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    started = time.perf_counter()
    box.press("Enter")
    message = assistant(page, index)
    message.get_by_test_id("stMarkdown").first.wait_for(timeout=120_000)
    figures[f"{name}: first text visible s"] = round(time.perf_counter() - started, 2)
    message.get_by_test_id("stCaptionContainer").filter(has_text="via").wait_for(timeout=300_000)  # written after the answer
    figures[f"{name}: full answer s"] = round(time.perf_counter() - started, 2)
    caption = message.get_by_test_id("stCaptionContainer").filter(has_text="via").inner_text()
    if m := re.search(r"first token (\d+) ms", caption):
        figures[f"{name}: model first token (server) ms"] = int(m.group(1))
    return message.inner_text()


def chart_marks(chart, timeout_s: float = 60) -> dict:
    """What a Vega chart element has drawn, polled until something is (or the timeout): SVG bar marks (non-empty
    `mark-rect` paths), or for the canvas renderer whether any pixel is inked (neither transparent nor white)."""
    chart.wait_for(timeout=timeout_s * 1000)
    deadline = time.time() + timeout_s
    while not ((drawn := chart.evaluate(DRAWN_JS)).get("bars") or drawn.get("inked")) and time.time() < deadline:
        time.sleep(0.25)
    return drawn


DRAWN_JS = """el => {
        const svg = el.querySelector("svg.marks");
        if (svg) {
            const bars = [...svg.querySelectorAll("g.mark-rect > path")].filter(p => { const b = p.getBBox(); return b.width > 0 && b.height > 0; });
            return {renderer: "svg", bars: bars.length};
        }
        const canvas = el.querySelector("canvas");
        if (!canvas) return {renderer: "none (still a skeleton)"};
        const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        for (let i = 0; i < px.length; i += 4) {
            if (px[i + 3] > 0 && (px[i] < 250 || px[i + 1] < 250 || px[i + 2] < 250)) return {renderer: "canvas", inked: true};
        }
        return {renderer: "canvas", inked: false};
    }"""


def test_browser_chat_sources_switch_ab_reports(server: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    figures: dict[str, float] = {}
    dialogs: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        fetched = []
        page.on("request", lambda r: fetched.append(r.url))
        try:
            started = time.perf_counter()
            page.goto(server, wait_until="domcontentloaded")
            page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)
            figures["chat input visible s"] = round(time.perf_counter() - started, 2)
            page.get_by_test_id("stSpinner").wait_for(state="detached", timeout=180_000)  # the LLM warms up once per server
            figures["page ready (LLM loaded) s"] = round(time.perf_counter() - started, 2)

            text = ask(page, "registered nurse jobs", 0, figures, "local LLM answer")
            assert re.search(r"\[sample-\d{4}\]", text), text[:500]
            source = assistant(page, 0).get_by_test_id("stExpander").first
            source.locator("summary").click()
            source.get_by_test_id("stText").first.wait_for()
            assert "company:" in source.inner_text() and "score:" in source.inner_text()
            page.screenshot(path=str(OUT / "chat.png"), full_page=True)

            llm_radio = page.get_by_test_id("stSidebar").get_by_test_id("stRadio").filter(has_text="LLM")
            llm_radio.get_by_text("none", exact=True).click()  # sources-only from here: the local LLM was timed above
            ask(page, "night shift warehouse forklift", 1, figures, "no-LLM answer")
            hostile = assistant(page, 1).get_by_test_id("stExpander").filter(has_text="evil-1").first
            hostile.locator("summary").click()
            assert "<script>alert('pwned')</script>" in hostile.inner_text()  # shown as text
            page.screenshot(path=str(OUT / "hostile.png"), full_page=True)

            text = ask(page, "remote data engineer jobs paying over $80k", 2, figures, "understood constraints, no-LLM answer")
            chips = assistant(page, 2).get_by_test_id("stButtonGroup")
            assert "remote" in chips.inner_text() and "pays ≥ $80,000 a year" in chips.inner_text()
            assert "every constraint (remote; pays ≥ $80,000 a year)" in text, text[:400]
            page.screenshot(path=str(OUT / "chips.png"), full_page=True)
            started = time.perf_counter()
            chips.get_by_role("button", name="remote", exact=True).click()  # drop one: the question runs again without it
            assistant(page, 2).get_by_text(re.compile(r"every constraint \(pays ≥ \$80,000 a year\)")).wait_for(timeout=120_000)
            figures["dropping a chip: new answer s"] = round(time.perf_counter() - started, 2)
            assert page.get_by_test_id("stChatMessageAvatarAssistant").count() == 3  # the same turn, answered again
            page.screenshot(path=str(OUT / "chips-dropped.png"), full_page=True)

            page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()
            page.get_by_role("option", name=re.compile("minilm-3layer")).click()
            text = ask(page, "pharmacy technician", 3, figures, "switched embedder, no-LLM answer")
            assert "minilm-3layer" in text
            page.screenshot(path=str(OUT / "switched.png"), full_page=True)

            page.get_by_test_id("stSidebarNavLink").filter(has_text="A/B").click()
            page.get_by_role("textbox", name="Question", exact=True).fill("part-time pharmacy technician")
            started = time.perf_counter()
            page.get_by_role("button", name="Compare").click()
            page.get_by_text("listings appear in both lists").wait_for(timeout=300_000)
            page.get_by_text("A/B page time").wait_for(timeout=60_000)
            figures["A/B page s (two retrievals, LLM off)"] = round(time.perf_counter() - started, 2)
            page.screenshot(path=str(OUT / "ab.png"), full_page=True)

            started = time.perf_counter()
            page.get_by_test_id("stSidebarNavLink").filter(has_text="Reports").click()
            page.get_by_text("Summary (mean, 95 % bootstrap CI)").wait_for(timeout=60_000)
            page.get_by_text("Per query").wait_for(timeout=60_000)
            charts = page.get_by_test_id("stVegaLiteChart")  # a skeleton until Streamlit's lazy Vega chunk loads and draws
            bars, histogram = chart_marks(charts.nth(0)), chart_marks(charts.nth(1))
            figures["Reports page, both charts drawn s"] = round(time.perf_counter() - started, 2)
            assert bars in ({"renderer": "svg", "bars": 2}, {"renderer": "canvas", "inked": True}), bars  # base and bm25
            assert histogram.get("bars", 0) >= 1 or histogram.get("inked"), histogram
            page.screenshot(path=str(OUT / "reports.png"), full_page=True)
            charts.nth(1).scroll_into_view_if_needed()  # Streamlit scrolls inside its own container: full_page stops at the viewport
            page.screenshot(path=str(OUT / "reports-per-query.png"))
        finally:
            browser.close()
    assert dialogs == []  # no script from a listing ever ran
    assert not [u for u in fetched if "p.png" in u]  # the markdown image in a listing title was never fetched
    (OUT / "latency.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
