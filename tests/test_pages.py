"""The server's pages in a real headless Chromium with the network unavailable: /docs renders
/predict and "Try it out" gets a prediction, / shows its links; no page asks
any host but the server. Plus the front page's JSON, content negotiation and redaction."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi.openapi.docs import get_swagger_ui_html

from predcache.artifact import artifact_path, read_header
from predcache.predictor import Predictor
from predcache.server import front
from predcache.server.settings import ServeSettings
from predcache.store.memory import MemoryStore
from tests.conftest import FakeModels
from tests.fixtures.browser import Browser
from tests.fixtures.server import RunningServer
from tests.pagecheck import external_refs

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

#: Swagger UI, driven like a person: open GET /predict, "Try it out", type ETH/EUR, "Execute";
#: returns "DONE <status> <body>" once the live response is shown (each click happens once)
TRY_IT_OUT = """(() => {
  const op = document.querySelector('#operations-default-predict_get');
  if (!op) return false;
  if (!op.querySelector('.opblock-body')) {
    if (!window.__opened) {
      window.__opened = 1;
      op.querySelector('.opblock-summary-control').click();
    }
    return false;
  }
  const tryBtn = op.querySelector('.try-out__btn');
  if (tryBtn && tryBtn.textContent.trim() === 'Try it out') {
    if (!window.__tried) { window.__tried = 1; tryBtn.click(); }
    return false;
  }
  const input = op.querySelector('tr[data-param-name="pair"] input');
  if (!input) return false;
  if (input.value !== 'ETH/EUR') {
    const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
    set.call(input, 'ETH/EUR');
    input.dispatchEvent(new Event('input', {bubbles: true}));
    window.__typed = Date.now();
    return false;
  }
  const status = op.querySelector('.live-responses-table tr.response .response-col_status');
  // pair is optional (product_id works too), so a click React answered before it took the
  // typed value sends no pair and shows a 422: click again, as a person would
  const early = status && status.textContent.trim() === '422' && (window.__clicks || 0) < 5;
  if (!status || early) {
    // let React take the typed value first; a click it missed is made again after 2 s
    const now = Date.now();
    if (now - window.__typed > 300 && now - (window.__run || 0) > 2000) {
      window.__run = now;
      window.__clicks = (window.__clicks || 0) + 1;
      op.querySelector('.execute').click();
    }
    return false;
  }
  const body = op.querySelector('.live-responses-table .microlight');
  return 'DONE ' + status.textContent.trim() + ' ' + (body ? body.textContent : '');
})()"""


def _only_the_server(requests: list[str], server: RunningServer) -> None:
    """Every request went to the server itself or stayed in the page (data: URIs)."""
    assert requests, "the page made no request at all?"
    assert [u for u in requests if not u.startswith((server.url + "/", "data:"))] == []


def test_docs_render_predict_offline_and_try_it_out_works(
    browser: Browser, shared_server: RunningServer, shots: Path
) -> None:
    visit = browser.visit(
        f"{shared_server.url}/docs", until=TRY_IT_OUT, screenshot=shots / "docs.png", full_page=True
    )
    status, _, body = visit.value.removeprefix("DONE ").partition(" ")
    assert status == "200", body
    answer = json.loads(body)
    assert (answer["product_id"], answer["horizon_s"]) == ("ETH/EUR", 300)
    assert "POST\n/predict" in visit.text and "GET\n/predict" in visit.text
    _only_the_server(visit.requests, shared_server)
    assert f"{shared_server.url}/static/docs/swagger-ui-bundle.js" in visit.requests
    assert visit.failed == []


def test_there_is_no_redoc(shared_server: RunningServer) -> None:
    """ReDoc loads its logo from its CDN even when self-hosted, so it is not served."""
    assert httpx.get(f"{shared_server.url}/redoc").status_code == 404


def test_front_page_in_a_browser_shows_links_settings_and_models(
    browser: Browser, shared_server: RunningServer, trained_models: Path, shots: Path
) -> None:
    links = "Array.from(document.querySelectorAll('#links a')).map(a => a.getAttribute('href'))"
    visit = browser.visit(
        f"{shared_server.url}/",
        until=f"document.querySelector('#models') && {links}",
        screenshot=shots / "front.png",
        full_page=True,
    )
    # exactly the routes this server answers, in the page's order
    answering = [p for p, _ in front.LINKS if httpx.get(shared_server.url + p).status_code == 200]
    assert visit.value == answering
    assert {"/docs", "/metrics", "/health", "/openapi.json"} <= set(answering)
    version = read_header(artifact_path(trained_models, "ETH/EUR"), "ETH/EUR").version
    assert f"ETH/EUR\t{version}\t1m, 5m, 15m, 1h" in visit.text
    assert "TTL\t1m30s" in visit.text or "TTL\t90s" in visit.text
    assert "backend\tdisk" in visit.text
    assert "stampede strategy\tcoalesce" in visit.text
    assert f"curl -s '{shared_server.url}/predict?pair=ETH/EUR&horizon=5m'" in visit.text
    _only_the_server(visit.requests, shared_server)


def test_browser_sees_no_network_and_records_what_a_page_asks(
    browser: Browser, tmp_path: Path
) -> None:
    """The control: a page that needs a CDN is caught (so the checks above can fail)."""
    page = tmp_path / "cdn.html"
    page.write_text(get_swagger_ui_html(openapi_url="/openapi.json", title="t").body.decode())
    visit = browser.visit(page.as_uri(), until="document.readyState === 'complete'")
    cdn = {
        "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css",
        "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js",
    }
    # the favicon on fastapi's site is asked for too, but whether before the load event varies
    assert cdn <= set(visit.other_hosts()) <= cdn | {"https://fastapi.tiangolo.com/img/favicon.png"}
    assert set(visit.failed) == {"net::ERR_NAME_NOT_RESOLVED"}
    assert set(external_refs(page.read_text())) == cdn | {
        "https://fastapi.tiangolo.com/img/favicon.png"
    }


@pytest.mark.parametrize("path", ["/", "/docs", "/docs/oauth2-redirect"])
def test_served_html_references_no_other_host(shared_server: RunningServer, path: str) -> None:
    r = httpx.get(shared_server.url + path, headers={"Accept": BROWSER_ACCEPT})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert external_refs(r.text) == []


def test_front_page_json_for_api_clients(shared_server: RunningServer) -> None:
    for headers in ({}, {"Accept": "application/json"}, {"Accept": "*/*"}):
        r = httpx.get(shared_server.url + "/", headers=headers)
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.headers["vary"] == "Accept"
        data = r.json()
        assert data["cache"] == {
            "enabled": True,
            "backend": "disk",
            "backend_spec": "disk",
            "ttl_s": 90.0,
            "stampede": "coalesce",
            "refresh_ahead": False,
            "simulated_model_delay_s": 0.0,
            "workers": 1,
        }
        assert [link["path"] for link in data["links"]][:2] == ["/docs", "/openapi.json"]
        assert data["example"]["path"] == "/predict?pair=ETH/EUR&horizon=5m"
        assert {m["pair"] for m in data["models"] if m["version"]} >= {"ETH/EUR", "BTC/USD"}


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        (BROWSER_ACCEPT, True),
        ("text/html", True),
        ("application/json, text/html;q=0.5", False),
        ("text/html;q=0.5, application/json;q=0.9", False),
        ("text/html;q=0.9, application/json;q=0.9", True),
        ("text/html;q=0", False),
        ("text/html;q=bogus, */*", False),
        ("TEXT/HTML", True),
    ],
)
def test_wants_html(accept: str | None, html: bool) -> None:
    assert front.wants_html(accept) is html


def test_front_page_never_shows_a_backend_password() -> None:
    settings = ServeSettings(backend="redis://app:s3cret@127.0.0.1:6379/0")
    predictor = Predictor(MemoryStore(), FakeModels())
    data = front.facts(settings, predictor, "http://127.0.0.1:1/", ["/docs"])
    assert data["cache"]["backend_spec"] == "redis://app:***@127.0.0.1:6379/0"
    page = front.render_html(data, favicon="/f.png")
    assert "s3cret" not in json.dumps(data) and "s3cret" not in page
    assert "redis://app:***@127.0.0.1:6379/0" in page
    assert data["links"] == [{"path": "/docs", "about": front.LINKS[0][1]}]


def test_front_page_without_cache_says_so() -> None:
    settings = ServeSettings(ttl_s=0, model_delay_s=1.0)
    data = front.facts(settings, Predictor(None, FakeModels()), "http://h/", [])
    assert data["cache"]["enabled"] is False and data["cache"]["backend"] is None
    page = front.render_html(data, favicon="/f.png")
    assert "<th>TTL</th><td>off (every request computes)</td>" in page
    assert "<th>model delay</th><td>1s (simulated)</td>" in page
    # a user-supplied model source (not the registry) has no artifact to show
    assert data["models"][0] == {
        "pair": "ETH/EUR",
        "version": None,
        "horizons_s": [],
        "note": "model supplied by the user's code",
    }
