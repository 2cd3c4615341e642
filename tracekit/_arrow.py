"""Columns handed over by tracekit's compiled parts (the Arrow PyCapsule interface)."""

from __future__ import annotations

__all__ = ["Capsules"]


class Capsules:
    """One (schema, array) pair of Arrow capsules that a compiled part made: polars takes the
    column over without a copy (``pl.Series(Capsules(*pair))``)."""

    __slots__ = ("_array", "_schema")

    def __init__(self, schema: object, array: object) -> None:
        self._schema, self._array = schema, array

    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[object, object]:
        return self._schema, self._array
