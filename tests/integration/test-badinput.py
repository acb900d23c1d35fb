#!/usr/bin/python3
# Integration test: hostile input. Over a real websocket every documented refusal (parse_error,
# bad_message, unknown_type, invalid_field, too_large, too_deep, rate_limited, not_in_room,
# not_in_queue, no_opus, sdp_invalid) comes back with its code and the connection keeps working; on
# the media side garbage datagrams sprayed at the server's ports disturb no listener and are counted
# in /metrics, and listeners that vanish (SIGKILL, or media gone with the websocket open) leave the
# room's listener count within 40 s without disturbing the others. Starts its own encored.
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from encore_client import (HERE, Listener, Publisher, RawWebSocket, Server,  # noqa: E402
                           Signaling, hostile_datagrams, join_room, metric_sum, run_until,
                           run_test, sleep, spray_udp, spray_udp_spoofed, wait_state)

MEDIA_ROOM = 'bad-media'
WS_ROOM = 'bad-ws'

FINGERPRINT = ':'.join('%02X' % ((i * 37 + 11) & 0xFF) for i in range(32))


def offer_sdp(direction='sendonly', opus=True, fingerprint='sha-256 ' + FINGERPRINT, ufrag='Xq3b'):
    """A small browser-like offer: one audio section, Opus (or only PCMU/PCMA), BUNDLE, rtcp-mux."""
    pts = '111' if opus else '0 8'
    lines = ['v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0',
             'a=group:BUNDLE 0', 'a=msid-semantic: WMS',
             f'm=audio 9 UDP/TLS/RTP/SAVPF {pts}', 'c=IN IP4 0.0.0.0', 'a=rtcp:9 IN IP4 0.0.0.0']
    if ufrag:
        lines.append(f'a=ice-ufrag:{ufrag}')
    lines += ['a=ice-pwd:5k2vOqKm8QhN2sQ1rZfYtUaB', 'a=ice-options:trickle',
              f'a=fingerprint:{fingerprint}', 'a=setup:actpass', 'a=mid:0', f'a={direction}',
              'a=rtcp-mux']
    if opus:
        lines += ['a=rtpmap:111 opus/48000/2', 'a=fmtp:111 minptime=10;useinbandfec=1']
    else:
        lines += ['a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000']
    return '\r\n'.join(lines) + '\r\n'


class Child:
    """encore_client.py listen in its own process (so it can vanish with SIGKILL)."""

    def __init__(self, url, room, name):
        self.lines = []
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, 'encore_client.py'), 'listen', '--url', url,
             '--room', room, '--name', name, '--seconds', '90'],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass

    def event(self, name):
        for e in self.lines:
            if e.get('event') == name:
                return e
        return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def expect_error(tap, sig, desc, send, code, id_=None, field=None):
    """send() provokes one refusal; checks its code (and id/field) and that ping still works."""
    mark = sig.mark()
    send()
    frame = sig.wait_frame(lambda f: f.get('type') == 'error' and
                           (id_ is None or f.get('id') == id_), 5, since=mark)
    good = (frame is not None and frame.get('code') == code and
            (field is None or frame.get('field') == field))
    alive = sig.ping()
    return tap.ok(good and alive, f'{desc}: {code}' + (f' ({field})' if field else '') +
                  ', connection still answers ping',
                  f'got {frame}, ping {"ok" if alive else "failed"}, closed={sig.closed} '
                  f'code={sig.close_code}')


