TITLE ICaT (low-threshold Ca) of Pospischil et al. 2008 (Destexhe's IT, instantaneous activation)

COMMENT
Test reference for brainfuse_jax.channels.PospischilCaT. Activation s is at steady state and, as
in the authors' IT mod file, refreshed in the state update (so the current of step n uses s_inf
of V_n and dI/dV treats s as fixed). Inactivation u: q10 = 3 relative to 24 degC.
ENDCOMMENT

UNITSOFF

NEURON {
    SUFFIX bf_cat_pos
    USEION ca READ eca WRITE ica
    RANGE gbar, vx
}

PARAMETER {
    gbar = 4e-4 (S/cm2)
    vx = 2 (mV)
}

ASSIGNED {
    v (mV)
    eca (mV)
    ica (mA/cm2)
    celsius (degC)
    s
    uinf
    utau (ms)
}

STATE { u }

BREAKPOINT {
    SOLVE states METHOD cnexp
    ica = gbar * s * s * u * (v - eca)
}

INITIAL {
    rates(v)
    u = uinf
}

DERIVATIVE states {
    rates(v)
    u' = (uinf - u) / utau
}

PROCEDURE rates(v) { LOCAL phi
    phi = 3 ^ ((celsius - 24) / 10)
    s = 1 / (1 + exp(-(v + vx + 57) / 6.2))
    uinf = 1 / (1 + exp((v + vx + 81) / 4))
    utau = (30.8 + (211.4 + exp((v + vx + 113.2) / 5)) / (1 + exp((v + vx + 84) / 3.2))) / phi
}

UNITSON
