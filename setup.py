"""The compiled parts, both optional: where one does not build, tracekit does its work with
polars alone (slower, the same results).

- tracekit/collectors/_jsonscan.c: the JSON lines scanner;
- tracekit/analyzers/_passes.c: the path builder's group-bys (each hop's count and first row
  per message and per recipient) in one pass.
"""

from setuptools import Extension, setup

_FLAGS = ["-std=c11", "-Wall", "-Wextra"]
# both include tracekit/_arrow_c.h (the Arrow C interfaces and the capsules over them)
_SHARED = {"include_dirs": ["tracekit"], "depends": ["tracekit/_arrow_c.h"]}

setup(
    ext_modules=[
        Extension(
            "tracekit.collectors._jsonscan",
            sources=["tracekit/collectors/_jsonscan.c"],
            extra_compile_args=_FLAGS,
            optional=True,
            **_SHARED,
        ),
        Extension(
            "tracekit.analyzers._passes",
            sources=["tracekit/analyzers/_passes.c"],
            extra_compile_args=_FLAGS,
            optional=True,
            **_SHARED,
        ),
    ]
)
