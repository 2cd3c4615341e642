"""tracekit: follow every chat message across client, server and recipients."""
