"""RecurrentPPO (sb3-contrib) policy whose recurrent layers are our tau cores (issue 5).

``RecurrentCorePolicy`` is sb3-contrib's ``RecurrentActorCriticPolicy`` with ``lstm_actor`` /
``lstm_critic`` replaced by cores from :func:`agents.make_core` (any built-in kind of
``agents.cores.KINDS``, the architecture zoo's included). Pass it as the policy class and choose the core in ``policy_kwargs``::

    from sb3_contrib import RecurrentPPO
    from agents.rl_policy import RecurrentCorePolicy

    model = RecurrentPPO(RecurrentCorePolicy, env, policy_kwargs=dict(
        core="gru", core_options={"tau_init": [1.0, 2.0]}, lstm_hidden_size=32))

States keep sb3-contrib's layout: ``RNNStates(pi=(h, c), vf=(h, c))`` with tensors of shape
(L, n_envs, H). The core's flat state (``Core.flatten_state``) fills the rows of h, then of c, zero-padded:
for the LSTM that is exactly (h, c) with L = 1; cores with one [B, H] state tensor ("leaky",
"leaky_mod", "gru") use ``h`` and leave ``c`` zero; a zoo core whose state is larger takes
L = ceil(state_size / 2H) rows (``state_layers``). States are reset to zeros where ``episode_starts == 1``, as in sb3-contrib; the
cores' ``h0`` option is therefore forced to ``"zero"`` (RecurrentPPO builds its initial states as
zeros too).

Sequence processing: when no episode starts inside a sequence after its first step (always the
case for sb3-contrib's training minibatches, which begin a new sequence at every episode start, and
for rollout collection, where T == 1), the state is reset where ``episode_starts[0]`` and the core
runs ONCE over the whole padded sequence. Otherwise it falls back to a per-step loop. ``forward`` and
``evaluate_actions`` run separate actor and critic cores side by side in one kernel loop
(:func:`agents.cores.run_side_by_side`); otherwise they are sb3-contrib's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import math

import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RNNStates

from .cores import KINDS, TAU_KINDS, Core, make_core, run_side_by_side

__all__ = ["RecurrentCorePolicy", "SUPPORTED_ACTION_SPACES", "build_optimizer", "process_sequences", "state_layers"]

SUPPORTED_ACTION_SPACES = (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Box)
_PLAIN = (bool, int, float, str, type(None))


def _check_plain(name: str, value: Any) -> None:
    """Only plain values (so the pickled policy_kwargs load anywhere without custom_objects)."""
    if isinstance(value, (list, tuple)):
        for v in value:
            _check_plain(name, v)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_plain(f"{name}[{k!r}]", v)
    elif not isinstance(value, _PLAIN):
        raise ValueError(f"core_options {name} must be a plain value (bool, int, float, str, list), "
                         f"got {type(value).__name__}")


def state_layers(core: Core) -> int:
    """How many [n_envs, H] rows of sb3-contrib's (h, c) buffers the core's flat state fills: 1 for the
    leaky RNN, GRU and LSTM; more for a zoo core whose state is larger than 2 H."""
    return max(1, math.ceil(core.state_size / (2 * core.hidden_size)))


def _split_state(core: Core, states: tuple[th.Tensor, th.Tensor]) -> Any:
    """sb3-contrib's (h, c), each [L, n, H], -> the core's state (its flat state is h's rows, then c's)."""
    h, c = states
    flat = th.cat((h.transpose(0, 1).flatten(1), c.transpose(0, 1).flatten(1)), dim=1)
    return core.unflatten_state(flat[:, : core.state_size])


def _join_state(core: Core, state: Any) -> tuple[th.Tensor, th.Tensor]:
    """The core's state -> sb3-contrib's (h, c) of [L, n, H], zero-padded (for an LSTM: exactly (h, c))."""
    flat = core.flatten_state(state)
    layers, hidden = state_layers(core), core.hidden_size
    flat = th.nn.functional.pad(flat, (0, 2 * layers * hidden - flat.shape[1]))
    h, c = flat.reshape(flat.shape[0], 2, layers, hidden).permute(1, 2, 0, 3)
    return h, c


def _mask(core: Core, state: Any, keep: th.Tensor) -> Any:
    """Zero the state where keep == 0 (keep is [B, 1]): the zero state is every core's reset state."""
    parts = [part * keep.reshape(-1, *[1] * (part.dim() - 1)) for part in core.state_parts(state)]
    return parts[0] if len(parts) == 1 else tuple(parts)


