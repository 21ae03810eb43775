"""Bad input to the channel library gives a ValueError/TypeError naming the argument."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import brainfuse_jax as bf
from brainfuse_jax import channels as C


def test_unknown_channel_name():
    with pytest.raises(ValueError, match=r"unknown channel name 'PospischilNaa' \(did you mean 'PospischilNa'"):
        C.get("PospischilNaa")
    with pytest.raises(ValueError, match="unknown channel name 'Kv1'.*library channels"):
        C.get("Kv1")
    assert C.get("DestexheSK") is C.DestexheSK


def test_unknown_cell_class():
    with pytest.raises(ValueError, match=r"cell_class must be one of \('RS', 'FS', 'IB', 'LTS'\), got 'XS'"):
        bf.Pospischil("XS")


def test_unknown_preset_parameter():
    with pytest.raises(ValueError, match=r"unknown Pospischil parameter\(s\) \['g_naa'\]"):
        bf.PospischilRS(g_naa=50.0)
    with pytest.raises(ValueError, match="v_x shifts the T current"):
        bf.PospischilRS(v_x=-7.0)


@pytest.mark.parametrize("name", sorted(C.LIBRARY))
def test_negative_conductance_every_library_channel(name):
    with pytest.raises(ValueError, match=f"{name}.gbar must be >= 0 mS/cm2"):
        C.get(name)(gbar=-1.0)


@pytest.mark.parametrize("kwarg, name", [("g_na", "PospischilNa.gbar"), ("g_m", "PospischilM.gbar"),
                                         ("g_leak", "Leak.gbar")])
def test_negative_conductance_in_preset(kwarg, name):
    with pytest.raises(ValueError, match=f"{name} must be >= 0 mS/cm2"):
        bf.PospischilRS(**{kwarg: -0.1})


@pytest.mark.parametrize("kwarg, unit", [("tau", "ms"), ("depth", "um"), ("cai_rest", "mM"), ("cao", "mM")])
@pytest.mark.parametrize("value", [0.0, -1.0])
def test_invalid_calcium_pool(kwarg, unit, value):
    with pytest.raises(ValueError, match=f"CalciumPool.{kwarg} must be > 0 {unit}"):
        C.CalciumPool(**{kwarg: value})


def test_invalid_calcium_pool_per_neuron_and_under_jit():
    with pytest.raises(ValueError, match=r"CalciumPool.tau must be > 0 ms; got -5.0 \(1 of 2"):
        C.CalciumPool(tau=jnp.array([5.0, -5.0]))
    build = eqx.filter_jit(lambda tau: C.CalciumPool(tau=tau).tau)
    with pytest.raises(eqx.EquinoxRuntimeError, match="CalciumPool.tau must be > 0"):
        jax.block_until_ready(build(jnp.asarray(-1.0)))


@pytest.mark.parametrize("kwarg, name", [("tau_max", "PospischilM.tau_max")])
def test_nonpositive_time_constant(kwarg, name):
    with pytest.raises(ValueError, match=f"{name} must be > 0 ms"):
        C.PospischilM(**{kwarg: 0.0})


def test_ca_dependent_channel_needs_a_pool():
    with pytest.raises(ValueError, match=r"channels\['sk'\] \(DestexheSK\) depends on intracellular Ca"):
        bf.PointNeuron({"sk": C.DestexheSK(), "leak": C.Leak()})
    with pytest.raises(ValueError, match="depends on intracellular Ca"):
        C.MoczydlowskiLatorreBK().kinetics(jnp.zeros(3), 36.0)


def test_calcium_must_be_a_pool():
    with pytest.raises(TypeError, match="calcium must be a CalciumPool"):
        bf.PointNeuron({"leak": C.Leak()}, calcium=5.0)


def test_reserved_channel_names():
    for name in ("v", "cai"):
        with pytest.raises(ValueError, match="channel names must be strings other than 'v' and 'cai'"):
            bf.PointNeuron({name: C.Leak()})


def test_rate_table_cannot_hold_cai():
    class TabulatedSK(C.DestexheSK):
        table = (-100.0, 100.0, 200)

    with pytest.raises(ValueError, match="rate table over V cannot hold"):
        bf.PointNeuron({"sk": TabulatedSK(), "leak": C.Leak()}, calcium=C.CalciumPool())
