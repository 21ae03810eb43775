TITLE SK-type (slow AHP) Ca-activated K, Destexhe et al. 1994 (iahp.mod)

COMMENT
Test reference for brainfuse_jax.channels.DestexheSK: closed + 2 Ca <-> open, m^2,
q10 = 3 relative to 22 degC. The minimum time constant is applied at 22 degC (before the
temperature factor), as in brainfuse_jax.
ENDCOMMENT

UNITSOFF

NEURON {
    SUFFIX bf_kca_sk
    USEION k READ ek WRITE ik
    USEION ca READ cai
    RANGE gbar, beta, cac, taumin
}

PARAMETER {
    gbar = 0.01 (S/cm2)
    beta = 0.03 (/ms)
    cac = 0.025 (mM)
    taumin = 0.1 (ms)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    cai (mM)
    celsius (degC)
    minf
    mtau (ms)
}

STATE { m }

BREAKPOINT {
    SOLVE states METHOD cnexp
    ik = gbar * m * m * (v - ek)
}

INITIAL {
    rates(cai)
    m = minf
}

DERIVATIVE states {
    rates(cai)
    m' = (minf - m) / mtau
}

PROCEDURE rates(ca) { LOCAL car, tadj
    tadj = 3 ^ ((celsius - 22) / 10)
    car = (ca / cac) ^ 2
    minf = car / (1 + car)
    mtau = 1 / (beta * (1 + car))
    if (mtau < taumin) {
        mtau = taumin
    }
    mtau = mtau / tadj
}

UNITSON
