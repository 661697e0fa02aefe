"""``FILE.py:FACTORY``: how the command line finds a candidate (an optimizer's factory, a layer's factory)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

__all__ = ["load_factory"]


def load_factory(spec):
    """The callable FACTORY defined in FILE.py, for ``spec`` = "FILE.py:FACTORY".  ValueError with one line saying
    what is wrong (no colon, no such file, the file fails to import or calls sys.exit as it does, no such name, not
    callable)."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"expected FILE.py:FACTORY (a Python file and the name of a function in it), got {spec!r}")
    path_text, name = spec.rsplit(":", 1)
    path = Path(path_text)
    if path.suffix != ".py" or not name.isidentifier():
        raise ValueError(f"expected FILE.py:FACTORY, got {spec!r}")
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    module_name = f"minibng_audit_candidate_{abs(hash(str(path.resolve())))}"
    loader = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(loader)
    sys.modules[module_name] = module   # dataclasses and pickling look their module up by name
    try:
        loader.loader.exec_module(module)
    except SystemExit as exit_call:   # a script's sys.exit(main()) run at import: not an exit of the audit
        sys.modules.pop(module_name, None)
        raise ValueError(f"{path}: importing it called sys.exit({exit_call.code!r}); run a script's main only under "
                         "`if __name__ == \"__main__\":`") from None
    except Exception as error:
        sys.modules.pop(module_name, None)
        raise ValueError(f"{path}: importing it raised {type(error).__name__}: {error}") from None
    if not hasattr(module, name):
        public = [n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise ValueError(f"{path} defines no {name!r} (its callables: {', '.join(public) or 'none'})")
    factory = getattr(module, name)
    if not callable(factory):
        raise ValueError(f"{path}:{name} is a {type(factory).__name__}, not a function")
    return factory
