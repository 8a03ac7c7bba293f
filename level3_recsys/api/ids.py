"""The ``{name:id}`` path convertor: user ids bounded before they are parsed."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

from level3_recsys.schemas import MAX_ID


class BoundedIdConvertor(Convertor):
    """Path convertor ``{name:id}``: digits only, their count bounded before ``int()``.

    Python refuses ``int()`` of more than 4,300 digits (a ``ValueError`` inside Starlette's own
    ``int`` convertor: a 500). An id with more significant digits than ``MAX_ID`` is out of range
    whatever they are, so it converts to ``MAX_ID + 1``, which the parameter's ``le=MAX_ID``
    bound answers with a 422; nothing longer than 10 digits is ever parsed.
    """

    regex = "[0-9]+"
    max_digits = len(str(MAX_ID))

    def convert(self, value: str) -> int:
        digits = value.lstrip("0") or "0"
        return MAX_ID + 1 if len(digits) > self.max_digits else int(digits)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("id", BoundedIdConvertor())
