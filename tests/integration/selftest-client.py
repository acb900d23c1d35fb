#!/usr/bin/python3
# Self-test of encore_client.py's WebRTC pieces without encored: each Publisher/Listener talks to a
# plain webrtcbin answerer in the same process (main thread, GLib loop). Proves the client can offer,
# trickle on loopback, decode and measure the tone, log SSRC/sequence numbers and restart ICE, so a
# failure in the server tests points at the server.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import json  # noqa: E402

from encore_client import (AudioMeter, Gst, Listener, Publisher, RtpLog, Signaling,  # noqa: E402
                           Soup, _Peer, run_test, run_until, sdp_attr, sleep)


class Answerer(_Peer):
    """The far side: answers an offer; sends a tone (freq) or receives and measures audio."""

    def __init__(self, freq=None, name='answerer'):
        if freq:
            desc = (f'audiotestsrc is-live=true wave=sine freq={freq} volume=0.5 ! '
                    'audio/x-raw,rate=48000,channels=2 ! audioconvert ! audioresample ! '
                    'opusenc bitrate=128000 frame-size=20 ! rtpopuspay pt=111 ! '
                    'application/x-rtp,media=audio,encoding-name=OPUS,payload=111,'
                    'clock-rate=48000 ! webrtcbin name=webrtc bundle-policy=max-bundle')
        else:
            desc = 'webrtcbin name=webrtc bundle-policy=max-bundle'
        super().__init__(desc, name)
        self.audio = AudioMeter()
        self.webrtc.connect('pad-added', self._pad)

    def _pad(self, webrtc, pad):
        if pad.get_direction() == Gst.PadDirection.SRC:
            self.audio.attach(self.pipe, pad)


def wire(offerer, answerer, ice_restart=False):
    """Direct offer/answer and trickle between two peers in this process; returns (offer, answer)."""
    offerer.on_local_candidate = lambda m, c: answerer.add_remote_candidate(m, c)
    answerer.on_local_candidate = lambda m, c: offerer.add_remote_candidate(m, c)
    for p in (offerer, answerer):
        if p.pipe.get_state(0)[1] != Gst.State.PLAYING:
            p.start()
    offer = offerer.create_offer(ice_restart=ice_restart)
    answerer.set_remote(offer, answer=False)
    answer = answerer.create_answer()
    offerer.set_remote(answer)
    for m, c in list(offerer.local_candidates):
        answerer.add_remote_candidate(m, c)
    for m, c in list(answerer.local_candidates):
        offerer.add_remote_candidate(m, c)
    return offer, answer


class MockWs:
    """A libsoup websocket server speaking a sliver of the protocol, to exercise Signaling."""

    def __init__(self):
        self.server = Soup.Server()
        self.server.add_websocket_handler('/ws', None, ['encore.v1'], self._on_ws)
        self.server.listen_local(0, Soup.ServerListenOptions.IPV4_ONLY)
        self.port = self.server.get_uris()[0].get_port()
        self.conns = []
        self.closed = 0

    def _on_ws(self, server, msg, path, conn):
        self.conns.append(conn)
        conn.connect('message', self._on_message)
        conn.connect('closed', self._on_closed)

    def _on_closed(self, conn):
        self.closed += 1

    def _on_message(self, conn, kind, data):
        try:
            m = json.loads(data.get_data().decode())
        except ValueError:
            conn.send_text(json.dumps({'type': 'error', 'code': 'parse_error', 'message': 'x'}))
            return
        if m.get('type') == 'ping':
            conn.send_text(json.dumps({'type': 'room.state', 'room': 'r', 'listeners': 0}))
            conn.send_text(json.dumps({'type': 'result', 'id': m['id'], 'data': {}}))
        elif m.get('type') == 'flood':
            conn.close(1008, 'flood')
        else:
            conn.send_text(json.dumps({'type': 'error', 'id': m.get('id'), 'code': 'unknown_type',
                                       'message': 'no'}))


