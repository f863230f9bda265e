"""Render a catalogued table's or figure's report caption the way Snakemake's report does: its
caption file as a Jinja2 template, given a ``snakemake`` object whose ``params.caption`` is the
rule's caption param. Undefined names fail here (Snakemake would render them empty)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Mapping

import jinja2

from facesleuth.report import catalog


def render_caption(spec: catalog.ReportSpec, validation: Mapping[str, Any] | None = None) -> str:
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(spec.caption_file().read_text())
    words = catalog.caption_words(spec, validation)
    return template.render(snakemake=SimpleNamespace(params=SimpleNamespace(caption=words)))
