"""Find what an HTML document would fetch from another host (script, link, img, iframe...)."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

#: (tag, attribute) pairs that make a browser fetch something
FETCHING = {
    ("script", "src"),
    ("link", "href"),
    ("img", "src"),
    ("iframe", "src"),
    ("source", "src"),
    ("video", "src"),
    ("audio", "src"),
    ("embed", "src"),
    ("object", "data"),
}


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if (tag, name) in FETCHING and value:
                self.refs.append(value)


def fetched_refs(document: str) -> list[str]:
    parser = _Refs()
    parser.feed(document)
    return parser.refs


def external_refs(document: str) -> list[str]:
    """Every fetched reference that names a host (``//cdn...``, ``https://...``); relative
    paths, ``data:`` URIs and fragments stay on the page's own origin."""
    return [ref for ref in fetched_refs(document) if urlsplit(ref.strip()).netloc]
