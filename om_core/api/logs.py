"""Log redaction: API logs never carry API keys, payment tokens, card numbers or full customer emails.

`RedactingFilter` rewrites each record's message (arguments merged in) and its traceback text, so a
key in a URL, a token in an error or an email in a query string is masked whatever logged it.
"""

from __future__ import annotations

import logging
import re

_KEY = re.compile(r"som_([a-z0-9]{12})_[A-Za-z0-9_\-]+")
_TOKEN = re.compile(r"\b(tok|pm|card|src)_[A-Za-z0-9_\-]+")
_TOKEN_FIELD = re.compile(r"""(["']?payment_token["']?\s*[:=]\s*["']?)[^"'\s,&}]+""")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_EMAIL = re.compile(r"([A-Za-z0-9._%+\-]+)(@|%40)([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")

LOGGERS = ("storeom", "storeom.api", "uvicorn", "uvicorn.access", "uvicorn.error", "fastapi")


def redact(text: str) -> str:
    text = _KEY.sub(lambda m: f"som_{m.group(1)}_***", text)
    text = _TOKEN_FIELD.sub(lambda m: f"{m.group(1)}***", text)
    text = _TOKEN.sub(lambda m: f"{m.group(1)}_***", text)
    text = _CARD.sub("[card]", text)
    return _EMAIL.sub(lambda m: f"{m.group(1)[:1]}***{m.group(2)}{m.group(3)}", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logged as it is
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()


def install_redaction() -> None:
    """Put the filter on the API's and the server's loggers and on every handler they and the root have
    (records propagated from other loggers pass through the handlers). Installing twice is harmless."""
    targets = [logging.getLogger(name) for name in LOGGERS] + [logging.getLogger()]
    for logger in targets:
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)


__all__ = ["RedactingFilter", "install_redaction", "redact"]
