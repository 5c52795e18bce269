"""Scenario files: ordered rules that choose the outcome of each request (first match wins).

    [[rule]]
    name = "first attempt times out, the retry succeeds"
    when = { state = "start", action = "debit" }
    outcome = "failure:timeout"
    then = "retry"

    [[rule]]
    when = { state = "retry" }
    outcome = "success"
    then = "start"

Predicates (all must hold): amount ("12.34" or "10-20", currency units), cents
(last two digits of the amount in minor units), last_digits, currency, action,
check, pos, ticket (the CK asked for, or "none"), tags, rank (the Nth request
of the terminal), every (every Nth request), share (that fraction of requests,
at random), state. A rule gives
``outcome`` (text or table, see outcomes.py) or ``outcomes`` (a sequence,
``repeat = "cycle"`` or ``"once"``), and may change the state with ``then``.
"""

from __future__ import annotations

import random
import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from . import outcomes
from .amounts import AmountError, currency_from_code, currency_from_number, currency_number, in_currency_units
from .codes import ACTION_CODES, is_check
from .outcomes import Outcome

START = "start"
PREDICATES = ("amount", "cents", "last_digits", "currency", "action", "check", "pos", "ticket", "tags", "rank",
              "every", "share", "state")  # fmt: skip
NO_TICKET = "none"  # the ticket predicate of a request without CK
RULE_KEYS = {"name", "when", "outcome", "outcomes", "repeat", "then"}


class ScenarioError(ValueError):
    pass


@dataclass
class Rule:
    name: str
    when: dict[str, object]
    sequence: list[Outcome]
    cycle: bool = True
    then: str | None = None
    used: int = field(default=0)

    def exhausted(self) -> bool:
        return not self.cycle and self.used >= len(self.sequence)

    def take(self) -> Outcome:
        outcome = self.sequence[self.used % len(self.sequence)]
        self.used += 1
        return outcome


@dataclass
class Scenario:
    rules: list[Rule]
    source: str = "<rules>"
    state: str = START
    rank: int = 0  # requests seen
    rng: random.Random = field(default_factory=random.Random)

    def choose(self, fields: dict[str, str]) -> tuple[Outcome, Rule] | None:
        """The outcome of the first rule that matches this request (the rank counted already), or None."""
        for rule in self.rules:
            if not rule.exhausted() and self._matches(rule.when, fields):
                outcome = rule.take()
                if rule.then:
                    self.state = rule.then
                return outcome, rule
        return None

    def reset(self) -> None:
        self.state, self.rank = START, 0
        for rule in self.rules:
            rule.used = 0

    def _matches(self, when: dict[str, object], fields: dict[str, str]) -> bool:
        return all(_PREDICATES[key](self, expected, fields) for key, expected in when.items())


def _minor_units(fields: dict[str, str]) -> int | None:
    amount = fields.get("CB", "")
    return int(amount) if amount.isdigit() else None


def _amount(scenario: Scenario, expected: tuple[Decimal, Decimal], fields: dict[str, str]) -> bool:
    units, currency = _minor_units(fields), currency_from_number(fields.get("CE", ""))
    if units is None or currency is None or currency.exponent is None:
        return False
    low, high = expected
    return low <= in_currency_units(units, currency) <= high


def _share(scenario: Scenario, expected: float, fields: dict[str, str]) -> bool:
    return scenario.rng.random() < expected


_PREDICATES = {
    "amount": _amount,
    "cents": lambda s, expected, f: _minor_units(f) is not None and _minor_units(f) % 100 in expected,
    "last_digits": lambda s, expected, f: f.get("CB", "").endswith(expected),
    "currency": lambda s, expected, f: f.get("CE") in expected,
    "action": lambda s, expected, f: f.get("CD") in expected,
    "check": lambda s, expected, f: is_check(f) == expected,
    "pos": lambda s, expected, f: f.get("CA") in expected,
    "ticket": lambda s, expected, f: f.get("CK", NO_TICKET) in expected,
    "tags": lambda s, expected, f: all(f.get(tag) == value for tag, value in expected.items()),
    "rank": lambda s, expected, f: s.rank in expected,
    "every": lambda s, expected, f: s.rank % expected == 0,
    "share": _share,
    "state": lambda s, expected, f: s.state in expected,
}


