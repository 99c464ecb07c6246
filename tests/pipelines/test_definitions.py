"""The Dagster code location loads: `pipelines.definitions.defs` builds a Definitions object from
`pipelines/defs/` (empty for now, so there is nothing in it yet)."""

from __future__ import annotations

import dagster as dg

from pipelines.definitions import defs


def test_definitions_load() -> None:
    definitions = defs()
    assert isinstance(definitions, dg.Definitions)
    dg.Definitions.validate_loadable(definitions)


def test_definitions_load_every_time() -> None:
    """Loading is repeatable (the webserver and `dg` reload the code location)."""
    assert isinstance(defs(), dg.Definitions)
    assert isinstance(defs(), dg.Definitions)
