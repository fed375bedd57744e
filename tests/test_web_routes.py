"""The dashboard's routes through Starlette's TestClient, on SQLite and PostgreSQL: every page, the filters and
paging, each action and its audit entry, escaping of hostile text, and the refusals (Host, token, Origin, CSRF,
read-only)."""

from __future__ import annotations

import re

import pytest
from web_support import IMG, SCRIPT, client, fill, post

import dspy_trainkit as tk

PAGES = ["/", "/ready?task=qa", "/examples", "/review", "/quality", "/quality?task=qa", "/snapshots", "/runs",
         "/runs?task=qa",
         "/effectiveness", "/plugins", "/settings", "/healthz", "/metrics"]


@pytest.fixture
def filled(store_url):
    return store_url, fill(store_url)


def test_every_page_answers_and_shows_its_data(filled):
    url, ids = filled
    with tk.open(url) as kit:
        kit.snapshot("first")
        kit.set_status("accepted", ids=ids[:1], actor="test")
        kit.snapshot("second")
    with client(url) as c:
        pages = {path: c.get(path) for path in [*PAGES, f"/examples/{ids[1]}", "/snapshots/first",
                                                "/snapshots?a=first&b=second"]}
        c_fragment = c.get("/ready?task=qa", headers={"hx-request": "true"}).text
    assert {path: r.status_code for path, r in pages.items()} == {path: 200 for path in pages}
    assert "accepted 9" in pages["/"].text and "candidate 3" in pages["/"].text
    assert pages["/healthz"].text == "ok 12 examples\n"
    assert 'hx-get="/ready?task=qa"' in pages["/"].text  # readiness loads after the page (seconds on 1M)
    assert "<strong>not ready</strong> (9/10 accepted)" in pages["/ready?task=qa"].text
    assert "<html" in pages["/ready?task=qa"].text  # without htmx it is a page of its own
    assert "<html" not in c_fragment
    assert "trainkit_examples{" in pages["/metrics"].text
    assert "added 1" in pages["/snapshots?a=first&b=second"].text
    assert "add-odd" in pages["/quality?task=qa"].text and "<svg" in pages["/quality?task=qa"].text
    assert "web" in pages["/plugins"].text and "sqlstore" in pages["/plugins"].text
    detail = pages[f"/examples/{ids[1]}"].text
    assert re.search(r"<td>coherence</td><td>[0-9.]+</td><td>coherence \d", detail)
    assert re.search(r"<td>novelty</td><td>[0-9.]+</td><td>neardup \d", detail)
    assert "What is 1 plus 1?" in detail and 'id="audit"' in detail


def test_example_filters_text_search_and_keyset_paging(filled):
    url, ids = filled
    with client(url) as c:
        odd = c.get("/examples", params={"task": "qa", "topic": "add-odd"}).text
        candidates = c.get("/examples", params={"status": "candidate"}).text
        found = c.get("/examples", params={"q": "7 PLUS 7"}).text  # case-insensitive, inside the JSON text
        nothing = c.get("/examples", params={"q": "100%"}).text  # % is searched for, not a wildcard
        bad = c.get("/examples", params={"min_quality": "high"})
        typo = c.get("/examples", params={"status": "acepted"})
        import dspy_trainkit_web.reads as reads

        old = reads.PAGE
        reads.PAGE = 5
        try:
            first = c.get("/examples", params={"task": "qa"}).text
            nxt = re.search(r'id="next-page" href="([^"]+)"', first).group(1).replace("&amp;", "&")
            second = c.get(nxt).text
        finally:
            reads.PAGE = old
    listed = lambda text: set(re.findall(r'href="/examples/([0-9a-f]{32})"', text))  # noqa: E731
    assert listed(odd) == {i for n, i in enumerate(ids) if n % 2}
    assert listed(candidates) == set(ids[:4])
    assert listed(found) == {ids[7]}
    assert listed(nothing) == set()
    assert bad.status_code == 400 and "min quality: &#39;high&#39; is not a number" in bad.text
    assert typo.status_code == 400 and "status &#39;acepted&#39;: use one of accepted" in typo.text
    assert len(listed(first)) == 5 and len(listed(second)) == 5 and not listed(first) & listed(second)
    assert listed(first) == set(ids[-5:])  # newest first


def test_hostile_text_is_escaped_everywhere_it_shows(filled):
    url, ids = filled
    with client(url) as c:
        pages = [c.get(p).text for p in ("/examples", f"/examples/{ids[0]}", "/review", "/")]
    for text in pages[:3]:
        assert SCRIPT not in text and "<img src=x" not in text
    assert "&lt;script&gt;" in pages[1] and "&lt;img src=x onerror=alert(1)&gt;" in pages[1]
    assert IMG not in pages[1]


