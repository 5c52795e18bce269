"""The ceiling: a Twisted server that answers every whole request with the request plus AE=10.

No validation, no card data, no logging, no delay. Run under the same load
generator as the simulator, it tells what this machine and generator can do.
"""

import sys

from twisted.internet import protocol, reactor


def whole_records(data: bytes) -> bool:
    offset = 0
    while offset + 5 <= len(data):
        offset += 5 + int(data[offset + 2 : offset + 5])
    return offset == len(data)


class BareAnswer(protocol.Protocol):
    def connectionMade(self):
        self.buffer = b""

    def dataReceived(self, data):
        self.buffer += data
        if b"CB" in self.buffer and whole_records(self.buffer):
            self.transport.write(self.buffer + b"AE00210")
            self.buffer = b""


factory = protocol.Factory.forProtocol(BareAnswer)
factory.noisy = False
given = sys.argv[sys.argv.index("-p") + 1] if "-p" in sys.argv else 0  # -p PORT, as the simulator takes it
port = reactor.listenTCP(int(given), factory, backlog=1024, interface="127.0.0.1")
reactor.callWhenRunning(print, f"listening on 127.0.0.1:{port.getHost().port}", flush=True)
reactor.run()
