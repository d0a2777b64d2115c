"""Minimal Telegram text formatting: HTML parse mode validation and entity extraction.

Only what the Bot API documents for ``parse_mode=HTML`` is accepted; anything else is
rejected the way Telegram does (``can't parse entities: ...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FormattingError",
    "UnsupportedParseModeError",
    "bot_command_entities",
    "parse_text",
    "utf16_len",
]


class FormattingError(ValueError):
    """The text could not be parsed in the requested parse mode."""


class UnsupportedParseModeError(FormattingError):
    """``parse_mode`` is not one of HTML, MarkdownV2, Markdown."""


_SIMPLE_TAGS: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_SUPPORTED = {*_SIMPLE_TAGS, "a", "span", "tg-emoji", "blockquote"}
_ATTR_RE = re.compile(r"""([A-Za-z_][\w-]*)\s*(?:=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?""")
_ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z]+);")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{1,64})?")


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (how Telegram measures entities)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _Open:
    name: str
    attrs: dict[str, str]
    offset: int
    extra: dict[str, Any] = field(default_factory=dict)


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _parse_attrs(raw: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for match in _ATTR_RE.finditer(raw):
        value = match.group(2) or ""
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        attrs[match.group(1).lower()] = _unescape(value)
    return attrs


def _unescape(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        body = match.group(1)
        if body.startswith(("#x", "#X")):
            code = int(body[2:], 16)
        elif body.startswith("#"):
            code = int(body[1:])
        elif body in _NAMED_ENTITIES:
            return _NAMED_ENTITIES[body]
        else:
            return match.group(0)
        return chr(code) if 0 < code < 0x110000 else match.group(0)

    return _ENTITY_RE.sub(repl, text)


def _entity_for(tag: _Open, offset: int, length: int) -> dict[str, Any] | None:
    if length <= 0:
        return None
    base: dict[str, Any] = {"offset": offset, "length": length}
    if tag.name in _SIMPLE_TAGS:
        kind = _SIMPLE_TAGS[tag.name]
        if kind == "pre" and "language" in tag.extra:
            base["language"] = tag.extra["language"]
        return {"type": kind, **base}
    if tag.name == "span":
        return {"type": "spoiler", **base}
    if tag.name == "blockquote":
        kind = "expandable_blockquote" if "expandable" in tag.attrs else "blockquote"
        return {"type": kind, **base}
    if tag.name == "tg-emoji":
        return {"type": "custom_emoji", "custom_emoji_id": tag.attrs["emoji-id"], **base}
    if tag.name == "a":
        href = tag.attrs.get("href", "")
        if not href:
            return None
        user_match = re.fullmatch(r"tg://user\?id=(\d+)", href)
        if user_match:
            user = {"id": int(user_match.group(1)), "is_bot": False, "first_name": "User"}
            return {"type": "text_mention", "user": user, **base}
        return {"type": "text_link", "url": href, **base}
    return None  # pragma: no cover - every supported tag is handled above


def _parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    out: list[str] = []
    out_len = 0  # UTF-16 length of the output so far
    stack: list[_Open] = []
    entities: list[dict[str, Any]] = []
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == "<":
            end = text.find(">", i)
            if end == -1:
                raise FormattingError(f"Unclosed start tag at byte offset {_byte_offset(text, i)}")
            inner = text[i + 1 : end]
            if inner.startswith("/"):
                name = inner[1:].strip().lower()
                if not stack:
                    raise FormattingError(
                        f"Unexpected end tag at byte offset {_byte_offset(text, i)}"
                    )
                top = stack.pop()
                if name != top.name:
                    raise FormattingError(
                        f"Unmatched end tag at byte offset {_byte_offset(text, i)}, "
                        f'expected "</{top.name}>", found "</{name}>"'
                    )
                if top.name == "code" and stack and stack[-1].name == "pre":
                    language = top.attrs.get("class", "")
                    if language.startswith("language-"):
                        stack[-1].extra["language"] = language[len("language-") :]
                        i = end + 1
                        continue
                entity = _entity_for(top, top.offset, out_len - top.offset)
                if entity is not None:
                    entities.append(entity)
            else:
                match = re.match(r"\s*([A-Za-z][\w-]*)", inner)
                name = match.group(1).lower() if match else ""
                attrs = _parse_attrs(inner[match.end() :]) if match else {}
                offset = _byte_offset(text, i)
                if name not in _SUPPORTED or inner.rstrip().endswith("/"):
                    raise FormattingError(f'Unsupported start tag "{name}" at byte offset {offset}')
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise FormattingError(
                        f'Tag "span" must have class "tg-spoiler" at byte offset {offset}'
                    )
                if name == "tg-emoji" and not attrs.get("emoji-id"):
                    raise FormattingError(
                        f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {offset}'
                    )
                stack.append(_Open(name=name, attrs=attrs, offset=out_len))
            i = end + 1
            continue
        if char == "&":
            match = _ENTITY_RE.match(text, i)
            if match:
                piece = _unescape(match.group(0))
                out.append(piece)
                out_len += utf16_len(piece)
                i = match.end()
                continue
        out.append(char)
        out_len += utf16_len(char)
        i += 1
    if stack:
        raise FormattingError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _parse_markdown_v2(text: str) -> str:
    # Not a full MarkdownV2 implementation: drop escapes so plain text is readable.
    return re.sub(r"\\(.)", r"\1", text)


def parse_text(
    text: str,
    parse_mode: str | None,
    entities: list[dict[str, Any]] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Return ``(plain_text, entities)`` for ``text`` in ``parse_mode``.

    Raises :class:`FormattingError` on malformed HTML or an unknown parse mode.
    """
    mode = (parse_mode or "").strip()
    if not mode:
        return text, list(entities or [])
    lowered = mode.lower()
    if lowered == "html":
        return _parse_html(text)
    if lowered == "markdownv2":
        return _parse_markdown_v2(text), []
    if lowered == "markdown":
        return text, []
    raise UnsupportedParseModeError(f"unsupported parse_mode {mode!r}")


def bot_command_entities(text: str) -> list[dict[str, Any]]:
    """Entities Telegram attaches to a user's message that starts with a bot command."""
    match = _COMMAND_RE.match(text)
    if not match:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group(0))}]