def test_accept_reject_edit_and_bulk_land_in_the_audit_trail_with_the_user(filled):
    url, ids = filled
    with client(url) as c:
        accepted = post(c, f"/examples/{ids[0]}/status", {"status": "accepted", "next": "/review?task=qa"})
        no_reason = post(c, f"/examples/{ids[1]}/status", {"status": "rejected"})
        rejected = post(c, f"/examples/{ids[1]}/status", {"status": "rejected", "reason": "wrong sum"})
        edited = post(c, f"/examples/{ids[2]}/edit", {"outputs": '{"answer": "It is 4, checked."}',
                                                      "topic": "add-even", "status": "accepted", "reason": "fixed"})
        bad_json = post(c, f"/examples/{ids[2]}/edit", {"outputs": "{nope"})
        bulk = post(c, "/review/bulk", {"ids": [ids[3], ids[5]], "status": "archived"})
        offsite = post(c, f"/examples/{ids[4]}/status", {"status": "archived", "next": "https://evil.example/"})
        review = c.get("/review?task=qa").text
        audit = c.get(f"/examples/{ids[1]}").text
    assert accepted.status_code == 303 and accepted.headers["location"] == "/review?task=qa"
    assert no_reason.status_code == 400 and "needs a reason" in no_reason.text
    assert rejected.status_code == edited.status_code == bulk.status_code == 303
    assert bad_json.status_code == 400 and "outputs: not JSON" in bad_json.text
    assert offsite.headers["location"] == f"/examples/{ids[4]}"  # never redirected off the dashboard
    assert "No candidates to review" in review
    assert re.search(r'class="actor">web:tester</td><td>wrong sum', audit)
    with tk.open(url) as kit:
        assert [kit.get(i).status for i in ids[:6]] == ["accepted", "rejected", "accepted", "archived", "archived",
                                                        "archived"]
        assert kit.get(ids[2]).outputs == {"answer": "It is 4, checked."}
        actors = {e.actor for e in kit.events() if e.kind != "added" and e.actor != "test"}
    assert actors == {"web:tester"}


def test_alert_acknowledge_and_recommendation_apply(filled):
    url, ids = filled
    from dspy_trainkit.pluginkit import Alert

    alert = Alert(task="qa", rule="test-rule", title="Something to look at", message="look")
    with tk.open(url) as kit:
        kit.store.save_alert(alert)
    with client(url) as c:
        page = c.get("/effectiveness?task=qa").text
        acked = post(c, f"/alerts/{alert.id}/acknowledge", {"next": "/effectiveness?task=qa"})
        unknown = post(c, "/recommendations/apply", {"task": "qa", "rec_id": "nope"})
    assert "Something to look at" in page and f"/alerts/{alert.id}/acknowledge" in page
    assert acked.status_code == 303
    assert unknown.status_code in (400, 404) and "nope" in unknown.text
    with tk.open(url) as kit:
        stored = kit.alerts(task="qa")[0]
    assert (stored.status, stored.acknowledged_by) == ("acknowledged", "web:tester")


def test_cross_site_post_without_cookies_is_refused(filled):
    """What asgi-csrf let through: a form on another site, posted with no cookies at all."""
    url, ids = filled
    from starlette.testclient import TestClient

    with client(url) as c:
        bare = TestClient(c.app, follow_redirects=False)  # a fresh browser: no cookies
        cross = bare.post(f"/examples/{ids[0]}/status", data={"status": "accepted"},
                          headers={"origin": "https://evil.example"})
        no_origin = bare.post(f"/examples/{ids[0]}/status", data={"status": "accepted"})
        same_origin_no_cookie = bare.post(f"/examples/{ids[0]}/status", data={"status": "accepted", "csrf": "x"},
                                          headers={"origin": "http://testserver"})
        token = c.cookies.get("trainkit_csrf")
        cross_with_token = c.post(f"/examples/{ids[0]}/status", data={"status": "accepted", "csrf": token},
                                  headers={"origin": "https://evil.example"})
        wrong_token = post(c, f"/examples/{ids[0]}/status", {"status": "accepted", "csrf": "forged"})
        null_origin = c.post(f"/examples/{ids[0]}/status", data={"status": "accepted", "csrf": token},
                             headers={"origin": "null"})
        referer_ok = c.post(f"/examples/{ids[0]}/status", data={"status": "rejected", "csrf": token,
                                                                 "reason": "r"},
                            headers={"referer": "http://testserver/review"})
    assert [r.status_code for r in (cross, no_origin, same_origin_no_cookie, cross_with_token, wrong_token,
                                    null_origin)] == [403] * 6
    assert "Origin" in cross.text and "CSRF" in wrong_token.text
    assert referer_ok.status_code == 303  # a browser that sends Referer but no Origin still works
    with tk.open(url) as kit:
        assert kit.get(ids[0]).status == "rejected"
        assert not [e for e in kit.events(example_id=ids[0]) if e.actor == "web:tester" and "accept" in e.kind]


