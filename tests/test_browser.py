"""The notebooks as people use them: JupyterLab in a real (headless) Chromium, 06's form clicked through.

Starts JupyterLab on localhost with the project's kernel, trains a `tiny` run with 03 (papermill),
opens 06 at `tiny`, runs it, answers videos with the buttons, stops (browser and kernel), reopens,
continues with the keyboard shortcuts, and checks the ratings file, the resume point and the CAS-H
table.  Screenshots of the form and of 03's sample grid go to ``test-artifacts/browser/`` (or
``$VICE_TEST_ARTIFACTS``).  Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser``,
run by ``make test``); skipped with the reason where they are missing.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lib.constants import EMOTIONS
from lib.paths import REPO_ROOT, notebooks_dir

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
RATER = "browser-test"


def _artifacts() -> Path:
    folder = Path(os.environ.get("VICE_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate, timeout: float, what: str, poll: float = 0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A tiny cache, one 03 run, 06 prepared at tiny, and JupyterLab serving them on localhost."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("Chromium or its driver is not installed (Debian packages chromium, chromium-driver: "
                    "`make browser`, which `make test` runs as root)")
    pytest.importorskip("selenium")
    import papermill

    root = tmp_path_factory.mktemp("browser")
    env = {**os.environ, "VICE_DATA_DIR": str(root / "data"), "VICE_RUNS_DIR": str(root / "runs"),
           "VICE_FIGURES_DIR": str(root / "figures"), "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    books = root / "notebooks"
    books.mkdir()
    saved = dict(os.environ)
    os.environ.update({k: env[k] for k in ("VICE_DATA_DIR", "VICE_RUNS_DIR", "VICE_FIGURES_DIR")})
    try:
        # thesis model 4 (unseen) with the fast recipe: the tiny run draws faces, so the screenshots show some
        for name, parameters in [("01_preprocess", {"preset": "tiny"}), ("02_autoencoders", {"preset": "tiny"}),
                                 ("03_train", {"preset": "tiny", "encoder": "ae", "content_mode": "single",
                                               "finetune": False, "composition": "unseen", "recipe": "fast",
                                               "run_name": "browser-run", "video_scale": 3})]:
            papermill.execute_notebook(str(notebooks_dir() / f"{name}.ipynb"), str(books / f"{name}.ipynb"),
                                       parameters=parameters, kernel_name="python3", progress_bar=False,
                                       cwd=str(notebooks_dir()))
        papermill.execute_notebook(str(notebooks_dir() / "06_human_rating.ipynb"), str(books / "06_human_rating.ipynb"),
                                   parameters={"preset": "tiny", "rater": RATER, "video_scale": 3},
                                   prepare_only=True, kernel_name="python3")
        papermill.execute_notebook(str(notebooks_dir() / "07_generate.ipynb"), str(books / "07_generate.ipynb"),
                                   parameters={"run": str(root / "runs" / "03_train" / "browser-run"),
                                               "emotion": "happiness", "video_scale": 3},
                                   prepare_only=True, kernel_name="python3")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    # the executed 03 shows its outputs (the sample video) in JupyterLab only when trusted
    subprocess.run([sys.executable, "-m", "jupyter", "trust", str(books / "03_train.ipynb")], env=env, check=True,
                   capture_output=True)
    settings = root / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    notebook_settings = root / "lab-settings" / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True)  # every cell stays in the page (no virtual scrolling re-renders)
    (notebook_settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env["JUPYTERLAB_SETTINGS_DIR"] = str(root / "lab-settings")  # no news pop-up over the screenshots
    port, token = _free_port(), "vice-browser-test"
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={books}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.disable_check_xsrf=True", "--allow-root"],
        env=env, stdout=open(root / "jupyterlab.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)

    def up():
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2).status == 200
        except OSError:
            return False

    try:
        _wait(up, 90, "JupyterLab to start")
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "root": root, "books": books}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,2000",
                     "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _open(driver, lab, notebook: str) -> None:
    driver.get(f"{lab['url']}/lab/tree/{notebook}?token={lab['token']}")
    # JupyterLab reopens the tabs of earlier tests first: wait until this notebook is the current one
    _wait(lambda: driver.execute_script(
        "const app = window.jupyterapp; const w = app && app.shell.currentWidget;"
        "return !!(w && w.context && w.context.path.endsWith(arguments[0]) && w.sessionContext"
        " && w.sessionContext.session && w.sessionContext.session.kernel"
        " && w.sessionContext.session.kernel.status === 'idle');", notebook), 120,
        f"{notebook} open with an idle kernel")


def _run_all(driver) -> None:
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")


def _progress(driver) -> str:
    """The form's "done / total" count (read in the page: the widget redraws it after each answer)."""
    return driver.execute_script("const found = document.querySelectorAll('.rating-progress');"
                                 "return found.length ? found[found.length - 1].textContent : '';")


