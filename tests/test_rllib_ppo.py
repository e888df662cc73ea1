"""RLlib's own PPO (shared, action-masked policy) on the SMAC-like env through Tune:
the shipped config runs, logs under the common tags, checkpoints and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tbread import tb_tags, tb_texts

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "agent_config.train_batch_size=600",
    "agent_config.minibatch_size=200",
    "agent_config.num_epochs=2",
    "agent_config.checkpoint_every=1",
    "eval.episodes=2",
]


@pytest.mark.ray
@pytest.mark.slow
def test_rllib_ppo_runs_checkpoints_and_resumes(ray_local, tmp_path):
    from trainers.run import train

    (run,) = train(
        str(ROOT / "configs/rllib_ppo/smaclike_3m.yaml"), [*TINY, "agent_config.iterations=2", f"runs_dir={tmp_path}"]
    )
    res = json.loads((run / "results.json").read_text())
    assert [h["iteration"] for h in res["history"]] == [1, 2]
    steps = [h["env_steps"] for h in res["history"]]
    assert steps[0] >= 600 and steps[1] > steps[0]
    assert all(0.0 <= h["eval_win_rate"] <= 1.0 and 0.0 <= h["win_rate"] <= 1.0 for h in res["history"])
    assert res["history"][-1]["episodic_return"] == res["history"][-1]["episodic_return"]  # not NaN
    assert (run / "checkpoints" / "rllib").is_dir()
    tags = tb_tags(run)
    for tag in (
        "charts/episodic_return",
        "charts/win_rate",
        "charts/SPS",
        "eval/greedy/return",
        "eval/greedy/win_rate",
    ):
        assert tag in tags, (tag, sorted(tags))
    losses = [t for t in tags if t.startswith("losses/")]
    assert losses and all(np.isfinite(v) for t in losses for _, v in tags[t]), sorted(tags)
    assert [s for s, _ in tags["charts/episodic_return"]] == steps  # env steps on the x-axis
    assert "config/text_summary" in tb_texts(run)

    # the exported weights reload (torch weights_only) into the same greedy policy: the
    # generic `shiftrl evaluate` reproduces the training-time evaluation exactly
    from trainers.commands.evaluate import evaluate
    from trainers.commands.render import render_gif

    again = evaluate(str(run))
    assert again["overall"] == res["eval"]["overall"]
    summary = render_gif("SMAClike-3m-v0", str(run), 0, str(tmp_path / "ppo.gif"))
    assert (tmp_path / "ppo.gif").stat().st_size > 0 and summary["steps"] > 0

    train(None, [], resume=str(run))  # nothing left to do: iterations already reached
    with pytest.raises(Exception, match="overrides change"):
        train(None, ["agent_config.iterations=3"], resume=str(run))
    train(None, ["agent_config.iterations=3"], resume=str(run), force=True)
    res = json.loads((run / "results.json").read_text())
    assert [h["iteration"] for h in res["history"]] == [1, 2, 3]
    assert res["history"][2]["env_steps"] > steps[1]
    assert "resuming" in (run / "progress.log").read_text()


def test_rllib_ppo_config_errors_name_the_key():
    from trainers.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="agent 'rllib_ppo' runs pettingzoo envs"):
        load_config(None, ["agent=rllib_ppo", "env.id=RobustLinearMDP-v0"])
    with pytest.raises(ConfigError, match="minibatch_size 900 > train_batch_size 600"):
        load_config(
            ROOT / "configs/rllib_ppo/smaclike_3m.yaml",
            ["agent_config.train_batch_size=600", "agent_config.minibatch_size=900"],
        )
    with pytest.raises(ConfigError, match=r"agent_config: unknown key\(s\) \['lr_schedule'\]"):
        load_config(ROOT / "configs/rllib_ppo/smaclike_3m.yaml", ["agent_config.lr_schedule=1"])
