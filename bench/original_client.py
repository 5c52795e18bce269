"""A stand-in for the original client, written from its documented behaviour (docs/protocol.md §13.4):
the same imports' weight (argparse, logging, socket, iso4217), the same request, one send, one recv(1024).

It is the yardstick of bench/client_timing.py: a call of ours must not cost much more than this.
"""

import argparse
import logging
import socket

from iso4217 import Currency

parser = argparse.ArgumentParser()
parser.add_argument("-d", "--destination", default="127.0.0.1")
parser.add_argument("-p", "--port", type=int, default=8888)
parser.add_argument("-a", "--amount", type=float, default=112.45)
args = parser.parse_args()
logging.basicConfig(level=logging.WARNING)
currency = Currency.EUR
cents = round(args.amount * 10**currency.exponent)
records = [("CZ", "0300"), ("CJ", "012345678901"), ("CA", "01"), ("CE", f"{currency.number:03d}"), ("BA", "0"),
           ("CD", "0"), ("CB", f"{cents:02d}")]  # fmt: skip
frame = "".join(f"{tag}{len(value):03d}{value}" for tag, value in records).encode()
with socket.create_connection((args.destination, args.port), timeout=180) as connection:
    connection.send(frame)
    answer = connection.recv(1024)
print(answer.decode())