def build_optimizer(optimizer_class: type[th.optim.Optimizer], params: Any, lr: float,
                    optimizer_kwargs: dict[str, Any]) -> th.optim.Optimizer:
    """The policy's optimizer, as sb3 builds it, except that Adam and AdamW use torch's fused
    implementation (one kernel over all parameters: about 2.5x faster steps on CPU, the same update up
    to float rounding) unless ``optimizer_kwargs`` chooses ``fused`` or ``foreach`` itself."""
    params = list(params)
    if optimizer_class in (th.optim.Adam, th.optim.AdamW) and not {"fused", "foreach"} & set(optimizer_kwargs):
        try:
            return optimizer_class(params, lr=lr, fused=True, **optimizer_kwargs)
        except (RuntimeError, ValueError):  # a torch, device or dtype without the fused kernel
            pass
    return optimizer_class(params, lr=lr, **optimizer_kwargs)


def process_sequences(
    features: Sequence[th.Tensor],
    states: Sequence[tuple[th.Tensor, th.Tensor]],
    episode_starts: th.Tensor,
    cores: Sequence[Core],
    force_loop: bool = False,
) -> list[tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]]:
    """Run each of `cores` over its part of sb3-contrib's flat padded batch, like its ``_process_sequence``.

    features[k] [n_seq * T, F] (sequence-major), states[k] (h, c) of [1, n_seq, H], episode_starts
    [n_seq * T], shared by all cores. Returns per core the outputs [n_seq * T, H] and the final (h, c).
    Cores that agents.cores.run_side_by_side can group (the actor and critic LeakyGRU / LeakyLSTM)
    run in one kernel loop.
    """
    n_seq = states[0][0].shape[1]
    xs = [f.reshape((n_seq, -1, core.input_size)).swapaxes(0, 1) for f, core in zip(features, cores)]  # [T, n_seq, F]
    keep = (1.0 - episode_starts).reshape((n_seq, -1, 1)).swapaxes(0, 1)  # [T, n_seq, 1]
    state = [_split_state(core, s) for core, s in zip(cores, states)]
    steps = xs[0].shape[0]
    if force_loop or (steps > 1 and not bool(keep[1:].all())):
        outs: list[list[th.Tensor]] = [[] for _ in cores]
        for t in range(steps):
            masked = [_mask(core, s, keep[t]) for core, s in zip(cores, state)]
            results = run_side_by_side(cores, [x[t : t + 1] for x in xs], masked)
            state = [s for _, s in results]
            for out, (h, _) in zip(outs, results):
                out.append(h)
        hidden = [th.cat(out) for out in outs]
    else:  # resets only at t = 0: one fused call over the whole sequence
        results = run_side_by_side(cores, xs, [_mask(core, s, keep[0]) for core, s in zip(cores, state)])
        hidden, state = [h for h, _ in results], [s for _, s in results]
    return [(th.flatten(h.transpose(0, 1), start_dim=0, end_dim=1), _join_state(core, s))
            for h, s, core in zip(hidden, state, cores)]


