"""The figures of a run folder (baselines.plots) and of the score card: readable at the sizes they are drawn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from baselines import plots  # noqa: E402
from baselines.benchmark import plot_scorecard  # noqa: E402
from baselines.cli import main  # noqa: E402


def fake_run(run_dir: Path, heads: int, key: str = "step", config: dict | None = None) -> Path:
    """A run folder whose metrics add a head every 5 evaluations up to N = heads + 1 (no checkpoints)."""
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(config or {"core": "leaky", "task": "parity"}))
    lines = []
    for k in range(5 * heads):
        ns = list(range(2, 3 + k // 5))
        lines.append({key: 100 * (k + 1), "ns": ns, "accuracy": {str(n): 0.5 + 0.01 * k for n in ns},
                      **({"mean_return": 0.5 + 0.01 * k, "success_rate": 0.02 * k} if key == "timesteps" else {})})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return run_dir


@pytest.fixture
def figures(monkeypatch):
    """The figures plots.save_figure writes, by file name, drawn (so their ticks are final)."""
    seen = {}
    save = plots.save_figure

    def keep(fig, path, *args, **kwargs):
        fig.canvas.draw()
        seen[Path(path).name] = fig
        return save(fig, path, *args, **kwargs)

    monkeypatch.setattr(plots, "save_figure", keep)
    return seen


def test_accuracy_of_many_heads_gets_a_colour_bar_of_whole_ns(tmp_path, figures):
    plots.plot_run(fake_run(tmp_path / "run", heads=20))
    fig = figures["accuracy.png"]
    ax, bar = fig.axes  # the accuracy axes and its colour bar
    assert ax.get_legend() is None and bar.get_ylabel() == "N"
    colours = [tuple(line.get_color()) for line in ax.get_lines()]
    assert len(colours) == 20 and len(set(colours)) == 20  # one colour per N, none repeated
    assert all(float(t).is_integer() for t in bar.get_yticks())


def test_accuracy_of_a_few_heads_gets_a_legend(tmp_path, figures):
    plots.plot_run(fake_run(tmp_path / "run", heads=3))
    (ax,) = figures["accuracy.png"].axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["N=2", "N=3", "N=4"]


def test_n_axis_has_whole_number_ticks_even_for_one_n(tmp_path, figures):
    plots.plot_run(fake_run(tmp_path / "run", heads=1))
    (ax,) = figures["n_over_steps.png"].axes
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert ticks == [2.0]


def test_plot_draws_an_rl_run_over_timesteps(tmp_path, figures, capsys):
    run = fake_run(tmp_path / "rl", heads=2, key="timesteps",
                   config={"env_id": "NDMS-v0", "core": "leaky", "curriculum": "multi"})
    assert main(["plot", str(run)]) == 0
    assert capsys.readouterr().out.strip() == f"{run}: accuracy.png, return.png, n_over_steps.png"
    for name in ("accuracy.png", "return.png", "n_over_steps.png"):
        assert figures[name].axes[0].get_xlabel() == "timesteps (RL)"
        assert (run / name).read_bytes()[:4] == b"\x89PNG"


def test_an_rl_run_at_one_n_draws_its_return_not_a_flat_n(tmp_path, figures, capsys):
    """Issue 34, point 5: at a fixed N the newest N is a flat line; what changes is the return and success."""
    run = fake_run(tmp_path / "rl", heads=1, key="timesteps",
                   config={"env_id": "NDMS-v0", "core": "leaky", "curriculum": None})
    assert main(["plot", str(run)]) == 0
    assert capsys.readouterr().out.strip() == f"{run}: accuracy.png, return.png"
    left, right = figures["return.png"].axes
    assert left.get_ylabel() == "mean return per episode" and right.get_ylabel() == "share of episodes solved"
    assert list(left.lines[0].get_ydata()) == [0.5 + 0.01 * k for k in range(5)]
    assert "n_over_steps.png" not in figures and not (run / "n_over_steps.png").exists()


def test_scorecard_draws_one_axes_per_core(tmp_path, figures):
    cores = ["leaky", "gru", "s5", "mamba", "deltanet", "lstm", "lru"]
    results = [{"core": core, "task": task, "curriculum": "multi", "seed": 0, "steps": 300, "max_n": 3,
                "steps_to_n": {"2": 100, "3": 200}} for core in cores for task in ("parity", "dms")]
    plot_scorecard(results, tmp_path / "n_over_steps.png")
    fig = figures["n_over_steps.png"]
    shown = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in shown] == cores  # each kind in its own axes, in the order run
    assert all(len(ax.get_lines()) == 2 for ax in shown)  # a line per task (and seed)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["dms, multi-head", "parity, multi-head"]
