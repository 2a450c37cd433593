"""Database backends of the service (see ``social.db.postgresql``)."""
