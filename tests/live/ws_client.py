"""A raw MQTT-over-WebSocket client (stdlib socket, hand-built upgrade, masked
frames) for the live tests: it can misbehave in ways real client libraries
refuse to (WebSocket pings only, fragmented messages with a ping in between,
a Close frame without DISCONNECT)."""
import base64
import hashlib
import os
import socket
import struct

from mqtt_client import connect_packet

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WsClient:
    """MQTT 3.1.1 over a hand-made WebSocket connection. With fragments > 1 the
    CONNECT goes out as that many frames (binary + continuations) with a
    WebSocket ping between the first two."""

    def __init__(self, port, client_id, keepalive, fragments=1, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=5)
        self.local_port = self.sock.getsockname()[1]
        self.rx = b""  # MQTT bytes from the broker not yet consumed
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /mqtt HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
                           % (host, port, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise RuntimeError("upgrade refused: %r" % head)
            head += chunk
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
        if not head.startswith(b"HTTP/1.1 101") or want not in head:
            raise RuntimeError("bad upgrade response: %r" % head)
        pkt = connect_packet(client_id, keepalive)
        if fragments <= 1:
            self.send(2, pkt)
        else:
            step = -(-len(pkt) // fragments)
            parts = [pkt[i:i + step] for i in range(0, len(pkt), step)]
            for i, part in enumerate(parts):
                self.send(2 if i == 0 else 0, part, fin=(i == len(parts) - 1))
                if i == 0:
                    self.send(9, b"mid")  # a control frame inside a fragmented message
        ack = self.recv_mqtt()
        if ack[:1] != b"\x20":
            raise RuntimeError("no CONNACK: %r" % ack)

    def send(self, opcode, payload, fin=True):
        n = len(payload)
        b0 = (0x80 if fin else 0) | opcode
        if n < 126:
            head = struct.pack(">BB", b0, 0x80 | n)
        elif n < 65536:
            head = struct.pack(">BBH", b0, 0x80 | 126, n)
        else:
            head = struct.pack(">BBQ", b0, 0x80 | 127, n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def _exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise RuntimeError("connection closed")
            out += chunk
        return out

    def recv(self):
        b0, b1 = self._exact(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack(">H", self._exact(2))
        elif n == 127:
            (n,) = struct.unpack(">Q", self._exact(8))
        return b0 & 0x0F, self._exact(n)

    def recv_mqtt(self):
        """The next whole MQTT packet from the broker: a broker may split one packet over
        several WebSocket messages (aedes writes header and body separately), or put
        several in one. Pongs are skipped."""
        while True:
            if len(self.rx) >= 2:
                n, shift, i = 0, 0, 1
                while i < len(self.rx) and i <= 4:
                    n |= (self.rx[i] & 0x7F) << shift
                    shift += 7
                    i += 1
                    if not self.rx[i - 1] & 0x80:
                        if len(self.rx) >= i + n:
                            pkt, self.rx = self.rx[:i + n], self.rx[i + n:]
                            return pkt
                        break
            op, data = self.recv()
            if op == 8:
                raise RuntimeError("Close frame from the broker")
            if op in (0, 2):
                self.rx += data

    def mqtt_ping(self):
        self.send(2, b"\xc0\x00")
        if self.recv_mqtt() != b"\xd0\x00":
            raise RuntimeError("no PINGRESP")

    def ws_ping(self):
        self.send(9, b"hb")
        if self.recv()[0] != 10:
            raise RuntimeError("no pong")

    def close_frame(self):
        self.send(8, struct.pack(">H", 1000))
        try:
            self.recv()  # the echoed Close
        except (OSError, RuntimeError):
            pass
        self.sock.close()

    def disconnect(self):
        self.send(2, b"\xe0\x00")
        self.close_frame()
