"""Rule files to a RuleSet: split into rules, parse each with lark, check types, report every error in words."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from computehub_tui.config.durations import UNIT_SECONDS
from computehub_tui.domain.models import PROVIDER_NAMES
from computehub_tui.domain.text import clean_text, show_controls
from computehub_tui.rules.fields import FIELDS, Kind, Scope, Unit, nearest
from computehub_tui.rules.model import (
    Action,
    ActionKind,
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    Negation,
    Position,
    Rule,
    RuleError,
    RuleSet,
    Scalar,
)

MAX_FILE_CHARS = 1_000_000
MAX_LINE_CHARS = 1_000
MAX_RULE_CHARS = 20_000
MAX_RULES = 1_000
MAX_ERRORS = 200
MAX_DEPTH = 40
"""Nesting of parentheses and NOTs: deep enough for any rule a person writes, shallow enough for Python's stack."""
MAX_TEXT_CHARS = 200
MAX_NUMBER = 1e12
MAX_WINDOW_S = 7 * 86400.0
SOURCE_SHOWN = 100
"""How much of a long line an error shows around its column."""

CHANNELS = ("telegram", "email", "webhook", "toast")
MIGRATE_ARGUMENTS = ("provider", "max_price", "gpu")
PER_INSTANCE_ACTIONS = frozenset({ActionKind.STOP, ActionKind.START, ActionKind.RESTART, ActionKind.DESTROY,
                                  ActionKind.RELAUNCH, ActionKind.MIGRATE, ActionKind.LABEL})
NUMBER_OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in")
TEXT_OPS = ("==", "!=", "in", "not in", "~")

_UNIT_WORDS = {"%": Unit.PERCENT, "gb": Unit.GIGABYTES, "gib": Unit.GIGABYTES}
_ALLOWED_LITERAL_UNITS: dict[Unit, tuple[Unit | None, ...]] = {
    Unit.PERCENT: (None, Unit.PERCENT),
    Unit.DOLLARS: (None, Unit.DOLLARS),
    Unit.DOLLARS_PER_HOUR: (None, Unit.DOLLARS),
    Unit.SECONDS: (Unit.SECONDS,),
    Unit.GIGABYTES: (None, Unit.GIGABYTES),
}
_EXAMPLES = {Unit.PERCENT: "a percentage such as 20 or 20%", Unit.DOLLARS: "an amount such as 2.5 or $2.5",
             Unit.DOLLARS_PER_HOUR: "a price per hour such as 2.5 or $2.5", Unit.SECONDS: "a duration like 30m",
             Unit.GIGABYTES: "an amount such as 80 or 80GB"}
_LITERAL_WORDS = {Unit.PERCENT: "a percentage", Unit.DOLLARS: "an amount of dollars", Unit.SECONDS: "a duration",
                  Unit.GIGABYTES: "an amount of GB"}

_TERMINAL_WORDS = {
    "RULE": 'rule "name":', "IF": "IF", "THEN": "THEN", "AND": "AND", "OR": "OR", "FOR": "FOR", "NOT": "NOT",
    "IN": "in", "OP": "an operator (==, !=, <, <=, >, >=, in, not in, ~)", "TILDE": "~", "NAME": "a field name",
    "STRING": 'a "quoted" text', "QUANTITY": "a number", "MONEY": "an amount like $2.5", "LSQB": "[",
    "RSQB": "]", "LPAR": "(", "RPAR": ")", "COMMA": ",", "SEMICOLON": ";", "EQUALS": "=", "WHERE": "where",
    "WARN": "WARN", "$END": "the end of the rule",
}
_VALUE_START = frozenset({"STRING", "QUANTITY", "MONEY", "LSQB", "LPAR"})
_DIGITS = re.compile(r"-?\d+(?:\.\d+)?")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"?|\'(?:[^\'\\\n]|\\.)*\'?')
_THEN_BEFORE = re.compile(r"\bthen\b", re.IGNORECASE)
_KEYWORD_BEFORE = re.compile(r"\b(for|warn)\s*$", re.IGNORECASE)
_VALUE_WORDS = 'a value like 5, 20%, $2.5, 30m or "running"'


@cache
def _lark() -> Lark:
    grammar = resources.files("computehub_tui.rules").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="basic", maybe_placeholders=False)


class _RuleSyntaxError(Exception):
    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


