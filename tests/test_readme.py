"""The README: its Python examples run as written, its commands parse, its set-up commands are on its first
screen, and its links lead somewhere."""

import pathlib
import re
import shlex

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEXT = README.read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
BASH = re.findall(r"```bash\n(.*?)```", TEXT, flags=re.S)
TEST_COMMAND = "python3 -m pytest -q"
MAIN_JOB = 'pip install -e ".[plot,analysis]" && memory-envs train'
"""The install (the extras of train, plot, reproduce and analyze) and the main job, on one line."""


def memory_envs_commands(text: str) -> list[list[str]]:
    """The argv after ``memory-envs`` of every command in ``text``'s bash blocks (continuation lines joined,
    ``a && b`` split, comments dropped; ``git clone ... memory-envs`` and ``cd memory-envs`` are no commands of it)."""
    bash = "\n".join(re.findall(r"```bash\n(.*?)```", text, flags=re.S)).replace("\\\n", " ")
    commands = [shlex.split(part, comments=True) for line in bash.splitlines() for part in line.split("&&")]
    return [c[c.index("memory-envs") + 1:] for c in commands if "memory-envs" in c and c[0] not in ("git", "cd")]


def links(text: str) -> list[str]:
    """The relative targets of the Markdown links in ``text`` (web addresses left out)."""
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", t)]


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings of ``markdown``: lower case, punctuation but hyphens dropped, spaces
    to hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", markdown, flags=re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def check_links(page: pathlib.Path) -> list[str]:
    """The links of ``page`` whose file or heading does not exist."""
    broken = []
    for target in links(page.read_text()):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (anchor and anchor not in anchors(linked.read_text())):
            broken.append(target)
    return broken


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_every_readme_python_block_runs_on_its_own(block):
    """Each block runs as written in a fresh namespace: a reader may copy any one of them alone."""
    assert len(BLOCKS) >= 3
    exec(compile(block, str(README), "exec"), {"__name__": "readme"})


def test_readme_install_lines_name_extras_that_exist():
    """Every `pip install -e ".[...]"` of the README names extras pyproject.toml defines; the main job's line
    installs only what the main job needs (not the test extra), and the test line installs `dev`."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = re.findall(r'pip install -e "\.\[([a-z,]+)\]"', TEXT)
    assert named and all(extra in extras for group in named for extra in group.split(","))
    main_job = next(block for block in BASH if "&& memory-envs train" in block)
    assert f"{MAIN_JOB}\n" in main_job and "dev" not in main_job
    assert any('pip install -e ".[dev]"' in block and "pytest" in block for block in BASH)
    assert "--index-url https://download.pytorch.org/whl/cpu" in TEXT  # the CPU-only build, said as such
    assert "install it from a clone" in TEXT and "pip install memory-envs" not in TEXT  # not on the package index


def test_the_set_up_commands_are_on_the_first_screen_and_ci_runs_the_test_command():
    """Set-up + main job in one command, the tests in another, both in the first 40 lines; `.ci/run` runs the
    README's test command; the README stays short."""
    lines = TEXT.splitlines()
    main_job = next(i for i, line in enumerate(lines) if line == MAIN_JOB)
    tests = next(i for i, line in enumerate(lines) if line == TEST_COMMAND)
    assert main_job < tests < 40
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text().splitlines()
    assert len(lines) <= 200


def test_the_install_block_holds_every_step_in_order():
    """Issue 34, point 3: the first bash block is copy-and-paste complete, in the order a new user runs it: get
    the code and enter it, the optional CPU-only torch (said so in a comment), the install and the main job;
    the install's extras are those the README's commands (but rl and the tests) need."""
    steps = [line for line in BASH[0].splitlines() if line.strip()]
    assert len(steps) == 3, steps
    clone, torch_line, main_job = steps
    assert clone.startswith("git clone ") and clone.endswith(" memory-envs && cd memory-envs")
    assert "<repository-url>" in clone and "`<repository-url>`" in TEXT.split("```bash")[0]  # the placeholder, said
    command, _, comment = torch_line.partition("#")
    assert command.split() == ["pip", "install", "torch", "--index-url", "https://download.pytorch.org/whl/cpu"]
    assert "optional" in comment and "CPU-only" in comment
    assert main_job == MAIN_JOB
    needed = {"plot": "matplotlib", "analysis": "scipy"}  # plot, reproduce; analyze's fits
    assert set(re.search(r'"\.\[([a-z,]+)\]"', main_job).group(1).split(",")) == set(needed)
    from baselines.cli.args import EXTRAS
    assert all(EXTRAS[module] == extra for extra, module in needed.items())


def test_every_readme_command_parses():
    """Every `memory-envs ...` of the README is accepted by the command's parser as written."""
    from baselines.cli import build_parser

    commands = memory_envs_commands(TEXT)
    assert {c[0] for c in commands} >= {"train", "rl", "benchmark", "reproduce", "analyze", "plot"}
    for argv in commands:
        build_parser().parse_args(argv)


def test_readme_links_lead_to_pages_and_headings_that_exist():
    assert {link.partition("#")[0] for link in links(TEXT)} >= {"docs/envs.md", "docs/training.md", "docs/gpu.md",
                                                                 "docs/performance.md", "LICENSE"}
    assert check_links(README) == []
    assert "issue " not in TEXT.lower() and "SPEC" not in TEXT  # nothing a reader cannot look up


def test_the_test_command_prints_no_line_per_skipped_cuda_case():
    """Issue 34, point 6: off a GPU the CUDA cases skip; pytest's summary counts them without a line each."""
    tomllib = pytest.importorskip("tomllib")

    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    report = "".join(option[2:] for option in addopts.split() if option.startswith("-r"))
    assert report and not set(report) & set("saA"), addopts  # s: skipped; a, A: all (skips included)
