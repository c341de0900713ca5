"""The documentation: the generated CLI reference is current, every link inside the repository
resolves, and no page cites a document that is not in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pgconnect.cli import generate
from tests.conftest import REPO

PAGES = [
    REPO / "README.md",
    REPO / "benchmarks" / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
]


def test_cli_reference_is_current() -> None:
    assert generate.CLI_REFERENCE.read_text(encoding="utf-8") == generate.cli_reference(), (
        "docs/cli.md is stale: run python -m pgconnect.cli.generate"
    )


def test_cli_reference_has_every_command() -> None:
    from tests import cli_tree

    text = generate.CLI_REFERENCE.read_text(encoding="utf-8")
    for path in cli_tree.paths():
        assert f"## `pgconnect {' '.join(path)}`" in text, path


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_reference_to_documents_outside_the_repository(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for pattern in (r"\bSPEC\b", "§", r"\bissues? #?\d", r"\bSTYLE\.md\b", r"\.\./shared/"):
        found = re.search(pattern, text)
        assert found is None, (
            f"{page.name}: {text[max(0, found.start() - 60) : found.end() + 60]!r}"
        )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_links_inside_the_repository_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: outside the repository by nature
        resolved = (page.parent / target).resolve()
        assert resolved.exists(), f"{page.name} links to {target}, which does not exist"


def test_readme_is_an_overview() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 230, len(lines)
    text = "\n".join(lines)
    for needed in ("bash scripts/demo.sh", "bash scripts/test.sh", "## Exit status", "docs/api.md"):
        assert needed in text


@pytest.mark.parametrize("page", PAGES[1:], ids=lambda p: str(p.relative_to(REPO)))
def test_the_readme_links_every_page(page: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"]({page.relative_to(REPO).as_posix()})" in readme, page
