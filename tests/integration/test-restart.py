#!/usr/bin/python3
# Integration test: ICE restart. A listener sends `subscribe` again with new ICE credentials and
# keeps receiving the same stream (same SSRC, continuous sequence numbers) and its place in the
# room; a singer does the same with `publish` and stays heard. Starts its own encored on loopback.
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from encore_client import (Listener, Publisher, RtpLog, Server, join_room, run_test,  # noqa: E402
                           run_until, sdp_attr, sleep, wait_state)

ROOM = 'restart-test'


def ssrcs_of(sdp):
    return sorted(set(int(v.split()[0]) for v in sdp_attr(sdp, 'ssrc') if v.split()[0].isdigit()))


def body(tap):
    srv = tap.server = Server.start()
    s = join_room(srv.ws_url, ROOM, 'Singer', role='singer')
    s.call('queue.join')
    pub = Publisher(440, name='singer')
    pub_answer1 = pub.connect_to(s)

    lsig = join_room(srv.ws_url, ROOM, 'Lou')
    lis = Listener('lou')
    answer1 = lis.connect_to(lsig)
    offer1 = lis.offer_sent
    tap.ok(run_until(lambda: lis.hears(440), 10), 'listener hears 440 Hz', lis.describe())
    ssrc0 = lis.rtp.ssrcs()

    # Listener restart.
    count0 = lis.rtp.count()
    t_restart = time.monotonic()
    answer2 = lis.connect_to(lsig, ice_restart=True)
    offer2 = lis.offer_sent
    tap.ok(sdp_attr(offer2, 'ice-ufrag') != sdp_attr(offer1, 'ice-ufrag') and
           sdp_attr(offer2, 'ice-pwd') != sdp_attr(offer1, 'ice-pwd'),
           'second subscribe offer carries new ICE credentials',
           f"{sdp_attr(offer1, 'ice-ufrag')} -> {sdp_attr(offer2, 'ice-ufrag')} {lis.notes}")
    tap.ok(sdp_attr(answer2, 'ice-ufrag') and
           sdp_attr(answer2, 'ice-ufrag') != sdp_attr(answer1, 'ice-ufrag'),
           'the answer restarts ICE too (new ice-ufrag, RFC 8839 4.4.1.1.1)',
           f"{sdp_attr(answer1, 'ice-ufrag')} -> {sdp_attr(answer2, 'ice-ufrag')}")
    tap.ok(ssrcs_of(answer2) == ssrcs_of(answer1) == ssrc0,
           'the answer keeps the same stage SSRC', f'{ssrcs_of(answer1)} {ssrcs_of(answer2)}')
    pairs_before = [p for p in lis.selected_pairs if p[0] < t_restart]
    run_until(lambda: lis.rtp.count() > count0 + 150 and
              len(lis.selected_pairs) > len(pairs_before), 8)
    tap.ok(lis.rtp.count() > count0 + 150 and lis.hears(440),
           'listener keeps receiving and hearing the tone after the restart', lis.describe())
    tap.ok(len(lis.selected_pairs) > len(pairs_before),
           'ICE checks with the new credentials succeeded (a pair was selected again)',
           f'pairs {lis.selected_pairs} states {lis.state_log}')
    packets = lis.rtp.snapshot()
    cont = RtpLog.continuity(packets)
    arrivals = [p[0] for p in packets if p[0] >= t_restart - 1]
    worst = max(b - a for a, b in zip(arrivals, arrivals[1:])) if len(arrivals) > 1 else None
    tap.ok(lis.rtp.ssrcs() == ssrc0 and len(lis.src_pads) == 1 and cont['backsteps'] == 0 and
           cont['lost'] <= 3, 'same SSRC, same stream, sequence continuous across the restart',
           f'ssrcs {lis.rtp.ssrcs()} pads {lis.src_pads} {cont}')
    tap.diag(f'longest RTP gap around the listener restart: {worst} s')
    st = wait_state(lsig, lambda x: x.get('listeners') == 1 and x.get('members') == 2)
    tap.ok(st is not None and not [f for f in lsig.frames if f.get('type') == 'peer.closed'],
           'the listener kept its place (1 listener, no peer.closed)', lsig.frames[-5:])

    # Singer restart: the publish peer restarts ICE and stays on stage.
    count1 = lis.rtp.count()
    pub_answer2 = pub.connect_to(s, ice_restart=True)
    tap.ok(sdp_attr(pub_answer2, 'ice-ufrag') != sdp_attr(pub_answer1, 'ice-ufrag'),
           'second publish is answered with new ICE credentials',
           f"{sdp_attr(pub_answer1, 'ice-ufrag')} -> {sdp_attr(pub_answer2, 'ice-ufrag')}")
    sleep(3.0)
    tap.ok(lis.rtp.count() > count1 + 100 and lis.hears(440) and lis.rtp.ssrcs() == ssrc0,
           'listener keeps hearing the singer through the singer\'s ICE restart',
           f'{lis.describe()} pub {pub.state_log}')
    st = s.last_state()
    tap.ok(st is not None and (st.get('stage') or {}).get('id') == s.you and s.ping(),
           'the singer is still on stage', st)

    for p in (lis, pub):
        p.stop()
    code = srv.stop()
    tap.ok(code == 0, 'encored exits 0 on SIGTERM', f'exit code {code}')


if __name__ == '__main__':
    run_test(12, body, limit=60)
