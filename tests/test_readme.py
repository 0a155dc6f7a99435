"""The README's Python examples run as written."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_every_readme_python_block_runs_on_its_own(block):
    """Each block runs as written in a fresh namespace: a reader may copy any one of them alone."""
    assert len(BLOCKS) >= 3
    exec(compile(block, str(README), "exec"), {"__name__": "readme"})


def test_readme_install_lines_name_extras_that_exist():
    """Every `pip install -e ".[...]"` of the README names extras pyproject.toml defines; the main job's line
    installs only what the main job needs (not the test extra), and the test line installs `dev`."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    extras = tomllib.loads((README.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    text = README.read_text()
    named = re.findall(r'pip install -e "\.\[([a-z,]+)\]"', text)
    assert named and all(extra in extras for group in named for extra in group.split(","))
    bash = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    main_job = next(block for block in bash if "&& memory-envs train" in block)
    assert 'pip install -e ".[plot]" && memory-envs train' in main_job and "dev" not in main_job
    assert any('pip install -e ".[dev]"' in block and "pytest" in block for block in bash)
    assert "--index-url https://download.pytorch.org/whl/cpu" in text  # the CPU-only build, said as such


def test_readme_device_commands_parse():
    """Every `memory-envs ... --device` example (GPU commands, which cannot run here) is accepted by the
    command's parser as written."""
    import shlex

    from baselines.cli import build_parser

    text = "\n".join(re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)).replace("\\\n", " ")
    commands = [shlex.split(part, comments=True) for line in text.splitlines() for part in line.split("&&")]
    commands = [c[c.index("memory-envs") + 1:] for c in commands if "memory-envs" in c and "--device" in c]
    assert {c[0] for c in commands} >= {"train", "rl", "analyze", "benchmark", "reproduce"}
    for argv in commands:
        args = build_parser().parse_args(argv)
        assert args.device.startswith("cuda"), argv
