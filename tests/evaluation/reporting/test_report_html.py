"""report.html opened in a real headless browser (Chromium from the system's packages, driven by
Playwright; `make test` installs it: the Makefile's `browser` target): every image loads, every
section of report.md is there, the contents' links lead to their sections, and nothing is fetched
from anywhere (the page is self-contained)."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from evaluation.reporting.collect import collect

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample_experiment"


def chromium() -> str:
    path = os.environ.get("CFBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, ("no Chromium here: `make browser` installs Debian's package (apt-get install chromium), "
                  "or set CFBENCH_CHROMIUM to a Chromium executable")
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    dst = tmp_path_factory.mktemp("html") / "sample_experiment"
    shutil.copytree(SAMPLE, dst)
    collect(dst, plots=True)
    return dst


def test_report_html_opens_in_a_browser_with_every_image_and_section(report):
    from playwright.sync_api import sync_playwright

    md = (report / "report.md").read_text()
    sections = re.findall(r"^## (.+)$", md, re.M)
    images = re.findall(r"!\[[^\]]*\]\((plots/[^)]+)\)", md)
    assert len(sections) >= 6 and len(images) >= 10
    page_file = report / "report.html"
    (report / "plots").rename(report / "plots-moved")  # self-contained: the page must not need the folder
    fetched = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("request", lambda r: fetched.append(r.url))
            page.goto(page_file.as_uri(), wait_until="load")
            imgs = page.eval_on_selector_all(
                "img", "els => els.map(e => ({ok: e.complete && e.naturalWidth > 0, w: e.naturalWidth, "
                       "src: e.getAttribute('src').slice(0, 22)}))")
            heads = page.eval_on_selector_all("h2", "els => els.map(e => [e.id, e.textContent.trim()])")
            dangling = page.evaluate("() => [...document.querySelectorAll('a[href^=\"#\"]')]"
                                     ".filter(a => !document.getElementById(a.getAttribute('href').slice(1)))"
                                     ".map(a => a.getAttribute('href'))")
        finally:
            browser.close()
    assert len(imgs) == len(images), (len(imgs), len(images))
    assert all(i["ok"] and i["w"] > 100 and i["src"] == "data:image/png;base64," for i in imgs), imgs
    assert [h for _, h in heads] == sections and sections[0] == "Contents"
    assert dangling == []  # every link of the table of contents reaches its section
    assert all(u.startswith(("data:", "file:")) for u in fetched), fetched
