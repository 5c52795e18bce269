"""A point of sale's payment function, as a POS project would have it (the code under test)."""

import socket


def pay(host: str, port: int, cents: int, timeout: float = 5.0) -> str:
    """Ask the terminal for a debit in euro cents: 'paid', 'refused' or 'no answer'."""
    amount = f"{cents:02d}"
    request = f"CZ0040300CJ012012345678901CA00201CE003978BA0010CD0010CB{len(amount):03d}{amount}"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(request.encode("ascii"))
            answer = b""
            while not _whole(answer):  # a terminal may send its answer in pieces
                data = sock.recv(4096)
                if not data:
                    break
                answer += data
    except OSError:
        return "no answer"
    records = _records(answer)
    return "paid" if records.get("AE") == "10" else "refused" if records.get("AE") == "01" else "no answer"


def _records(data: bytes) -> dict:
    records, offset = {}, 0
    while offset + 5 <= len(data):
        length = int(data[offset + 2 : offset + 5])
        records[data[offset : offset + 2].decode()] = data[offset + 5 : offset + 5 + length].decode()
        offset += 5 + length
    return records


def _whole(data: bytes) -> bool:
    """The answer has its status and ends on a record boundary after its card data or its reason."""
    records = _records(data)
    return "AE" in records and ("CG" in records or "AF" in records)
