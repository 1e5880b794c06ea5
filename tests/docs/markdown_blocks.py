"""The runnable code blocks of a Markdown page, and the marks that say how to run them.

A fenced block whose info string is `python`, `bash`, `console` or `sh` is an example the
tests run; any other (`text`, `json`, none) is output or a file's content and is not run.
An HTML comment on the line before a fence, `<!-- no-run: REASON -->`, keeps that block
out of the run; REASON must say why (a cluster of machines, apt-get, pip install, ...).
A page-level comment `<!-- docs-test: WORD ... -->` sets how its blocks run:
`quickstart` starts the page from a tiny quick-start run, `slow` marks the page slow.
"""

import dataclasses
import pathlib
import re

RUNNABLE = {"python": "python", "bash": "shell", "console": "shell", "sh": "shell"}
PAGE_OPTIONS = {"quickstart", "slow"}
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)\s*(?P<info>[^\s`]*)")
NO_RUN = re.compile(r"<!--\s*no-run:?(?P<reason>.*?)-->")
PAGE = re.compile(r"<!--\s*docs-test:(?P<words>.*?)-->")


@dataclasses.dataclass
class Block:
    language: str  # "python" or "shell"
    code: str
    line: int  # 1-based line of the opening fence
    skip_reason: str | None = None


def page_options(text):
    """The words of the page's `<!-- docs-test: ... -->` comments."""
    words = {word for match in PAGE.finditer(text) for word in match["words"].split()}
    unknown = words - PAGE_OPTIONS
    if unknown:
        raise ValueError(f"unknown docs-test option(s) {sorted(unknown)}; known: {sorted(PAGE_OPTIONS)}")
    return words


def blocks(text):
    """Every fenced block in `text` whose language is runnable, in page order."""
    lines, found, i = text.splitlines(), [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(fence)), None)
        if end is None:
            raise ValueError(f"line {i + 1}: a fence that is never closed")
        language = RUNNABLE.get(opening["info"].lower())
        if language:
            previous = lines[i - 1].strip() if i else ""
            mark = NO_RUN.search(previous)
            code = "\n".join(line[indent:] for line in lines[i + 1:end])
            found.append(Block(language, code, i + 1, mark["reason"].strip() if mark else None))
        i = end + 1
    return found


def commands(code):
    """The shell commands of a block: continuation lines joined, comments and blank lines dropped."""
    joined, current = [], ""
    for line in code.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        joined.append((current + line).strip())
        current = ""
    if current:
        joined.append(current.strip())
    return joined


def markdown_files(root):
    """README.md and every page under docs/, relative to the repository root."""
    root = pathlib.Path(root)
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
