"""Small helpers for driving the admin in a real browser: log in, submit, wait, screenshot."""

import base64
import contextlib
from pathlib import Path

from django.urls import reverse
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 15  # seconds: a page of the live server on a busy 2-core machine
PASSWORD = "browser-test-password"  # every staff user of these tests


def screenshot(driver: WebDriver, tmp_path: Path, name: str) -> Path:
    """Save the whole page as ``<tmp_path>/<name>.png`` and check a picture was written.

    The whole page, not only the window: a booking's inlines sit below the fold.
    """
    path = tmp_path / f"{name}.png"
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 0, f"empty screenshot {path}"
    return path


def wait_for(driver: WebDriver, selector: str) -> WebElement:
    return WebDriverWait(driver, WAIT).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, selector))
    )


def submit(driver: WebDriver, button: WebElement) -> None:
    """Click a submit button and wait until the next page has replaced this one.

    A confirmation dialog, if the page asks one, is accepted.
    """
    page = driver.find_element(By.TAG_NAME, "html")
    button.click()
    with contextlib.suppress(NoAlertPresentException):
        driver.switch_to.alert.accept()
    WebDriverWait(driver, WAIT).until(EC.staleness_of(page))
    wait_for(driver, "body")


def type_and_enter(driver: WebDriver, field: WebElement, text: str) -> None:
    """Type into a form's field, press Enter, and wait until the next page has replaced this
    one (the next page may hold the same elements: waiting for one of them proves nothing)."""
    page = driver.find_element(By.TAG_NAME, "html")
    field.send_keys(text, Keys.ENTER)
    WebDriverWait(driver, WAIT).until(EC.staleness_of(page))
    wait_for(driver, "body")


def admin_login(driver: WebDriver, live_server, username: str, password: str) -> None:
    """Log in through the admin's own login form."""
    driver.get(live_server.url + reverse("admin:login") + "?next=" + reverse("admin:index"))
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(password)
    submit(driver, driver.find_element(By.CSS_SELECTOR, "#login-form [type=submit]"))
    wait_for(driver, "#user-tools")  # only a logged-in admin page has it


def open_admin(driver: WebDriver, live_server, name: str, *args, query: str = "") -> None:
    driver.get(live_server.url + reverse(f"admin:{name}", args=args) + query)
    wait_for(driver, "#content")


def messages(driver: WebDriver, level: str) -> list[str]:
    """The texts of the Django messages of one level (success, error, …) on the page."""
    return [
        element.text
        for element in driver.find_elements(By.CSS_SELECTOR, f"ul.messagelist li.{level}")
    ]


def inline_rows(driver: WebDriver, group_id: str) -> list[str]:
    """The text of each row of a tabular inline (``#<group_id> tbody tr``), lower-cased."""
    rows = driver.find_elements(By.CSS_SELECTOR, f"#{group_id} tbody tr")
    return [row.text.lower() for row in rows if row.text.strip()]


def status_badge(driver: WebDriver) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, "#content .booking-status")
