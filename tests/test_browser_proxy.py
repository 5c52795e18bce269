"""The virtual terminal's page watching a real terminal: --proxy --ui, in Chromium, against a server process.

A scripted terminal on 127.0.0.1 stands in for the real one for the whole module (each connection is answered
by what the test in progress gave it); one server relays to it, one browser watches. A test pays as a POS on a
raw socket, and the terminal sends each piece of its answer only once the POS has had the one before, so that
each reaches the proxy in a read, a journaled segment, of its own. The page is waited on with Playwright's
expect, never with a clock.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

import pytest
from helpers import (
    LAPTOP,
    REQUEST,
    WAIT,
    ServerProcess,
    answering,
    call,
    fresh_page,
    history_read,
    read_until_closed,
    receive_pieces,
    screen,
    scripted_terminal,
    skip_without_browser,
    split,
)

skip_without_browser()

from playwright.sync_api import expect  # noqa: E402

from caisse_ap_ip.protocol import encode  # noqa: E402

pytestmark = pytest.mark.xdist_group("browser-proxy")  # one worker: its own browser and server, beside the other
expect.set_options(timeout=WAIT * 1000)

# the real terminal's answer to REQUEST: its own tags (AP, AQ) and CB zero-padded, as a terminal may send
ANSWER = encode([
    ("CZ", "0300"), ("CJ", "012345678901"), ("CA", "01"), ("CE", "978"), ("BA", "0"), ("CD", "0"),
    ("CB", "000000011245"), ("AE", "10"), ("CC", "001"), ("CI", "1"), ("AC", "318207"),
    ("AA", "497010######4127"), ("AI", "A0000000421010"), ("AB", "2612"), ("CF", "1010000000"),
    ("AP", "2603141042170"), ("AQ", "SN123456"), ("CG", "1234567"),
])  # fmt: skip
PIECES = split(ANSWER, 12, 70)  # how this terminal cuts it: 12 bytes, then 58, then the rest


class RealTerminal:
    """The stand-in for the real terminal: each connection it takes gets ``behaviour``, as the test in progress
    set it, in a thread of its own (a test that failed half-way holds no other test's connection)."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.behaviour = None
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._answer, args=(conn, self.behaviour), daemon=True).start()

    @staticmethod
    def _answer(conn, behaviour):
        with conn:
            if behaviour is not None:
                behaviour(conn)

    def close(self):
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        self.listener.close()


@pytest.fixture(scope="module")
def terminal():
    real = RealTerminal()
    yield real
    real.close()


@pytest.fixture(scope="module")
def server(terminal):
    process = ServerProcess("--proxy", terminal.address, "--ui", "-d", "0", "--no-prompt")
    yield process
    process.stop()


@pytest.fixture
def page(tab, server, terminal):
    """The page, loaded afresh on a reset proxy (empty journal and queue), its event stream open."""
    terminal.behaviour = None
    with fresh_page(tab, server):
        yield tab


def transactions(page):
    return page.get_by_role("list", name="Transactions").get_by_role("listitem")


def pay_through(server, terminal, pieces=PIECES) -> list[bytes]:
    """A POS pays on a raw socket; the terminal answers in ``pieces``, each once the POS has the one before,
    then closes. What the POS received, piece by piece."""
    got, received = [], threading.Event()
    terminal.behaviour = scripted_terminal(pieces, received, got, close=True)
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as pos:
        pos.sendall(REQUEST)
        came = receive_pieces(pos, pieces, received)
        assert pos.recv(1) == b""  # the terminal's close, passed on
    assert got == [REQUEST]
    return came


def test_the_idle_screen_says_where_the_pos_connections_go(page, terminal):
    expect(screen(page)).to_contain_text(f"PROXY → {terminal.address}")
    expect(screen(page)).not_to_contain_text("EN ATTENTE DE LA CAISSE")  # the page is not the terminal
    expect(page.locator("#screen-note")).to_contain_text(f"relayed to the real terminal at {terminal.address}")
    expect(page.get_by_role("button", name="Contactless", exact=True)).to_be_disabled()  # the real one decides


