"""Signal receivers: one line each, the rules live in notifications.services."""
