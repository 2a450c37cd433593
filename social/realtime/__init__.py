"""Realtime plumbing shared by the notification and messaging apps."""