def test_a_proxied_payment_is_listed_as_proxied_with_the_segments_the_terminal_sent(page, server, terminal):
    assert pay_through(server, terminal) == PIECES
    expect(transactions(page)).to_have_count(1)
    row = transactions(page).first
    expect(row.locator("summary")).to_contain_text("debit 112.45 EUR → success CB/Visa/Mastercard contact")
    expect(row.locator("summary")).to_contain_text(f"proxied to {terminal.address}")
    expect(screen(page)).to_contain_text("PAIEMENT ACCEPTE")
    row.locator("summary").click()
    proxied = row.get_by_role("region", name="Proxy")
    expect(proxied).to_contain_text(f"Relayed to the real terminal at {terminal.address}")
    expect(proxied).to_contain_text(f"the terminal {len(ANSWER)} bytes in 3; the terminal closed the line at +")
    segments = proxied.get_by_role("table", name="Segments")
    answered = segments.get_by_role("row").filter(has_text="terminal → POS")
    expect(answered.locator("td:nth-child(3)")).to_have_text([str(len(piece)) for piece in PIECES])
    first = segments.get_by_role("row").nth(1).get_by_role("cell")  # the request, sent whole: its first byte
    expect(first).to_have_text(["POS → terminal", "+0.0", str(len(REQUEST))])
    expect(segments.get_by_role("row").last).to_contain_text("closed by the terminal")
    expect(row.get_by_role("region", name="Terminal's answer")).to_have_count(0)  # the POS got what it sent
    expect(row.get_by_role("region", name="Answer", exact=True)).to_contain_text("SN123456")  # its own tags


def test_a_fault_on_the_way_shows_the_terminals_own_answer_beside_what_the_pos_got(page, server, terminal):
    assert call(server, "POST", "/outcomes", {"outcomes": ["failure:refused"]})[0] == 200
    terminal.behaviour = answering([ANSWER])
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as pos:
        pos.sendall(REQUEST)
        assert read_until_closed(pos) == REQUEST + b"AE00201AF00204"  # the simulator's, once the terminal's came
    row = transactions(page).first
    summary = row.locator("summary")
    expect(summary).to_contain_text("→ refused (AF=04)")
    expect(summary).to_contain_text(f"proxied to {terminal.address}, the terminal said success CB/Visa/Mastercard")
    expect(screen(page)).to_contain_text("PAIEMENT REFUSE")
    expect(screen(page)).to_contain_text("TERMINAL : PAIEMENT ACCEPTE")
    summary.click()
    got = row.get_by_role("region", name="Answer", exact=True)
    sent = row.get_by_role("region", name="Terminal's answer")
    expect(got).to_contain_text("Answer the POS got")
    expect(sent).to_contain_text(ANSWER.decode())
    expect(record(got, "AF")).to_have_attribute("data-differs", "")  # the records they do not share are marked
    expect(record(sent, "AE")).to_contain_text("10")
    expect(record(sent, "AE")).to_have_attribute("data-differs", "")
    expect(record(sent, "AQ")).to_have_attribute("data-differs", "")
    expect(record(sent, "CJ")).not_to_have_attribute("data-differs", "")  # an echo, in both


def record(region, tag: str):
    """The row of a tag in a table of records."""
    return region.get_by_role("row").filter(has=region.page.get_by_role("cell", name=tag, exact=True))


def test_the_ticket_pane_never_shows_the_simulators_ticket_as_the_real_terminals(page, server, terminal):
    """The simulator's answer in place of the terminal's left the simulator a ticket (GET /ticket) that no
    terminal printed: the pane says so rather than show it, and shows it under no later payment either."""
    assert call(server, "POST", "/outcomes", {"outcomes": ["failure:refused"]})[0] == 200
    terminal.behaviour = answering([ANSWER])
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as pos:
        pos.sendall(REQUEST)
        assert read_until_closed(pos).endswith(b"AE00201AF00204")
    assert "DEBIT REFUSE" in call(server, "GET", "/ticket")[1]["ticket"]  # the simulator's, for its answer
    note = page.locator("#no-ticket")
    expect(note).to_contain_text("An outcome on the way (failure:04) changed what the POS got")
    expect(note).to_contain_text("the real terminal said PAIEMENT ACCEPTE")
    expect(page.get_by_label("Ticket of the last payment")).to_be_hidden()
    assert pay_through(server, terminal) == PIECES  # the terminal's answer, as it came
    expect(transactions(page)).to_have_count(2)
    expect(note).to_have_text("The real terminal prints its own tickets: one it sends the POS is in its answer's tags.")
    expect(page.get_by_label("Ticket of the last payment")).to_be_hidden()


def test_screenshot_of_a_proxied_transaction(browser, server, terminal, tmp_path):
    """A proxied payment opened to its segments, for README's "Between a POS and a real terminal"; into
    CAISSE_SCREENSHOT (docs/) when set."""
    folder = Path(os.environ.get("CAISSE_SCREENSHOT") or tmp_path)
    assert call(server, "POST", "/reset")[0] == 200
    context = browser.new_context(viewport=LAPTOP)
    try:
        page = context.new_page()
        with history_read(page):
            page.goto(server.ui_url)
        assert pay_through(server, terminal) == PIECES
        row = transactions(page).first
        row.locator("summary").click()
        segments = row.get_by_role("table", name="Segments")
        expect(segments.get_by_role("row").last).to_contain_text("closed by the terminal")
        page.screenshot(path=folder / "virtual-terminal-proxy.png", full_page=True)
    finally:
        context.close()
    assert (folder / "virtual-terminal-proxy.png").stat().st_size > 10_000
