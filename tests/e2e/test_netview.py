"""The live picture in a real browser (Debian's chromium, driven by Selenium) against the real
cluster: nodes and pods appear, a new pod shows up within a second of its creation without a
reload, and tracing the client to the Service draws the KUBE-SVC/KUBE-SEP hops over the picture.
The screenshot it takes is kept next to the test's files (and in $MINICLUSTER_SCREENSHOTS)."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.harness import deploy_serving_app, wait_until


@pytest.fixture
def netview(cluster):
    """The cluster's own live picture (a component, as its own identity), from `cluster status`."""
    url = cluster.status["ui"].rstrip("/")

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False
    wait_until(ready, timeout=30, what="netview ready")
    return url


@pytest.fixture
def browser():
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()



def choose(browser, element_id: str, value: str) -> None:
    """Pick `value` in a select whose options the page may rebuild as the cluster changes."""
    for _ in range(100):
        try:
            Select(browser.find_element(By.ID, element_id)).select_by_value(value)
            if browser.find_element(By.ID, element_id).get_attribute("value") == value:
                return
        except StaleElementReferenceException:
            pass
        time.sleep(0.02)
    raise AssertionError(f"could not choose {value} in #{element_id}")


def text_of(browser, element_id: str) -> str:
    """An element's text, found again if the page re-rendered it between finding and reading."""
    for _ in range(100):
        try:
            return browser.find_element(By.ID, element_id).text
        except StaleElementReferenceException:
            time.sleep(0.02)
    raise AssertionError(f"#{element_id} kept being replaced")

def attributes(browser, css: str, *names: str) -> list[str]:
    """For each element `css` finds, the first of its attributes `names` that is set; read again
    from the start if the page re-rendered an element between finding and reading it."""
    for _ in range(100):
        try:
            return [next((v for v in (e.get_attribute(n) for n in names) if v), "")
                    for e in browser.find_elements(By.CSS_SELECTOR, css)]
        except StaleElementReferenceException:
            time.sleep(0.02)
    raise AssertionError(f"{css} kept being replaced")


def test_the_page_shows_the_cluster_live_and_draws_a_trace(cluster, netview, browser, tmp_path):
    manifest, _ = deploy_serving_app(cluster, tmp_path, "nv")

    browser.get(netview + "/")
    # the page re-renders as the cluster changes: an element found may be replaced before it is read
    wait = WebDriverWait(browser, 20, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-pod="default/nvclient"]'))
    nodes = attributes(browser, "[data-node]", "data-node")
    assert len(nodes) == 2
    assert browser.find_elements(By.CSS_SELECTOR, '[data-service="default/nvsvc"]')
    browser.execute_script("window.notReloaded = true")

    # a new pod appears without a reload, within a second of its creation
    created = time.monotonic()
    subprocess.run(["kubectl", "--kubeconfig", cluster.status["kubeconfig"], "--cache-dir", str(tmp_path / "kc"),
                    "run", "nvlate", "--image=busybox", "--restart=Never", "--", "sleep", "3600"],
                   check=True, capture_output=True)
    answered = time.monotonic()
    WebDriverWait(browser, 5, poll_frequency=0.02).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, '[data-pod="default/nvlate"]'))
    shown = time.monotonic() - answered
    assert shown < 1.0, f"the new pod took {shown:.2f}s to appear"
    assert browser.execute_script("return window.notReloaded === true")
    print(f"new pod on the page {shown * 1000:.0f} ms after its create was answered "
          f"({(time.monotonic() - created) * 1000:.0f} ms including kubectl)")

    # client -> the Service: the account, and its hops drawn over the picture
    choose(browser, "source", "default/nvclient")
    choose(browser, "destination", "svc/nvsvc:8080|default|TCP")
    browser.find_element(By.ID, "go").click()
    wait.until(lambda d: d.find_element(By.ID, "summary").text.startswith("pod default/nvclient"))
    summary = text_of(browser, "summary")
    assert "reaches pod default/nv-" in summary, summary
    steps = text_of(browser, "steps")
    assert "KUBE-SVC-" in steps and "KUBE-SEP-" in steps and "DNAT: the destination becomes" in steps
    hops = set(attributes(browser, ".hop", "data-pod", "data-service"))
    assert {"default/nvclient", "default/nvsvc"} <= hops and len(hops) == 3
    assert len(browser.find_elements(By.CSS_SELECTOR, "path.path")) == 2
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]

    # with the probe: one real connection from the pod, and the account follows where it went
    browser.find_element(By.ID, "probe").click()
    browser.find_element(By.ID, "go").click()
    wait.until(lambda d: "the probe's connection went here" in d.find_element(By.ID, "steps").text)
    assert text_of(browser, "summary").startswith("pod default/nvclient")

    shot = tmp_path / "netview.png"
    browser.save_screenshot(str(shot))
    if os.environ.get("MINICLUSTER_SCREENSHOTS"):
        shutil.copy(shot, os.path.join(os.environ["MINICLUSTER_SCREENSHOTS"], "netview.png"))
    cluster.mkctl("delete", "-f", str(manifest))
    cluster.mkctl("delete", "pod", "nvlate", check=False)
