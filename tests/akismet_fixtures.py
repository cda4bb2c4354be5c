"""Fixtures around the local Akismet stand-in (loopback only)."""

from __future__ import annotations

import pytest

from comments.akismet_standin import AkismetStandIn

TEST_KEY = "test-key-123"


@pytest.fixture(scope="session")
def standin_server():
    server = AkismetStandIn(keys={TEST_KEY: "valid"}).start()
    yield server
    server.stop()


@pytest.fixture
def standin(standin_server, settings):
    """The stand-in, reset, with this process's settings pointed at it."""
    standin_server.state.reset()
    standin_server.state.keys.clear()
    standin_server.state.keys[TEST_KEY] = "valid"
    settings.AKISMET_API_URL = standin_server.url
    settings.AKISMET_API_KEY = TEST_KEY
    settings.AKISMET_BLOG_URL = "https://news.example.com/"
    settings.AKISMET_IS_TEST = True
    settings.AKISMET_TIMEOUT = 1.0
    yield standin_server
    standin_server.state.reset()
