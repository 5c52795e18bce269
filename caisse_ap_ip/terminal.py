"""What a payment terminal answers to a request: pure behaviour, no I/O (the clock is injected)."""

from __future__ import annotations

import dataclasses
import functools
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from . import codes, tags, tickets
from .amounts import PAYABLE_NUMBERS, currency_from_number, encode_amount, format_ticket_amount
from .cards import PAYMENT_TYPES, Card, pan
from .codes import (
    ACKNOWLEDGED,
    DEFAULT_VERSION,
    FAILURE,
    FORMAT_ERROR,
    NOT_COMPLETED,
    OPERATOR_ABANDON,
    REFUSED,
    SELECTION_ERROR,
    SUCCESS,
    UNKNOWN_ACTION,
    UNSUPPORTED_CURRENCY,
    failure_code,
    is_payment,
    mandatory_tags,
)
from .outcomes import ANSWERING, FAILING, Outcome
from .outcomes import DEFAULT as DEFAULT_OUTCOME
from .profiles import PROFILES, Profile
from .protocol import FrameError, Message, encode
from .scenarios import Scenario

PARTIAL_ACTIONS = frozenset({codes.DEBIT.code, codes.DEFERRED.code})  # the debits: what a bank may authorise in part
PADDED_WIDTH = 12  # CB of the outcome padded-amount: as wide as CB goes
# what follows the AF code in an extended-af answer (docs/protocol.md §8.3): CB2A response code and message
CB2A_EXTENSIONS = {
    codes.REFUSED: ("05", "TRANSACTION REFUSEE"),
    codes.FAILURE_TYPES["forbidden"]: ("57", "OPERATION INTERDITE"),
    codes.INPUT_TIMEOUT: ("68", "DELAI DEPASSE"),
    codes.OPERATOR_ABANDON: ("  ", "ABANDON OPERATEUR"),
    codes.FAILURE_TYPES["cardholder-abandon"]: ("  ", "ABANDON PORTEUR"),
}


def cb2a_extension(af: str) -> str:
    """What an extended-af answer puts after its code: a response code and a message, in the CB2A layout."""
    response, message = CB2A_EXTENSIONS.get(af, ("", codes.STATUS_COMPLEMENTS.get(af, "").upper()))
    return codes.af_extension(response_code=response, message=message)


IMMEDIATE_MODES = {
    "ack": "AE=11 at once (the original simulator)",
    "accept": "AE=10 at once: request accepted, its result comes with a transaction status (CD=T)",
    "busy": "AE=01 AF=07 at once: the terminal is busy",
}


@dataclass
class TerminalSettings:
    failure: bool = False
    failure_type: str = codes.DEFAULT_FAILURE  # a failure name or an AF code
    duration: float = 3.0
    payment_type: str = "cbcontact"
    seller_contract: str = "424242"
    profile: str = "original"
    currencies: frozenset[str] | None = None  # ISO 4217 numbers accepted; None: every currency
    strict: bool = False
    immediate: str = "ack"
    terminal_id: str = "330000000001"  # CJ of an identification answer
    merchant_name: str = "BOUTIQUE DEMO"
    merchant_town: str = "75001 PARIS"
    outcome: Outcome = DEFAULT_OUTCOME  # what happens to requests that nothing else decides (--outcome)


@dataclass(frozen=True, slots=True)
class Plan:
    """What will happen to a request, decided once when it arrives."""

    outcome: Outcome
    delay: float  # seconds before the terminal acts
    rule: str | None = None  # the scenario rule that chose the outcome
    decided_by: str | None = None  # who decided an ``ask`` (keyboard, web, api, time-out)

    def __str__(self) -> str:
        """The outcome as the journal says it: 'failure:04 (asked, decided by web)'."""
        return str(self.outcome) + self.decision

    @property
    def decision(self) -> str:
        """' (asked, decided by web)' for an ``ask`` once decided, else nothing."""
        return f" (asked, decided by {self.decided_by})" if self.decided_by else ""


@dataclass(frozen=True, slots=True)
class Reply:
    records: Message
    note: str | None = None  # what the terminal shows or prints, for the log
    wire: bytes | None = None  # the bytes to send when they are more than ``records`` (a replayed answer)

    @property
    def data(self) -> bytes:
        """The bytes to send."""
        return encode(self.records) if self.wire is None else self.wire


@dataclass(slots=True)
class Transaction:
    """A payment as the terminal remembers it: for cancellations, duplicata and status requests."""

    action: str
    amount: int
    currency: str
    reference: str | None
    answer: dict[str, str]
    ticket: Callable[[], tickets.TicketData]  # built when printed: most payments never print one
    cancelled: bool = False


