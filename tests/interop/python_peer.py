"""Interop peer: Python websockets (Debian python3-websockets), client or server.

Usage: python_peer.py client <url> | python_peer.py server
Follows the fixed script in _scenarios.ts: print OPEN, echo, obey
"cmd:close <code> <reason>", print CLOSED <code> <reason>.
"""
import asyncio
import sys

import websockets

sys.stdout.reconfigure(encoding="utf-8")


def say(line):
    print(line, flush=True)


async def echo(ws):
    say(f"OPEN {ws.subprotocol}")
    try:
        async for message in ws:
            if isinstance(message, str) and message.startswith("cmd:close "):
                _, code, reason = message.split(" ", 2)
                await ws.close(int(code), reason)
            else:
                await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    # After the close handshake, close_code/close_reason hold the close
    # frame the other side sent.
    say(f"CLOSED {ws.close_code} {ws.close_reason}")


async def main():
    if sys.argv[1] == "client":
        async with websockets.connect(
            sys.argv[2], subprotocols=["chat.v2", "chat.v1"], max_size=None
        ) as ws:
            await echo(ws)
    else:
        async with websockets.serve(
            echo, "127.0.0.1", 0, subprotocols=["chat.v1"], max_size=None
        ) as server:
            say(f"READY {server.sockets[0].getsockname()[1]}")
            await asyncio.Future()


asyncio.run(main())
