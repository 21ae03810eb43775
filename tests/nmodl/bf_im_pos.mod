TITLE IM (slow non-inactivating K) of Pospischil et al. 2008 (Yamada, Koch & Adams 1989)

COMMENT
Test reference for brainfuse_jax.channels.PospischilM. q10 = 2.3 relative to 36 degC
(Destexhe's IM_cortex.mod).
ENDCOMMENT

UNITSOFF

NEURON {
    SUFFIX bf_im_pos
    USEION k READ ek WRITE ik
    RANGE gbar, taumax
}

PARAMETER {
    gbar = 7.5e-5 (S/cm2)
    taumax = 608 (ms)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    celsius (degC)
    pinf
    ptau (ms)
}

STATE { p }

BREAKPOINT {
    SOLVE states METHOD cnexp
    ik = gbar * p * (v - ek)
}

INITIAL {
    rates(v)
    p = pinf
}

DERIVATIVE states {
    rates(v)
    p' = (pinf - p) / ptau
}

PROCEDURE rates(v) { LOCAL tadj
    tadj = 2.3 ^ ((celsius - 36) / 10)
    pinf = 1 / (1 + exp(-(v + 35) / 10))
    ptau = taumax / (3.3 * exp((v + 35) / 20) + exp(-(v + 35) / 20)) / tadj
}

UNITSON
