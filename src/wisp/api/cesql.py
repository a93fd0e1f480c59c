"""CloudEvents SQL v1 (cesql/spec.md of cloudevents/spec), parsed and compiled to a predicate over CloudEvents.

String/Integer/Boolean with the spec's implicit casts, `= != <> < <= > >=`, `+ - * / %`, unary `-`,
`AND OR XOR NOT`, `[NOT] LIKE`, `EXISTS`, `[NOT] IN (...)`, parentheses and the built-in functions. As a
filter predicate, a result that is not TRUE or any evaluation error (bad cast, division by zero) means
"no match"; a reference to a missing attribute makes the comparison it sits in FALSE, as §3.2 requires.
It lives in api/ because admission parses every Trigger's CESQL; the dispatchers run the same predicate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cloudevents.v1.http import CloudEvent

__all__ = ["CesqlSyntaxError", "FilterError", "Predicate", "attribute_text", "compile_cesql"]

Predicate = Callable[[CloudEvent], bool]
Value = str | int | bool


class FilterError(ValueError):
    """A trigger filter that cannot be compiled; `path` names the field (`spec.filters[1].cesql`)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class CesqlSyntaxError(FilterError):
    """A CESQL expression that does not parse; `position` is the 0-based character offset of the problem."""

    def __init__(self, message: str, position: int, path: str = "") -> None:
        self.position = position
        super().__init__(path, f"{message} at position {position}")


def attribute_text(event: CloudEvent, name: str) -> str | None:
    value = event.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


# -- CESQL: lexer ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tok:
    kind: str  # "int" "str" "ident" "op" "(" ")" "," "eof"
    text: str
    value: Any
    pos: int