def _form_text(driver) -> str:
    return driver.execute_script("const forms = document.querySelectorAll('.widget-vbox');"
                                 "return forms.length ? forms[forms.length - 1].innerText : '';")


def _shutdown_kernel(lab) -> None:
    request = urllib.request.Request(f"{lab['url']}/api/kernels?token={lab['token']}")
    for kernel in json.loads(urllib.request.urlopen(request, timeout=10).read()):
        urllib.request.urlopen(urllib.request.Request(
            f"{lab['url']}/api/kernels/{kernel['id']}?token={lab['token']}", method="DELETE"), timeout=10)


def test_rating_form_in_jupyterlab_answers_stops_resumes_and_scores(lab):
    from selenium.webdriver.common.action_chains import ActionChains

    artifacts = _artifacts()
    set_dir = lab["root"] / "runs" / "06_human_rating" / "rating-tiny"
    ratings = set_dir / f"ratings-{RATER}.jsonl"
    n_items = len(EMOTIONS)  # one run x six emotions x one video at tiny

    driver = _browser()
    try:
        _open(driver, lab, "06_human_rating.ipynb")
        _run_all(driver)
        _wait(lambda: _progress(driver).startswith(f"0 / {n_items}"), 300, "the rating form")
        _wait(lambda: driver.execute_script("const v = document.querySelector('.widget-html video');"
                                            "return v !== null && v.currentTime > 0.2;"), 60, "the video to play")
        form = driver.find_element("css selector", ".widget-vbox")
        body = driver.find_element("tag name", "body").text
        assert "browser-run" not in body  # blind: neither the model ...
        items = json.loads((set_dir / "items.json").read_text())["items"]
        form.screenshot(str(artifacts / "06_form.png"))
        driver.save_screenshot(str(artifacts / "06_page.png"))
        shown_texts = set()
        for answered, answer in enumerate(["anger", "happiness", "can't tell"], start=1):
            shown = _progress(driver)
            # ... nor the target: apart from the count, the form reads the same for every item
            shown_texts.add("".join(ch for ch in _form_text(driver) if not ch.isdigit()))
            driver.find_element("xpath", f"//button[starts-with(normalize-space(.), \"{answer} [\")]").click()
            _wait(lambda: _progress(driver) != shown, 30, f"answer {answered} to be saved")
            assert _progress(driver).startswith(f"{answered} / {n_items}")
        assert len(shown_texts) == 1
        lines = [json.loads(line) for line in ratings.read_text().splitlines()]
        assert [r["answer"] for r in lines] == ["anger", "happiness", "can't tell"]
        assert [r["item_id"] for r in lines] == [item["item_id"] for item in items[:3]]  # in the set's order
    finally:
        driver.quit()
    _shutdown_kernel(lab)  # stop: browser and kernel gone, only the ratings file remains

    driver = _browser()
    try:
        _open(driver, lab, "06_human_rating.ipynb")
        _run_all(driver)
        _wait(lambda: _progress(driver).startswith(f"3 / {n_items}"), 300, "the form to resume at item 4")
        form = driver.find_element("css selector", ".widget-vbox")
        keys = ["1", "5", "0"]  # anger, sadness, can't tell: the keyboard shortcuts
        for answered, key in enumerate(keys, start=4):
            shown = _progress(driver)
            ActionChains(driver).move_to_element(form).send_keys(key).perform()
            _wait(lambda: _progress(driver) != shown, 30, f"key {key} to save answer {answered}")
        _wait(lambda: "All done" in _form_text(driver), 30, "the end of the set")
        form.screenshot(str(artifacts / "06_form_done.png"))
        # CAS-H over all six answers: run the notebook's last cells again
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
        _wait(lambda: (set_dir / "cas_h.csv").is_file() and "browser-run" in (set_dir / "cas_h.csv").read_text()
              and int(__import__("pandas").read_csv(set_dir / "cas_h.csv")["n_ratings"].iloc[0]) == n_items,
              300, "the CAS-H table of six ratings")
    finally:
        driver.quit()
    lines = [json.loads(line) for line in ratings.read_text().splitlines()]
    assert len(lines) == n_items and [r["answer"] for r in lines[3:]] == [EMOTIONS[0], EMOTIONS[4], "can't tell"]
    import pandas as pd

    table = pd.read_csv(set_dir / "cas_h.csv")
    correct = sum(r["answer"] == item["target"] for r, item in zip(lines, items))
    assert table.loc[0, "n_raters"] == 1
    # one video per emotion: CAS-H is the share answered right
    assert table.loc[0, "cas_h"] == pytest.approx(correct / n_items)


