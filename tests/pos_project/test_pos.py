import pytest
from pos import pay


def test_success(caisse_ap_terminal):
    assert pay("127.0.0.1", caisse_ap_terminal.port, 1250) == "paid"
    sent = caisse_ap_terminal.wait_for_transaction()
    assert sent["request"].endswith("CD0010CB0041250")  # what the POS sent


def test_refusal(caisse_ap_terminal):
    caisse_ap_terminal.next("failure:refused")
    assert pay("127.0.0.1", caisse_ap_terminal.port, 1250) == "refused"


def test_split_answer(caisse_ap_terminal):
    caisse_ap_terminal.next("success fragments=4 pause=0.05")
    assert pay("127.0.0.1", caisse_ap_terminal.port, 1250) == "paid"


def test_silent_terminal(caisse_ap_terminal):
    caisse_ap_terminal.next("silent")
    assert pay("127.0.0.1", caisse_ap_terminal.port, 1250, timeout=0.5) == "no answer"


@pytest.mark.caisse_ap_terminal("--currencies", "EUR", "--magic-amounts")
def test_options_from_a_marker(caisse_ap_terminal):
    assert pay("127.0.0.1", caisse_ap_terminal.port, 1261) == "refused"  # magic amount .61
    assert [t["outcome"] for t in caisse_ap_terminal.transactions] == ["failure:04"]
