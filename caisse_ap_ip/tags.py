"""The Caisse-AP tag dictionary: what each tag is called and what coded values mean."""

from __future__ import annotations

NAMES = {
    "CZ": "protocol version",
    "CJ": "POS software identifier",
    "CA": "cash register number",
    "CB": "amount",
    "CC": "payment application",
    "CD": "action type",
    "CE": "currency",
    "CF": "private data",
    "CG": "merchant contract number",
    "CH": "external reference",
    "CI": "card read mode",
    "CK": "ticket management",
    "BA": "answer timing",
    "BB": "force online authorisation",
    "BF": "partial payment allowed",
    "BH": "shopper phone",
    "BI": "shopper e-mail",
    "AA": "card number (masked)",
    "AB": "card expiry (YYMM)",
    "AC": "authorisation number",
    "AE": "action status",
    "AF": "status complement",
    "AI": "card application identifier (AID)",
    "AK": "ticket data (base64)",
    "AL": "card number type",
    "ZT": "tickets",
}

ACTIONS = {
    "0": "debit",
    "1": "credit (refund)",
    "2": "cancellation",
    "3": "duplicata",
    "7": "deferred debit",
    "B": "telecollection",
    "I": "identification",
    "P": "print",
    "R": "reboot",
    "C": "CTMS status",
    "T": "transaction status",
}

STATUSES = {
    "10": "operation performed",
    "01": "operation not performed",
    "11": "request taken into account (immediate answer)",
}

STATUS_COMPLEMENTS = {
    "00": "unknown",
    "01": "transaction authorised",
    "02": "voice authorisation required",
    "03": "forced transaction",
    "04": "refused",
    "05": "forbidden",
    "06": "abandoned by the cardholder",
    "07": "not completed",
    "08": "not performed: input time-out",
    "09": "not performed: message format error",
    "10": "not performed: selection error",
    "11": "not performed: operator abandon",
    "12": "not performed: action type unknown",
    "13": "currency not supported",
}

APPLICATIONS = {
    "000": "indifferent / other",
    "001": "CB/Visa/Mastercard contact",
    "002": "American Express contact",
    "003": "CB Enseigne",
    "004": "Cetelem",
    "005": "Cofinoga",
    "006": "Diners Club",
    "007": "PASS",
    "008": "Franfinance",
    "009": "JCB",
    "00A": "Banque Accord EMV",
    "00B": "CB/Visa/Mastercard contactless",
    "00C": "cheque",
    "00D": "American Express contactless",
    "00E": "CONECS contact",
    "00F": "DCC",
    "00G": "QuickPass",
    "00I": "CPEI-EMV",
    "00S": "Sofinco private card",
    "00U": "UPI / China UnionPay",
    "00V": "ANCV chèques-vacances",
    "10E": "CONECS contactless",
    "101": "CB VAD (card number keyed)",
    "201": "quasi-cash",
    "301": "PLBS",
    "30F": "PLBS-DCC-GB",
    "401": "Optalion",
    "501": "Cash-Agence",
    "601": "PNF",
    "602": "P3F",
    "603": "Optalion",
    "604": "Preauto-CM",
    "605": "PRCME",
    "607": "QR-code payment",
    "608": "TOP3-3XCB",
    "609": "PNF-HPS",
    "701": "PPFCA",
}

READ_MODES = {
    "0": "unspecified",
    "1": "contact (chip)",
    "2": "contactless",
    "3": "magnetic stripe",
    "4": "manual entry",
}

ANSWER_TIMINGS = {"0": "at the end of the transaction", "1": "immediately"}

_TABLES = {
    "CD": ACTIONS,
    "AE": STATUSES,
    "CC": APPLICATIONS,
    "CI": READ_MODES,
    "BA": ANSWER_TIMINGS,
}


def name(tag: str) -> str:
    return NAMES.get(tag, "unknown tag")


def meaning(tag: str, value: str) -> str | None:
    """What a coded value means, or None when the tag is not coded or the value is unknown."""
    if tag == "AF":
        return STATUS_COMPLEMENTS.get(value[:2])
    table = _TABLES.get(tag)
    return table.get(value) if table else None
