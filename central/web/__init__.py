"""The server-rendered pages of the central service: people's sign-in, sessions, CSRF,
templates and their translations."""
