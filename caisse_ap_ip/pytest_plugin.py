"""pytest plugin (registered as the pytest11 entry point 'caisse_ap_ip'): the ``caisse_ap_terminal`` fixture.

    def test_refused_payment(caisse_ap_terminal):
        caisse_ap_terminal.next("failure:refused")
        assert my_pos.pay("127.0.0.1", caisse_ap_terminal.port, 9.99) == "refused"

Options of caisse-ap-ip-server come from a marker:
``@pytest.mark.caisse_ap_terminal("--profile", "nepting", subprocess=False)``.
"""

from __future__ import annotations

import pytest

from .testing import SimulatedTerminal


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "caisse_ap_terminal(*options, subprocess=False): options of the simulated terminal"
    )


@pytest.fixture
def caisse_ap_terminal(request):
    """A simulated Caisse-AP terminal on an ephemeral loopback port, answering at once (-d 0) unless told."""
    marker = request.node.get_closest_marker("caisse_ap_terminal")
    args, kwargs = (marker.args, marker.kwargs) if marker else ((), {})
    with SimulatedTerminal(*args, **kwargs) as terminal:
        yield terminal
