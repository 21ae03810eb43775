TITLE BK-type Ca- and voltage-activated K, Moczydlowski & Latorre 1983 (NEURON's cagk.mod)

COMMENT
Test reference for brainfuse_jax.channels.MoczydlowskiLatorreBK. Temperature enters through
the Boltzmann factor 2 d F V / (R T) only (no q10), as in cagk.mod. F (kC/mol) and R are NEURON's (2019 SI), as in cagk.mod.
ENDCOMMENT

UNITSOFF

UNITS {
    FARADAY = (faraday) (kilocoulombs)
    R = (k-mole) (joule/degC)
}

NEURON {
    SUFFIX bf_kca_bk
    USEION k READ ek WRITE ik
    USEION ca READ cai
    RANGE gbar, d1, d2, k1, k2, abar, bbar
}

PARAMETER {
    gbar = 0.01 (S/cm2)
    d1 = 0.84
    d2 = 1.0
    k1 = 0.18 (mM)
    k2 = 0.011 (mM)
    bbar = 0.28 (/ms)
    abar = 0.48 (/ms)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    cai (mM)
    celsius (degC)
    oinf
    otau (ms)
}

STATE { o }

BREAKPOINT {
    SOLVE states METHOD cnexp
    ik = gbar * o * (v - ek)
}

INITIAL {
    rates(v, cai)
    o = oinf
}

DERIVATIVE states {
    rates(v, cai)
    o' = (oinf - o) / otau
}

PROCEDURE rates(v, ca) { LOCAL a, b, z
    z = 2 * FARADAY * v / (R * (273.15 + celsius))
    a = abar / (1 + k1 * exp(-d1 * z) / ca)
    b = bbar / (1 + ca / (k2 * exp(-d2 * z)))
    otau = 1 / (a + b)
    oinf = a * otau
}

UNITSON
