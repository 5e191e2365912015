"""An agent's phone built on pyVoIP (a pure-Python SIP/RTP stack), driven by
tests/interop_pyvoip.rs.

It registers, calls the dialer's campaign URI (the authenticated INVITE logs the agent in), and
while the call is up writes what it hears to `--heard` (pyVoIP's decoded audio: 8-bit unsigned
linear, 8 kHz) and sends a steady tone of `--mic-hz` as its microphone. A line `hangup` on stdin
hangs up; it exits when the call ends. Progress goes to stdout, one line each.
"""

import argparse
import math
import os
import socket
import sys
import threading
import time
import uuid

import pyVoIP
from pyVoIP.credentials import CredentialsManager
from pyVoIP.RTP import RTPClient
from pyVoIP.SIP.client import SIPClient
from pyVoIP.VoIP.call import CallState
from pyVoIP.VoIP.phone import VoIPPhone, VoIPPhoneParameter


def say(line: str) -> None:
    print(f"{time.monotonic():.3f} {line}", flush=True)


class FreshBranchClient(SIPClient):
    """pyVoIP 2.0.0a4 sends the INVITE answering a challenge with the challenged INVITE's Via
    branch. That names the finished transaction again (RFC 3261 17.2.3), so the dialer, like any
    RFC 3261 server, takes it for a retransmission and drops it; a new request needs a new
    branch (RFC 3261 8.1.1.7). This gives every INVITE after the first of a call its own."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.invited_calls = set()

    def gen_invite(self, number, sess_id, ms, sendtype, branch, call_id):
        if call_id in self.invited_calls:
            branch = "z9hG4bK" + uuid.uuid4().hex
        self.invited_calls.add(call_id)
        return super().gen_invite(number, sess_id, ms, sendtype, branch, call_id)

    def gen_bye(self, request):
        """pyVoIP 2.0.0a4's BYE for a call it made reuses the INVITE's branch and CSeq number
        and leaves out the dialer's To tag, so it names no dialog (the dialer answers 481,
        RFC 3261 12.2.1.1). This one is built from the dialog: a new branch, the next CSeq,
        both tags."""
        to = request.headers["To"]
        from_ = request.headers["From"]
        tag = self.tagLibrary[request.headers["Call-ID"]]
        cseq = int(request.headers["CSeq"]["check"]) + 1
        return (
            f"BYE {request.headers['Contact']['uri']} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.bind_ip}:{self.bind_port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <{from_['uri']}>;tag={tag}\r\n"
            f"To: <{to['uri']}>;tag={to['tag']}\r\n"
            f"Call-ID: {request.headers['Call-ID']}\r\n"
            f"CSeq: {cseq} BYE\r\n"
            f"User-Agent: pyVoIP {pyVoIP.__version__}\r\n"
            "Content-Length: 0\r\n\r\n"
        )


def symmetric_start(self) -> None:
    """pyVoIP 2.0.0a4 sends its RTP from a second socket on a port of the system's choosing,
    not from the port its SDP names. The dialer latches its audio to the source it hears
    (symmetric RTP, RFC 4961, for phones behind NAT), so it would send everything to a port
    nobody reads. This sends from the receiving socket, as most phones do."""
    self.sin = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    self.sin.bind((self.in_ip, self.in_port))
    self.sin.setblocking(False)
    self.sout = self.sin
    threading.Timer(0, self.recv).start()
    threading.Timer(0, self.trans).start()


RTPClient.start = symmetric_start


def tone(hz: float, level: float) -> bytes:
    """One second of the tone as pyVoIP takes it (8-bit unsigned linear)."""
    return bytes(
        int(128 + level * math.sin(2 * math.pi * hz * n / 8000)) for n in range(8000)
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--target", required=True, help="user part to call")
    parser.add_argument("--bind-port", type=int, required=True)
    parser.add_argument("--rtp-low", type=int, required=True)
    parser.add_argument("--rtp-high", type=int, required=True)
    parser.add_argument("--mic-hz", type=float, default=440.0)
    parser.add_argument("--heard", required=True)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()
    pyVoIP.DEBUG = args.debug

    credentials = CredentialsManager()
    credentials.add(args.user, args.password)
    phone = VoIPPhone(
        VoIPPhoneParameter(
            server=args.server,
            port=args.port,
            user=args.user,
            credentials_manager=credentials,
            bind_ip="127.0.0.1",
            bind_port=args.bind_port,
            bind_network="127.0.0.0/8",
            rtp_port_low=args.rtp_low,
            rtp_port_high=args.rtp_high,
            sip_class=FreshBranchClient,
        )
    )
    phone.start()
    say(f"registered: {phone.get_status()}")
    call = phone.call(args.target)
    say("dialled")
    while call.state in (CallState.DIALING, CallState.PROGRESS, CallState.RINGING):
        time.sleep(0.02)
    say(f"call: {call.state}")
    if call.state != CallState.ANSWERED:
        phone.stop()
        return 1

    hangup = threading.Event()

    def stdin_reader() -> None:
        for line in sys.stdin:
            if line.strip() == "hangup":
                break
        hangup.set()

    threading.Thread(target=stdin_reader, daemon=True).start()

    second = tone(args.mic_hz, 48.0)
    heard_bytes = 0
    start = time.monotonic()
    sent = 0
    read = 0
    with open(args.heard, "wb") as heard:
        while call.state == CallState.ANSWERED and not hangup.is_set():
            # The microphone: keep 20 ms packets going at real time.
            due = int((time.monotonic() - start) * 50) + 1
            while sent < due:
                offset = (sent % 50) * 160
                call.write_audio(second[offset : offset + 160])
                sent += 1
            # What it hears: read at real time too, 200 ms behind, so that pyVoIP's buffer
            # (ordered by RTP timestamp) holds each packet by the time it is read.
            due = int((time.monotonic() - start - 0.2) * 50)
            while read < due:
                chunk = call.read_audio(160, blocking=False)
                heard.write(chunk)
                heard_bytes += len(chunk)
                read += 1
            heard.flush()
            time.sleep(0.01)
    say(f"heard {heard_bytes} bytes, sent {sent} packets")
    # pyVoIP can block for good in hangup() or stop() (a lock held by its receive thread);
    # both run aside, and the process leaves once they are done or after a few seconds.
    def finish() -> None:
        if call.state == CallState.ANSWERED:
            call.hangup()
            say("hung up")
        else:
            say(f"call ended by the dialer: {call.state}")
        phone.stop()
        say("stopped")

    closer = threading.Thread(target=finish, daemon=True)
    closer.start()
    closer.join(5)
    sys.stdout.flush()
    os._exit(0)

if __name__ == "__main__":
    sys.exit(main())
