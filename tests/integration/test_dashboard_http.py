"""The head's HTTP service against a real client: authentication, JSON errors for bad
input, limits, cross-site refusal, the OpenAPI document, and a bounded schemathesis run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import manta
from tests.http_api import request
from tests.polling import wait_until


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory):
    # Jobs without a working_dir run in the directory the cluster was started from, and the
    # fuzzer's jobs run random text as shell commands (one wrote a file): start it elsewhere.
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("jobs_cwd"))
    try:
        context = manta.init(num_cpus=1, include_dashboard=True)
        token = Path(context["session_dir"], "token").read_text().strip()
        yield {
            "url": "http://" + context.dashboard_url,
            "token": token,
            "session_dir": context["session_dir"],
        }
        manta.shutdown()
    finally:
        os.chdir(here)


def submitted_jobs(head: dict[str, str]) -> list[dict]:
    """The jobs listed as submitted (drivers, like this module's own, are listed too)."""
    return [j for j in request(head, "GET", "/api/jobs/")[1] if j["type"] == "SUBMISSION"]


def dashboard_log(head: dict[str, str]) -> str:
    return Path(head["session_dir"], "logs", "dashboard.err").read_text()


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
@pytest.mark.parametrize("method,path", [("GET", "/api/version"), ("GET", "/api/jobs/"), ("GET", "/nope")])
def test_every_route_needs_the_token(head, token, method, path) -> None:
    status, body = request(head, method, path, token=token)
    assert status == 401 and "authentication required" in body["error"]


def test_refused_submission_runs_nothing_and_is_logged(head, tmp_path) -> None:
    marker = tmp_path / "ran"
    status, _ = request(head, "POST", "/api/jobs/", {"entrypoint": f"touch {marker}"}, token="bad")
    assert status == 401
    assert submitted_jobs(head) == []
    assert not marker.exists()
    wait_until(lambda: "refused POST '/api/jobs/' from 127.0.0.1" in dashboard_log(head))


def test_a_flood_of_refusals_is_rate_limited_in_the_log(head) -> None:
    for _ in range(60):
        request(head, "GET", "/api/version", token="flood")
    assert dashboard_log(head).count("refused GET '/api/version'") <= 25
    assert request(head, "GET", "/api/version")[0] == 200  # legitimate users still served


def test_version_and_openapi(head) -> None:
    status, version = request(head, "GET", "/api/version")
    assert status == 200 and version["version"] == "1" and version["manta_version"] == manta.__version__
    status, doc = request(head, "GET", "/api/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    submit = doc["paths"]["/api/jobs/"]["post"]
    schema = submit["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["entrypoint"] and "runtime_env" in schema["properties"]
    assert submit["x-manta-role"] == "submit"


def test_unknown_route_is_a_json_404(head) -> None:
    status, body = request(head, "GET", "/api/nothing-here")
    assert status == 404 and body["error"] == "Not Found"
    status, body = request(head, "PATCH", "/api/jobs/")
    assert status == 405 and "error" in body


@pytest.mark.parametrize(
    "raw,words",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"entrypoint": 5}', "field 'entrypoint' must be of type string"),
        (b"{}", "missing required field 'entrypoint'"),
        (b'{"entrypoint": "true", "entrypont_num_cpus": 1}', "unknown field(s) ['entrypont_num_cpus']"),
        (b'{"entrypoint": "true", "entrypoint_num_cpus": -1}', "must be at least 0"),
        (b'{"entrypoint": "true", "entrypoint_num_cpus": true}', "must be of type number"),
        (b'{"entrypoint": "true", "metadata": {"a": 1}}', "must map strings to values of type string"),
        (b'{"entrypoint": "   "}', "non-empty shell command"),
        (b'{"entrypoint": "true", "submission_id": "../../etc"}', "invalid submission_id"),
        (b'{"entrypoint": "true", "runtime_env": {"pipp": []}}', "Supported keys: ['env_vars'"),
        (b'{"entrypoint": "true", "runtime_env": {"env_vars": {"A": 1}}}', "Dict[str, str]"),
        (b'{"entrypoint": "true", "runtime_env": {"working_dir": "/"}}', "must be uploaded packages"),
        (b'{"entrypoint": "true", "runtime_env": {"py_modules": ["."]}}', "must be uploaded packages"),
        (b'{"entrypoint": "true", "runtime_env": {"pip": "/proc/self/mem"}}', "names a file"),
        (b'{"entrypoint": "true", "runtime_env": {"uv": {"packages": "/etc/hostname"}}}', "names a file"),
        ("\xff\xfe".encode("latin-1"), "not valid JSON"),
        (b'{"entrypoint": "true", "entrypoint_num_cpus": NaN}', "NaN is not a JSON number"),
        (b'{"entrypoint": "true", "entrypoint_resources": {"x": Infinity}}', "Infinity is not a JSON number"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_bad_submissions_are_400_naming_the_problem(head, raw, words) -> None:
    status, body = request(head, "POST", "/api/jobs/", raw=raw)
    assert status == 400, body
    assert words in body["error"]


def test_valid_fields_are_listed_for_an_unknown_one(head) -> None:
    _, body = request(head, "POST", "/api/jobs/", {"entrypoint": "true", "bogus": 1})
    assert "valid fields are ['entrypoint', 'entrypoint_memory'" in body["error"]


def test_oversized_body_is_413(head) -> None:
    status, body = request(head, "POST", "/api/jobs/", raw=b'{"entrypoint": "' + b"x" * (2 << 20) + b'"}')
    assert status == 413 and "error" in body


def test_cross_site_posts_are_refused(head) -> None:
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        status, body = request(head, "POST", "/api/jobs/", {"entrypoint": "true"}, headers=headers)
        assert status == 403 and "cross-site" in body["error"], headers
    assert submitted_jobs(head) == []


def test_unknown_jobs(head) -> None:
    for method, path in (
        ("GET", "/api/jobs/nope"),
        ("POST", "/api/jobs/nope/stop"),
        ("DELETE", "/api/jobs/nope"),
    ):
        status, body = request(head, method, path)
        assert status == 404 and "does not exist" in body["error"], (method, path)
    status, _ = request(head, "GET", "/api/jobs/nope/logs")
    assert status == 404


def test_packages_are_checked(head) -> None:
    name = "_manta_pkg_" + "0" * 32 + ".zip"
    assert request(head, "GET", f"/api/packages/gcs/{name}")[0] == 404
    status, body = request(head, "PUT", f"/api/packages/gcs/{name}", raw=b"not a zip")
    assert status == 400 and "do not match the digest" in body["error"]
    # Ray's own job client names packages by a hash of their files: taken if a zip.
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hi.py", "print('hi')\n")
    ray_name = "_ray_pkg_0123456789abcdef.zip"
    assert request(head, "PUT", f"/api/packages/gcs/{ray_name}", raw=buf.getvalue())[0] == 200
    assert request(head, "GET", f"/api/packages/gcs/{ray_name}")[0] == 200
    status, body = request(head, "PUT", "/api/packages/gcs/_ray_pkg_0123456789abcdef0.zip", raw=b"not a zip")
    assert status == 400 and "not a zip" in body["error"]
    status, body = request(head, "PUT", "/api/packages/s3/x.zip", raw=b"x")
    assert status == 400 and "unknown package protocol" in body["error"]
    status, body = request(head, "PUT", "/api/packages/gcs/..%2F..%2Fetc.zip", raw=b"x")
    assert status in (400, 404)


@pytest.mark.skipif(
    shutil.which("schemathesis") is None and shutil.which("st") is None,
    reason="schemathesis is not installed",
)
@pytest.mark.parametrize("role", ["admin", "submit", "read"])
def test_schemathesis_finds_no_server_errors(head, tmp_path, role) -> None:
    """Fuzz every documented operation from the OpenAPI document with a token of each
    role: no 5xx, no crash (a weaker role gets its 403s). The jobs it submits run random
    strings as shell commands, which fail harmlessly."""
    exe = shutil.which("schemathesis") or shutil.which("st")
    assert exe is not None
    token = head["token"]
    if role != "admin":
        status, issued = request(head, "POST", "/api/tokens", {"role": role, "name": f"schemathesis-{role}"})
        assert status == 200, issued
        token = issued["token"]
    result = subprocess.run(
        [
            exe,
            "run",
            head["url"] + "/api/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "8",
            "--phases",
            "examples,fuzzing",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"Test cases:\s+\d+ generated, \d+ passed", result.stdout), result.stdout[-2000:]
    assert request(head, "GET", "/api/version")[0] == 200  # still serving
    # Jobs the fuzzer submitted: stop them so the module ends clean.
    for job in submitted_jobs(head):
        request(head, "POST", f"/api/jobs/{job['submission_id']}/stop")


def test_a_taken_port_is_an_error_only_when_it_was_asked_for(head) -> None:
    from tests.integration.conftest import run_driver

    taken = int(head["url"].rsplit(":", 1)[1])
    result = run_driver(
        f"""
        import manta
        from manta._private.api.local_cluster import ClusterStartError
        try:
            manta.init(num_cpus=1, include_dashboard=True, dashboard_port={taken})
        except ClusterStartError as e:
            print("refused:", e)
        print("initialized:", manta.is_initialized())
        ctx = manta.init(num_cpus=1, include_dashboard=True, ignore_reinit_error=True)
        print("url:", ctx.dashboard_url)
        """
    )
    assert result.returncode == 0, result.stderr
    assert f"refused: the dashboard cannot listen on 127.0.0.1:{taken}" in result.stdout
    assert "initialized: False" in result.stdout
    url = result.stdout.split("url: ", 1)[1].split()[0]
    assert url.startswith("127.0.0.1:") and url != f"127.0.0.1:{taken}"


def test_bodies_arriving_in_many_pieces_are_read_whole(head) -> None:
    """Large bodies reach the server in many TCP segments: a 300 KB submission and a 20 MB
    package upload are read whole (their digest and JSON check out)."""
    import hashlib
    import io
    import zipfile

    env_vars = {f"V{i}": "x" * 100 for i in range(3000)}  # ~300 KB of JSON
    status, body = request(
        head, "POST", "/api/jobs/", {"entrypoint": "true", "runtime_env": {"env_vars": env_vars}}
    )
    assert status == 200, body
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("blob.bin", os.urandom(20 << 20))
    data = buf.getvalue()
    name = f"_manta_pkg_{hashlib.sha256(data).hexdigest()[:32]}.zip"
    assert request(head, "PUT", f"/api/packages/gcs/{name}", raw=data) == (200, {"uploaded": name})
    assert request(head, "GET", f"/api/packages/gcs/{name}")[0] == 200


def test_odd_credentials_and_paths_are_refused_not_failed(head) -> None:
    status, _ = request(head, "GET", "/api/version", token="\xff\xfe")
    assert status == 401
    status, _ = request(head, "GET", "/api/x%0Aforged%20line", token="bad")
    assert status == 401
    log = dashboard_log(head)
    assert "internal error" not in log and "\nforged line" not in log


TRAVERSALS = [
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%252F..%252Fetc%252Fpasswd",
    "%2Fetc%2Fpasswd",
    "..%5C..%5Cetc%5Cpasswd",
    "name%00.zip",
    "....%2F%2F....%2F%2Fetc%2Fpasswd",
]
NAMED_ROUTES = [
    ("GET", "/api/jobs/{}"),
    ("GET", "/api/jobs/{}/logs"),
    ("GET", "/api/jobs/{}/provenance"),
    ("POST", "/api/jobs/{}/stop"),
    ("DELETE", "/api/jobs/{}"),
    ("GET", "/api/packages/gcs/{}"),
    ("PUT", "/api/packages/gcs/{}"),
    ("DELETE", "/api/tokens/{}"),
    ("POST", "/api/tokens/{}/rotate"),
]


@pytest.mark.parametrize("method,template", NAMED_ROUTES)
def test_names_that_climb_out_are_refused_on_every_route(head, method, template) -> None:
    """No route that takes a name serves, writes or touches anything outside its own
    records: encoded, double-encoded, absolute and backslashed paths are 4xx."""
    for name in TRAVERSALS:
        raw = b"x" if method == "PUT" else (b"{}" if method == "POST" else None)
        status, body = request(head, method, template.format(name), raw=raw)
        assert 400 <= status < 500, (method, name, status, body)
        assert "root:" not in str(body)


def test_tokens_never_reach_a_log(head) -> None:
    """After requests with good, user and wrong tokens, no log of the session holds any
    token's text (refusals name the peer, never what it sent)."""
    status, issued = request(head, "POST", "/api/tokens", {"role": "read", "name": "never-logged"})
    assert status == 200
    wrong = "mt_0123456789ab_" + "e" * 64
    for token in (issued["token"], wrong, "plain-wrong-token", head["token"]):
        request(head, "GET", "/api/jobs/", token=token)
        request(head, "POST", "/api/jobs/", {"entrypoint": 5}, token=token)
    request(head, "DELETE", "/api/tokens/never-logged")
    secrets = (head["token"], issued["token"], wrong, "plain-wrong-token")
    for path in Path(head["session_dir"], "logs").iterdir():
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a token is in {path}"
