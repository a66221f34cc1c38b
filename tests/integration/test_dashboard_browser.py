"""The web UI in a real headless browser (Debian's chromium, driven by Selenium through
chromium-driver): log in, open every page, follow a running job's log, read a failed
task's traceback and a pending one's explanation, be sent to the login without a cookie,
and see another site's form fail to stop a job. A screenshot of each page is saved to
test-artifacts/dashboard/ (or $MANTA_TEST_ARTIFACTS/dashboard/), never committed."""

from __future__ import annotations

import http.server
import os
import shlex
import shutil
import sys
import threading
from pathlib import Path

import pytest

import manta
from tests.polling import touch, wait_until

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.timeout(300)

ARTIFACTS = Path(
    os.environ.get("MANTA_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts"
)


@pytest.fixture(scope="module")
def head():
    # Metrics sampled every second, so that a chart's data changes within the test.
    context = manta.init(num_cpus=2, include_dashboard=True, _system_config={"metrics_history_interval_s": 1})
    yield {
        "url": "http://" + context.dashboard_url,
        "token": Path(context["session_dir"], "token").read_text().strip(),
    }
    manta.shutdown()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for CSP errors
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()  # chromium and chromedriver with it


def screenshot(browser, name: str) -> None:
    folder = ARTIFACTS / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(folder / f"{name}.png"))


# Pages redraw themselves every 2 s: an element found a moment ago may be gone (stale).
def _again(browser, timeout: float = 30) -> WebDriverWait:
    return WebDriverWait(
        browser, timeout, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)
    )


def wait_text(browser, css: str, words: str, timeout: float = 30) -> str:
    """The text of the element at ``css`` once it contains ``words``."""

    def found(b) -> str | bool:
        text = b.find_element(By.CSS_SELECTOR, css).text
        return text if words in text else False

    return str(_again(browser, timeout).until(found))


def text_of(browser, css: str) -> str:
    return str(_again(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, css).text or " "))


def click(browser, by: str, what: str) -> None:
    _again(browser).until(lambda b: b.find_element(by, what).click() or True)


def log_in(browser, head, as_whom: str = "cluster (admin)") -> None:
    browser.get(head["url"] + "/login")
    browser.find_element(By.ID, "token").send_keys(head["token"])
    browser.find_element(By.CSS_SELECTOR, "form button").click()
    wait_text(browser, "#who", as_whom)


def jobs(head):  # type: ignore[no-untyped-def]
    """The job client, with the cluster's token."""
    from manta.job_submission import JobSubmissionClient

    return JobSubmissionClient(head["url"], headers={"Authorization": f"Bearer {head['token']}"})


