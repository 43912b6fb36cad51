"""The README and docs/ hold what a reader follows: every relative link leads somewhere (file and
heading), every command shown in a code block is one the project accepts (parsed, never run), and the
README stays one screen."""

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from harness.cli import build_parser

PROJECT = Path(__file__).resolve().parent.parent
PAGES = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def links(page: Path) -> list[str]:
    return [target for target in LINK.findall(FENCE.sub("", page.read_text())) if not re.match(r"[a-z]+://", target)]


def commands(page: Path) -> list[str]:
    """Each command line of the page's shell code blocks, comments and environment assignments removed."""
    found = []
    for lang, body in FENCE.findall(page.read_text()):
        if lang not in ("sh", "bash"):
            continue
        for line in body.splitlines():
            line = line.split(" #")[0].strip().rstrip("&").strip()
            if line and not line.startswith("#"):
                words = shlex.split(line)
                while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                    words.pop(0)
                found.append(words)
    return found


def test_the_readme_is_one_screen_and_every_topic_has_its_page():
    readme = (PROJECT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    linked = {Path(target.split("#")[0]).name for target in links(PROJECT / "README.md") if target.startswith("docs/")}
    assert linked == {page.name for page in PAGES[1:]}, "every page of docs/ is in the README's table of contents"


def broken_links(page: Path) -> list[str]:
    """The page's relative links that lead to no file, or to no heading of the page they name."""
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists() or (anchor and resolved.suffix == ".md" and anchor not in anchors(resolved)):
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(PROJECT).as_posix())
def test_every_relative_link_resolves(page):
    assert broken_links(page) == [], f"{page.name}: links that lead nowhere"


@pytest.mark.parametrize("page", [PROJECT / "README.md", PROJECT / "docs" / "command-line.md"], ids=lambda p: p.name)
def test_every_command_shown_parses(page):
    shown = commands(page)
    assert shown, f"{page.name} shows no command"
    for words in shown:
        program, args = Path(words[0]).name, words[1:]
        if program == "make":
            done = subprocess.run(["make", "-n", *args], cwd=PROJECT, capture_output=True, text=True)
            assert done.returncode == 0, f"{' '.join(words)}: {done.stderr}"
        elif program == "harness":
            try:
                build_parser().parse_args(args)
            except SystemExit as e:
                pytest.fail(f"{page.name}: `{' '.join(words)}` does not parse (exit {e.code})")
        else:
            pytest.fail(f"{page.name}: `{' '.join(words)}`: a command this test does not know how to check")


def test_the_link_check_catches_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[there](missing.md) and [here](#title) and [gone](#nowhere)\n")
    assert links(page) == ["missing.md", "#title", "#nowhere"]
    assert broken_links(page) == ["missing.md", "#nowhere"]
