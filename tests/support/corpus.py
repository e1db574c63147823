"""Load the shared query corpora (``../shared/corpus/<name>.txt``) for table-driven tests.

One JSON object per line; blank lines and ``#`` lines are skipped. String values (at any depth)
may contain ``<<PLACEHOLDER>>`` tokens, replaced from the mapping the caller passes. The corpus
directory is ``<repo>/../shared/corpus`` unless ``ANALYTICS_CORPUS_DIR`` names another one.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CORPUS_DIR_ENV = "ANALYTICS_CORPUS_DIR"

# Values the unit tests use; integration tests pass the names of their real fixtures.
DEFAULT_PLACEHOLDERS: dict[str, str] = {
    "SENTINEL_DIR": "/tmp/sentinel",
    "OTHER_SCHEMA": "tenant_other",
    "OTHER_SCHEMA_UPPER": "TENANT_OTHER",
    "OTHER_SCHEMA_UESCAPE": "tenant\\005fother",
    "OWN_SCHEMA": "tenant_own",
    "PLATFORM_SCHEMA": "platform",
    "PLATFORM_TABLE": "platform.secrets",
    "SERVICE_ROLE": "analytics",
    "PG_SECRET": "pg",
    "GENERIC_SECRET": "generic",
}

_PLACEHOLDER = re.compile(r"<<([A-Z0-9_]+)>>")


@dataclass(frozen=True)
class CorpusEntry:
    """One line of a corpus file."""

    corpus: str
    line: int
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.corpus}:{self.line}"

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


def corpus_dir() -> Path:
    override = os.environ.get(CORPUS_DIR_ENV)
    if override:
        return Path(override)
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "corpus"


def _substitute(value: Any, placeholders: Mapping[str, str] | None, where: str) -> Any:
    if isinstance(value, str):
        if placeholders is None:
            return value

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in placeholders:
                raise KeyError(f"{where}: no value for placeholder <<{name}>>")
            return placeholders[name]

        return _PLACEHOLDER.sub(replace, value)
    if isinstance(value, list):
        return [_substitute(item, placeholders, where) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, placeholders, where) for key, item in value.items()}
    return value


def iter_corpus(name: str, placeholders: Mapping[str, str] | None = None) -> Iterator[CorpusEntry]:
    """Entries of ``<name>.txt`` (the ``.txt`` may be omitted), placeholders substituted.

    With ``placeholders=None`` the text is returned as written; otherwise every placeholder the
    file uses must be in the mapping (a KeyError names the missing one).
    """
    file_name = name if name.endswith(".txt") else f"{name}.txt"
    path = corpus_dir() / file_name
    corpus = file_name[: -len(".txt")]
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON object: {error}") from error
            if not isinstance(data, dict):
                raise ValueError(f"{path}:{number}: not a JSON object")
            yield CorpusEntry(corpus, number, _substitute(data, placeholders, f"{path}:{number}"))


def load_corpus(name: str, placeholders: Mapping[str, str] | None = None) -> list[CorpusEntry]:
    return list(iter_corpus(name, placeholders))


def corpus_params(name: str, field: str = "sql",
                  placeholders: Mapping[str, str] | None = DEFAULT_PLACEHOLDERS,
                  ) -> list[Any]:
    """``pytest.param(<field value>, entry, id=<corpus:line>)`` for each entry of a corpus."""
    return [pytest.param(entry[field], entry, id=entry.id)
            for entry in iter_corpus(name, placeholders)]