def test_token_is_required_on_every_request(filled):
    url, _ = filled
    secret = "s3cret-token-for-tests-0123456789"
    with client(url, token=secret) as c:
        c.cookies.clear()
        refused = [c.get(p).status_code for p in ("/", "/healthz", "/metrics", "/static/app.css")]
        wrong = c.get("/", headers={"authorization": "Bearer nope"}).status_code
        bearer = c.get("/", headers={"authorization": f"Bearer {secret}"}).status_code
        login = c.get(f"/examples?token={secret}&status=accepted")
        after = c.get("/examples").status_code
        framed = c.get("/")
        page = framed.text
        away = [c.get(f"{path}?token={secret}").headers.get("location") for path in ("//evil.example/",
                                                                                       "/\\evil.example")]
    assert refused == [401, 401, 401, 401] and wrong == 401 and bearer == 200
    assert login.status_code == 303 and login.headers["location"] == "/examples?status=accepted"
    assert away == ["/", "/"]  # the login redirect never leaves the dashboard
    # no page may be framed by another page, even one on another port of this host (clickjacking)
    assert framed.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in framed.headers["content-security-policy"]
    assert after == 200 and secret not in page


def test_host_header_must_name_the_bind(filled):
    url, _ = filled
    with client(url) as c:
        rebound = c.get("/", headers={"host": "attacker.example"})
        with_port = c.get("/", headers={"host": "testserver:8765"})
    assert rebound.status_code == 400 and "Host" in rebound.text
    assert with_port.status_code == 200


def test_read_only_has_no_mutating_routes(filled):
    url, ids = filled
    with client(url, read_only=True) as c:
        methods = {m for route in c.app.routes for m in (getattr(route, "methods", None) or ())}
        attempt = post(c, f"/examples/{ids[0]}/status", {"status": "rejected", "reason": "r"})
        pages = [c.get(p).text for p in ("/review", f"/examples/{ids[0]}", "/effectiveness")]
    assert methods <= {"GET", "HEAD"}
    assert attempt.status_code in (404, 405)
    assert all("<form method=\"post\"" not in p and 'method="post"' not in p for p in pages)
    assert "read-only" in pages[0]
    with tk.open(url) as kit:
        assert kit.get(ids[0]).status == "candidate"


def test_settings_page_redacts_secrets(tmp_path, monkeypatch):
    url = "postgresql://trainkit:hunter2-secret@db.example:5432/tk"
    from dspy_trainkit_web.reads import tasks  # noqa: F401  (the plugin imports without a server)

    from dspy_trainkit.pluginkit import settings_data

    db = f"sqlite:///{tmp_path / 's.db'}"
    with tk.open(db) as kit:
        import attrs

        kit.settings = attrs.evolve(kit.settings, store_url=url)
        shown = str(settings_data(kit))
    assert "hunter2-secret" not in shown and "***" in shown


def test_store_text_search_and_keyset_paging(kit):
    """The store interface's `text` and `after` (what the examples page pages with), on both backends."""
    ids = [kit.add(task="qa", inputs={"question": q}, outputs={"answer": "a"}).id
           for q in ("Über 50% of cats", 'say "hi"', "under_score", "plain")]
    found = lambda **q: [e.id for e in kit.examples(**q)]  # noqa: E731
    assert found(text="über 50%") == [ids[0]] or found(text="Über 50%") == [ids[0]]
    assert found(text="50%") == [ids[0]] and found(text="5%") == []  # % is literal
    assert found(text='"hi"') == [ids[1]] and found(text="rXs") == []
    assert found(text="er_s") == [ids[2]] and found(text="e_s") == [] and found(text="r_sc") == [ids[2]]
    assert found(after=ids[1]) == ids[2:] and found(after=ids[2], order="-created") == ids[1::-1]
    assert kit.count(text="cats") == 1
    # the values are searched, not the stored JSON: field names, quotes and braces find nothing by themselves
    assert found(text="question") == [] and found(text="answer") == [] and found(text='"') == [ids[1]]
    assert found(text="{") == [] and found(text=":") == []
    numbered = kit.add(task="qa", inputs={"question": "count"}, outputs={"answer": "a", "n": 40213}).id
    assert found(text="4021") == [numbered]
    kit.add(task="other", inputs={"question": "q"}, outputs={"answer": "a"}, topic="t1")
    assert kit.store.distinct_values("task") == ["other", "qa"]
    assert kit.store.distinct_values("topic") == ["t1"]
    with pytest.raises(tk.StoreError, match="keyset"):
        found(after=ids[0], order="-quality")


