"""The pages the README's tables moved to: their commands parse, their examples run, their links lead somewhere."""

import pathlib
import re

import pytest

from test_readme import check_links, memory_envs_commands

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.glob("*.md"))
MOVED = ["envs.md", "training.md", "scorecard.md", "reproduction.md", "performance.md", "gpu.md", "ray.md"]
"""The pages that hold what the README held: result tables with their commands, and the details."""


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_memory_envs_command_of_a_page_parses(page):
    from baselines.cli import build_parser

    for argv in memory_envs_commands(page.read_text()):
        build_parser().parse_args(argv)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_the_links_of_a_page_lead_to_pages_and_headings_that_exist(page):
    assert check_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_a_page_names_nothing_a_reader_cannot_look_up(page):
    """No issue numbers or sections of the project's internal spec: a reader of the repository has neither."""
    assert not re.search(r"\bissues? \d|\bSPEC\b", page.read_text()), page.name


def test_the_reproduction_table_has_the_columns_reproduce_writes():
    from baselines.reproduce import TABLE_HEADER

    lines = (DOCS / "reproduction.md").read_text().splitlines()
    header = lines.index(TABLE_HEADER)  # the first table: reproduce.md as the command writes it
    assert lines[header + 1] == "|---" * TABLE_HEADER.count(" | ") + "|---|"
    assert all(len(row.split("|")) == len(TABLE_HEADER.split("|")) for row in lines[header + 2:header + 6])


def test_docstrings_cite_nothing_a_reader_cannot_look_up():
    """The code's docstrings and comments cite the paper or a docs page, not the internal spec ("SPEC 3")."""
    root = DOCS.parent
    cited = [f"{path.relative_to(root)}:{number}" for package in ("agents", "baselines", "memory_envs", "benchmarks")
             for path in sorted((root / package).rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1) if re.search(r"\bSPEC \d|SPEC section", line)]
    assert cited == []


@pytest.mark.parametrize("name", MOVED)
def test_the_moved_pages_run_their_python_examples(name, tmp_path, monkeypatch):
    """In a folder of their own, in order, in one namespace, as a reader would run them."""
    page = DOCS / name
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S):
        exec(compile(block, str(page), "exec"), namespace)


def test_every_result_table_page_gives_its_command():
    """Each moved page with a result table (a Markdown table with a number in it) also gives the command
    that made it."""
    for name in MOVED:
        text = (DOCS / name).read_text()
        has_results = re.search(r"^\|.*\d.*\|$", text, flags=re.M)
        assert not has_results or re.search(r"```bash\n.*?(memory-envs|python3? benchmarks/)", text, flags=re.S) \
            or "benchmarks/" in text, name


def test_gpu_commands_parse_for_a_gpu():
    """Every `memory-envs ... --device` example of docs/gpu.md (commands that cannot run here) is accepted by the
    command's parser as written, for a CUDA device, and every command that trains or analyzes is there."""
    from baselines.cli import build_parser

    commands = [c for c in memory_envs_commands((DOCS / "gpu.md").read_text()) if "--device" in c]
    assert {c[0] for c in commands} >= {"train", "rl", "analyze", "benchmark", "reproduce"}
    for argv in commands:
        assert build_parser().parse_args(argv).device.startswith("cuda"), argv
