"""The protocol's codes are written once, in codes.py, and the pure core needs no network."""

import subprocess
import sys

import pytest

from caisse_ap_ip import codes, profiles, tags
from caisse_ap_ip.client import build_request
from caisse_ap_ip.scenarios import build_rule

PURE_CORE = (
    "protocol",
    "tags",
    "codes",
    "terminal",
    "scenarios",
    "outcomes",
    "tickets",
    "cards",
    "profiles",
    "amounts",
    "replay",
    "export",
)
NETWORK_MODULES = ("socket", "ssl", "selectors", "asyncio", "twisted", "http", "urllib.request")


def test_the_pure_core_imports_no_network_module():
    imports = "; ".join(f"import caisse_ap_ip.{module}" for module in PURE_CORE)
    check = f"import sys; {imports}; print(sorted(m for m in {NETWORK_MODULES!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_each_action_has_one_code_and_one_name():
    assert len({action.code for action in codes.ACTIONS}) == len(codes.ACTIONS) == 11
    assert len({action.name for action in codes.ACTIONS}) == len(codes.ACTIONS)
    assert all(action.ticket_operation for action in codes.ACTIONS if action.payment)
    assert set(tags.SPECS["CD"].values) == set(codes.ACTION_BY_CODE)
    assert set(codes.ACTION_BY_CODE) == profiles.ALL_ACTIONS


@pytest.mark.parametrize("action", codes.ACTIONS, ids=lambda action: action.name)
def test_the_client_builds_each_action_with_its_mandatory_tags(action):
    request = dict(build_request(action.name))
    assert request["CD"] == action.code
    assert action.mandatory <= set(request)


def test_scenario_action_names_are_the_action_names():
    rule = build_rule({"when": {"action": [a.name for a in codes.ACTIONS]}, "outcome": "success"}, 1)
    assert rule.when["action"] == set(codes.ACTION_BY_CODE)


@pytest.mark.parametrize(
    ("given", "af"), [("refused", "04"), ("REFUSED", "04"), ("04", "04"), ("abandon", "11"), ("currency", "13")]
)
def test_one_resolver_from_failure_name_or_code_to_af(given, af):
    assert codes.failure_code(given) == af


@pytest.mark.parametrize("given", ["01", "authorised", "99", "", "bogus"])
def test_what_is_no_failure_is_refused_with_the_choices(given):
    with pytest.raises(codes.CodeError, match="choose from abandon, timeout, refused, forbidden, unknown"):
        codes.failure_code(given)


def test_every_failure_code_has_a_name_and_the_original_four_come_first():
    assert list(codes.FAILURE_TYPES)[:4] == ["abandon", "timeout", "refused", "forbidden"]
    assert set(codes.FAILURE_TYPES.values()) == set(codes.STATUS_COMPLEMENTS) - {codes.AUTHORISED}


def test_long_af_values_are_read_by_their_first_two_characters():
    assert codes.complement_meaning("0451DECLINED             0000") == "refused"
    assert tags.meaning("AF", "05") == "forbidden"


def test_one_address_formatter_brackets_ipv6_everywhere():
    from twisted.internet.address import IPv4Address, IPv6Address

    from caisse_ap_ip.display import address

    assert address(("127.0.0.1", 8888)) == address(IPv4Address("TCP", "127.0.0.1", 8888)) == "127.0.0.1:8888"
    assert address(("::1", 8888, 0, 0)) == address(IPv6Address("TCP", "::1", 8888)) == "[::1]:8888"
