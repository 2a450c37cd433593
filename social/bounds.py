"""How large stored content may be: one place for every size rule.

Models take their ``max_length`` from here, forms their limits, and the wire
protocol its frame checks, so a message refused by a socket and one refused by
the database can never disagree. (Rates and per-socket limits that operators
tune are settings: ``REALTIME`` and ``WRITE_RATE_LIMITS``.)
"""

# A chat message's body, after trimming.
MESSAGE_BODY_CHARS = 4000
# A client's idempotency key for a message.
CLIENT_ID_CHARS = 64
POST_TITLE_CHARS = 200
POST_BODY_CHARS = 5000
COMMENT_BODY_CHARS = 2000
ROOM_NAME_CHARS = 80
ROOM_SLUG_CHARS = 50
NOTIFICATION_TEXT_CHARS = 500
NOTIFICATION_URL_CHARS = 500
# Ids in one mark_read frame.
ID_LIST_ITEMS = 500
# A reply's quote of the message it answers.
REPLY_EXCERPT_CHARS = 140
# A reaction: one emoji (a grapheme cluster) of at most this many UTF-8 bytes,
# and at most this many distinct emoji on one message.
EMOJI_BYTES = 32
DISTINCT_REACTIONS = 20
# User ids listed per reaction (the earliest); its count stays exact.
REACTION_USERS_LISTED = 50
