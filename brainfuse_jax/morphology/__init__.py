"""Morphologies: SWC reading and validation, sections, compartments (NEURON's d_lambda rule).

`read_swc` loads a reconstruction into a `Morphology` with the sections NEURON's Import3d makes;
`Morphology.from_sections` builds one by hand; `Morphology.compartmentalize` splits it into the
`CompartmentTree` the cable solver works on. See docs/morphology.md.
"""

from ._morphology import Morphology as Morphology
from ._morphology import Section as Section
from ._morphology import read_swc as read_swc
from ._swc import SWCPoints as SWCPoints
from ._swc import SWCWarning as SWCWarning
from ._swc import parse_swc as parse_swc
from ._tree import CompartmentTree as CompartmentTree
from ._cable import HinesStructure as HinesStructure
from ._cable import hines_solve as hines_solve
from ._cable import tree_laplacian as tree_laplacian
from ._cell import Cell as Cell
from ..synapses import AlphaSyn as AlphaSyn
from ..synapses import Exp2Syn as Exp2Syn
from ..synapses import ExpSyn as ExpSyn
from ..synapses import IClamp as IClamp
from ..synapses import PointProcess as PointProcess
from ..synapses import Synapse as Synapse
