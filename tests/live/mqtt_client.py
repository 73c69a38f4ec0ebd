"""Minimal raw MQTT 3.1.1/5 client for live tests: it must be able to misbehave
(go silent, vanish, keepalive 0) in ways real client libraries refuse to."""
import socket
import struct


def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def connect_packet(client_id, keepalive, level=4, password=None):
    flags = 0x02
    payload = _str(client_id)
    if password is not None:
        flags |= 0xC0
        payload += _str("user") + _str(password)
    var = _str("MQTT") + bytes([level, flags]) + struct.pack(">H", keepalive)
    if level == 5:
        var += b"\x00"
    body = var + payload
    return bytes([0x10]) + _varint(len(body)) + body


class Client:
    def __init__(self, port, client_id, keepalive, level=4, host="127.0.0.1", password=None):
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.sendall(connect_packet(client_id, keepalive, level, password))
        ack = self.sock.recv(4)
        if len(ack) < 4 or ack[0] != 0x20:
            raise RuntimeError("no CONNACK: %r" % ack)
        self.local_port = self.sock.getsockname()[1]

    def ping(self):
        self.sock.sendall(b"\xc0\x00")

    def disconnect(self):
        self.sock.sendall(b"\xe0\x00")
        self.sock.close()

    def close_without_disconnect(self):
        self.sock.close()

    def abort(self):
        # SO_LINGER 0: close sends RST.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
