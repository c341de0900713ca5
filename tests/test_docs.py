"""The documentation: the generated CLI reference is current, every link inside the repository
resolves, and no page, source file, test or script cites a document that is not in the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from pgconnect.cli import generate
from tests.conftest import REPO

PAGES = [
    REPO / "README.md",
    REPO / "benchmarks" / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
]

#: The product contract and the issue tracker are not in the repository, so nothing in it may cite
#: them. Each pattern is spelled with a character class (S[P]EC, i[s]sue) or an escape (\u00a7 is the
#: section sign) so that this file's own source does not match it.
ISSUE = r"(?i:\bi[s]sues? #?\d|\(i[s]sues?\b)"
OUTSIDE = (r"\bS[T]YLE\.md\b", r"\.\./s[h]ared/", "\u00a7", ISSUE)
#: Pages: SPEC in any form.
PAGE_PATTERNS = (r"\bS[P]EC\b", *OUTSIDE)
#: Code, tests and scripts: only SPEC's citations, since SPEC alone may be a name
#: (``secret_command.lazy_value``'s argument).
CODE_PATTERNS = (r"\bS[P]EC\s*\u00a7", r"\bS[P]EC-", r"\bS[P]EC\.md\b", *OUTSIDE)
CODE_FOLDERS = ("pgconnect", "tests", "scripts", "benchmarks", ".ci", "completions")


def outside_references(text: str, patterns: tuple[str, ...]) -> list[str]:
    """Each line of TEXT that cites a document outside the repository, as ``N: line``."""
    found = re.compile("|".join(patterns))
    return [
        f"{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1) if found.search(line)
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
    assert outside_references(text, PAGE_PATTERNS) == [], page.name


def tracked_code_files() -> list[Path]:
    """The tracked text files under CODE_FOLDERS (no node_modules, no binary files)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--", *CODE_FOLDERS],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    files = []
    for name in filter(None, listed.split("\0")):
        path = REPO / name
        if "node_modules" in path.parts or not path.is_file():
            continue
        if b"\0" in path.read_bytes()[:8192]:
            continue  # binary
        files.append(path)
    return files


def test_no_code_cites_documents_outside_the_repository() -> None:
    files = tracked_code_files()
    assert any(f.name == "errors.py" for f in files), "git ls-files found no source"
    offenders = [
        f"{path.relative_to(REPO)}:{hit}"
        for path in files
        for hit in outside_references(
            path.read_text(encoding="utf-8", errors="replace"), CODE_PATTERNS
        )
    ]
    assert offenders == [], "say the rule and point at docs/ instead:\n" + "\n".join(offenders)


def test_the_reference_patterns_catch_citations_and_spare_names() -> None:
    cites = [
        "(S" + "PEC \u00a78)",
        "S" + "PEC-stable JSON shape",
        "see S" + "PEC.md",
        "start-up: i" + "ssue #8",
        "(i" + "ssue 8, P5)",
        "I" + "ssue 3 says",
    ]
    for line in cites:
        assert outside_references(line, CODE_PATTERNS), line
    names = [
        '"""NAME\'s value from S' + "PEC, fetched when first revealed",
        "issued.cert_pem",
        "(issued)",
    ]
    for line in names:
        assert outside_references(line, CODE_PATTERNS) == [], line


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
