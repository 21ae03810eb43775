"""Exact one-step kinetics shared by the cell synapses (`ExpSyn`, `AlphaSyn`) and the network
synapses (`CurrExp`, `CurrAlpha`, `CondExp`)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def exp_decay(g, dt, tau):
    """`g' = -g / tau` over `dt` ms: `g exp(-dt / tau)`."""
    return g * jnp.exp(-dt / tau)


def alpha_decay(a, g, dt, tau):
    """`a' = -a / tau`, `g' = (e a - g) / tau` over `dt` ms, exactly: an event of weight `w` added to
    `a` at t = 0 gives `g(t) = w (t / tau) exp(1 - t / tau)`, peak `w` at `t = tau`.
    Returns `(a, g)`."""
    h = jnp.exp(-dt / tau)
    return h * a, h * (g + np.e * a * dt / tau)
