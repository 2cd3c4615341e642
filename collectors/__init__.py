"""Read every log a chat system leaves behind into one event table."""
