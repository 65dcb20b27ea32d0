"""pytest plugin: nbval compares full-precision floats to a relative 1e-4
(`-p tools.nbval_floats`).

A glue record (`application/papermill.record/text/plain`) or a bare repr holds every digit
of a float, and the last of them differ between kinds of CPU: other SIMD kernels add in
another order (seen: 0.31409472301584984 against ...973 in float64, and 0.19100136 against
0.19100042 in float32, between an Intel AMX and an AMD AVX-512 machine). A number written
with at least `LONG` significant digits therefore compares equal to one within relative
`RTOL` of it. Everything else is still compared exactly: the text around the numbers, how
many there are, and every number printed with fewer digits, which is what a reader sees.
"""
import math
import re

from nbval.plugin import IPyNbCell

NUMBER = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")
LONG = 8
RTOL = 1e-4


def significant_digits(number: str) -> int:
    """How many significant digits a written number has ("0.0310" has 3)."""
    mantissa = re.split(r"[eE]", number)[0].lstrip("-").replace(".", "")
    return len(mantissa.lstrip("0"))


def close(a: str, b: str) -> bool:
    """True if `a` and `b` differ only in the far digits of full-precision floats."""
    if a == b:
        return True
    if NUMBER.split(a) != NUMBER.split(b):
        return False
    for x, y in zip(NUMBER.findall(a), NUMBER.findall(b)):
        if x == y:
            continue
        if min(significant_digits(x), significant_digits(y)) < LONG:
            return False
        if not math.isclose(float(x), float(y), rel_tol=RTOL):
            return False
    return True


class _Output(str):
    """A sanitized output whose equality is `close`."""

    def __eq__(self, other):
        return isinstance(other, str) and close(str(self), str(other))

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = str.__hash__


_sanitize = IPyNbCell.sanitize


def _tolerant_sanitize(self, s):
    s = _sanitize(self, s)
    return _Output(s) if isinstance(s, str) else s


IPyNbCell.sanitize = _tolerant_sanitize