class RecurrentCorePolicy(RecurrentActorCriticPolicy):
    """sb3-contrib's recurrent actor-critic policy with our tau cores as the recurrent layers.

    Extra keyword arguments (all via ``policy_kwargs``):

    - ``core``: a built-in kind of ``agents.cores.KINDS`` (default "lstm")
    - ``core_options``: dict of plain values passed to :func:`agents.make_core` (tau_init,
      train_tau, tau_param, activation, ...); ``h0`` is forced to "zero" (a different value is a
      ValueError), ``generator`` is not accepted (seed with RecurrentPPO's ``seed``)
    - ``lstm_hidden_size``: the core's hidden size (sb3-contrib's name; default 256)
    - ``shared_lstm`` / ``enable_critic_lstm``: as in sb3-contrib. Supported: separate actor and
      critic cores (enable_critic_lstm=True, the default), a shared core (shared_lstm=True,
      enable_critic_lstm=False; the critic gets the detached actor output), and no critic core
      (both False; the critic is a Linear on the features).
    - ``n_lstm_layers`` must be 1 and ``lstm_kwargs`` must be empty.

    Observation spaces: anything sb3's default features extractor flattens (Box, Discrete,
    MultiDiscrete, MultiBinary, Dict); action spaces: Discrete, MultiDiscrete, MultiBinary, Box.
    """

    #: Set True to disable the fused path (tests compare both paths).
    force_loop: bool = False

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Any,
        *args: Any,
        core: str = "lstm",
        core_options: dict[str, Any] | None = None,
        lstm_hidden_size: int = 256,
        n_lstm_layers: int = 1,
        shared_lstm: bool = False,
        enable_critic_lstm: bool = True,
        lstm_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(core, str) or core not in KINDS:
            raise ValueError(f"core must be one of {KINDS}, got {core!r}")
        if core_options is None:
            core_options = {}
        if not isinstance(core_options, dict):
            raise ValueError(f"core_options must be a dict, got {type(core_options).__name__}")
        _check_plain("core_options", core_options)
        if "generator" in core_options:
            raise ValueError("core_options may not hold 'generator': seed RecurrentPPO instead")
        if core in TAU_KINDS and core_options.get("h0", "zero") != "zero":
            raise ValueError("core_options h0 must be 'zero' for RL: sb3-contrib resets states to zeros "
                             f"at episode starts, got {core_options['h0']!r}")
        if n_lstm_layers != 1:
            raise ValueError(f"RecurrentCorePolicy supports n_lstm_layers=1 only, got {n_lstm_layers}")
        if lstm_kwargs:
            raise ValueError("lstm_kwargs is not used by RecurrentCorePolicy: pass core_options instead")
        if shared_lstm and enable_critic_lstm:
            raise ValueError("shared_lstm=True needs enable_critic_lstm=False "
                             "(choose between a shared, a separate or no critic core)")
        if not isinstance(action_space, SUPPORTED_ACTION_SPACES):
            raise ValueError("action_space must be Discrete, MultiDiscrete, MultiBinary or Box, "
                             f"got {type(action_space).__name__}")
        if not isinstance(observation_space, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete,
                                              spaces.MultiBinary, spaces.Dict)):
            raise ValueError("observation_space must be Box, Discrete, MultiDiscrete, MultiBinary or Dict, "
                             f"got {type(observation_space).__name__}")
        hidden = int(lstm_hidden_size)
        options = {**core_options, "h0": "zero"} if core in TAU_KINDS else dict(core_options)
        # Build the cores before the (costly) parent init so that bad options fail fast.
        try:
            make_core(core, 1, hidden, **options)
        except (TypeError, ValueError) as e:
            raise ValueError(f"core_options {core_options!r} do not fit core {core!r}: {e}") from e
        super().__init__(observation_space, action_space, lr_schedule, *args, lstm_hidden_size=hidden,
                         n_lstm_layers=1, shared_lstm=shared_lstm, enable_critic_lstm=enable_critic_lstm,
                         lstm_kwargs=None, **kwargs)
        self.core_kind = core
        self.core_options = dict(core_options)
        self.lstm_actor = self._make_core(core, hidden, options)
        if self.lstm_critic is not None:
            self.lstm_critic = self._make_core(core, hidden, options)
        # predict() builds a missing state from this shape: the core's rows, not nn.LSTM's one
        self.lstm_hidden_state_shape = (self.lstm_actor.num_layers, 1, hidden)
        # The parent built its optimizer over nn.LSTM parameters: rebuild it over ours.
        self.optimizer = build_optimizer(self.optimizer_class, self.parameters(), lr_schedule(1),
                                         self.optimizer_kwargs)

    def _make_core(self, kind: str, hidden: int, options: dict[str, Any]) -> Core:
        core = make_core(kind, self.features_dim, hidden, **options).to(self.device)
        core.num_layers = state_layers(core)  # RecurrentPPO sizes its state buffers from lstm.num_layers / hidden_size
        return core

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(core=self.core_kind, core_options=self.core_options,
                    lstm_hidden_size=self.lstm_output_dim, shared_lstm=self.shared_lstm,
                    enable_critic_lstm=self.enable_critic_lstm)
        return data

    def _process_sequence(  # type: ignore[override]  # a method here, a staticmethod upstream
        self,
        features: th.Tensor,
        lstm_states: tuple[th.Tensor, th.Tensor],
        episode_starts: th.Tensor,
        lstm: Core,
    ) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        return process_sequences([features], [lstm_states], episode_starts, [lstm], self.force_loop)[0]

    def _latents(self, obs: th.Tensor, lstm_states: RNNStates, episode_starts: th.Tensor
                 ) -> tuple[th.Tensor, th.Tensor, RNNStates]:
        """Actor and critic latents and the new states: sb3-contrib's forward up to the heads, with
        separate actor and critic cores run side by side."""
        features = self.extract_features(obs)
        pi_features, vf_features = (features, features) if self.share_features_extractor else features
        if self.lstm_critic is not None:
            (latent_pi, states_pi), (latent_vf, states_vf) = process_sequences(
                [pi_features, vf_features], [lstm_states.pi, lstm_states.vf], episode_starts,
                [self.lstm_actor, self.lstm_critic], self.force_loop)
        else:
            latent_pi, states_pi = self._process_sequence(pi_features, lstm_states.pi, episode_starts,
                                                          self.lstm_actor)
            if self.shared_lstm:  # the critic re-uses the actor's core output without backpropagating
                latent_vf, states_vf = latent_pi.detach(), (states_pi[0].detach(), states_pi[1].detach())
            else:  # the critic is feed-forward
                latent_vf, states_vf = self.critic(vf_features), states_pi
        latent_pi = self.mlp_extractor.forward_actor(latent_pi)
        latent_vf = self.mlp_extractor.forward_critic(latent_vf)
        return latent_pi, latent_vf, RNNStates(states_pi, states_vf)

    def forward(self, obs: th.Tensor, lstm_states: RNNStates, episode_starts: th.Tensor,
                deterministic: bool = False) -> tuple[th.Tensor, th.Tensor, th.Tensor, RNNStates]:
        """As sb3-contrib's forward (actions, values, log-probabilities, new states)."""
        latent_pi, latent_vf, states = self._latents(obs, lstm_states, episode_starts)
        values = self.value_net(latent_vf)
        distribution = self._get_action_dist_from_latent(latent_pi)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        return actions.reshape((-1, *self.action_space.shape)), values, log_prob, states

    def evaluate_actions(self, obs: th.Tensor, actions: th.Tensor, lstm_states: RNNStates,
                         episode_starts: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """As sb3-contrib's evaluate_actions (values, log-probabilities, entropy)."""
        latent_pi, latent_vf, _ = self._latents(obs, lstm_states, episode_starts)
        distribution = self._get_action_dist_from_latent(latent_pi)
        return self.value_net(latent_vf), distribution.log_prob(actions), distribution.entropy()
