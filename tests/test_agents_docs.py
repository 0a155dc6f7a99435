"""The usage example in docs/agents.md runs."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "agents.md"


def test_docs_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "docs/agents.md has no python example"
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), {})
