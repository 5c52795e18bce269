"""Answer shapes of real terminal families (docs/protocol.md §5-§7), as data the terminal reads."""

from __future__ import annotations

from dataclasses import dataclass

from . import codes

ALL_ACTIONS = frozenset(action.code for action in codes.ACTIONS)


@dataclass(frozen=True)
class Profile:
    description: str
    actions: frozenset[str] = ALL_ACTIONS  # CD values answered; others get AF=12
    card_tags: tuple[str, ...] = ("CC", "CI", "AC", "AA", "AI", "AB", "CF", "CG")  # added on card success
    failure_tags: tuple[str, ...] = ()  # card tags still sent when a payment fails
    answer_version: str | None = None  # CZ of every answer; None echoes the request's
    own_version: str = "0301"  # CZ of an identification answer
    amount_width: int | None = None  # CB of answers zero-padded to this many digits
    abandon_amount: str | None = None  # CB answered after an operator abandon (red key)
    rejected_tags: frozenset[str] = frozenset()  # present in a request -> AE=01 AF=09
    success_complement: str | None = None  # AF sent with AE=10
    pan_type: str | None = None  # AL sent after AA
    mask: str = "#"  # masking character of AA
    echoes_private_data: bool = True  # CF of the request comes back unchanged
    closes_after_answer: bool = False  # the terminal closes the connection once it has answered


PROFILES = {
    "original": Profile(
        "the original Python simulator's answer shapes, without its bugs: the whole request echoed, "
        "then AE and the card data CC CI AC AA AI AB CF CG",
    ),
    "ingenico": Profile(
        "an Ingenico Desk/5000 with new software: CB zero-padded to 12 digits in answers, the red key "
        "(operator abandon) answers CB 000000000000, a request with BF is refused (AF=09), the connection is "
        "closed after the answer (a guess: a public test script for a real one reads until the terminal closes); "
        "no reboot, CTMS or status actions",
        actions=ALL_ACTIONS - {codes.REBOOT.code, codes.CTMS.code, codes.STATUS.code},
        amount_width=12,
        abandon_amount="000000000000",
        rejected_tags=frozenset({"BF"}),
        closes_after_answer=True,
    ),
    "payxpert": Profile(
        "a PayXpert Concert V3 terminal (Castles, Sunmi): answers with CZ 0320, AF=01 on success, "
        "AL=1 after a *-masked card number; every action including reboot, CTMS status and transaction status",
        card_tags=("CC", "CI", "AC", "AA", "AL", "AI", "AB", "CF", "CG"),
        answer_version="0320",
        own_version="0320",
        success_complement=codes.AUTHORISED,
        pan_type="1",
        mask="*",
    ),
    "nepting": Profile(
        "a Nepting/HiPay Android terminal: no card number, expiry, AID or read mode in answers; failures "
        "keep the authorisation number, private data and ticket; debit and refund only",
        actions=frozenset({codes.DEBIT.code, codes.REFUND.code}),
        card_tags=("CC", "AC", "CF", "CG"),
        failure_tags=("AC", "CF"),
        own_version="0320",
    ),
}