def websocket_checks(tap, srv):
    w = Signaling(srv.ws_url, name='w', role='singer')
    tap.ok(w.protocol == 'encore.v1' and w.ping(), 'websocket with encore.v1 answers ping',
           w.protocol)
    expect_error(tap, w, 'malformed JSON', lambda: w.send_raw_text(b'{"type": "ping", "id": 1'),
                 'parse_error')
    expect_error(tap, w, 'JSON array', lambda: w.send_raw_text(b'[1, 2, 3]'), 'bad_message')
    expect_error(tap, w, 'no type', lambda: w.send({'id': 3}), 'bad_message')
    expect_error(tap, w, 'negative id', lambda: w.send({'type': 'ping', 'id': -1}), 'bad_message')
    expect_error(tap, w, '65-character id', lambda: w.send({'type': 'ping', 'id': 'i' * 65}),
                 'bad_message')
    expect_error(tap, w, 'unknown type', lambda: w.send({'type': 'karaoke.explode', 'id': 'u1'}),
                 'unknown_type', id_='u1')
    expect_error(tap, w, 'room as a number',
                 lambda: w.send({'type': 'room.join', 'id': 'j1', 'room': 42, 'name': 'W'}),
                 'invalid_field', id_='j1', field='room')
    expect_error(tap, w, 'name as a list',
                 lambda: w.send({'type': 'room.join', 'id': 'j2', 'room': WS_ROOM, 'name': ['W']}),
                 'invalid_field', id_='j2', field='name')
    expect_error(tap, w, 'room with bad characters',
                 lambda: w.send({'type': 'room.join', 'id': 'j3', 'room': 'a b/c', 'name': 'W'}),
                 'invalid_field', id_='j3', field='room')
    big = json.dumps({'type': 'ping', 'id': 'big', 'pad': 'x' * (70 * 1024)})
    expect_error(tap, w, '70 KiB frame', lambda: w.send_text(big), 'too_large')
    deep = '{"type": "ping", "id": "deep", "x": ' + '[' * 1000 + ']' * 1000 + '}'
    expect_error(tap, w, '1000 levels of nesting', lambda: w.send_text(deep), 'too_deep')
    expect_error(tap, w, 'queue.join outside a room',
                 lambda: w.send({'type': 'queue.join', 'id': 'q0'}), 'not_in_room', id_='q0')

    w.call('room.join', room=WS_ROOM, name='W')
    expect_error(tap, w, 'publish while not queued',
                 lambda: w.send({'type': 'publish', 'id': 'p0', 'sdp': offer_sdp()}),
                 'not_in_queue', id_='p0')
    expect_error(tap, w, 'sdp as a number',
                 lambda: w.send({'type': 'subscribe', 'id': 's0', 'sdp': 123}),
                 'invalid_field', id_='s0', field='sdp')
    expect_error(tap, w, 'subscribe offer without Opus',
                 lambda: w.send({'type': 'subscribe', 'id': 's1',
                                 'sdp': offer_sdp('recvonly', opus=False)}), 'no_opus', id_='s1')
    w.call('queue.join')
    expect_error(tap, w, 'publish offer without Opus',
                 lambda: w.send({'type': 'publish', 'id': 'p1', 'sdp': offer_sdp(opus=False)}),
                 'no_opus', id_='p1')
    expect_error(tap, w, 'publish offer with a broken fingerprint',
                 lambda: w.send({'type': 'publish', 'id': 'p2',
                                 'sdp': offer_sdp(fingerprint='sha-256 12:ZZ:3')}),
                 'sdp_invalid', id_='p2')
    expect_error(tap, w, 'subscribe offer with a broken fingerprint',
                 lambda: w.send({'type': 'subscribe', 'id': 's2',
                                 'sdp': offer_sdp('recvonly', fingerprint='sha-256 ' +
                                                  FINGERPRINT[:40])}),
                 'sdp_invalid', id_='s2')
    expect_error(tap, w, 'offer without ice-ufrag',
                 lambda: w.send({'type': 'subscribe', 'id': 's3',
                                 'sdp': offer_sdp('recvonly', ufrag=None)}),
                 'sdp_invalid', id_='s3')
    expect_error(tap, w, 'offer that is not SDP',
                 lambda: w.send({'type': 'subscribe', 'id': 's4', 'sdp': 'hello, world'}),
                 'sdp_invalid', id_='s4')
    # The offers above differ from this one in one thing each: it must be accepted.
    frame = w.request('subscribe', sdp=offer_sdp('recvonly'))
    tap.ok(frame.get('type') == 'result' and 'v=0' in (frame.get('data') or {}).get('sdp', ''),
           'the same offer with Opus and a sound fingerprint is answered', frame)

    # Burst 100, then 50/s: 105 at once leaves at most 5 refused, fewer than the 6 that close.
    sleep(2.5)
    mark = w.mark()
    t0 = time.monotonic()
    for i in range(105):
        w.send({'type': 'ping', 'id': f'f{i}'})
    run_until(lambda: sum(1 for f in w.frames[mark:] if f.get('type') in ('result', 'error'))
              >= 105 or w.closed, 5)
    frames = w.frames[mark:]
    results = sum(1 for f in frames if f.get('type') == 'result')
    limited = sum(1 for f in frames if f.get('code') == 'rate_limited')
    tap.ok(1 <= limited <= 5 and results + limited == 105 and not w.closed,
           '105 pings at once: the excess is refused with rate_limited, the rest answered',
           f'results={results} rate_limited={limited} closed={w.closed} ({w.close_code}) '
           f'in {time.monotonic() - t0:.3f} s; other frames '
           f'{[f for f in frames if f.get("type") not in ("result",)][:5]}')
    sleep(2.0)
    tap.ok(w.ping(), 'after the flood the connection answers ping again')

    # A flood that goes on: the raw client sees every frame up to the close.
    f = RawWebSocket(srv.port)
    f.send_frames([json.dumps({'type': 'ping', 'id': i}).encode() for i in range(400)])
    frames, end = f.read_all()
    f.close()
    texts = [json.loads(p) for op, p in frames if op == 1]
    closes = [struct.unpack('!H', p[:2])[0] if len(p) >= 2 else None for op, p in frames if op == 8]
    fresults = sum(1 for x in texts if x.get('type') == 'result')
    flimited = sum(1 for x in texts if x.get('code') == 'rate_limited')
    tap.ok(closes == [1008] and fresults >= 100 and flimited == 6 and w.ping(),
           'a connection that keeps flooding gets 6 refusals in a row, then close 1008; '
           'others are not touched',
           f'close frames {closes}, ended by {end}, results={fresults} rate_limited={flimited}')

    codes = ['parse_error', 'bad_message', 'unknown_type', 'invalid_field', 'too_large',
             'too_deep', 'not_in_room', 'not_in_queue', 'no_opus', 'sdp_invalid', 'rate_limited']
    m = srv.metrics()
    missing = [c for c in codes if metric_sum(m, lambda k, c=c: f'"{c}"' in k) < 1]
    tap.ok(not missing, '/metrics counts the errors by code',
           f'missing {missing}; error-ish keys {[k for k in m if "err" in k.lower()][:30]}')
    return w


