TITLE Ih (hyperpolarisation-activated cation current), Huguenard & McCormick 1992

COMMENT
Test reference for brainfuse_jax.channels.HuguenardMcCormickIh. q10 = 3 relative to 36 degC.
ENDCOMMENT

UNITSOFF

NEURON {
    SUFFIX bf_ih
    NONSPECIFIC_CURRENT i
    RANGE gbar, eh
}

PARAMETER {
    gbar = 2e-5 (S/cm2)
    eh = -43 (mV)
}

ASSIGNED {
    v (mV)
    i (mA/cm2)
    celsius (degC)
    minf
    mtau (ms)
}

STATE { m }

BREAKPOINT {
    SOLVE states METHOD cnexp
    i = gbar * m * (v - eh)
}

INITIAL {
    rates(v)
    m = minf
}

DERIVATIVE states {
    rates(v)
    m' = (minf - m) / mtau
}

PROCEDURE rates(v) { LOCAL tadj
    tadj = 3 ^ ((celsius - 36) / 10)
    minf = 1 / (1 + exp((v + 75) / 5.5))
    mtau = 1 / (exp(-14.59 - 0.086 * v) + exp(-1.87 + 0.0701 * v)) / tadj
}

UNITSON
