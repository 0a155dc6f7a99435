"""The README's Python examples run as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:  # later blocks build on earlier ones, as a reader would run them
        exec(compile(block, str(README), "exec"), namespace)


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
