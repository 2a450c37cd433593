// The notification bell (filled in by the notifications app).
