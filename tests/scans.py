"""Scanned documents made in the test: text rendered to pixels, saved with no text layer."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

DPI = 200


def render_page(lines: list[str]) -> Image.Image:
    """A white US-letter page at 200 dpi with `lines` in black, like a clean scan."""
    font = ImageFont.load_default(size=44)
    page = Image.new("L", (int(8.5 * DPI), 11 * DPI), 255)
    draw = ImageDraw.Draw(page)
    for number, line in enumerate(lines):
        draw.text((160, 220 + number * 90), line, fill=0, font=font)
    return page


def scanned_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A PDF whose pages are images only (no text layer), one per entry of `pages`."""
    images = [render_page(lines) for lines in pages]
    images[0].save(path, "PDF", resolution=float(DPI), save_all=True, append_images=images[1:])
    return path


def scanned_image(path: Path, lines: list[str], image_format: str) -> Path:
    """One scanned page as an image file (``PNG``, ``JPEG`` or ``TIFF``)."""
    render_page(lines).save(path, image_format)
    return path
