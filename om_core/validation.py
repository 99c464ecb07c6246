"""Turn raw input into validated pydantic models, or a ValidationError naming every bad field."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from om_core.errors import ValidationError

M = TypeVar("M", bound=BaseModel)

MAX_LINE_QUANTITY = 10_000
"""More units than this on one order line is a typo or an attack, not a customer."""

Quantity = Annotated[int, Field(gt=0, le=MAX_LINE_QUANTITY, strict=False)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class Input(BaseModel):
    """Base of every service input: unknown fields are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


def parse(model: type[M], data: Any) -> M:
    if isinstance(data, model):
        return data
    if isinstance(data, BaseModel):
        data = data.model_dump(exclude_unset=True)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "reason": err["msg"]} for err in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        raise ValidationError(f"Invalid {model.__name__}: {summary}", errors=errors) from None
