#!/usr/bin/python3
# Integration test: the server checks the DTLS certificate against the offer's fingerprint. A
# listener whose offer carries a fingerprint that does not match its certificate (one hex byte
# changed) gets no audio and peer.closed dtls_failed, while a correct listener in the same room
# hears the tone. Starts its own encored (env ENCORED) on loopback.
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from encore_client import (Listener, Publisher, Server, join_room, munge_fingerprint,  # noqa: E402
                           run_test, run_until, sdp_attr, sleep, wait_state)

ROOM = 'dtls-test'


def body(tap):
    srv = tap.server = Server.start()
    s = join_room(srv.ws_url, ROOM, 'Singer', role='singer')
    s.call('queue.join')
    pub = Publisher(440, name='singer')
    pub.connect_to(s)

    gsig = join_room(srv.ws_url, ROOM, 'Good')
    good = Listener('good')
    good.connect_to(gsig)
    tap.ok(run_until(lambda: good.hears(440), 10), 'correct listener hears 440 Hz',
           good.describe())

    bsig = join_room(srv.ws_url, ROOM, 'Mallory')
    bad = Listener('bad')
    answer = bad.connect_to(bsig, munge=munge_fingerprint)
    real = sdp_attr(bad.webrtc.get_property('local-description').sdp.as_text(), 'fingerprint')
    sent = sdp_attr(bad.offer_sent, 'fingerprint')
    tap.ok(real and sent and real != sent and 'v=0' in answer,
           'offer with a wrong fingerprint is answered (the mismatch shows only in DTLS)',
           f'real {real} sent {sent}')
    t0 = time.monotonic()
    closed = bsig.wait_event('peer.closed', timeout=12, pc='subscribe')
    sleep(max(0.0, 10 - (time.monotonic() - t0)))
    tap.ok(bad.audio.total_samples == 0 and bad.rtp.count() == 0,
           'listener with the wrong fingerprint decodes nothing within 10 s', bad.describe())
    tap.ok(closed is not None and closed.get('reason') == 'dtls_failed',
           'it gets peer.closed with reason dtls_failed',
           f'{closed}; frames {[f for f in bsig.frames if f.get("type") != "room.state"][-5:]}; '
           f'webrtcbin states {bad.state_log}')
    st = wait_state(gsig, lambda x: x.get('listeners') == 1)
    tap.ok(st is not None, 'the refused peer is not counted as a listener', gsig.last_state())
    tap.ok(good.hears(440) and len(good.rtp.ssrcs()) == 1 and gsig.ping() and bsig.ping(),
           'the correct listener still hears the tone; both websockets still work',
           good.describe())

    # The refused member may try again with its real fingerprint.
    bad2 = Listener('bad-retry')
    bad2.connect_to(bsig)
    tap.ok(run_until(lambda: bad2.hears(440), 10),
           'after peer.closed the same member subscribes again with the right fingerprint',
           bad2.describe())

    for p in (bad, bad2, good, pub):
        p.stop()
    code = srv.stop()
    tap.ok(code == 0, 'encored exits 0 on SIGTERM', f'exit code {code}')


if __name__ == '__main__':
    run_test(8, body, limit=60)
