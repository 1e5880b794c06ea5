"""Griffe extension: shows the docstrings' `>>>` examples as Python code.

The package's docstrings write examples as doctest lines after an `Example:` line, not
indented under it, so the Google-style parser reads them as prose and Markdown would
turn `f(x)["key"](y)` into links. This fences each run of `>>>` / `...` lines and the
output lines after it (up to a blank line) as a `pycon` block.
"""

import griffe


def fence_doctests(text):
    lines, out, in_block = text.splitlines(), [], False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(">>>") and not in_block:
            indent = line[: len(line) - len(line.lstrip())]
            out += [f"{indent}```pycon"]
            in_block = True
        elif in_block and not stripped:
            out += [f"{indent}```"]
            in_block = False
        out.append(line)
    if in_block:
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
