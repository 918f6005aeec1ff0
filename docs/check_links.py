"""Fails if the book has a broken include or link.

- Every `{{#include FILE}}` or `{{#include FILE:ANCHOR}}` in docs/src must name a file that
  exists and, with an anchor, contains `ANCHOR: name` (mdbook itself quietly includes nothing
  for a missing anchor).
- Every link and image in the built pages (docs/book) must point to a file that exists.
- Every chapter's first heading must be its title in SUMMARY.md, and no picture may be shown
  by two chapters.
- Every chapter (not the introduction, not an appendix) ends with at least two exercises,
  headings that begin with "Exercise"; the book has at least 20.

Usage: python3 docs/check_links.py docs/book
"""

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.targets.append(value)


def broken_links(book: Path):
    for page in book.rglob("*.html"):
        parser = Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for target in parser.targets:
            url = urlparse(target)
            if url.scheme or url.netloc or target.startswith("#"):
                continue  # external, or a link within the page
            path = (page.parent / unquote(url.path)).resolve()
            if not path.exists():
                yield page.relative_to(book), target


INCLUDE = re.compile(r"\{\{#include ([^}:]+)(?::([A-Za-z0-9_-]+))?\}\}")


def broken_includes(source: Path):
    for chapter in source.rglob("*.md"):
        for match in INCLUDE.finditer(chapter.read_text(encoding="utf-8")):
            path, anchor = chapter.parent / match.group(1), match.group(2)
            if not path.is_file():
                yield chapter.name, f"includes {match.group(1)}, which does not exist"
            elif anchor and f"ANCHOR: {anchor}" not in path.read_text(encoding="utf-8"):
                yield chapter.name, f"includes {match.group(1)}:{anchor}, an anchor it lacks"


SUMMARY_ENTRY = re.compile(r"^\s*- \[([^\]]+)\]\(([^)]+\.md)\)", re.M)
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]+)\)|<img [^>]*src=\"([^\"]+)\"")


def resolved(source: Path, chapter: Path) -> str:
    """A chapter's text with its includes (whole files only) put in, for the H1 check."""
    text = chapter.read_text(encoding="utf-8")
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    match = INCLUDE.fullmatch(first.strip())
    if match and not match.group(2):
        return (chapter.parent / match.group(1)).read_text(encoding="utf-8")
    return text


def title_problems(source: Path):
    summary = (source / "SUMMARY.md").read_text(encoding="utf-8")
    for title, name in SUMMARY_ENTRY.findall(summary):
        text = resolved(source, source / name)
        h1 = next((l[2:].strip() for l in text.splitlines() if l.startswith("# ")), None)
        if h1 != title:
            yield name, f"its first heading is {h1!r}, but SUMMARY.md calls it {title!r}"


def anchored(text: str, anchor):
    """What `{{#include file:anchor}}` takes of `text`: the lines between `ANCHOR: anchor` and
    `ANCHOR_END: anchor` (all of it without an anchor)."""
    if not anchor:
        return text
    inside, kept = False, []
    for line in text.splitlines(keepends=True):
        if re.search(rf"ANCHOR_END:\s*{re.escape(anchor)}\b", line):
            inside = False
        elif re.search(rf"ANCHOR:\s*{re.escape(anchor)}\b", line):
            inside = True
        elif inside:
            kept.append(line)
    return "".join(kept)


def repeated_pictures(source: Path):
    seen = {}
    for chapter in sorted(source.glob("*.md")):
        text = chapter.read_text(encoding="utf-8")
        for include in INCLUDE.finditer(text):
            included = chapter.parent / include.group(1)
            if included.suffix == ".md" and included.is_file():
                text += anchored(included.read_text(encoding="utf-8"), include.group(2))
        for match in IMAGE.finditer(text):
            picture = Path(match.group(1) or match.group(2)).name
            if picture in seen:
                yield chapter.name, f"shows {picture}, which {seen[picture]} already shows"
            seen.setdefault(picture, chapter.name)


EXERCISE = re.compile(r"^#{2,4} Exercise\b", re.M)


def exercise_problems(source: Path):
    summary = (source / "SUMMARY.md").read_text(encoding="utf-8")
    total = 0
    for title, name in SUMMARY_ENTRY.findall(summary):
        if title.startswith("Appendix"):
            continue
        count = len(EXERCISE.findall(resolved(source, source / name)))
        total += count
        if count < 2:
            yield name, f"has {count} exercise(s); every chapter needs at least two"
    if total < 20:
        yield "SUMMARY.md", f"the book has {total} exercises; it needs at least 20"


def main():
    book = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/book")
    if not book.is_dir():
        sys.exit(f"no built book at {book}: run mdbook build docs first")
    bad_includes = list(broken_includes(book.parent / "src"))
    for chapter, problem in bad_includes:
        print(f"{chapter}: {problem}")
    if bad_includes:
        sys.exit(f"{len(bad_includes)} broken include(s) in the book")
    source = book.parent / "src"
    bad_pages = (
        list(title_problems(source))
        + list(repeated_pictures(source))
        + list(exercise_problems(source))
    )
    for chapter, problem in bad_pages:
        print(f"{chapter}: {problem}")
    if bad_pages:
        sys.exit(f"{len(bad_pages)} problem(s) with titles, pictures or exercises in the book")
    broken = list(broken_links(book))
    for page, target in broken:
        print(f"{page}: broken link {target}")
    if broken:
        sys.exit(f"{len(broken)} broken link(s) in the book")
    print(f"book links ok ({book})")


if __name__ == "__main__":
    main()
