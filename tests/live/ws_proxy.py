#!/usr/bin/env python3
"""A tiny WebSocket-to-TCP proxy for the live WebSocket test (stdlib asyncio).

Debian's Mosquitto is built without libwebsockets, so `protocol websockets`
does not start; this stands in for the WebSocket listener of a broker: it
accepts the HTTP/1.1 upgrade (Sec-WebSocket-Protocol: mqtt), unmasks client
frames and forwards their payload to Mosquitto's plain TCP listener, and sends
what Mosquitto answers back as binary frames. It answers pings itself (so they
never reach the broker, as with a real WebSocket listener), echoes a Close,
and when Mosquitto closes the connection it sends a Close (1001) and a FIN.

Usage: ws_proxy.py LISTEN_PORT UPSTREAM_PORT"""
import asyncio
import base64
import hashlib
import struct
import sys

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode, payload):
    n = len(payload)
    if n < 126:
        head = struct.pack(">BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack(">BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack(">BBQ", 0x80 | opcode, 127, n)
    return head + payload


async def handle(reader, writer, upstream_port):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        writer.close()
        return
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if (not lines[0].startswith("GET ") or "websocket" not in headers.get("upgrade", "").lower()
            or "sec-websocket-key" not in headers):
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()
        return
    accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + GUID).digest()).decode()
    protocols = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
    response = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Accept: %s\r\n" % accept)
    if "mqtt" in protocols:
        response += "Sec-WebSocket-Protocol: mqtt\r\n"
    writer.write((response + "\r\n").encode())
    await writer.drain()

    async def client_to_broker():
        while True:
            b0, b1 = await reader.readexactly(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack(">H", await reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", await reader.readexactly(8))
            key = await reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
            data = bytearray(await reader.readexactly(n))
            for i in range(n):
                data[i] ^= key[i & 3]
            if opcode in (0, 2):
                up_writer.write(bytes(data))
                await up_writer.drain()
            elif opcode == 9:
                writer.write(frame(10, bytes(data)))
                await writer.drain()
            elif opcode == 8:
                writer.write(frame(8, bytes(data[:2])))
                await writer.drain()
                return

    async def broker_to_client():
        while True:
            data = await up_reader.read(65536)
            if not data:
                writer.write(frame(8, struct.pack(">H", 1001)))
                await writer.drain()
                return
            writer.write(frame(2, data))
            await writer.drain()

    tasks = {asyncio.ensure_future(client_to_broker()), asyncio.ensure_future(broker_to_client())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for w in (writer, up_writer):
            try:
                w.close()
            except Exception:
                pass


async def main(listen_port, upstream_port):
    server = await asyncio.start_server(lambda r, w: handle(r, w, upstream_port), "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