def body(tap):
    srv = tap.server = Server.start()

    # Media: a singer, two in-process listeners and one in another process.
    s = join_room(srv.ws_url, MEDIA_ROOM, 'Singer', role='singer')
    s.call('queue.join')
    pub = Publisher(440, name='singer')
    pub.connect_to(s)
    l1sig = join_room(srv.ws_url, MEDIA_ROOM, 'L1')
    l1 = Listener('l1')
    l1.connect_to(l1sig)
    l3sig = join_room(srv.ws_url, MEDIA_ROOM, 'L3')
    l3 = Listener('l3')
    l3.connect_to(l3sig)
    child = Child(srv.ws_url, MEDIA_ROOM, 'L2')
    ready = run_until(lambda: l1.hears(440) and l3.hears(440) and child.event('ready'), 20)
    tone2 = (child.event('ready') or {}).get('tone')
    tap.ok(ready and tone2 and abs(tone2[0] - 440) < 6,
           'three listeners (one in another process) hear 440 Hz',
           f'{l1.describe()}\n{l3.describe()}\nchild {child.lines}')
    st = wait_state(l1sig, lambda x: x.get('listeners') == 3)
    tap.ok(st is not None, 'room.state counts 3 listeners', l1sig.last_state())

    # L3's media vanishes without a word; its websocket stays open (ICE consent must notice).
    t_l3 = time.monotonic()
    l3.stop()

    websocket_checks(tap, srv)

    ports = set(pub.server_udp_ports()) | set(l1.server_udp_ports()) | \
        set(l3.server_udp_ports()) | set((child.event('ready') or {}).get('ports') or [])
    def media_drops(m):
        return {k: v for k, v in m.items() if 'drop' in k.lower() and 'ws' not in k.lower()}
    before = media_drops(srv.metrics())
    rtp_before = l1.rtp.count()
    t_spray = time.monotonic()
    junk = hostile_datagrams()
    sent = spray_udp(sorted(ports), junk, rounds=3)
    tap.ok(ports and sent > 0,
           f'sent {sent} hostile datagrams from a stranger to server ports {sorted(ports)}',
           'no 127.0.0.1 UDP candidate seen from the server')
    after_stranger = media_drops(srv.metrics())
    # The same junk from the listener's and the singer's own ICE addresses (raw socket), which gets
    # past any source check: SRTP/DTLS/STUN handling must refuse it without harm.
    tuples = {'l1': l1.five_tuple(), 'singer': pub.five_tuple()}
    spoofed = {}
    for who, tup in tuples.items():
        if tup:
            spoofed[who] = spray_udp_spoofed(tup[0], tup[1], junk, rounds=3)
    if None in spoofed.values() or not spoofed:
        tap.skip('raw sockets not allowed: no spoofed datagrams sent')
    else:
        tap.ok(len(spoofed) == 2 and all(spoofed.values()),
               f'sent spoofed hostile datagrams from the peers\' own addresses {tuples}: {spoofed}',
               f'{tuples} {spoofed}')
    sleep(1.5)
    rate = (l1.rtp.count() - rtp_before) / (time.monotonic() - t_spray)
    tap.ok(srv.alive() and l1.hears(440) and rate > 40 and len(l1.rtp.ssrcs()) == 1,
           'the listener still hears the tone and receives ~50 packets/s after the spray',
           f'alive={srv.alive()} rate={rate:.1f}/s {l1.describe()}')
    after = media_drops(srv.metrics())
    tap.diag('media drops after the stranger: %s; after the spoofed datagrams: %s' % (
        {k.split('{')[-1][:-1]: v for k, v in after_stranger.items() if v},
        {k.split('{')[-1][:-1]: v for k, v in after.items() if v}))
    tap.ok(sum(after.values()) > sum(before.values()), '/metrics counted dropped packets',
           f'media drop counters before {before}\nafter the stranger\'s datagrams '
           f'{after_stranger}\nafter the spoofed ones {after}')

    # L2 vanishes with its process: websocket and sockets gone at once.
    child.kill()
    t_kill = time.monotonic()
    st = wait_state(l1sig, lambda x: x.get('listeners', 9) <= 2, 40)
    tap.ok(st is not None, 'killed listener leaves the listener count',
           f'after {time.monotonic() - t_kill:.1f} s: {l1sig.last_state()}')
    closed = l3sig.wait_event('peer.closed', timeout=max(1.0, t_l3 + 42 - time.monotonic()))
    tap.diag(f'peer.closed {closed} came {time.monotonic() - t_l3:.1f} s after the media vanished')
    tap.ok(closed is not None and closed.get('pc') == 'subscribe' and
           closed.get('reason') == 'consent_lost',
           'listener whose media vanished gets peer.closed consent_lost',
           f'{time.monotonic() - t_l3:.1f} s after it stopped: {closed}; frames '
           f'{[f for f in l3sig.frames if f.get("type") != "room.state"][-5:]}')
    st = wait_state(l1sig, lambda x: x.get('listeners') == 1, max(1.0, t_l3 + 42 - time.monotonic()))
    tap.ok(st is not None, 'the listener count drops to 1 within 40 s',
           f'{time.monotonic() - t_l3:.1f} s: {l1sig.last_state()}')

    arrivals = [p[0] for p in l1.rtp.snapshot() if p[0] >= t_l3]
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    worst = max(gaps) if gaps else None
    tap.ok(worst is not None and worst < 0.5 and len(l1.rtp.ssrcs()) == 1 and l1.hears(440) and
           not [f for f in l1sig.frames if f.get('type') == 'peer.closed'],
           'the remaining listener was never disturbed',
           f'longest RTP gap {worst} s; {l1.describe()}')

    for p in (l1, pub):
        p.stop()
    code = srv.stop()
    tap.ok(code == 0, 'encored exits 0 on SIGTERM', f'exit code {code}')


if __name__ == '__main__':
    run_test(37, body, limit=80)
