"""Structure-aware chunking of a parsed document into token-sized passages.

Rules, in order of precedence:
    * ``Title`` elements set the heading path (``section``, e.g. ``"Leave > Parental
      leave"``): a heading pops every open heading of the same or deeper ``depth``. A
      heading equal to the document title is left out of the path (the indexer adds the
      title itself). A heading with neither body nor sub-headings (common for bullets
      that unstructured guesses are titles) is kept as text of its parent section.
    * A chunk holds elements of one section and one page only.
    * Consecutive text elements are packed, joined by newlines, up to ``max_tokens``.
    * A text element over ``max_tokens`` is split with langchain's
      `RecursiveCharacterTextSplitter` (paragraphs, lines, sentences, words), measured
      by ``count_tokens``, with ``overlap_tokens`` of overlap between its pieces.
    * A table is a chunk of its own (``kind="table"``); over ``max_table_tokens`` it is
      split between rows and every piece repeats the first (header) row.
    * Chunk text is the passage only (no title or section prefix); chunks without any
      letter or digit are dropped. The output depends only on the inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from langchain_text_splitters import RecursiveCharacterTextSplitter

from citewise.ingest.parse import Element, ParsedDocument

_SECTION_SEPARATOR = " > "
_MAX_HEADING_CHARS = 100
_SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


@dataclass(frozen=True)
class ChunkDraft:
    """A passage before it gets ids, title and ACL: text, heading path, page and kind."""

    text: str
    section: str
    page: int | None
    kind: Literal["text", "table"]


@dataclass
class _Heading:
    element: Element
    label: str
    has_content: bool = False


@dataclass
class _Chunker:
    doc: ParsedDocument
    max_tokens: int
    overlap_tokens: int
    max_table_tokens: int
    count_tokens: Callable[[str], int]
    drafts: list[ChunkDraft] = field(default_factory=list)
    stack: list[_Heading] = field(default_factory=list)
    buffer: list[str] = field(default_factory=list)
    buffer_key: tuple[str, int | None] = ("", None)

    def run(self) -> list[ChunkDraft]:
        title_key = _normalise(self.doc.title)
        title_heading: Element | None = None
        for element in self.doc.elements:
            if element.category == "Title":
                if _normalise(element.text) == title_key:
                    title_heading = title_heading or element
                    continue
                self._open_heading(element)
            elif element.category == "Table":
                self._mark_content()
                self._add_table(element)
            else:
                self._mark_content()
                self._add_text(element.text, self._section(), element.page)
        self._close_headings(depth=-1)
        self._flush()
        if not self.drafts and title_heading is not None and _has_alnum(title_heading.text):
            self.drafts.append(ChunkDraft(title_heading.text, "", title_heading.page, "text"))
        return self.drafts

    # --- headings ---

    def _section(self) -> str:
        return _SECTION_SEPARATOR.join(h.label for h in self.stack)

    def _open_heading(self, element: Element) -> None:
        self._close_headings(depth=element.depth)
        if self.stack:
            self.stack[-1].has_content = True  # a sub-heading: the parent is not empty
        self.stack.append(_Heading(element, _label(element.text)))

    def _close_headings(self, depth: int) -> None:
        """Pop headings at ``depth`` or deeper; an empty one becomes text of its parent."""
        while self.stack and self.stack[-1].element.depth >= depth:
            heading = self.stack.pop()
            if not heading.has_content:
                self._add_text(heading.element.text, self._section(), heading.element.page)

    def _mark_content(self) -> None:
        if self.stack:
            self.stack[-1].has_content = True

    # --- text ---

    def _add_text(self, text: str, section: str, page: int | None) -> None:
        key = (section, page)
        if self.buffer and key != self.buffer_key:
            self._flush()
        self.buffer_key = key
        if self.count_tokens(text) > self.max_tokens:
            self._flush()
            for piece in self._split(text, self.max_tokens, self.overlap_tokens):
                self._emit(piece, section, page, "text")
            return
        if self.buffer and self.count_tokens("\n".join([*self.buffer, text])) > self.max_tokens:
            self._flush()
        self.buffer.append(text)

    def _flush(self) -> None:
        if self.buffer:
            section, page = self.buffer_key
            self._emit("\n".join(self.buffer), section, page, "text")
            self.buffer = []

    def _emit(
        self, text: str, section: str, page: int | None, kind: Literal["text", "table"]
    ) -> None:
        text = text.strip()
        if _has_alnum(text):
            self.drafts.append(ChunkDraft(text=text, section=section, page=page, kind=kind))

    def _split(self, text: str, limit: int, overlap: int) -> list[str]:
        """Split `text` into pieces of at most `limit` tokens, `overlap` tokens shared."""
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=limit,
            chunk_overlap=min(overlap, limit - 1),
            length_function=self.count_tokens,
            separators=_SEPARATORS,
            keep_separator="end",
        )
        pieces: list[str] = []
        for piece in splitter.split_text(text):
            # The splitter sums token counts of parts, which can undercount the joined text.
            if self.count_tokens(piece) <= limit:
                pieces.append(piece)
            else:
                pieces.extend(self._pack_words(piece, limit))
        return pieces

    def _pack_words(self, text: str, limit: int) -> list[str]:
        """Greedy word packing measured exactly; the fallback when the splitter overshoots."""
        pieces: list[str] = []
        current: list[str] = []
        for word in text.split():
            if current and self.count_tokens(" ".join([*current, word])) > limit:
                pieces.append(" ".join(current))
                current = []
            current.append(word)
        if current:
            pieces.append(" ".join(current))
        return pieces

    # --- tables ---

    def _add_table(self, element: Element) -> None:
        self._flush()
        section, page = self._section(), element.page
        if self.count_tokens(element.text) <= self.max_table_tokens:
            self._emit(element.text, section, page, "table")
            return
        header, *rows = element.text.split("\n")
        if not rows or self.count_tokens(header) * 2 > self.max_table_tokens:
            # No header row worth repeating: split the table like text, kept as a table.
            for part in self._split(element.text, self.max_table_tokens, 0):
                self._emit(part, section, page, "table")
            return
        piece: list[str] = []
        for row in rows:
            if (
                piece
                and self.count_tokens("\n".join([header, *piece, row])) > self.max_table_tokens
            ):
                self._emit("\n".join([header, *piece]), section, page, "table")
                piece = []
            if self.count_tokens("\n".join([header, row])) <= self.max_table_tokens:
                piece.append(row)
                continue
            # One row larger than the limit on its own: split it, header on every part.
            room = max(1, self.max_table_tokens - self.count_tokens(header))
            for part in self._split(row, room, 0):
                self._emit("\n".join([header, part]), section, page, "table")
        if piece:
            self._emit("\n".join([header, *piece]), section, page, "table")


def chunk_document(
    doc: ParsedDocument,
    *,
    max_tokens: int,
    overlap_tokens: int,
    max_table_tokens: int,
    count_tokens: Callable[[str], int],
) -> list[ChunkDraft]:
    """Cut a parsed document into passages that follow its headings, pages and tables.

    Args:
        doc: The parsed document.
        max_tokens: Largest text chunk, in `count_tokens` units.
        overlap_tokens: Tokens shared by consecutive pieces of one over-long element.
        max_table_tokens: Largest table chunk before the table is split by rows.
        count_tokens: Token length of a string (the embedder tokenizer's, in production).

    Returns:
        The chunks in reading order.

    Raises:
        ValueError: If the limits are inconsistent.
    """
    if max_tokens < 1 or max_table_tokens < 1:
        raise ValueError("max_tokens and max_table_tokens must be positive")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError("overlap_tokens must be at least 0 and below max_tokens")
    return _Chunker(
        doc=doc,
        max_tokens=max_tokens,
        overlap_tokens=overlap_tokens,
        max_table_tokens=max_table_tokens,
        count_tokens=count_tokens,
    ).run()


def _label(text: str) -> str:
    label = " ".join(text.split())
    if len(label) > _MAX_HEADING_CHARS:
        label = label[: _MAX_HEADING_CHARS - 1].rstrip() + "\u2026"
    return label


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def _has_alnum(text: str) -> bool:
    return any(ch.isalnum() for ch in text)
