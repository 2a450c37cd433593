"""The one place that names channel-layer groups.

Names are built only from integer ids, so they are ASCII, short (< 100 chars)
and can never be steered by client input.
"""


def _check_id(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"group ids must be non-negative integers, got {value!r}")
    return value


def user_group(user_id: int) -> str:
    """Every notification socket of one user (the bell, inbox frames)."""
    return f"user_{_check_id(user_id)}"


def control_group(user_id: int) -> str:
    """Every socket of one user, of any kind: session revocation, access changes."""
    return f"sockets_{_check_id(user_id)}"


def direct_group(user_a_id: int, user_b_id: int) -> str:
    """The pair group of a direct conversation, lowest id first."""
    low, high = sorted((_check_id(user_a_id), _check_id(user_b_id)))
    return f"dm_{low}_{high}"


def room_group(conversation_id: int) -> str:
    """Every socket in one chat room."""
    return f"room_{_check_id(conversation_id)}"
