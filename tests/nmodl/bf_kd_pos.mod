TITLE IKd of Pospischil et al. 2008 (Traub & Miles 1991 with threshold shift V_T)

COMMENT
Test reference for brainfuse_jax.channels.PospischilKd: the same equations, no TABLE.
Rates at 36 degC, q10 = 3 (Destexhe's HH2.mod).
ENDCOMMENT

UNITSOFF

NEURON {
    SUFFIX bf_kd_pos
    USEION k READ ek WRITE ik
    RANGE gbar, vt
}

PARAMETER {
    gbar = 0.005 (S/cm2)
    vt = -56.2 (mV)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    celsius (degC)
    ninf
    ntau (ms)
}

STATE { n }

BREAKPOINT {
    SOLVE states METHOD cnexp
    ik = gbar * n * n * n * n * (v - ek)
}

INITIAL {
    rates(v)
    n = ninf
}

DERIVATIVE states {
    rates(v)
    n' = (ninf - n) / ntau
}

PROCEDURE rates(v) { LOCAL a, b, v2, tadj
    tadj = 3 ^ ((celsius - 36) / 10)
    v2 = v - vt
    a = 0.032 * vtrap(15 - v2, 5)
    b = 0.5 * exp((10 - v2) / 40)
    ninf = a / (a + b)
    ntau = 1 / ((a + b) * tadj)
}

FUNCTION vtrap(x, y) {
    if (fabs(x / y) < 1e-6) {
        vtrap = y * (1 - x / y / 2)
    } else {
        vtrap = x / (exp(x / y) - 1)
    }
}

UNITSON