def signaling_checks(tap):
    mock = MockWs()
    sig = Signaling(f'ws://127.0.0.1:{mock.port}/ws', auth=False)
    tap.ok(sig.protocol == 'encore.v1', 'websocket negotiates encore.v1', sig.protocol)
    tap.ok(sig.ping() and sig.last_state() is not None, 'ping answered; events recorded',
           sig.frames)
    frame = sig.request('nope', id_='abc')
    tap.ok(frame.get('code') == 'unknown_type' and frame.get('id') == 'abc',
           'string ids matched to error answers', frame)
    mark = sig.mark()
    sig.send_raw_text(b'{"type":')
    tap.ok(sig.wait_frame(lambda f: f.get('code') == 'parse_error', 3, since=mark) is not None,
           'raw text frames sent as they are', sig.frames[mark:])
    sig.send({'type': 'flood'})
    tap.ok(run_until(lambda: sig.closed, 3) and sig.close_code == 1008,
           'close code reported', sig.close_code)
    sig2 = Signaling(f'ws://127.0.0.1:{mock.port}/ws', auth=False)
    sig2.abort()
    tap.ok(run_until(lambda: mock.closed >= 2, 3) and not sig2.ping(0.5),
           'abort drops the connection', mock.closed)


def body(tap):
    signaling_checks(tap)
    pub = Publisher(440)
    rx = Answerer()
    offer, answer = wire(pub, rx)
    tap.ok('a=sendonly' in offer and 'OPUS/48000/2' in offer.upper() and 'stereo=1' in offer,
           'publisher offer is sendonly Opus/48000/2', offer)
    tap.ok(run_until(lambda: rx.audio.hears(440), 10), 'answerer hears the publisher at 440 Hz',
           f'{rx.audio.analyse()} {pub.errors} {rx.errors} {pub.state_log}')
    cands = [c for _, c in pub.local_candidates if c]
    tap.ok(cands and all(' 127.0.0.1 ' in c for c in cands),
           'publisher gathers 127.0.0.1 candidates only', cands)

    src = Answerer(660, name='sender')
    lis = Listener()
    offer, answer = wire(lis, src)
    tap.ok('a=recvonly' in offer and 'stereo=1' in offer, 'listener offer is recvonly stereo Opus',
           offer)
    tap.ok(run_until(lambda: lis.hears(660), 10), 'listener hears 660 Hz', lis.describe())
    tap.ok(not lis.hears(440), 'listener does not hear 440 Hz', lis.describe())
    run_until(lambda: lis.rtp.count() > 50, 5)
    ssrcs = lis.rtp.ssrcs()
    tap.ok(len(ssrcs) == 1 and lis.rtp.count() > 50, 'listener logs one SSRC and RTP headers',
           lis.describe())
    cont = RtpLog.continuity(lis.rtp.snapshot())
    tap.ok(cont['backsteps'] == 0 and cont['lost'] <= 2 and cont['ts_backsteps'] == 0,
           'sequence numbers and timestamps continuous', cont)

    ufrag1 = sdp_attr(offer, 'ice-ufrag')
    before = lis.rtp.count()
    pairs = len(lis.selected_pairs)
    offer2, answer2 = wire(lis, src, ice_restart=True)
    ufrag2 = sdp_attr(offer2, 'ice-ufrag')
    tap.ok(ufrag1 != ufrag2 and ufrag2, 'ICE restart offer carries new ice-ufrag',
           f'{ufrag1} -> {ufrag2}')
    sleep(2.0)
    tap.ok(lis.rtp.count() > before + 50 and lis.rtp.ssrcs() == ssrcs and lis.hears(660),
           'listener keeps receiving the same SSRC after ICE restart', lis.describe())
    tap.ok(lis.restarts == 1 and len(lis.selected_pairs) > pairs,
           'libnice restarted the stream and selected a pair again',
           f'{lis.notes} {lis.selected_pairs} {lis.state_log}')
    for p in (pub, rx, src, lis):
        p.stop()


if __name__ == '__main__':
    run_test(17, body, limit=60)
