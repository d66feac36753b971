"""Registries of functions by name, filled where each function is defined (timm's `@register_model`)."""

from collections.abc import Callable


class Registry(dict):
    """{name: function}; `@registry.register(name)` adds the function it decorates, unchanged."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def register(self, name: str) -> Callable:
        def register(function):
            if name in self and self[name] is not function:
                raise ValueError(f"Two {self.what}s are registered under one name. Received: name={name!r}")
            self[name] = function
            return function

        return register
