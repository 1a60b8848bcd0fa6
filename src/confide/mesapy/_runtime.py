"""MesaPy mode's runtime: Python 2.7 / micronumpy semantics on CPython 3.

This file is *source text shipped into the sandbox*: ``_program.py`` embeds it
in the program the ``mesapy`` executor runs for a MesaPy-mode function, where
it is executed in a namespace of its own (never imported from confide there;
it imports nothing of confide). Tests also import it directly.

What it gives the translated function (docs/compatibility-mesapy.md):

* Python 2 byte strings as text strings whose code points are the bytes
  (latin-1): ``argv`` items, ``teaclave_open(name, "rb")`` reads, ``marshal``
  output. So ``data.split(',')``, ``float(field)``, ``data[0] == 'x'`` and
  ``ord(data[0])`` behave as in Python 2; writes and results turn them back
  into the same bytes.
* Python 2 division: ``a / b`` floors when both operands are integers (also
  numpy integer scalars and arrays), unless the payload has
  ``from __future__ import division``; ``/=`` likewise (in place for arrays).
* ``e.message`` in an ``except ... as e`` body, ``sorted(..., cmp=f)`` and
  ``list.sort(cmp=f)``, ``cmp``, Python 2 ``round`` (a float, ties away from
  zero), ``str``, ``print``, ``%`` and ``str.format`` of a float with 12 significant digits,
  ``__div__`` methods.
* ``_numpypy`` (``multiarray``, ``umath``) over numpy, printing arrays as
  numpy 1.13 (micronumpy's era) did; ``marshal`` that stores arrays and numpy
  scalars as their raw buffers, as micronumpy's marshal did.
"""

from __future__ import annotations

import ast
import builtins
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["load", "py2_float_str", "to_bytes", "to_str"]

_str = str
_print = builtins.print
_import = builtins.__import__

# -- byte strings ---------------------------------------------------------------------------


def to_str(data: bytes | bytearray) -> str:
    """A Python 2 byte string: one code point per byte."""
    return bytes(data).decode("latin-1")


