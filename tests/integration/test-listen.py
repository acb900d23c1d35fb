#!/usr/bin/python3
# Integration test: a native listener hears the singer on stage, and a hand-over to the next singer
# in the mic queue reaches it on the same RTP stream (same SSRC, continuous sequence numbers and
# timestamps, no renegotiation). Starts its own encored (env ENCORED) on loopback.
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from encore_client import (Listener, Publisher, RtpLog, Server, join_room, run_test,  # noqa: E402
                           run_until, sdp_attr, sleep, wait_state)

ROOM = 'listen-test'


def body(tap):
    srv = tap.server = Server.start()
    a = join_room(srv.ws_url, ROOM, 'Ann', role='singer')
    tap.ok(a.protocol == 'encore.v1', 'websocket negotiated subprotocol encore.v1', a.protocol)
    pos = a.call('queue.join')['position']
    st = wait_state(a, lambda s: (s.get('stage') or {}).get('id') == a.you and
                    s.get('owner') == a.you)
    tap.ok(pos == 0 and st is not None, 'first singer goes straight on stage and owns the room',
           f'position={pos} state={a.last_state()}')

    pub_a = Publisher(440, name='pubA')
    answer = pub_a.connect_to(a)
    tap.ok('a=recvonly' in answer and 'opus/48000/2' in answer.lower() and 'stereo=1' in answer,
           'publish answer is recvonly stereo Opus/48000/2', answer)

    lsig = join_room(srv.ws_url, ROOM, 'Lou')
    lis = Listener('lou')
    sub_answer = lis.connect_to(lsig)
    ssrc_lines = [v.split()[0] for v in sdp_attr(sub_answer, 'ssrc')]
    answer_ssrcs = sorted(set(int(x) for x in ssrc_lines if x.isdigit()))
    tap.ok('a=sendonly' in sub_answer and len(answer_ssrcs) == 1,
           'subscribe answer is sendonly with one SSRC', sub_answer)
    tap.ok(run_until(lambda: lis.hears(440), 10), 'listener hears 440 Hz from the first singer',
           lis.describe())
    ssrc0 = lis.rtp.ssrcs()
    tap.ok(ssrc0 == answer_ssrcs, 'listener receives the SSRC the answer announced',
           f'rtp {ssrc0} answer {answer_ssrcs}')

    b = join_room(srv.ws_url, ROOM, 'Bo', role='singer')
    pos_b = b.call('queue.join')['position']
    pub_b = Publisher(660, name='pubB')
    pub_b.connect_to(b)  # a queued singer connects early so the hand-over is instant
    run_until(lambda: pub_b.connected(), 10)
    sleep(1.0)
    tap.ok(pos_b == 1 and pub_b.connected() and lis.hears(440) and not lis.hears(660),
           'queued singer is connected but not heard', f'position={pos_b} '
           f'pubB={pub_b.conn_state} {lis.describe()}')
    st = wait_state(lsig, lambda s: [q.get('id') for q in s.get('queue') or []] == [b.you])
    tap.ok(st is not None, 'room.state lists the queued singer', lsig.last_state())

    t_advance = time.monotonic()
    stage = a.call('queue.advance')['stage']
    tap.ok(stage == b.you, 'queue.advance by the singer hands the stage to the next in queue',
           f'stage={stage} expected {b.you}')
    st = wait_state(lsig, lambda s: (s.get('stage') or {}).get('id') == b.you)
    tap.ok(st is not None and st['stage'].get('name') == b.account.name,
           'listeners get room.state with the new singer', lsig.last_state())
    heard = run_until(lambda: lis.hears(660), 5)
    t_heard = time.monotonic()
    tap.ok(heard, 'listener hears 660 Hz after the hand-over', lis.describe())
    tap.diag(f'hand-over heard after {t_heard - t_advance:.2f} s')
    sleep(2.0)
    tap.ok(lis.hears(660) and not lis.hears(440), 'listener keeps hearing only the new singer',
           lis.describe())

    packets = lis.rtp.snapshot()
    tap.ok(lis.rtp.ssrcs() == ssrc0 and len(lis.src_pads) == 1,
           'SSRC never changed and no new stream appeared',
           f'ssrcs {lis.rtp.ssrcs()} (first {ssrc0}) pads {lis.src_pads}')
    whole = RtpLog.continuity(packets)
    around = RtpLog.continuity([p for p in packets if t_advance - 1.0 <= p[0] <= t_heard + 1.0])
    tap.ok(whole['backsteps'] == 0 and whole['duplicates'] == 0 and whole['lost'] <= 3 and
           whole['max_gap'] <= 4 and around['backsteps'] == 0,
           'sequence numbers never went backwards, at most 3 lost',
           f'whole run {whole}; around the hand-over {around}; packets {len(packets)}')
    tap.ok(whole['ts_backsteps'] == 0 and whole['max_ts_jump'] <= 48000,
           'RTP timestamps never went backwards nor jumped over 1 s',
           f'whole run {whole}; around the hand-over {around}')
    st = lsig.last_state()
    tap.ok(st is not None and st.get('listeners') == 1 and st.get('members') == 3,
           'room.state counts 3 members and 1 listener', st)
    tap.ok(not pub_a.errors and not pub_b.errors and not lis.errors, 'no pipeline errors',
           f'{pub_a.errors} {pub_b.errors} {lis.errors}')

    for p in (lis, pub_a, pub_b):
        p.stop()
    for s in (a, b, lsig):
        s.close()
    code = srv.stop()
    tap.ok(code == 0, 'encored exits 0 on SIGTERM', f'exit code {code}')


if __name__ == '__main__':
    run_test(18, body, limit=60)
