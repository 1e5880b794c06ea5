"""MkDocs hook: writes the command-line reference from the argparse parser itself.

A page holding the marker `<!-- cli-reference -->` gets, in its place, one section per
`vae-tf` subcommand with the help argparse prints, so the reference cannot drift from
the code (`vae_tf.cli.build_parser()` is the one source of every flag, default and choice).
"""

import argparse
import os

MARKER = "<!-- cli-reference -->"
WIDTH = "100"  # argparse wraps help to $COLUMNS; fixed so the page does not depend on the terminal


def _subcommands(parser):
    """(name, one-line help, subparser) of each subcommand, in the parser's order."""
    # argparse has no public accessor for subparsers; its action list is the documented way in.
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in action._choices_actions}
    return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]


def cli_reference():
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        from vae_tf.cli import build_parser

        parser = build_parser()
        sections = ["```text", parser.format_help().rstrip(), "```"]
        for name, summary, sub in _subcommands(parser):
            sections += [f"## vae-tf {name}", "", summary[:1].upper() + summary[1:] + ".", "",
                         "```text", sub.format_help().rstrip(), "```", ""]
        return "\n".join(sections)
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


def on_page_markdown(markdown, page, config, files):
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, cli_reference())
