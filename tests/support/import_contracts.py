"""An import-linter contract type for what import-linter's own cannot say: which *parts* of an external
package some modules may import (its graph knows external packages by their top name only, `airflow`).
Checked on each import line, e.g. drivers may import Airflow's hooks and notifiers, never DAG building."""

from __future__ import annotations

import re
from typing import Any

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output
from importlinter.domain.helpers import module_expressions_to_modules


class AllowedImportsContract(Contract):
    """source_modules (and their descendants) import `external` only on lines matching one of `allowed`
    (regular expressions over the import statement's first line)."""

    type_name = "allowed_imports"

    source_modules = fields.ListField(subfield=fields.ModuleExpressionField())
    external = fields.StringField()
    allowed = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        patterns = [re.compile(p) for p in self.allowed]  # type: ignore[attr-defined]
        sources = set()
        for module in module_expressions_to_modules(graph, self.source_modules):  # type: ignore[arg-type]
            sources |= {module.name, *graph.find_descendants(module.name)}
        refused: list[dict[str, Any]] = []
        for importer in sorted(sources):
            for detail in graph.get_import_details(importer=importer, imported=self.external):  # type: ignore[arg-type]
                if not any(p.search(detail["line_contents"].strip()) for p in patterns):
                    refused.append(detail)
        return ContractCheck(kept=not refused, metadata={"refused": refused})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for detail in check.metadata["refused"]:
            output.print_error(
                f"{detail['importer']}:{detail['line_number']}: {detail['line_contents'].strip()}", bold=False
            )
        output.new_line()
        output.print(f"Allowed imports of {self.external}: {', '.join(self.allowed)}")  # type: ignore[arg-type]
