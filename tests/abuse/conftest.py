"""The messaging fixtures (users, cookies, in-process sockets) for the abuse tests."""

from tests.dm.conftest import connect, cookies, listen, users  # noqa: F401
