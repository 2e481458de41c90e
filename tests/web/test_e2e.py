"""End to end in a real browser: Debian's chromium driven by Playwright against a real `modelfab ui` process.

A new admin logs in, imports generated machine recordings as a zip, labels ten
with the keyboard, applies the labels, trains with a small budget, opens the
report, moves the threshold, promotes, tries an uploaded file and switches to
Chinese. Screenshots of every page go to test-artifacts/web/.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import PASSWORD, zip_folder

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", PYTHONUNBUFFERED="1")
    env.pop("MODELFAB_HOME", None)
    return env


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from modelfab.workspace import Workspace

    root = tmp_path_factory.mktemp("e2e") / "ws"
    Workspace.init(root).close()
    port = _free_port()
    log = open(root.parent / "ui.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "modelfab", "ui", "--port", str(port), "-w", str(root)],
                            stdout=log, stderr=subprocess.STDOUT, env=_env())
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        assert proc.poll() is None, Path(log.name).read_text()
    yield {"url": url, "root": root, "log": Path(log.name)}
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def _wait(page, js: str, timeout: float = 60) -> None:
    """Poll a JS expression from Python (wait_for_function would need 'unsafe-eval', which the CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(js):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {js}")
        time.sleep(0.2)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the top bar is sticky: a full-page shot taken scrolled shows it mid-page
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_new_user_goes_from_recordings_to_a_tried_model(browser, server, tmp_path):
    from modelfab.modalities.signal import make_machine_dataset

    url, root = server["url"], server["root"]
    folder = make_machine_dataset(tmp_path / "pump", n_normal=14, n_abnormal=6, seconds=2.0, seed=11)
    archive = zip_folder(folder, tmp_path / "pump.zip")
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    expected = []  # the one failed login below answers 401, on purpose

    # 1. a new workspace: the server says how to make the first admin, and so does the page
    assert "modelfab users create NAME --role admin" in server["log"].read_text()
    page.goto(url + "/")
    assert page.url.endswith("/setup")
    assert "modelfab users create" in page.inner_text("pre")
    _shot(page, "01-setup")
    p = subprocess.run([sys.executable, "-m", "modelfab", "users", "create", "qe", "--role", "admin", "-w", str(root)],
                       input=PASSWORD + "\n", text=True, capture_output=True, env=_env(), timeout=120)
    assert p.returncode == 0, p.stderr

    # 2. log in
    page.goto(url + "/login")
    page.fill("input[name=name]", "qe")
    page.fill("input[name=password]", "wrong password")
    expected.append("401")
    page.click("form[action='/login'] button[type=submit]")
    assert page.locator(".alert.error").is_visible()
    page.fill("input[name=password]", PASSWORD)
    _shot(page, "02-login")
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(url + "/")
    _shot(page, "03-home-empty")

    # 3. import the recordings as a zip upload
    page.click("nav.main-nav >> text=Import")
    zip_form = page.locator("form[data-upload]").first
    zip_form.locator("input[type=file]").set_input_files(str(archive))
    zip_form.locator("input[name=name]").fill("pump")
    _shot(page, "04-import")
    zip_form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/jobs/\d+$"))
    page.wait_for_selector("#job-result a", timeout=90_000)
    page.click("#job-result a")
    page.wait_for_url(url + "/datasets/pump/1")
    _wait(page, "Array.from(document.querySelectorAll('img.thumb')).slice(0, 6).every(i => i.complete && i.naturalWidth > 0)", timeout=60)
    assert page.locator("audio").count() == 20
    _shot(page, "05-dataset")

    # 4. label ten recordings with the keyboard: 1-9 pick, arrows move, u undoes
    page.click("text=Label recordings")
    page.wait_for_selector("#items li.cur")
    labels = page.eval_on_selector_all("#label-buttons button", "bs => bs.map(b => b.dataset.label)")
    assert labels == ["abnormal", "normal"]
    keys = ["1"] * 6 + ["2"] * 4  # the first six files are abnormal/..., then normal/...
    for k in keys:
        page.keyboard.press(k)
    _wait(page, "document.getElementById('saved-count').textContent === '10'")
    page.keyboard.press("u")  # undo the tenth: it goes back, and the cursor with it
    _wait(page, "document.getElementById('saved-count').textContent === '11'")
    assert page.inner_text("#current-file") == "normal/normal_0003.wav"
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("2")
    _wait(page, "document.getElementById('saved-count').textContent === '12'")
    assert page.locator("#items li.labelled").count() == 20
    # bulk: click one, shift-click two further down, one key labels the three (the first six are abnormal)
    page.click("#items li:nth-child(1) .file")
    page.click("#items li:nth-child(3) .file", modifiers=["Shift"])
    assert page.locator("#items li.picked").count() == 3 and "3" in page.inner_text("#selected-count")
    page.keyboard.press("1")
    _wait(page, "document.getElementById('saved-count').textContent === '15'")
    assert page.locator("#items li.picked").count() == 0
    # a new label with its colour
    page.fill("#new-label-name", "squeak")
    page.eval_on_selector("#new-label-color", "i => { i.value = '#d97706'; }")
    page.click("#new-label button[type=submit]")
    page.wait_for_selector("#label-buttons button[data-label=squeak]")
    assert page.eval_on_selector("#label-buttons button[data-label=squeak]",
                                 "b => b.style.getPropertyValue('--label-color')") == "#d97706"
    # the assistant learned from the labels: its accuracy and the curve of it
    _wait(page, "document.querySelectorAll('#learning-curve circle').length > 0", timeout=60)
    assert "%" in page.inner_text("#assist-status")
    _shot(page, "06-label")
    page.click("form.apply button")
    page.wait_for_selector("#job-result a", timeout=90_000)
    assert "pump:2" in page.inner_text("#job-result")

    # 5. train with a small budget, watch it live
    page.click("nav.main-nav >> text=Train")
    page.select_option("#train-dataset", "pump:2")
    assert "anomaly" in page.inner_text("#train-suggestion")
    page.eval_on_selector("#train-budget", "s => { const o = new Option('8 s', '8'); s.add(o); s.value = '8'; }")
    _shot(page, "07-train")
    page.click("#train-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/jobs/\d+$"))
    _wait(page, "document.getElementById('live-trials').textContent.trim() !== '–'", timeout=60)
    _wait(page, "document.querySelectorAll('#leaderboard tbody tr').length > 0", timeout=60)  # the live leaderboard
    _shot(page, "08-training-live")
    page.reload()  # the job survives a reload
    page.wait_for_selector("#job-result a", timeout=120_000)
    _shot(page, "09-training-done")
    page.click("#job-result a")
    page.wait_for_url(url + "/models/pump/1")

    # 6. the report in the page, and the threshold slider
    frame = page.frame_locator("#report-frame")
    frame.locator("h1").first.wait_for(timeout=60_000)
    before = (page.inner_text("#fa-count"), page.inner_text("#miss-count"), page.inner_text("#thr-value"))
    slider = page.locator("#threshold-slider")
    slider.focus()
    for _ in range(12):
        page.keyboard.press("ArrowLeft")  # lower threshold: more false alarms, fewer misses
    after = (page.inner_text("#fa-count"), page.inner_text("#miss-count"), page.inner_text("#thr-value"))
    assert after[2] != before[2] and int(after[0]) >= int(before[0]) and int(after[1]) <= int(before[1])
    assert page.is_enabled("#threshold-save")
    _shot(page, "10-evaluate")
    # the anomaly confusion matrix follows the slider; a cell opens its recordings at that threshold
    cm_cell = "#confusion tbody tr:nth-child({}) td:nth-of-type({}) button"
    assert page.inner_text(cm_cell.format(1, 2)) == after[0] and page.inner_text(cm_cell.format(2, 1)) == after[1]
    page.click("#confusion button.cell:not([disabled])")
    page.wait_for_selector("#cm-examples-body figure figcaption .score")
    assert after[2] in page.inner_text("#cm-examples-title")  # the examples are for the slider's threshold
    page.locator("#confusion-panel").scroll_into_view_if_needed()
    _shot(page, "10c-anomaly-confusion-cell")
    report = page.locator("#report-frame")
    report.scroll_into_view_if_needed()
    report.screenshot(path=str(ARTIFACTS / "10b-report.png"))
    page.click("#threshold-save")
    page.wait_for_url(url + "/models/pump/2", timeout=60_000)  # a short job, then straight to the new version
    assert "pump:1" in page.inner_text(".facts")

    # 7. promote, then try the model on an uploaded recording
    page.click(".page-head button:has-text('Promote')")
    page.wait_for_url(url + "/models/pump/2")
    assert page.locator(".page-head .badge.stage-production").is_visible()
    page.fill("form.alias-form input[name=alias]", "line3-current")  # NAME@ALIAS, as `modelfab models alias`
    page.click("form.alias-form button[type=submit]")
    page.wait_for_selector(".chip.alias:has-text('pump@line3-current')")
    _shot(page, "10d-alias")
    page.click("nav.main-nav >> text=Models")
    _shot(page, "11-models")
    page.click("nav.main-nav >> text=Try it")
    page.select_option("#predict-model", "pump:2")
    page.set_input_files("#predict-form input[type=file]", str(sorted((folder / "abnormal").glob("*.wav"))[0]))
    page.click("#predict-form button[type=submit]")
    page.wait_for_selector("#verdict", timeout=120_000)
    assert page.inner_text("#verdict")
    _shot(page, "12-try-it")

    # 8. a table: preview and confirm column types and the target, train, open a confusion-matrix cell
    from .test_pages import _parts_csv

    csv = _parts_csv(tmp_path / "parts.csv")
    page.click("nav.main-nav >> text=Import")
    table_form = page.locator("form[data-upload]").nth(1)
    table_form.locator("input[type=file]").set_input_files(str(csv))
    table_form.locator("input[name=name]").fill("parts")
    table_form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/import/preview/[0-9a-f]{32}$"))
    assert page.is_checked("input[name=target][value=grade]")  # guessed from the name
    page.select_option("select[data-column=lot]", "categorical")
    _shot(page, "17-import-preview")
    page.click("#preview-import")
    page.wait_for_selector("#train-on-it", timeout=90_000)
    page.click("#train-on-it")
    assert page.input_value("#train-target") == "grade"
    page.eval_on_selector("#train-budget", "s => { const o = new Option('10 s', '10'); s.add(o); s.value = '10'; }")
    page.click("#train-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/jobs/\d+$"))
    _wait(page, "document.querySelectorAll('#leaderboard tbody tr').length > 0", timeout=60)
    page.wait_for_selector("#job-result a", timeout=120_000)
    page.wait_for_load_state()
    # the ended job: "Best so far" is the leaderboard's first row, nothing is "left"
    first = page.inner_text("#leaderboard tbody tr:first-child td:nth-child(2)")
    assert page.inner_text("#live-best").endswith(" · " + first) and page.inner_text("#live-left") == "–"
    _shot(page, "18-leaderboard")
    page.click("#job-result a")
    page.wait_for_url(url + "/models/parts/1")
    page.click("#confusion button.cell:not([disabled])")
    page.wait_for_selector("#cm-rows tbody tr")
    _shot(page, "19-confusion-cell")

    # 9. label rows of the table: the active-learning queue, a selection labelled at once
    page.goto(url + "/label/parts/1?column=grade&filter=queue")
    page.wait_for_selector("#items li.cur")
    _wait(page, "document.querySelectorAll('#items [data-suggest]')[0].textContent.indexOf('%') > 0", timeout=60)
    page.click("#items li:nth-child(2) .pick")
    page.click("#items li:nth-child(4) .pick")
    page.keyboard.press("2")
    _wait(page, "document.getElementById('saved-count').textContent === '2'")
    _shot(page, "20-label-rows")

    # 10. deploy: start a model server from the browser, see it answer, stop it
    page.click("nav.main-nav >> text=Models")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    page.select_option("#deploy-model", "pump")
    page.fill("#deploy-port", str(free))
    page.click("#deploy-form button[type=submit]")
    page.wait_for_selector("#deploy-table .deploy-running", timeout=60_000)  # the page refreshes while it starts
    assert f"http://127.0.0.1:{free}/v1/models/pump/predict" in page.inner_text("#deploy-curl")
    import httpx

    assert httpx.get(f"http://127.0.0.1:{free}/healthz", timeout=5).status_code == 200
    page.locator("#deployments").scroll_into_view_if_needed()
    _shot(page, "21-deploy")
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))  # stopping a server asks first
    page.click("#deploy-table button.danger")
    page.wait_for_selector("#deploy-table", state="detached")
    assert asked and "Stop the server" in asked[0], asked
    page.goto(url + "/compare?a=pump:1&b=pump:2")
    _shot(page, "22-compare")
    page.click("nav.main-nav >> text=Try it")

    # 11. switch to Chinese; the choice sticks
    page.click("button[data-lang=zh]")
    page.wait_for_selector("html[lang=zh-CN]")
    assert "试用模型" in page.inner_text("h1")
    _shot(page, "13-try-it-zh")
    page.click("nav.main-nav >> text=首页")
    assert "概览" in page.inner_text("h1") and "最近的任务" in page.inner_text("main")
    _shot(page, "14-home-zh")
    page.goto(url + "/models/pump/2")
    _shot(page, "15-evaluate-zh")
    page.goto(url + "/label/pump/2")
    _shot(page, "16-label-zh")
    page.goto(url + "/label/parts/1?column=grade&filter=queue")
    _wait(page, "document.getElementById('assist-status').textContent.indexOf('%') > 0", timeout=60)
    _shot(page, "23-label-rows-zh")
    page.goto(url + "/models/parts/1")
    _shot(page, "24-evaluate-table-zh")

    errors = [e for e in errors if "status of 401" not in e or expected.pop() is None]
    assert not errors, errors  # no script errors, failed loads or Content-Security-Policy violations
    context.close()