def test_sample_grid_of_03_plays_in_jupyterlab(lab):
    artifacts = _artifacts()
    driver = _browser()
    try:
        driver.get(f"{lab['url']}/lab/tree/03_train.ipynb?token={lab['token']}")
        video = _wait(lambda: driver.find_elements("css selector", ".jp-OutputArea-output video"), 120,
                      "03's sample video")[0]
        driver.execute_script("arguments[0].scrollIntoView();", video)
        _wait(lambda: driver.execute_script("return arguments[0].readyState >= 2 && arguments[0].videoWidth > 0;",
                                            video), 30, "the MP4 to decode")
        assert driver.execute_script("return arguments[0].loop && arguments[0].controls;", video)
        width = driver.execute_script("return arguments[0].videoWidth;", video)
        assert width >= 3 * 64  # shown at video_scale=3, not at 64 px
        _wait(lambda: driver.execute_script("return arguments[0].currentTime > 0.2;", video), 30,
              "the video to play by itself (autoplay, muted, looping)")
        shown = _wait(lambda: [v for v in driver.find_elements("css selector", ".jp-OutputArea-output video")
                               if v.size["width"] > 0], 30, "the video laid out on the page")[0]
        shown.screenshot(str(artifacts / "03_sample_grid.png"))
    finally:
        driver.quit()


def _errors(driver) -> str:
    """The error outputs shown in the open notebook (what a failed cell printed)."""
    return driver.execute_script("return Array.from(document.querySelectorAll("
                                 "'.jp-OutputArea-output[data-mime-type=\"application/vnd.jupyter.stderr\"]')"
                                 ").map(e => e.innerText).join('\\n');")


def test_generate_notebook_runs_in_jupyterlab_and_its_form_generates(lab):
    """07 opened as a user opens it: run all (the sample photograph through the tiny run, an inline video), then
    the form's Generate button makes a second video from the run picked in its dropdown."""
    artifacts = _artifacts()
    driver = _browser()
    try:
        _open(driver, lab, "07_generate.ipynb")
        _run_all(driver)
        videos = lambda: driver.find_elements("css selector", ".jp-OutputArea-output video")  # noqa: E731
        try:
            first = _wait(videos, 300, "07's generated video")[0]
            _wait(lambda: driver.execute_script("return arguments[0].readyState >= 2 && arguments[0].videoWidth > 0;",
                                                first), 60, "the MP4 to decode")
            button = _wait(lambda: [b for b in driver.find_elements("css selector", ".widget-button")
                                    if b.text.strip() == "Generate"], 120, "the form's Generate button")[0]
        except Exception:
            driver.save_screenshot(str(artifacts / "07_page_failed.png"))
            raise AssertionError(f"07 in JupyterLab: {_errors(driver)[-3000:] or 'no error output'}") from None
        shown = len(videos())
        driver.execute_script("arguments[0].scrollIntoView();", button)
        button.click()
        work = lab["root"] / "runs" / "07_generate" / "generate"
        _wait(lambda: len(videos()) > shown and (work / "browser-run-all.mp4").is_file(), 300, "the form's video")
        assert (work / "generated.mp4").is_file()
        driver.execute_script("arguments[0].scrollIntoView();", videos()[-1])
        driver.save_screenshot(str(artifacts / "07_form_video.png"))
    finally:
        driver.quit()
        _shutdown_kernel(lab)
