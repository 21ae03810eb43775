TITLE Submembrane Ca pool, first-order decay (Destexhe's cad.mod, no pump), derivimplicit

COMMENT
Test reference for brainfuse_jax.channels.CalciumPool, as users write it:
cai' = max(0, -10000 ica / (2 F depth)) + (cainf - cai) / taur, solved by derivimplicit
(backward Euler by a Newton iteration with a numerical Jacobian: exact to a relative ~1e-8 here).
F is NEURON's Faraday constant (2019 SI). bf_cad.mod states the backward-Euler update explicitly.
ENDCOMMENT

UNITSOFF

UNITS {
    FARADAY = (faraday) (coulomb)
}

NEURON {
    SUFFIX bf_cad_di
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
}

STATE { cai (mM) }

INITIAL {
    cai = cainf
}

BREAKPOINT {
    SOLVE state METHOD derivimplicit
}

DERIVATIVE state {
    drive = -10000 * ica / (2 * FARADAY * depth)
    if (drive <= 0) {
        drive = 0
    }
    cai' = drive + (cainf - cai) / taur
}

UNITSON
