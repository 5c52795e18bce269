"""The virtual terminal's server side without a browser: its files, its event stream, --ui on the command line.

The stream is read from twisted.web's DummyRequest with a task.Clock (no socket, no wall clock); the process
contract from a real server process.
"""

import json
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from importlib import resources

import pytest
from helpers import SERVER_SCRIPT, WAIT
from twisted.internet import error, task
from twisted.internet.testing import StringTransport
from twisted.python import failure
from twisted.web import server
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from caisse_ap_ip import codes, prompt, settings, webui
from caisse_ap_ip.control import ControlAPI
from caisse_ap_ip.simulator import Simulator


def simulator(*argv: str):
    clock = task.Clock()
    return Simulator.from_argv(["-d", "0", *argv], clock), clock


class Request(DummyRequest):
    """DummyRequest, keeping the push producer an event stream registers (DummyRequest pulls it in a loop)."""

    producer = None

    def registerProducer(self, producer, streaming):
        assert streaming and self.producer is None
        self.producer = producer

    def unregisterProducer(self):
        self.producer = None


def get(api, path: str, **headers) -> Request:
    """A GET through the control API as twisted.web hands it over; the answer's bytes in ``body``."""
    base, _, query = path.partition("?")
    request = Request(base.lstrip("/").split("/"))
    request.path = base.encode()
    request.uri = path.encode()
    request.args = {
        key.encode(): [value.encode()] for key, _, value in (p.partition("=") for p in query.split("&") if p)
    }
    request.requestHeaders.setRawHeaders(b"host", [b"127.0.0.1:8080"])
    for name, value in headers.items():
        request.requestHeaders.setRawHeaders(name.encode(), [value.encode()])
    rendered = api.render(request)
    request.body = b"".join(request.written) if rendered is NOT_DONE_YET else rendered
    request.done = rendered is not NOT_DONE_YET
    return request


@pytest.fixture
def ui():
    sim, clock = simulator("--ui")
    api = ControlAPI(sim, None, webui.WebUI(sim))
    return api, sim, clock


def test_the_page_and_its_files_with_their_types_and_a_strict_policy(ui):
    api, _, _ = ui
    page = get(api, "/")
    assert page.body.startswith(b"<!doctype html>")
    assert page.responseHeaders.getRawHeaders(b"content-type") == [b"text/html; charset=utf-8"]
    policy = page.responseHeaders.getRawHeaders(b"content-security-policy")[0]
    assert b"default-src 'self'" in policy and b"frame-ancestors 'none'" in policy
    for path, kind in [("/ui/app.js", b"text/javascript"), ("/ui/app.css", b"text/css"), ("/ui/icon.svg", b"image")]:
        served = get(api, path)
        assert served.responseCode in (None, 200) and served.body, path
        assert served.responseHeaders.getRawHeaders(b"content-type")[0].startswith(kind), path
    missing = get(api, "/ui/nothing.js")
    assert missing.responseCode == 404 and "no file /ui/nothing.js" in json.loads(missing.body)["error"]
    assert json.loads(get(api, "/health").body)["status"] == "ok"  # the API's paths stay the API's


def test_every_file_the_page_names_is_shipped():
    page = (resources.files("caisse_ap_ip") / "web" / "index.html").read_text()
    for name in ("app.js", "app.css", "icon.svg"):
        assert f"/ui/{name}" in page
        assert f"/ui/{name}" in webui._files()


def test_the_page_takes_the_prompts_keys(ui):
    api, _, _ = ui
    built = json.loads(get(api, "/ui/page.json").body)
    assert built["keys"][0] == {"key": "Enter", "outcome": "success", "label": "approve"}
    assert {"key": "c", "outcome": "success:cbcontactless", "label": "contactless"} in built["keys"]
    assert [row["name"] for row in built["settings"]] == [row["name"] for row in webui.settings_form()]


def test_the_buttons_decide_as_the_prompts_keys_and_their_titles_say_what_the_pos_gets(ui):
    api, _, _ = ui
    built = json.loads(get(api, "/ui/page.json").body)
    named = re.findall(r'data-button="([^"]+)"', (resources.files("caisse_ap_ip") / "web" / "index.html").read_text())
    assert sorted(named) == sorted(built["buttons"])  # every button of the page, once
    keys = {"contactless": "c", "amex": "a", "check": "\r", "refused": "r", "forbidden": "f", "timeout": "t",
            "cancel": "x", "validate": "\r"}  # fmt: skip
    by_key = {name: prompt.BY_KEY[key].outcome for name, key in keys.items()}
    assert {name: built["buttons"][name]["outcome"] for name in keys} == by_key
    assert built["buttons"]["refused"]["title"] == "The bank refuses (AE=01 AF=04)"
    assert built["buttons"]["contactless"]["title"] == "Tap a CB card: paid at once (AE=10 CC=00B CI=2)"
    chips = {name: button["chip"] for name, button in built["buttons"].items() if button["chip"]}
    assert chips == {"insert-cb": "CARTE BANCAIRE", "amex": "AMERICAN EXPRESS"}  # the green key pays with them
    assert built["screen"]["timeout"] == "AE=01 AF=08"  # what nobody's decision answers (--ask-timeout)


