"""The virtual terminal in a real browser: Debian's Chromium driven by Playwright, against a server process.

One server (--ui --outcome ask) and one browser for the module; each test starts from a reset terminal and a
freshly loaded page. A POS pays from a thread (its call blocks until someone decides), and the test waits on
what the page shows (Playwright's expect retries until it holds) or on the POS's answer, never on a clock.

Without Chromium or Playwright the module is skipped, unless CAISSE_BROWSER_REQUIRED is set (as .ci/run does).
Set CAISSE_SCREENSHOT=DIR to write the README's screenshots there (docs/ for the committed ones).
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

import pytest
from helpers import (
    LAPTOP,
    PHONE,
    WAIT,
    Payment,
    ServerProcess,
    call,
    fresh_page,
    history_read,
    page_errors,
    screen,
    skip_without_browser,
)

skip_without_browser()

from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.xdist_group("browser")  # one worker: one browser and one server for the whole module
expect.set_options(timeout=WAIT * 1000)


@pytest.fixture(scope="module")
def server():
    process = ServerProcess("--ui", "-d", "0", "--outcome", "ask", "--ask-timeout", "30", "--no-prompt")
    yield process
    process.stop()


@pytest.fixture
def page(tab, server):
    """The page, loaded afresh on a reset terminal, its event stream open."""
    while call(server, "POST", "/pending/oldest", {"outcome": "failure:abandon", "by": "cleanup"})[0] == 200:
        pass  # a test that failed half-way left a POS waiting: it must not be the next test's payment
    with fresh_page(tab, server):
        yield tab


def button(page, name: str):
    return page.get_by_role("button", name=name, exact=True)


def test_contactless_pays_what_the_screen_shows(page, server):
    payment = Payment(server.port, "12.00")
    expect(screen(page)).to_contain_text("12,00 EUR")
    expect(screen(page)).to_contain_text("INSEREZ OU PRESENTEZ VOTRE CARTE")
    button(page, "Contactless").click()
    answer = payment.answer()
    assert (answer["AE"], answer["CC"], answer["CI"]) == ("10", "00B", "2")
    expect(screen(page)).to_contain_text("PAIEMENT ACCEPTE")
    expect(button(page, "Contactless")).to_be_disabled()  # nothing waits any more


def test_the_red_key_abandons(page, server):
    payment = Payment(server.port, "8.50")
    expect(screen(page)).to_contain_text("8,50 EUR")
    button(page, "Cancel").click()
    answer = payment.answer()
    assert (answer["AE"], answer["AF"]) == ("01", "11")
    expect(screen(page)).to_contain_text("ABANDON")


def test_nobody_deciding_is_the_input_time_out(page, server):
    call(server, "PATCH", "/settings", {"ask_timeout": 0.25})
    answer = Payment(server.port, "3.10").answer()
    assert (answer["AE"], answer["AF"]) == ("01", "08")
    expect(screen(page)).to_contain_text("ABANDON")
    expect(screen(page)).to_contain_text("TEMPS DEPASSE")


def test_the_keys_of_the_servers_prompt_decide_on_the_page_too(page, server):
    payment = Payment(server.port, "6.00")
    expect(screen(page)).to_contain_text("6,00 EUR")
    expect(page.locator("#shortcuts")).to_contain_text("r refused (AF=04)")
    page.keyboard.press("r")
    assert payment.answer()["AF"] == "04"


def test_a_chip_card_waits_for_the_green_key_and_correction_takes_it_back(page, server):
    payment = Payment(server.port, "20.00")
    expect(screen(page)).to_contain_text("20,00 EUR")
    button(page, "Insert CB").click()
    expect(screen(page)).to_contain_text("SAISISSEZ VOTRE CODE")
    button(page, "Correction").click()
    expect(screen(page)).to_contain_text("INSEREZ OU PRESENTEZ VOTRE CARTE")
    button(page, "Amex").click()
    expect(screen(page)).to_contain_text("AMERICAN EXPRESS")
    button(page, "Validate").click()
    answer = payment.answer()
    assert (answer["AE"], answer["CC"], answer["CI"]) == ("10", "002", "1")


def test_a_check_is_read_by_the_check_button_only(page, server):
    payment = Payment(server.port, "45.00", check=True)
    expect(screen(page)).to_contain_text("INSEREZ LE CHEQUE")
    expect(button(page, "Contactless")).to_be_disabled()
    button(page, "Check").click()
    assert payment.answer()["AE"] == "10"


def test_a_decision_by_the_api_shows_on_the_open_page(page, server):
    payment = Payment(server.port, "15.00")
    expect(screen(page)).to_contain_text("15,00 EUR")
    status, body = call(server, "POST", "/pending/oldest", {"outcome": "failure:refused", "by": "a test"})
    assert status == 200 and body["decided"]["amount"] == "15.00 EUR"
    assert payment.answer()["AF"] == "04"
    expect(screen(page)).to_contain_text("PAIEMENT REFUSE")
    expect(page.locator("#screen-note")).to_contain_text("failure:04 (asked, decided by a test)")
    expect(button(page, "Refused")).to_be_disabled()


def test_what_a_button_decides_and_what_the_screen_says_are_those_of_page_json(page, server):
    """Changed in /ui/page.json (here on its way to the page), changed on the page: the page has no copy."""

    def changed(route):
        built = route.fetch().json()
        built["buttons"]["refused"] = {"outcome": "failure:forbidden", "title": "changed", "chip": None}
        built["screen"]["complements"]["05"] = {"title": "CARTE INTERDITE", "detail": "VOIR LA BANQUE"}
        route.fulfill(json=built)

    page.route("**/ui/page.json", changed)
    try:
        with history_read(page):
            page.reload()
        expect(page.locator("#link")).to_have_text("live")
        expect(button(page, "Refused")).to_have_attribute("title", "changed")
        payment = Payment(server.port, "5.55")
        expect(screen(page)).to_contain_text("5,55 EUR")
        button(page, "Refused").click()
        assert payment.answer()["AF"] == "05"
        expect(screen(page)).to_contain_text("CARTE INTERDITE")
        expect(screen(page)).to_contain_text("VOIR LA BANQUE")
    finally:
        page.unroute("**/ui/page.json")


def test_a_setting_changed_on_the_page_applies_to_the_next_payment(page, server):
    page.get_by_label("Payment type").select_option("amexcontactless")
    expect(page.locator("#settings-status")).to_have_text("Saved: payment_type amexcontactless")
    assert call(server, "GET", "/settings")[1]["payment_type"] == "amexcontactless"
    payment = Payment(server.port, "9.99")
    expect(screen(page)).to_contain_text("9,99 EUR")
    button(page, "Validate").click()  # green without a card: the configured payment type
    answer = payment.answer()
    assert (answer["CC"], answer["CI"]) == ("00D", "2")


def test_a_bad_setting_is_refused_on_the_page_and_the_field_shows_the_value_in_force(page, server):
    field = page.get_by_label("Duration")
    field.fill("-1")
    field.press("Enter")
    expect(page.locator("#settings-status")).to_contain_text("duration")
    expect(field).to_have_value("0")


def test_the_queue_of_next_outcomes_from_the_page(page, server):
    Payment(server.port, "3.00")  # decided silent: its POS waits until its own time-out, in its thread
    expect(screen(page)).to_contain_text("3,00 EUR")
    page.keyboard.press("s")  # the prompt's key for silent, on the page
    expect(page.locator("#screen-note")).to_contain_text("silent (asked, decided by web)")
    page.get_by_label("Outcome", exact=True).fill("failure:forbidden")
    button(page, "Queue").click()
    expect(page.get_by_role("list", name="Next outcomes")).to_have_text("failure:05")  # as the API says it
    assert call(server, "GET", "/outcomes")[1]["queued"] == ["failure:05"]
    assert Payment(server.port, "4.00").answer()["AF"] == "05"  # the queue comes before ask
    expect(page.get_by_role("list", name="Next outcomes").get_by_role("listitem")).to_have_count(0)
    expect(page.locator("#screen-note")).to_contain_text(": failure:05.")  # this result's, not the silent one's


def test_the_transaction_list_shows_each_payment_with_its_decoded_tags(page, server):
    for amount, decision in (("1.00", "Refused"), ("2.00", "Contactless")):
        payment = Payment(server.port, amount)
        expect(screen(page)).to_contain_text(amount.replace(".", ","))
        button(page, decision).click()
        payment.answer()
    rows = page.get_by_role("list", name="Transactions").get_by_role("listitem")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("debit 2.00 EUR")  # newest first
    expect(rows.nth(1)).to_contain_text("refused (AF=04)")
    rows.nth(0).locator("summary").click()
    answer = rows.nth(0).get_by_role("region", name="Answer")
    expect(answer.get_by_role("row").filter(has_text="payment application")).to_contain_text("00B")
    expect(answer).to_contain_text("CB/Visa/Mastercard contactless")
    expect(rows.nth(0)).to_contain_text("decided by web")


def test_the_ticket_strip_shows_the_terminals_ticket(page, server):
    payment = Payment(server.port, "112.45")
    expect(screen(page)).to_contain_text("112,45 EUR")
    button(page, "Contactless").click()
    payment.answer()
    ticket = page.get_by_label("Ticket of the last payment")
    expect(ticket).to_contain_text("SANS CONTACT")
    expect(ticket).to_have_text(call(server, "GET", "/ticket")[1]["ticket"])


@pytest.fixture(scope="module")
def locked():
    """A second process: two terminals behind a token."""
    process = ServerProcess("--ui", "-d", "0", "--outcome", "ask", "--terminals", "2", "--control-token", "s3cret")
    yield process
    process.stop()


def test_a_token_protected_page_asks_for_the_token_once(browser, locked):
    assert call(locked, "GET", "/settings")[0] == 401
    context = browser.new_context(viewport=LAPTOP)
    try:
        page = context.new_page()
        page.goto(locked.ui_url)
        dialog = page.get_by_role("dialog", name="Token")
        expect(dialog).to_be_visible()
        expect(page.locator("#link")).to_have_text("token needed")
        dialog.get_by_label("Token").fill("wrong")
        dialog.get_by_role("button", name="Unlock").click()
        expect(dialog.get_by_role("alert")).to_have_text("That token was refused.")
        dialog.get_by_label("Token").fill("s3cret")
        dialog.get_by_role("button", name="Unlock").click()
        expect(page.locator("#link")).to_have_text("live")
        expect(page.get_by_label("Payment type")).to_have_value("cbcontact")
        page.reload()  # kept for the tab: not asked again
        expect(page.locator("#link")).to_have_text("live")
        expect(dialog).to_be_hidden()
    finally:
        context.close()


def test_several_terminals_one_selector(browser, locked):
    context = browser.new_context(viewport=LAPTOP)
    context.add_init_script("sessionStorage.setItem('caisse-ap-ip.token', 's3cret')")
    try:
        page = context.new_page()
        page.goto(locked.ui_url)
        selector = page.get_by_role("combobox", name="Terminal", exact=True)
        selector.select_option("2")
        expect(screen(page)).to_contain_text("TERMINAL 2")
        first, second = Payment(locked.ports[0], "1.11"), Payment(locked.ports[1], "2.22")
        expect(screen(page)).to_contain_text("2,22 EUR")
        button(page, "Contactless").click()
        assert second.answer()["CC"] == "00B"
        expect(selector.locator("option").first).to_have_text(f"1 (port {locked.ports[0]}) · paying")
        assert call(locked, "POST", "/pending/oldest", {"outcome": "success"}, token="s3cret")[0] == 200
        assert first.answer()["AE"] == "10"
    finally:
        context.close()


def paid(server, terminal: int, amount: str, token: str) -> None:
    """A payment on a terminal (1, 2 ...), answered by the outcome queued for it: the queue comes before ask."""
    assert call(server, "POST", f"/outcomes?terminal={terminal}", {"outcomes": ["success"]}, token=token)[0] == 200
    assert Payment(server.ports[terminal - 1], amount).answer()["AE"] == "10"


def test_a_journal_read_under_way_when_another_terminal_is_chosen_is_dropped(browser, locked):
    """The first terminal's journal read, held until the second terminal is chosen, must neither list its rows
    under the second nor hide the second's: the journal's ids are shared by every terminal, the first's newer."""
    paid(locked, 2, "2.46", "s3cret")
    paid(locked, 1, "1.35", "s3cret")
    held = []

    def first_terminals_journal(url: str) -> bool:
        parsed = urllib.parse.urlsplit(url)
        return parsed.path == "/journal" and urllib.parse.parse_qs(parsed.query).get("terminal") == ["1"]

    context = browser.new_context(viewport=LAPTOP)
    context.add_init_script("sessionStorage.setItem('caisse-ap-ip.token', 's3cret')")
    try:
        page = context.new_page()
        page.route(first_terminals_journal, lambda route: held.append(route))  # answered once the second is shown
        with page_errors(page):
            with page.expect_request(lambda request: first_terminals_journal(request.url)):
                page.goto(locked.ui_url)
            page.get_by_role("combobox", name="Terminal", exact=True).select_option("2")
            expect(screen(page)).to_contain_text("TERMINAL 2")
            assert len(held) == 1, held  # the first terminal's read was under way when the second was chosen
            held[0].continue_()
            rows = page.get_by_role("list", name="Transactions").get_by_role("listitem")
            expect(rows.filter(has_text="debit 2.46 EUR")).to_have_count(1)  # after the held read: reads queue
            expect(rows.filter(has_text="debit 1.35 EUR")).to_have_count(0)
    finally:
        context.close()


def test_screenshots_of_the_page(browser, server, tmp_path):
    """A laptop and a phone, a payment waiting and one done; into CAISSE_SCREENSHOT (docs/) when set."""
    folder = Path(os.environ.get("CAISSE_SCREENSHOT") or tmp_path)
    assert call(server, "POST", "/reset")[0] == 200
    done = Payment(server.port, "112.45")
    context = browser.new_context(viewport=LAPTOP)
    try:
        page = context.new_page()
        with history_read(page):
            page.goto(server.ui_url)
        expect(screen(page)).to_contain_text("112,45 EUR")
        button(page, "Contactless").click()
        done.answer()
        expect(page.get_by_label("Ticket of the last payment")).to_contain_text("SANS CONTACT")
        waiting = Payment(server.port, "23.90")
        expect(screen(page)).to_contain_text("23,90 EUR")
        page.get_by_role("list", name="Transactions").locator("summary").first.click()
        page.screenshot(path=folder / "virtual-terminal.png")
        page.set_viewport_size(PHONE)
        page.screenshot(path=folder / "virtual-terminal-phone.png")
        button(page, "Cancel").click()
        waiting.answer()
    finally:
        context.close()
    assert (folder / "virtual-terminal.png").stat().st_size > 10_000
