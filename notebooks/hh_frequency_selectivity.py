# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Frequency selectivity of the Hodgkin-Huxley neuron, and an HH "filter bank" cipher
#
# The classic Hodgkin-Huxley (1952) neuron is a *resonator*: driven by a sinusoidal current
# $I(t) = A \sin(2\pi f t)$ it fires most easily at a preferred frequency (tens of Hz at 6.3 degC)
# and needs much larger amplitudes for slow or fast inputs. This notebook
#
# 1. maps the firing rate over the (frequency, amplitude) plane with one `bf.rate_map` call
#    (a `vmap`ped, batched parameter sweep), and reads off the threshold tuning curve;
# 2. builds a toy cipher on top of it: a bank of four HH neurons with different conductances
#    acts as a filter bank; a secret look-up table maps each byte to an (f, A) pair; the
#    ciphertext of a byte is the bank's spike pattern, with cipher-block chaining (CBC).
#    Decryption re-simulates the bank from the key; a slightly perturbed key fails.
#
# The cipher is a demonstration of deterministic, batched simulation, **not cryptography**.
# Units: ms, mV, uA/cm2, Hz. Runtime: well under a minute on one CPU core.
# Source of truth: `notebooks/hh_frequency_selectivity.py`; the `.ipynb` is built from it by
# `python notebooks/build_notebooks.py`.

# %%
import time

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import brainfuse_jax as bf

T0 = time.perf_counter()
DT = 0.025  # ms
hh = bf.HH()  # HH 1952 in NEURON's convention: rest -65 mV, 6.3 degC


def sine_stimulus(duration):
    """Stimulus builder for `sweep`: A sin(2 pi f t), A in uA/cm2, f in Hz, t in ms."""
    t = jnp.arange(int(round(duration / DT)), dtype=jnp.float32) * DT

    def stimulus(p):
        return p["amplitude"] * jnp.sin(2 * jnp.pi * p["frequency"] * 1e-3 * t)

    return stimulus


# %% [markdown]
# ## 1. The frequency-selectivity map
#
# 60 frequencies (log-spaced, 5-500 Hz) x 40 amplitudes (0-30 uA/cm2) = 2,400 simulations of
# 500 ms; the first 100 ms (onset transient) are simulated but not counted.

# %%
freqs = np.geomspace(5.0, 500.0, 60)  # Hz
amps = np.linspace(0.0, 30.0, 41)[1:]  # uA/cm2
t = time.perf_counter()
sel = bf.rate_map(hh, "stimulus.frequency", freqs, "stimulus.amplitude", amps,
                  stimulus=sine_stimulus(500.0), dt=DT, duration=500.0, transient=100.0, progress=False)
print(f"{sel.rates.size} simulations of 500 ms in {time.perf_counter() - t:.1f} s")

# threshold tuning curve: the smallest amplitude that makes the neuron fire, per frequency
fires = sel.rates > 0
threshold = np.where(fires.any(axis=1), amps[np.argmax(fires, axis=1)], np.nan)
best = freqs[np.nanargmin(threshold)]
print(f"best frequency ~ {best:.0f} Hz (threshold {np.nanmin(threshold):.2f} uA/cm2); "
      f"at 5 Hz the threshold is {threshold[0]:.2f} uA/cm2, at 500 Hz "
      + (f"{threshold[-1]:.2f}" if np.isfinite(threshold[-1]) else "> 30") + " uA/cm2")
assert 20.0 < best < 150.0 and threshold[0] > 2 * np.nanmin(threshold)

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.5))
bf.plot_rate_map(sel, ax=ax, labels=("input frequency f (Hz)", "input amplitude A (uA/cm2)"),
                 title="HH firing rate under A sin(2 pi f t)")
ax.plot(freqs, threshold, "w--", lw=1, label="threshold amplitude")
ax.set_xscale("log")
ax.legend(loc="upper left", fontsize=8)
fig.tight_layout()

# %% [markdown]
# The tongue-shaped firing region bottoms out at the resonance frequency: a band-pass filter
# whose threshold and locking ratios (1:1, 1:2, ... bands of equal rate) depend on the membrane
# conductances. Four HH neurons with different (g_Na, g_K) make four different filters: a
# filter bank.
#
# ## 2. The HH filter-bank cipher (a toy)
#
# - **Bank**: four HH neurons, (g_Na, g_K) = (120, 36), (100, 30), (140, 40), (120, 45) mS/cm2.
# - **Response** of the bank to a 200-ms sinusoid (f, A): per neuron, the spike count, the
#   steps of its first and last spike and the sum of its spike steps (a 4 x 4 integer pattern).
# - **Key**: a look-up table (LUT) byte -> (f, A): 256 points drawn with a secret seed from a
#   32 x 32 candidate grid, among the candidates whose bank responses are all different.
# - **Encryption** (CBC): `x_i = p_i XOR chain(c_{i-1})`, `c_i = bank response to LUT[x_i]`,
#   with `chain(c_0) = IV` and `chain` a fixed hash of a pattern to a byte.
# - **Decryption**: simulate the bank on every LUT entry (one sweep of 256 x 4 points), invert the
#   table, then `p_i = LUT^-1(c_i) XOR chain(c_{i-1})`. A block that is not the pattern of any
#   byte under the receiver's key cannot be decrypted (shown as `?`).