def test_a_key_of_the_prompt_changed_changes_the_button_that_decides_as_it(monkeypatch):
    monkeypatch.setitem(prompt.BY_KEY, "r", prompt.Key("r", "failure:not-completed", "not completed (AF=07)"))
    sim, _ = simulator("--ui")
    refused = json.loads(get(ControlAPI(sim, None, webui.WebUI(sim)), "/ui/page.json").body)["buttons"]["refused"]
    assert (refused["outcome"], refused["title"]) == ("failure:not-completed", "The bank refuses (AE=01 AF=07)")


def test_the_screen_says_each_answer_in_the_words_of_one_table(ui):
    api, _, _ = ui
    told = json.loads(get(api, "/ui/page.json").body)["screen"]
    assert told["statuses"][codes.SUCCESS]["title"] == "PAIEMENT ACCEPTE"
    assert told["complements"][codes.INPUT_TIMEOUT] == {"title": "ABANDON", "detail": "TEMPS DEPASSE"}
    assert told["complements"][codes.FAILURE_TYPES["cardholder-abandon"]]["title"] == "ABANDON"
    assert set(told["complements"]) <= set(codes.STATUS_COMPLEMENTS)
    words = {told["failure"]["title"], *(status["title"] for status in told["statuses"].values())}
    words |= {text for complement in told["complements"].values() for text in complement.values()}
    web = resources.files("caisse_ap_ip") / "web"
    script, page = (web / "app.js").read_text(), (web / "index.html").read_text()
    assert [word for word in words if word in script + page] == []  # the page's files say none of them themselves
    assert re.findall(r"\b(?:AE|AF)=\d|\"(?:success|failure)[\":]", script) == []  # nor a code, nor an outcome


def test_the_settings_form_has_every_runtime_setting_once_the_usual_ones_first():
    form = webui.settings_form()
    assert sorted(row["name"] for row in form) == sorted(settings.RUNTIME)
    assert [row["name"] for row in form[: len(webui.FIRST_SETTINGS)]] == list(webui.FIRST_SETTINGS)
    kinds = {row["name"]: row["kind"] for row in form}
    assert (kinds["failure"], kinds["payment_type"], kinds["duration"], kinds["outcome"]) == (
        "flag", "choice", "number", "text",
    )  # fmt: skip
    outcome = next(row for row in form if row["name"] == "outcome")
    assert {"ask", "success:cbcontactless", "failure:refused"} <= set(outcome["suggestions"])
    assert "delay" not in outcome["suggestions"]  # not an outcome without its seconds


@pytest.mark.parametrize(
    ("argv", "shown"),
    [((), None), (("--proxy", "127.0.0.1:9100"), "127.0.0.1:9100"), (("--proxy", "[::1]:8888"), "[::1]:8888")],
)
def test_the_settings_name_the_real_terminal_behind_a_proxy_for_the_page_to_show(argv, shown):
    sim, _ = simulator("--ui", *argv)
    api = ControlAPI(sim, None, webui.WebUI(sim))
    assert json.loads(get(api, "/settings").body)["proxy"] == shown
    assert json.loads(get(api, "/settings?terminal=1").body)["proxy"] == shown


def events_of(request: Request) -> list[tuple[str, dict]]:
    """The events a stream wrote so far, as (kind, data)."""
    found = []
    for block in b"".join(request.written).decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def test_the_stream_says_hello_and_the_pending_list_then_every_event_until_the_browser_goes(ui):
    api, sim, clock = ui
    stream = get(api, "/events")
    assert not stream.done
    assert stream.responseHeaders.getRawHeaders(b"content-type") == [b"text/event-stream; charset=utf-8"]
    assert stream.written[0] == b"retry: 1000\n\n"
    assert [kind for kind, _ in events_of(stream)] == ["hello", "pending"]
    assert events_of(stream)[1][1] == {"pending": []}
    sim.events.publish("transaction", terminal="1", id=7)
    assert events_of(stream)[-1] == ("transaction", {"terminal": "1", "id": 7})
    clock.advance(webui.KEEPALIVE)
    assert stream.written[-1] == b": keep-alive\n\n"
    stream.processingFailed(Exception("the browser went"))  # what a lost connection does to notifyFinish
    written = len(stream.written)
    sim.events.publish("queue", terminal="1")
    clock.advance(webui.KEEPALIVE)
    assert len(stream.written) == written and not clock.getDelayedCalls()
    assert not api.ui.streams


def test_the_stream_carries_what_is_waiting_at_connect(ui):
    api, sim, _ = ui
    sim.decisions.ask("1", "127.0.0.1:5000", [("CA", "01"), ("CD", "0"), ("CE", "978"), ("CB", "1234")], 60)
    (pending,) = events_of(get(api, "/events"))[1][1]["pending"]
    assert (pending["amount"], pending["pos"], pending["terminal"]) == ("12.34 EUR", "01", "1")