def test_serve_refuses_a_public_bind_without_a_token(tmp_path):
    from click.testing import CliRunner

    from dspy_trainkit.cli.main import cli

    db = f"sqlite:///{tmp_path / 's.db'}"
    tk.open(db).close()
    result = CliRunner().invoke(cli, ["--db", db, "serve", "--host", "0.0.0.0"])
    short = CliRunner().invoke(cli, ["--db", db, "serve", "--host", "0.0.0.0", "--token", "short"])
    assert result.exit_code != 0 and "needs an access token; pass --token TOKEN or set TRAINKIT_WEB_TOKEN" \
        in result.output
    assert short.exit_code != 0 and "at least 16 characters" in short.output


def test_help_does_not_import_the_web_stack():
    import subprocess
    import sys

    code = ("import sys; from click.testing import CliRunner; from dspy_trainkit.cli.main import cli; "
            "r = CliRunner().invoke(cli, ['--help']); assert 'serve' in r.output, r.output; "
            "print(sorted(m for m in ('starlette', 'jinja2', 'uvicorn', 'dspy_trainkit_web.app') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_overview_refreshes_when_data_changes(filled):
    url, ids = filled
    with client(url) as c:
        seen = re.search(r'hx-get="/live\?seen=([^"]+)"', c.get("/").text).group(1)
        unchanged = c.get("/live", params={"seen": seen.replace("&#34;", '"')})
        with tk.open(url) as kit:
            kit.set_status("accepted", ids=ids[:1], actor="cli")
        changed = c.get("/live", params={"seen": seen})
    assert unchanged.status_code == 204
    assert changed.status_code == 200 and changed.headers["HX-Refresh"] == "true"


def test_pages_and_actions_while_another_process_writes(filled):
    """Requests arrive on many threads while another writer adds examples: every answer is right, nothing is
    lost (the kit's own thread serialises the dashboard's store use)."""
    import concurrent.futures

    url, ids = filled

    def writer() -> int:
        with tk.open(url) as kit:
            return sum(len(kit.add_many([{"task": "qa", "inputs": {"question": f"w{n}-{i}"},
                                          "outputs": {"answer": "x"}} for i in range(10)]).ids) for n in range(5))

    with client(url) as c, concurrent.futures.ThreadPoolExecutor(8) as pool:
        written = pool.submit(writer)
        reads = [pool.submit(c.get, path) for path in PAGES * 2]
        accepted = [pool.submit(post, c, f"/examples/{i}/status", {"status": "accepted"}) for i in ids[:4]]
        assert written.result() == 50
        assert [r.result().status_code for r in reads] == [200] * len(reads)
        assert [r.result().status_code for r in accepted] == [303] * 4
    with tk.open(url) as kit:
        assert kit.count() == 62 and kit.count(status="candidate") == 0


def test_unknown_things_are_404_with_a_message(filled):
    url, _ = filled
    with client(url) as c:
        example = c.get("/examples/ffffffffffffffffffffffffffffffff")
        snapshot = c.get("/snapshots/nope")
        run = c.get("/runs/nope")
    assert example.status_code == snapshot.status_code == run.status_code == 404
    assert "no example with id" in example.text and "no snapshot named" in snapshot.text


def test_an_action_shows_at_once_on_pages_that_reuse_slow_reads(filled):
    url, ids = filled
    with client(url) as c:
        before = c.get("/ready?task=qa").text  # readiness is kept for 60 s ...
        post(c, f"/examples/{ids[0]}/status", {"status": "accepted"})
        after = c.get("/ready?task=qa").text  # ... but not across a change made in the dashboard
    assert "(8/10 accepted)" in before and "(9/10 accepted)" in after


def test_a_bind_to_all_interfaces_answers_to_this_machines_own_addresses():
    import socket

    from dspy_trainkit_web.security import allowed_hosts, host_name, own_addresses

    hosts = allowed_hosts("0.0.0.0")
    resolved = {str(i[4][0]).split("%")[0].lower() for i in socket.getaddrinfo(socket.gethostname(), None)}
    assert resolved <= hosts and own_addresses() <= hosts
    assert any(a not in ("127.0.0.1", "::1") for a in own_addresses())  # a LAN address, not only loopback
    for address in own_addresses():  # as a browser sends it in Host
        assert host_name(f"[{address}]:8765" if ":" in address else f"{address}:8765") in hosts
    assert "attacker.example" not in hosts and "192.0.2.1" not in allowed_hosts("127.0.0.1")
