"""The reference chat system: a FastAPI server over SQLite and asyncio Python clients, all
instrumented with tracekit, plus a load generator with fault injection and :func:`run_demo`.

It is an application (imports fastapi, uvicorn, httpx, websockets when its modules are
imported), so nothing here is imported by ``import tracekit``. See docs/chat.md.
"""