@dataclass
class _Chunk:
    """One rule's lines: the line that starts it and the indented lines that continue it."""

    first_line: int
    lines: list[str] = field(default_factory=list)
    unreadable: bool = False
    """A line of it is too long or holds a control character (already reported)."""

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class _Report:
    """Errors of a whole file, each with the source line it points into."""

    lines: list[str]
    errors: list[RuleError] = field(default_factory=list)

    def add(self, line: int, column: int, message: str) -> None:
        source = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        self.errors.append(_positioned(Position(line, column), message, source))


def _positioned(position: Position, message: str, source: str) -> RuleError:
    """A RuleError whose source line is safe to print and short enough to read, caret kept under its column."""
    start = max(0, min(position.column - 1 - SOURCE_SHOWN // 2, len(source) - SOURCE_SHOWN))
    shown = source[start:start + SOURCE_SHOWN]
    prefix = "…" if start else ""
    suffix = "…" if start + SOURCE_SHOWN < len(source) else ""
    safe = show_controls(shown.replace("\t", " "))
    caret = len(prefix) + len(show_controls(shown[: max(0, position.column - 1 - start)].replace("\t", " "))) + 1
    return RuleError(position, message, prefix + safe + suffix, caret_column=caret)


def parse_rules(text: str) -> RuleSet:
    """Every rule of ``text`` that is correct, and every error of every rule (an error in one rule does not
    hide the errors of the next)."""
    if len(text) > MAX_FILE_CHARS:
        first = text[:SOURCE_SHOWN].split("\n", 1)[0]
        return RuleSet(errors=(_positioned(Position(1, 1), f"the file is longer than {MAX_FILE_CHARS:,} characters;"
                                           " split it or remove rules", first),))
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    report = _Report(lines)
    rules: list[Rule] = []
    names: dict[str, int] = {}
    for count, chunk in enumerate(_chunks(lines, report)):
        if count == MAX_RULES:
            report.add(chunk.first_line, 1, f"more than {MAX_RULES:,} rules; the rest of the file is not read")
            break
        rule = _parse_chunk(chunk, report)
        if rule is None:
            continue
        if rule.name in names:
            report.add(rule.position.line, rule.position.column,
                       f'duplicate rule name "{rule.name}" (first used on line {names[rule.name]})')
            continue
        names[rule.name] = rule.position.line
        rules.append(rule)
    return RuleSet(tuple(rules), _bounded(report.errors))


def _bounded(errors: list[RuleError]) -> tuple[RuleError, ...]:
    if len(errors) <= MAX_ERRORS:
        return tuple(errors)
    last = errors[MAX_ERRORS - 1]
    summary = RuleError(last.position, f"{len(errors) - MAX_ERRORS + 1:,} more errors not shown", last.source_line,
                        caret_column=last.caret_column)
    return (*errors[: MAX_ERRORS - 1], summary)


def _chunks(lines: list[str], report: _Report) -> Iterator[_Chunk]:
    """Split the file into rules: a line that starts at column 1 starts one, an indented line continues it;
    blank and comment lines belong to no rule unless an indented line follows them. A rule with a line that
    cannot be read is left out whole: read without that line it would be a different rule."""
    current: _Chunk | None = None
    pending: list[str] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            pending.append(line)
            _line_is_clean(number, line, report)
            continue
        continues = line[0].isspace()
        if continues and current is None:
            report.add(number, len(line) - len(line.lstrip()) + 1,
                       "an indented line continues the rule above it, but there is no rule above")
            continue
        if not continues:
            if current is not None and not current.unreadable:
                yield current
            current, pending = _Chunk(number), []
        assert current is not None
        current.lines += [*pending, line]
        pending = []
        if not _line_is_clean(number, line, report):
            current.unreadable = True
    if current is not None and not current.unreadable:
        yield current


def _line_is_clean(number: int, line: str, report: _Report) -> bool:
    if len(line) > MAX_LINE_CHARS:
        report.add(number, MAX_LINE_CHARS + 1, f"the line is longer than {MAX_LINE_CHARS:,} characters")
        return False
    if line.isprintable() or line.replace("\t", " ").isprintable():
        return True
    for column, char in enumerate(line, start=1):
        if char != "\t" and unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            report.add(number, column, f"control character U+{ord(char):04X} is not allowed in a rule file")
            return False
    return True


def _parse_chunk(chunk: _Chunk, report: _Report) -> Rule | None:
    if len(chunk.text) > MAX_RULE_CHARS:
        report.add(chunk.first_line, 1, f"the rule is longer than {MAX_RULE_CHARS:,} characters")
        return None
    try:
        tree = _lark().parse(chunk.text)
    except UnexpectedInput as error:
        line, column, message = _describe_syntax_error(error, chunk.text)
        report.add(chunk.first_line + line - 1, column, message)
        return None
    deep = _too_deep(tree)
    if deep is not None:
        report.add(chunk.first_line + (deep.line or 1) - 1, deep.column or 1,
                   f"conditions nest deeper than {MAX_DEPTH} levels")
        return None
    before = len(report.errors)
    rule = _RuleBuilder(chunk, report).build(tree)
    return rule if len(report.errors) == before else None


# -- syntax errors in words -----------------------------------------------------------------------------------


def _describe_syntax_error(error: UnexpectedInput, text: str) -> tuple[int, int, str]:
    if isinstance(error, UnexpectedCharacters):
        char = text[error.pos_in_stream or 0: (error.pos_in_stream or 0) + 1]
        if char in ("\"", "'"):
            return error.line, error.column, f"this text has no closing {char}"
        if char == "$":
            return error.line, error.column, "expected an amount like $2.5 after $"
        return error.line, error.column, f"unexpected character {show_controls(char)!r}"
    if isinstance(error, UnexpectedToken):
        token = error.token
        line, column = (token.end_line, token.end_column) if token.type == "$END" else (token.line, token.column)
        offset = len(text) if token.type == "$END" else (token.start_pos or 0)
        return line or 1, column or 1, "expected " + _expected_words(set(error.expected), text[:offset])
    return error.line, error.column, "this rule cannot be read"


def _expected_words(expected: set[str], before: str) -> str:
    """What the parser wanted, in words. LALR merges states, so the condition after IF and the one after
    ``where`` share lookaheads: the text before the spot says which side of THEN it is on."""
    before = _STRING.sub('""', before)
    expected -= {"SEMICOLON", "$END"} if _THEN_BEFORE.search(before) is None else {"THEN"}
    previous = _KEYWORD_BEFORE.search(before)
    if expected == {"QUANTITY"} and previous is not None:
        return f"a duration like 30m after {previous.group(1).upper()}"
    if "WARN" in expected:
        return "an action such as stop, restart or notify telegram"
    if expected >= {"NAME", "NOT", "LPAR"}:
        return "a condition such as gpu_util < 5"
    if "OP" in expected:
        return _TERMINAL_WORDS["OP"]
    if expected >= _VALUE_START - {"LPAR"}:
        return _VALUE_WORDS
    if "SEMICOLON" in expected:
        return "; before the next action, or the end of the rule"
    if "THEN" in expected:
        return "AND, OR, FOR or THEN" if "FOR" in expected else "AND, OR or THEN"
    if expected >= {"IF"}:
        return 'IF (or rule "name": IF ...)'
    words = sorted({_TERMINAL_WORDS.get(name, name.lower()) for name in expected})
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _too_deep(tree: Tree[Token]) -> Token | None:
    """The first token of a condition nested deeper than MAX_DEPTH, found without recursion."""
    stack: list[tuple[Tree[Token] | Token, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Token):
            continue
        if node.data in ("negation", "factor"):
            depth += 1
            if depth > MAX_DEPTH:
                return _first_token(node)
        stack.extend((child, depth) for child in node.children)
    return None


# -- from the tree to the model, checking types -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Scalar
    unit: Unit | None
    token: Token


class _RuleBuilder:
    def __init__(self, chunk: _Chunk, report: _Report) -> None:
        self.chunk = chunk
        self.report = report

    def error(self, token: Token, message: str) -> None:
        self.report.add(self.chunk.first_line + (token.line or 1) - 1, token.column or 1, message)

    def position(self, token: Token) -> Position:
        return Position(self.chunk.first_line + (token.line or 1) - 1, token.column or 1)

    def build(self, tree: Tree[Token]) -> Rule | None:
        children = tree.children
        name_tree = children[0] if isinstance(children[0], Tree) and children[0].data == "rule_name" else None
        first = _first_token(tree)
        name = f"line-{self.chunk.first_line}"
        if name_tree is not None:
            name_token = _tokens(name_tree, "STRING")[0]
            name = self.text(name_token)
            if not name:
                self.error(name_token, "a rule name cannot be empty")
        condition_tree, actions_tree = [child for child in children if isinstance(child, Tree)][-2:]
        condition = self.condition(condition_tree)
        account_scope = condition is not None and _reads_only_account(condition)
        actions = self.actions(actions_tree, account_scope)
        if condition is None or actions is None:
            return None
        return Rule(name=name, condition=condition, actions=actions, position=self.position(first),
                    text=self.chunk.text, account_scope=account_scope,
                    may_act_on_fleet=any(action.kind is ActionKind.STOP_ALL for action in actions))

    # conditions

    def condition(self, node: Tree[Token] | Token) -> Condition | None:
        assert isinstance(node, Tree)
        parts = [child for child in node.children if isinstance(child, Tree)]
        if node.data == "comparison":
            return self.comparison(node)
        if node.data == "factor":
            return self.condition(parts[0])
        built = [self.condition(part) for part in parts]
        if any(part is None for part in built):
            return None
        conditions = tuple(part for part in built if part is not None)
        if node.data == "negation":
            return Negation(conditions[0])
        return AllOf(conditions) if node.data == "all_of" else AnyOf(conditions)

    def comparison(self, node: Tree[Token]) -> Comparison | None:
        name, operator_tree, value_node, *window = node.children
        assert isinstance(name, Token) and isinstance(operator_tree, Tree)
        op = " ".join(str(token).lower() for token in operator_tree.children)
        spec = FIELDS.get(name.lower())
        if spec is None:
            self.error(name, _unknown("field", name, tuple(FIELDS)))
            return None
        value = self.comparison_value(spec.name, op, _first_token(operator_tree), value_node)
        window_s = self.window(spec.name, window[1]) if window else None
        if value is None or (window and window_s is None):
            return None
        return Comparison(spec.name, op, value, self.position(name), window_s)

    def comparison_value(self, field_name: str, op: str, op_token: Token,
                         node: Tree[Token] | Token) -> Scalar | tuple[Scalar, ...] | None:
        spec = FIELDS[field_name]
        allowed_ops = NUMBER_OPS if spec.kind is Kind.NUMBER else TEXT_OPS
        if op not in allowed_ops:
            what = "~ matches text patterns" if op == "~" else f"{op} compares numbers"
            kind = "a number" if spec.kind is Kind.NUMBER else "text"
            self.error(op_token, f"{what}, but {field_name} is {kind}; use {', '.join(allowed_ops)}")
            return None
        is_list = isinstance(node, Tree) and node.data == "list"
        if op in ("in", "not in") and not is_list:
            self.error(op_token, f'{op} needs a list, e.g. {field_name} in ["a", "b"]')
            return None
        if op not in ("in", "not in") and is_list:
            self.error(op_token, f"a list goes with in or not in, not {op}")
            return None
        if is_list:
            assert isinstance(node, Tree)
            tokens = [child for child in node.children if isinstance(child, Token)
                      and child.type in ("STRING", "QUANTITY", "MONEY")]
            if not tokens:
                self.error(op_token, "the list is empty")
                return None
            values = [self.field_value(field_name, op, token) for token in tokens]
            return None if any(value is None for value in values) else tuple(v for v in values if v is not None)
        assert isinstance(node, Token)
        return self.field_value(field_name, op, node)

    def field_value(self, field_name: str, op: str, token: Token) -> Scalar | None:
        spec = FIELDS[field_name]
        literal = self.literal(token)
        if literal is None:
            return None
        if spec.kind is Kind.TEXT:
            if not isinstance(literal.value, str):
                self.error(token, f'{field_name} is text; write the value in quotes, e.g. {field_name} == "{token}"')
                return None
            return self.enum_value(spec.name, literal.value, token, op == "~")
        if isinstance(literal.value, str):
            self.error(token, f"{field_name} is a number; compare it with {_EXAMPLES.get(spec.unit, 'a number')}, "
                              "not text")
            return None
        if literal.unit not in _ALLOWED_LITERAL_UNITS.get(spec.unit, (None,)):
            measured = _EXAMPLES.get(spec.unit, "a plain number")
            self.error(token, f"{token} is {_LITERAL_WORDS[literal.unit] if literal.unit else 'a plain number'}, "
                              f"but {field_name} takes {measured}")
            return None
        return literal.value

    def enum_value(self, field_name: str, value: str, token: Token, is_glob: bool) -> str | None:
        allowed = FIELDS[field_name].allowed
        if not allowed or is_glob or value.lower() in allowed:
            return value.lower() if allowed and not is_glob else value
        hint = nearest(value, allowed)
        self.error(token, f'"{value}" is not a {field_name}' + (f'; did you mean "{hint}"?' if hint else "")
                   + f" ({', '.join(allowed)})")
        return None

    def window(self, field_name: str, token: Token | Tree[Token]) -> float | None:
        assert isinstance(token, Token)
        spec = FIELDS[field_name]
        literal = self.literal(token)
        if literal is None:
            return None
        if literal.unit is not Unit.SECONDS:
            self.error(token, "expected a duration like 30m after FOR")
            return None
        if spec.scope is Scope.ACCOUNT or not spec.windowed:
            self.error(token, f"FOR needs a field sampled per instance; {field_name} has no samples to look back on")
            return None
        return self.duration(token, float(literal.value), "FOR")

    def duration(self, token: Token, seconds: float, keyword: str) -> float | None:
        if not 0 < seconds <= MAX_WINDOW_S:
            self.error(token, f"{keyword} takes a duration from 1s to 7d")
            return None
        return seconds

    def literal(self, token: Token) -> _Literal | None:
        if token.type == "STRING":
            return _Literal(self.text(token), None, token)
        if token.type == "MONEY":
            return self.number(token, token[1:], Unit.DOLLARS)
        digits = _DIGITS.match(token).group(0)  # type: ignore[union-attr]
        suffix = token[len(digits):].lower()
        if not suffix:
            return self.number(token, digits, None)
        if suffix in UNIT_SECONDS:
            literal = self.number(token, digits, Unit.SECONDS)
            return None if literal is None else _Literal(float(literal.value) * UNIT_SECONDS[suffix], Unit.SECONDS,
                                                         token)
        if suffix in _UNIT_WORDS:
            return self.number(token, digits, _UNIT_WORDS[suffix])
        self.error(token, f"unknown unit '{suffix}' in {token}; use %, GB or a duration (s, m, h, d, w)")
        return None

    def number(self, token: Token, digits: str, unit: Unit | None) -> _Literal | None:
        value = float(digits)
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            self.error(token, f"{token} is out of range")
            return None
        return _Literal(value, unit, token)

    def text(self, token: Token) -> str:
        raw = token[1:-1]
        unescaped = raw.replace("\\\\", "\x00").replace(f"\\{token[0]}", token[0]).replace("\x00", "\\")
        if len(unescaped) > MAX_TEXT_CHARS:
            self.error(token, f"text longer than {MAX_TEXT_CHARS} characters")
        return clean_text(unescaped, MAX_TEXT_CHARS)

    # actions

    def actions(self, node: Tree[Token], account_scope: bool) -> tuple[Action, ...] | None:
        built = [self.action(item, account_scope) for item in node.children if isinstance(item, Tree)]
        if any(action is None for action in built):
            return None
        return tuple(action for action in built if action is not None)

    def action(self, item: Tree[Token], account_scope: bool) -> Action | None:
        action_tree = item.children[-1]
        assert isinstance(action_tree, Tree)
        warn_s = None
        if len(item.children) == 3:
            warn_token = item.children[1]
            assert isinstance(warn_token, Token)
            literal = self.literal(warn_token)
            if literal is None:
                return None
            if literal.unit is not Unit.SECONDS:
                self.error(warn_token, "expected a duration like 30m after WARN")
                return None
            warn_s = self.duration(warn_token, float(literal.value), "WARN")
            if warn_s is None:
                return None
        name, *rest = action_tree.children
        assert isinstance(name, Token)
        try:
            kind = ActionKind(name.lower())
        except ValueError:
            self.error(name, _unknown("action", name, tuple(kind.value for kind in ActionKind)))
            return None
        if account_scope and kind in PER_INSTANCE_ACTIONS:
            self.error(name, f"{kind.value} acts on one instance, but this condition reads only account fields;"
                             " use stop_all or notify")
            return None
        return self.action_parts(kind, name, rest, warn_s)

    def action_parts(self, kind: ActionKind, name: Token, rest: list[Tree[Token] | Token],
                     warn_s: float | None) -> Action | None:
        arguments = next((part for part in rest if isinstance(part, Tree) and part.data == "arguments"), None)
        words = [part for part in rest if isinstance(part, Token) and part.type == "NAME"]
        strings = [part for part in rest if isinstance(part, Token) and part.type == "STRING"]
        where_index = next((i for i, part in enumerate(rest) if isinstance(part, Token) and part.type == "WHERE"),
                           None)
        allowed = {ActionKind.MIGRATE: {"arguments"}, ActionKind.LABEL: {"string"},
                   ActionKind.NOTIFY: {"word", "string"}, ActionKind.STOP_ALL: {"where"}}.get(kind, set())
        given = {"arguments": arguments, "word": words[0] if words else None,
                 "string": strings[0] if strings else None,
                 "where": rest[where_index] if where_index is not None else None}
        for part, token in given.items():
            if token is not None and part not in allowed:
                self.error(_first_token(token), f"{kind.value} {_TAKES.get(kind, 'takes nothing after it')}")
                return None
        args: dict[str, Scalar] = {}
        where: Condition | None = None
        if arguments is not None and not self.migrate_arguments(arguments, args):
            return None
        if kind is ActionKind.LABEL:
            if not strings:
                self.error(name, 'label needs the text to set, e.g. label "idle"')
                return None
            args["text"] = self.text(strings[0])
        if kind is ActionKind.NOTIFY and not self.notify_arguments(name, words, strings, args):
            return None
        if where_index is not None:
            where_tree = rest[where_index + 1]
            where = self.condition(where_tree)
            if where is None:
                return None
        return Action(kind, self.position(name), args, where, warn_s)

    def migrate_arguments(self, arguments: Tree[Token], args: dict[str, Scalar]) -> bool:
        for argument in arguments.children:
            if not isinstance(argument, Tree):
                continue
            key, _, value = argument.children
            assert isinstance(key, Token) and isinstance(value, Token)
            if key.lower() not in MIGRATE_ARGUMENTS:
                self.error(key, _unknown("migrate argument", key, MIGRATE_ARGUMENTS))
                return False
            if key.lower() in args:
                self.error(key, f"{key} is given twice")
                return False
            literal = self.literal(value)
            if literal is None:
                return False
            wants_number = key.lower() == "max_price"
            if wants_number != isinstance(literal.value, float) or literal.unit not in (None, Unit.DOLLARS):
                self.error(value, "max_price takes a price per hour such as 1.8 or $1.8" if wants_number
                           else f'{key} takes text in quotes, e.g. {key}="runpod"')
                return False
            if key.lower() == "provider" and str(literal.value).lower() not in PROVIDER_NAMES:
                self.error(value, _unknown("provider", str(literal.value), PROVIDER_NAMES))
                return False
            args[key.lower()] = literal.value.lower() if key.lower() == "provider" else literal.value  # type: ignore[union-attr]
        return True

    def notify_arguments(self, name: Token, words: list[Token], strings: list[Token], args: dict[str, Scalar]) -> bool:
        if not words:
            self.error(name, f"notify needs a channel: {', '.join(CHANNELS)}")
            return False
        channel = words[0].lower()
        if channel not in CHANNELS:
            self.error(words[0], _unknown("channel", words[0], CHANNELS))
            return False
        args["channel"] = channel
        if strings:
            args["template"] = self.text(strings[0])
        return True


_TAKES = {
    ActionKind.MIGRATE: 'takes only (provider="…", max_price=…, gpu="…")',
    ActionKind.LABEL: 'takes only the text, e.g. label "idle"',
    ActionKind.NOTIFY: 'takes a channel and an optional "template"',
    ActionKind.STOP_ALL: "takes only an optional where <condition>",
}


def _unknown(what: str, name: str, choices: tuple[str, ...]) -> str:
    hint = nearest(name, choices)
    return f"unknown {what} '{name}'" + (f"; did you mean '{hint}'?" if hint else f" ({', '.join(choices)})")


def _tokens(tree: Tree[Token], kind: str) -> list[Token]:
    return [token for token in tree.scan_values(lambda value: isinstance(value, Token) and value.type == kind)]


def _first_token(node: Tree[Token] | Token) -> Token:
    """The leftmost token under ``node``, found without recursion (the tree may be deeper than the stack)."""
    while isinstance(node, Tree):
        node = node.children[0]
    return node


def _reads_only_account(condition: Condition) -> bool:
    if isinstance(condition, Comparison):
        return FIELDS[condition.field].scope is Scope.ACCOUNT
    if isinstance(condition, Negation):
        return _reads_only_account(condition.part)
    return all(_reads_only_account(part) for part in condition.parts)
