"""The layers of docs/architecture.md, and what each may import, checked on every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "sr2fhir"

BASE = {"errors", "diagnostics", "ig_defects", "datetimes", "ig_facts", "files", "settings"}
ALLOWED: dict[str, set[str]] = {
    # layer: the layers (top-level modules or folders of sr2fhir) it may import
    "base": BASE,
    "dicom": BASE | {"dicom"},
    "codes": BASE | {"dicom", "codes"},
    "fhir": BASE | {"fhir"},
    "mapping": BASE | {"dicom", "codes", "fhir", "mapping"},
    "validation": BASE | {"fhir", "validation"},
    "batch": BASE | {"dicom", "mapping", "fhir", "validation", "batch"},
    "delivery": BASE | {"dicom", "codes", "fhir", "mapping", "batch", "delivery"},
    "gateway": BASE | {"dicom", "mapping", "fhir", "batch", "delivery", "gateway"},
    "export": BASE | {"dicom", "mapping", "fhir", "batch", "export"},
    "cli": BASE | {"dicom", "codes", "fhir", "mapping", "validation", "batch", "delivery", "gateway", "export", "explain", "__init__"},
    "explain": BASE | {"dicom", "mapping", "fhir", "explain"},
    "__init__": BASE | {"dicom", "mapping", "fhir", "batch"},  # the public API: sr2fhir.convert is batch.convert_document
    "__main__": {"cli"},
}


def layer(module: Path) -> str:
    rel = module.relative_to(PKG)
    name = rel.parts[0] if len(rel.parts) > 1 else rel.stem
    return "base" if name in BASE else name


def imported(module: Path) -> set[tuple[str, int]]:
    """(what, line) for every sr2fhir module or third-party package the module imports."""
    tree = ast.parse(module.read_text())
    rel = module.relative_to(PKG)
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(a.name, node.lineno) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.add((node.module or "", node.lineno))
                continue
            base = list(rel.parts[:-1])[: len(rel.parts) - node.level]
            target = base + (node.module.split(".") if node.module else [])
            if not node.module:  # "from . import x": x is a module, or a name of the package itself
                for a in node.names:
                    path = PKG.joinpath(*target, a.name)
                    is_module = path.with_suffix(".py").exists() or path.is_dir()
                    found.add(("sr2fhir." + ".".join(target + [a.name] if is_module else target + ["__init__"]), node.lineno))
            else:
                found.add((f"sr2fhir.{'.'.join(target)}", node.lineno))
    return found


def test_each_layer_imports_only_what_it_may() -> None:
    wrong = []
    for module in sorted(PKG.rglob("*.py")):
        mine = layer(module)
        for name, line in imported(module):
            if not name.startswith("sr2fhir."):
                continue
            target = name.split(".")[1]
            if target not in ALLOWED[mine] | {mine}:
                wrong.append(f"{module.relative_to(PKG)}:{line} ({mine}) imports {name}")
    assert not wrong, "\n".join(wrong)


def test_only_dicom_knows_pydicom() -> None:
    users = sorted({str(m.relative_to(PKG)) for m in PKG.rglob("*.py") for name, _ in imported(m) if name.split(".")[0] == "pydicom"})
    assert users and all(u.startswith("dicom/") for u in users), users


def test_only_the_storage_scp_knows_pynetdicom() -> None:
    users = sorted({str(m.relative_to(PKG)) for m in PKG.rglob("*.py") for name, _ in imported(m) if name.split(".")[0] == "pynetdicom"})
    assert users == ["gateway/dimse.py"], users


def test_only_the_spark_engine_knows_pyspark_and_only_export_knows_pyarrow() -> None:
    def users(package: str) -> list[str]:
        return sorted({str(m.relative_to(PKG)) for m in PKG.rglob("*.py") for name, _ in imported(m) if name.split(".")[0] == package})

    assert users("pyspark") == ["export/spark.py"]
    assert users("pyarrow") and all(u.startswith("export/") or u == "cli/export.py" for u in users("pyarrow")), users("pyarrow")


def test_every_layer_is_in_the_documented_table() -> None:
    """Issue 26: docs/architecture.md once lacked `explain/`."""
    doc = (PKG.parents[1] / "docs" / "architecture.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| ")]
    for name in ALLOWED:
        if name in ("base", "__main__"):
            continue
        spelt = f"`{name}/`" if (PKG / name).is_dir() else f"`{name}.py`"
        assert any(spelt in row for row in rows), spelt


def test_every_error_sr2fhir_raises_on_purpose_has_one_root() -> None:
    """Issue 26.7: one error base class, as highdicom has (a caller catches sr2fhir.Sr2fhirError)."""
    import sr2fhir
    from sr2fhir.delivery.client import DeliveryError
    from sr2fhir.dicom import part10
    from sr2fhir.gateway.follow import ArchiveError

    for error in (sr2fhir.ConversionError, DeliveryError, ArchiveError, part10.Incomplete, part10.Corrupt, part10.TooLarge):
        assert issubclass(error, sr2fhir.Sr2fhirError), error
    for module in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ClassDef) and any(isinstance(b, ast.Name) and b.id == "Exception" for b in node.bases):
                # Only the root, and signals that never leave the module that raises them.
                assert (module.name, node.name) in {("errors.py", "Sr2fhirError"), ("push.py", "Terminated"), ("web.py", "BodyRefused")}, (module, node.name)


def test_dependencies_are_ranges_whose_floor_ci_tests() -> None:
    """Issue 26.8: exact pins made `pip install sr2fhir` beside highdicom fail to resolve. Each
    runtime dependency is now a range, and its lower bound is the version constraints.txt pins, so
    CI (which installs with the constraints) tests the lowest versions allowed."""
    import tomllib

    from packaging.requirements import Requirement

    root = PKG.parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    pinned = {}
    for line in (root / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pinned[name.lower().replace("_", "-").replace(".", "-")] = version
    runtime = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["spark"]]
    for req in runtime:
        floors = [s.version for s in req.specifier if s.operator == ">="]
        assert floors and not any(s.operator == "==" for s in req.specifier), f"{req}: not a range with a floor"
        assert floors[0] == pinned[req.name.lower().replace("_", "-").replace(".", "-")], f"{req}: floor is not the tested version"


def test_the_command_line_has_no_import_circle() -> None:
    """Issue 26.4: cli.py and cli_serve/cli_export/cli_explain imported each other. Now the commands
    import `app`, `options` and `output`, which import no command, and only the package's
    `__init__` imports the commands."""
    cli = PKG / "cli"
    shared = {"app", "options", "output"}
    commands = {p.stem for p in cli.glob("*.py")} - shared - {"__init__"}
    assert commands >= {"convert", "validate", "push", "dump", "serve", "export", "explain"}
    for module in cli.glob("*.py"):
        targets = {name.split(".")[2] for name, _ in imported(module) if name.startswith("sr2fhir.cli.")}
        if module.stem in shared:
            assert not targets & commands, (module.name, targets)
            assert "__init__" not in targets, module.name
        elif module.stem != "__init__":
            assert targets <= shared, (module.name, targets)