_OPS = ("!=", "<>", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%")
# Parentheses, function calls, NOT and unary minus each nest the parser and the evaluator one level deeper
# (about ten Python frames): far more than any filter needs, far less than Python's recursion limit.
MAX_CESQL_NESTING = 32
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+[A-Za-z_][A-Za-z0-9_]*")
_INT = re.compile(r"[0-9]+")
_CAST_INT = re.compile(r"[+-]?[0-9]+")


def _lex(text: str, path: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "'\"":
            start, i = i, i + 1
            buf: list[str] = []
            while True:
                if i >= n:
                    raise CesqlSyntaxError("unterminated string literal", start, path)
                ch = text[i]
                if ch == "\\" and i + 1 < n and text[i + 1] in (c, "\\"):
                    buf.append(text[i + 1])
                    i += 2
                elif ch == c:
                    i += 1
                    break
                else:
                    buf.append(ch)
                    i += 1
            toks.append(_Tok("str", text[start:i], "".join(buf), start))
            continue
        if c in "(),":
            toks.append(_Tok(c, c, None, i))
            i += 1
            continue
        word = _WORD.match(text, i)
        if word:
            toks.append(_Tok("ident", word.group(), word.group(), i))
            i = word.end()
            continue
        num = _INT.match(text, i)
        if num:
            if len(num.group().lstrip("0")) > 10:  # before int(): Python refuses to parse 4300+ digits
                raise CesqlSyntaxError("integer literal out of 32-bit range", i, path)
            value = int(num.group())
            if value > 2**31:  # 2**31 itself is allowed only as the operand of unary minus
                raise CesqlSyntaxError("integer literal out of 32-bit range", i, path)
            toks.append(_Tok("int", num.group(), value, i))
            i = num.end()
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op is None:
            raise CesqlSyntaxError(f"unexpected character {c!r}", i, path)
        toks.append(_Tok("op", op, op, i))
        i += len(op)
    toks.append(_Tok("eof", "", None, n))
    return toks


# -- CESQL: AST and evaluation ---------------------------------------------------------------------------


class _Missing(Exception):
    """An attribute the event lacks: the enclosing boolean subexpression is FALSE (spec §3.2)."""


class _EvalError(Exception):
    """A cast or math error: the filter does not match."""


def _to_int(v: Value) -> int:
    if isinstance(v, bool):
        return 1 if v else 0
    if isinstance(v, int):
        return v
    text = v.strip()
    # Python's int() also takes `1_000` and other scripts' digits, and refuses 4300+ digits with ValueError.
    if not _CAST_INT.fullmatch(text):
        raise _EvalError(f"cannot cast {v!r} to integer")
    if len(text.lstrip("+-").lstrip("0")) > 10:
        raise _EvalError(f"{v!r} is out of 32-bit range")
    out = int(text, 10)
    if not -(2**31) <= out < 2**31:
        raise _EvalError(f"{v!r} is out of 32-bit range")
    return out


def _to_bool(v: Value) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v != 0
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    raise _EvalError(f"cannot cast {v!r} to boolean")


def _to_str(v: Value) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _cast_like(v: Value, target: Value) -> Value:
    if isinstance(target, bool):
        return _to_bool(v)
    if isinstance(target, int):
        return _to_int(v)
    return _to_str(v)


def _wrap32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


def _apply(op: str, x: int, y: int) -> int:
    if op == "+":
        return _wrap32(x + y)
    if op == "-":
        return _wrap32(x - y)
    if op == "*":
        return _wrap32(x * y)
    if y == 0:
        raise _EvalError("division by zero")
    quotient = abs(x) // abs(y) * (1 if (x >= 0) == (y >= 0) else -1)  # truncated, not floored
    return _wrap32(quotient) if op == "/" else _wrap32(x - quotient * y)


Node = Callable[[CloudEvent], Value]


def _boolean(node: Node) -> Callable[[CloudEvent], bool]:
    """Evaluate as Boolean, a missing attribute giving FALSE."""

    def run(event: CloudEvent) -> bool:
        try:
            return _to_bool(node(event))
        except _Missing:
            return False

    return run


def _logic(op: str, operands: list[Node]) -> Node:
    """`a OP b OP c ...` as one node: a long chain costs a loop, not a level of recursion per operand."""
    if len(operands) == 1:
        return operands[0]
    parts = [_boolean(node) for node in operands]
    if op == "AND":
        return lambda e: all(p(e) for p in parts)  # short-circuit, as the spec requires
    if op == "OR":
        return lambda e: any(p(e) for p in parts)

    def xor(event: CloudEvent) -> bool:
        result = False
        for part in parts:
            result = result != part(event)
        return result

    return xor


def _like_matcher(pattern: str) -> Callable[[str], bool]:
    """A LIKE pattern as a matcher that takes linear time in practice.

    A regex with one `.*` per `%` backtracks exponentially (`%a%a%a...%b` on a long value of `a`s). Here the
    pattern splits at each `%` into fixed-length segments (`_` matching any one character); the first must
    start the value, the last end it, and each one between is found leftmost after the one before, which
    is all a `%` needs.
    """
    segments: list[list[str]] = [[]]  # each item: a regex for one character
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_\\":
            segments[-1].append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "%":
            segments.append([])
        else:
            segments[-1].append("." if c == "_" else re.escape(c))
        i += 1
    compiled = [(re.compile("".join(seg), re.DOTALL), len(seg)) for seg in segments]
    if len(compiled) == 1:
        only = compiled[0][0]
        return lambda value: only.fullmatch(value) is not None
    (first, first_len), middle, (last, last_len) = compiled[0], compiled[1:-1], compiled[-1]

    def match(value: str) -> bool:
        end = len(value) - last_len
        if end < first_len or first.match(value, 0, first_len) is None or last.match(value, end) is None:
            return False
        pos = first_len
        for segment, _length in middle:
            found = segment.search(value, pos, end)
            if found is None:
                return False
            pos = found.end()
        return True

    return match


def _substring(x: str, pos: int, length: int | None = None) -> str:
    n = len(x)
    if pos > n or pos < -n or (length is not None and length < 0):
        raise _EvalError("SUBSTRING position or length out of range")
    if pos == 0:
        return ""
    start = pos - 1 if pos > 0 else n + pos
    return x[start:] if length is None else x[start : start + length]


def _left(x: str, y: int) -> str:
    if y < 0:
        raise _EvalError("LEFT length is negative")
    return x[:y]


def _right(x: str, y: int) -> str:
    if y < 0:
        raise _EvalError("RIGHT length is negative")
    return x[len(x) - y :] if y else ""


def _abs(x: int) -> int:
    if x == -(2**31):
        raise _EvalError("ABS overflow")
    return abs(x)


def _is_int(v: Value) -> bool:
    try:
        _to_int(v)
    except _EvalError:
        return False
    return True


def _is_bool(v: Value) -> bool:
    try:
        _to_bool(v)
    except _EvalError:
        return False
    return True


# name → (min args, max args or None for variadic, argument casts, implementation)
_Cast = Callable[[Value], Value]
_FUNCTIONS: dict[str, tuple[int, int | None, Sequence[_Cast], Callable[..., Value]]] = {
    "LENGTH": (1, 1, (_to_str,), len),
    "CONCAT": (0, None, (_to_str,), lambda *xs: "".join(xs)),
    "CONCAT_WS": (1, None, (_to_str,), lambda sep, *xs: sep.join(xs)),
    "LOWER": (1, 1, (_to_str,), str.lower),
    "UPPER": (1, 1, (_to_str,), str.upper),
    "TRIM": (1, 1, (_to_str,), lambda x: x.strip(" \t\n\r\f\v")),
    "LEFT": (2, 2, (_to_str, _to_int), _left),
    "RIGHT": (2, 2, (_to_str, _to_int), _right),
    "SUBSTRING": (2, 3, (_to_str, _to_int, _to_int), _substring),
    "ABS": (1, 1, (_to_int,), _abs),
    "INT": (1, 1, (_to_int,), lambda x: x),
    "BOOL": (1, 1, (_to_bool,), lambda x: x),
    "STRING": (1, 1, (_to_str,), lambda x: x),
    "IS_INT": (1, 1, (lambda v: v,), _is_int),
    "IS_BOOL": (1, 1, (lambda v: v,), _is_bool),
}


# -- CESQL: parser ---------------------------------------------------------------------------------------
# Precedence, loosest first: OR; XOR; AND; NOT; comparison / LIKE / IN; + -; * / %; unary -; primary.
# NOT binds looser than comparisons, as in SQL, so `NOT type = 'x'` means what a user expects.


class _Parser:
    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.toks = _lex(text, path)
        self.i = 0
        self.depth = 0  # parentheses, calls, NOT and unary minus open around the current token

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def error(self, message: str, tok: _Tok | None = None) -> CesqlSyntaxError:
        tok = tok or self.peek()
        found = "end of expression" if tok.kind == "eof" else repr(tok.text)
        return CesqlSyntaxError(f"{message}, found {found}", tok.pos, self.path)

    def keyword(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "ident" and tok.text.upper() in words

    def expect(self, kind: str, what: str) -> _Tok:
        if self.peek().kind != kind:
            raise self.error(f"expected {what}")
        return self.next()

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek().kind != "eof":
            raise self.error("expected an operator or end of expression")
        return node

    def nested(self) -> None:
        """Count one more level of nesting; each costs Python stack while parsing and evaluating."""
        self.depth += 1
        if self.depth > MAX_CESQL_NESTING:
            raise self.error(f"expression nested more than {MAX_CESQL_NESTING} levels deep")

    def or_expr(self) -> Node:
        operands = [self.xor_expr()]
        while self.keyword("OR"):
            self.next()
            operands.append(self.xor_expr())
        return _logic("OR", operands)

    def xor_expr(self) -> Node:
        operands = [self.and_expr()]
        while self.keyword("XOR"):
            self.next()
            operands.append(self.and_expr())
        return _logic("XOR", operands)

    def and_expr(self) -> Node:
        operands = [self.not_expr()]
        while self.keyword("AND"):
            self.next()
            operands.append(self.not_expr())
        return _logic("AND", operands)

    def not_expr(self) -> Node:
        if self.keyword("NOT"):
            self.next()
            self.nested()
            inner = _boolean(self.not_expr())
            self.depth -= 1
            return lambda e: not inner(e)
        return self.comparison()

    def comparison(self) -> Node:
        left = self.additive()
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("=", "!=", "<>", "<", "<=", ">", ">="):
            self.next()
            return self._compare(tok.text, left, self.additive())
        negate = False
        if self.keyword("NOT"):
            self.next()
            negate = True
            if not self.keyword("LIKE", "IN"):
                raise self.error("expected LIKE or IN after NOT")
        if self.keyword("LIKE"):
            self.next()
            pat = self.expect("str", "a string literal pattern after LIKE")
            return self._negated(self._like(left, _like_matcher(pat.value)), negate)
        if self.keyword("IN"):
            self.next()
            return self._negated(self._in(left, self.set_expr()), negate)
        return left

    @staticmethod
    def _negated(node: Node, negate: bool) -> Node:
        if not negate:
            return node
        return lambda e: not node(e)

    @staticmethod
    def _compare(op: str, left: Node, right: Node) -> Node:
        def run(event: CloudEvent) -> bool:
            try:
                x, y = left(event), right(event)
            except _Missing:
                return False
            if op in ("<", "<=", ">", ">="):
                xi, yi = _to_int(x), _to_int(y)
                return {"<": xi < yi, "<=": xi <= yi, ">": xi > yi, ">=": xi >= yi}[op]
            # `=` is ambiguous: the right operand's type decides what the left is cast to (spec §3.7).
            equal = _cast_like(x, y) == y
            return equal if op == "=" else not equal

        return run

    @staticmethod
    def _like(left: Node, matches: Callable[[str], bool]) -> Node:
        def run(event: CloudEvent) -> bool:
            try:
                value = _to_str(left(event))
            except _Missing:
                return False
            return matches(value)

        return run

    @staticmethod
    def _in(left: Node, items: list[Node]) -> Node:
        def run(event: CloudEvent) -> bool:
            try:
                x = left(event)
                # The left operand's type is the target type of every set element (spec §3.7).
                return any(_cast_like(item(event), x) == x for item in items)
            except _Missing:
                return False

        return run

    def set_expr(self) -> list[Node]:
        self.expect("(", "'(' to open the IN set")
        items = [self.additive()]
        while self.peek().kind == ",":
            self.next()
            items.append(self.additive())
        self.expect(")", "',' or ')' in the IN set")
        return items

    def additive(self) -> Node:
        first = self.multiplicative()
        rest: list[tuple[str, Node]] = []
        while self.peek().kind == "op" and self.peek().text in ("+", "-"):
            op = self.next().text
            rest.append((op, self.multiplicative()))
        return self._arith(first, rest)

    def multiplicative(self) -> Node:
        first = self.unary()
        rest: list[tuple[str, Node]] = []
        while self.peek().kind == "op" and self.peek().text in ("*", "/", "%"):
            op = self.next().text
            rest.append((op, self.unary()))
        return self._arith(first, rest)

    @staticmethod
    def _arith(first: Node, rest: list[tuple[str, Node]]) -> Node:
        """A left-associative chain (`a - b + c`) folded in a loop, like the logical operators."""
        if not rest:
            return first

        def run(event: CloudEvent) -> int:
            x = _to_int(first(event))
            for op, node in rest:
                x = _apply(op, x, _to_int(node(event)))
            return x

        return run

    def unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.text == "-":
            self.next()
            if self.peek().kind == "int":
                lit = self.next()
                value = -int(lit.value)
                return lambda _e: value
            self.nested()
            inner = self.unary()
            self.depth -= 1
            return lambda e: _wrap32(-_to_int(inner(e)))
        return self.primary()

    def primary(self) -> Node:
        tok = self.peek()
        if tok.kind == "int":
            self.next()
            if tok.value == 2**31:
                raise CesqlSyntaxError("integer literal out of 32-bit range", tok.pos, self.path)
            int_value: int = tok.value
            return lambda _e: int_value
        if tok.kind == "str":
            self.next()
            str_value: str = tok.value
            return lambda _e: str_value
        if tok.kind == "(":
            self.next()
            self.nested()
            inner = self.or_expr()
            self.expect(")", "')'")
            self.depth -= 1
            return inner
        if tok.kind == "ident":
            return self.identifier()
        raise self.error("expected a value, attribute, function call or '('")

    def identifier(self) -> Node:
        tok = self.next()
        word = tok.text.upper()
        if word in ("TRUE", "FALSE"):
            bool_value = word == "TRUE"
            return lambda _e: bool_value
        if word == "EXISTS":
            name = self.expect("ident", "an attribute name after EXISTS")
            attr = self._attr_name(name)
            return lambda e: e.get(attr) is not None
        if self.peek().kind == "(":
            return self.call(tok)
        if word in ("AND", "OR", "XOR", "NOT", "LIKE", "IN"):
            raise self.error("expected a value, attribute, function call or '('", tok)
        attr = self._attr_name(tok)

        def lookup(event: CloudEvent) -> Value:
            value = attribute_text(event, attr)
            if value is None:
                raise _Missing(attr)
            return value

        return lookup

    def _attr_name(self, tok: _Tok) -> str:
        if not re.fullmatch(r"[a-z0-9]+", tok.text):
            raise CesqlSyntaxError(
                f"invalid attribute name {tok.text!r} (lowercase letters and digits)", tok.pos, self.path
            )
        return tok.text

    def call(self, name_tok: _Tok) -> Node:
        name = name_tok.text.upper()
        self.next()  # "("
        self.nested()
        args: list[Node] = []
        if self.peek().kind != ")":
            args.append(self.or_expr())
            while self.peek().kind == ",":
                self.next()
                args.append(self.or_expr())
        self.expect(")", "',' or ')' in the argument list")
        self.depth -= 1
        spec = _FUNCTIONS.get(name)
        if spec is None:
            raise CesqlSyntaxError(f"unknown function {name_tok.text!r}", name_tok.pos, self.path)
        lo, hi, casts, impl = spec
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = f"{lo}" if lo == hi else f"{lo}..{hi}" if hi is not None else f"at least {lo}"
            raise CesqlSyntaxError(
                f"{name} takes {want} arguments, got {len(args)}", name_tok.pos, self.path
            )
        arg_casts = [casts[min(i, len(casts) - 1)] for i in range(len(args))]

        def run(event: CloudEvent) -> Value:
            values = [cast(arg(event)) for cast, arg in zip(arg_casts, args, strict=True)]
            result: Value = impl(*values)
            return result

        return run


def compile_cesql(expression: str, path: str = "") -> Predicate:
    """A CESQL expression → predicate. Raises CesqlSyntaxError (with `position`) when it does not parse."""
    node = _Parser(expression, path).parse()

    def predicate(event: CloudEvent) -> bool:
        try:
            result = node(event)
        except (_Missing, _EvalError):
            return False
        return result is True

    return predicate
