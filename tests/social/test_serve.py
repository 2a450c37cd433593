"""The daphne command line the service runs with."""

from social.serve import daphne_argv


def option(argv, name):
    return argv[argv.index(name) + 1]


def test_handshakes_may_wait_for_the_app_longer_than_daphnes_default():
    """A restart's reconnect storm queues handshakes; daphne's 5 s default would drop them half done."""
    assert int(option(daphne_argv(port=8000), "--websocket_connect_timeout")) >= 30
