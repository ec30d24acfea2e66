"""Torch dialect -> linalg-on-tensors (rules by op family) and the pass pipeline to LLVM."""
from .registry import LOWERINGS, LoweringContext, lowers, registered_overloads
from .driver import lower_to_linalg

# Importing a family module registers its rules.
from . import elementwise, linear_algebra  # noqa: F401,E402
from . import convolution, pooling  # noqa: F401,E402
from . import shape, indexing, creation  # noqa: F401,E402
from . import reduction, normalization  # noqa: F401,E402
from . import scan, sorting, scatter, misc  # noqa: F401,E402
from . import backward, random  # noqa: F401,E402
from . import scalar  # noqa: F401,E402
from . import control_flow  # noqa: F401,E402
from . import special  # noqa: F401,E402
from . import complex  # noqa: F401,E402
from . import data_dependent  # noqa: F401,E402
from . import extern  # noqa: F401,E402

__all__ = ["LOWERINGS", "LoweringContext", "lowers", "registered_overloads", "lower_to_linalg"]
