#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks that the repository's references to its own files resolve.

Scans the text files git knows about (tracked files, plus untracked files that are not ignored,
so that new documents are checked before they are committed) and finds:

* relative Markdown links `[text](path)` and `![alt](path)` (in Markdown files, and in comments
  of other files); URLs, `mailto:` and in-page `#anchor` links are skipped;
* bare mentions of repository paths: words starting with `docs/`, `include/pnn/`, `examples/`,
  `tools/`, `tests/` or `benchmarks/`, and words ending in `.md`;
* section references `docs/<name>.md, "Heading"` (the heading may open the next line) and
  anchors `docs/<name>.md#anchor`.

A Markdown link resolves against the referencing file's directory or the repository root, a bare
mention against the root; a file or a directory will do, and a name without an extension also
resolves when a source file of that name exists (a program built from it, such as
`examples/quickstart` from `examples/quickstart.cpp`). Mentions with `*`, `<` or `{` are
patterns or placeholders and are skipped, and so are URLs and build outputs (`build/...`). A
section reference must name a heading of that file (compared case-insensitively), an anchor the
GitHub-style slug of one.

A fenced code block right after a line `<!-- snippet: path -->` must appear verbatim in that file,
so documentation code is the code the suite compiles and runs.

Prints `file:line: missing reference 'X'` (or `missing heading`/`missing anchor`) for each
problem and exits 1; otherwise prints `check_doc_refs: N references, all resolve`.
Standard library only.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT_SUFFIXES = (".hpp", ".cpp", ".md", ".txt", ".sh", ".py", ".in", ".cmake")
PREFIXES = ("docs", "include/pnn", "examples", "tools", "tests", "benchmarks")

