"""`sr2fhir dump`: the SR content tree, with the paths diagnostics name."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..errors import ConversionError
from .app import app
from .output import say


@app.command()
def dump(
    input: Annotated[str, typer.Argument(metavar="INPUT", help="A DICOM SR file (Part 10 or DICOM JSON), or - for stdin.", show_default=False)],
    names: Annotated[bool, typer.Option("--names/--no-names", help="Show PNAME values (person names).")] = True,
) -> None:
    """Print the SR content tree: path, relationship, value type, concept name and value."""
    from ..dicom.dump import lines
    from ..dicom.reader import read, read_stream
    
    try:
        docs = read_stream(sys.stdin.buffer, "<stdin>") if input == "-" else read(input)
    except ConversionError as exc:
        say(f"error: {exc}", style="bold red")
        raise typer.Exit(exc.exit_code) from None
    for doc in docs:
        sys.stdout.write(f"# {doc.source}: SOP class {doc.sop_class_uid}\n")
        for line in lines(doc, show_names=names):
            sys.stdout.write(line + "\n")
