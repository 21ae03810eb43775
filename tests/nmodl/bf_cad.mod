TITLE Submembrane Ca pool, first-order decay (Destexhe's cad.mod, no pump), explicit backward Euler

COMMENT
Test reference for brainfuse_jax.channels.CalciumPool:
cai' = max(0, -10000 ica / (2 F depth)) + (cainf - cai) / taur
advanced by backward Euler with ica held over the step, written out in closed form (the equation
is linear in cai). This is the update that derivimplicit approximates by a Newton iteration
(bf_cad_di.mod); written explicitly, NEURON computes it to rounding error.
ENDCOMMENT

UNITSOFF

UNITS {
    FARADAY = (faraday) (coulomb)
}

NEURON {
    SUFFIX bf_cad
    USEION ca READ ica WRITE cai
    RANGE depth, taur, cainf
}

PARAMETER {
    depth = 0.1 (um)
    taur = 5 (ms)
    cainf = 2.4e-4 (mM)
}

ASSIGNED {
    ica (mA/cm2)
    drive (mM/ms)
    dt (ms)
}

STATE { cai (mM) }

INITIAL {
    cai = cainf
}

BREAKPOINT {
    SOLVE state
}

PROCEDURE state() {
    drive = -10000 * ica / (2 * FARADAY * depth)
    if (drive <= 0) {
        drive = 0
    }
    cai = (cai + dt * (drive + cainf / taur)) / (1 + dt / taur)
}

UNITSON
