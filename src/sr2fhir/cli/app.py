"""The Typer application every command registers on, and the entry point (`sr2fhir`)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .. import __version__


app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
    help="Convert DICOM SR TID 1500 Measurement Reports into FHIR R5 resources, as the HL7 "
    "'DICOM SR to FHIR Resource Mapping' IG (hl7.fhir.uv.dicom-sr 1.0.0) specifies.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sr2fhir {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")] = None,
) -> None:
    pass


def main() -> None:
    app()
