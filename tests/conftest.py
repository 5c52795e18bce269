"""Shared fixtures; what tests share besides fixtures is in helpers.py."""

from __future__ import annotations

import pytest
from helpers import LAPTOP, ServerProcess, chromium
from hypothesis import HealthCheck, settings

# examples are judged by what they find, not by how fast a shared machine runs them
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

# the example POS project is run as a project of its own, with the plugin, by test_testing.py
collect_ignore = ["pos_project"]


@pytest.fixture(scope="session")
def terminal_server():
    """terminal_server('-d', '0', ...) -> a running server, shared by every test asking for the same options."""
    servers: dict[tuple[str, ...], ServerProcess] = {}

    def get(*args: str) -> ServerProcess:
        if args not in servers:
            servers[args] = ServerProcess(*args)
        return servers[args]

    yield get
    for server in servers.values():  # all told to stop first, then waited for: they stop together
        server.process.terminate()
    for server in servers.values():
        server.stop()


@pytest.fixture
def fast_server(terminal_server) -> ServerProcess:
    return terminal_server("-d", "0")


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright, one per browser-test module (which skips without them)."""
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def tab(browser):
    """A laptop-sized tab, kept for the module; tests load the page in it afresh."""
    context = browser.new_context(viewport=LAPTOP)
    yield context.new_page()
    context.close()