def submit(head, code: str) -> str:
    return str(jobs(head).submit_job(entrypoint=f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"))


def job_status(head, job: str) -> str:
    return str(jobs(head).get_job_status(job))


def test_without_the_cookie_every_page_goes_to_the_login(browser, head) -> None:
    browser.delete_all_cookies()
    for page in ("/", "/#/jobs", "/#/tasks"):
        browser.get(head["url"] + page)
        # (A redirect keeps the fragment: /login#/jobs.)
        WebDriverWait(browser, 30).until(ec.url_matches(r"/login(#.*)?$"))
    log_in_page = browser.find_element(By.ID, "token")
    assert log_in_page.get_attribute("type") == "password"
    screenshot(browser, "login")


def test_every_page_opens_and_shows_the_cluster(browser, head) -> None:
    @manta.remote
    class Keeper:
        def ping(self):
            return 1

    keeper = Keeper.options(name="ui-keeper").remote()
    manta.get(keeper.ping.remote())
    group = manta.util.placement_group([{"CPU": 1}], name="ui-group")
    manta.get(group.ready())
    log_in(browser, head)
    pages = {
        "overview": ("/#/", "#overview-cards", "nodes alive"),
        "nodes": ("/#/nodes", "main table", " of "),  # its use, from the metrics
        "jobs": ("/#/jobs", "main", "Jobs"),
        "actors": ("/#/actors", "main table", "Keeper"),
        "tasks": ("/#/tasks", "main table", "Keeper.ping"),
        "placement-groups": ("/#/placement-groups", "main table", "ui-group"),
    }
    for name, (page, css, words) in pages.items():
        browser.get(head["url"] + page)
        wait_text(browser, css, words)
        screenshot(browser, name)
    # Server-side filters: only what matches comes back.
    browser.get(head["url"] + "/#/actors?state=DEAD")
    wait_text(browser, "#shown", "rows 0-0 of 0 matching")
    manta.util.remove_placement_group(group)
    # An admin may kill an actor from its row.
    browser.get(head["url"] + "/#/actors?name=Keeper")
    click(browser, By.CSS_SELECTOR, f"button[data-kill='{keeper._actor_id.hex()}']")
    browser.switch_to.alert.accept()
    wait_text(browser, "main table", "DEAD")
    with pytest.raises(manta.exceptions.RayActorError):
        manta.get(keeper.ping.remote())


def test_the_tasks_table_is_paged_and_filtered_on_the_server(browser, head) -> None:
    @manta.remote
    def paged(i):
        return i

    refs = [paged.remote(i) for i in range(25)]
    manta.get(refs)
    by_name = [("name", "=", "paged")]
    wait_until(
        lambda: len(manta.util.state.list_tasks(filters=by_name, limit=100)) == 25, 30, "their records"
    )
    log_in(browser, head)
    browser.get(head["url"] + "/#/tasks?name=paged&limit=10")
    wait_text(browser, "#shown", "rows 1-10 of 25 matching")
    first = text_of(browser, "main table tbody")
    click(browser, By.ID, "next-page")
    wait_text(browser, "#shown", "rows 11-20 of 25 matching")
    assert text_of(browser, "main table tbody") != first
    click(browser, By.ID, "next-page")
    wait_text(browser, "#shown", "rows 21-25 of 25 matching")
    assert not browser.find_elements(By.ID, "next-page") and browser.find_elements(By.ID, "previous-page")


def test_the_metrics_charts_update_live(browser, head) -> None:
    log_in(browser, head)
    browser.get(head["url"] + "/#/metrics")

    def points() -> int:
        found = browser.find_elements(By.CSS_SELECTOR, "#chart-cpu[data-points]")
        return int(found[0].get_attribute("data-points")) if found else 0

    wait_until(lambda: points() >= 1, 30, "the first samples")
    first = points()
    wait_until(lambda: points() > first, 30, "a newer sample, without a reload")
    for chart in ("cpu", "memory", "store", "tasks", "actors"):
        assert browser.find_elements(By.CSS_SELECTOR, f"#chart-{chart} canvas"), chart
    screenshot(browser, "metrics")


def test_a_workers_log_file_is_listed_and_followed(browser, head) -> None:
    from manta._private.common.session import worker_log_name

    @manta.remote
    def say(words):
        print(words, flush=True)
        context = manta.get_runtime_context()
        return context.get_node_id(), context.get_worker_id()

    node_id, worker_id = manta.get(say.remote("seen on the logs page"))
    name = worker_log_name(worker_id) + ".out"
    log_in(browser, head)
    browser.get(head["url"] + "/#/logs")
    wait_text(browser, "main", name)
    screenshot(browser, "logs")
    click(browser, By.LINK_TEXT, name)
    wait_text(browser, "#log-file", "seen on the logs page")
    manta.get(say.options(scheduling_strategy=_on(node_id)).remote("and a line printed after it opened"))
    wait_text(browser, "#log-file", "and a line printed after it opened")


def _on(node_id: str):
    from manta.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id, soft=False)


def test_no_page_breaks_the_content_security_policy(browser, head) -> None:
    """The policy forbids inline styles and scripts: a page that used them would be
    broken for real users, and the browser says so in its console."""
    log_in(browser, head)
    for page in (
        "/#/",
        "/#/nodes",
        "/#/jobs",
        "/#/actors",
        "/#/tasks",
        "/#/placement-groups",
        "/#/metrics",
        "/#/logs",
    ):
        browser.get(head["url"] + page)
        wait_text(browser, "main h1", "")
    violations = [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not violations, violations


def test_a_running_jobs_log_follows_and_an_admin_may_stop_it(browser, head, tmp_path) -> None:
    go = tmp_path / "go"
    job = submit(
        head,
        "import os, time\n"
        "print('before the page', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.05)\n"
        "print('printed after the page opened', flush=True)\n"
        "time.sleep(600)",
    )
    log_in(browser, head)
    browser.get(f"{head['url']}/#/jobs/{job}")
    wait_text(browser, "#job-log", "before the page")
    touch(go)
    wait_text(browser, "#job-log", "printed after the page opened")
    screenshot(browser, "job")
    click(browser, By.ID, "stop-job")
    browser.switch_to.alert.accept()
    wait_until(lambda: job_status(head, job) == "STOPPED", 60, "the job to stop")
    wait_text(browser, "#job-status", "STOPPED")


def test_a_read_session_is_shown_no_controls(browser, head) -> None:
    import json
    import urllib.request

    made = urllib.request.Request(
        head["url"] + "/api/tokens",
        data=json.dumps({"role": "read", "name": "browser-viewer"}).encode(),
        headers={"Authorization": f"Bearer {head['token']}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(made, timeout=30) as reply:
        viewer = json.loads(reply.read())["token"]
    job = submit(head, "import time; print('running', flush=True); time.sleep(600)")
    wait_until(lambda: job_status(head, job) == "RUNNING", 60, "the job to run")

    @manta.remote
    class Watched:
        def ping(self):
            return 1

    watched = Watched.remote()  # alive: an admin would see a Kill button on its row
    manta.get(watched.ping.remote())
    log_in(browser, {**head, "token": viewer}, as_whom="browser-viewer (read)")
    browser.get(f"{head['url']}/#/jobs/{job}")
    wait_text(browser, "#job-status", "RUNNING")
    assert not browser.find_elements(By.ID, "stop-job")
    browser.get(f"{head['url']}/#/actors?state=ALIVE")
    wait_text(browser, "main table", "Watched")
    assert not browser.find_elements(By.CSS_SELECTOR, "button[data-kill]")
    manta.kill(watched)
    jobs(head).stop_job(job)


def test_a_failed_tasks_traceback_and_a_pending_tasks_explanation(browser, head) -> None:
    @manta.remote
    def deliberately_failing():
        raise ValueError("broken on purpose")

    failed = deliberately_failing.options(max_retries=0).remote()
    with pytest.raises(manta.exceptions.RayTaskError):
        manta.get(failed)
    pending = manta.remote(num_gpus=1)(lambda: 1).remote()
    log_in(browser, head)
    browser.get(f"{head['url']}/#/tasks/{failed.task_id().hex()}")
    traceback = wait_text(browser, "#traceback", "broken on purpose")
    assert "ValueError" in traceback and 'raise ValueError("broken on purpose")' in traceback
    screenshot(browser, "failed-task")
    browser.get(f"{head['url']}/#/tasks/{pending.task_id().hex()}")
    wait_text(browser, "#explanation", "infeasible")
    screenshot(browser, "pending-task")
    manta.cancel(pending)


def test_another_sites_form_cannot_stop_a_job(browser, head) -> None:
    job = submit(head, "import time; print('running', flush=True); time.sleep(600)")
    wait_until(lambda: job_status(head, job) == "RUNNING", 60, "the job to run")
    target = f"{head['url']}/api/jobs/{job}/stop"
    page = (
        f'<form id="f" method="post" action="{target}"></form>'
        "<script>document.getElementById('f').submit()</script>"
    ).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    # Another origin (another port): same site, so the cookie goes along; the server
    # must see that the dashboard's own page did not send the form.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        log_in(browser, head)
        browser.get(f"http://127.0.0.1:{server.server_address[1]}/")
        WebDriverWait(browser, 30).until(ec.url_to_be(target))
        assert "cross-site requests may not change the cluster" in browser.page_source
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert job_status(head, job) == "RUNNING"
    jobs(head).stop_job(job)