def to_bytes(value: Any) -> bytes:
    """The bytes of a Python 2 string (latin-1), or UTF-8 for real text; buffers as they are."""
    if isinstance(value, _str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            return value.encode("utf-8")
    return bytes(memoryview(value))


def _result(value: object) -> object:
    """The entrypoint's value: a byte string that is UTF-8 goes back as those bytes."""
    if isinstance(value, _str):
        try:
            return value.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return value  # text (a u'' literal): encoded as UTF-8 by the harness
    return value


def _argument(value: str) -> str:
    return to_str(value.encode("utf-8", "surrogatepass"))


def _data_name(name: Any) -> Any:
    if isinstance(name, _str):
        try:
            return name.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return name
    return name


# -- numbers ----------------------------------------------------------------------------------


def _integral(x: object) -> bool:
    if isinstance(x, int):
        return True
    np = sys.modules.get("numpy")
    if np is None:
        return False
    if isinstance(x, np.ndarray):
        return bool(x.dtype.kind in "iub")
    return isinstance(x, (np.integer, np.bool_))


def div(a: Any, b: Any) -> Any:
    """Python 2 ``a / b``: floor division of integers, true division otherwise."""
    if _integral(a) and _integral(b):
        return a // b
    return a / b


def idiv(a: Any, b: Any) -> Any:
    """Python 2 ``a /= b`` (in place for arrays)."""
    if _integral(a) and _integral(b):
        a //= b
    else:
        a /= b
    return a


def py2_round(number: Any, ndigits: int = 0) -> float:
    """Python 2 ``round``: a float, the exact value rounded half away from zero."""
    import decimal

    x = float(number)
    if x != x or x in (float("inf"), float("-inf")) or ndigits > 330:
        return x
    if ndigits < -330:
        return 0.0 * x
    context = decimal.Context(prec=1200, rounding=decimal.ROUND_HALF_UP)
    rounded = decimal.Decimal(x).quantize(decimal.Decimal(1).scaleb(-ndigits), context=context)
    return float(rounded)


def py2_cmp(a: Any, b: Any) -> int:
    return int((a > b) - (a < b))


def py2_float_str(x: float) -> str:
    """``str(float)`` of Python 2.7: 12 significant digits, ``.0`` on integral values."""
    text = format(x, ".12g")
    if not any(c in text for c in ".enia"):  # not 1.5, 1e+20, inf, nan
        text += ".0"
    return text


class _StrType(type):
    """``str`` of the function: still the one text type for isinstance and ==.

    Only ``Py2Str`` itself stands for ``str``; a class the function derives
    from it is an ordinary subclass.
    """

    def __instancecheck__(cls, obj: object) -> bool:
        if cls is Py2Str:
            return isinstance(obj, _str)
        return type.__instancecheck__(cls, obj)

    def __subclasscheck__(cls, sub: type) -> bool:
        if cls is Py2Str:
            return issubclass(sub, _str)
        return type.__subclasscheck__(cls, sub)

    def __eq__(cls, other: object) -> bool:
        if cls is Py2Str:
            return other is _str or other is cls
        return cls is other

    def __hash__(cls) -> int:
        return hash(_str) if cls is Py2Str else type.__hash__(cls)


class Py2Str(_str, metaclass=_StrType):
    """``str(x)``: Python 2's text of a float; everything else is ``str`` itself."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is not Py2Str:  # a subclass the function defines
            return _str.__new__(cls, *args, **kwargs)
        if len(args) == 1 and not kwargs and type(args[0]) is float:
            return py2_float_str(args[0])
        return _str(*args, **kwargs)


class Py2Float(float):
    """A float formatted into a string: ``%s`` and ``{}`` give Python 2's text."""

    __slots__ = ()

    def __str__(self) -> str:
        return py2_float_str(float(self))


def _py2_value(value: Any) -> Any:
    return Py2Float(value) if type(value) is float else value


def py2_mod(left: Any, right: Any) -> Any:
    """``left % right``; for a format string, floats as Python 2 formats them."""
    if isinstance(left, _str):
        if type(right) is tuple:
            right = tuple(_py2_value(v) for v in right)
        elif type(right) is dict:
            right = {k: _py2_value(v) for k, v in right.items()}
        else:
            right = _py2_value(right)
    return left % right


def py2_format(template: Any, *args: Any, **kwargs: Any) -> Any:
    """``template.format(...)``; for a string, floats as Python 2 formats them."""
    if isinstance(template, _str):
        return template.format(*(_py2_value(a) for a in args),
                               **{k: _py2_value(v) for k, v in kwargs.items()})
    return template.format(*args, **kwargs)


#: Python 2's str-to-str codecs (``s.encode('hex')``), which Python 3 keeps for bytes only.
_BYTES_CODECS = frozenset({"hex", "hex_codec", "base64", "base_64", "base64_codec", "zlib",
                           "zip", "zlib_codec", "bz2", "bz2_codec", "uu", "uu_codec",
                           "quopri", "quotedprintable", "quopri_codec"})


def _codec(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    name = kwargs.get("encoding", args[0] if args else "ascii")
    return _str(name).lower().replace("-", "_")


def py2_encode(value: Any, *args: Any, **kwargs: Any) -> Any:
    """``s.encode(...)``: a byte string (the bytes as code points), as in Python 2."""
    if not isinstance(value, _str):
        return value.encode(*args, **kwargs)
    import codecs

    if _codec(args, kwargs) in _BYTES_CODECS:
        raw: Any = to_bytes(value)
        encoded: Any = codecs.encode(raw, _codec(args, kwargs))
        return to_str(encoded)
    if not args and "encoding" not in kwargs:
        args = ("ascii",)  # Python 2's default encoding
    return to_str(value.encode(*args, **kwargs))


def py2_decode(value: Any, *args: Any, **kwargs: Any) -> Any:
    """``s.decode(...)`` of a byte string: its bytes decoded to text, as in Python 2."""
    if not isinstance(value, _str):
        return value.decode(*args, **kwargs)
    import codecs

    if _codec(args, kwargs) in _BYTES_CODECS:
        decoded: Any = codecs.decode(value.encode("latin-1"), _codec(args, kwargs))
        return to_str(decoded)
    if not args and "encoding" not in kwargs:
        args = ("ascii",)
    return value.encode("latin-1").decode(*args, **kwargs)


def string_module() -> types.ModuleType:
    """``string`` with Python 2's functions and constants beside Python 3's."""
    real = _import("string")
    module = types.ModuleType("string")
    module.__dict__.update({k: v for k, v in vars(real).items() if not k.startswith("__")})
    extra: dict[str, Any] = {
        "letters": real.ascii_letters, "lowercase": real.ascii_lowercase,
        "uppercase": real.ascii_uppercase, "maketrans": _str.maketrans,
        "atoi": lambda s, base=10: int(s, base), "atol": lambda s, base=10: int(s, base),
        "atof": float, "join": lambda words, sep=" ": sep.join(words),
        "joinfields": lambda words, sep=" ": sep.join(words),
        "split": lambda s, sep=None, maxsplit=-1: s.split(sep, maxsplit),
        "splitfields": lambda s, sep=None, maxsplit=-1: s.split(sep, maxsplit),
        "strip": lambda s, chars=None: s.strip(chars),
        "lstrip": lambda s, chars=None: s.lstrip(chars),
        "rstrip": lambda s, chars=None: s.rstrip(chars),
        "lower": _str.lower, "upper": _str.upper, "capitalize": _str.capitalize,
        "swapcase": _str.swapcase, "find": _str.find, "rfind": _str.rfind,
        "index": _str.index, "rindex": _str.rindex, "count": _str.count,
        "replace": lambda s, old, new, count=-1: s.replace(old, new, count),
        "zfill": lambda s, width: _str(s).zfill(width),
        "ljust": _str.ljust, "rjust": _str.rjust, "center": _str.center,
    }
    module.__dict__.update(extra)
    return module


def py2_print(*args: Any, **kwargs: Any) -> None:
    _print(*(py2_float_str(a) if type(a) is float else a for a in args), **kwargs)


def _cmp_to_key(function: Callable[[Any, Any], Any]) -> Any:
    import functools

    return functools.cmp_to_key(function)


def message(exc: BaseException) -> Any:
    """Python 2's ``BaseException.message``."""
    try:
        return exc.message  # type: ignore[attr-defined]
    except AttributeError:
        return exc.args[0] if len(exc.args) == 1 else ""


# -- the syntax tree: what 2to3 leaves to run time -------------------------------------------

_PREFIX = "_confide_py2_"


def _helper(name: str) -> ast.Name:
    return ast.Name(id=_PREFIX + name, ctx=ast.Load())


class Py2Semantics(ast.NodeTransformer):
    """Python 2 division, ``e.message``, ``cmp=`` and ``__div__`` on a Python 3 tree."""

    def __init__(self, true_division: bool) -> None:
        self.true_division = true_division
        self.handler_names: list[str] = []
        self.temporaries = 0

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Div) and not self.true_division:
            return ast.copy_location(ast.Call(_helper("div"), [node.left, node.right], []), node)
        if isinstance(node.op, ast.Mod) and not (isinstance(node.left, ast.Constant)
                                                 and not isinstance(node.left.value, _str)):
            return ast.copy_location(ast.Call(_helper("mod"), [node.left, node.right], []), node)
        return node

    def _temporary(self) -> str:
        self.temporaries += 1
        return f"{_PREFIX}t{self.temporaries}"

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        self.generic_visit(node)
        if not isinstance(node.op, ast.Div) or self.true_division:
            return node
        target = node.target
        setup: list[ast.stmt] = []
        if isinstance(target, ast.Attribute):  # evaluate the object once
            obj = self._temporary()
            setup.append(ast.Assign([ast.Name(obj, ast.Store())], target.value))
            load: ast.expr = ast.Attribute(ast.Name(obj, ast.Load()), target.attr, ast.Load())
            store: ast.expr = ast.Attribute(ast.Name(obj, ast.Load()), target.attr, ast.Store())
        elif isinstance(target, ast.Subscript) and not isinstance(target.slice, (ast.Slice,
                                                                                  ast.Tuple)):
            obj, key = self._temporary(), self._temporary()
            setup.append(ast.Assign([ast.Name(obj, ast.Store())], target.value))
            setup.append(ast.Assign([ast.Name(key, ast.Store())], target.slice))
            load = ast.Subscript(ast.Name(obj, ast.Load()), ast.Name(key, ast.Load()), ast.Load())
            store = ast.Subscript(ast.Name(obj, ast.Load()), ast.Name(key, ast.Load()),
                                  ast.Store())
        elif isinstance(target, ast.Subscript):  # a slice: its bounds are evaluated twice
            load = ast.Subscript(target.value, target.slice, ast.Load())
            store = target
        else:
            assert isinstance(target, ast.Name)
            load, store = ast.Name(target.id, ast.Load()), target
        assign = ast.Assign([store], ast.Call(_helper("idiv"), [load, node.value], []))
        out = [*setup, assign]
        for statement in out:
            ast.copy_location(statement, node)
        return out

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        if node.type is not None:
            node.type = self.visit(node.type)
        self.handler_names.append(node.name or "")
        try:
            node.body = [self.visit(s) for s in node.body]
        finally:
            self.handler_names.pop()
        flat: list[ast.stmt] = []
        for s in node.body:
            flat.extend(s if isinstance(s, list) else [s])
        node.body = flat
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        value = node.value
        if (node.attr == "message" and isinstance(node.ctx, ast.Load)
                and isinstance(value, ast.Name) and value.id
                and value.id in self.handler_names):
            return ast.copy_location(ast.Call(_helper("message"), [value], []), node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("format", "encode", "decode") \
                and isinstance(func.ctx, ast.Load):
            call = ast.Call(_helper(func.attr), [func.value, *node.args], node.keywords)
            return ast.copy_location(call, node)
        sorts = ((isinstance(func, ast.Name) and func.id == "sorted")
                 or (isinstance(func, ast.Attribute) and func.attr == "sort"))
        if sorts:
            for keyword in node.keywords:
                if keyword.arg == "cmp":
                    keyword.arg = "key"
                    keyword.value = ast.Call(_helper("cmp_to_key"), [keyword.value], [])
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.generic_visit(node)
        defined = {s.name for s in node.body if isinstance(s, (ast.FunctionDef,
                                                                ast.AsyncFunctionDef))}
        for old, new in (("__div__", "__truediv__"), ("__rdiv__", "__rtruediv__"),
                         ("__idiv__", "__itruediv__")):
            if old in defined and new not in defined:
                alias = ast.Assign([ast.Name(new, ast.Store())], ast.Name(old, ast.Load()))
                node.body.append(ast.copy_location(alias, node.body[-1]))
        return node


def _visit_statements(transformer: Py2Semantics, tree: ast.Module) -> ast.Module:
    tree = transformer.visit(tree)
    ast.fix_missing_locations(tree)
    return tree


# -- files ------------------------------------------------------------------------------------


class InputFile:
    """``teaclave_open(name, "rb")``: reads are Python 2 byte strings."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def read(self, size: int = -1) -> str:
        return to_str(self._inner.read(size))

    def readline(self, size: int = -1) -> str:
        return to_str(self._inner.readline(size))

    def readlines(self, hint: int = -1) -> list[str]:
        return [to_str(line) for line in self._inner.readlines(hint)]

    def __iter__(self) -> Iterator[str]:
        return (to_str(line) for line in self._inner)

    @property
    def closed(self) -> bool:
        return bool(self._inner.closed)

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> InputFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OutputFile:
    """``teaclave_open(name, "wb")``: a string is written as its bytes."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, data: Any) -> None:
        self._inner.write(to_bytes(data))

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._inner.flush()

    @property
    def closed(self) -> bool:
        return bool(self._inner.closed)

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def file_api(host_open: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    """The function's ``teaclave_open`` over the harness's; errors carry ``.message``."""

    def teaclave_open(name: Any, mode: Any = "rb") -> InputFile | OutputFile:
        try:
            inner = host_open(_data_name(name), mode)
        except RuntimeError as e:
            e.message = _str(e)  # type: ignore[attr-defined]
            raise
        return InputFile(inner) if mode == "rb" else OutputFile(inner)

    return teaclave_open


# -- marshal ------------------------------------------------------------------------------------


def _marshal_in(obj: Any) -> Any:
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, (np.ndarray, np.generic)):
        return np.ascontiguousarray(obj).tobytes()  # micronumpy marshals the raw buffer
    if isinstance(obj, list):
        return [_marshal_in(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_marshal_in(v) for v in obj)
    if isinstance(obj, dict):
        return {_marshal_in(k): _marshal_in(v) for k, v in obj.items()}
    return obj


def _marshal_out(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return to_str(obj)
    if isinstance(obj, list):
        return [_marshal_out(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_marshal_out(v) for v in obj)
    if isinstance(obj, dict):
        return {_marshal_out(k): _marshal_out(v) for k, v in obj.items()}
    if isinstance(obj, frozenset):
        return frozenset(_marshal_out(v) for v in obj)
    if isinstance(obj, set):
        return {_marshal_out(v) for v in obj}
    return obj


def marshal_module() -> types.ModuleType:
    """``marshal`` as the function sees it: byte strings in and out."""
    import marshal as real

    module = types.ModuleType("marshal")

    def dumps(value: Any, version: int = 2) -> str:
        return to_str(real.dumps(_marshal_in(value), min(int(version), real.version)))

    def loads(data: Any) -> Any:
        # the function unmarshals its own data, inside its own sandbox
        return _marshal_out(real.loads(to_bytes(data)))  # noqa: S302

    def dump(value: Any, file: Any, version: int = 2) -> None:
        file.write(dumps(value, version))

    def load(file: Any) -> Any:
        return loads(file.read())

    module.dumps, module.loads, module.dump, module.load = dumps, loads, dump, load  # type: ignore[attr-defined]
    module.version = 2  # type: ignore[attr-defined]
    return module


# -- modules that take and give byte strings --------------------------------------------------

#: Standard modules whose Python 2 functions take and return byte strings (``str``):
#: imported through ``bytes_module``, which converts at their edges.
BYTES_MODULES = ("binascii", "base64", "hashlib", "struct", "zlib")
_PLAIN = (int, float, complex, bool, type(None))


def _into(value: Any) -> Any:
    return to_bytes(value) if isinstance(value, _str) else value


def _back(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return to_str(value)
    if isinstance(value, tuple):
        return tuple(_back(v) for v in value)
    if isinstance(value, list):
        return [_back(v) for v in value]
    if isinstance(value, (_str, *_PLAIN)) or (isinstance(value, type) and issubclass(
            value, BaseException)):
        return value
    if callable(value) or hasattr(value, "__dict__") or hasattr(value, "__slots__") \
            or type(value).__module__ not in ("builtins",):
        return _BytesProxy(value)
    return value


def _keep(name: str, position: int) -> bool:
    """Arguments that stay text: ``hashlib.new``'s algorithm name."""
    return name == "new" and position == 0


class _BytesProxy:
    """An object of a bytes module (a hash, a ``struct.Struct``, a compressor)."""

    __slots__ = ("_target",)

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_target", target)

    def __getattr__(self, name: str) -> Any:
        return _back(getattr(self._target, name))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _back(self._target(*(_into(a) for a in args),
                                  **{k: _into(v) for k, v in kwargs.items()}))

    def __repr__(self) -> str:
        return repr(self._target)


def bytes_module(name: str) -> types.ModuleType:
    """``name`` with byte strings at its edges (``crc32`` signed, as in Python 2)."""
    real = _import(name)
    module = types.ModuleType(name)
    for attr in dir(real):
        if attr.startswith("__"):
            continue
        value = getattr(real, attr)
        if (isinstance(value, type) and issubclass(value, BaseException)) or \
                isinstance(value, (*_PLAIN, _str)) or isinstance(value, (frozenset, set)):
            setattr(module, attr, value)
        elif callable(value):
            setattr(module, attr, _wrap(value, attr))
    if name in ("binascii", "zlib"):
        crc32 = module.crc32

        def signed_crc32(data: Any, value: int = 0) -> int:
            result = int(crc32(data, value & 0xFFFFFFFF))
            return result - (1 << 32) if result >= 1 << 31 else result

        module.crc32 = signed_crc32  # type: ignore[attr-defined]
    return module


def _wrap(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        converted = [a if _keep(name, i) else _into(a) for i, a in enumerate(args)]
        return _back(function(*converted, **{k: _into(v) for k, v in kwargs.items()}))

    call.__name__ = name
    return call


# -- _numpypy ---------------------------------------------------------------------------------

#: ``_numpypy.multiarray``: micronumpy's names, each numpy's function of that name.
MULTIARRAY = (
    "array", "arange", "concatenate", "count_nonzero", "dot", "dtype", "empty", "empty_like",
    "flatiter", "inner", "ndarray", "nditer", "ones", "vdot", "where", "zeros", "zeros_like",
    "can_cast", "result_type", "promote_types", "correlate", "set_printoptions", "typeinfo",
)
#: ``_numpypy.umath``: micronumpy's ufuncs.
UMATH = (
    "absolute", "add", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2",
    "arctanh", "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor", "ceil", "conjugate",
    "copysign", "cos", "cosh", "deg2rad", "degrees", "equal", "exp", "exp2", "expm1", "fabs",
    "floor", "floor_divide", "fmax", "fmin", "fmod", "greater", "greater_equal", "hypot",
    "invert", "isfinite", "isinf", "isnan", "left_shift", "less", "less_equal", "log", "log10",
    "log1p", "log2", "logaddexp", "logaddexp2", "logical_and", "logical_not", "logical_or",
    "logical_xor", "maximum", "minimum", "mod", "multiply", "negative", "not_equal", "power",
    "rad2deg", "radians", "reciprocal", "remainder", "right_shift", "rint", "sign", "signbit",
    "sin", "sinh", "sqrt", "square", "subtract", "tan", "tanh", "true_divide", "trunc",
)
_numpypy_modules: dict[str, types.ModuleType] = {}


def numpypy() -> dict[str, types.ModuleType]:
    """``_numpypy``, ``_numpypy.multiarray`` and ``_numpypy.umath`` (built on first import)."""
    import numpy as np

    np.set_printoptions(legacy="1.13")  # arrays print as numpy did in micronumpy's time
    if _numpypy_modules:
        return _numpypy_modules
    top = types.ModuleType("_numpypy")
    multiarray = types.ModuleType("_numpypy.multiarray")
    umath = types.ModuleType("_numpypy.umath")
    for name in MULTIARRAY:
        if hasattr(np, name):
            setattr(multiarray, name, getattr(np, name))
    multiarray.typeinfo = {}  # type: ignore[attr-defined]

    def frombuffer(buffer: Any, dtype: Any = float, count: int = -1, offset: int = 0) -> Any:
        return np.frombuffer(to_bytes(buffer), dtype=dtype, count=count, offset=offset).copy()

    def fromstring(string: Any, dtype: Any = float, count: int = -1, sep: str = "") -> Any:
        if sep:
            text = string if isinstance(string, _str) else to_str(string)
            values = [v for v in text.split(sep) if v.strip()]
            array = np.array(values[: None if count < 0 else count], dtype=dtype)
            return array
        return frombuffer(string, dtype=dtype, count=count)

    def divide(a: Any, b: Any, *args: Any, **kwargs: Any) -> Any:  # Python 2's umath.divide
        if _integral(a) and _integral(b):
            return np.floor_divide(a, b, *args, **kwargs)
        return np.true_divide(a, b, *args, **kwargs)

    multiarray.frombuffer, multiarray.fromstring = frombuffer, fromstring  # type: ignore[attr-defined]
    for name in UMATH:
        setattr(umath, name, getattr(np, name))
    umath.divide = divide  # type: ignore[attr-defined]
    umath.pi, umath.e = np.pi, np.e  # type: ignore[attr-defined]
    top.multiarray, top.umath = multiarray, umath  # type: ignore[attr-defined]
    top.__path__ = []  # a package: ``import _numpypy.multiarray`` works
    for module in (top, multiarray, umath):
        _numpypy_modules[module.__name__] = module
        sys.modules[module.__name__] = module
    return _numpypy_modules


# -- loading the function -------------------------------------------------------------------


def _importer(modules: dict[str, types.ModuleType]) -> Callable[..., Any]:
    def py2_import(name: str, globals: Any = None, locals: Any = None,
                   fromlist: Any = (), level: int = 0) -> Any:
        if level == 0:
            if name in modules:
                return modules[name]
            if name in BYTES_MODULES:
                modules[name] = bytes_module(name)
                return modules[name]
            if name == "string":
                modules[name] = string_module()
                return modules[name]
            if name == "_numpypy" or name.startswith("_numpypy."):
                found = numpypy()
                if name not in found:
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return found[name] if fromlist else found["_numpypy"]
        return _import(name, globals, locals, fromlist, level)

    return py2_import


def function_builtins(host_open: Callable[[Any, Any], Any]) -> dict[str, Any]:
    """The builtins the translated function runs with."""
    teaclave_open = file_api(host_open)
    teaclave = types.ModuleType("teaclave")
    teaclave.open = teaclave_open  # type: ignore[attr-defined]
    names = dict(vars(builtins))
    names.update({
        "__import__": _importer({"marshal": marshal_module(), "teaclave": teaclave}),
        "teaclave_open": teaclave_open,
        "str": Py2Str,
        "print": py2_print,
        "round": py2_round,
        "cmp": py2_cmp,
        _PREFIX + "div": div,
        _PREFIX + "mod": py2_mod,
        _PREFIX + "format": py2_format,
        _PREFIX + "encode": py2_encode,
        _PREFIX + "decode": py2_decode,
        _PREFIX + "idiv": idiv,
        _PREFIX + "message": message,
        _PREFIX + "cmp_to_key": _cmp_to_key,
    })
    return names


def _harness_open(name: Any, mode: Any) -> Any:
    """The harness's ``teaclave_open`` (looked up when the function opens a file)."""
    host = getattr(builtins, "teaclave_open", None)
    if host is None:
        raise RuntimeError("fileio_init: teaclave_ffi_error")
    return host(name, mode)


def load(source: bytes, true_division: bool,
         host_open: Callable[[Any, Any], Any] | None = None) -> Callable[[list[str]], object]:
    """Run the translated module; its ``entrypoint`` with MesaPy's argv and result rules."""
    import linecache

    text = source.decode("utf-8")
    linecache.cache["<function>"] = (len(text), None, text.splitlines(True), "<function>")
    tree = _visit_statements(Py2Semantics(true_division), ast.parse(text, "<function>"))
    code = compile(tree, "<function>", "exec", dont_inherit=True)
    opener = host_open if host_open is not None else _harness_open
    namespace: dict[str, Any] = {"__name__": "function",
                                 "__builtins__": function_builtins(opener)}
    exec(code, namespace)  # noqa: S102 - the function's own code, inside the sandbox

    def entrypoint(argv: list[str]) -> object:
        function = namespace.get("entrypoint")
        if function is None:
            raise KeyError("entrypoint")
        return _result(function([_argument(a) for a in argv]))

    return entrypoint