@dataclass
class Terminal:
    settings: TerminalSettings = field(default_factory=TerminalSettings)
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], datetime] = datetime.now
    history: deque[Transaction] = field(default_factory=lambda: deque(maxlen=1000))
    queued: deque[Outcome] = field(default_factory=deque)  # outcomes of the next requests, first first
    scenario: Scenario | None = None  # rules from --scenario and --magic-amounts

    @property
    def profile(self) -> Profile:
        return PROFILES[self.settings.profile]

    # -- the verbs of the control API and the Python API: nothing outside reaches into the attributes

    def queue(self, outcomes: Iterable[Outcome]) -> None:
        """Outcomes for the next requests, in order, before the scenario and --outcome."""
        self.queued.extend(outcomes)

    def queued_outcomes(self) -> list[Outcome]:
        return list(self.queued)

    def clear_queue(self) -> None:
        self.queued.clear()

    def configure(self, **changes: object) -> None:
        """Change settings (values already validated); an unknown name raises AttributeError and changes nothing."""
        unknown = [name for name in changes if not hasattr(self.settings, name)]
        if unknown:
            raise AttributeError(f"no terminal setting {', '.join(unknown)}")
        for name, value in changes.items():
            setattr(self.settings, name, value)

    def replace_scenario(self, scenario: Scenario | None) -> None:
        self.scenario = scenario

    def reset(self, settings: TerminalSettings) -> None:
        """Back to these settings, with nothing queued, no remembered payment and the scenario at its start."""
        self.settings = dataclasses.replace(settings)
        self.queued.clear()
        self.history.clear()
        if self.scenario:
            self.scenario.reset()

    def last_ticket(self) -> str | None:
        """The customer ticket of the last payment, its lines as printed; None before any payment."""
        if not self.history:
            return None
        return "\n".join(tickets.lines(self.history[-1].ticket(), tickets.CUSTOMER))

    def is_complete(self, request: Message) -> bool:
        """Whether a request already holds every tag its action needs."""
        fields = dict(request)
        return "CD" in fields and mandatory_tags(fields["CD"]).issubset(fields)

    def plan(self, request: Message) -> Plan:
        """Decide what happens to a request and when; call once per request (outcomes may be consumed)."""
        outcome, rule = self.choose_outcome(request)
        if outcome.kind == "ask" and not self._takes_time(request):
            outcome = DEFAULT_OUTCOME  # errors, immediate answers and other actions need no customer
        if outcome.kind == "ask":
            return Plan(outcome, 0.0, rule)  # the person takes the time; the decision's modifiers come after
        if outcome.delay is not None:
            return Plan(outcome, outcome.delay_seconds(self.rng, 0.0), rule)
        if outcome.kind not in ANSWERING or outcome.kind == "immediate" or not self.settings.duration:
            return Plan(outcome, 0.0, rule)
        takes_time = self._takes_time(request, pending=outcome.kind == "pending")
        return Plan(outcome, self.settings.duration if takes_time else 0.0, rule)

    def decided(self, plan: Plan, decision: Outcome, by: str) -> Plan:
        """What an ``ask`` plan becomes once a person decided: the decision, with the ask's own modifiers where the
        decision has none (``ask fragments=3``: whatever is decided goes out in 3 pieces)."""
        asked = plan.outcome
        if decision.delay is None and asked.delay is not None:
            decision = dataclasses.replace(decision, delay=asked.delay)
        if decision.fragments == 1 and asked.fragments > 1:
            decision = dataclasses.replace(decision, fragments=asked.fragments, pause=asked.pause)
        return Plan(decision, decision.delay_seconds(self.rng, 0.0), plan.rule, by)

    def choose_outcome(self, request: Message) -> tuple[Outcome, str | None]:
        """Outcomes queued for the next requests first, then the scenario's rules, then --outcome."""
        if self.scenario:
            self.scenario.rank += 1  # every request counts for rank and every, whatever decides it
        if self.queued:
            return self.queued.popleft(), "queued"
        chosen = self.scenario.choose(dict(request)) if self.scenario else None
        if chosen:
            return chosen[0], chosen[1].name
        return self.settings.outcome, None

    def _takes_time(self, request: Message, pending: bool = False) -> bool:
        """A payment the customer must complete (not answered at once as an error or, unless pending, as an
        immediate answer)."""
        fields = dict(request)
        valid = self._request_error(request, fields) is None
        return valid and is_payment(fields.get("CD")) and (pending or fields.get("BA") != codes.IMMEDIATELY)

    def respond(self, request: Message, outcome: Outcome = DEFAULT_OUTCOME) -> Reply:
        if outcome.recording is not None:  # replay: the real terminal's answer, echoing this request
            records, wire = outcome.recording.answer_to(request, self.echo)
            return Reply(records, wire=wire)
        fields = dict(request)
        answer = self._echo(fields)
        error = self._request_error(request, fields)
        if error:
            return Reply(_finish(answer, AE=FAILURE, AF=error[0]), error[1])
        action = fields["CD"]
        if outcome.kind == "immediate":
            return Reply(_finish(answer, AE=ACKNOWLEDGED))
        if is_payment(action):
            return self._payment(fields, answer, outcome)
        return _OTHER_ACTIONS[action](self, fields, answer)

    def reject(self, request: Message) -> Message:
        """The answer to a request that could not be read whole: echo, AE=01, AF=09."""
        return _finish(self._echo(dict(request)), AE=FAILURE, AF=FORMAT_ERROR)

    def interim(self, request: Message) -> Message | None:
        """The 'request taken into account' (AE=11) that a pending transaction answers before its result;
        None for a request the terminal refuses at once."""
        fields = dict(request)
        if self._request_error(request, fields):
            return None
        return _finish(self._echo(fields), AE=ACKNOWLEDGED)

    def busy(self, request: Message) -> Message:
        """The answer of a terminal busy with another POS's transaction: AE=01 AF=07 (not completed)."""
        return _finish(self._echo(dict(request)), AE=FAILURE, AF=NOT_COMPLETED)

    def echo(self, request: Message) -> dict[str, str]:
        """The records of ``request`` that an answer repeats, CZ first."""
        return self._echo(dict(request))

    def _echo(self, fields: dict[str, str]) -> dict[str, str]:
        """What every answer starts with: the request's records, CZ first (the profile's, if it has one)."""
        answer = {"CZ": self.profile.answer_version or fields.get("CZ", DEFAULT_VERSION), **fields}
        if self.profile.answer_version:
            answer["CZ"] = self.profile.answer_version
        answer.pop("CK", None)  # answers carry CK only inside ZT,
        answer.pop("ZT", None)  # and ZT only for the terminal's own tickets;
        for tag in tags.TERMINAL_ONLY.intersection(answer):  # what only a terminal says is never echoed
            del answer[tag]
        if not self.profile.echoes_private_data:
            answer.pop("CF", None)
        return answer

    def _request_error(self, request: Message, fields: dict[str, str]) -> tuple[str, str] | None:
        """(AF, reason) for a request the terminal cannot process, checked in the order a terminal would."""
        if not request or request[0][0] != "CZ":
            return FORMAT_ERROR, "CZ is not the first record"
        if len(fields) < len(request):
            return FORMAT_ERROR, "a tag appears twice"
        action = fields.get("CD")
        if action is None:
            return FORMAT_ERROR, "CD is missing"
        size_problem = tags.value_problem("CD", action)
        if size_problem:  # a malformed CD is a format error before it is an unknown action
            return FORMAT_ERROR, size_problem
        if action not in self.profile.actions:
            return UNKNOWN_ACTION, f"action {action!r} is not supported"
        missing = mandatory_tags(action).difference(fields)
        if missing:
            return FORMAT_ERROR, f"missing {', '.join(sorted(missing))}"
        for tag, value in request:
            problem = tags.request_value_problem(tag, value, self.settings.strict)
            if problem:
                return FORMAT_ERROR, problem
        rejected = self.profile.rejected_tags.intersection(fields)
        if rejected:
            return FORMAT_ERROR, f"{', '.join(sorted(rejected))} refused by this terminal's software"
        if "CC" in fields and fields["CC"] not in codes.APPLICATIONS:
            return SELECTION_ERROR, f"no payment application {fields['CC']!r}"
        if is_payment(action) and not self._accepts_currency(fields["CE"]):
            return UNSUPPORTED_CURRENCY, f"currency {fields['CE']} not accepted"
        return None

    def _accepts_currency(self, number: str) -> bool:
        accepted = self.settings.currencies
        return number in PAYABLE_NUMBERS and (accepted is None or number in accepted)

    # -- payments: debit, refund, cancellation, deferred debit

    def _payment(self, request: dict[str, str], answer: dict[str, str], outcome: Outcome) -> Reply:
        immediate = request.get("BA") == codes.IMMEDIATELY and outcome.kind != "pending"
        if immediate and self.settings.immediate == "busy":
            return Reply(_finish(answer, AE=FAILURE, AF=NOT_COMPLETED), "busy")
        final, transaction = self._perform(request, dict(answer), outcome)
        self.history.append(transaction)
        if immediate:
            status = ACKNOWLEDGED if self.settings.immediate == "ack" else SUCCESS
            return Reply(_finish(answer, AE=status))
        return Reply(list(final.items()))

    def _perform(
        self, request: dict[str, str], answer: dict[str, str], outcome: Outcome
    ) -> tuple[dict[str, str], Transaction]:
        card = PAYMENT_TYPES[outcome.payment_type or self.settings.payment_type]
        profile, now = self.profile, self.clock()
        failure, original = self._decide(request, outcome)
        authorised = int(request["CB"])
        if failure:
            self._fail(answer, request, failure, card, now, outcome.kind == "extended-af")
        else:
            authorised = self._granted(request, outcome)
            self._succeed(answer, request, original, card, now)
            answer["CB"] = encode_amount(authorised) if authorised != int(request["CB"]) else answer["CB"]
        width = PADDED_WIDTH if outcome.kind == "padded-amount" else profile.amount_width
        if width and answer["CB"] != profile.abandon_amount:
            answer["CB"] = answer["CB"].zfill(width)
        ticket = functools.partial(self._ticket_data, request, answer, card, failure, now, authorised)
        if request.get("CK", "0")[0] == codes.TICKETS_RETURNED:
            answer["ZT"] = tickets.zt_value(ticket(), request["CK"])
        transaction = Transaction(request["CD"], authorised, request["CE"], request.get("CH"), answer, ticket)
        return answer, transaction

    def _decide(self, request: dict[str, str], outcome: Outcome) -> tuple[str | None, Transaction | None]:
        """(AF of the failure or None, the debit a cancellation cancels or None), as the outcome and settings say."""
        is_check, cancel = codes.is_check(request), request["CD"] == codes.CANCEL.code
        if outcome.kind in FAILING:
            return (REFUSED if is_check else outcome.code), None
        if outcome.kind in ("success", "partial"):
            return None, self._debit_to_cancel(request) if cancel else None
        if self.settings.failure:
            return (REFUSED if is_check else failure_code(self.settings.failure_type)), None
        if cancel:
            original = self._debit_to_cancel(request)
            return (None if original else REFUSED), original
        return None, None

    def _fail(self, answer, request, failure: str, card: Card, now: datetime, extended: bool) -> None:
        profile = self.profile
        answer.update(AE=FAILURE, AF=failure + cb2a_extension(failure) if extended else failure)
        if profile.failure_tags:
            card_data = self._card_data(card, request, profile, now.year)
            answer.update({tag: card_data[tag] for tag in profile.failure_tags})
        if failure == OPERATOR_ABANDON and profile.abandon_amount:
            answer["CB"] = profile.abandon_amount

    def _succeed(self, answer, request, original: Transaction | None, card: Card, now: datetime) -> None:
        profile = self.profile
        answer["AE"] = SUCCESS
        if profile.success_complement:
            answer["AF"] = profile.success_complement
        if original is not None:
            original.cancelled = True
            answer.update({tag: original.answer[tag] for tag in profile.card_tags if tag in original.answer})
        elif not codes.is_check(request):
            answer.update(self._card_data(card, request, profile, now.year))

    @staticmethod
    def _granted(request: dict[str, str], outcome: Outcome) -> int:
        """Minor units authorised: all that was asked, or less with a partial authorisation (at least 1)."""
        asked = int(request["CB"])
        if outcome.kind != "partial" or outcome.amount is None or request["CD"] not in PARTIAL_ACTIONS:
            return asked  # a refund or a cancellation is for its whole amount
        if outcome.amount.endswith("%"):
            granted = int(asked * Decimal(outcome.amount[:-1]) / 100)
        else:
            currency = currency_from_number(request["CE"])
            granted = int(Decimal(outcome.amount).scaleb(currency.exponent if currency else 0))
        return max(1, min(granted, asked))

    def _debit_to_cancel(self, request: dict[str, str]) -> Transaction | None:
        """The latest successful debit of this amount and currency (and CH reference, if given) not yet cancelled."""
        for transaction in reversed(self.history):
            if (
                transaction.action in PARTIAL_ACTIONS  # the debits: what a bank authorises, in part or whole
                and transaction.answer.get("AE") == SUCCESS
                and not transaction.cancelled
                and transaction.amount == int(request["CB"])
                and transaction.currency == request["CE"]
                and ("CH" not in request or transaction.reference == request["CH"])
            ):
                return transaction
        return None

    def _card_data(self, card: Card, request: dict[str, str], profile: Profile, year: int) -> dict[str, str]:
        # one draw for every random value: authorisation number, expiry, card number
        draw, authorisation = divmod(self.rng.getrandbits(128), 1_000_000)
        draw, months_ahead = divmod(draw, 48)
        pan_number = pan(card, draw)
        year, month = year + 1 + months_ahead // 12, 1 + months_ahead % 12
        data = {
            "CC": card.application,
            "CI": card.read_mode,
            "AC": f"{authorisation:06d}",
            "AA": pan_number[:6] + profile.mask * (len(pan_number) - 10) + pan_number[-4:],
            "AL": profile.pan_type or "1",  # a partial card number
            "AI": card.aid,
            "AB": f"{year % 100:02d}{month:02d}",
            "CF": request.get("CF", "1010000000"),
            "CG": self.settings.seller_contract,
        }
        return {tag: data[tag] for tag in profile.card_tags}

    def _ticket_data(
        self, request, answer, card: Card, failure: str | None, when: datetime, amount: int
    ) -> tickets.TicketData:
        settings, is_check = self.settings, codes.is_check(request)
        pan = answer.get("AA", "")
        return tickets.TicketData(
            operation=codes.ACTION_BY_CODE[request["CD"]].ticket_operation,
            scheme="CHEQUE" if is_check else card.scheme,
            contactless=not is_check and card.read_mode == codes.CONTACTLESS,
            when=when,
            merchant_name=settings.merchant_name,
            merchant_town=settings.merchant_town,
            contract=settings.seller_contract,
            amount=format_ticket_amount(amount, currency_from_number(request["CE"])),
            aid=None if is_check else card.aid,
            pan_last4=pan[-4:] if pan else None,
            authorisation=answer.get("AC") if not failure else None,
            failure=failure,
        )

    # -- the other actions answer at once

    def _duplicate(self, request: dict[str, str], answer: dict[str, str]) -> Reply:
        if not self.history:
            return Reply(_finish(answer, AE=FAILURE, AF=NOT_COMPLETED), "no ticket to reprint")
        if request["CK"][0] != codes.TICKETS_RETURNED:  # printed on the terminal only
            return Reply(_finish(answer, AE=SUCCESS), "duplicata printed")
        zt = tickets.zt_value(self.history[-1].ticket(), request["CK"], duplicate=True)
        return Reply(_finish(answer, AE=SUCCESS, ZT=zt), "duplicata printed and sent")

    def _identify(self, request: dict[str, str], answer: dict[str, str]) -> Reply:
        answer.update(CZ=self.profile.own_version, CJ=self.settings.terminal_id)
        return Reply(_finish(answer, AE=SUCCESS))

    def _print(self, request: dict[str, str], answer: dict[str, str]) -> Reply:
        try:
            printed = tickets.decode_tickets(request["ZT"])
        except (FrameError, ValueError):
            return Reply(_finish(answer, AE=FAILURE, AF=FORMAT_ERROR), "ZT is not CK/AK records in base64")
        text = "\n".join(ticket for _, ticket in printed)
        return Reply(_finish(answer, AE=SUCCESS), f"printed:\n{_printable(text)}")

    def _acknowledge(self, request: dict[str, str], answer: dict[str, str]) -> Reply:
        return Reply(_finish(answer, AE=SUCCESS), codes.action_description(request["CD"]))

    def _status(self, request: dict[str, str], answer: dict[str, str]) -> Reply:
        """The last payment's result: a guess at what CD=T answers, no public source shows it."""
        if not self.history:
            return Reply(_finish(answer, AE=FAILURE, AF=NOT_COMPLETED), "no transaction yet")
        last = {tag: value for tag, value in self.history[-1].answer.items() if tag not in codes.COMMON_TAGS}
        return Reply(list({**answer, **last}.items()))


_OTHER_ACTIONS = {
    codes.DUPLICATE.code: Terminal._duplicate,
    codes.IDENTIFY.code: Terminal._identify,
    codes.PRINT.code: Terminal._print,
    codes.TELECOLLECTION.code: Terminal._acknowledge,
    codes.REBOOT.code: Terminal._acknowledge,
    codes.CTMS.code: Terminal._acknowledge,
    codes.STATUS.code: Terminal._status,
}


def _finish(answer: dict[str, str], **records: str) -> Message:
    return list({**answer, **records}.items())


def _printable(text: str) -> str:
    """A POS's text as the log may show it: its lines, with any control character (an escape sequence that
    would drive the operator's terminal) written as an escape."""
    return "\n".join(line.encode("unicode_escape").decode("ascii") if not line.isprintable() else line
                     for line in text.split("\n"))  # fmt: skip
