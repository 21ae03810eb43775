TITLE ICaL (high-threshold Ca) of Pospischil et al. 2008 (Reuveni et al. 1993)

COMMENT
Test reference for brainfuse_jax.channels.PospischilCaL. Rates at 36 degC; q10 = 3.
ENDCOMMENT

UNITSOFF

NEURON {
    SUFFIX bf_cal_pos
    USEION ca READ eca WRITE ica
    RANGE gbar
}

PARAMETER {
    gbar = 1e-4 (S/cm2)
}

ASSIGNED {
    v (mV)
    eca (mV)
    ica (mA/cm2)
    celsius (degC)
    qinf
    rinf
    qtau (ms)
    rtau (ms)
}

STATE { q r }

BREAKPOINT {
    SOLVE states METHOD cnexp
    ica = gbar * q * q * r * (v - eca)
}

INITIAL {
    rates(v)
    q = qinf
    r = rinf
}

DERIVATIVE states {
    rates(v)
    q' = (qinf - q) / qtau
    r' = (rinf - r) / rtau
}

PROCEDURE rates(v) { LOCAL a, b, tadj
    tadj = 3 ^ ((celsius - 36) / 10)
    a = 0.055 * vtrap(-27 - v, 3.8)
    b = 0.94 * exp((-75 - v) / 17)
    qinf = a / (a + b)
    qtau = 1 / ((a + b) * tadj)
    a = 0.000457 * exp((-13 - v) / 50)
    b = 0.0065 / (exp((-15 - v) / 28) + 1)
    rinf = a / (a + b)
    rtau = 1 / ((a + b) * tadj)
}

FUNCTION vtrap(x, y) {
    if (fabs(x / y) < 1e-6) {
        vtrap = y * (1 - x / y / 2)
    } else {
        vtrap = x / (exp(x / y) - 1)
    }
}

UNITSON
