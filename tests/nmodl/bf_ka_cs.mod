TITLE A-type K of Connor, Walter & McKown 1977 (Connor & Stevens 1971), Dayan & Abbott's form

COMMENT
Test reference for brainfuse_jax.channels.ConnorStevensKA. Rates at 18 degC, q10 = 3.
ENDCOMMENT

UNITSOFF

NEURON {
    SUFFIX bf_ka_cs
    USEION k READ ek WRITE ik
    RANGE gbar
}

PARAMETER {
    gbar = 0.0477 (S/cm2)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    celsius (degC)
    ainf
    binf
    atau (ms)
    btau (ms)
}

STATE { a b }

BREAKPOINT {
    SOLVE states METHOD cnexp
    ik = gbar * a * a * a * b * (v - ek)
}

INITIAL {
    rates(v)
    a = ainf
    b = binf
}

DERIVATIVE states {
    rates(v)
    a' = (ainf - a) / atau
    b' = (binf - b) / btau
}

PROCEDURE rates(v) { LOCAL tadj
    tadj = 3 ^ ((celsius - 18) / 10)
    ainf = (0.0761 * exp((v + 94.22) / 31.84) / (1 + exp((v + 1.17) / 28.93))) ^ (1 / 3)
    atau = (0.3632 + 1.158 / (1 + exp((v + 55.96) / 20.12))) / tadj
    binf = (1 / (1 + exp((v + 53.3) / 14.54))) ^ 4
    btau = (1.24 + 2.678 / (1 + exp((v + 50) / 16.027))) / tadj
}

UNITSON
