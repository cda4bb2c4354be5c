"""Streaming, hardened XML reading for the importers.

defusedxml's iterparse refuses any DTD (so no entity expansion, "billion laughs",
and no external entities or XXE); elements arrive one by one, and the parsers
clear each record once read, so a large export is never held whole in memory.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException


class ImportFileError(Exception):
    """The file cannot be imported at all (malformed, refused, wrong format)."""


def iterparse(path: str | Path) -> Iterator[tuple[str, ET.Element]]:
    """("start" | "end", element) pairs; malformed or hostile XML raises ImportFileError."""
    try:
        yield from SafeET.iterparse(str(path), events=("start", "end"), forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ImportFileError(
            f"refused: the file declares a DTD or entities ({type(exc).__name__}), which an "
            "export never needs and which could expand without bound or read local files"
        ) from None
    except ET.ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        raise ImportFileError(
            f"not well-formed XML at line {line}, column {column}: {exc}"
        ) from None
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def split_tag(tag: str) -> tuple[str, str]:
    """("namespace", "local name") of an ElementTree tag."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def child_text(element: ET.Element, tag: str) -> str:
    """The stripped text of the first child `tag` (a Clark-notation name), or ""."""
    child = element.find(tag)
    return (child.text or "").strip() if child is not None else ""


def parse_utc(value: str) -> dt.datetime | None:
    """An ISO 8601 or "YYYY-MM-DD HH:MM:SS" time; naive times are UTC. None when unusable."""
    value = value.strip()
    if not value or value.startswith("0000-00-00"):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)
