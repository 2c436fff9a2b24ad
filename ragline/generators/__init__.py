"""Text-generation backends behind one protocol, chosen by name from the backend table; models load in warm_up()."""

from ragline.generators.base import (
    Generator,
    GeneratorSpec,
    available_backends,
    get_generator,
    register_backend,
)

__all__ = ["Generator", "GeneratorSpec", "available_backends", "get_generator", "register_backend"]
