"""The one compiled part: the JSON lines scanner (tracekit/collectors/_jsonscan.c).

Optional: where it does not build, tracekit reads JSON lines with polars alone (slower, the
same results)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tracekit.collectors._jsonscan",
            sources=["tracekit/collectors/_jsonscan.c"],
            extra_compile_args=["-std=c11", "-Wall", "-Wextra"],
            optional=True,
        )
    ]
)
