TITLE INa of Pospischil et al. 2008 (Traub & Miles 1991 with threshold shift V_T)

COMMENT
Test reference for brainfuse_jax.channels.PospischilNa: the same equations, no TABLE.
Rates at 36 degC, q10 = 3 (Destexhe's HH2.mod).
ENDCOMMENT

UNITSOFF

NEURON {
    SUFFIX bf_na_pos
    USEION na READ ena WRITE ina
    RANGE gbar, vt
}

PARAMETER {
    gbar = 0.05 (S/cm2)
    vt = -56.2 (mV)
}

ASSIGNED {
    v (mV)
    ena (mV)
    ina (mA/cm2)
    celsius (degC)
    minf
    hinf
    mtau (ms)
    htau (ms)
}

STATE { m h }

BREAKPOINT {
    SOLVE states METHOD cnexp
    ina = gbar * m * m * m * h * (v - ena)
}

INITIAL {
    rates(v)
    m = minf
    h = hinf
}

DERIVATIVE states {
    rates(v)
    m' = (minf - m) / mtau
    h' = (hinf - h) / htau
}

PROCEDURE rates(v) { LOCAL a, b, v2, tadj
    tadj = 3 ^ ((celsius - 36) / 10)
    v2 = v - vt
    a = 0.32 * vtrap(13 - v2, 4)
    b = 0.28 * vtrap(v2 - 40, 5)
    minf = a / (a + b)
    mtau = 1 / ((a + b) * tadj)
    a = 0.128 * exp((17 - v2) / 18)
    b = 4 / (1 + exp((40 - v2) / 5))
    hinf = a / (a + b)
    htau = 1 / ((a + b) * tadj)
}

FUNCTION vtrap(x, y) {
    if (fabs(x / y) < 1e-6) {
        vtrap = y * (1 - x / y / 2)
    } else {
        vtrap = x / (exp(x / y) - 1)
    }
}

UNITSON
