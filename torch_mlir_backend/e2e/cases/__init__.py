"""Conformance cases, one module per op family plus whole models. Importing registers them."""
from . import elementwise, linear_algebra, reduction, shape, convolution, pooling, normalization, models  # noqa: F401
from . import elementwise_dtypes, families, models_vision, models_text  # noqa: F401
from . import selection  # noqa: F401
from . import special  # noqa: F401
from . import indexing  # noqa: F401
from . import complex_ops  # noqa: F401
from . import data_dependent  # noqa: F401
from . import dense_linalg  # noqa: F401
