"""Input encoders (`brainfuse_jax.nn.encode`): analogue `(B, ...)` -> spikes `(B, T, ...)`.
See docs/learning.md ("Encoders")."""

from ._encode import delta as delta
from ._encode import delta_reconstruct as delta_reconstruct
from ._encode import direct as direct
from ._encode import latency as latency
from ._encode import latency_times as latency_times
from ._encode import population as population
from ._encode import population_centres as population_centres
from ._encode import PopulationEncoder as PopulationEncoder
from ._encode import rate as rate
from ._encode import receptive_fields as receptive_fields