# %%
BANK = {("na.gbar", "k.gbar"): ([120.0, 100.0, 140.0, 120.0], [36.0, 30.0, 40.0, 45.0])}
CIPHER_MS = 200.0
PRIMES = np.array([2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53])


def spike_pattern(run):
    """Measure for `sweep`: (count, first spike step, last spike step, sum of spike steps)."""
    s = run.recorded  # per-step spikes, exactly 0/1
    idx = jnp.arange(s.shape[0])
    first = jnp.min(jnp.where(s > 0, idx, s.shape[0]))
    last = jnp.max(jnp.where(s > 0, idx, -1))
    return jnp.stack([jnp.sum(s).astype(jnp.int32), first, last, jnp.sum(jnp.where(s > 0, idx, 0))])


CIPHER_STIMULUS = sine_stimulus(CIPHER_MS)  # one function object: sweeps reuse its compiled program


def bank_response(f, a):
    """Bank patterns for the (f, A) pairs zipped from `f`, `a`: int array (len(f), 4, 4)."""
    grid = {("stimulus.frequency", "stimulus.amplitude"): (f, a), **BANK}
    return bf.sweep(hh, grid, CIPHER_STIMULUS, spike_pattern, dt=DT, record="output",
                    progress=False).astype(np.int64)


t = time.perf_counter()
cand_f, cand_a = (g.ravel() for g in np.meshgrid(np.geomspace(20.0, 400.0, 32), np.linspace(4.0, 30.0, 32),
                                                 indexing="ij"))
cand = bank_response(cand_f, cand_a)
_, first_idx, mult = np.unique(cand.reshape(len(cand), -1), axis=0, return_index=True, return_counts=True)
usable = np.sort(first_idx[mult == 1])  # candidates whose pattern no other candidate shares
print(f"{len(cand)} candidate keys simulated on the 4-neuron bank in {time.perf_counter() - t:.1f} s; "
      f"{len(usable)} have a unique response")


def make_key(seed):
    """The secret LUT: byte value -> (f in Hz, A in uA/cm2), shape (256, 2)."""
    pick = np.random.default_rng(seed).choice(usable, 256, replace=False)
    return np.stack([cand_f[pick], cand_a[pick]], axis=1)


def chain(block):
    return int(block.ravel() @ PRIMES) % 256


def codebook(key):
    return bank_response(key[:, 0], key[:, 1])  # (256, 4, 4): the bank's pattern for each byte


def encrypt(message: bytes, key, iv: int):
    book, prev, out = codebook(key), iv, []
    for p in message:
        block = book[p ^ prev]
        out.append(block)
        prev = chain(block)
    return np.stack(out)


def decrypt(blocks, key, iv: int) -> bytes:
    book, prev, out = codebook(key), iv, []
    index = {b.tobytes(): x for x, b in enumerate(book)}
    for block in blocks:
        x = index.get(block.tobytes())
        out.append(ord("?") if x is None else x ^ prev)  # "?": no byte has this pattern
        prev = chain(block)
    return bytes(out)


# %%
key, iv = make_key(seed=1952), 0x5A
message = b"AAAA - Hodgkin & Huxley (1952): the squid giant axon resonates."
cipher = encrypt(message, key, iv)
print("first four plaintext bytes are all 'A'; their ciphertext blocks (spike counts of the bank):")
for block in cipher[:4]:
    print("  counts", block[:, 0], "first-spike steps", block[:, 1])
assert len({b.tobytes() for b in cipher[:4]}) == 4  # CBC: equal bytes, different blocks

plain = decrypt(cipher, key, iv)
print("decrypted with the key:", plain.decode())
assert plain == message

# the ciphertext is what the bank really emits when played the message's stimuli
x_played = np.frombuffer(message, np.uint8) ^ np.array([iv] + [chain(b) for b in cipher[:-1]], np.uint8)
played = bank_response(key[x_played, 0], key[x_played, 1])
print("re-simulating the bank on the played stimuli gives the ciphertext:", np.array_equal(played, cipher))

# %% [markdown]
# ### A perturbed key fails
#
# The receiver's key differs from the sender's by 0.5% in every frequency (or in every amplitude),
# or was drawn with another seed. Most blocks are then not patterns of any byte (`?`), and those
# that are decrypt to wrong bytes.

# %%
def correct_fraction(decoded):
    return np.mean(np.frombuffer(decoded, np.uint8) == np.frombuffer(message, np.uint8))


attempts = {
    "right key": key,
    "frequencies x 1.005": key * np.array([1.005, 1.0]),
    "amplitudes x 1.005": key * np.array([1.0, 1.005]),
    "another seed": make_key(seed=1953),
}
for name, k in attempts.items():
    decoded = decrypt(cipher, k, iv)
    frac = correct_fraction(decoded)
    print(f"{name:22s} {100 * frac:5.1f}% of bytes right: {decoded.decode('ascii', 'replace')[:48]!r}")
    if name == "right key":
        assert frac == 1.0
    else:
        assert frac < 0.5, name

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.5))
bf.plot_rate_map(sel, ax=ax, labels=("input frequency f (Hz)", "input amplitude A (uA/cm2)"),
                 title="the key: 256 (f, A) points of the LUT on the HH map", alpha=0.8)
ax.scatter(key[:, 0], key[:, 1], s=8, c="w", edgecolors="k", linewidths=0.4)
ax.set_xscale("log")
fig.tight_layout()
print(f"notebook ran in {time.perf_counter() - T0:.0f} s")