def _import_and_open(page, url: str, form: int, path, name: str, pictures: str, n_loaded: int) -> None:
    """Import ``path`` with form ``form`` of the import page (0 zip, 1 table), follow the job to the new
    dataset page and wait until its first ``n_loaded`` pictures (CSS selector ``pictures``) have loaded."""
    page.click("nav.main-nav >> text=Import")
    upload = page.locator("form[data-upload]").nth(form)
    upload.locator("input[type=file]").set_input_files(str(path))
    upload.locator("input[name=name]").fill(name)
    upload.locator("button[type=submit]").click()
    page.wait_for_selector("#job-result a", timeout=90_000)
    page.click("#job-result a")
    page.wait_for_url(url + f"/datasets/{name}/1")
    _wait(page, f"Array.from(document.querySelectorAll('{pictures}')).slice(0, {n_loaded})"
                ".every(i => i.complete && i.naturalWidth > 0)", timeout=60)


def test_images_and_series_in_the_browser(browser, server, tmp_path):
    """Images (zip with defect masks) and a .ts file of series: import, look, train, try an upload."""
    from modelfab.modalities.image.synth import make_image_dataset
    from tests.modalities.test_series_io import make_series, write_ts

    url = server["url"]
    surfaces = make_image_dataset(tmp_path / "tiles", n_per_class=8, size=64, masks=True, seed=5)
    archive = zip_folder(surfaces, tmp_path / "tiles.zip")
    series, labels, _ = make_series(30, 50, seed=1)
    write_ts(tmp_path / "shapes.ts", series, labels)
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.goto(url + "/login")
    if page.url.endswith("/setup"):  # run alone: make the admin the first test makes
        subprocess.run([sys.executable, "-m", "modelfab", "users", "create", "qe", "--role", "admin", "-w",
                        str(server["root"])], input=PASSWORD + "\n", text=True, capture_output=True, env=_env(),
                       timeout=120, check=True)
        page.goto(url + "/login")
    page.fill("input[name=name]", "qe")
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(url + "/")

    # images: a zip with one folder per class and a mask beside each image
    _import_and_open(page, url, 0, archive, "tiles", "#images img", 8)
    assert page.locator("#images li").count() == 24
    _shot(page, "25-images")

    # label the images: the big picture follows the current image; key 2 gives it the second label
    page.goto(url + "/datasets/tiles/1")
    page.click("text=Label images")
    page.wait_for_url(re.compile(re.escape(url + "/label/tiles/1") + r"(#item-\d+)?$"))  # the page keeps its item in the address
    _wait(page, "document.getElementById('current-thumb').complete && "
                "document.getElementById('current-thumb').naturalWidth > 0")
    assert "thumb/0.png?size=large" in page.get_attribute("#current-thumb", "src")
    page.keyboard.press("ArrowDown")
    assert "thumb/1.png?size=large" in page.get_attribute("#current-thumb", "src")
    second = page.locator("#label-buttons .label-btn").nth(1).get_attribute("data-label")
    page.keyboard.press("2")
    _wait(page, "document.getElementById('saved-count').textContent === '1'")
    assert page.locator("#items li").nth(1).locator("[data-label]").inner_text() == second
    _shot(page, "25b-label-images")
    # "select all on this page" (focus on the checkbox), then a label key labels the whole page at once
    page.click("#select-page")
    first = page.locator("#label-buttons .label-btn").nth(0).get_attribute("data-label")
    page.keyboard.press("1")
    _wait(page, "document.getElementById('saved-count').textContent === '25'")
    assert page.locator("#items li [data-label]").all_inner_texts() == [first] * 24

    # series: a UCR/UEA .ts file through the table form
    _import_and_open(page, url, 1, tmp_path / "shapes.ts", "shapes", "#series img", 6)  # the table form
    assert page.locator("#series tbody tr").count() == 30
    _shot(page, "26-series")
    page.click("text=Label series")
    page.wait_for_url(re.compile(re.escape(url + "/label/shapes/1") + r"(#item-\d+)?$"))
    _wait(page, "document.getElementById('current-thumb').naturalWidth === 720")
    _shot(page, "26b-label-series")

    # train an anomaly detector on the good tiles, then try it on a tile with a spot
    page.goto(url + "/train?dataset=tiles:1")
    # the good label is a field of anomaly detection only, named for images, defaulting to the dataset's "good"
    page.select_option("#train-task", "classification")
    assert not page.locator("#train-anomaly-fields").is_visible()
    page.select_option("#train-task", "anomaly")
    assert page.locator("#train-anomaly-fields").is_visible()
    assert page.input_value("#train-normal-label") == "good"
    assert "good (defect-free) images" in page.inner_text("#train-anomaly-fields")
    page.eval_on_selector("#train-budget", "s => { const o = new Option('10 s', '10'); s.add(o); s.value = '10'; }")
    page.click("#train-form button[type=submit]")
    page.wait_for_selector("#job-result a", timeout=120_000)
    page.click("#job-result a")
    page.wait_for_url(re.compile(r".*/models/tiles/\d+$"))
    assert page.locator("#threshold-slider").is_visible()
    assert "images" in page.inner_text("#fa-text") and "recordings" not in page.inner_text("#threshold-panel")
    page.click("nav.main-nav >> text=Try it")
    page.select_option("#predict-model", "tiles:1")
    page.set_input_files("#predict-form input[type=file]", str(sorted((surfaces / "spot").glob("spot_?.png"))[0]))
    page.click("#predict-form button[type=submit]")
    page.wait_for_selector("#predict-picture", timeout=120_000)  # scoring one image: seconds, more under load
    assert page.inner_text("#verdict")
    _shot(page, "27-try-image")
    assert not errors, errors
    context.close()