def test_a_token_protects_the_stream_but_not_the_page():
    sim, _ = simulator("--ui", "--control-token", "s3cret")
    api = ControlAPI(sim, "s3cret", webui.WebUI(sim, "s3cret"))
    assert get(api, "/").body.startswith(b"<!doctype html>")
    for path in ("/events", "/events?token=wrong", "/events?token=é"):
        refused = get(api, path)
        assert refused.responseCode == 401 and "token" in json.loads(refused.body)["error"]
    allowed = get(api, "/events?token=s3cret")
    assert not allowed.done and b"s3cret" not in allowed.uri  # what the access log writes
    assert not get(api, "/events", authorization="Bearer s3cret").done
    assert get(api, "/settings").responseCode == 401  # the API itself, as before


def test_open_streams_are_bounded(ui, monkeypatch):
    api, _, _ = ui
    monkeypatch.setattr(webui, "MAX_STREAMS", 2)
    assert not get(api, "/events").done and not get(api, "/events").done
    refused = get(api, "/events")
    assert refused.responseCode == 503 and "2 event streams" in json.loads(refused.body)["error"]


class Stalled(StringTransport):
    """The connection of a browser that stopped reading (a background tab, a phone out of reach): past
    ``BUFFER`` bytes it pauses its producer, as Twisted's TCP transports do, and it drains only when told."""

    BUFFER = 65536  # abstract.FileDescriptor.bufferSize

    def __init__(self, clock):
        super().__init__()
        self.clock, self.aborted = clock, False
        self.unsent = None  # bytes written since it paused its producer; None: not paused

    def write(self, data):
        assert not self.aborted, "written after the abort"
        super().write(data)
        if self.unsent is not None:
            self.unsent += len(data)
        elif len(self.value()) > self.BUFFER:
            self.unsent = 0
            self.producer.pauseProducing()

    def writeSequence(self, data):
        self.write(b"".join(data))

    def drain(self):
        self.clear()
        self.unsent = None
        self.producer.resumeProducing()

    def abortConnection(self):
        self.aborted = True
        self.clock.callLater(0, self.protocol.connectionLost, failure.Failure(error.ConnectionAborted()))


def test_a_stream_whose_browser_stopped_reading_is_closed_before_it_holds_much(ui):
    api, sim, clock = ui
    channel = server.Site(api, reactor=clock).buildProtocol(None)
    transport = Stalled(clock)
    transport.protocol = channel
    channel.makeConnection(transport)
    channel.dataReceived(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n")
    assert b"event: hello" in transport.value() and len(api.ui.streams) == 1

    def publish_until(unsent: int):
        """Events of about 1 kB until ``unsent`` bytes wait on top of the full buffer."""
        while not transport.aborted and (transport.unsent or 0) < unsent:
            sim.events.publish("queue", terminal="1", padding="x" * 1000)

    publish_until(webui.MAX_UNSENT - 2000)
    transport.drain()  # it read after all: what waits starts again from nothing
    publish_until(webui.MAX_UNSENT - 2000)
    assert not transport.aborted
    publish_until(2 * webui.MAX_UNSENT)  # it stopped reading for good
    assert transport.aborted and transport.unsent < 1.05 * webui.MAX_UNSENT  # closed at the limit
    subscribers = len(sim.events._subscribers)
    clock.advance(0)  # the abort reaches the channel, the request, then the stream
    assert not api.ui.streams and len(sim.events._subscribers) == subscribers - 1
    clock.advance(webui.KEEPALIVE)  # nothing is written to it any more (Stalled asserts it)


def test_ui_prints_the_page_address_after_the_listening_lines():
    command = [sys.executable, str(SERVER_SCRIPT), "-p", "0", "--terminals", "2", "--ui", "--no-prompt"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        try:
            lines = [process.stdout.readline().strip() for _ in range(4)]
            assert [line.split(" on ")[0] for line in lines] == [
                "listening",
                "listening",
                "control",
                "virtual terminal",
            ]
            control = lines[2].removeprefix("control on ")
            assert lines[3] == f"virtual terminal on http://{control}/"
            with urllib.request.urlopen(f"http://{control}/", timeout=WAIT) as page:
                assert b"<title>Virtual terminal" in page.read()
        finally:
            process.terminate()


def test_ui_with_a_control_port_uses_it(terminal_server):
    server = terminal_server("-d", "0", "--ui", "--control-port", "0")
    assert server.ui_url == f"http://127.0.0.1:{server.control_port}/"
    with urllib.request.urlopen(server.ui_url + "ui/app.js", timeout=WAIT) as script:
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(server.ui_url, method="POST", data=b"{}"), timeout=WAIT)
    assert refused.value.code == 404  # the page is read, never written to


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_an_ipv6_page_address_is_bracketed(terminal_server):
    server = terminal_server("-d", "0", "--ui", "--control-host", "::1")
    assert server.ui_url == f"http://[::1]:{server.control_port}/"
    with urllib.request.urlopen(server.ui_url, timeout=WAIT) as page:
        assert page.status == 200