# A mention must not continue a longer word or path (e.g. `build/release/examples/x`, a URL).
_START = r"(?<![\w./\-@:~$])"
_PATH_CHARS = r"[^\s`'\"()\[\],;|]"
PREFIXED = re.compile(_START + r"((?:" + "|".join(re.escape(p) for p in PREFIXES) + r")/" + _PATH_CHARS + r"*)")
MD_FILE = re.compile(_START + r"([\w.\-/]*\w\.md)(?![\w/])((?:#[\w\-]+)?)")
MD_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SECTION = re.compile(r"(docs/[\w.\-/]+\.md)`?,\s*\"([^\"]+)\"")
SECTION_AT_END = re.compile(r"(docs/[\w.\-/]+\.md)`?,\s*$")
URL = re.compile(r"\b[a-zA-Z][\w+.\-]*://\S+|\bmailto:\S+|\bwww\.\S+")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^ {0,3}(```|~~~)")
COMMENT_LEADER = re.compile(r"^\s*(?:///?|#+|\*+|--)?\s*")
TRAILING = ".,:;!?'\")]}"
PROGRAM_SOURCES = (".cpp", ".py", ".sh")


def tracked_files() -> list[str]:
    """Files git tracks, plus untracked ones it does not ignore, relative to the root."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode("utf-8", "surrogateescape")
    names = sorted({n for n in out.split("\0") if n})
    return [n for n in names if n.endswith(TEXT_SUFFIXES) and not n.startswith("build/") and (ROOT / n).is_file()]


def normalise_heading(text: str) -> str:
    return " ".join(text.replace("`", "").replace("*", "").split()).casefold()


def github_slug(text: str) -> str:
    s = text.strip().lower()
    s = "".join(c for c in s if c.isalnum() or c in " -_")
    return s.replace(" ", "-")


_heading_cache: dict[Path, tuple[set[str], set[str]]] = {}


def headings_of(path: Path) -> tuple[set[str], set[str]]:
    """(normalised headings, GitHub anchors) of a Markdown file, outside fenced code blocks."""
    if path not in _heading_cache:
        names: set[str] = set()
        slugs: set[str] = set()
        counts: dict[str, int] = {}
        fenced = False
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if FENCE.match(line):
                fenced = not fenced
                continue
            m = None if fenced else HEADING.match(line)
            if not m:
                continue
            title = re.sub(r"\s*\{#[^}]*\}\s*$", "", m.group(2))
            names.add(normalise_heading(title))
            slug = github_slug(title.replace("`", ""))
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            slugs.add(slug if n == 0 else f"{slug}-{n}")
        _heading_cache[path] = (names, slugs)
    return _heading_cache[path]


def skipped(token: str) -> bool:
    return any(c in token for c in "*<{$%") or token.startswith(("build/", "/")) or "/build/" in token


def comment_text(name: str, line: str) -> str:
    """The part of a line of a non-Markdown file where a Markdown link may appear."""
    if name.endswith((".hpp", ".cpp")):
        i = line.find("//")
        return line[i:] if i >= 0 else ""
    i = line.find("#")
    return line[i:] if i >= 0 else ""


class Checker:
    def __init__(self) -> None:
        self.count = 0
        self.problems: list[str] = []

    def problem(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def resolve(self, target: str, base: Path | None) -> Path | None:
        for root in ([base] if base is not None else []) + [ROOT]:
            p = (root / target).resolve()
            try:
                p.relative_to(ROOT)
            except ValueError:
                continue
            if p.exists():
                return p
            if not p.suffix:  # a program named after its source file
                for ext in PROGRAM_SOURCES:
                    if p.with_suffix(ext).is_file():
                        return p.with_suffix(ext)
        return None

    def check_anchor(self, where: str, path: Path, anchor: str, shown: str) -> None:
        if anchor and path.suffix == ".md" and path.is_file():
            if anchor.lower() not in headings_of(path)[1]:
                self.problem(where, f"missing anchor '#{anchor}' in '{shown}'")

    def check_path(self, where: str, token: str, base: Path | None) -> None:
        target, _, anchor = token.partition("#")
        target = target.rstrip(TRAILING) if not anchor else target
        anchor = anchor.rstrip(TRAILING)
        if not target or skipped(target):
            return
        self.count += 1
        path = self.resolve(target, base)
        if path is None:
            self.problem(where, f"missing reference '{target}'")
            return
        self.check_anchor(where, path, anchor, target)

    def check_section(self, where: str, doc: str, heading: str) -> None:
        path = ROOT / doc
        if not path.is_file():
            return  # reported as a missing reference by check_path
        if normalise_heading(heading) not in headings_of(path)[0]:
            self.problem(where, f"missing heading \"{heading}\" in '{doc}'")

    def scan(self, name: str) -> None:
        path = ROOT / name
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        is_md = name.endswith(".md")
        for i, raw in enumerate(lines):
            where = f"{name}:{i + 1}"
            line = URL.sub(" ", raw)
            # Markdown links, relative to this file's directory or the root.
            link_text = line if is_md else comment_text(name, line)
            link_spans = []
            for m in MD_LINK.finditer(link_text):
                target = m.group(1)
                link_spans.append(target)
                if target.startswith("#") or ":" in target.split("/")[0]:
                    continue
                self.check_path(where, target, path.parent)
            # Bare mentions, relative to the root.
            seen: set[tuple[int, str]] = set()
            for m in PREFIXED.finditer(line):
                seen.add((m.start(1), m.group(1)))
            for m in MD_FILE.finditer(line):
                if not any(s <= m.start(1) < s + len(t) for s, t in seen):
                    seen.add((m.start(1), m.group(1) + m.group(2)))
            for _, token in sorted(seen):
                if token in link_spans:
                    continue  # already checked as a link
                self.check_path(where, token, None)
            # Section references `docs/<name>.md, "Heading"`; the heading may open the next line.
            for m in SECTION.finditer(line):
                self.check_section(where, m.group(1), m.group(2))
            m = SECTION_AT_END.search(line)
            if m and i + 1 < len(lines):
                nxt = COMMENT_LEADER.sub("", lines[i + 1], count=1)
                h = re.match(r"\"([^\"]+)\"", nxt)
                if h:
                    self.check_section(where, m.group(1), h.group(1))


SNIPPET = re.compile(r"^<!--\s*snippet:\s*(\S+)\s*-->\s*$")


def snippet_problems(name: str) -> list[str]:
    """Code blocks marked `<!-- snippet: path -->` that differ from that file."""
    problems = []
    lines = (ROOT / name).read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    for i, line in enumerate(lines):
        m = SNIPPET.match(line)
        if not m:
            continue
        source = ROOT / m.group(1)
        if i + 1 >= len(lines) or not FENCE.match(lines[i + 1]) or not source.is_file():
            problems.append(f"{name}:{i + 1}: snippet marker without a code block or file '{m.group(1)}'")
            continue
        block = []
        for body in lines[i + 2:]:
            if FENCE.match(body):
                break
            block.append(body)
        if "\n".join(block) not in source.read_text(encoding="utf-8"):
            problems.append(f"{name}:{i + 1}: code block differs from {m.group(1)}")
    return problems


def main() -> int:
    checker = Checker()
    for name in tracked_files():
        checker.scan(name)
        if name.endswith(".md"):
            checker.problems.extend(snippet_problems(name))
    for p in checker.problems:
        print(p)
    if checker.problems:
        print(f"check_doc_refs: {checker.count} references, {len(checker.problems)} problems", file=sys.stderr)
        return 1
    print(f"check_doc_refs: {checker.count} references, all resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
