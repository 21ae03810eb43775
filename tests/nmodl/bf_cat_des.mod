TITLE IT (low-threshold Ca) of thalamocortical cells, Destexhe et al. 1996/1998

COMMENT
Test reference for brainfuse_jax.channels.DestexheCaT (Huguenard & McCormick 1992 kinetics as in
Destexhe's IT.mod): q10 = 5 (m) and 3 (h) relative to 24 degC, 2 mV screening-charge shift.
ENDCOMMENT

UNITSOFF

NEURON {
    SUFFIX bf_cat_des
    USEION ca READ eca WRITE ica
    RANGE gbar, shift
}

PARAMETER {
    gbar = 0.002 (S/cm2)
    shift = 2 (mV)
}

ASSIGNED {
    v (mV)
    eca (mV)
    ica (mA/cm2)
    celsius (degC)
    minf
    hinf
    mtau (ms)
    htau (ms)
}

STATE { m h }

BREAKPOINT {
    SOLVE states METHOD cnexp
    ica = gbar * m * m * h * (v - eca)
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

PROCEDURE rates(v) { LOCAL phim, phih, vs
    phim = 5 ^ ((celsius - 24) / 10)
    phih = 3 ^ ((celsius - 24) / 10)
    vs = v + shift
    minf = 1 / (1 + exp(-(vs + 57) / 6.2))
    hinf = 1 / (1 + exp((vs + 81) / 4))
    mtau = (0.612 + 1 / (exp(-(vs + 132) / 16.7) + exp((vs + 16.8) / 18.2))) / phim
    if (vs < -80) {
        htau = exp((vs + 467) / 66.6) / phih
    } else {
        htau = (28 + exp(-(vs + 22) / 10.5)) / phih
    }
}

UNITSON