def load(path: str | Path, seed: int | None = None) -> Scenario:
    """Read and check a scenario file; errors name the file, the line and the reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read: {error.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path}: {error}") from None
    rule_lines = [n for n, line in enumerate(text.splitlines(), 1) if re.match(r"\s*\[\[\s*rule\s*\]\]", line)]
    unknown = set(data) - {"rule"}
    if unknown:
        raise ScenarioError(f"{path}:1: unknown top-level key {', '.join(sorted(unknown))} (rules are [[rule]])")
    rules = []
    for index, table in enumerate(data.get("rule", [])):
        line = rule_lines[index] if index < len(rule_lines) else 1
        try:
            rules.append(build_rule(table, index + 1))
        except (ScenarioError, outcomes.OutcomeError) as error:
            raise ScenarioError(f"{path}:{line}: rule {index + 1}: {error}") from None
    return Scenario(rules, str(path), rng=random.Random(seed))


def build_rule(table: dict[str, object], number: int) -> Rule:
    unknown = set(table) - RULE_KEYS
    if unknown:
        raise ScenarioError(f"unknown key {', '.join(sorted(unknown))} (known: {', '.join(sorted(RULE_KEYS))})")
    if ("outcome" in table) == ("outcomes" in table):
        raise ScenarioError("give either outcome or outcomes")
    given = [table["outcome"]] if "outcome" in table else table["outcomes"]
    if not isinstance(given, list) or not given:
        raise ScenarioError("outcomes must be a non-empty list")
    repeat = table.get("repeat", "cycle")
    if repeat not in ("cycle", "once"):
        raise ScenarioError(f"repeat must be cycle or once, not {repeat!r}")
    when = table.get("when", {})
    if not isinstance(when, dict):
        raise ScenarioError("when must be a table of predicates")
    then = table.get("then")
    if then is not None and not isinstance(then, str):
        raise ScenarioError("then must be a state name")
    return Rule(
        name=str(table.get("name", f"rule {number}")),
        when={key: _predicate(key, value) for key, value in when.items()},
        sequence=[outcomes.coerce(item) for item in given],
        cycle=repeat == "cycle",
        then=then,
    )


def _listed(value: object) -> list:
    return value if isinstance(value, list) else [value]


def _predicate(key: str, value: object) -> object:
    """The predicate's value, checked and normalised for matching."""
    if key not in _PREDICATES:
        raise ScenarioError(f"unknown predicate {key!r} (known: {', '.join(PREDICATES)})")
    try:
        if key == "amount":
            low, dash, high = str(value).partition("-")
            upper = Decimal(high) if high else Decimal("Infinity") if dash else Decimal(low)  # "100-": open-ended
            bounds = Decimal(low), upper
            if bounds[1] < bounds[0]:
                raise ScenarioError(f"amount range {value!r} ends before it starts")
            return bounds
        if key == "cents":
            cents = [int(v) for v in _listed(value)]
            if any(not 0 <= c <= 99 for c in cents):
                raise ScenarioError("cents are 0 to 99")
            return frozenset(cents)
        if key == "last_digits":
            if not str(value).isdigit():
                raise ScenarioError("last_digits must be digits")
            return str(value)
        if key == "currency":
            return frozenset(currency_number(currency_from_code(str(v))) for v in _listed(value))
        if key == "action":
            names = [str(v).lower() for v in _listed(value)]
            unknown = [n for n in names if n not in ACTION_CODES]
            if unknown:
                raise ScenarioError(f"unknown action {unknown[0]!r} (known: {', '.join(ACTION_CODES)})")
            return frozenset(ACTION_CODES[n] for n in names)
        if key == "check":
            if not isinstance(value, bool):
                raise ScenarioError("check is true or false")
            return value
        if key == "pos":
            return frozenset(str(v).zfill(2) for v in _listed(value))
        if key == "ticket":
            tickets = [str(v).lower() for v in _listed(value)]
            if any(t != NO_TICKET and not (len(t) == 3 and t.isdigit()) for t in tickets):
                raise ScenarioError(f'ticket is a CK value such as "100", or "{NO_TICKET}" for a request without CK')
            return frozenset(tickets)
        if key == "tags":
            if not isinstance(value, dict):
                raise ScenarioError("tags is a table: { CF = 'ORDER-1' }")
            return {str(tag): str(v) for tag, v in value.items()}
        if key == "rank":
            return frozenset(int(v) for v in _listed(value))
        if key == "every":
            number = int(value)
            if number < 1:
                raise ScenarioError("every must be at least 1")
            return number
        if key == "share":
            share = float(value)
            if not 0 <= share <= 1:
                raise ScenarioError("share is between 0 and 1")
            return share
        return frozenset(str(v) for v in _listed(value))  # state
    except (InvalidOperation, ValueError, TypeError, AmountError) as error:
        if isinstance(error, ScenarioError):
            raise
        raise ScenarioError(f"bad value for {key}: {value!r} ({error})") from None


# --magic-amounts: the last two digits of the amount choose the outcome. Prices rarely end in 61..73.
MAGIC_AMOUNTS = {
    61: "failure:refused",
    62: "failure:forbidden",
    63: "failure:abandon",
    64: "failure:cardholder-abandon",
    65: "failure:timeout",
    66: "silent",
    67: "close",
    68: "reset",
    69: "answer fragments=3 pause=0.2",
    71: "answer delay=10",
    72: "garbage",
    73: "truncated",
}


def build(path: str | Path | None, seed: int | None, magic: bool) -> Scenario | None:
    """The rules of a terminal: those of the file (if any), then the magic amounts (if asked); None if neither."""
    if path is None and not magic:
        return None
    scenario = load(path, seed) if path is not None else Scenario([], rng=random.Random(seed))
    if magic:
        scenario.rules += magic_amounts()
    return scenario


def magic_amounts() -> list[Rule]:
    return [
        Rule(name=f"magic amount .{cents}", when={"cents": frozenset({cents})}, sequence=[outcomes.parse(text)])
        for cents, text in MAGIC_AMOUNTS.items()
    ]
